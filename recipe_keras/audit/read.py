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
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from recipe_keras.audit.pixels import Summary
from recipe_keras.progress import Progress

__all__ = [
    "BLOCK",
    "BLOCK_BYTES",
    "Examples",
    "block_size",
    "decoded",
    "example_stats",
    "read_arrays",
    "read_config",
    "read_datasets",
    "read_folder",
]


# Examples decoded, summarised and let go together: the reader's working set, at most
# BLOCK examples and BLOCK_BYTES of pixels at the common size (448 x 448 RGB: 26 images;
# summarising takes four times that as float32).
BLOCK = 256
BLOCK_BYTES = 16 * 2**20


def block_size(shape: tuple[int, ...], itemsize: int = 1) -> int:
    """Examples of ``shape`` in one block."""
    return int(max(1, min(BLOCK, BLOCK_BYTES // max(1, int(np.prod(shape)) * itemsize))))


@dataclass
class Examples:
    """Every readable example of every split, in one table (row i is example i)."""

    ids: list[str]  # "train:12" (TFDS) or the file's path relative to the folder
    splits: np.ndarray  # split name per example
    labels: np.ndarray  # int64 class index; -1 when the label is not a known class
    # (N, H, W, C) at the common size, uint8 or float as stored; None when streamed
    # (the splits did not fit the memory available): ``pixels`` reads rows again.
    images: np.ndarray | None
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
    # Thumbnails and hashes at the common size (None: from ``images``).
    summary: Summary | None = None
    shape: tuple[int, ...] = ()  # the common (H, W, C)
    dtype: np.dtype = field(default_factory=lambda: np.dtype(np.uint8))
    # Streamed: a split's images at the common size, in row order, a block at a time;
    # and (a folder's) the images of any rows, read directly.
    blocks: Callable[[str], Iterator[np.ndarray]] | None = None
    reread: Callable[[np.ndarray], np.ndarray] | None = None

    def __post_init__(self) -> None:
        n = len(self.ids)
        names = ["splits", "labels", "sizes", "channels"]
        names += ["images"] if self.images is not None else []
        for name in names:
            if len(getattr(self, name)) != n:
                raise ValueError(f"Examples.{name} has {len(getattr(self, name))} rows, not {n}")
        if self.images is not None:
            self.shape, self.dtype = tuple(self.images.shape[1:]), self.images.dtype
            if self.summary is None:
                self.summary = Summary.of(self.images)
        elif self.blocks is None or self.summary is None:
            raise ValueError("Examples without images need their summary and blocks")
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

    def pixels(self, rows) -> np.ndarray:
        """The images of ``rows`` at the common size; streamed, read again (one pass at most)."""
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        if self.images is not None:
            return self.images[rows]
        out = np.zeros((len(rows), *self.shape), self.dtype)
        where = {}
        for k, row in enumerate(rows.tolist()):
            where.setdefault(row, []).append(k)
        for row, image in self.each(rows):
            out[where[row]] = image
        return out

    def each(self, rows) -> Iterator[tuple[int, np.ndarray]]:
        """(row, image at the common size) for each distinct row, in one pass, a block of
        pixels held at a time: for a consumer that keeps less than the pixels."""
        rows = np.unique(np.asarray(rows, dtype=np.int64))
        per = block_size(self.shape, self.dtype.itemsize)
        if self.images is not None or self.reread is not None:
            for start in range(0, len(rows), per):
                chunk = rows[start : start + per]
                images = self.images[chunk] if self.images is not None else self.reread(chunk)
                yield from zip(chunk.tolist(), images, strict=True)
            return
        for split in self.split_names:
            order = np.flatnonzero(self.splits == split)
            mine = rows[np.isin(rows, order)]
            if not len(mine):
                continue
            pos = np.searchsorted(order, mine)
            start, last = 0, pos.max()
            for block in self.blocks(split):
                hit = (pos >= start) & (pos < start + len(block))
                for row, p in zip(mine[hit].tolist(), pos[hit].tolist(), strict=True):
                    yield row, block[p - start]
                start += len(block)
                if start > last:
                    break

    def split_blocks(self, split: str) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(rows, images) of ``split`` in order, a block at a time."""
        rows = np.flatnonzero(self.splits == split)
        if self.images is not None:
            per = block_size(self.shape, self.dtype.itemsize)
            for start in range(0, len(rows), per):
                yield rows[start : start + per], self.images[rows[start : start + per]]
            return
        start = 0
        for block in self.blocks(split):
            yield rows[start : start + len(block)], block
            start += len(block)


class _Keeper:
    """Blocks of pixels kept while every one read so far fits ``budget`` bytes; past
    it, none (the table streams). ``budget`` None: the memory available decides."""

    def __init__(self, keep: bool | None) -> None:
        if keep is None:
            from recipe_keras.storage import MEMORY_SHARE, memory_available

            available = memory_available()
            self.budget = None if available is None else int(MEMORY_SHARE * available)
        else:
            self.budget = None if keep else -1
        self.blocks: list[np.ndarray] = []
        self.bytes = 0
        self.on = self.budget is None or self.budget >= 0

    def add(self, block: np.ndarray) -> None:
        if not self.on:
            return
        self.bytes += block.nbytes
        if self.budget is not None and self.bytes > self.budget:
            self.on, self.blocks = False, []
        else:
            self.blocks.append(block)

    def images(self, shape: tuple[int, ...], dtype) -> np.ndarray | None:
        if not self.on:
            return None
        return np.concatenate(self.blocks) if self.blocks else np.zeros((0, *shape), dtype)


def _reading(split: str, total: int | None, quiet: bool) -> Progress:
    """A bar per split with its rate and time left (TFDS does not always know a size)."""
    return Progress(f"read {split}", total, "examples", every=5.0, bar=True, rate=True, quiet=quiet)


def read_arrays(
    splits: Mapping[str, tuple[np.ndarray, np.ndarray]], class_names: Iterable[str]
) -> Examples:
    """Splits given as ``{"train": (images, labels), ...}``; images (N, H, W) or (N, H, W, C)."""
    table, keeper = _Table(tuple(class_names)), _Keeper(True)
    for split, (images, labels) in splits.items():
        images = np.asarray(images)
        if images.ndim == 3:
            images = images[..., None]
        if images.ndim != 4:
            raise ValueError(f"split {split!r}: images must be (N, H, W[, C]), got {images.shape}")
        table.shape = table.shape or tuple(images.shape[1:])
        n, fitted = len(images), _fit(images, table.shape)
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

    table = _Table(tuple(class_names))
    keeper = _Keeper(keep)

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
            yield _fit(x, table.shape)

    for split, ds in datasets.items():
        if not table.shape:  # the first split's first example sets the common size
            first = next(iter(ds.take(1)), None)
            if first is None:
                continue
            table.shape = tuple(first[0].shape)
        known = int((ds.take(limit) if limit else ds).cardinality())
        progress = _reading(split, known if known >= 0 else None, quiet)
        varies = None in ds.element_spec[0].shape[:2]
        done = 0
        for x, y, sizes, st in prepared(split):
            stored_channels = np.full(len(y), x.shape[3])
            x = _fit(x, table.shape)
            ids = [f"{split}:{i}" for i in range(done, done + len(y))]
            stats = _stats_of(st) if varies else example_stats(x)
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
    table = _Table(class_names)
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
        return _fit([read(p) for p in paths], table.shape)

    def blocks(split: str) -> Iterator[np.ndarray]:
        paths = [root / i for i, s in zip(table.ids, table.splits, strict=True) if s == split]
        per = block_size(table.shape)
        for start in range(0, len(paths), per):
            yield fitted(paths[start : start + per])

    def reread(rows: np.ndarray) -> np.ndarray:
        if not len(rows):
            return np.zeros((0, *table.shape), np.uint8)
        return fitted([root / table.ids[i] for i in rows.tolist()])

    keeper = _Keeper(keep)

    def flush(split: str, pending: list[tuple[np.ndarray, int, str]]) -> None:
        if not pending:
            return
        arrays = [a for a, _, _ in pending]
        x = _fit(arrays, table.shape)
        table.add(
            split,
            x,
            np.array([label for _, label, _ in pending], np.int64),
            [rel for _, _, rel in pending],
            np.array([a.shape[:2] for a in arrays]),
            np.array([a.shape[2] for a in arrays]),
            _stats_of(np.array([_np_stats(a) for a in arrays])),
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


class _Table:
    """The rows a reader has found so far, a block at a time, and their summaries."""

    def __init__(self, class_names: tuple[str, ...]) -> None:
        self.class_names = class_names
        self.shape: tuple[int, ...] = ()  # the common (H, W, C), set by the reader
        self.ids: list[str] = []
        self.splits: list[str] = []
        self.unreadable: list[dict] = []
        self.parts: dict[str, list] = {k: [] for k in ("labels", "sizes", "channels", "stats")}
        self.summaries: list[Summary] = []
        self.dtype = np.dtype(np.uint8)

    def add(self, split, images, labels, ids, sizes, channels, stats) -> None:
        self.ids += ids
        self.splits += [split] * len(ids)
        for name, value in (("labels", labels), ("sizes", sizes), ("channels", channels)):
            self.parts[name].append(np.asarray(value).reshape(len(ids), -1))
        self.parts["stats"].append(stats)
        self.summaries.append(Summary.of(images))
        self.dtype = images.dtype

    def examples(self, keeper: _Keeper, blocks, reread=None) -> Examples:
        if not self.ids:
            raise ValueError("no readable example in any split: nothing to inspect")
        labels = np.concatenate(self.parts["labels"]).ravel().astype(np.int64)
        bad = (labels < 0) | (labels >= len(self.class_names))
        for i in np.flatnonzero(bad):
            self.unreadable.append(
                {
                    "id": self.ids[i],
                    "split": self.splits[i],
                    "problem": f"label {int(labels[i])} is outside 0..{len(self.class_names) - 1}",
                }
            )
        stats = self.parts["stats"]
        side = self.summaries[0].thumbs.shape[1]
        return Examples(
            ids=self.ids,
            splits=np.asarray(self.splits),
            labels=np.where(bad, -1, labels),
            images=keeper.images(self.shape, self.dtype),
            sizes=np.concatenate(self.parts["sizes"]).astype(np.int64),
            channels=np.concatenate(self.parts["channels"]).ravel(),
            class_names=self.class_names,
            unreadable=self.unreadable,
            expected_channels=self.shape[2],
            stored_stats={k: np.concatenate([st[k] for st in stats]) for k in _STATS},
            summary=Summary.join(self.summaries, side),
            shape=self.shape,
            dtype=self.dtype,
            blocks=blocks,
            reread=reread,
        )


def _fit(block, shape: tuple[int, ...]) -> np.ndarray:
    """A block of images (an array, or a list of arrays that differ) at ``shape`` (H, W, C)."""
    size, channels = tuple(shape[:2]), shape[2]
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
