"""Read a dataset's splits into one :class:`Examples` table, never crashing on a bad file.

Three sources: an image folder (``split/label/image``, decoded file by file with
Pillow so a truncated or empty file becomes a finding with its path), any
``tf.data`` datasets of ``(image, label)`` (TFDS catalog names and the embedded
dataset), and NumPy arrays. Images are kept at one common size (the most
common one) so the rest of the audit works on whole batches.
"""

from __future__ import annotations

import os
import sys
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["Examples", "read_arrays", "read_config", "read_datasets", "read_folder"]

# The suffixes an image folder's images may have (data.check_folder reads the same).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


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


class _Progress:
    """A bar per split with its rate and time left: updated in place on a terminal
    every half second, a new line every 5 s in a log."""

    WIDTH = 20

    def __init__(self, split: str, total: int | None, quiet: bool) -> None:
        self.split, self.total, self.quiet = split, total, quiet
        self.start = self.last = time.perf_counter()
        self.tty = sys.stdout.isatty()

    def line(self, done: int, elapsed: float, final: bool) -> str:
        rate = done / elapsed if elapsed > 0 else 0.0
        if self.total:
            filled = min(self.WIDTH, self.WIDTH * done // self.total)
            count = f"[{'#' * filled}{'.' * (self.WIDTH - filled)}] {done}/{self.total}"
        else:  # TFDS does not always know a split's size
            count = str(done)
        text = f"  read {self.split}: {count} examples, {rate:,.0f}/s, {elapsed:.1f} s"
        if self.total and not final and rate > 0:
            text += f", about {(self.total - done) / rate:.0f} s left"
        return text

    def update(self, done: int, final: bool = False) -> None:
        now = time.perf_counter()
        if self.quiet or (not final and now - self.last < (0.5 if self.tty else 5.0)):
            return
        self.last = now
        end = "\n" if final or not self.tty else "\r"
        print(self.line(done, now - self.start, final), end=end, flush=True)


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
        parts.append((split, images, np.asarray(labels, dtype=np.int64)))
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
        progress = _Progress(split, known if known >= 0 else None, quiet)
        shape = ds.element_spec[0].shape
        if None in shape[:2]:  # stored sizes vary: keep each size, resize to the first one's
            ds = ds.map(lambda x, y: (x, y, tf.shape(x)[:2]))
            first = next(iter(ds.take(1)))[0].shape[:2]
            ds = ds.map(
                lambda x, y, s, size=tuple(first): (
                    tf.cast(tf.image.resize(x, size), x.dtype),
                    y,
                    s,
                )
            )
        else:
            ds = ds.map(lambda x, y, s=tuple(shape[:2]): (x, y, tf.constant(s)))
        images, labels, sizes, done = [], [], [], 0
        for x, y, s in ds.batch(batch_size).prefetch(tf.data.AUTOTUNE).as_numpy_iterator():
            images.append(x)
            labels.append(y)
            sizes.append(s)
            done += len(y)
            progress.update(done)
        progress.update(done, final=True)
        if not images:
            continue
        parts.append(
            (
                split,
                np.concatenate(images),
                np.concatenate(labels).astype(np.int64),
                np.concatenate(sizes),
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
        progress = _Progress(split_dir.name, len(files), quiet)
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
                    images.append(np.asarray(img))
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
            parts.append((split_dir.name, images, np.asarray(labels, np.int64), None, ids))
    return _assemble(parts, class_names, unreadable, channels)


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
    parts: list, class_names: tuple[str, ...], unreadable: list[dict], channels: int = 0
) -> Examples:
    """Bring every split to the most common size and channel count; remember what was stored."""
    if not parts:
        raise ValueError("no readable example in any split: nothing to inspect")
    ids, splits, labels, images, sizes, stored_channels = [], [], [], [], [], []
    for part in parts:
        split, imgs, labs = part[:3]
        n = len(labs)
        ids += part[4] if len(part) > 4 else [f"{split}:{i}" for i in range(n)]
        splits += [split] * n
        labels.append(labs)
        if isinstance(imgs, list):  # files: each with its own size and channels
            imgs = [a[..., None] if a.ndim == 2 else a for a in imgs]
            sizes.append(np.array([a.shape[:2] for a in imgs]))
            stored_channels.append(np.array([a.shape[2] for a in imgs]))
            images.append(imgs)
        else:
            sizes.append(
                part[3]
                if len(part) > 3 and part[3] is not None
                else np.tile(imgs.shape[1:3], (n, 1))
            )
            stored_channels.append(np.full(n, imgs.shape[3]))
            images.append(imgs)
    sizes = np.concatenate(sizes).astype(np.int64)
    stored_channels = np.concatenate(stored_channels)
    target_c = channels or Counter(stored_channels.tolist()).most_common(1)[0][0]
    target_hw = Counter(map(tuple, sizes.tolist())).most_common(1)[0][0]
    arrays = [_common(block, target_hw, target_c) for block in images]
    labels = np.concatenate(labels)
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
