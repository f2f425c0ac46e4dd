"""Where the data comes from: config.toml's task reads its [data] table.

To bring your own source, return a ``recipe_keras.data.Splits`` from
``load_data``: every step (inspect, check, train, tune) reads what it returns.
"""

from recipe_keras.config import Config
from recipe_keras.data import Splits
from recipe_keras.task import get_task


def load_data(config: Config) -> Splits:
{%- if cookiecutter.task == "text_classification" %}
    """Batched train/val/test pipelines of token ids (tf.data, fed to any backend); the
    vectoriser keeps as many tokens as the model's embedding has rows."""
    task = get_task(config.task)
    return task.load_splits(config.data, seed=config.seed, vocabulary=config.model.vocabulary)
{%- else %}
    """Batched, normalised train/val/test pipelines (tf.data, fed to any backend)."""
    return get_task(config.task).load_splits(config.data, seed=config.seed)
{%- endif %}
