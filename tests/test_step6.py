"""Step 6 of the recipe on the current backend: ensembles (R6.1) and distillation (R6.2)."""

from __future__ import annotations

import json
import types
from pathlib import Path

import keras
import numpy as np
import pytest

from recipe_keras import data, models
from recipe_keras.config import ConfigError
from recipe_keras.project import Project
from tests.conftest import project_config
from tests.test_library import _collect, _train

pytestmark = pytest.mark.backend


def _project(config, compiled_as_projects_are=False):
    """A project built in place: the zoo's model, the library's loader, the recipe's run
    (``_train``, which compiles for integer labels), or the template's run in short
    (``build_compiled``, which compiles for the config: soft labels when data.mix is set)."""
    loader = types.SimpleNamespace(load_data=lambda c: data.load_splits(c.data, seed=c.seed))
    net = types.SimpleNamespace(
        build_model=lambda shape, classes, mc: models.from_config(mc, shape, classes)
    )
    if not compiled_as_projects_are:
        return Project(config, None, loader, net, types.SimpleNamespace(run=_train))

    def run(c):
        from recipe_keras.seed import set_seed
        from recipe_keras.train import build_compiled, fit_and_evaluate

        set_seed(c.seed)
        splits = loader.load_data(c)
        return fit_and_evaluate(build_compiled(net, splits, c), splits, c)

    return Project(config, None, loader, net, types.SimpleNamespace(run=run))


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

    search = {"directory": str(tmp_path / "tune")}
    cfg = project_config(tmp_path, tfds_dir, ensemble={"source": "tune"}, tune=search)
    with pytest.raises(ConfigError, match=r"ensemble\.source = 'tune' needs a finished make tune"):
        member_configs(cfg)
    # An older search's report in reports/ is not the search tune.directory names.
    old = tmp_path / "reports" / "tune.json"
    old.parent.mkdir(parents=True)
    old.write_text('{"details": {"results": [{"trial": "01", "score": 0.5, "model.width": 4}]}}')
    with pytest.raises(ConfigError, match=r"needs a finished make tune in tune\.directory"):
        member_configs(cfg)
    tune = Path(cfg.tune.directory) / "results.json"
    tune.parent.mkdir(parents=True)
    tune.write_text(
        '{"objective": "val_loss", "results": [{"trial": "07", "score": 0.1, "model.width": 64},'
        ' {"trial": "02", "score": 0.2, "model.width": 8}]}'
    )
    with pytest.raises(ConfigError, match=r"ensemble\.members = 3, but .* holds 2 finished trials"):
        member_configs(cfg)
    cfg2 = project_config(
        tmp_path, tfds_dir, ensemble={"source": "tune", "members": 2}, tune=search
    )
    found = member_configs(cfg2)
    assert [values["model.width"] for _, values in found] == [64, 8]
    assert [values["seed"] for _, values in found] == [42, 43]
    assert found[0][0] == "trial 07: model.width=64"


def _mlp(width: int = 16) -> keras.Model:
    return models.build("mlp", (8, 8, 1), 10, width=width)


def _log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def test_the_distillers_loss_is_cross_entropy_plus_the_scaled_kl_of_soft_targets():
    from recipe_keras.distill import Distiller

    keras.utils.set_random_seed(0)
    student, teacher = _mlp(), _mlp(32)
    rng = np.random.default_rng(0)
    x = rng.random((64, 8, 8, 1), dtype=np.float32)
    y = rng.integers(0, 10, 64)
    s = np.asarray(student.predict(x, verbose=0), dtype=np.float64)
    t = np.asarray(teacher.predict(x, verbose=0), dtype=np.float64)
    cross_entropy = -np.mean(_log_softmax(s)[np.arange(64), y])
    plain = Distiller(student, teacher, temperature=1.0, soft_weight=0.0)
    plain.compile(optimizer="adam")
    got = plain.evaluate(x, y, batch_size=64, verbose=0, return_dict=True)["loss"]
    assert got == pytest.approx(cross_entropy, rel=1e-5)  # no soft weight: plain CE
    for temperature, weight in ((2.0, 1.0), (4.0, 0.7)):
        soft_t = np.exp(_log_softmax(t / temperature))
        kl = np.mean(
            np.sum(soft_t * (_log_softmax(t / temperature) - _log_softmax(s / temperature)), 1)
        )
        expected = (1 - weight) * cross_entropy + weight * kl * temperature**2
        mixed = Distiller(student, teacher, temperature=temperature, soft_weight=weight)
        mixed.compile(optimizer="adam")
        got = mixed.evaluate(x, y, batch_size=64, verbose=0, return_dict=True)["loss"]
        assert got == pytest.approx(expected, rel=1e-4)
    assert not teacher.trainable and len(mixed.trainable_weights) == len(student.weights)


def test_a_student_learns_from_a_perfect_teacher_alone():
    from recipe_keras.distill import Distiller

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(1)
    x = rng.random((512, 8, 8, 1), dtype=np.float32)
    y = np.argmax(x.reshape(512, -1)[:, :10], axis=1)  # the label is the brightest of 10 pixels
    teacher = keras.Sequential(
        [keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(10, use_bias=False)]
    )
    weights = np.zeros((64, 10), np.float32)
    weights[np.arange(10), np.arange(10)] = 50.0  # logits 50 x those pixels: always right
    teacher.layers[-1].set_weights([weights])
    assert np.mean(np.argmax(teacher.predict(x, verbose=0), 1) == y) == 1.0
    student = _mlp(32)
    distiller = Distiller(student, teacher, temperature=2.0, soft_weight=1.0)  # soft targets only
    distiller.compile(optimizer=keras.optimizers.Adam(3e-3))
    losses = distiller.fit(x, y, epochs=15, batch_size=64, verbose=0).history["loss"]
    assert losses[-1] < 0.5 * losses[0]
    assert np.mean(np.argmax(student.predict(x, verbose=0), 1) == y) > 0.5  # chance is 0.1


def test_make_distill_sets_the_distilled_student_beside_the_student_alone(tmp_path, tfds_dir):
    from recipe_keras.distill import run_distill

    teacher_cfg = project_config(
        tmp_path / "teacher", tfds_dir, model={"name": "mlp", "width": 64}, train={"epochs": 4}
    )
    _train(teacher_cfg)
    teacher = tmp_path / "teacher" / "artifacts" / "model.keras"
    cfg = project_config(
        tmp_path,
        tfds_dir,
        model={"name": "mlp", "width": 64},
        train={"epochs": 4},
        distill={
            "teacher": str(teacher),
            "student_width": 8,
            "model_path": str(tmp_path / "artifacts" / "student.keras"),
        },
    )
    report = run_distill(_project(cfg), verbose=False)
    n = report.numbers
    assert n["alone_params"] == n["distilled_params"] < n["teacher_params"]
    alone = json.loads((tmp_path / "reports" / "distill" / "alone" / "train.json").read_text())
    assert n["alone_test_accuracy"] == pytest.approx(alone["numbers"]["test_accuracy"], abs=1e-6)
    assert alone["details"]["config"]["model"]["width"] == 8
    assert n["margin_over_alone"] == pytest.approx(
        n["distilled_test_accuracy"] - n["alone_test_accuracy"]
    )
    assert report.verdicts["R6.2"] == ("pass" if n["margin_over_alone"] >= 0 else "warn")
    x, y = _collect(data.load_splits(cfg.data, seed=cfg.seed).test)
    student = keras.models.load_model(cfg.distill.model_path)
    accuracy = np.mean(np.argmax(np.asarray(student.predict(x, verbose=0)), 1) == y)
    assert accuracy == pytest.approx(n["distilled_test_accuracy"], abs=1e-6)
    assert min(n["teacher_predict_examples_per_second"], n["alone_predict_examples_per_second"]) > 0

    missing = project_config(tmp_path, tfds_dir, distill={"teacher": str(tmp_path / "no.keras")})
    with pytest.raises(ConfigError, match=r"distill\.teacher = .*no such model"):
        run_distill(_project(missing), verbose=False)


# R4.3: creative augmentation, mixing examples and their labels.


def test_the_mixed_label_loss_and_accuracy_equal_numpys_for_soft_and_integer_labels():
    from recipe_keras.mixing import MixedLabelAccuracy, MixedLabelCrossentropy

    rng = np.random.default_rng(0)
    logits = rng.normal(size=(6, 4)).astype("float32")
    soft = rng.dirichlet(np.ones(4), size=6).astype("float32")
    hard = rng.integers(0, 4, size=6)
    logp = np.log(_softmax(logits.astype(np.float64)))
    loss = MixedLabelCrossentropy()
    assert float(loss(soft, logits)) == pytest.approx(-np.mean((soft * logp).sum(1)), rel=1e-5)
    assert float(loss(hard, logits)) == pytest.approx(-np.mean(logp[np.arange(6), hard]), rel=1e-5)
    for labels, classes in ((soft, soft.argmax(1)), (hard, hard)):
        accuracy = MixedLabelAccuracy()
        accuracy.update_state(labels, logits)
        assert float(accuracy.result()) == pytest.approx(np.mean(logits.argmax(1) == classes))


@pytest.mark.parametrize("mix", ["mixup", "cutmix"])
def test_mixing_reaches_the_batches_fit_sees_and_nothing_else(tmp_path, tfds_dir, mix):
    plain_cfg = project_config(tmp_path, tfds_dir, data={"batch_size": 32})
    mixed_cfg = project_config(tmp_path, tfds_dir, data={"batch_size": 32, "mix": mix})
    plain = data.load_splits(plain_cfg.data, seed=0)
    mixed = data.load_splits(mixed_cfg.data, seed=0)
    # The unmixed splits are untouched: train (what the checks and priors read), val, test.
    for name in ("train", "val", "test"):
        (xa, ya), (xb, yb) = (next(iter(getattr(s, name))) for s in (plain, mixed))
        np.testing.assert_array_equal(np.asarray(xa), np.asarray(xb))
        np.testing.assert_array_equal(np.asarray(ya), np.asarray(yb))
    assert plain.fit_train is plain.train
    x, y = (np.asarray(t) for t in next(iter(mixed.train)))
    fed_x, fed_y = (np.asarray(t, dtype=np.float64) for t in next(iter(mixed.fit_train)))
    assert fed_y.shape == (32, 10)
    np.testing.assert_allclose(fed_y.sum(1), 1.0, atol=1e-5)
    two = [i for i in range(32) if np.sum(fed_y[i] > 1e-6) == 2]
    assert len(two) >= 8  # most pairs are of two classes
    for i in two:
        keep = fed_y[i, y[i]]  # the weight of the image's own class
        other = int(np.argmax(np.where(np.arange(10) == y[i], -1, fed_y[i])))
        partners = [j for j in range(32) if y[j] == other]
        if mix == "mixup":  # a blend: keep * own image + (1 - keep) * a partner's
            errors = [np.abs(fed_x[i] - (keep * x[i] + (1 - keep) * x[j])).max() for j in partners]
            assert min(errors) < 1e-4
        else:  # a patch: every pixel is the image's own or its partner's
            own = np.isclose(fed_x[i], x[i], atol=1e-6).all(-1)
            fits = [
                j
                for j in partners
                if (own | np.isclose(fed_x[i], x[j], atol=1e-6).all(-1)).all()
                # pixels only the partner explains are at most its share of the area
                and (~own).mean() <= (1 - keep) + 1 / own.size
            ]
            assert fits
    assert fed_x.min() >= 0.0 and fed_x.max() <= 1.0


def test_a_mixed_run_trains_reloads_and_shows_soft_labels_in_r210s_grid(tmp_path, tfds_dir):
    from recipe_keras.checks.inputs import _soft_title, check_inputs

    cfg = project_config(
        tmp_path,
        tfds_dir,
        model={"name": "mlp"},
        data={"mix": "mixup"},
        train={"epochs": 4, "learning_rate": 3e-3},
    )
    # A model compiled for integer labels only is stopped before its first step.
    with pytest.raises(ConfigError, match=r"data.mix = 'mixup' makes the training labels soft"):
        _project(cfg).train()
    # So is a project whose own compile_model does so (build_compiled checks it).
    from recipe_keras.train import build_compiled

    project = _project(cfg, compiled_as_projects_are=True)
    project.network.compile_model = lambda m, c, steps, epochs: m.compile(
        "adam", "sparse_categorical_crossentropy"
    )
    splits = data.load_splits(cfg.data, seed=cfg.seed)
    with pytest.raises(ConfigError, match="MixedLabelCrossentropy and MixedLabelAccuracy"):
        build_compiled(project.network, splits, cfg)
    del project.network.compile_model
    report = project.train()
    n = report.numbers
    history = report.details["history"]
    assert all(np.isfinite(history["loss"])) and history["loss"][-1] < history["loss"][0]
    assert n["test_accuracy"] > 0.5  # chance is 0.1
    assert report.verdicts["R4.3"] == "info" and "R2.2" not in report.verdicts
    # The saved model reloads (its loss and metric are registered) and scores the same.
    reloaded = keras.models.load_model(cfg.train.model_path)
    again = reloaded.evaluate(splits.test, return_dict=True, verbose=0)
    assert again["loss"] == pytest.approx(n["test_loss"], rel=1e-5)
    assert again["accuracy"] == pytest.approx(n["test_accuracy"], abs=1e-9)
    weights = np.array([0.0, 0.0, 0.0, 0.62, 0.0, 0.0, 0.0, 0.0, 0.38, 0.0])
    assert _soft_title(weights, tuple(map(str, range(10)))) == "3 0.62 + 8 0.38"
    result = check_inputs(splits.fit_train, splits.class_names, tmp_path / "grid.png")
    assert result.verdict == "pass" and (tmp_path / "grid.png").is_file()


def test_examples_of_your_own_join_the_training_split_only(tmp_path, tfds_dir):
    """R4.3's hook: generated examples (here 24 images of one marked pixel pattern,
    labelled 7) are shuffled into the training split, counted, and kept out of the rest."""
    import tensorflow as tf

    cfg = project_config(tmp_path, tfds_dir).data
    base = data.load_splits(cfg, seed=0)
    marked = np.zeros((24, 8, 8, 1), np.uint8)
    marked[:, ::2, ::2] = 255  # no digit looks like this grid
    extra = tf.data.Dataset.from_tensor_slices((marked, np.full(24, 7)))
    splits = data.load_splits(cfg, seed=0, extra_train=extra)
    assert splits.sizes["train"] == base.sizes["train"] + 24
    assert splits.sizes["val"] == base.sizes["val"]
    counts = np.bincount(data.labels_of(splits.train), minlength=10)
    np.testing.assert_array_equal(
        counts - np.bincount(data.labels_of(base.train), minlength=10), [0] * 7 + [24, 0, 0]
    )

    def found(ds):
        x, y = _collect(ds)
        hits = np.all(np.isclose(x[..., 0], marked[0, ..., 0] / 255.0), axis=(1, 2))
        return hits, y

    hits, y = found(splits.train)
    assert hits.sum() == 24 and set(y[hits]) == {7}
    assert hits[: len(hits) // 2].any()  # shuffled in, not only appended at the end
    assert not found(splits.val)[0].any() and not found(splits.test)[0].any()
    with pytest.raises(ValueError, match="extra_train's images have 3 channels"):
        rgb = tf.data.Dataset.from_tensor_slices((np.zeros((2, 8, 8, 3), np.uint8), [0, 1]))
        data.load_splits(cfg, seed=0, extra_train=rgb)
