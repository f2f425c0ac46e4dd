"""The network: ``build_model`` is the one place to change the architecture.

Start from a proven zoo model (R3.1, "don't be a hero"), picked in config.toml,
and replace it here with your own once the recipe's checks pass. Return logits,
not probabilities: the loss is compiled with ``from_logits=True``.
"""

import keras
from recipe_keras import models
from recipe_keras.config import ModelConfig


def build_model(input_shape: tuple[int, ...], num_classes: int, config: ModelConfig) -> keras.Model:
    """A fresh, uncompiled model that maps images to ``num_classes`` logits."""
    return models.from_config(config, input_shape, num_classes)
