"""The network: ``build_model`` is the one place to change the architecture.

Start from a proven zoo model (R3.1, "don't be a hero"), picked in config.toml,
and replace it here with your own once the recipe's checks pass, as in
keras-io's mnist_convnet:

    return keras.Sequential([
        keras.Input(input_shape),
        keras.layers.Conv2D(32, 3, padding="same", activation="relu"),
        keras.layers.MaxPooling2D(),
        keras.layers.Flatten(),
        keras.layers.Dense(num_classes),  # logits: the loss has from_logits=True
    ])

Every step (train, check, tune, ladder, learning curve) builds through this
function and compiles with the recipe's defaults. Optional, beside it:
``compile_model(model, config, steps_per_epoch, epochs)`` to compile your own
way, and ``build_trial_model(hp, input_shape, num_classes, config)`` for a
search that draws more than config.toml's [tune.space].
"""

import keras
from recipe_keras import models
from recipe_keras.config import ModelConfig


def build_model(input_shape: tuple[int, ...], num_classes: int, config: ModelConfig) -> keras.Model:
    """A fresh, uncompiled model that maps images to ``num_classes`` logits."""
    return models.from_config(config, input_shape, num_classes)
