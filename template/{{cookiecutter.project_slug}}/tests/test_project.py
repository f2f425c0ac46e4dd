"""The project's own tests: fast checks that its config, data and model fit together.

`make test` runs them; they pass at birth and should keep passing as you edit.
"""

{% if cookiecutter.task != "tabular_regression" -%}
import math

{% endif -%}
import keras
import numpy as np
import pytest
from recipe_keras.config import load_config

from {{ cookiecutter.project_slug }}.data import load_data
from {{ cookiecutter.project_slug }}.model import build_model


@pytest.fixture(scope="module")
def config():
    return load_config("config.toml")


@pytest.fixture(scope="module")
def splits(config):
    return load_data(config)


def test_backend_is_the_configured_one(config):
    import os

    assert keras.backend.backend() == os.environ.get("KERAS_BACKEND", config.backend)


{% if cookiecutter.task == "tabular_regression" -%}
def test_batches_are_encoded_rows_with_finite_targets(splits, config):
    rows, targets = next(iter(splits.train))
    rows, targets = np.asarray(rows), np.asarray(targets)
    assert rows.shape[1:] == splits.input_shape
    assert rows.shape[0] <= config.data.batch_size
    assert rows.dtype == np.float32 and np.isfinite(rows).all()  # missing values filled
    assert targets.shape == (rows.shape[0], 1) and np.isfinite(targets).all()


def test_model_starts_at_the_target_variance(splits, config):
    # R2.4 and R2.5: with its bias at the training mean, a fresh model's squared error
    # is about the targets' variance around that mean.
    from recipe_keras.train import init_to_mean

    keras.utils.set_random_seed(config.seed)
    model = build_model(splits.input_shape, splits.num_classes, config.model)
    model.compile(loss="mse")
    init = init_to_mean(model, splits)
    rows, targets = next(iter(splits.train))
    assert tuple(model(rows, training=False).shape) == (rows.shape[0], 1)
    expected = init.numbers["target_variance"]
    assert abs(init.numbers["loss_after"] - expected) < 0.5 * expected
{%- else -%}
{% if cookiecutter.task == "tabular_classification" -%}
def test_batches_are_encoded_rows_with_valid_labels(splits, config):
    rows, labels = next(iter(splits.train))
    rows, labels = np.asarray(rows), np.asarray(labels)
    assert rows.shape[1:] == splits.input_shape
    assert rows.shape[0] <= config.data.batch_size
    assert rows.dtype == np.float32 and np.isfinite(rows).all()  # missing values filled
    assert set(labels.tolist()) <= set(range(splits.num_classes))
{% elif cookiecutter.task == "text_classification" -%}
def test_batches_are_token_ids_with_valid_labels(splits, config):
    ids, labels = next(iter(splits.train))
    ids, labels = np.asarray(ids), np.asarray(labels)
    assert ids.shape[1:] == splits.input_shape  # data.sequence_length ids per text
    assert ids.shape[0] <= config.data.batch_size
    # 0 is padding, 1 a token outside the vocabulary, and no id beyond the embedding.
    assert ids.min() >= 0 and ids.max() < min(config.model.vocabulary, len(splits.vocabulary))
    assert set(labels.tolist()) <= set(range(splits.num_classes))
{% else -%}
def test_batches_are_normalised_images_with_valid_labels(splits, config):
    images, labels = next(iter(splits.train))
    images, labels = np.asarray(images), np.asarray(labels)
    assert images.shape[1:] == splits.input_shape
    assert images.shape[0] <= config.data.batch_size
    assert images.dtype == np.float32
    assert 0.0 <= images.min() and images.max() <= 1.0
    assert set(labels.tolist()) <= set(range(splits.num_classes))
{% endif %}

def test_model_starts_at_the_uniform_loss(splits, config):
    # R2.4: a fresh model should be unsure of every class, loss ~ -log(1/C).
    keras.utils.set_random_seed(config.seed)
    model = build_model(splits.input_shape, splits.num_classes, config.model)
    inputs, labels = next(iter(splits.train))
    logits = model(np.asarray(inputs), training=False)
    assert tuple(logits.shape) == (inputs.shape[0], splits.num_classes)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(labels, logits)
    expected = -math.log(1 / splits.num_classes)
    assert abs(float(loss) - expected) < 0.25 * expected
{%- endif %}
