"""Read a dataset's splits into one :class:`Examples` table, never crashing on a bad file.

Three sources: an image folder (``split/label/image``, decoded file by file with
Pillow so a truncated or empty file becomes a finding with its path), any
``tf.data`` datasets of ``(image, label)`` (TFDS catalog names and the embedded
dataset), and NumPy arrays. Images are brought to one common size (a folder's most
common one, a dataset's first) and read a block at a time: of each example the
table keeps its statistics as stored and a :class:`~recipe_keras.audit.pixels.Summary`
(a thumbnail and two hashes, about 1 KB), and its pixels only while every split's fit
in a quarter of the memory available. Streamed, the few examples a figure draws are
read again (:meth:`Examples.pixels`), and R1.8 predicts a block at a time.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import numpy as np

from recipe_keras.audit.examples import (
    Examples,
    Keeper,
    Table,
    block_size,
    example_stats,
    fit,
    stats_of,
)
from recipe_keras.progress import Progress

__all__ = [
    "decoded",
    "read_arrays",
    "read_config",
    "read_datasets",
    "read_folder",
]


def _reading(split: str, total: int | None, quiet: bool) -> Progress:
    """A bar per split with its rate and time left (TFDS does not always know a size)."""
    return Progress(f"read {split}", total, "examples", every=5.0, bar=True, rate=True, quiet=quiet)


def read_arrays(
    splits: Mapping[str, tuple[np.ndarray, np.ndarray]], class_names: Iterable[str]
) -> Examples:
    """Splits given as ``{"train": (images, labels), ...}``; images (N, H, W) or (N, H, W, C)."""
    table, keeper = Table(tuple(class_names)), Keeper(True)
    for split, (images, labels) in splits.items():
        images = np.asarray(images)
        if images.ndim == 3:
            images = images[..., None]
        if images.ndim != 4:
            raise ValueError(f"split {split!r}: images must be (N, H, W[, C]), got {images.shape}")
        table.shape = table.shape or tuple(images.shape[1:])
        n, fitted = len(images), fit(images, table.shape)
        keeper.add(fitted)
        table.add(
            split,
            fitted,
            np.asarray(labels, dtype=np.int64),
            [f"{split}:{i}" for i in range(n)],
            np.tile(images.shape[1:3], (n, 1)),
            np.full(n, images.shape[3]),
            example_stats(images),
        )
    return table.examples(keeper, None)


def read_datasets(
    datasets: Mapping[str, object],
    class_names: Iterable[str],
    *,
    limit: int | None = None,
    batch_size: int | None = None,
    quiet: bool = False,
    keep: bool | None = None,
) -> Examples:
    """``tf.data`` datasets of ``(image, label)`` pairs, one per split, read in blocks.

    ``keep``: hold the pixels (True), stream them (False), or hold them while they fit
    a quarter of the memory available (None).
    """
    import tensorflow as tf

    table = Table(tuple(class_names))
    keeper = Keeper(keep)

    def prepared(split: str):
        """(image at the common size, label, stored size, stats as stored) in blocks."""
        ds = datasets[split]
        if limit:
            ds = ds.take(limit)
        size = tuple(table.shape[:2])
        if None in ds.element_spec[0].shape[:2]:  # sizes vary: keep each as stored
            ds = ds.map(
                lambda x, y: (
                    tf.cast(tf.image.resize(x, size), x.dtype),
                    y,
                    tf.shape(x)[:2],
                    _tf_stats(x),
                )
            )
        else:
            ds = ds.map(lambda x, y: (x, y, tf.shape(x)[:2], tf.zeros(5, tf.float64)))
        per = batch_size or block_size(table.shape, ds.element_spec[0].dtype.size)
        return ds.batch(per).prefetch(1).as_numpy_iterator()

    def blocks(split: str) -> Iterator[np.ndarray]:
        for x, *_ in prepared(split):
            yield fit(x, table.shape)

    for split, ds in datasets.items():
        if not table.shape:  # the first split's first example sets the common size
            shape = ds.element_spec[0].shape
            if not shape.is_fully_defined():  # read only when the spec does not say
                first = next(iter(ds.take(1)), None)
                if first is None:
                    continue
                shape = first[0].shape
            table.shape = tuple(shape)
        known = int((ds.take(limit) if limit else ds).cardinality())
        progress = _reading(split, known if known >= 0 else None, quiet)
        varies = None in ds.element_spec[0].shape[:2]
        done = 0
        for x, y, sizes, st in prepared(split):
            stored_channels = np.full(len(y), x.shape[3])
            x = fit(x, table.shape)
            ids = [f"{split}:{i}" for i in range(done, done + len(y))]
            stats = stats_of(st) if varies else example_stats(x)
            table.add(split, x, y.astype(np.int64), ids, sizes, stored_channels, stats)
            keeper.add(x)
            done += len(y)
            progress.update(done)
        progress.update(done, final=True)
    return table.examples(keeper, blocks)


def read_folder(
    root: str | os.PathLike[str],
    *,
    channels: int = 0,
    limit: int | None = None,
    quiet: bool = False,
    keep: bool | None = None,
) -> Examples:
    """An image folder laid out ``split/label/image``; the classes are the training split's.

    The common size and channels are the most common ones, read from the files'
    headers first; ``keep`` as for :func:`read_datasets`.
    """
    from PIL import Image

    from recipe_keras.folder import IMAGE_SUFFIXES  # the training pipeline's rule

    root = Path(root).expanduser()
    split_dirs = sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    if not split_dirs:
        raise ValueError(f"{root}: not an image folder laid out split/label/image")
    train = next((p for p in split_dirs if p.name == "train"), split_dirs[0])
    class_names = tuple(sorted(p.name for p in train.iterdir() if p.is_dir()))
    listed: dict[str, list[Path]] = {}
    unreadable = []
    for split_dir in split_dirs:
        files = sorted(
            f
            for label_dir in split_dir.iterdir()
            if label_dir.is_dir()
            for f in label_dir.iterdir()
            if f.suffix.lower() in IMAGE_SUFFIXES
        )[:limit]
        for path in files:
            if path.parent.name not in class_names:
                problem = f"label {path.parent.name!r} is not a training class"
                unreadable.append(
                    {"id": str(path.relative_to(root)), "split": split_dir.name, "problem": problem}
                )
        listed[split_dir.name] = [f for f in files if f.parent.name in class_names]

    heads = Counter()  # (height, width, channels) as decoded, from the headers alone
    for files in listed.values():
        for path in files:
            try:
                with Image.open(path) as img:
                    heads[(img.size[1], img.size[0], _decoded_channels(img))] += 1
            except Exception:  # the decoding pass below names the problem
                continue
    table = Table(class_names)
    if heads:
        sizes, depths = Counter(), Counter()
        for (h, w, c), n in heads.items():
            sizes[(h, w)] += n
            depths[c] += n
        table.shape = (*sizes.most_common(1)[0][0], channels or depths.most_common(1)[0][0])

    def read(path: Path) -> np.ndarray:
        with Image.open(path) as img:
            img.load()  # decodes now: a truncated file raises here
            a = decoded(img)
        return a[..., None] if a.ndim == 2 else a

    def fitted(paths: list[Path]) -> np.ndarray:
        return fit([read(p) for p in paths], table.shape)

    def blocks(split: str) -> Iterator[np.ndarray]:
        paths = [root / i for i, s in zip(table.ids, table.splits, strict=True) if s == split]
        per = block_size(table.shape)
        for start in range(0, len(paths), per):
            yield fitted(paths[start : start + per])

    def reread(rows: np.ndarray) -> np.ndarray:
        if not len(rows):
            return np.zeros((0, *table.shape), np.uint8)
        return fitted([root / table.ids[i] for i in rows.tolist()])

    keeper = Keeper(keep)

    def flush(split: str, pending: list[tuple[np.ndarray, int, str]]) -> None:
        if not pending:
            return
        arrays = [a for a, _, _ in pending]
        x = fit(arrays, table.shape)
        table.add(
            split,
            x,
            np.array([label for _, label, _ in pending], np.int64),
            [rel for _, _, rel in pending],
            np.array([a.shape[:2] for a in arrays]),
            np.array([a.shape[2] for a in arrays]),
            stats_of(np.array([_np_stats(a) for a in arrays])),
        )
        keeper.add(x)
        pending.clear()

    for split, files in listed.items():
        progress = _reading(split, len(files), quiet)
        pending: list[tuple[np.ndarray, int, str]] = []
        for done, path in enumerate(files, 1):
            rel = str(path.relative_to(root))
            try:
                a = read(path)
            except Exception as exc:  # any decoder error is a finding, never a crash
                size = path.stat().st_size
                problem = "empty file (0 bytes)" if size == 0 else f"cannot decode: {exc}"
                unreadable.append({"id": rel, "split": split, "problem": problem})
                continue
            pending.append((a, class_names.index(path.parent.name), rel))
            if len(pending) == block_size(table.shape):
                flush(split, pending)
            progress.update(done)
        flush(split, pending)
        progress.update(len(files), final=True)
    table.unreadable = unreadable
    return table.examples(keeper, blocks, reread)


def _decoded_channels(img) -> int:
    """The channels ``decoded`` gives this image, read from its header."""
    from PIL import Image

    if img.mode.startswith("I") or img.mode == "F":
        return 1
    mode = _CONVERT.get(img.mode, img.mode)
    if img.mode == "P" and "transparency" in img.info:
        mode = "RGBA"
    return Image.getmodebands(mode) if mode in Image.MODES else len(img.getbands())


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
