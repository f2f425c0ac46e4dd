"""The task seam: a task registered from outside the library, with no edit to it,
runs `make check` and `make train` on every backend; an unknown task fails in one line.

The toy task is a two-feature numeric table whose label is a linear rule
(x0 + 2 x1 > 0): a network and a linear model both learn it, so the numbers can
be checked against NumPy and scikit-learn references.
"""

from __future__ import annotations

import types

import keras
import numpy as np
import pytest
import tensorflow as tf

from recipe_keras import train as recipe
from recipe_keras.checks.suite import check_project
from recipe_keras.config import ConfigError
from recipe_keras.data import Splits
from recipe_keras.project import Project
from recipe_keras.seed import set_seed
from recipe_keras.task import Task, get_task, register, task_names
from tests.conftest import project_config

pytestmark = pytest.mark.backend

SIZES = {"train": 800, "val": 200, "test": 400}


def _rule(seed: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    x = np.random.default_rng(seed).normal(size=(n, 2)).astype("float32")
    return x, (x[:, 0] + 2 * x[:, 1] > 0).astype("int64")


class LinearRule(Task):
    """Two numeric features; the label says which side of a line they lie on."""

    name = "toy_linear_rule"

    def load_splits(self, data, seed: int) -> Splits:
        made = {}
        for i, (split, n) in enumerate(SIZES.items()):
            x, y = _rule(seed + i, n)
            ds = tf.data.Dataset.from_tensor_slices((x, y))
            if split == "train":
                ds = ds.shuffle(n, seed=seed)
            made[split] = ds.batch(data.batch_size).prefetch(2)
        return Splits(
            **made,
            input_shape=(2,),
            num_classes=2,
            class_names=("below", "above"),
            sizes=dict(SIZES),
        )


def _network(input_shape, num_classes, config) -> keras.Model:
    return keras.Sequential(
        [
            keras.Input(input_shape),
            keras.layers.Dense(config.width, activation="relu"),
            # Small logits at init: unsure of both classes (R2.4).
            keras.layers.Dense(
                num_classes, kernel_initializer=keras.initializers.RandomNormal(0.0, 0.01)
            ),
        ],
        name="table_mlp",
    )


def _run(config):
    """The generated train.py's run, on this project."""
    set_seed(config.seed, config.deterministic)
    splits = DATA.load_data(config)
    model = NETWORK.build_model(splits.input_shape, splits.num_classes, config.model)
    recipe.compile_as(NETWORK, model, splits, config)
    init = recipe.init_from_priors(model, splits)
    history = model.fit(
        splits.fit_train,
        validation_data=splits.fit_val,
        epochs=config.train.epochs,
        shuffle=False,
        callbacks=recipe.callbacks(config, splits),
        verbose=0,
    )
    return recipe.evaluate(model, history, splits, config, init=init)


TASK = register(LinearRule())
DATA = types.SimpleNamespace(
    load_data=lambda config: get_task(config.task).load_splits(config.data, config.seed)
)
NETWORK = types.SimpleNamespace(build_model=_network)


def _project(tmp_path, tfds_dir) -> Project:
    config = project_config(
        tmp_path,
        tfds_dir,
        task="toy_linear_rule",
        model={"width": 16},
        train={"epochs": 8, "learning_rate": 3e-3},
    )
    return Project(config, tmp_path / "config.toml", DATA, NETWORK, types.SimpleNamespace(run=_run))


def test_a_task_registered_from_outside_runs_check_and_train(tmp_path, tfds_dir):
    assert "toy_linear_rule" in task_names() and "image_classification" in task_names()
    project = _project(tmp_path, tfds_dir)
    assert project.task is TASK

    results = {r.recipe_id + " " + r.name: r for r in check_project(project, verbose=False)}
    failed = {name: r.advice for name, r in results.items() if r.verdict == "fail"}
    assert not failed
    # R2.10 asks the task: a heat map of the features (not an image grid), and no
    # [0, 1] rule for inputs that are standardised numbers.
    inputs = next(r for name, r in results.items() if name.startswith("R2.10 what enters"))
    assert inputs.verdict == "pass" and inputs.numbers["min"] < 0
    assert (tmp_path / "reports" / inputs.figures[0]).stat().st_size > 3000

    report = project.train()
    n = report.numbers
    assert n["test_accuracy"] > 0.95  # the rule is learnable
    # R2.7's converged linear model against scikit-learn's on the same arrays.
    from sklearn.linear_model import LogisticRegression

    x, y = _rule(project.config.seed, SIZES["train"])
    xt, yt = _rule(project.config.seed + 2, SIZES["test"])
    reference = LogisticRegression(max_iter=1000).fit(x, y).score(xt, yt)
    assert n["linear_test_accuracy"] == pytest.approx(reference, abs=1.5 / SIZES["test"])
    # The task's default look inside: activation statistics, no image of a first layer.
    assert report.details["activations"] and n["first_layer_noise"] is None
    assert report.figures == ["train_curves.png"]
    assert (tmp_path / "reports" / "train.json").is_file()


def test_an_unknown_task_names_the_known_ones():
    with pytest.raises(ConfigError, match="task = 'tabel' is not a known task; known: "):
        get_task("tabel")
    with pytest.raises(ConfigError, match="cannot import it"):
        get_task("no_such_module:Task")
    # A task of your own by its import path: imported once, then known by that path.
    assert isinstance(get_task("tests.test_tasks:LinearRule"), LinearRule)
    with pytest.raises(ValueError, match="must be an identifier"):
        register(Task())


def test_a_score_says_which_way_is_better_and_by_how_much():
    from recipe_keras.task import Score, get_task

    accuracy = get_task("image_classification").score
    assert accuracy.gain(0.97, 0.95) == pytest.approx(0.02)
    assert accuracy.best({"linear": 0.9, "trees": 0.93}) == "trees"
    assert accuracy.under(0.9, 0.93) and not accuracy.under(0.94, 0.93)
    rmse = get_task("tabular_regression").score
    assert rmse == Score("rmse", higher_is_better=False, label="RMSE")
    # An error: the share of the baseline's error removed; the lowest error is best.
    assert rmse.gain(1.8, 2.0) == pytest.approx(0.1)
    assert rmse.best({"linear": 2.0, "trees": 2.1}) == "linear"
    assert rmse.under(2.05, 2.0) and not rmse.under(1.9, 2.0)


def test_regression_scores_match_scikit_learn():
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    from recipe_keras.baselines import regression_scores

    rng = np.random.default_rng(0)
    y = rng.normal(5, 2, 200)
    predicted = y + rng.normal(0, 0.5, 200)
    found = regression_scores(y, predicted)
    assert found["test_loss"] == pytest.approx(mean_squared_error(y, predicted))
    assert found["test_rmse"] == pytest.approx(mean_squared_error(y, predicted) ** 0.5)
    assert found["test_mae"] == pytest.approx(mean_absolute_error(y, predicted))
    assert found["test_r2"] == pytest.approx(r2_score(y, predicted))
    # The mean predicts with R² 0 and an RMSE of the targets' standard deviation.
    at_mean = regression_scores(y, np.full_like(y, y.mean()))
    assert at_mean["test_r2"] == pytest.approx(0.0, abs=1e-12)
    assert at_mean["test_rmse"] == pytest.approx(np.std(y))
