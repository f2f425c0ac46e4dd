"""recipe_keras on the current Keras backend: data, zoo, seeding, training, resuming.

Run once per backend by scripts/run_tests.py (KERAS_BACKEND is set per process).
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow_datasets as tfds

from recipe_keras import data, models
from recipe_keras.cli import _expected
from recipe_keras.config import MODELS, TEXT_NETS, Config, DataConfig, TrainConfig
from recipe_keras.datasets.digits import TEST_SIZE
from recipe_keras.report import read_report
from recipe_keras.seed import set_seed
from recipe_keras.train import compile_model, fit_and_evaluate
from tests.conftest import digits_images, project_config

pytestmark = pytest.mark.backend


def _collect(ds) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = zip(*((np.asarray(x), np.asarray(y)) for x, y in ds), strict=True)
    return np.concatenate(xs), np.concatenate(ys)


@pytest.fixture(scope="module")
def digits(tfds_dir):
    return data.load_splits(DataConfig(data_dir=str(tfds_dir)), seed=0)


def test_the_backend_is_the_one_asked_for():
    import os

    assert keras.backend.backend() == os.environ.get("KERAS_BACKEND", "tensorflow")


def test_embedded_digits_are_sklearns_digits_split_without_overlap(digits):
    images, labels = digits_images()
    assert digits.sizes == {"train": 1293, "val": 144, "test": TEST_SIZE}
    assert digits.input_shape == (8, 8, 1) and digits.num_classes == 10
    assert digits.class_names == tuple(str(d) for d in range(10))
    # Together the three splits are exactly scikit-learn's 1,797 images, each once.
    parts = [_collect(getattr(digits, name)) for name in ("train", "val", "test")]
    x = np.concatenate([p[0] for p in parts])
    y = np.concatenate([p[1] for p in parts])
    assert x.dtype == np.float32 and x.shape == (1797, 8, 8, 1)
    reference = images.astype(np.float32)[..., None] / 255.0
    order_ours = np.lexsort(x.reshape(len(x), -1).T)
    order_ref = np.lexsort(reference.reshape(len(reference), -1).T)
    np.testing.assert_allclose(x[order_ours], reference[order_ref], atol=1e-7)
    np.testing.assert_array_equal(np.sort(y), np.sort(labels))


def test_evaluation_pipelines_cover_the_whole_split_in_a_fixed_order(digits):
    x1, y1 = _collect(digits.test)
    x2, y2 = _collect(digits.test)
    assert len(y1) == TEST_SIZE
    np.testing.assert_array_equal(y1, y2)
    np.testing.assert_array_equal(x1, x2)


@pytest.mark.parametrize("keep", ["memory", "disk"])
def test_a_split_that_ends_before_its_size_is_never_cached_short(tmp_path, keep):
    # A reader torn down part-way (a first batch, then the reader dropped) can see TFDS's
    # input end early; cached, that prefix became the whole split for every later pass
    # (32 of 360 test examples, a 1-batch epoch). A saved dataset missing one of its two
    # shards ends early the same way, every time, while it still reports 100 examples.
    import shutil

    import tensorflow as tf

    from recipe_keras.storage import Storage

    pixels = np.repeat(np.arange(100, dtype=np.uint8), 64).reshape(100, 8, 8, 1)
    saved = tmp_path / "saved"
    source = tf.data.Dataset.from_tensor_slices((pixels, np.arange(100)))
    source.save(str(saved), shard_func=lambda x, y: y % 2)
    shutil.rmtree(next(saved.glob("*/00000000.shard")))
    short = tf.data.Dataset.load(str(saved))
    assert int(short.cardinality()) == 100
    config = DataConfig(batch_size=32)
    for training, epoch in ((False, None), (True, tf.Variable(0, dtype=tf.int64))):
        ds = data.make_pipeline(
            short,
            config,
            (8, 8, 1),
            training=training,
            seed=0,
            epoch=epoch,
            storage=Storage(keep, 1, None),
            name=f"short_{training}",
        )
        for _ in range(2):  # the second pass too: nothing short was kept
            with pytest.raises(tf.errors.FailedPreconditionError, match="only 50 elements") as e:
                _collect(ds)
    # What a command prints for it: one line (docs/errors.md).
    line = _expected(e.value)
    assert line.startswith(
        "a split ended before its size: its source reports 100 elements but gave 50;"
    )
    assert "Nothing short was cached" in line


def test_training_pipeline_reshuffles_each_epoch_but_repeats_with_the_seed(tfds_dir):
    cfg = DataConfig(data_dir=str(tfds_dir))
    a = data.load_splits(cfg, seed=5)
    b = data.load_splits(cfg, seed=5)
    epoch1, epoch2 = _collect(a.train)[1], _collect(a.train)[1]
    assert not np.array_equal(epoch1, epoch2)  # reshuffled
    np.testing.assert_array_equal(epoch1, _collect(b.train)[1])  # same seed, same order
    # The order is the epoch's, not the pass count's: a new process resuming at epoch 2
    # (a fresh load, its variable set as ShuffleByEpoch sets it) sees epoch 2's order.
    fresh = data.load_splits(cfg, seed=5)
    fresh.epoch.assign(1)
    np.testing.assert_array_equal(_collect(fresh.train)[1], epoch2)
    # A pass read in part (the checks' first batches) does not move the order on.
    again = data.load_splits(cfg, seed=5)
    next(iter(again.train))
    np.testing.assert_array_equal(_collect(again.train)[1], epoch1)
    assert len(list(a.train)) == a.train.cardinality() == a.steps_per_epoch(cfg.batch_size)


def test_image_folder_through_tfds_imagefolder(digits_folder):
    images, labels = digits_images()
    gray = data.load_splits(
        DataConfig(dataset=str(digits_folder), channels=1, train_split="train", val_split="test"),
        seed=0,
    )
    assert gray.input_shape == (8, 8, 1)
    assert gray.class_names == tuple(f"digit_{d}" for d in range(10))
    assert gray.sizes == {"train": 200, "val": 100, "test": 100}
    x, y = _collect(gray.test)
    # PNG is lossless: the pixels are the digits written by the fixture (sorted to compare).
    ref = images[200:300].astype(np.float32)[..., None] / 255.0
    np.testing.assert_allclose(np.sort(x.ravel()), np.sort(ref.ravel()), atol=1e-6)
    np.testing.assert_array_equal(np.sort(y), np.sort(labels[200:300]))
    # Channels kept as decoded (3) and a resize, with TFDS split slicing.
    rgb = data.load_splits(
        DataConfig(
            dataset=str(digits_folder),
            image_size=[16, 12],
            train_split="train[:75%]",
            val_split="train[75%:]",
        ),
        seed=0,
    )
    assert rgb.input_shape == (16, 12, 3)
    assert rgb.sizes == {"train": 150, "val": 50, "test": 100}
    assert _collect(rgb.val)[0].shape == (50, 16, 12, 3)


def test_tfds_catalog_name_uses_the_same_path(tmp_path, monkeypatch):
    # No download works here; mock_data stands in for the catalog's files, so the
    # network probe that guards a real download is not wanted.
    monkeypatch.setattr(data, "_require_network", lambda cfg: None)
    with tfds.testing.mock_data(num_examples=20):
        splits = data.load_splits(DataConfig(dataset="mnist", data_dir=str(tmp_path)), seed=0)
        x, y = _collect(splits.train)
    assert splits.input_shape == (28, 28, 1) and splits.num_classes == 10
    assert x.shape == (20, 28, 28, 1) and x.min() >= 0.0 and x.max() <= 1.0
    assert set(y.tolist()) <= set(range(10))


def test_a_catalog_dataset_offline_fails_in_seconds_naming_the_fix(tmp_path, monkeypatch):
    # A proxy on a closed local port stands in for a machine without network: the
    # probe is refused at once and nothing leaves this machine.
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    started = time.perf_counter()
    with pytest.raises(OSError, match=r"'mnist' is not prepared in .* network cannot be") as e:
        data.load_splits(DataConfig(dataset="mnist", data_dir=str(tmp_path)), seed=0)
    assert time.perf_counter() - started < data.NETWORK_TIMEOUT + 5
    assert "tfds build mnist --data_dir DIR" in str(e.value)
    assert not list(tmp_path.rglob("*.tmp*")) and not (tmp_path / "downloads").exists()


# resnet50 needs 32x32x3 inputs: test_tune.py checks it against keras.applications.
# The text models take token ids: test_text.py builds, checks and saves them.
@pytest.mark.parametrize("name", [m for m in MODELS if m not in ("resnet50", *models.TEXT_MODELS)])
def test_zoo_models_output_logits_for_each_class(name):
    assert tuple(models.ZOO) == MODELS
    assert models.TEXT_MODELS == TEXT_NETS  # the zoo's token-id models: what config allows
    keras.utils.set_random_seed(0)
    model = models.build(name, (8, 8, 1), 10, width=4)
    x = np.random.default_rng(0).random((5, 8, 8, 1), dtype=np.float32)
    out = keras.ops.convert_to_numpy(model(x))
    assert out.shape == (5, 10)
    # Logits, not probabilities: rows do not sum to one and may be negative.
    assert not np.allclose(out.sum(axis=1), 1.0) and out.min() < 0
    expected_params = {
        "linear": (64 + 1) * 10,
        "mlp": (64 + 1) * 16 + (16 + 1) * 16 + (16 + 1) * 10,
        "cnn": (9 * 1 + 1) * 4 + (9 * 4 + 1) * 8 + (2 * 2 * 8 + 1) * 10,
    }
    assert model.count_params() == expected_params[name]
    with pytest.raises(
        ValueError, match="unknown model 'resnet'; the zoo has: linear, mlp, cnn, res"
    ):
        models.build("resnet", (8, 8, 1), 10)


def _train(cfg: Config, callbacks=()):
    set_seed(cfg.seed)
    splits = data.load_splits(cfg.data, seed=cfg.seed)
    model = models.build(cfg.model.name, splits.input_shape, splits.num_classes, cfg.model.width)
    compile_model(model, cfg.train)
    return fit_and_evaluate(model, splits, cfg, callbacks)


def test_same_seed_same_losses_other_seed_other_losses(tmp_path, tfds_dir):
    # R2.1: two runs with one seed are identical to the last bit; another seed differs.
    cfg = project_config(tmp_path, tfds_dir)
    first = _train(cfg).details["history"]
    second = _train(cfg).details["history"]
    assert first == second
    other = _train(dataclasses.replace(cfg, seed=cfg.seed + 1)).details["history"]
    assert other["loss"] != first["loss"]


def test_train_report_and_saved_model(tmp_path, tfds_dir):
    cfg = project_config(tmp_path, tfds_dir, train={"epochs": 3}, model={"name": "linear"})
    report = _train(cfg)
    on_disk = read_report(tmp_path / "reports" / "train.json")
    assert on_disk.numbers == report.numbers and on_disk.step == "train"
    n = report.numbers
    assert report.backend == keras.backend.backend()
    assert (n["seed"], n["epochs"], n["epochs_run"]) == (42, 3, 3)
    for split in ("train", "val", "test"):
        assert 0.0 <= n[f"{split}_accuracy"] <= 1.0 and n[f"{split}_loss"] > 0
    # The loss starts near -log(1/C) and falls (R2.4, R2.9 in their simplest form).
    history = report.details["history"]
    assert abs(history["loss"][0] - math.log(10)) < 0.5
    assert history["loss"][-1] < history["loss"][0]
    assert (tmp_path / "reports" / "train_curves.png").stat().st_size > 10_000
    # The saved model reloads on this backend and scores the reported test accuracy.
    model = keras.models.load_model(cfg.train.model_path)
    splits = data.load_splits(cfg.data, seed=cfg.seed)
    x, y = _collect(splits.test)
    predicted = np.argmax(keras.ops.convert_to_numpy(model.predict(x, verbose=0)), axis=1)
    assert np.mean(predicted == y) == pytest.approx(n["test_accuracy"], abs=1e-6)
    assert n["commonest_class_accuracy"] == np.bincount(y.astype(int)).max() / len(y)
    assert not (tmp_path / "artifacts" / "backup").exists()  # removed after a finished run


class _Interrupt(Exception):
    pass


class _StopAfter(keras.callbacks.Callback):
    def __init__(self, epochs: int):
        super().__init__()
        self.epochs = epochs

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == self.epochs:
            raise _Interrupt


def test_an_interrupted_run_resumes_from_its_last_epoch(tmp_path, tfds_dir):
    cfg = project_config(tmp_path, tfds_dir, train={"epochs": 4}, model={"name": "linear"})
    with pytest.raises(_Interrupt):
        _train(cfg, callbacks=[_StopAfter(2)])
    assert (tmp_path / "artifacts" / "backup").is_dir()
    report = _train(cfg)
    # Epochs 3 and 4 ran in this call; train.json holds the whole run's history.
    assert report.numbers["epochs_run"] == 4 and report.numbers["resumed_from_epoch"] == 3
    assert len(report.details["history"]["loss"]) == 4
    assert not (tmp_path / "artifacts" / "backup").exists()
    # One run, one folder: the resumed part logged beside the interrupted part.
    (folder,) = (tmp_path / "reports" / "runs").iterdir()
    assert folder.name == report.details["run"]
    assert len(list((folder / "tensorboard" / "train").glob("events.out.tfevents.*"))) == 2


class _StopAtTheEnd(keras.callbacks.Callback):
    """An interruption once fit has ended, while the run is measured."""

    def on_train_end(self, logs=None):
        raise _Interrupt


class _ZeroBefore(keras.callbacks.Callback):
    """Zeroes every weight as epoch ``epoch`` begins: no gradient reaches a weight
    behind a zeroed ReLU layer, so that epoch is the worst and early stopping's restore
    must bring back an earlier one."""

    def __init__(self, epoch: int):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch + 1 == self.epoch:
            for variable in self.model.trainable_variables:
                variable.assign(keras.ops.zeros(variable.shape, variable.dtype))


def test_a_run_interrupted_after_training_is_measured_without_training_again(tmp_path, tfds_dir):
    cfg = project_config(
        tmp_path,
        tfds_dir,
        train={"epochs": 4, "learning_rate": 0.01, "early_stopping_patience": 10},
        model={"name": "mlp"},
    )
    whole = _train(cfg, callbacks=[_ZeroBefore(4)])
    val = whole.details["history"]["val_loss"]
    assert int(np.argmin(val)) + 1 < 4 and val[-1] > 2 * min(val)
    # The saved model is early stopping's restore, not the last epoch's weights.
    assert _val_loss_of(tmp_path / "artifacts" / "model.keras", cfg) == pytest.approx(
        min(val), abs=1e-5
    )
    with pytest.raises(_Interrupt):
        _train(cfg, callbacks=[_ZeroBefore(4), _StopAtTheEnd()])
    assert (tmp_path / "artifacts" / "backup" / "latest.weights.h5").is_file()
    resumed = _train(cfg)
    # No epoch ran again: the restored weights are the ones early stopping kept.
    assert resumed.numbers["resumed_from_epoch"] == 5
    assert resumed.details["history"]["val_loss"] == val
    for key in ("test_loss", "test_accuracy", "train_loss", "epochs_run"):
        assert resumed.numbers[key] == pytest.approx(whole.numbers[key], abs=1e-6), key
    assert not (tmp_path / "artifacts" / "backup").exists()


def test_each_run_keeps_its_own_folder_and_the_top_level_is_the_latest(tmp_path, tfds_dir):
    cfg = project_config(tmp_path, tfds_dir, model={"name": "linear"})
    first = _train(cfg)
    second = _train(dataclasses.replace(cfg, seed=cfg.seed + 1))
    runs = tmp_path / "reports" / "runs"
    assert sorted(p.name for p in runs.iterdir()) == sorted(
        [first.details["run"], second.details["run"]]
    )
    for report in (first, second):
        folder = runs / report.details["run"]
        kept = read_report(folder / "train.json")
        assert kept.numbers == report.numbers and kept.details["run"] == folder.name
        assert json.loads((folder / "config.json").read_text())["seed"] == report.numbers["seed"]
        for figure in report.figures:
            assert (folder / figure).stat().st_size > 1000
        assert list((folder / "tensorboard").rglob("events.out.tfevents.*"))
        # Each run's model is its own: it scores that run's test accuracy.
        model = keras.models.load_model(folder / "model.keras")
        splits = data.load_splits(cfg.data, seed=report.numbers["seed"])
        x, y = _collect(splits.test)
        predicted = np.argmax(keras.ops.convert_to_numpy(model.predict(x, verbose=0)), axis=1)
        assert np.mean(predicted == y) == pytest.approx(report.numbers["test_accuracy"], abs=1e-6)
    assert first.numbers["test_loss"] != second.numbers["test_loss"]
    latest = read_report(tmp_path / "reports" / "train.json")
    assert latest.details["run"] == second.details["run"]


def _truncate(path: Path) -> None:
    """What a kill in the middle of writing ``path`` leaves."""
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def test_a_backup_cut_short_falls_back_and_an_unreadable_one_is_set_aside(tmp_path, tfds_dir):
    cfg = project_config(tmp_path, tfds_dir, train={"epochs": 4}, model={"name": "linear"})
    whole = _train(cfg).details["history"]
    backup = tmp_path / "artifacts" / "backup"
    with pytest.raises(_Interrupt):
        _train(cfg, callbacks=[_StopAfter(2)])
    # Killed while epoch 2's backup was written: Keras resumes from epoch 1's copy, and
    # the history follows it, so the run still ends as the uninterrupted one did.
    _truncate(backup / "latest.weights.h5")
    report = _train(cfg)
    assert report.numbers["resumed_from_epoch"] == 2
    assert report.details["history"]["loss"] == pytest.approx(whole["loss"], abs=1e-4)
    assert report.numbers["epochs_run"] == 4

    with pytest.raises(_Interrupt):
        _train(cfg, callbacks=[_StopAfter(2)])
    for copy in backup.glob("latest.weights.h5*"):
        _truncate(copy)
    with pytest.raises(OSError, match=r"the backup in .*backup could not be read") as caught:
        _train(cfg)
    assert "set aside as backup.damaged-" in str(caught.value)
    assert not backup.exists() and len(list(backup.parent.glob("backup.damaged-*"))) == 1
    # Nothing left blocks the next run: it starts over and ends as the whole run did.
    again = _train(cfg)
    assert again.numbers["resumed_from_epoch"] is None
    assert again.details["history"]["loss"] == pytest.approx(whole["loss"], abs=1e-4)


def _val_loss_of(path: Path, cfg) -> float:
    splits = data.load_splits(cfg.data, seed=cfg.seed)
    return keras.models.load_model(path).evaluate(splits.val, return_dict=True, verbose=0)["loss"]


def test_the_best_epochs_model_is_kept_beside_the_last_and_survives_a_kill(tmp_path, tfds_dir):
    # R6.3. At this rate the MLP's validation loss bottoms out before the last epoch.
    cfg = project_config(
        tmp_path, tfds_dir, train={"epochs": 5, "learning_rate": 0.01}, model={"name": "mlp"}
    )
    best_path = tmp_path / "artifacts" / "best.keras"
    whole = _train(cfg)
    losses = whole.details["history"]["val_loss"]
    best = whole.details["best"]
    assert best["epoch"] == int(np.argmin(losses)) + 1 == whole.numbers["best_epoch"]
    assert _val_loss_of(best_path, cfg) == pytest.approx(min(losses), abs=1e-5)
    assert _val_loss_of(tmp_path / "artifacts" / "model.keras", cfg) == pytest.approx(
        losses[-1], abs=1e-5
    )
    splits = data.load_splits(cfg.data, seed=cfg.seed)
    on_test = keras.models.load_model(best_path).evaluate(splits.test, return_dict=True, verbose=0)
    assert best["best_test_loss"] == pytest.approx(on_test["loss"], abs=1e-6)
    assert best["last_test_loss"] == whole.numbers["test_loss"]
    assert (tmp_path / "reports" / "runs" / whole.details["run"] / "best.keras").is_file()

    # Killed after epoch 3, resumed: the best of the whole run, whichever part it was in.
    with pytest.raises(_Interrupt):
        _train(cfg, callbacks=[_StopAfter(3)])
    resumed = _train(cfg)
    losses = resumed.details["history"]["val_loss"]
    assert resumed.numbers["resumed_from_epoch"] == 4 and len(losses) == 5
    assert resumed.details["best"]["epoch"] == int(np.argmin(losses)) + 1
    assert _val_loss_of(best_path, cfg) == pytest.approx(min(losses), abs=1e-5)

    off = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, best_model_path=""))
    assert _train(off).details["best"]["path"] is None  # "" keeps none


def test_recipe_defaults(tmp_path, tfds_dir):
    # R3.2/R3.4: Adam at 3e-4 with a constant rate; R2.2: nothing but the model in the graph.
    cfg = TrainConfig()
    model = compile_model(models.build("linear", (8, 8, 1), 10), cfg)
    assert isinstance(model.optimizer, keras.optimizers.Adam)
    assert float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)) == pytest.approx(3e-4)
    assert not isinstance(
        model.optimizer.learning_rate, keras.optimizers.schedules.LearningRateSchedule
    )
    assert model.loss.get_config()["from_logits"] is True


def test_compile_model_creates_the_optimizer_state_so_the_first_step_traces_once():
    # On TF a train function that creates variables is traced twice; building the
    # optimizer at compile time leaves one trace. Training is the same either way.
    x = np.random.default_rng(0).random((32, 8, 8, 1)).astype("float32")
    y = np.arange(32) % 10

    def run(build: bool) -> tuple[list[float], int]:
        keras.utils.set_random_seed(0)
        model = models.build("linear", (8, 8, 1), 10)
        if build:
            model = compile_model(model, TrainConfig())
            assert model.optimizer.built
        else:
            model.compile(
                optimizer=keras.optimizers.Adam(3e-4),
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            )
            assert not model.optimizer.built
        traces = []
        step = model.train_step
        model.train_step = lambda *args: traces.append(1) or step(*args)
        losses = [model.train_on_batch(x, y, return_dict=True)["loss"] for _ in range(3)]
        return losses, len(traces)

    built, deferred = run(True), run(False)
    np.testing.assert_allclose(built[0], deferred[0], rtol=1e-6)
    if keras.backend.backend() == "tensorflow":
        assert (built[1], deferred[1]) == (1, 2)


def test_public_surface_is_declared_and_real():
    # ruff's RUF022 keeps each __all__ sorted; this holds that every name exists.
    import importlib

    names = ("config", "data", "models", "report", "seed", "train", "figures", "new", "cli")
    audit = ("audit", "audit.read", "audit.examples", "audit.pixels", "audit.duplicates")
    audit += ("audit.stats", "audit.noise")
    for name in (*names, *audit, "audit.classes", "audit.errors", "audit.run"):
        module = importlib.import_module(f"recipe_keras.{name}")
        assert len(set(module.__all__)) == len(module.__all__), name
        for member in module.__all__:
            assert hasattr(module, member), f"recipe_keras.{name}.{member}"


def test_inspect_adds_the_trained_models_mistakes(tmp_path, tfds_dir):
    # R1.8 predicts on the audit's own copy of the test split through the training
    # preprocessing: its accuracy must equal the one fit_and_evaluate measured.
    from recipe_keras.audit import inspect_dataset

    config = project_config(tmp_path, tfds_dir)
    set_seed(config.seed)
    splits = data.load_splits(config.data, config.seed)
    model = compile_model(models.build("cnn", splits.input_shape, splits.num_classes), config.train)
    train = fit_and_evaluate(model, splits, config)
    report = inspect_dataset(
        config.data,
        tmp_path / "inspect",
        config.inspect,
        model_path=config.train.model_path,
        verbose=False,
    )
    r18 = next(c for c in report.details["checks"] if c["recipe_id"] == "R1.8")
    assert r18["numbers"]["accuracy"] == pytest.approx(train.numbers["test_accuracy"], abs=1e-6)
    confusion = np.array(r18["numbers"]["confusion"])
    assert confusion.sum() == TEST_SIZE
    assert np.trace(confusion) / TEST_SIZE == pytest.approx(r18["numbers"]["accuracy"])
    worst = report.details["findings"]["top_loss"]
    assert [w["loss"] for w in worst] == sorted((w["loss"] for w in worst), reverse=True)
    assert all(w["id"].startswith("test:") for w in worst)
    assert {"inspect/confusion.png", "inspect/top_loss.png"} <= set(report.figures)


def _project(config: Config, network=models):
    """A project contract built in place: the library's loader and the zoo's build_model."""
    import types

    from recipe_keras.project import Project

    net = types.SimpleNamespace(
        build_model=lambda shape, classes, mc: models.from_config(mc, shape, classes)
    )
    if network is not models:
        net = network
    loader = types.SimpleNamespace(load_data=lambda c: data.load_splits(c.data, seed=c.seed))
    return Project(config, None, loader, net, types.SimpleNamespace(run=None))


@pytest.mark.parametrize("schedule", ["exponential", "cosine"])
def test_checks_and_training_apply_one_learning_rate_at_every_step(tmp_path, tfds_dir, schedule):
    # One build-and-compile path: the model make check trains is compiled with the
    # schedule make train places over its planned steps (21 a epoch here, 20 epochs).
    from recipe_keras.checks.suite import project_subject
    from recipe_keras.train import build_compiled

    config = project_config(
        tmp_path,
        tfds_dir,
        data={"batch_size": 64},
        train={"epochs": 20, "lr_schedule": schedule, "learning_rate": 1e-3},
    )
    project = _project(config)
    subject = project_subject(project)
    splits = subject.splits
    steps = splits.steps_per_epoch(config.data.batch_size)
    assert steps == 21
    checked = subject.model().optimizer
    trained = build_compiled(project.network, splits, config).optimizer

    def rate(optimizer, k: int) -> float:
        optimizer.iterations.assign(k)
        return float(keras.ops.convert_to_numpy(optimizer.learning_rate))

    total = steps * config.train.epochs
    for k in (0, 5, 25, 100, 258, total // 2, total):
        if schedule == "exponential":  # times lr_decay_rate each epoch, continuously
            expected = 1e-3 * 0.9 ** (k / steps)
        else:  # to 0 at the last planned step
            expected = 1e-3 * 0.5 * (1 + math.cos(math.pi * min(k, total) / total))
        assert rate(checked, k) == pytest.approx(expected, rel=1e-4, abs=1e-9), k
        assert rate(trained, k) == pytest.approx(rate(checked, k), rel=1e-6, abs=1e-12), k


def test_the_converged_linear_baseline_matches_scikit_learn(tmp_path, tfds_dir):
    # R2.7 done properly: on the digits a linear model fitted to convergence is as good
    # as scikit-learn's LogisticRegression fitted on the same split's raw pixels.
    from sklearn.linear_model import LogisticRegression

    from recipe_keras.baselines import fit_linear

    config = project_config(tmp_path, tfds_dir)
    splits = data.load_splits(config.data, seed=config.seed)
    ours = fit_linear(splits, seed=config.seed)
    x_train, y_train = _collect(splits.train)
    x_test, y_test = _collect(splits.test)
    reference = LogisticRegression(max_iter=5000).fit(x_train.reshape(len(x_train), -1), y_train)
    expected = reference.score(x_test.reshape(len(x_test), -1), y_test)
    assert ours["converged"] and ours["train_examples"] == splits.sizes["train"]
    assert abs(ours["test_accuracy"] - expected) <= 0.02
    assert ours["test_accuracy"] > 0.9  # far above chance: the comparison is not vacuous


def test_make_train_sets_the_network_beside_the_converged_linear_baseline(tmp_path, tfds_dir):
    # Two epochs of a small MLP do not beat a converged linear model on the digits: the
    # run says so (R2.7 warn), and R2.5 is applied by the run and reported.
    from recipe_keras.train import build_compiled, callbacks, evaluate, init_from_priors

    config = project_config(tmp_path, tfds_dir, model={"name": "mlp", "width": 4})
    project = _project(config)
    set_seed(config.seed)
    splits = project.load_data()
    model = build_compiled(project.network, splits, config)
    init = init_from_priors(model, splits)
    # R2.5 applied by the run: the final bias holds the log priors of the training labels.
    labels = data.labels_of(splits.train)
    priors = np.bincount(labels, minlength=10) / len(labels)
    bias = keras.ops.convert_to_numpy(model.layers[-1].bias)
    np.testing.assert_allclose(bias, np.log(priors), rtol=1e-6)
    history = model.fit(
        splits.train,
        validation_data=splits.val,
        epochs=2,
        shuffle=False,
        callbacks=callbacks(config, splits),
        verbose=0,
    )
    report = evaluate(model, history, splits, config, init=init)
    n = report.numbers
    assert n["linear_test_accuracy"] > n["test_accuracy"] + 0.01
    assert report.verdicts["R2.7"] == "warn" and "linear model" in report.details["advice"]["R2.7"]
    baselines = report.details["baselines"]
    assert baselines["linear_converged"]["test_accuracy"] == n["linear_test_accuracy"]
    assert report.verdicts["R2.5"] == "pass"
    assert (n["init_loss_before"], n["init_loss_after"]) == (
        init.numbers["loss_before"],
        init.numbers["loss_after"],
    )
    # R3.2 follows the recipe's rate for the model: 3e-4 for an MLP here (pass).
    assert n["learning_rate"] == pytest.approx(3e-4) and report.verdicts["R3.2"] == "pass"
    # Verdicts only where something was measured: artefacts are "info".
    assert report.verdicts["R2.3"] == "info" and report.verdicts["R2.2"] == "info"


def test_r32_follows_the_recipes_rate_for_each_zoo_model(tmp_path, tfds_dir):
    from recipe_keras.config import recipe_learning_rate
    from recipe_keras.train import build_compiled, fit_and_evaluate

    assert recipe_learning_rate("linear") == 3e-3 and recipe_learning_rate("cnn") == 3e-4
    for rate, verdict in ((3e-3, "pass"), (3e-4, "warn")):
        cfg = project_config(
            tmp_path / str(rate),
            tfds_dir,
            model={"name": "linear"},
            train={"epochs": 1, "learning_rate": rate},
        )
        project = _project(cfg)
        splits = project.load_data()
        report = fit_and_evaluate(build_compiled(project.network, splits, cfg), splits, cfg)
        assert report.verdicts["R3.2"] == verdict, rate


def test_a_diverging_run_stops_at_once_and_fails_in_strict_json(tmp_path, tfds_dir, capsys):
    # A loss that turns NaN stops training in that epoch, names where, fails R2.9, keeps
    # the weights it cannot trust out of model_path, and train.json stays strict JSON.
    import json

    from recipe_keras.train import build_compiled, fit_and_evaluate

    cfg = project_config(
        tmp_path, tfds_dir, model={"name": "mlp"}, train={"epochs": 5, "learning_rate": 1e12}
    )
    project = _project(cfg)
    splits = project.load_data()
    stale = tmp_path / "artifacts" / "best.keras"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"an older run's best model")
    report = fit_and_evaluate(build_compiled(project.network, splits, cfg), splits, cfg)
    out = capsys.readouterr().out
    assert "R2.9 FAIL: the training loss became nan at epoch 1, step" in out
    assert report.numbers["epochs_run"] == 1 and report.verdicts["R2.9"] == "fail"
    assert "lower train.learning_rate" in report.details["advice"]["R2.9"]
    assert not (tmp_path / "artifacts" / "model.keras").exists()
    # No epoch worth keeping: the older run's best model is gone, not passed off as this one's.
    assert not stale.exists() and report.numbers["best_epoch"] is None

    def refuse(constant):
        raise ValueError(f"not strict JSON: {constant}")

    text = (tmp_path / "reports" / "train.json").read_text()
    on_disk = json.loads(text, parse_constant=refuse)
    assert on_disk["details"]["history"]["loss"] == [None]


def test_heartbeat_speaks_within_long_epochs_and_matches_kerass_epoch_loss(capsys):
    """A clock that moves 5 s a call: a line every second batch (every 8 s); the last
    batch's running loss is the epoch's loss that Keras logs."""
    from recipe_keras.callbacks import Heartbeat

    set_seed(0)
    x = np.random.default_rng(0).normal(size=(32, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("int32")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    ticks = iter(range(0, 10_000, 5))
    beat = Heartbeat(clock=lambda: next(ticks))
    history = model.fit(
        x, y, batch_size=8, epochs=2, validation_data=(x[:16], y[:16]), verbose=0, callbacks=[beat]
    )
    lines = capsys.readouterr().out.splitlines()
    # Per epoch: 4 batches (lines at batches 2 and 4), then 2 validation batches (line at 2).
    assert [line.split(",")[0] for line in lines] == [
        "  epoch 1/2: 2/4 batches",
        "  epoch 1/2: 4/4 batches",
        "  epoch 1 validation: 2 batches",
        "  epoch 2/2: 2/4 batches",
        "  epoch 2/2: 4/4 batches",
        "  epoch 2 validation: 2 batches",
    ]
    assert (
        lines[0]
        == f"  epoch 1/2: 2/4 batches, 10 s in, about 10 s left, {lines[0].split(', ')[-1]}"
    )
    for epoch, line in ((0, lines[1]), (1, lines[4])):
        shown = float(line.split("loss ")[1])
        assert shown == pytest.approx(history.history["loss"][epoch], abs=1e-4)
    # A lone evaluate names itself and counts its batches; a fast pass prints nothing.
    model.evaluate(
        x,
        y,
        batch_size=8,
        verbose=0,
        callbacks=[Heartbeat("whole test split", clock=lambda: next(ticks))],
    )
    assert (
        capsys.readouterr()
        .out.splitlines()[-1]
        .startswith("  whole test split: 4/4 batches, 20 s in")
    )
    model.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[Heartbeat()])
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("update_freq", ["epoch", 1])
def test_epoch_tensorboard_writes_what_kerass_own_writes(tmp_path, update_freq):
    """It skips Keras's batch-level scalar calls only where they record nothing: the
    event files hold the same records as Keras's own callback's, per epoch or per step."""
    import collections

    import tensorflow as tf

    from recipe_keras.callbacks import EpochTensorBoard

    x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("int32")

    def records(callback, folder: Path) -> collections.Counter:
        set_seed(0)
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
        model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        logs = callback(str(folder), update_freq=update_freq)
        model.fit(x, y, batch_size=16, epochs=2, verbose=0, callbacks=[logs])
        found = collections.Counter()
        for events in folder.rglob("events.out.tfevents.*"):
            for event in tf.compat.v1.train.summary_iterator(str(events)):
                found.update(f"{events.parent.name}/{v.tag}" for v in event.summary.value)
                found[f"{events.parent.name}/graph"] += event.HasField("graph_def")
        return found

    ours = records(EpochTensorBoard, tmp_path / "ours")
    assert ours == records(keras.callbacks.TensorBoard, tmp_path / "keras")
    assert ours["train/epoch_loss"] == 2
    assert ours["train/batch_loss"] == (8 if update_freq == 1 else 0)  # 4 steps an epoch


def test_a_long_pass_over_labels_says_so(capsys):
    from recipe_keras.progress import ticking

    ticks = iter(range(0, 1000, 3))  # 3 s a call: a line at every third batch (9 s)
    seen = list(ticking(range(7), "reading labels", clock=lambda: next(ticks)))
    assert seen == list(range(7))
    assert capsys.readouterr().out.splitlines() == [
        "  reading labels: 3 batches, 9 s in",
        "  reading labels: 6 batches, 18 s in",
    ]


def test_a_silent_call_gets_a_line_every_few_seconds(capsys):
    from recipe_keras.progress import waiting

    with waiting("R2.7 linear model", every=0.2):
        time.sleep(0.5)
    lines = capsys.readouterr().out.splitlines()
    assert lines == ["  R2.7 linear model: still running, 0 s in"] * 2
    with pytest.raises(KeyError), waiting("a failing call", every=0.2):
        raise KeyError("the ticker stops with it")
    time.sleep(0.3)
    assert capsys.readouterr().out == ""
