"""Tables, regression (task = "tabular_regression") on the current Keras backend: the
embedded Abalone table trained, checked and inspected from a rendered project, its
scores against NumPy references, planted bugs caught by make check's regression
checks, and one line for each kind of bad target."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recipe_keras.config import ConfigError, DataConfig
from recipe_keras.tabular import load_table_splits, read_tables
from tests.conftest import render, run_step

pytestmark = pytest.mark.backend
BACKEND = os.environ.get("KERAS_BACKEND", "tensorflow")


def test_a_rendered_regression_project_trains_checks_and_inspects_abalone(tmp_path):
    import keras

    project = render(tmp_path, task="tabular_regression", backend=BACKEND)
    config = (project / "config.toml").read_text()
    assert 'task = "tabular_regression"' in config and 'dataset = "abalone"' in config
    proc = run_step(project, "train", "train.epochs=12", "data.batch_size=64", "train.verbose=0")
    assert "test RMSE" in proc.stdout and "(the mean " in proc.stdout
    report = json.loads((project / "reports" / "train.json").read_text())
    n, details = report["numbers"], report["details"]
    # Abalone's 4,177 rows carved 70/10/20, seeded; one output named after the target.
    assert details["sizes"] == {"train": 2923, "val": 418, "test": 836}
    assert details["class_names"] == ["rings"]
    # The references: the carved table's own targets, read by pandas.
    data = DataConfig(dataset="abalone")
    frames, target = read_tables(data, seed=42)
    y_train = frames["train"][target].to_numpy(float)
    y_test = frames["test"][target].to_numpy(float)
    mean_rmse = math.sqrt(np.mean((y_test - y_train.mean()) ** 2))
    assert n["mean_rmse"] == pytest.approx(mean_rmse, rel=1e-5)
    assert n["mean_r2"] == pytest.approx(1 - mean_rmse**2 / np.var(y_test), abs=1e-5)
    # The saved model's predictions on the whole test split give train.json's RMSE, MAE, R².
    model = keras.models.load_model(project / "artifacts" / "model.keras")
    splits = load_table_splits(data, 42, regression=True, verbose=False)
    rows = np.concatenate([np.asarray(x) for x, _ in splits.test])
    ys = np.concatenate([np.asarray(y) for _, y in splits.test]).ravel()
    np.testing.assert_allclose(np.sort(ys), np.sort(y_test), rtol=1e-6)
    error = np.asarray(model.predict(rows, verbose=0)).ravel() - ys
    assert n["test_rmse"] == pytest.approx(math.sqrt(np.mean(error**2)), rel=1e-3)
    assert n["test_mae"] == pytest.approx(np.mean(np.abs(error)), rel=1e-3)
    assert n["test_r2"] == pytest.approx(1 - np.mean(error**2) / np.var(ys), abs=2e-3)
    # R2.5: the bias at the training mean brings the loss at init to about the variance.
    assert n["init_loss_after"] < 0.2 * n["init_loss_before"]
    assert n["init_loss_after"] == pytest.approx(np.var(y_train), rel=0.35)
    # The network is set beside the ridge and the trees, and R2.7's verdict follows them.
    assert n["test_rmse"] < 0.8 * n["mean_rmse"]
    assert 1.9 <= n["linear_test_rmse"] <= 2.1 and 1.9 <= n["trees_test_rmse"] <= 2.15
    gain = (n["linear_test_rmse"] - n["test_rmse"]) / n["linear_test_rmse"]
    assert n["beats_linear_by"] == pytest.approx(gain)
    fair = gain >= 0.01 and n["test_rmse"] <= n["trees_test_rmse"]
    assert report["verdicts"]["R2.7"] == ("pass" if fair else "warn")

    run_step(project, "check")
    check = json.loads((project / "reports" / "check.json").read_text())
    verdicts = {c["recipe_id"]: c["verdict"] for c in check["details"]["checks"]}
    for rid in ("R2.4", "R2.5", "R2.7", "R2.8", "R2.12", "R2.1"):
        assert verdicts[rid] == "pass", check["details"]["checks"]
    # R2.10: the first training rows as stored beside what the network receives; each
    # number normalised by the training split's mean and deviation (FeatureSpace's).
    rows = pd.read_csv(project / "reports" / "check_inputs_rows.csv")
    assert list(rows["row"]) == [f"train:{i}" for i in frames["train"].index[:8]]
    for _, row in rows.iterrows():
        encoded = np.array(row["network input"].split(), dtype=float)
        assert len(encoded) == 11  # 7 numbers, sex one-hot over F, I, M and unseen
        for column in ("length", "shell_weight", "whole_weight"):
            train = frames["train"][column]
            z = (row[column] - train.mean()) / train.std(ddof=0)
            assert np.isclose(encoded, z, atol=1e-3).any(), (column, z, encoded)

    run_step(project, "inspect")
    audit = json.loads((project / "reports" / "inspect.json").read_text())
    checks = {c["name"]: c for c in audit["details"]["checks"]}
    spread = checks["target distribution"]["numbers"]["per_split"]
    assert spread["train"]["mean"] == pytest.approx(y_train.mean())
    assert checks["target noise"]["numbers"]["cv_rmse"] < mean_rmse
    assert (project / "reports" / "inspect" / "target.png").is_file()
    # R1.8: the saved model's worst test rows, as stored, its errors as computed above.
    errors = checks["model errors (worst rows)"]
    assert errors["numbers"]["rmse"] == pytest.approx(math.sqrt(np.mean(error**2)), rel=1e-3)
    worst = audit["details"]["findings"]["top_loss"]
    assert worst[0]["loss"] == pytest.approx(np.max(error**2), rel=1e-3)
    assert [w["loss"] for w in worst] == sorted((w["loss"] for w in worst), reverse=True)
    table = pd.read_csv(project / "reports" / "inspect" / "worst_rows.csv")
    assert list(table["row"]) == [w["id"] for w in worst]
    assert {"sex", "length", "rings", "predicted", "loss"} <= set(table.columns)
    first = frames["test"].loc[int(worst[0]["id"].split(":")[1])]
    assert float(table["rings"].iloc[0]) == first["rings"]


def _table(tmp_path: Path, frame: pd.DataFrame) -> str:
    path = tmp_path / "table.csv"
    frame.to_csv(path, index=False)
    return str(path)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (["1.5", "2", "oops", "4"] * 10, "holds 'oops', not a finite number"),
        ([3.0] * 40, "holds 3 in every training row: there is nothing to predict"),
    ],
)
def test_bad_targets_stop_in_one_line(tmp_path, values, message):
    frame = pd.DataFrame({"x": np.arange(len(values), dtype=float), "y": values})
    data = DataConfig(dataset=_table(tmp_path, frame), target="y")
    with pytest.raises(ConfigError, match=message):
        load_table_splits(data, 0, regression=True, verbose=False)


def _subject(tmp_path: Path, output: str | None):
    """A regression subject on a learnable table, its model's output activation planted."""
    import keras

    from recipe_keras.checks.subject import Subject
    from recipe_keras.compile import compile_model
    from recipe_keras.config import ModelConfig, TrainConfig
    from recipe_keras.task import get_task

    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 3))
    frame = pd.DataFrame(x, columns=["a", "b", "c"]).assign(y=20 + 3 * x[:, 0] - 2 * x[:, 1])
    data = DataConfig(dataset=_table(tmp_path, frame), target="y", batch_size=32)
    splits = load_table_splits(data, 0, regression=True, verbose=False)
    task = get_task("tabular_regression")

    def build(config: ModelConfig):
        keras.utils.set_random_seed(0)
        model = keras.Sequential(
            [
                keras.Input(splits.input_shape),
                keras.layers.Dense(config.width, activation="relu"),
                keras.layers.Dense(1, activation=output),
            ]
        )
        return compile_model(model, TrainConfig(learning_rate=3e-3), task=task)

    return Subject(lambda: splits, build, ModelConfig(name="mlp", width=32), 0, splits, task=task)


def test_the_regression_overfit_check_fails_an_output_that_cannot_reach_the_targets(tmp_path):
    from recipe_keras.checks.regression import check_overfit_targets

    passed = check_overfit_targets(_subject(tmp_path, None), max_steps=400)
    assert passed.verdict == "pass", passed
    # A sigmoid caps every prediction at 1; the targets sit near 20.
    failed = check_overfit_targets(_subject(tmp_path, "sigmoid"), max_steps=400)
    assert failed.verdict == "fail"
    assert failed.numbers["final_loss"] > 100 * failed.numbers["threshold"]
    assert "an output activation that cannot reach the targets" in failed.advice


def test_every_later_step_reads_a_regression_by_its_rmse(tmp_path):
    import keras

    project = render(tmp_path, task="tabular_regression", backend=BACKEND)
    config = (project / "config.toml").read_text()
    assert '"data.augment"' not in config  # a table's ladder has no image rungs
    reports = project / "reports"
    quick = ("train.verbose=0", "data.batch_size=128")
    run_step(project, "ladder", "ladder.epochs=2", *quick)
    ladder = json.loads((reports / "ladder.json").read_text())
    rows = ladder["details"]["rows"]
    assert [r["change"] for r in rows] == ["base", "model.width = 128", "model.dropout = 0.25"]
    assert ladder["numbers"]["best_rung"] == min(rows, key=lambda r: r["val_rmse"])["rung"]
    assert rows[1]["delta_val_rmse"] == pytest.approx(rows[1]["val_rmse"] - rows[0]["val_rmse"])
    again = run_step(project, "ladder", "ladder.epochs=2", *quick)  # an interrupted ladder resumes
    assert again.stdout.count("(already trained)") == 3

    run_step(
        project, "learning-curve", "learning_curve.fractions=[0.5, 1.0]", "learning_curve.epochs=2"
    )
    curve = json.loads((reports / "learning_curve.json").read_text())
    points = curve["details"]["points"]
    assert [p["examples"] for p in points] == [1462, 2923]
    gain = (points[0]["val_rmse"] - points[1]["val_rmse"]) / points[0]["val_rmse"]
    assert curve["numbers"]["last_gain"] == pytest.approx(gain)

    run_step(project, "ensemble", "ensemble.members=2", "ensemble.epochs=2", *quick)
    ensemble = json.loads((reports / "ensemble.json").read_text())
    n = ensemble["numbers"]
    # The reference: the members' own predictions on the whole test split, averaged.
    splits = load_table_splits(DataConfig(dataset="abalone"), 42, regression=True, verbose=False)
    rows_x = np.concatenate([np.asarray(x) for x, _ in splits.test])
    y = np.concatenate([np.asarray(t) for _, t in splits.test])
    members = [
        keras.models.load_model(reports / "ensemble" / f"member-{i}" / "model.keras")
        for i in range(2)
    ]
    mean = np.mean([np.asarray(m.predict(rows_x, verbose=0)) for m in members], axis=0)
    assert n["ensemble_test_rmse"] == pytest.approx(np.sqrt(np.mean((mean - y) ** 2)), rel=1e-4)
    combined = keras.models.load_model(project / "artifacts" / "ensemble.keras")
    predicted = np.asarray(combined.predict(rows_x, verbose=0))
    assert n["ensemble_test_rmse"] == pytest.approx(
        np.sqrt(np.mean((predicted - y) ** 2)), rel=1e-4
    )
    # Jensen: the mean prediction's squared error is never above the members' mean.
    assert n["ensemble_test_loss"] <= n["mean_member_test_loss"] + 1e-9

    run_step(project, "distill", "distill.epochs=2", *quick)
    distill = json.loads((reports / "distill.json").read_text())["numbers"]
    margin = (distill["alone_test_rmse"] - distill["distilled_test_rmse"]) / distill[
        "alone_test_rmse"
    ]
    assert distill["margin_over_alone"] == pytest.approx(margin)
    assert distill["teacher_test_rmse"] == pytest.approx(n["ensemble_test_rmse"], rel=1e-4)

    run_step(project, "tune", "tune.trials=2", "tune.epochs=1", *quick)
    best = keras.models.load_model(project / "artifacts" / "tune" / "best.keras")
    assert np.asarray(best.predict(rows_x[:4], verbose=0)).shape == (4, 1)

    run_step(project, "report")
    page = (reports / "index.html").read_text()
    assert "Baselines (test RMSE)" in page and "ensemble of 2 (R6.1)" in page


def test_a_regression_distiller_learns_the_teachers_predictions_by_squared_error():
    import keras

    from recipe_keras.distill import Distiller

    x = np.linspace(-1, 1, 12, dtype="float32").reshape(6, 2)
    teacher = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    student = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    distiller = Distiller(student, teacher, soft_weight=0.5, regression=True)
    predicted = student(x)
    numpy = keras.ops.convert_to_numpy
    soft = float(numpy(distiller.soft_loss(x, predicted)))
    reference = np.mean((numpy(predicted) - numpy(teacher(x))) ** 2)
    assert soft == pytest.approx(reference, rel=1e-5)
    y = np.ones((6, 1), "float32")
    total = float(numpy(distiller.compute_loss(x, y, predicted)))
    hard = np.mean((numpy(predicted) - y) ** 2)
    assert total == pytest.approx(0.5 * hard + 0.5 * reference, rel=1e-5)


class _Interrupt(Exception):
    pass


def test_an_interrupted_regression_resumes_to_the_uninterrupted_result(tmp_path):
    import keras

    from recipe_keras import models
    from recipe_keras.compile import compile_model
    from recipe_keras.evaluate import fit_and_evaluate
    from recipe_keras.initialise import init_to_mean
    from recipe_keras.seed import set_seed
    from recipe_keras.task import get_task
    from tests.conftest import project_config

    class StopAfter(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch + 1 == 2:
                raise _Interrupt

    task = get_task("tabular_regression")
    cfg = project_config(
        tmp_path,
        tmp_path,
        task="tabular_regression",
        data={"dataset": "abalone", "batch_size": 256},
        model={"name": "mlp", "width": 8},
        train={"epochs": 4},
    )

    def train(callbacks=()):
        set_seed(cfg.seed)
        splits = task.load_splits(cfg.data, cfg.seed)
        model = models.build("mlp", splits.input_shape, 1, 8)
        compile_model(model, cfg.train, task=task)
        init_to_mean(model, splits)
        return fit_and_evaluate(model, splits, cfg, callbacks)

    whole = train().details["history"]
    with pytest.raises(_Interrupt):
        train([StopAfter()])
    report = train()
    assert report.numbers["resumed_from_epoch"] == 3 and report.numbers["epochs_run"] == 4
    for key in ("loss", "val_rmse", "r2"):
        assert report.details["history"][key] == pytest.approx(whole[key], rel=1e-4)
