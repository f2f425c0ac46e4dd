"""The audit's table of examples: what it keeps of each (labels, sizes, statistics as
stored, a :class:`~recipe_keras.audit.pixels.Summary`), its pixels while they fit, and
how to read rows again when they did not (:meth:`Examples.pixels`).

The readers (:mod:`recipe_keras.audit.read`) fill it a block at a time through
``Table``; every finding reads it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np

from recipe_keras.audit.pixels import Summary

__all__ = [
    "BLOCK",
    "BLOCK_BYTES",
    "Examples",
    "Keeper",
    "Table",
    "block_size",
    "example_stats",
    "fit",
    "stats_of",
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


class Keeper:
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


def stats_of(table: np.ndarray) -> dict[str, np.ndarray]:
    """An (N, 5) table of rows (mean, std, min, max, finite) as ``example_stats``'s dict."""
    found = {name: table[:, i].astype(np.float64) for i, name in enumerate(_STATS)}
    found["finite"] = found["finite"].astype(bool)
    return found


class Table:
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

    def examples(self, keeper: Keeper, blocks, reread=None) -> Examples:
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


def fit(block, shape: tuple[int, ...]) -> np.ndarray:
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
