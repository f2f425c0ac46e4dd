"""The network: ``build_model`` is the one place to change the architecture.

Every step (train, check, tune, ladder, learning curve) builds through it, and
compiles it as train.py shows. It starts as the zoo's proven {{ cookiecutter.__net }} (R3.1,
"don't be a hero"), written out here; another zoo model is one config key away
(config.toml's model.name: {{ "bag_of_embeddings, conv1d, transformer" if cookiecutter.task == "text_classification" else "linear, mlp, cnn, resnet50" }}). Change the layers once the
recipe's checks pass. Optional, beside it: ``compile_model(model, config,
steps_per_epoch, epochs)`` to compile your own way in every step, and
``build_trial_model(hp, input_shape, num_classes, config)`` for a search that draws
more than config.toml's [tune.space].
"""

import keras
from keras import layers{{ ", ops" if cookiecutter.__net == "conv1d" else "" }}
from recipe_keras import models
from recipe_keras.config import ModelConfig


def build_model(input_shape: tuple[int, ...], num_classes: int, config: ModelConfig) -> keras.Model:
{%- if cookiecutter.task == "tabular_regression" %}
    """A fresh, uncompiled model that maps encoded table rows to the predicted target
    (``num_classes`` is 1: one output)."""
{%- elif cookiecutter.task == "text_classification" %}
    """A fresh, uncompiled model that maps token ids (0 is padding) to ``num_classes``
    logits. ``input_shape`` is (data.sequence_length,); the network takes any length,
    so make check can trim the padding and see that nothing changes."""
{%- else %}
    """A fresh, uncompiled model that maps {{ "encoded table rows" if cookiecutter.task.startswith("tabular_") else "images" }} to ``num_classes`` logits."""
{%- endif %}
    if config.name != {{ cookiecutter.__net | tojson }}:
        return models.from_config(config, input_shape, num_classes)  # the zoo's
{%- if cookiecutter.__net != "linear" %}
    width = config.width  # make check's R2.9 widens it to see that capacity helps
{%- endif %}
{%- if cookiecutter.__net == "conv1d" %}
    tokens = keras.Input((None,), dtype="int32")  # token ids of any length
    mask = ops.not_equal(tokens, 0)  # 0 is padding
    # A convolution passes no mask on: padded positions are zeroed before each one,
    # and the mean over positions leaves them out.
    x = layers.Embedding(config.vocabulary, width)(tokens)
    x = x * ops.expand_dims(ops.cast(mask, x.dtype), -1)
    x = layers.Conv1D(width, 3, padding="same", activation="relu")(x)  # 3-gram detectors
    x = x * ops.expand_dims(ops.cast(mask, x.dtype), -1)
    x = layers.Conv1D(width, 3, padding="same", activation="relu")(x)
    x = layers.GlobalAveragePooling1D()(x, mask=mask)
    # Dropout before the logits (R4.9); none at model.dropout = 0.
    x = layers.Dropout(config.dropout)(x) if config.dropout else x
    logits = layers.Dense(num_classes)(x)  # no softmax: the loss has from_logits=True
    return keras.Model(tokens, logits, name="conv1d")
{%- elif cookiecutter.__net == "transformer" %}
    tokens = keras.Input((None,), dtype="int32")  # token ids of any length
    x = layers.Embedding(config.vocabulary, width, mask_zero=True)(tokens)  # 0: padding
    x = models.PositionEmbedding(input_shape[0])(x)  # a learnt vector per position
    # One encoder block: self-attention (padding masked), a feed-forward layer, each
    # added back and normalised.
    heads = 4 if width % 4 == 0 else 1
    attended = layers.MultiHeadAttention(heads, width // heads)(x, x)
    x = layers.LayerNormalization()(layers.Add()([x, attended]))
    forward = layers.Dense(2 * width, activation="relu")(x)
    x = layers.LayerNormalization()(layers.Add()([x, layers.Dense(width)(forward)]))
    x = layers.GlobalAveragePooling1D()(x)  # the mean over the text, padding masked
    # Dropout before the logits (R4.9); none at model.dropout = 0.
    x = layers.Dropout(config.dropout)(x) if config.dropout else x
    logits = layers.Dense(num_classes)(x)  # no softmax: the loss has from_logits=True
    return keras.Model(tokens, logits, name="transformer")
{%- else %}
    return keras.Sequential(
        [
{%- if cookiecutter.__net == "bag_of_embeddings" %}
            keras.Input((None,), dtype="int32"),  # token ids of any length
            # One vector per token; id 0 (padding) is masked from what follows.
            layers.Embedding(config.vocabulary, width, mask_zero=True),
            layers.GlobalAveragePooling1D(),  # the mean of the text's vectors (fastText)
{%- else %}
            keras.Input(input_shape),
{%- endif %}
{%- if cookiecutter.__net == "cnn" %}
            # 'same' padding, so 8x8 inputs do not collapse to 1x1.
            layers.Conv2D(width, 3, padding="same", activation="relu"),
            layers.MaxPooling2D(2, padding="same"),
            layers.Conv2D(2 * width, 3, padding="same", activation="relu"),
            layers.MaxPooling2D(2, padding="same"),
            layers.Flatten(),
{%- elif cookiecutter.__net == "mlp" %}
            layers.Flatten(),
            layers.Dense(4 * width, activation="relu"),
            layers.Dense(4 * width, activation="relu"),
{%- elif cookiecutter.__net == "linear" %}
            layers.Flatten(),  # a linear model has no width
{%- endif %}
            # Dropout before the logits (R4.9); none at model.dropout = 0.
            *([layers.Dropout(config.dropout)] if config.dropout else []),
{%- if cookiecutter.task == "tabular_regression" %}
            # The prediction, on the target's own scale: no activation, so the loss
            # (mean squared error) and R2.5's bias at the target mean apply as they are.
{%- else %}
            # Logits, no softmax: the loss has from_logits=True.
{%- endif %}
            layers.Dense(num_classes),
        ],
        name={{ cookiecutter.__net | tojson }},
    )
{%- endif %}
