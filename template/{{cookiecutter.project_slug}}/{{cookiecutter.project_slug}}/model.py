"""The network: ``build_model`` is the one place to change the architecture.

Every step (train, check, tune, ladder, learning curve) builds through it, and
compiles it as train.py shows. It starts as the zoo's proven {{ cookiecutter.__net }} (R3.1,
"don't be a hero"), written out here; another zoo model is one config key away
(config.toml's model.name: linear, mlp, cnn, resnet50). Change the layers once the
recipe's checks pass. Optional, beside it: ``compile_model(model, config,
steps_per_epoch, epochs)`` to compile your own way in every step, and
``build_trial_model(hp, input_shape, num_classes, config)`` for a search that draws
more than config.toml's [tune.space].
"""

import keras
from keras import layers
from recipe_keras import models
from recipe_keras.config import ModelConfig


def build_model(input_shape: tuple[int, ...], num_classes: int, config: ModelConfig) -> keras.Model:
{%- if cookiecutter.task == "tabular_regression" %}
    """A fresh, uncompiled model that maps encoded table rows to the predicted target
    (``num_classes`` is 1: one output)."""
{%- else %}
    """A fresh, uncompiled model that maps {{ "encoded table rows" if cookiecutter.task.startswith("tabular_") else "images" }} to ``num_classes`` logits."""
{%- endif %}
    if config.name != {{ cookiecutter.__net | tojson }}:
        return models.from_config(config, input_shape, num_classes)  # the zoo's
{%- if cookiecutter.__net != "linear" %}
    width = config.width  # make check's R2.9 widens it to see that capacity helps
{%- endif %}
    return keras.Sequential(
        [
            keras.Input(input_shape),
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
{%- else %}
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
