"""Tables (task = "tabular_classification") on the current Keras backend: the embedded
Adult table trained end to end from a rendered project, FeatureSpace adapted on the
training split only, and one line for each kind of bad table."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from recipe_keras.config import ConfigError, DataConfig
from recipe_keras.tabular import load_table_splits, read_tables
from tests.conftest import render

pytestmark = pytest.mark.backend
BACKEND = os.environ.get("KERAS_BACKEND", "tensorflow")


def test_a_rendered_table_project_trains_on_adult_and_is_set_beside_the_trees(tmp_path):
    project = render(tmp_path, task="tabular_classification", backend=BACKEND)
    config = (project / "config.toml").read_text()
    assert 'task = "tabular_classification"' in config and 'dataset = "adult"' in config
    assert 'name = "mlp"' in config
    cmd = [sys.executable, "-m", "recipe_keras.cli", "train", "--config", "config.toml"]
    cmd += ["--set", "train.epochs=8", "data.batch_size=128", "model.width=16"]
    env = {**os.environ, "PYTHONPATH": str(project), "KERAS_BACKEND": BACKEND}
    proc = subprocess.run(cmd, cwd=project, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "numeric: age, fnlwgt, education_num" in proc.stdout  # the inferred types, printed
    report = json.loads((project / "reports" / "train.json").read_text())
    n, sizes = report["numbers"], report["details"]["sizes"]
    # Adult's 32,561 rows carved 70/10/20, seeded; every test row scored.
    assert sizes == {"train": 22791, "val": 3257, "test": 6513}
    assert report["details"]["class_names"] == ["<=50K", ">50K"]
    assert n["test_accuracy"] >= 0.85, n
    # The baselines, fitted properly: the commonest class (76% earn <=50K), a converged
    # logistic regression and gradient-boosted trees on the same encoded rows.
    assert n["commonest_class_accuracy"] == pytest.approx(0.76, abs=0.01)
    assert 0.84 <= n["linear_test_accuracy"] <= 0.86
    assert 0.86 <= n["trees_test_accuracy"] <= 0.88
    baselines = report["details"]["baselines"]
    assert baselines["trees"]["train_examples"] == 22791
    # R2.7 tells the truth against the strongest baseline: the trees beat this network.
    under_trees = n["test_accuracy"] < n["trees_test_accuracy"]
    assert report["verdicts"]["R2.7"] == ("warn" if under_trees else report["verdicts"]["R2.7"])
    if under_trees:
        assert "gradient-boosted trees" in report["details"]["advice"]["R2.7"]
        assert "the network does not beat them" in proc.stdout
    # make inspect audits the table as stored: Adult's known flaws, named.
    cmd[3] = "inspect"
    proc = subprocess.run(cmd, cwd=project, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    audit = json.loads((project / "reports" / "inspect.json").read_text())
    checks = {c["name"]: c for c in audit["details"]["checks"]}
    assert "education ~ education_num" in checks["redundant column pairs"]["numbers"]["pairs"]
    sentinels = checks["missing values"]["numbers"]["sentinels"]
    assert sentinels == {"capital_gain": {"value": 99999, "rows": 159}}
    assert checks["missing values"]["numbers"]["missing"]["workclass"] == 1836
    # R1.8: the trained model's worst test rows, as stored; its accuracy train.json's.
    errors = checks["model errors (worst rows)"]["numbers"]
    assert errors["accuracy"] == pytest.approx(n["test_accuracy"], abs=1e-6)
    assert np.sum(errors["confusion"]) == 6513
    worst = audit["details"]["findings"]["top_loss"]
    assert len(worst) == 20 and all(w["given"] not in w["predicted"] for w in worst)
    # Two classes: the ROC AUC and the calibration plot of the test split.
    assert 0.85 <= n["test_auc"] <= 0.95
    assert "calibration.png" in report["figures"]
    assert (project / "reports" / "calibration.png").is_file()


def _folder(root: Path, train: pd.DataFrame, **others: pd.DataFrame) -> str:
    root.mkdir(parents=True, exist_ok=True)
    for split, frame in {"train": train, **others}.items():
        frame.to_csv(root / f"{split}.csv", index=False)
    return str(root)


def test_feature_space_statistics_come_from_the_training_split_only(tmp_path):
    rng = np.random.default_rng(0)
    n = 200
    train = pd.DataFrame(
        {
            "size": rng.normal(10.0, 2.0, n),
            "colour": rng.choice(["red", "blue"], n),
            "label": rng.choice(["no", "yes"], n),
        }
    )
    train.loc[3, "size"] = np.nan  # a missing number: the training median, and a flag
    # Val and test values far from train's: normalising on them would move every number.
    val = pd.DataFrame({"size": [1e6, 2e6], "colour": ["red", "blue"], "label": ["no", "yes"]})
    test = pd.DataFrame({"size": [1e6, 12.0], "colour": ["green", "red"], "label": ["yes", "no"]})
    cfg = DataConfig(dataset=_folder(tmp_path / "t", train, val=val, test=test), target="label")
    splits = load_table_splits(cfg, seed=0, verbose=False)
    assert splits.sizes == {"train": 200, "val": 2, "test": 2}
    x = np.concatenate([np.asarray(b) for b, _ in splits.test])
    y = np.concatenate([np.asarray(b) for _, b in splits.test])
    np.testing.assert_array_equal(y, [1, 0])  # classes sorted: no, yes
    # FeatureSpace concatenates its features by name: colour (one-hot with one OOV
    # slot, then the training vocabulary), size, size__missing.
    assert splits.input_shape == (3 + 1 + 1,)
    filled = train["size"].fillna(train["size"].median())
    mean, std = filled.mean(), filled.std(ddof=0)
    np.testing.assert_allclose(x[:, 3], (np.array([1e6, 12.0]) - mean) / std, rtol=1e-4)
    np.testing.assert_array_equal(x[:, 4], [0, 0])
    assert x[0, :3].tolist() == [1, 0, 0]  # "green", never seen in train: out of vocabulary
    assert x[1, 0] == 0 and x[1, 1:3].sum() == 1
    rows = np.concatenate([np.asarray(b) for b, _ in splits.train])
    assert rows[:, 4].sum() == 1  # the one missing size, flagged
    assert abs(rows[:, 3].mean()) < 1e-3 and abs(rows[:, 3].std() - 1) < 1e-2


def _csv(tmp_path: Path, text: str) -> str:
    path = tmp_path / "t.csv"
    path.write_text(text)
    return str(path)


ROWS = "".join(f"{i},{i % 3},{'ab'[i % 2]}\n" for i in range(30))
BAD_TABLES = [
    ("no target", "a,b,y\n" + ROWS, {}, "data.target = '': name the column to predict"),
    ("unknown target", "a,b,y\n" + ROWS, {"target": "z"}, "'z' is not a column of the train"),
    ("empty file", "", {"target": "y"}, "cannot be read as a table"),
    ("header only", "a,b,y\n", {"target": "y"}, "holds no rows"),
    (
        "one class",
        "a,y\n" + "".join(f"{i},x\n" for i in range(30)),
        {"target": "y"},
        "has 1 class (x); a classifier needs two classes or more",
    ),
    (
        "text in a numeric column",
        "a,b,y\n" + ROWS + "7,seven,a\n",
        {"target": "y", "numeric": ["b"]},
        "column 'b' (data.numeric names it): data row 31 of the table (",
    ),
    (
        "a category per row",
        "id,b,y\n" + "".join(f"u{i},{i % 3},{'ab'[i % 2]}\n" for i in range(30)),
        {"target": "y"},
        "column 'id' has a different value in every row",
    ),
    ("typed column absent", "a,b,y\n" + ROWS, {"target": "y", "ignore": ["c"]}, "data.ignore"),
]


@pytest.mark.parametrize(
    "text, values, message", [c[1:] for c in BAD_TABLES], ids=[c[0] for c in BAD_TABLES]
)
def test_bad_tables_stop_in_one_line(tmp_path, text, values, message):
    cfg = DataConfig(dataset=_csv(tmp_path, text), **values)
    with pytest.raises(ConfigError) as caught:
        load_table_splits(cfg, seed=0, verbose=False)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_a_class_only_in_test_and_paths_that_are_no_table(tmp_path):
    train = pd.DataFrame({"a": range(30), "y": ["p", "q"] * 15})
    test = pd.DataFrame({"a": [1, 2], "y": ["p", "r"]})
    cfg = DataConfig(dataset=_folder(tmp_path / "t", train, test=test), target="y")
    with pytest.raises(
        ConfigError, match=r"the test table has classes the training table lacks \(r\)"
    ):
        load_table_splits(cfg, seed=0, verbose=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match=r"no train\.csv"):
        read_tables(DataConfig(dataset=str(tmp_path / "empty"), target="y"), seed=0)
    with pytest.raises(ConfigError, match="is not a table"):
        read_tables(DataConfig(dataset="digits", target="y"), seed=0)
    with pytest.raises(ConfigError, match="a table takes neither"):
        load_table_splits(DataConfig(dataset="adult", augment=["rotate"]), seed=0)
    # The image task refuses a table, naming the task that reads it.
    from recipe_keras.task import get_task

    with pytest.raises(ConfigError, match='set task = "tabular_classification"'):
        get_task("image_classification").load_splits(DataConfig(dataset="adult"), seed=0)


def test_one_table_is_carved_seeded_into_train_val_and_test(tmp_path):
    frame = pd.DataFrame({"a": np.arange(100), "y": ["p", "q"] * 50})
    cfg = DataConfig(dataset=_csv(tmp_path, frame.to_csv(index=False)), target="y")
    first, target = read_tables(cfg, seed=3)
    again, _ = read_tables(cfg, seed=3)
    other, _ = read_tables(cfg, seed=4)
    assert target == "y" and {k: len(v) for k, v in first.items()} == {
        "train": 70,
        "val": 10,
        "test": 20,
    }
    ids = [set(first[s]["a"]) for s in ("train", "val", "test")]
    assert set().union(*ids) == set(range(100)) and sum(map(len, ids)) == 100  # disjoint
    assert first["train"]["a"].is_monotonic_increasing  # the stored order kept
    for split in first:
        pd.testing.assert_frame_equal(first[split], again[split])
    assert set(other["test"]["a"]) != ids[2]


def test_the_later_steps_run_on_a_table_and_read_its_accuracy(tmp_path):
    import keras
    from scipy.special import softmax

    rng = np.random.default_rng(0)
    n = 600
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    colour = rng.choice(["red", "blue"], n)
    label = np.where(x1 - x2 + (colour == "red") > 0.5, "yes", "no")
    table = tmp_path / "table.csv"
    pd.DataFrame({"x1": x1, "x2": x2, "colour": colour, "label": label}).to_csv(table, index=False)
    project = render(
        tmp_path / "p", task="tabular_classification", backend=BACKEND, dataset=str(table)
    )
    assert '"data.augment"' not in (project / "config.toml").read_text()
    env = {**os.environ, "PYTHONPATH": str(project), "KERAS_BACKEND": BACKEND}

    def run(step: str, *settings: str) -> None:
        cmd = [sys.executable, "-m", "recipe_keras.cli", step, "--config", "config.toml"]
        cmd += ["--set", "data.target=label", "train.verbose=0", *settings]
        proc = subprocess.run(cmd, cwd=project, env=env, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]

    reports = project / "reports"
    run("ladder", "ladder.epochs=2")
    rows = json.loads((reports / "ladder.json").read_text())["details"]["rows"]
    assert [r["change"] for r in rows] == ["base", "model.width = 128", "model.dropout = 0.25"]
    assert all(0.0 <= r["val_accuracy"] <= 1.0 for r in rows)
    run("ensemble", "ensemble.members=2", "ensemble.epochs=2")
    n_ = json.loads((reports / "ensemble.json").read_text())["numbers"]
    splits = load_table_splits(DataConfig(dataset=str(table), target="label"), 42, verbose=False)
    xs = np.concatenate([np.asarray(x) for x, _ in splits.test])
    ys = np.concatenate([np.asarray(y) for _, y in splits.test])
    members = [
        keras.models.load_model(reports / "ensemble" / f"member-{i}" / "model.keras")
        for i in range(2)
    ]
    mean = np.mean([softmax(np.asarray(m.predict(xs, verbose=0)), axis=1) for m in members], 0)
    assert n_["ensemble_test_accuracy"] == pytest.approx(np.mean(mean.argmax(1) == ys))
    run("distill", "distill.epochs=2")
    d = json.loads((reports / "distill.json").read_text())["numbers"]
    assert d["margin_over_alone"] == pytest.approx(
        d["distilled_test_accuracy"] - d["alone_test_accuracy"]
    )
    run("report")
    page = (reports / "index.html").read_text()
    assert "Baselines (test accuracy)" in page and "ensemble of 2 (R6.1)" in page


class TinyTownTable(tfds.core.GeneratorBasedBuilder):
    """A TFDS catalog table, as TFDS prepares one (registered as "tiny_town_table")."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES: ClassVar[dict[str, str]] = {"1.0.0": "The test's table."}

    def _info(self):
        features = {"features": {"age": tf.float32, "town": tf.string}}
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict(
                {**features, "survived": tfds.features.ClassLabel(num_classes=2)}
            ),
            supervised_keys=("features", "survived"),
        )

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(0, 200), "test": self._generate_examples(200, 250)}

    def _generate_examples(self, start, stop):
        for i in range(start, stop):
            row = {"age": float(i % 50), "town": ["Leiden", "Delft"][i % 2]}
            yield i, {"features": row, "survived": int(i % 50 > 25)}


def test_a_tfds_catalog_table_is_read_by_its_name(tmp_path):
    TinyTownTable(data_dir=str(tmp_path)).download_and_prepare()  # TFDS does it once, online
    data = DataConfig(dataset="tiny_town_table", data_dir=str(tmp_path))
    frames, target = read_tables(data, seed=0)
    # Its supervised label is the target; nested names lose their prefix; bytes are text.
    assert target == "survived"
    assert sorted(frames["train"].columns) == ["age", "survived", "town"]
    assert set(frames["train"]["town"]) == {"Leiden", "Delft"}
    # data.train_split / val_split / test_split: train[:90%], train[90%:], test.
    assert {s: len(f) for s, f in frames.items()} == {"train": 180, "val": 20, "test": 50}
    splits = load_table_splits(data, 0, verbose=False)
    assert splits.input_shape == (4,)  # age, and town one-hot over its two values and unseen
    labels = np.concatenate([np.asarray(y) for _, y in splits.test])
    expected = (frames["test"]["age"].to_numpy() > 25).astype(int)
    assert sorted(labels.tolist()) == sorted(expected.tolist())
