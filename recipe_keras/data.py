"""The input pipeline: every step (inspect, check, fit) reads the same tf.data splits.

One code path for the three kinds of source: the embedded dataset (a TFDS
builder shipped here), a TFDS catalog name, and a local image folder
(``tfds.folder_dataset.ImageFolder``). tf.data feeds all three Keras backends.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import tensorflow as tf
import tensorflow_datasets as tfds

from recipe_keras.config import DataConfig, dataset_kind

__all__ = ["Splits", "load_splits", "make_builder", "make_pipeline", "read_split"]


@dataclass(frozen=True)
class Splits:
    """Batched train/val/test pipelines plus what a model needs to know about them."""

    train: tf.data.Dataset
    val: tf.data.Dataset
    test: tf.data.Dataset
    input_shape: tuple[int, ...]
    num_classes: int
    class_names: tuple[str, ...]
    sizes: dict[str, int]


def make_builder(cfg: DataConfig) -> tfds.core.DatasetBuilder:
    """The TFDS builder for ``cfg.dataset``, prepared (downloaded or generated) on first use."""
    kind = dataset_kind(cfg.dataset)
    data_dir = cfg.data_dir or None
    if kind == "folder":
        channels = cfg.channels or 3
        return tfds.folder_dataset.ImageFolder(
            str(Path(cfg.dataset).expanduser()), shape=(None, None, channels)
        )
    if kind == "embedded":
        from recipe_keras.datasets.digits import Digits

        builder = Digits(data_dir=data_dir)
    else:
        builder = tfds.builder(cfg.dataset, data_dir=data_dir)
    builder.download_and_prepare()
    return builder


def load_splits(cfg: DataConfig, seed: int) -> Splits:
    """Load train/val/test as normalised, cached, batched and prefetched pipelines."""
    builder = make_builder(cfg)
    image_key, label_key = builder.info.supervised_keys or ("image", "label")
    label = builder.info.features[label_key]
    stored = tuple(builder.info.features[image_key].shape)
    splits = {"train": cfg.train_split, "val": cfg.val_split, "test": cfg.test_split}
    raw = {name: read_split(builder, split) for name, split in splits.items()}
    height, width = cfg.image_size or _stored_size(stored, raw["train"])
    input_shape = (height, width, cfg.channels or stored[-1])
    return Splits(
        train=make_pipeline(raw["train"], cfg, input_shape, training=True, seed=seed),
        val=make_pipeline(raw["val"], cfg, input_shape, training=False, seed=seed),
        test=make_pipeline(raw["test"], cfg, input_shape, training=False, seed=seed),
        input_shape=input_shape,
        num_classes=label.num_classes,
        class_names=tuple(label.names),
        sizes={name: _size(ds) for name, ds in raw.items()},
    )


def make_pipeline(
    ds: tf.data.Dataset,
    cfg: DataConfig,
    input_shape: tuple[int, ...],
    *,
    training: bool,
    seed: int,
) -> tf.data.Dataset:
    """Cast to float in [0, 1], fix size and channels, cache, shuffle (train only), batch."""
    height, width, channels = input_shape

    def preprocess(image: tf.Tensor, label: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        image = tf.cast(image, tf.float32) / 255.0
        if image.shape[-1] == 3 and channels == 1:
            image = tf.image.rgb_to_grayscale(image)
        elif image.shape[-1] == 1 and channels == 3:
            image = tf.image.grayscale_to_rgb(image)
        if tuple(image.shape[:2]) != (height, width):
            image = tf.image.resize(image, (height, width))
        image = tf.ensure_shape(image, input_shape)
        return image, label

    ds = ds.map(preprocess, num_parallel_calls=tf.data.AUTOTUNE).cache()
    if training:
        ds = ds.shuffle(cfg.shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    return ds.batch(cfg.batch_size).prefetch(tf.data.AUTOTUNE)


def read_split(builder: tfds.core.DatasetBuilder, split: str) -> tf.data.Dataset:
    """``builder.as_dataset``, plus split slicing ("train[:90%]") for image folders.

    TFDS's ImageFolder takes whole split names only; its examples come in a
    fixed (seeded) order, so a slice is a stable skip/take of that order.
    """
    if not isinstance(builder, tfds.folder_dataset.ImageFolder) or split in builder.info.splits:
        return builder.as_dataset(split=split, as_supervised=True, shuffle_files=False)
    known = dict(builder.info.splits.items())
    try:
        parts = tfds.core.ReadInstruction.from_spec(split).to_absolute(known)
    except (AssertionError, ValueError) as exc:
        raise ValueError(
            f"split {split!r} does not fit the image folder's splits {sorted(known)}: {exc}"
        ) from exc
    pieces = []
    for part in parts:
        ds = builder.as_dataset(split=part.splitname, as_supervised=True, shuffle_files=False)
        start = part.from_ or 0
        stop = known[part.splitname].num_examples if part.to is None else part.to
        pieces.append(ds.skip(start).take(stop - start))
    ds = pieces[0]
    for piece in pieces[1:]:
        ds = ds.concatenate(piece)
    return ds


def _size(ds: tf.data.Dataset) -> int:
    """Examples in a split: TFDS usually knows; otherwise count them once."""
    known = int(ds.cardinality())
    return known if known >= 0 else int(ds.reduce(0, lambda n, _: n + 1))


def _stored_size(stored: tuple, train: tf.data.Dataset) -> tuple[int, int]:
    """The stored height and width; a folder (unknown size) takes its first image's."""
    if None not in stored[:2]:
        return stored[0], stored[1]
    for image, _ in train.take(1):
        return int(image.shape[0]), int(image.shape[1])
    raise ValueError("the training split is empty: nothing to learn from")
