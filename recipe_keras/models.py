"""R3.1 "don't be a hero": a small zoo of proven architectures to start from.

Every model ends in a linear layer that outputs logits (no softmax): the loss
is compiled with ``from_logits=True``, which is both stable and the one form
that is correct on every backend.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import keras
from keras import layers, ops

__all__ = ["TEXT_MODELS", "ZOO", "PositionEmbedding", "build", "flat_layers", "from_config"]


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


def _token_inputs() -> keras.KerasTensor:
    """Token ids of any length (0 padding): make check's padding check trims the
    padding away and expects the same output."""
    return keras.Input((None,), dtype="int32", name="tokens")


def bag_of_embeddings(
    input_shape: tuple[int, ...],
    num_classes: int,
    width: int,
    dropout: float = 0.0,
    vocabulary: int = 20_000,
) -> keras.Model:
    """fastText (Joulin et al. 2017): the mean of a text's token vectors, padding masked,
    then a linear layer; word order is ignored."""
    return keras.Sequential(
        [
            _token_inputs(),
            layers.Embedding(vocabulary, width, mask_zero=True),
            layers.GlobalAveragePooling1D(),  # the mask leaves padding out of the mean
            *_head(num_classes, dropout),
        ],
        name="bag_of_embeddings",
    )


def conv1d(
    input_shape: tuple[int, ...],
    num_classes: int,
    width: int,
    dropout: float = 0.0,
    vocabulary: int = 20_000,
) -> keras.Model:
    """Two 1-D convolutions over token vectors (n-gram detectors, after Kim 2014), then
    a masked mean over the text's positions.

    A convolution passes no mask on: padding vectors are zeroed before it and left
    out of the mean by the mask given to the pooling, so padding changes nothing.
    """
    tokens = _token_inputs()
    mask = ops.not_equal(tokens, 0)
    x = layers.Embedding(vocabulary, width)(tokens)
    x = x * ops.expand_dims(ops.cast(mask, x.dtype), -1)
    x = layers.Conv1D(width, 3, padding="same", activation="relu")(x)
    x = x * ops.expand_dims(ops.cast(mask, x.dtype), -1)
    x = layers.Conv1D(width, 3, padding="same", activation="relu")(x)
    x = layers.GlobalAveragePooling1D()(x, mask=mask)
    outputs = keras.Sequential(_head(num_classes, dropout), name="head")(x)
    return keras.Model(tokens, outputs, name="conv1d")


@keras.saving.register_keras_serializable(package="recipe_keras")
class PositionEmbedding(layers.Layer):
    """Adds a learnt vector per position (up to ``length``) to token vectors; passes
    their padding mask on. Any shorter sequence takes the first positions."""

    def __init__(self, length: int, **kwargs):
        super().__init__(**kwargs)
        self.length = length
        self.supports_masking = True

    def build(self, input_shape):
        self.positions = self.add_weight(
            shape=(self.length, input_shape[-1]), initializer="glorot_uniform", name="positions"
        )

    def call(self, x):
        return x + ops.cast(self.positions[: ops.shape(x)[1]], x.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "length": self.length}


def transformer(
    input_shape: tuple[int, ...],
    num_classes: int,
    width: int,
    dropout: float = 0.0,
    vocabulary: int = 20_000,
) -> keras.Model:
    """One Transformer encoder block (Vaswani et al. 2017) from Keras layers: token and
    position vectors, self-attention over the text (padding masked), a feed-forward
    layer, both residual with layer normalisation, then a masked mean."""
    tokens = _token_inputs()
    x = layers.Embedding(vocabulary, width, mask_zero=True)(tokens)
    x = PositionEmbedding(int(input_shape[0]))(x)
    heads = 4 if width % 4 == 0 else 1
    attended = layers.MultiHeadAttention(heads, width // heads)(x, x)
    x = layers.LayerNormalization()(layers.Add()([x, attended]))
    forward = layers.Dense(2 * width, activation="relu")(x)
    x = layers.LayerNormalization()(layers.Add()([x, layers.Dense(width)(forward)]))
    x = layers.GlobalAveragePooling1D()(x)
    outputs = keras.Sequential(_head(num_classes, dropout), name="head")(x)
    return keras.Model(tokens, outputs, name="transformer")


ZOO: dict[str, Callable[..., keras.Model]] = {
    "linear": linear,
    "mlp": mlp,
    "cnn": cnn,
    "resnet50": resnet50,
    "bag_of_embeddings": bag_of_embeddings,
    "conv1d": conv1d,
    "transformer": transformer,
}
# The zoo's models of token ids (task = "text_classification"): those that take the
# vocabulary's size (model.vocabulary) as their embedding's rows.
TEXT_MODELS = tuple(n for n, f in ZOO.items() if "vocabulary" in inspect.signature(f).parameters)


def build(
    name: str,
    input_shape: tuple[int, ...],
    num_classes: int,
    width: int = 32,
    dropout: float = 0.0,
    **options: bool | int,
) -> keras.Model:
    """Build zoo model ``name`` for images of ``input_shape`` and ``num_classes`` classes.

    ``options``: resnet50's ``pretrained`` and ``fine_tune``; a text model's ``vocabulary``.
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
    options = {}
    if config.name == "resnet50":
        options = {"pretrained": config.pretrained, "fine_tune": config.fine_tune}
    elif config.name in TEXT_MODELS:
        options = {"vocabulary": config.vocabulary}
    return build(config.name, input_shape, num_classes, config.width, config.dropout, **options)
