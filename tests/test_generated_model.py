"""The generated model.py writes the zoo's model out as layers: on every backend it
builds the very network ``models.from_config`` builds (same layers, same seeded
weights), and hands any other ``model.name`` to the zoo."""

from __future__ import annotations

import dataclasses
import importlib.util

import keras
import numpy as np
import pytest

from recipe_keras import models
from recipe_keras.config import ModelConfig
from recipe_keras.seed import set_seed
from tests.conftest import render

pytestmark = pytest.mark.backend


def _model_module(project):
    path = project / "digits_classifier" / "model.py"
    spec = importlib.util.spec_from_file_location(f"generated_model_{project.parent.name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module, path.read_text()


def _weights(model: keras.Model) -> list[np.ndarray]:
    return [keras.ops.convert_to_numpy(w) for w in model.weights]


@pytest.mark.parametrize("name", ["cnn", "mlp", "linear"])
def test_the_generated_network_is_the_zoos(tmp_path, name):
    project = render(tmp_path / name, model=name)
    module, text = _model_module(project)
    assert "models.from_config" in text and "layers.Dense(num_classes)" in text
    if name == "cnn":
        assert text.count("layers.Conv2D(") == 2  # the network in sight, not a zoo call
    for config in (ModelConfig(name=name, width=8), ModelConfig(name=name, dropout=0.25)):
        set_seed(3)
        ours = module.build_model((8, 8, 1), 10, config)
        set_seed(3)
        zoo = models.from_config(config, (8, 8, 1), 10)
        assert [type(layer) for layer in ours.layers] == [type(layer) for layer in zoo.layers]
        assert ours.count_params() == zoo.count_params()
        for a, b in zip(_weights(ours), _weights(zoo), strict=True):
            np.testing.assert_array_equal(a, b)
    # Another zoo name is the zoo's model.
    other = "linear" if name != "linear" else "mlp"
    config = dataclasses.replace(ModelConfig(), name=other)
    assert module.build_model((8, 8, 1), 10, config).name == other
