"""Where the data comes from: config.toml's [data] table picks the source.

To bring your own source, return a ``recipe_keras.data.Splits`` from
``load_data``: every step (inspect, check, train, tune) reads what it returns.
"""

from recipe_keras.config import Config
from recipe_keras.data import Splits, load_splits


def load_data(config: Config) -> Splits:
    """Batched, normalised train/val/test pipelines (tf.data, fed to any backend)."""
    return load_splits(config.data, seed=config.seed)
