"""The input pipeline: every step (inspect, check, fit) reads the same tf.data splits.

One code path for the three kinds of source: the embedded dataset (a TFDS
builder shipped here), a TFDS catalog name, and a local image folder
(``tfds.folder_dataset.ImageFolder``). tf.data feeds all three Keras backends.
"""

from __future__ import annotations

import contextlib
import functools
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from recipe_keras._backend import even_batches
from recipe_keras.config import ConfigError, DataConfig, dataset_kind
from recipe_keras.folder import IMAGE_SUFFIXES, check_folder, split_names
from recipe_keras.storage import Storage, cache_folder, storage_plan

__all__ = [
    "IMAGE_SUFFIXES",
    "MAX_STORED_PIXELS",
    "Splits",
    "check_folder",
    "first_batches",
    "labels_of",
    "load_splits",
    "make_builder",
    "make_pipeline",
    "order_and_batch",
    "read_split",
    "to_numpy",
]


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
    # The epoch whose shuffle order ``train`` gives (see make_pipeline); set by the
    # recipe's callbacks at each epoch's start. None: a loader's own pipeline.
    epoch: tf.Variable | None = None
    # The image folder whose files these are, if any: `make inspect` then reads the
    # files one by one, so every finding names its file (an undecodable one too). A
    # loader that changes the images it reads sets it to "".
    folder: str = ""
    # R4.3: a map from (images, integer labels) batches to mixed images and soft labels
    # (``recipe_keras.mixing.mixer``), applied in ``fit_train`` only. None: no mixing.
    mix: Callable | None = None
    # R2.10 for a table: ``n`` -> (the first n training rows as stored, a pandas frame,
    # and the inputs the network receives for them). None: nothing to show as rows.
    rows_as_stored: Callable | None = None
    # Text: each split's texts as stored and their integer labels (a corpus is read
    # whole, so they fit), for the baselines that read words (TF-IDF), and the
    # vectoriser's vocabulary, id by id (0 padding, 1 out-of-vocabulary). None: no text.
    texts: dict[str, tuple[list[str], np.ndarray]] | None = None
    vocabulary: tuple[str, ...] | None = None

    @property
    def fit_train(self) -> tf.data.Dataset:
        """The training split as ``fit`` sees it: ``train``, mixed when ``data.mix`` is set
        (and, training data-parallel on JAX, its last batch cut to split evenly)."""
        train = self.train if self.mix is None else self.train.map(self.mix, num_parallel_calls=1)
        return even_batches(train)

    @property
    def fit_val(self) -> tf.data.Dataset:
        """The validation split as ``fit`` sees it: ``val`` (cut like ``fit_train``)."""
        return even_batches(self.val)

    def steps_per_epoch(self, batch_size: int) -> int:
        """Training batches per epoch (the last one may be partial): places LR schedules."""
        return -(-self.sizes["train"] // batch_size)


def make_builder(cfg: DataConfig) -> tfds.core.DatasetBuilder:
    """The TFDS builder for ``cfg.dataset``, prepared (downloaded or generated) on first use."""
    kind = dataset_kind(cfg.dataset)
    data_dir = cfg.data_dir or None
    if kind == "folder":
        root = Path(cfg.dataset).expanduser()
        check_folder(root, split_names(cfg))
        return tfds.folder_dataset.ImageFolder(str(root), shape=(None, None, cfg.channels or 3))
    if kind == "embedded":
        from recipe_keras.datasets.digits import Digits

        create = functools.partial(Digits, data_dir=data_dir)
    else:
        name = cfg.dataset.split(":")[0].split("/")[0]
        if name not in tfds.list_builders(with_community_datasets=False):
            raise ConfigError(
                f"data.dataset = {cfg.dataset!r} is neither a folder "
                f"({Path(cfg.dataset).resolve()} does not exist) nor a TFDS catalog name; give "
                "an image folder's path or a name from https://www.tensorflow.org/datasets/catalog"
            )
        create = functools.partial(_catalog_builder, cfg.dataset, data_dir)
    builder = create()
    if builder.is_prepared():
        return builder
    # Processes started together (make tune WORKERS=N) prepare it once: the others wait,
    # then read what the first wrote (a builder made before that has no splits).
    with _prepare_lock(Path(builder.data_dir).parent.with_name(f".{builder.name}.lock")):
        builder = create()
        if builder.is_prepared():
            return builder
        if kind != "embedded":
            _require_network(cfg)
        # Preparing draws from Python's random (TFDS's shuffling), which seeds Keras's
        # weights: without this, a first run (data prepared) and a second drew other weights.
        state = random.getstate()
        try:
            builder.download_and_prepare()
        finally:
            random.setstate(state)
    return builder


def _catalog_builder(dataset: str, data_dir: str | None) -> tfds.core.DatasetBuilder:
    """``tfds.builder``, its refusal of a version or config as one line naming the value."""
    try:
        return tfds.builder(dataset, data_dir=data_dir)
    except (AssertionError, ValueError, KeyError) as exc:
        reason = " ".join(str(exc).split()).rsplit('}": ', 1)[-1] or type(exc).__name__
        reason = reason if len(reason) <= 300 else reason[:297] + "..."
        raise ConfigError(f"data.dataset = {dataset!r}: {reason}") from exc


@contextlib.contextmanager
def _prepare_lock(path: Path):
    """An exclusive lock on ``path`` across processes (POSIX; elsewhere none)."""
    try:
        import fcntl
    except ImportError:  # Windows
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# Where TFDS's prepared datasets live; reaching it says whether a download can work.
NETWORK_PROBE = "https://storage.googleapis.com/tfds-data/"
NETWORK_TIMEOUT = 5.0


def _require_network(cfg: DataConfig) -> None:
    """Fail in seconds, not after TFDS's minutes of retries, when a download cannot work.

    The probe goes through urllib, so HTTPS_PROXY and NO_PROXY apply as they do to TFDS.
    """
    import urllib.error
    import urllib.request

    try:
        opener = urllib.request.build_opener()  # reads the proxy variables now
        opener.open(urllib.request.Request(NETWORK_PROBE, method="HEAD"), timeout=NETWORK_TIMEOUT)
    except urllib.error.HTTPError:
        return  # an answer, even a refusal, means the network is there
    except (OSError, ValueError) as error:
        reason = getattr(error, "reason", error)
        where = cfg.data_dir or "~/tensorflow_datasets"
        raise OSError(
            f"data.dataset = {cfg.dataset!r} is not prepared in {where} and the network "
            f"cannot be reached ({reason}): run `tfds build {cfg.dataset} --data_dir DIR` "
            "(or make train) where there is network, copy DIR here and set data.data_dir to it"
        ) from error


# Pixels per image above which an image is refused at its stored size (data.image_size
# = []): the CNN's flattened features grow with them (512 x 512: 10M weights in its
# last layer for 10 classes; a 3000 x 4000 photo: 96M parameters and an out-of-memory
# kill with no message).
MAX_STORED_PIXELS = 512 * 512


def load_splits(cfg: DataConfig, seed: int, extra_train: tf.data.Dataset | None = None) -> Splits:
    """Load train/val/test as normalised, cached, batched and prefetched pipelines.

    ``extra_train``: examples of your own (synthetic or generated, R4.3) added to the
    training split, as unbatched (image, label) pairs stored as the dataset's are:
    uint8 pixels of shape (height, width, channels) and integer labels. They join
    before preprocessing, so they are resized, shuffled, augmented and mixed with the
    rest, and counted in ``sizes["train"]``; validation and test never see them.
    """
    builder = make_builder(cfg)
    image_key, label_key = builder.info.supervised_keys or ("image", "label")
    label = builder.info.features[label_key]
    if label.num_classes < 2:
        raise ConfigError(
            f"data.dataset = {cfg.dataset!r} has {label.num_classes} class; a classifier needs "
            "two classes or more"
        )
    stored = tuple(builder.info.features[image_key].shape)
    splits = {"train": cfg.train_split, "val": cfg.val_split, "test": cfg.test_split}
    raw = {name: read_split(builder, split) for name, split in splits.items()}
    if cfg.train_fraction < 1.0:  # R4.1: the first share, in the split's stored order
        keep = max(1, round(cfg.train_fraction * _size(raw["train"])))
        raw["train"] = raw["train"].take(keep)
    if extra_train is not None:
        raw["train"] = raw["train"].concatenate(_like(extra_train, raw["train"]))
    height, width = cfg.image_size or _stored_size(stored, raw["train"])
    if not cfg.image_size and height * width > MAX_STORED_PIXELS:
        raise ConfigError(
            f"data.image_size = []: the images are stored at {height}x{width}, too large to "
            f"train on as they are (over {MAX_STORED_PIXELS} pixels); set data.image_size, "
            "e.g. [224, 224]"
        )
    input_shape = (height, width, cfg.channels or stored[-1])
    sizes = {name: _size(ds) for name, ds in raw.items()}
    storage = storage_plan(cfg, sizes, input_shape)
    epoch = tf.Variable(0, dtype=tf.int64, trainable=False)
    mix = None
    if cfg.mix:
        from recipe_keras.mixing import mixer  # imports Keras: only once it is chosen

        mix = mixer(cfg.mix, seed, label.num_classes)
    return Splits(
        **{
            name: make_pipeline(
                ds,
                cfg,
                input_shape,
                training=name == "train",
                seed=seed,
                epoch=epoch if name == "train" else None,
                storage=storage,
                name=name,
            )
            for name, ds in raw.items()
        },
        input_shape=input_shape,
        num_classes=label.num_classes,
        class_names=tuple(label.names),
        sizes=sizes,
        folder=str(Path(cfg.dataset).expanduser()) if dataset_kind(cfg.dataset) == "folder" else "",
        epoch=epoch,
        mix=mix,
    )


def _like(extra: tf.data.Dataset, ds: tf.data.Dataset) -> tf.data.Dataset:
    """``extra``'s (image, label) pairs in ``ds``'s dtypes, or a clear error."""
    spec, theirs = ds.element_spec, extra.element_spec
    if not (isinstance(theirs, tuple) and len(theirs) == 2 and len(theirs[0].shape) == 3):
        raise ValueError(
            f"extra_train must yield unbatched (image, label) pairs, images of shape "
            f"(height, width, channels); got {theirs}"
        )
    if theirs[0].shape[-1] != spec[0].shape[-1]:
        raise ValueError(
            f"extra_train's images have {theirs[0].shape[-1]} channels, the dataset's "
            f"{spec[0].shape[-1]}"
        )
    image_type, label_type = spec[0].dtype, spec[1].dtype
    return extra.map(lambda x, y: (tf.cast(x, image_type), tf.cast(y, label_type)))


def make_pipeline(
    ds: tf.data.Dataset,
    cfg: DataConfig,
    input_shape: tuple[int, ...],
    *,
    training: bool,
    seed: int,
    epoch: tf.Variable | None = None,
    storage: Storage | None = None,
    name: str = "split",
) -> tf.data.Dataset:
    """Cast to float in [0, 1], fix size and channels, cache, shuffle and augment (train), batch.

    ``storage``: where decoded examples stay between passes ("memory", "disk": a file
    cache named ``name``, "none"), the shuffle's block and tf.data's memory budget
    (``storage.storage_plan``; None: in memory, as configured).

    ``epoch``: the training order is a function of the seed and this variable's value
    when a pass starts, not of how many passes this process has made: ``model.fit``
    with the recipe's callbacks sets it to the epoch (``train.ShuffleByEpoch``), so a
    run resumed at epoch k in a new process sees epoch k's order. A pass read to its
    end (a loop of your own) moves it on by one, so each pass is shuffled anew; one
    read in part (the checks' first batches) leaves it. Without ``epoch``, a seeded
    shuffle reshuffles at each pass, counted by this process.
    """
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

    storage = storage or Storage("memory", cfg.shuffle_buffer, None)
    # Streamed ("none"), the shuffle holds examples as stored (uint8: a quarter of their
    # float32 size) and they are decoded after it: the same order either way.
    streamed = storage.keep == "none" and training and epoch is not None
    if not streamed:
        ds = ds.map(preprocess, num_parallel_calls=tf.data.AUTOTUNE)
    if storage.keep != "none" and ds.cardinality() >= 0:
        # A reader stopped part-way (``take(1)``, a check's first batches) can make the
        # input report its end early while it is torn down; the cache would then keep
        # that prefix as the whole split, for every later pass. Asserting the size
        # turns the early end into an error the cache discards.
        ds = ds.apply(tf.data.experimental.assert_cardinality(ds.cardinality()))
    if storage.keep == "memory":
        ds = ds.cache()
    elif storage.keep == "disk":
        ds = ds.cache(str(cache_folder(name)))
    return order_and_batch(
        ds,
        cfg,
        training=training,
        seed=seed,
        epoch=epoch,
        storage=storage,
        streamed=streamed,
        decode=preprocess,
    )


def order_and_batch(
    ds: tf.data.Dataset,
    cfg: DataConfig,
    *,
    training: bool,
    seed: int,
    epoch: tf.Variable | None = None,
    storage: Storage | None = None,
    streamed: bool = False,
    decode: Callable | None = None,
) -> tf.data.Dataset:
    """Examples (cached or not) to batches: the training split in its epoch's order,
    augmented as configured; ``make_pipeline``'s second half, for any task.

    ``streamed``: the examples are still as stored, and ``decode`` maps each once it
    has its place in the order.
    """
    storage = storage or Storage("memory", cfg.shuffle_buffer, None)
    block = storage.block
    if training and epoch is None:
        ds = ds.shuffle(block, seed=seed, reshuffle_each_iteration=True).batch(cfg.batch_size)
    elif training:
        examples, source = ds.cardinality(), ds

        def in_epoch_order(_):
            return shuffled_in_blocks(source, block, seed, epoch)

        ds = tf.data.Dataset.from_tensors(0).flat_map(in_epoch_order)  # whole blocks
        if streamed:  # each example decoded in its place
            ds = ds.unbatch().map(decode, num_parallel_calls=tf.data.AUTOTUNE)
            ds = ds.batch(cfg.batch_size)
        else:  # cut as unbatch().batch() would, without a pass per example
            ds = ds.rebatch(cfg.batch_size)
    else:
        ds = ds.batch(cfg.batch_size)
    if training and cfg.augment:
        from recipe_keras.augment import augmenter  # imports Keras: only once it is chosen

        augment = augmenter(cfg.augment, seed)
        ds = ds.map(lambda x, y: (augment(x, training=True), y), num_parallel_calls=1)
    ds = ds.prefetch(tf.data.AUTOTUNE)
    if storage.ram_budget is not None:
        options = tf.data.Options()
        options.autotune.ram_budget = storage.ram_budget
        ds = ds.with_options(options)
    if training and epoch is not None:
        batched = ds

        def end_of_pass(_):  # reached only when a reader asks past the last batch
            return batched.take(epoch.assign_add(1) * 0)

        ds = ds.concatenate(tf.data.Dataset.from_tensors(0).flat_map(end_of_pass))
        if examples >= 0:  # keep the size known: Keras counts an epoch's steps by it
            batches = -(-examples // cfg.batch_size)
            ds = ds.apply(tf.data.experimental.assert_cardinality(batches))
    return ds


BLOCKS = 1_000_003  # at most per epoch: block b of epoch e is seeded (seed, e * BLOCKS + b)


def shuffled_in_blocks(
    ds: tf.data.Dataset, block: int, seed: int, epoch: tf.Variable | tf.Tensor
) -> tf.data.Dataset:
    """``ds`` in an order drawn from ``seed`` and ``epoch`` alone: each run of ``block``
    examples sorted by stateless random keys, one element per block (``unbatch`` it
    for examples).

    Stateless keys (``tf.random.stateless_uniform``, one draw per block, seeded from
    (seed, epoch, block)) make the order a pure function of those, as a resumed run
    needs; tf.data's own shuffle takes its seed through TensorFlow's global seed, which
    a tensor seed cannot be combined with. Like a shuffle buffer of ``block`` examples,
    it holds one block in memory and mixes examples within that distance of each other.
    """
    seed = tf.constant(seed, tf.int64)

    def sorted_block(b, example):
        n = tf.shape(tf.nest.flatten(example)[0])[0]
        keys = tf.random.stateless_uniform([n], seed=[seed, tf.cast(epoch, tf.int64) * BLOCKS + b])
        order = tf.argsort(keys)
        return tf.nest.map_structure(lambda t: tf.gather(t, order), example)

    return ds.batch(block).enumerate().map(sorted_block)


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


def first_batches(dataset, n: int | Callable[[int], int]) -> list[tuple[np.ndarray, np.ndarray]]:
    """The first ``n`` (x, y) batches as arrays; short ones left out if any are full.

    ``n`` may be a function of the first batch's size. One pass over ``dataset``:
    a second would be reshuffled, and R2.1 compares the first pass after seeding.
    """
    batches = []
    for x, y in dataset:
        if callable(n):
            n = n(len(y))
        if len(batches) >= n:
            break
        batches.append((to_numpy(x), to_numpy(y)))
    full = [b for b in batches if len(b[1]) == len(batches[0][1])]
    return full or batches


def to_numpy(x) -> np.ndarray:
    """A tensor of any backend (or tf.data's) as a NumPy array."""
    import keras  # only once the backend is chosen

    return np.asarray(keras.ops.convert_to_numpy(x))


def labels_of(dataset: tf.data.Dataset) -> np.ndarray:
    """All labels of a batched (x, y) pipeline, in its order, as integers.

    The pipeline decodes every example on the way: on a large split that takes a
    while, so it says so every few seconds."""
    from recipe_keras.progress import ticking  # imports Keras: only once it is chosen

    batches = ticking(dataset, "reading labels")
    return np.concatenate([np.asarray(y).ravel() for _, y in batches]).astype(int)


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
