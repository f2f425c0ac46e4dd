"""R4.3, creative augmentation: MixUp and CutMix, which mix two training examples
and their labels, so the labels fed to ``fit`` become soft (one weight per class).

The mixing is Keras's own (``keras.layers.MixUp``, ``keras.layers.CutMix``), run in
tf.data on every backend, on training batches only: ``Splits.fit_train`` is the
training split as ``fit`` sees it, while ``Splits.train`` stays unmixed with integer
labels for everything that reads labels (class priors, the checks, the baselines,
the whole-split evaluation). A model that trains on mixed batches is compiled with
the loss and accuracy below, which take soft labels (training) and integer labels
(validation, evaluation) alike.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import tensorflow as tf

from recipe_keras.config import MIXES

__all__ = [
    "MixedLabelAccuracy",
    "MixedLabelCrossentropy",
    "mixed_label_accuracy",
    "mixer",
    "require_soft_labels",
]


def mixer(name: str, seed: int, num_classes: int) -> Callable:
    """A tf.data map over (images, integer labels) batches: mixed images, soft labels.

    Each image is mixed with another of its batch; its label becomes the two
    one-hot labels weighted by each one's share (MixUp: the blend's weight drawn from
    Beta(0.2, 0.2); CutMix: the share of the area each image keeps).
    """
    if name not in MIXES:
        raise ValueError(f"unknown mix {name!r}; expected one of {', '.join(MIXES)}")
    layer = (
        keras.layers.MixUp(alpha=0.2, seed=seed)
        if name == "mixup"
        else keras.layers.CutMix(factor=1.0, seed=seed)
    )

    def mix(images, labels):
        one_hot = tf.one_hot(tf.cast(tf.reshape(labels, [-1]), tf.int32), num_classes)
        mixed = layer({"images": images, "labels": one_hot}, training=True)
        return mixed["images"], mixed["labels"]

    return mix


def _soft(y_true, y_pred) -> bool:
    """Soft labels are one weight per class: the logits' shape."""
    return len(y_true.shape) == len(y_pred.shape) and y_true.shape[-1] == y_pred.shape[-1]


@keras.saving.register_keras_serializable(package="recipe_keras")
class MixedLabelCrossentropy(keras.losses.Loss):
    """Cross-entropy from logits against soft labels (mixed training batches) or
    integer labels (validation and test), chosen by the labels' shape."""

    def __init__(self, name: str = "mixed_label_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)

    def call(self, y_true, y_pred):
        if _soft(y_true, y_pred):
            return keras.losses.categorical_crossentropy(y_true, y_pred, from_logits=True)
        return keras.losses.sparse_categorical_crossentropy(y_true, y_pred, from_logits=True)


def mixed_label_accuracy(y_true, y_pred):
    """Whether the top logit is the label's class (a soft label's heaviest class)."""
    if _soft(y_true, y_pred):
        y_true = keras.ops.argmax(y_true, axis=-1)
    return keras.metrics.sparse_categorical_accuracy(y_true, y_pred)


@keras.saving.register_keras_serializable(package="recipe_keras")
class MixedLabelAccuracy(keras.metrics.MeanMetricWrapper):
    """Accuracy for soft or integer labels (see ``mixed_label_accuracy``)."""

    def __init__(self, name: str = "accuracy", dtype=None):
        super().__init__(fn=mixed_label_accuracy, name=name, dtype=dtype)

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype}


def require_soft_labels(model: keras.Model, mix: str) -> None:
    """Stop a model compiled for integer labels only from training on mixed batches,
    naming the fix: Keras would fail deep inside its first step on the labels' shape
    (torch: at the symbolic build, before any callback runs)."""
    loss = getattr(model, "loss", None)
    sparse = isinstance(loss, keras.losses.SparseCategoricalCrossentropy) or loss in (
        "sparse_categorical_crossentropy",
        keras.losses.sparse_categorical_crossentropy,
    )
    if mix and sparse:
        from recipe_keras.config import ConfigError

        raise ConfigError(
            f"data.mix = {mix!r} makes the training labels soft, but the model is compiled "
            "with a sparse (integer-label) cross-entropy; compile it with "
            "recipe_keras.train.compile_model(..., soft_labels=True), or give your own "
            "compile_model recipe_keras.mixing.MixedLabelCrossentropy and MixedLabelAccuracy"
        )
