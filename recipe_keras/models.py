"""R3.1 "don't be a hero": a small zoo of proven architectures to start from.

Every model ends in a linear layer that outputs logits (no softmax): the loss
is compiled with ``from_logits=True``, which is both stable and the one form
that is correct on every backend.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
from keras import layers

__all__ = ["ZOO", "build", "flat_layers", "from_config"]


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


def resnet50(
    input_shape: tuple[int, ...],
    num_classes: int,
    width: int,
    dropout: float = 0.0,
    pretrained: bool = False,
    fine_tune: bool = True,
) -> keras.Model:
    """keras.applications' ResNet-50 (v2) with a new logits head; ImageNet weights optional.

    The v2 variant because its preprocessing is a plain rescaling to [-1, 1] (a
    layer here, so the model takes the pipeline's [0, 1] inputs and saves
    cleanly); v1's caffe preprocessing also reverses the channels.
    """
    del width  # a fixed architecture
    if len(input_shape) != 3 or input_shape[2] != 3 or min(input_shape[:2]) < 32:
        raise ValueError(
            f"resnet50 needs images of at least 32x32 with 3 channels, got {tuple(input_shape)}; "
            "set data.image_size = [32, 32] (or larger) and data.channels = 3"
        )
    try:
        base = keras.applications.ResNet50V2(
            include_top=False,
            weights="imagenet" if pretrained else None,
            input_shape=tuple(input_shape),
            pooling="avg",
        )
    except Exception as exc:  # the weights download: offline, proxy, disk
        if not pretrained:
            raise
        raise RuntimeError(
            f"model.pretrained = true downloads ImageNet weights (~100 MB) once: {exc}"
        ) from exc
    base.trainable = fine_tune or not pretrained
    inputs = keras.Input(input_shape)
    x = layers.Rescaling(2.0, offset=-1.0)(inputs)  # [0, 1] -> [-1, 1], ResNet v2's range
    x = base(x, training=False if pretrained and not fine_tune else None)
    outputs = keras.Sequential(_head(num_classes, dropout), name="head")(x)
    return keras.Model(inputs, outputs, name="resnet50")


ZOO: dict[str, Callable[..., keras.Model]] = {
    "linear": linear,
    "mlp": mlp,
    "cnn": cnn,
    "resnet50": resnet50,
}


def build(
    name: str,
    input_shape: tuple[int, ...],
    num_classes: int,
    width: int = 32,
    dropout: float = 0.0,
    **options: bool,
) -> keras.Model:
    """Build zoo model ``name`` for images of ``input_shape`` and ``num_classes`` classes.

    ``options``: resnet50's ``pretrained`` and ``fine_tune``.
    """
    if name not in ZOO:
        raise ValueError(f"unknown model {name!r}; the zoo has: {', '.join(ZOO)}")
    return ZOO[name](tuple(input_shape), num_classes, width, dropout, **options)


def flat_layers(model: keras.Layer) -> list[keras.Layer]:
    """A model's layers in order, each nested model replaced by its own layers.

    ``model.layers`` stops at a nested model: resnet50's is [rescaling, ResNet50V2,
    head], so the first convolution, the BatchNormalization layers and the final
    Dense sit one level down, where the checks that look for them must go too.
    Layers held inside a custom (non-Model) layer are not listed.
    """
    flat = []
    for layer in getattr(model, "layers", []):
        flat.extend(flat_layers(layer) if hasattr(layer, "layers") else [layer])
    return flat


def from_config(config, input_shape: tuple[int, ...], num_classes: int) -> keras.Model:
    """The zoo model a ``[model]`` config table names, with all its settings."""
    options = {"pretrained": config.pretrained, "fine_tune": config.fine_tune}
    return build(
        config.name,
        input_shape,
        num_classes,
        config.width,
        config.dropout,
        **(options if config.name == "resnet50" else {}),
    )
