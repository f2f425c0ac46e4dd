"""Step 6 of the recipe on the current backend: ensembles (R6.1) and distillation (R6.2)."""

from __future__ import annotations

import types

import keras
import numpy as np
import pytest

from recipe_keras import data, models
from recipe_keras.config import ConfigError
from recipe_keras.project import Project
from tests.conftest import project_config
from tests.test_library import _collect, _train

pytestmark = pytest.mark.backend


def _project(config):
    """A project built in place: the zoo's model, the library's loader, the recipe's run."""
    loader = types.SimpleNamespace(load_data=lambda c: data.load_splits(c.data, seed=c.seed))
    net = types.SimpleNamespace(
        build_model=lambda shape, classes, mc: models.from_config(mc, shape, classes)
    )
    return Project(config, None, loader, net, types.SimpleNamespace(run=_train))


def _softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_the_ensemble_averages_its_members_and_reloads_as_one_model(tmp_path, tfds_dir):
    from recipe_keras.ensemble import run_ensemble

    cfg = project_config(
        tmp_path,
        tfds_dir,
        model={"name": "mlp"},
        train={"epochs": 3, "learning_rate": 3e-3},
        ensemble={"members": 3, "model_path": str(tmp_path / "artifacts" / "ensemble.keras")},
    )
    report = run_ensemble(_project(cfg), verbose=False)
    n = report.numbers
    # The reference: each member's saved model, its softmax in NumPy, the mean.
    x, y = _collect(data.load_splits(cfg.data, seed=cfg.seed).test)
    members = [tmp_path / "reports" / "ensemble" / f"member-{i}" / "model.keras" for i in range(3)]
    probs = [
        _softmax(np.asarray(keras.models.load_model(m).predict(x, verbose=0))) for m in members
    ]
    mean = np.mean(probs, axis=0)
    assert n["ensemble_test_accuracy"] == pytest.approx(np.mean(mean.argmax(1) == y), abs=1e-9)
    nll = -np.mean(np.log(mean[np.arange(len(y)), y]))
    assert n["ensemble_test_loss"] == pytest.approx(nll, rel=1e-5)
    accuracies = [float(np.mean(p.argmax(1) == y)) for p in probs]
    assert [r["accuracy"] for r in report.details["members"]] == pytest.approx(accuracies)
    assert len({round(r["loss"], 6) for r in report.details["members"]}) == 3  # they differ
    # Jensen: the averaged probabilities' log loss is never above the members' mean.
    assert n["ensemble_test_loss"] <= n["mean_member_test_loss"] + 1e-9
    assert n["ensemble_test_accuracy"] >= n["mean_member_test_accuracy"]
    assert report.verdicts["R6.1"] == ("pass" if n["gain_over_best_member"] >= 0 else "warn")
    # One .keras file: reloads and predicts the average.
    combined = keras.models.load_model(cfg.ensemble.model_path)
    again = _softmax(np.asarray(combined.predict(x, verbose=0)))
    np.testing.assert_allclose(again, mean, atol=1e-5)
    assert (tmp_path / "reports" / "ensemble.png").stat().st_size > 5000
    # Re-running reuses every member.
    rerun = run_ensemble(_project(cfg), verbose=False)
    assert all(r["reused"] for r in rerun.details["members"]) and rerun.numbers == n


def test_an_ensemble_of_tune_trials_needs_a_finished_search(tmp_path, tfds_dir):
    from recipe_keras.ensemble import member_configs

    cfg = project_config(tmp_path, tfds_dir, ensemble={"source": "tune"})
    with pytest.raises(ConfigError, match=r"ensemble\.source = 'tune' needs a finished make tune"):
        member_configs(cfg)
    tune = tmp_path / "reports" / "tune.json"
    tune.parent.mkdir(parents=True)
    tune.write_text(
        '{"details": {"results": [{"trial": "07", "score": 0.1, "model.width": 64},'
        ' {"trial": "02", "score": 0.2, "model.width": 8}]}}'
    )
    with pytest.raises(ConfigError, match=r"ensemble\.members = 3, but .* holds 2 finished trials"):
        member_configs(cfg)
    cfg2 = project_config(tmp_path, tfds_dir, ensemble={"source": "tune", "members": 2})
    found = member_configs(cfg2)
    assert [values["model.width"] for _, values in found] == [64, 8]
    assert [values["seed"] for _, values in found] == [42, 43]
    assert found[0][0] == "trial 07: model.width=64"
