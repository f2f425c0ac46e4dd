"""Text (task = "text_classification") on the current Keras backend: a rendered project
trained, checked and inspected on the embedded corpus, its numbers against NumPy and
scikit-learn references, and the planted models the padding and R2.12 checks fail."""

from __future__ import annotations

import json
import os
import re

import numpy as np
import pandas as pd
import pytest

from recipe_keras.config import DataConfig
from recipe_keras.text import load_text_splits, read_corpus, tokens
from tests.conftest import render, run_step

pytestmark = pytest.mark.backend
BACKEND = os.environ.get("KERAS_BACKEND", "tensorflow")


def test_a_rendered_text_project_trains_checks_and_inspects_the_embedded_corpus(tmp_path):
    import keras
    from scipy.special import log_softmax
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    project = render(tmp_path, task="text_classification", backend=BACKEND)
    assert project.name == "health_news_classifier"  # the default name follows the task
    config = (project / "config.toml").read_text()
    assert 'dataset = "health_news"' in config and 'name = "bag_of_embeddings"' in config
    # A fifth of the training tweets keeps the test quick; val and test stay whole.
    settings = ["data.train_fraction=0.2", "train.epochs=3", "train.verbose=0"]
    (project / "config.toml").write_text(
        config.replace("train_fraction = 1.0", "train_fraction = 0.2")
    )
    proc = run_step(project, "train", *settings)
    assert "TF-IDF" in proc.stdout or "test accuracy" in proc.stdout
    report = json.loads((project / "reports" / "train.json").read_text())
    n = report["numbers"]
    assert report["details"]["sizes"] == {"train": 1120, "val": 800, "test": 1600}
    # The saved model's predictions on the whole test split give train.json's numbers.
    data = DataConfig(dataset="health_news", train_fraction=0.2)
    splits = load_text_splits(data, 42, vocabulary=20_000, verbose=False)
    ids = np.concatenate([np.asarray(x) for x, _ in splits.test])
    labels = np.concatenate([np.asarray(y) for _, y in splits.test]).ravel()
    model = keras.saving.load_model(project / "artifacts" / "model.keras")
    logits = np.asarray(model.predict(ids, verbose=0), dtype=np.float64)
    assert n["test_accuracy"] == pytest.approx(np.mean(logits.argmax(1) == labels), abs=1e-6)
    loss = -log_softmax(logits, axis=1)[np.arange(len(labels)), labels].mean()
    assert n["test_loss"] == pytest.approx(loss, rel=1e-3)
    # R2.7's TF-IDF + logistic regression, refitted here on the same training texts.
    corpus = read_corpus(data, 42)
    train = corpus.frames["train"].iloc[:1120]
    reference = make_pipeline(
        TfidfVectorizer(
            tokenizer=tokens,
            token_pattern=None,
            lowercase=False,
            ngram_range=(1, 2),
            sublinear_tf=True,
        ),
        LogisticRegression(max_iter=1000, C=10.0),
    ).fit(train["text"], train["label"])
    expected = np.mean(
        reference.predict(corpus.frames["test"]["text"]) == corpus.frames["test"]["label"]
    )
    assert n["linear_test_accuracy"] == pytest.approx(expected, abs=1e-9)
    assert 0.0 < n["length_only_test_accuracy"] < 0.3  # length says little about the outlet
    assert n["commonest_class_accuracy"] == pytest.approx(np.bincount(labels).max() / len(labels))
    assert report["verdicts"]["R2.7"] == ("pass" if n["beats_linear_by"] >= 0.01 else "warn")

    run_step(project, "check", *settings)
    check = json.loads((project / "reports" / "check.json").read_text())
    results = check["details"]["checks"]
    padding = next(c for c in results if c["name"].startswith("padding changes nothing"))
    assert padding["verdict"] == "pass" and padding["numbers"]["trimmed"] > 0
    init = next(c for c in results if c["recipe_id"] == "R2.4")
    assert init["numbers"]["init_loss"] == pytest.approx(np.log(16), rel=0.1)
    for rid in ("R2.4", "R2.5", "R2.8", "R2.12", "R2.13", "R2.1"):
        assert check["verdicts"][rid] == "pass", results
    # R2.7's short-run linear model reads the bag of words, not ids as numbers.
    short = next(c for c in results if c["recipe_id"] == "R2.7")["numbers"]["test_accuracy"]
    assert short["linear"] > short["majority"] + 0.2, short
    # R2.10: the first training texts beside their ids decoded back to words.
    rows = pd.read_csv(project / "reports" / "check_inputs_rows.csv", keep_default_na=False)
    length = splits.input_shape[0]
    for _, row in rows.iterrows():
        words = [w if w in set(splits.vocabulary) else "[UNK]" for w in tokens(row["text"])]
        assert row["tokens the network reads"].split() == words[:length]

    run_step(project, "inspect", *settings)
    audit = json.loads((project / "reports" / "inspect.json").read_text())
    checks = {c["name"]: c for c in audit["details"]["checks"]}
    shortcuts = checks["shortcuts (one token gives a label away)"]["numbers"]["shortcuts"]
    assert {"token": "url:bbc.in", "label": "bbchealth"}.items() <= next(
        s for s in shortcuts if s["token"] == "url:bbc.in"
    ).items()
    # R1.8: the worst test texts by the saved model's own loss.
    worst = audit["details"]["findings"]["top_loss"]
    per_text = -log_softmax(logits, axis=1)[np.arange(len(labels)), labels]
    assert worst[0]["loss"] == pytest.approx(per_text.max(), rel=1e-3)
    table = pd.read_csv(project / "reports" / "inspect" / "worst_rows.csv")
    assert {"row", "text", "label", "predicted", "loss"} <= set(table.columns)
    run_step(project, "report")
    page = (project / "reports" / "index.html").read_text()
    assert "TF-IDF (word 1- and 2-grams) with a converged logistic regression" in page
    assert "length alone (a shortcut)" in page
    # Tables of named rows are linked, not drawn as broken images.
    assert '<a href="inspect/worst_rows.csv">' in page
    assert '<a href="inspect/label_suspects.csv">' in page and not re.search(
        r'<img src="[^"]*\.csv"', page
    )


def _tokens(n: int = 12, length: int = 10) -> np.ndarray:
    rng = np.random.default_rng(0)
    x = rng.integers(2, 50, size=(n, length)).astype("int32")
    for i, keep in enumerate(rng.integers(2, length - 2, size=n)):
        x[i, keep:] = 0  # padded
    return x


@pytest.mark.parametrize("name", ["bag_of_embeddings", "conv1d", "transformer"])
def test_the_zoos_text_models_ignore_padding_and_save(tmp_path, name):
    import keras

    from recipe_keras.checks.padding import check_padding
    from recipe_keras.models import build

    model = build(name, (10,), 3, width=8, vocabulary=50)
    x = _tokens()
    assert check_padding(model, x).verdict == "pass"
    model.save(tmp_path / "m.keras")
    again = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(again.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)


def test_planted_models_fail_the_padding_check_and_r2_12():
    import keras
    from keras import layers

    from recipe_keras.checks.dependencies import check_batch_independence
    from recipe_keras.checks.padding import check_padding

    x = _tokens()
    # Padding read as content: no mask, so the mean counts the padding's vectors.
    leaky = keras.Sequential(
        [
            keras.Input((None,), dtype="int32"),
            layers.Embedding(50, 8),
            layers.GlobalAveragePooling1D(),
            layers.Dense(3),
        ]
    )
    result = check_padding(leaky, x)
    assert result.verdict == "fail" and "mask_zero" in result.advice
    # A convolution without the mask passed on: padding reaches the mean.
    tokens_in = keras.Input((None,), dtype="int32")
    h = layers.Embedding(50, 8, mask_zero=True)(tokens_in)
    h = layers.Conv1D(8, 3, padding="same", activation="relu")(h)
    conv = keras.Model(tokens_in, layers.Dense(3)(layers.GlobalAveragePooling1D()(h)))
    assert check_padding(conv, x).verdict == "fail"
    # Examples mixed within a batch (each text's vector minus the batch's mean).
    inputs = keras.Input((10,), dtype="int32")
    h = layers.GlobalAveragePooling1D()(layers.Embedding(50, 8)(inputs))
    h = layers.Lambda(lambda v: v - keras.ops.mean(v, axis=0, keepdims=True))(h)
    mixing = keras.Model(inputs, layers.Dense(3)(h))
    result = check_batch_independence(mixing, x)
    assert result.verdict == "fail", result


def test_the_later_steps_run_on_text_and_read_its_accuracy(tmp_path):
    import keras
    from scipy.special import softmax

    from tests.test_text_audit import _corpus

    corpus = tmp_path / "corpus.csv"
    _corpus(600).to_csv(corpus, index=False)
    project = render(
        tmp_path / "p", task="text_classification", backend=BACKEND, dataset=str(corpus)
    )
    assert '"data.augment"' not in (project / "config.toml").read_text()
    reports = project / "reports"
    quiet = ("train.verbose=0", "model.width=8")
    run_step(project, "ladder", "ladder.epochs=2", *quiet)
    rows = json.loads((reports / "ladder.json").read_text())["details"]["rows"]
    assert [r["change"] for r in rows] == ["base", "model.width = 128", "model.dropout = 0.25"]
    assert all(0.0 <= r["val_accuracy"] <= 1.0 for r in rows)
    run_step(project, "learning-curve", "learning_curve.epochs=2", *quiet)
    curve = json.loads((reports / "learning_curve.json").read_text())["details"]["points"]
    assert [p["examples"] for p in curve] == [42, 105, 210, 420]  # of 420 training texts
    run_step(project, "ensemble", "ensemble.members=2", "ensemble.epochs=2", *quiet)
    n = json.loads((reports / "ensemble.json").read_text())["numbers"]
    splits = load_text_splits(DataConfig(dataset=str(corpus)), 42, verbose=False)
    ids = np.concatenate([np.asarray(x) for x, _ in splits.test])
    labels = np.concatenate([np.asarray(y) for _, y in splits.test])
    members = [
        keras.saving.load_model(reports / "ensemble" / f"member-{i}" / "model.keras")
        for i in range(2)
    ]
    mean = np.mean([softmax(np.asarray(m.predict(ids, verbose=0)), axis=1) for m in members], 0)
    assert n["ensemble_test_accuracy"] == pytest.approx(np.mean(mean.argmax(1) == labels))
    run_step(project, "distill", "distill.epochs=2", *quiet)
    d = json.loads((reports / "distill.json").read_text())["numbers"]
    assert d["margin_over_alone"] == pytest.approx(
        d["distilled_test_accuracy"] - d["alone_test_accuracy"]
    )
    run_step(project, "tune", "tune.trials=2", "tune.epochs=1", *quiet)
    assert json.loads((reports / "tune.json").read_text())["numbers"]["trials"] == 2
    run_step(project, "report")
    page = (reports / "index.html").read_text()
    assert "Baselines (test accuracy)" in page and "ensemble of 2 (R6.1)" in page


@pytest.mark.parametrize("name", ["conv1d", "transformer"])
def test_a_projects_written_out_text_model_is_the_zoos(tmp_path, name):
    import importlib.util

    from recipe_keras.checks.padding import check_padding
    from recipe_keras.config import ModelConfig
    from recipe_keras.models import build

    project = render(tmp_path, task="text_classification", backend=BACKEND, model=name)
    spec = importlib.util.spec_from_file_location("model", project / project.name / "model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config = ModelConfig(name=name, width=8, vocabulary=50)
    written = module.build_model((10,), 3, config)
    zoo = build(name, (10,), 3, width=8, vocabulary=50)
    # The same layers in the same order: the zoo's weights give the zoo's outputs.
    written.set_weights(zoo.get_weights())
    x = _tokens()
    np.testing.assert_allclose(written.predict(x, verbose=0), zoo.predict(x, verbose=0), atol=1e-5)
    assert check_padding(written, _tokens()).verdict == "pass"
