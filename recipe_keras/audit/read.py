"""Read a dataset's splits into one :class:`Examples` table, never crashing on a bad file.

Three sources: an image folder (``split/label/image``, decoded file by file with
Pillow so a truncated or empty file becomes a finding with its path), any
``tf.data`` datasets of ``(image, label)`` (TFDS catalog names and the embedded
dataset), and NumPy arrays. Images are kept at one common size (the most
common one) so the rest of the audit works on whole batches.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from recipe_keras.progress import Progress

__all__ = [
    "Examples",
    "decoded",
    "example_stats",
    "read_arrays",
    "read_config",
    "read_datasets",
    "read_folder",
]


@dataclass
class Examples:
    """Every readable example of every split, in one table (row i is example i)."""

    ids: list[str]  # "train:12" (TFDS) or the file's path relative to the folder
    splits: np.ndarray  # split name per example
    labels: np.ndarray  # int64 class index; -1 when the label is not a known class
    images: np.ndarray  # (N, H, W, C) at the common size; uint8, or float as stored
    sizes: np.ndarray  # (N, 2) height and width as stored, before any resizing
    channels: np.ndarray  # channels as stored
    class_names: tuple[str, ...]
    # Files that could not be decoded, and labels outside the class set: {"id", "split", "problem"}.
    unreadable: list[dict] = field(default_factory=list)
    expected_channels: int = 0
    # Each example's pixel statistics as stored, before any resizing (a noisy 6000 x
    # 6000 photo is no constant image for being averaged to 8 x 8): mean, std, min,
    # max and finite, as ``stats.example_stats`` computes them. None: from ``images``.
    stored_stats: dict[str, np.ndarray] | None = None

    def __post_init__(self) -> None:
        n = len(self.ids)
        for name in ("splits", "labels", "images", "sizes", "channels"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"Examples.{name} has {len(getattr(self, name))} rows, not {n}")
        if not self.expected_channels and n:
            self.expected_channels = Counter(self.channels.tolist()).most_common(1)[0][0]

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def split_names(self) -> list[str]:
        return list(dict.fromkeys(self.splits.tolist()))

    def pixel_stats(self) -> dict[str, np.ndarray]:
        """Per-example statistics of the images as stored (R1.4, R1.5)."""
        if self.stored_stats is not None:
            return self.stored_stats
        return example_stats(self.images)


@dataclass
class _Part:
    """One split as a reader found it: images as stored (a list when sizes differ)."""

    split: str
    images: np.ndarray | list[np.ndarray]
    labels: np.ndarray
    sizes: np.ndarray | None = None  # (N, 2) as stored, when ``images`` were resized
    ids: list[str] | None = None
    stats: dict[str, np.ndarray] | None = None  # as stored, when ``images`` were resized


def _reading(split: str, total: int | None, quiet: bool) -> Progress:
    """A bar per split with its rate and time left (TFDS does not always know a size)."""
    return Progress(f"read {split}", total, "examples", every=5.0, bar=True, rate=True, quiet=quiet)


def read_arrays(
    splits: Mapping[str, tuple[np.ndarray, np.ndarray]], class_names: Iterable[str]
) -> Examples:
    """Splits given as ``{"train": (images, labels), ...}``; images (N, H, W) or (N, H, W, C)."""
    class_names = tuple(class_names)
    parts = []
    for split, (images, labels) in splits.items():
        images = np.asarray(images)
        if images.ndim == 3:
            images = images[..., None]
        if images.ndim != 4:
            raise ValueError(f"split {split!r}: images must be (N, H, W[, C]), got {images.shape}")
        parts.append(_Part(split, images, np.asarray(labels, dtype=np.int64)))
    return _assemble(parts, class_names, [])


def read_datasets(
    datasets: Mapping[str, object],
    class_names: Iterable[str],
    *,
    limit: int | None = None,
    batch_size: int = 1024,
    quiet: bool = False,
) -> Examples:
    """``tf.data`` datasets of ``(image, label)`` pairs, one per split, read in batches."""
    import tensorflow as tf

    class_names = tuple(class_names)
    parts = []
    for split, ds in datasets.items():
        if limit:
            ds = ds.take(limit)
        known = int(ds.cardinality())
        progress = _reading(split, known if known >= 0 else None, quiet)
        shape = ds.element_spec[0].shape
        varies = None in shape[:2]
        if varies:  # stored sizes vary: keep each size and its statistics, resize to the first's
            first = next(iter(ds.take(1)))[0].shape[:2]
            ds = ds.map(
                lambda x, y, size=tuple(first): (
                    tf.cast(tf.image.resize(x, size), x.dtype),
                    y,
                    tf.shape(x)[:2],
                    _tf_stats(x),
                )
            )
        else:
            ds = ds.map(lambda x, y: (x, y, tf.shape(x)[:2], tf.zeros(5, tf.float64)))
        images, labels, sizes, stats, done = [], [], [], [], 0
        for x, y, s, st in ds.batch(batch_size).prefetch(tf.data.AUTOTUNE).as_numpy_iterator():
            images.append(x)
            labels.append(y)
            sizes.append(s)
            stats.append(st)
            done += len(y)
            progress.update(done)
        progress.update(done, final=True)
        if not images:
            continue
        table = np.concatenate(stats)
        parts.append(
            _Part(
                split,
                np.concatenate(images),
                np.concatenate(labels).astype(np.int64),
                sizes=np.concatenate(sizes),
                stats=_stats_of(table) if varies else None,
            )
        )
    return _assemble(parts, class_names, [])


def read_folder(
    root: str | os.PathLike[str],
    *,
    channels: int = 0,
    limit: int | None = None,
    quiet: bool = False,
) -> Examples:
    """An image folder laid out ``split/label/image``; the classes are the training split's."""
    from PIL import Image

    from recipe_keras.folder import IMAGE_SUFFIXES  # the training pipeline's rule

    root = Path(root).expanduser()
    split_dirs = sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    if not split_dirs:
        raise ValueError(f"{root}: not an image folder laid out split/label/image")
    train = next((p for p in split_dirs if p.name == "train"), split_dirs[0])
    class_names = tuple(sorted(p.name for p in train.iterdir() if p.is_dir()))
    parts, unreadable = [], []
    for split_dir in split_dirs:
        files = sorted(
            f
            for label_dir in split_dir.iterdir()
            if label_dir.is_dir()
            for f in label_dir.iterdir()
            if f.suffix.lower() in IMAGE_SUFFIXES
        )[:limit]
        progress = _reading(split_dir.name, len(files), quiet)
        images, labels, ids = [], [], []
        for done, path in enumerate(files, 1):
            rel = str(path.relative_to(root))
            label = path.parent.name
            if label not in class_names:
                unreadable.append(
                    {
                        "id": rel,
                        "split": split_dir.name,
                        "problem": f"label {label!r} is not a training class",
                    }
                )
                continue
            try:
                with Image.open(path) as img:
                    img.load()  # decodes now: a truncated file raises here
                    images.append(decoded(img))
            except Exception as exc:  # any decoder error is a finding, never a crash
                size = path.stat().st_size
                problem = "empty file (0 bytes)" if size == 0 else f"cannot decode: {exc}"
                unreadable.append({"id": rel, "split": split_dir.name, "problem": problem})
                continue
            labels.append(class_names.index(label))
            ids.append(rel)
            progress.update(done)
        progress.update(len(files), final=True)
        if images:
            images = [a[..., None] if a.ndim == 2 else a for a in images]
            parts.append(
                _Part(
                    split_dir.name,
                    images,
                    np.asarray(labels, np.int64),
                    sizes=np.array([a.shape[:2] for a in images]),
                    ids=ids,
                    stats=_stats_of(np.array([_np_stats(a) for a in images])),
                )
            )
    return _assemble(parts, class_names, unreadable, channels)


# Pillow modes TensorFlow's decoders give as they are (L, LA, RGB, RGBA); the others
# are converted as those decoders convert them.
_CONVERT = {"1": "L", "P": "RGB", "PA": "RGBA", "CMYK": "RGB", "YCbCr": "RGB", "LAB": "RGB"}


def decoded(img) -> np.ndarray:
    """A Pillow image's pixels as TensorFlow's image decoders give them: uint8, 1 to 4
    channels. CMYK and YCbCr become RGB, a palette RGB (RGBA with transparency),
    16-bit gray its high byte."""
    if img.mode.startswith("I") or img.mode == "F":  # 16- or 32-bit gray
        a = np.asarray(img, dtype=np.float64)
        if a.size and np.nanmax(a) > 255:
            a = a / 257.0  # 65535 -> 255, as a 16-bit PNG is read at 8 bits
        return np.clip(np.round(np.nan_to_num(a)), 0, 255).astype(np.uint8)
    mode = _CONVERT.get(img.mode)
    if img.mode == "P" and "transparency" in img.info:
        mode = "RGBA"
    return np.asarray(img.convert(mode) if mode else img)


_STATS = ("mean", "std", "min", "max", "finite")


def example_stats(images: np.ndarray, batch: int = 8192) -> dict[str, np.ndarray]:
    """Mean, std, min, max and finiteness per example, a batch at a time."""
    keys = ("mean", "std", "min", "max", "finite")
    out: dict[str, list] = {k: [] for k in keys}
    for start in range(0, len(images), batch):
        x = images[start : start + batch].reshape(min(batch, len(images) - start), -1)
        finite = np.isfinite(x).all(axis=1) if x.dtype.kind == "f" else np.ones(len(x), bool)
        x = np.where(np.isfinite(x), x, 0).astype(np.float32) if x.dtype.kind == "f" else x
        out["mean"].append(x.mean(axis=1, dtype=np.float64))
        out["std"].append(x.std(axis=1, dtype=np.float64))
        out["min"].append(x.min(axis=1).astype(np.float64))
        out["max"].append(x.max(axis=1).astype(np.float64))
        out["finite"].append(finite)
    return {k: np.concatenate(v) if v else np.zeros(0) for k, v in out.items()}


def _np_stats(a: np.ndarray) -> list[float]:
    """Mean, std, min, max and finiteness of one stored image."""
    x = a.astype(np.float64, copy=False)
    finite = bool(np.isfinite(x).all())
    x = np.where(np.isfinite(x), x, 0.0) if not finite else x
    return [x.mean(), x.std(), x.min(), x.max(), float(finite)]


def _tf_stats(x):
    """``_np_stats`` in TensorFlow, inside a tf.data map (before it resizes)."""
    import tensorflow as tf

    x = tf.cast(x, tf.float64)
    finite = tf.reduce_all(tf.math.is_finite(x))
    x = tf.where(tf.math.is_finite(x), x, tf.zeros_like(x))
    return tf.stack(
        [
            tf.reduce_mean(x),
            tf.math.reduce_std(x),
            tf.reduce_min(x),
            tf.reduce_max(x),
            tf.cast(finite, tf.float64),
        ]
    )


def _stats_of(table: np.ndarray) -> dict[str, np.ndarray]:
    """An (N, 5) table of ``_np_stats`` rows as ``stats.example_stats``'s dict."""
    found = {name: table[:, i].astype(np.float64) for i, name in enumerate(_STATS)}
    found["finite"] = found["finite"].astype(bool)
    return found


def read_config(data, *, limit: int | None = None, quiet: bool = False) -> Examples:
    """The splits a project's ``[data]`` config names, through the same readers as training."""
    from recipe_keras.config import dataset_kind

    if dataset_kind(data.dataset) == "folder":
        return read_folder(data.dataset, channels=data.channels, limit=limit, quiet=quiet)
    from recipe_keras.data import make_builder, read_split

    builder = make_builder(data)
    label_key = (builder.info.supervised_keys or ("image", "label"))[1]
    names = builder.info.features[label_key].names
    splits = {"train": data.train_split, "val": data.val_split, "test": data.test_split}
    datasets = {name: read_split(builder, split) for name, split in splits.items()}
    return read_datasets(datasets, names, limit=limit, quiet=quiet)


def _assemble(
    parts: list[_Part], class_names: tuple[str, ...], unreadable: list[dict], channels: int = 0
) -> Examples:
    """Bring every split to the most common size and channel count; remember what was stored."""
    if not parts:
        raise ValueError("no readable example in any split: nothing to inspect")
    ids, splits, sizes, stored_channels, stats = [], [], [], [], []
    for part in parts:
        n = len(part.labels)
        ids += part.ids or [f"{part.split}:{i}" for i in range(n)]
        splits += [part.split] * n
        if isinstance(part.images, list):  # files: each with its own size and channels
            stored_channels.append(np.array([a.shape[2] for a in part.images]))
        else:
            stored_channels.append(np.full(n, part.images.shape[3]))
        sizes.append(
            part.sizes if part.sizes is not None else np.tile(part.images.shape[1:3], (n, 1))
        )
        stats.append(part.stats or example_stats(part.images))
    sizes = np.concatenate(sizes).astype(np.int64)
    stored_channels = np.concatenate(stored_channels)
    target_c = channels or Counter(stored_channels.tolist()).most_common(1)[0][0]
    target_hw = Counter(map(tuple, sizes.tolist())).most_common(1)[0][0]
    arrays = [_common(part.images, target_hw, target_c) for part in parts]
    labels = np.concatenate([part.labels for part in parts])
    bad = (labels < 0) | (labels >= len(class_names))
    for i in np.flatnonzero(bad):
        unreadable.append(
            {
                "id": ids[i],
                "split": splits[i],
                "problem": f"label {int(labels[i])} is outside 0..{len(class_names) - 1}",
            }
        )
    labels = np.where(bad, -1, labels)
    return Examples(
        ids=ids,
        splits=np.asarray(splits),
        labels=labels,
        images=np.concatenate(arrays),
        sizes=sizes,
        channels=stored_channels,
        class_names=class_names,
        unreadable=unreadable,
        expected_channels=target_c,
        stored_stats={k: np.concatenate([st[k] for st in stats]) for k in _STATS},
    )


def _common(block, size: tuple[int, int], channels: int) -> np.ndarray:
    """A block of images at ``size`` with ``channels`` (files differ; arrays already agree)."""
    if not isinstance(block, list):
        if block.shape[1:3] == size and block.shape[3] == channels:
            return block
        block = list(block)
    from PIL import Image

    out = []
    for a in block:
        if a.shape[2] != channels:
            a = a[..., :3] if a.shape[2] == 4 else a  # drop alpha
            a = (
                a.mean(axis=2, keepdims=True).astype(a.dtype)
                if channels == 1
                else (np.repeat(a[..., :1], 3, axis=2) if a.shape[2] == 1 else a)
            )
        if a.shape[:2] != size:
            img = Image.fromarray(a[..., 0] if a.shape[2] == 1 else a)
            a = np.asarray(img.resize((size[1], size[0]), Image.BILINEAR))
            a = a[..., None] if a.ndim == 2 else a
        out.append(a)
    dtype = np.result_type(*[a.dtype for a in out])
    return np.stack(out).astype(dtype)
