"""What the checks examine: the project's own pipeline and model, plus a step loop."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import keras
import numpy as np
import tensorflow as tf
from scipy.special import softmax

from recipe_keras.compile import build_optimizer
from recipe_keras.config import ModelConfig
from recipe_keras.data import Splits, first_batches, labels_of, to_numpy
from recipe_keras.models import flat_layers
from recipe_keras.seed import set_seed
from recipe_keras.task import Task

__all__ = [
    "Batches",
    "Run",
    "Subject",
    "as_probabilities",
    "evenly_spaced",
    "first_batches",
    "fit_steps",
    "labels_of",
    "outputs_are_probabilities",
    "precise_batchnorm",
    "predictions_of",
    "restore_state",
    "seed_again",
    "state_of",
    "to_numpy",
]


@dataclass
class Subject:
    """The project under check.

    ``load_splits`` builds the data pipeline (the same call ``make train`` makes);
    ``build`` returns a fresh *compiled* model for a model config, so checks can
    ask for a wider one (R2.9); ``seed`` is the project's seed; ``preloaded``
    saves loading the splits again when the caller already has them. ``compile``
    compiles another model as the project compiles its own (R2.7's linear
    baseline); by default as ``make train`` compiles with the recipe's defaults.
    """

    load_splits: Callable[[], Splits]
    build: Callable[[ModelConfig], keras.Model]
    model_config: ModelConfig
    seed: int
    preloaded: Splits | None = None
    compile: Callable[[keras.Model], keras.Model] | None = None
    # What kind of problem it is (recipe_keras.task): how its inputs are shown (R2.10).
    task: Task | None = None
    # The project's model, built once, and its state (variables, then optimizer's) at init.
    _shared: keras.Model | None = field(default=None, init=False, repr=False)
    _initial: list[np.ndarray] = field(default_factory=list, init=False, repr=False)
    # test_sample's samples, by size: (pipeline, labels).
    _samples: dict[int, tuple[tf.data.Dataset, np.ndarray]] = field(
        default_factory=dict, init=False, repr=False
    )

    @functools.cached_property
    def splits(self) -> Splits:
        """The pipelines the checks train on: ``preloaded``, or loaded right after seeding.

        Loading right after seeding is what a fresh run does, so R2.1 can take the
        suite's own training as one of its two runs (``make check`` seeds, then loads).
        """
        if self.preloaded is not None:
            return self.preloaded
        set_seed(self.seed, deterministic=None)
        return self.load_splits()

    @functools.cached_property
    def train_labels(self) -> np.ndarray:
        """Every training label, read once (R2.5 priors, R2.7 majority class)."""
        return labels_of(self.splits.train)

    def test_sample(self, n: int, batch: int) -> tuple[tf.data.Dataset, np.ndarray]:
        """``n`` test examples spread over the split (``evenly_spaced``), and their labels.

        Built and read whole once: R2.7 scores on it, R2.11 follows its first examples.
        A cached pipeline read only in part is left half-written, and TensorFlow warns
        of it when the iterator goes ("The calling iterator did not fully read the
        dataset being cached"): R2.11 took the first batch of ``val``, and every
        ``make check`` on the digits printed that warning twice.
        """
        if n not in self._samples:
            splits = self.splits
            # A project's own Splits may not know its test size: then count it, once.
            size = splits.sizes.get("test") or len(labels_of(splits.test))
            test = evenly_spaced(splits.test, size, n, batch)
            self._samples[n] = test, labels_of(test)  # evaluation pipelines keep their order
        return self._samples[n]

    def model(self, reseed: bool = True, **changes) -> keras.Model:
        """The project's compiled model in its freshly initialised, seeded state.

        The checks train the project's model five times (R2.1 twice, R2.7 twice,
        R2.8). A new model object is traced and compiled again at its first step (on
        JAX one to two seconds each), so the same object is handed out each time with
        every variable (weights, BatchNorm statistics, dropout seed state) and the
        optimizer's state restored to their initial values. With ``changes`` (R2.9's
        wider model) a new model is built.

        ``reseed=False`` leaves the global RNGs where they are; the model's own seed
        state is restored either way, but torch's Keras dropout draws from torch's
        global generator. A run compared with a fresh one (R2.1) needs the reseed.
        """
        if changes:
            return self.build_seeded(**changes)
        if self._shared is None:
            model = self.build_seeded()
            build_optimizer(model)  # its state exists from now on (once: compile may have)
            self._shared = model
            self._initial = state_of(model)
        else:
            restore_state(self._shared, self._initial)
            if reseed:
                seed_again(self.seed)
        return self._shared

    def build_seeded(self, **changes) -> keras.Model:
        """A new compiled model built after seeding, optionally with other config values."""
        seed_again(self.seed)
        return self.build(replace(self.model_config, **changes))

    def linear_model(self) -> keras.Model:
        """The zoo's linear model for these inputs (a text's: of its bag of words), seeded
        and compiled like the project's."""
        from recipe_keras import models
        from recipe_keras.compile import compile_model
        from recipe_keras.config import TrainConfig

        seed_again(self.seed)
        splits = self.splits
        if splits.vocabulary is not None:
            # Token ids are no quantities: a text's linear model is linear in its bag of
            # words (fastText: its tokens' vectors averaged, then a dense layer).
            width = splits.num_classes
            model = models.bag_of_embeddings(
                splits.input_shape, width, width, vocabulary=len(splits.vocabulary)
            )
        else:
            model = models.linear(splits.input_shape, splits.num_classes, width=0)
        if self.compile is None:
            return compile_model(model, TrainConfig())
        return self.compile(model)

    @property
    def initial_weights(self) -> list[np.ndarray]:
        """The shared model's variables at init (built on first use)."""
        if self._shared is None:
            self.model()
        return self._initial[: len(self._shared.variables)]

    def train_batches(self, n: int | Callable[[int], int]) -> list[tuple[np.ndarray, np.ndarray]]:
        """Up to ``n`` batches of the training pipeline, exactly as fit receives them.

        ``n`` may be a function of the batch size (the suite's step count grows for
        small batches), read from the first batch of the same pass.

        A short last batch is left out when there are full ones: on JAX each new
        batch shape costs a recompilation, and the checks cycle over these batches.
        """
        return first_batches(self.splits.train, n)


def seed_again(seed: int) -> None:
    """``set_seed`` with the kernels the project chose (a rerun within the checks)."""
    set_seed(seed, deterministic=None)


def evenly_spaced(dataset: tf.data.Dataset, size: int, n: int, batch: int) -> tf.data.Dataset:
    """``n`` examples spread evenly over a batched (x, y) pipeline of ``size``; cached.

    Not the split's head: TFDS shuffles the catalog's splits and image folders as it
    writes them, but a project's own loader may keep a test split sorted by class,
    and its first 2,000 examples are then one or two classes, so R2.7's bounds (the
    commonest class's share, the labels' entropy) would be those of another dataset.
    Example i is kept when floor((i+1) n / size) passes floor(i n / size): exactly
    ``n`` of them, one per stretch of size / n, whatever size the batches come in
    (a running count). Each batch is masked in place (per example, tf.data took 2-4
    times as long over 10,000 images), and the sample rebatched at ``batch``, the
    size the model is already traced for: reading the pipeline's first batch to learn
    its size would leave a cached pipeline half-written (see ``Subject.test_sample``).
    The sample is cached, as it is read up to six times.
    ``n`` of 0, or not under ``size``: the pipeline.
    """
    if not n or n >= size:
        return dataset

    def pick(start: tf.Tensor, xy: tuple[tf.Tensor, tf.Tensor]):
        x, y = xy
        count = tf.shape(y, out_type=tf.int64)[0]
        i = start + tf.range(count)
        keep = (i + 1) * n // size > i * n // size
        return start + count, (tf.boolean_mask(x, keep), tf.boolean_mask(y, keep))

    return dataset.scan(tf.constant(0, tf.int64), pick).unbatch().batch(batch).cache()


def _state(model: keras.Model) -> list:
    """Everything a training step changes: the model's variables, then its optimizer's."""
    return [*model.variables, *model.optimizer.variables]


def state_of(model: keras.Model) -> list[np.ndarray]:
    """A copy of everything a training step changes (``restore_state`` puts it back)."""
    return [to_numpy(v) for v in _state(model)]


def restore_state(model: keras.Model, values: Sequence[np.ndarray]) -> None:
    """Put back a ``state_of`` copy: weights, BatchNorm statistics, seeds, optimizer."""
    for variable, value in zip(_state(model), values, strict=True):
        variable.assign(value)


def fit_steps(
    model: keras.Model,
    batches: Sequence[tuple[np.ndarray, np.ndarray]],
    steps: int,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    stop_below: float | None = None,
    until: Callable[[list[float]], bool] | None = None,
    every: int = 1,
) -> list[float]:
    """Train ``steps`` steps cycling over ``batches``; the loss of each step.

    Each step is Keras's ``train_on_batch``, whose metrics start afresh, so its
    logged loss is that step's own. Keras callbacks see each step's end. The run
    ends early once a step's loss is under ``stop_below``, or once
    ``until(losses)``, asked every ``every`` steps and at the last, is true;
    ``until`` may read and change the model (R2.7 scores it mid-run). Batches it
    reuses go in as tensors, converted once (``_as_tensors``).
    """
    build_optimizer(model)  # before the first step: on TF it saves a second trace
    record = _StepLosses(steps, stop_below, until, every)
    if steps < 1:
        return record.losses
    hooks = keras.callbacks.CallbackList([*callbacks, record], model=model)
    hooks.on_train_begin()
    model.stop_training = False
    fed = _as_tensors(batches) if steps > len(batches) else batches
    for step in range(steps):
        logs = model.train_on_batch(*fed[step % len(fed)], return_dict=True)
        hooks.on_train_batch_end(step, logs)
        if model.stop_training:
            break
    hooks.on_train_end()
    return record.losses


# Batches up to this size in all are converted to tensors once when fit_steps reuses them.
TENSOR_BYTES = 256 * 2**20


def _as_tensors(batches: Sequence[tuple[np.ndarray, np.ndarray]]) -> Sequence[tuple]:
    """The batches as backend tensors, converted once: each reuse then saves a conversion.

    ``train_on_batch`` converts NumPy inputs at every call, and R2.8 trains one batch
    of 8 up to 500 times, so the conversion is a large share of each step there.
    Kept only up to ``TENSOR_BYTES`` (they are a second copy).
    """
    if sum(np.asarray(x).nbytes + np.asarray(y).nbytes for x, y in batches) > TENSOR_BYTES:
        return batches
    convert = keras.ops.convert_to_tensor
    return [(convert(x), convert(y)) for x, y in batches]


class _StepLosses(keras.callbacks.Callback):
    """Each step's loss from its logs, and ``fit_steps``'s rules for stopping."""

    def __init__(self, steps, stop_below, until, every):
        super().__init__()
        self.steps, self.stop_below, self.until, self.every = steps, stop_below, until, every
        self.losses: list[float] = []

    def on_train_batch_end(self, batch, logs=None):
        loss = float(logs["loss"])
        self.losses.append(loss)
        done = len(self.losses)
        asked = self.until is not None and (done % self.every == 0 or done == self.steps)
        stop = self.stop_below is not None and loss < self.stop_below
        if asked and not stop:
            stop = self.until(self.losses)
        if stop:
            self.model.stop_training = True


def precise_batchnorm(
    model: keras.Model, batches: Sequence[tuple[np.ndarray, np.ndarray]], max_batches: int = 8
) -> int:
    """Set each BatchNormalization layer's moving statistics to their mean over ``batches``.

    The checks train for a few dozen steps. At Keras's momentum of 0.99 the moving
    averages are then still mostly their initial values (0.99^50 = 0.61), so the
    model in inference mode predicts badly although it has learnt: R2.7 and R2.8
    failed a correct conv-BatchNorm net on every backend. Forward passes in
    training mode with momentum (k-1)/k leave the mean of the first ``max_batches``
    batches' statistics ("precise BN", Wu & Johnson 2021). Frozen layers keep
    theirs. Returns how many layers were re-estimated.
    """
    norms = [
        layer
        for layer in flat_layers(model)
        if isinstance(layer, keras.layers.BatchNormalization) and layer.trainable
    ]
    if not norms:
        return 0
    momenta = [layer.momentum for layer in norms]
    try:
        for k, (x, _) in enumerate(batches[:max_batches], start=1):
            for layer in norms:
                layer.momentum = (k - 1) / k  # read at each eager call
            model(x, training=True)
    finally:
        for layer, momentum in zip(norms, momenta, strict=True):
            layer.momentum = momentum
    return len(norms)


Batches = Sequence[tuple[np.ndarray, np.ndarray]]


Run = tuple[Batches, list[float]]  # the batches a short run saw, and its losses


def outputs_are_probabilities(outputs: np.ndarray) -> bool:
    """Whether every row of a classifier's outputs is already a probability distribution."""
    outputs = np.asarray(outputs, dtype="float64")
    return bool(np.all(outputs >= 0) and np.allclose(outputs.sum(axis=-1), 1.0, atol=1e-3))


def as_probabilities(outputs: np.ndarray) -> np.ndarray:
    """Class probabilities from a classifier's outputs: logits, or already probabilities."""
    outputs = np.asarray(outputs, dtype="float64")
    if outputs_are_probabilities(outputs):
        return outputs
    return softmax(outputs, axis=-1)


def predictions_of(model: keras.Model, pairs) -> np.ndarray:
    """The model's outputs over every (x, y) batch of ``pairs``, one batch shape for ``predict``.

    A short last batch is padded to the first batch's size: on TensorFlow a new
    shape traces ``predict`` again, a cost per new shape; padding is
    safe because each example's output depends on itself only (R2.12).
    """
    outputs, size = [], None
    for x, _ in pairs:
        x = to_numpy(x)
        n = len(x)
        size = size or n
        if n < size:
            x = np.concatenate([x, np.zeros((size - n, *x.shape[1:]), x.dtype)])
        outputs.append(to_numpy(model.predict_on_batch(x))[:n])
    return np.concatenate(outputs)
