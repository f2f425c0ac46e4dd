"""A generated project, end to end on the current backend: install, train, its own tests, lint.

This is what a user does on day one; run once per backend by scripts/run_tests.py.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from tests.conftest import BACKENDS, PYTHON, read_json, render, run

pytestmark = [pytest.mark.backend, pytest.mark.slow]

BACKEND = os.environ.get("KERAS_BACKEND", "tensorflow")
# The project's dependencies are already in this venv; --no-deps keeps recipe-keras editable.
MAKE = ["make", f"PYTHON={PYTHON}", "PIP_FLAGS=--no-deps --no-build-isolation"]


def test_make_install_train_test_lint(tmp_path, tfds_dir):
    project = render(tmp_path, backend=BACKEND)
    run([*MAKE, "install"], cwd=project)
    # No KERAS_BACKEND: the project's config.toml picks the backend.
    proc = run([*MAKE, "train"], cwd=project, KERAS_BACKEND=None)
    assert f"[{BACKEND}] test accuracy" in proc.stdout
    report = read_json(project / "reports" / "train.json")
    n = report["numbers"]
    assert report["backend"] == BACKEND and report["step"] == "train"
    assert n["seed"] == 42 and n["epochs"] == n["epochs_run"] == 40
    assert report["details"]["sizes"]["test"] == 360  # the whole test split
    assert n["chance_accuracy"] == pytest.approx(0.1)
    epoch_seconds = report["details"]["epoch_seconds"]
    assert len(epoch_seconds) == 40
    assert n["fit_seconds"] == pytest.approx(sum(epoch_seconds), abs=1e-3)  # rounded to ms
    # R2.5 applied by the run itself: balanced digits barely move the loss at init.
    assert report["verdicts"]["R2.5"] == "pass"
    assert abs(n["init_loss_after"] - n["init_loss_before"]) < 0.05
    # The first run shows the recipe working: the network beats the converged linear
    # baseline by the recipe's margin on the embedded digits, and R2.7 says so.
    assert n["test_accuracy"] >= n["linear_test_accuracy"] + 0.01, n
    assert n["beats_linear_by"] == pytest.approx(n["test_accuracy"] - n["linear_test_accuracy"])
    assert report["verdicts"]["R2.7"] == "pass" and "R2.7 WARN" not in proc.stdout
    assert (project / "artifacts" / "model.keras").is_file()
    assert (project / "reports" / "train_curves.png").is_file()
    # The project's own tests pass at birth, and its code is lint-clean.
    run([*MAKE, "test"], cwd=project, KERAS_BACKEND=None)
    run([*MAKE, "lint"], cwd=project)
    help_text = run(["make", "help"], cwd=project).stdout
    for target in (
        "install",
        "recipe",
        "inspect",
        "check",
        "human-sheet",
        "human-score",
        "train",
        "ladder",
        "learning-curve",
        "tune",
        "report",
        "tensorboard",
        "test",
        "lint",
    ):
        assert f"make {target} " in help_text

    # Step 1 after training: the audit passes on the embedded digits, and R1.8's accuracy,
    # measured on the audit's own copy of the test split, is the one training reported.
    proc = run([*MAKE, "inspect"], cwd=project, KERAS_BACKEND=None)
    assert "read test: 360 examples" in proc.stdout and "FAIL" not in proc.stdout
    inspect = read_json(project / "reports" / "inspect.json")
    assert inspect["recipe_ids"] == [f"R1.{i}" for i in range(1, 9)]
    r18 = next(c for c in inspect["details"]["checks"] if c["recipe_id"] == "R1.8")
    assert r18["numbers"]["accuracy"] == pytest.approx(n["test_accuracy"], abs=1e-6)

    # Step 2 on the project's own pipeline and model: every check passes, exit 0.
    proc = run([*MAKE, "check"], cwd=project, KERAS_BACKEND=None)
    assert "R2.12" in proc.stdout and "FAIL" not in proc.stdout
    check = read_json(project / "reports" / "check.json")
    assert set(check["verdicts"].values()) == {"pass"} and check["backend"] == BACKEND
    run([*MAKE, "human-sheet"], cwd=project, KERAS_BACKEND=None)
    assert (project / "reports" / "human" / "sheet.csv").is_file()
    # Step 5 through the project's build_model: a 2-trial, 1-epoch search.
    config = (project / "config.toml").read_text()
    assert "trials = 10\n" in config and "epochs = 5\n" in config
    small = config.replace("trials = 10\n", "trials = 2\n").replace("epochs = 5\n", "epochs = 1\n")
    (project / "tune.toml").write_text(small)
    proc = run([*MAKE, "tune", "CONFIG=tune.toml"], cwd=project, KERAS_BACKEND=None)
    assert proc.stdout.count("trial done") == 2
    # Progress: which trial of how many, its values, a line per epoch.
    assert "trial 2 of 2, " in proc.stdout and "about " in proc.stdout
    assert proc.stdout.count("    epoch 1/1: ") == 2
    tune = read_json(project / "reports" / "tune.json")
    assert tune["numbers"]["trials"] == 2 and tune["verdicts"]["R5.1"] == "pass"
    assert (project / "artifacts" / "tune" / "best.keras").is_file()
    # One page with every step's verdicts, and TensorBoard logs from training.
    run([*MAKE, "report"], cwd=project)
    page = (project / "reports" / "index.html").read_text()
    assert 'data-id="R2.12"' in page and "train_curves.png" in page
    assert "inspect/confusion.png" in page
    # TensorBoard: the training run in its own folder, and each tune trial in its own.
    run_name = read_json(project / "reports" / "train.json")["details"]["run"]
    logs = project / "reports" / "runs" / run_name / "tensorboard"
    assert list(logs.rglob("events.out.tfevents.*"))
    trials = project / "reports" / "tune" / "tensorboard"
    events = trials.rglob("events.out.tfevents.*")
    # Named by KerasTuner's trial ids, so workers of one search never share a folder.
    assert {path.relative_to(trials).parts[0] for path in events} == {"trial-0", "trial-1"}


@pytest.mark.skipif(BACKEND != "tensorflow", reason="the exit code is backend-independent")
def test_make_check_fails_on_a_planted_bug(tmp_path, tfds_dir):
    project = render(tmp_path, backend=BACKEND)
    data_py = project / "digits_classifier" / "data.py"
    # A pipeline bug: every input becomes zeros. The model cannot beat the baselines.
    data_py.write_text(
        data_py.read_text()
        + """

_load_data = load_data


def load_data(config):
    import dataclasses

    import tensorflow as tf

    splits = _load_data(config)
    def zero(ds):
        return ds.map(lambda x, y: (tf.zeros_like(x), y))

    return dataclasses.replace(
        splits, train=zero(splits.train), val=zero(splits.val), test=zero(splits.test)
    )
"""
    )
    # `make recipe` stops at step 1: the audit reads what load_data returns, blank
    # images, and fails R1.4; the report is still rendered.
    proc = subprocess.run([*MAKE, "recipe"], cwd=project, capture_output=True, text=True)
    assert proc.returncode != 0
    inspect = read_json(project / "reports" / "inspect.json")
    assert inspect["verdicts"]["R1.4"] == "fail"
    assert not (project / "reports" / "train.json").exists()  # train never ran
    assert (project / "reports" / "index.html").is_file()
    # Step 2 on the same load_data: the model cannot beat the input-blind baselines.
    proc = subprocess.run([*MAKE, "check"], cwd=project, capture_output=True, text=True)
    assert proc.returncode != 0
    assert "R2.7 FAIL: the model does no better than one that never sees its inputs" in proc.stdout
    check = read_json(project / "reports" / "check.json")
    assert check["verdicts"]["R2.7"] == "fail"
    run([*MAKE, "report"], cwd=project)
    assert "never sees its inputs" in (project / "reports" / "index.html").read_text()


def test_keras_backend_switches_without_regenerating(tmp_path, tfds_dir):
    # A project generated for another backend runs on this one when KERAS_BACKEND says so.
    other = BACKENDS[(BACKENDS.index(BACKEND) + 1) % len(BACKENDS)]
    project = render(tmp_path, backend=other, epochs="2", model="linear")
    run([*MAKE, "train"], cwd=project, KERAS_BACKEND=BACKEND)
    report = read_json(project / "reports" / "train.json")
    assert (report["backend"], report["details"]["config"]["backend"]) == (BACKEND, other)


@pytest.mark.skipif(BACKEND != "tensorflow", reason="one run covers every command")
def test_every_command_runs_on_the_backend_of_the_config_it_is_given(tmp_path, tfds_dir):
    # config.toml says tensorflow; alt.toml says jax. Every step given alt.toml, with no
    # KERAS_BACKEND in the environment, must run on JAX and say so in its report.
    project = render(tmp_path, backend="tensorflow", epochs="1", model="linear")
    run([*MAKE, "install"], cwd=project)
    text = (project / "config.toml").read_text()
    for old, new in (
        ('backend = "tensorflow"', 'backend = "jax"'),
        ('reports_dir = "reports"', 'reports_dir = "alt"'),
        ("trials = 10\n", "trials = 1\n"),
        ("epochs = 5\n", "epochs = 1\n"),
        ("epochs = 10\n", "epochs = 1\n"),
        ("fractions = [0.1, 0.25, 0.5, 1.0]", "fractions = [1.0]"),
        ('{ "data.augment" = ["rotate", "translate"] },\n  { "model.dropout" = 0.25 },\n', ""),
    ):
        assert old in text, old
        text = text.replace(old, new)
    (project / "alt.toml").write_text(text)
    steps = ("inspect", "check", "train", "tune", "ladder", "learning-curve", "human-sheet")
    for step in steps:
        run([*MAKE, step, "CONFIG=alt.toml"], cwd=project, KERAS_BACKEND=None)
    run([*MAKE, "report", "CONFIG=alt.toml"], cwd=project)
    reports = {p.stem: read_json(p) for p in (project / "alt").glob("*.json")}
    assert set(reports) == {"inspect", "check", "train", "tune", "ladder", "learning_curve"}
    assert {name: r["backend"] for name, r in reports.items()} == dict.fromkeys(reports, "jax")
    assert (project / "alt" / "human" / "sheet.csv").is_file()
    assert "on jax" in (project / "alt" / "index.html").read_text()
    assert not (project / "reports").exists()  # nothing went to config.toml's folder


KILLER = '''

import os
import signal

import keras


class _Killer(keras.callbacks.Callback):
    """SIGKILL at KILL_AT: "epoch:E" after epoch E's backup, "batch:E:B" mid-epoch."""

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch + 1

    def on_epoch_end(self, epoch, logs=None):
        if os.environ.get("KILL_AT") == f"epoch:{epoch + 1}":
            os.kill(os.getpid(), signal.SIGKILL)

    def on_train_batch_end(self, batch, logs=None):
        if os.environ.get("KILL_AT") == f"batch:{self.epoch}:{batch + 1}":
            os.kill(os.getpid(), signal.SIGKILL)


_KILL_AT = os.environ.get("KILL_AT", "")
if _KILL_AT == "save" or _KILL_AT.startswith("best:"):
    # "save": killed with the final model written to its temporary file, not moved;
    # "best:N": the same, at the Nth save of the best model (an epoch's end).
    _save, _best_saves = keras.Model.save, []

    def _dying(self, path, *args, **kwargs):
        _save(self, path, *args, **kwargs)
        name = os.path.basename(str(path))
        if _KILL_AT == "save" and name.startswith(".model."):
            os.kill(os.getpid(), signal.SIGKILL)
        if name.startswith(".best."):
            _best_saves.append(name)
            if _KILL_AT == f"best:{len(_best_saves)}":
                os.kill(os.getpid(), signal.SIGKILL)

    keras.Model.save = _dying

_callbacks = recipe.callbacks
recipe.callbacks = lambda config, splits: [*_callbacks(config, splits), _Killer()]
'''


def test_a_killed_run_resumes_to_the_uninterrupted_result(tmp_path, tfds_dir):
    # SIGKILL at three points; each rerun finishes where an uninterrupted seeded run
    # does: the shuffle order continues (it is the epoch's), the backup restores the
    # weights and the optimizer, and train.json holds the whole history.
    project = render(tmp_path, backend=BACKEND, epochs="6", model="mlp")
    run([*MAKE, "install"], cwd=project)
    train_py = project / "digits_classifier" / "train.py"
    train_py.write_text(train_py.read_text() + KILLER)

    def train(**env: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [*MAKE, "train"], cwd=project, env={**os.environ, **env}, capture_output=True, text=True
        )

    def result() -> dict:
        report = read_json(project / "reports" / "train.json")
        keys = ("test_accuracy", "test_loss", "train_loss", "val_loss", "epochs_run")
        return {
            "numbers": {k: report["numbers"][k] for k in keys},
            "loss": report["details"]["history"]["loss"],
            "resumed": report["numbers"]["resumed_from_epoch"],
        }

    def result_best() -> dict:
        best = read_json(project / "reports" / "train.json")["details"]["best"]
        assert (project / "artifacts" / "best.keras").is_file()
        return {k: best[k] for k in ("epoch", "value", "best_test_loss", "best_test_accuracy")}

    assert train().returncode == 0
    reference = result()
    assert reference["resumed"] is None and len(reference["loss"]) == 6
    best = result_best()
    # The epochs whose end saves a best model: the third one's is killed mid-save.
    val = read_json(project / "reports" / "train.json")["details"]["history"]["val_loss"]
    improving = [i + 1 for i, v in enumerate(val) if all(v < w for w in val[:i])]
    # Keras writes an epoch's weights, then its number: a kill between the two leaves
    # epoch 4's weights labelled 3 (forged here), or an empty label. The backup's
    # digests catch both, and the run resumes from the copy before (epoch 3's).
    metadata = project / "artifacts" / "backup" / "training_metadata.json"
    forged = ("forged", lambda: metadata.write_text('{"epoch": 3, "batch": 0}'))
    emptied = ("emptied", lambda: metadata.write_text(""))
    kills = (
        ("epoch:2", None, 3),
        ("batch:4:5", None, 4),
        ("best:3", None, improving[2]),
        ("save", None, 7),  # training had ended: the rerun measures, trains no epoch
        ("epoch:4", forged, 4),
        ("epoch:4", emptied, 4),
    )
    for kill_at, damage, resumed in kills:
        for leftover in ("reports", "artifacts"):
            shutil.rmtree(project / leftover, ignore_errors=True)
        killed = train(KILL_AT=kill_at)
        assert killed.returncode != 0, kill_at
        assert not (project / "artifacts" / "model.keras").exists()  # never half a model
        if damage is not None:
            kill_at = f"{kill_at}, {damage[0]}"
            damage[1]()
        rerun = train()
        assert rerun.returncode == 0, (kill_at, rerun.stderr[-2000:])
        if damage is not None:
            assert "resuming from the copy before it, after epoch 3" in rerun.stdout, kill_at
        again = result()
        assert again["resumed"] == resumed, kill_at
        if kill_at == "save":
            assert "Epoch 1/6" not in rerun.stdout and again["numbers"]["epochs_run"] == 6
        assert len(again["loss"]) == 6, kill_at  # never an epoch too many
        # R6.3: the kept best model is the whole run's, whatever the kill interrupted.
        assert result_best()["epoch"] == best["epoch"], kill_at
        if BACKEND == "tensorflow":  # bit-identical
            assert again["numbers"] == reference["numbers"], kill_at
            assert again["loss"] == reference["loss"], kill_at
            assert result_best() == best, kill_at
        else:
            assert again["numbers"] == pytest.approx(reference["numbers"], rel=1e-4), kill_at
            assert again["loss"] == pytest.approx(reference["loss"], rel=1e-4), kill_at


def test_a_backup_of_another_config_is_refused_in_one_line(tmp_path, tfds_dir):
    project = render(tmp_path, backend=BACKEND, epochs="3", model="linear")
    run([*MAKE, "install"], cwd=project)
    train_py = project / "digits_classifier" / "train.py"
    train_py.write_text(train_py.read_text() + KILLER)
    env = {**os.environ, "KILL_AT": "epoch:1"}
    subprocess.run([*MAKE, "train"], cwd=project, env=env, capture_output=True)
    assert (project / "artifacts" / "backup").is_dir()
    config = project / "config.toml"
    config.write_text(config.read_text().replace("learning_rate = 3e-3", "learning_rate = 1e-3"))
    proc = subprocess.run([*MAKE, "train"], cwd=project, capture_output=True, text=True)
    assert proc.returncode == 2
    assert "was trained with another config (train.learning_rate was 0.003, is 0.001)" in (
        proc.stderr
    )
    assert "Traceback" not in proc.stderr
