"""R3.1 "don't be a hero": a small zoo of proven architectures to start from.

Every model ends in a linear layer that outputs logits (no softmax): the loss
is compiled with ``from_logits=True``, which is both stable and the one form
that is correct on every backend.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
from keras import layers

__all__ = ["ZOO", "build"]


def _head(num_classes: int, dropout: float) -> list[layers.Layer]:
    """The logits layer, after dropout when asked for (R4.9)."""
    return [*([layers.Dropout(dropout)] if dropout else []), layers.Dense(num_classes)]


def linear(
    input_shape: tuple[int, ...], num_classes: int, width: int, dropout: float = 0.0
) -> keras.Model:
    """Multinomial logistic regression: the baseline every other model must beat."""
    del width  # a linear model has no width
    return keras.Sequential(
        [keras.Input(input_shape), layers.Flatten(), *_head(num_classes, dropout)], name="linear"
    )


def mlp(
    input_shape: tuple[int, ...], num_classes: int, width: int, dropout: float = 0.0
) -> keras.Model:
    """Two hidden ReLU layers of ``4 * width`` units."""
    return keras.Sequential(
        [
            keras.Input(input_shape),
            layers.Flatten(),
            layers.Dense(4 * width, activation="relu"),
            layers.Dense(4 * width, activation="relu"),
            *_head(num_classes, dropout),
        ],
        name="mlp",
    )


def cnn(
    input_shape: tuple[int, ...], num_classes: int, width: int, dropout: float = 0.0
) -> keras.Model:
    """keras.io's mnist_convnet with 'same' padding, so 8x8 inputs do not collapse to 1x1."""
    return keras.Sequential(
        [
            keras.Input(input_shape),
            layers.Conv2D(width, 3, padding="same", activation="relu"),
            layers.MaxPooling2D(2, padding="same"),
            layers.Conv2D(2 * width, 3, padding="same", activation="relu"),
            layers.MaxPooling2D(2, padding="same"),
            layers.Flatten(),
            *_head(num_classes, dropout),
        ],
        name="cnn",
    )


ZOO: dict[str, Callable[..., keras.Model]] = {
    "linear": linear,
    "mlp": mlp,
    "cnn": cnn,
}


def build(
    name: str,
    input_shape: tuple[int, ...],
    num_classes: int,
    width: int = 32,
    dropout: float = 0.0,
) -> keras.Model:
    """Build zoo model ``name`` for images of ``input_shape`` and ``num_classes`` classes."""
    if name not in ZOO:
        raise ValueError(f"unknown model {name!r}; the zoo has: {', '.join(ZOO)}")
    return ZOO[name](tuple(input_shape), num_classes, width, dropout)
