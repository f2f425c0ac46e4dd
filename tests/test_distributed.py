"""R5.3 on each backend: `recipe-keras tune --workers 2` (KerasTuner's chief and two
local workers on 127.0.0.1) runs every trial once and the chief writes the results;
a worker killed mid-trial loses that trial only, and the same command finishes it."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import keras
import pytest

from recipe_keras.workers import role, shares
from tests.conftest import render

pytestmark = pytest.mark.backend

# Bounded: three Keras imports, short trials and the chief's 20 s poll take about a
# minute alone; three backends at once on two cores take a few.
TIMEOUT = 600


@pytest.fixture(scope="module")
def project(tmp_path_factory, tfds_dir) -> Path:
    return render(tmp_path_factory.mktemp("dist"), backend=keras.backend.backend())


def _config(project: Path, name: str, tmp: Path, **tune: object) -> str:
    """config.toml with [tune] settings replaced and outputs under ``tmp``."""
    text = (project / "config.toml").read_text()
    head, section = text.split("\n[tune]\n", 1)
    settings = {"directory": str(tmp / "tune"), **tune}
    for key, value in settings.items():
        section, n = re.subn(rf"(?m)^{key} = .*$", f"{key} = {json.dumps(value)}", section, count=1)
        assert n == 1, key
    text = f"{head}\n[tune]\n{section}"
    text, n = re.subn(
        r"(?m)^reports_dir = .*$", f"reports_dir = {json.dumps(str(tmp / 'r'))}", text
    )
    assert n == 1
    (project / name).write_text(text)
    return name


def _command(name: str) -> list[str]:
    return [sys.executable, "-m", "recipe_keras.cli", "tune", "--config", name, "--workers", "2"]


def _search(project: Path, name: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        _command(name),
        cwd=project,
        env=_env(project),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )


def _env(project: Path) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(project), "KERAS_BACKEND": keras.backend.backend()}
    for key in (
        *("KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT", "KERASTUNER_TUNER_ID"),
        *("KERAS_DISTRIBUTION_NUM_PROCESSES", "KERAS_DISTRIBUTION_PROCESS_ID", "TF_CONFIG"),
    ):
        env.pop(key, None)
    return env


STARTED = re.compile(r"^(tuner\d): trial (\d+) \(its ", re.M)
DONE = re.compile(r"^(tuner\d): trial (\d+) done,", re.M)


@pytest.mark.slow
@pytest.mark.parametrize("algorithm", ["random", "bayesian", "hyperband"])
def test_two_workers_run_every_trial_once_and_the_chief_writes_the_results(
    project, tmp_path, algorithm
):
    # hyperband: max 3 epochs, factor 3 -> 3 one-epoch trials, then the best continued.
    name = _config(
        project,
        f"{algorithm}.toml",
        tmp_path,
        algorithm=algorithm,
        trials=4,
        epochs=3 if algorithm == "hyperband" else 1,
    )
    proc = _search(project, name)
    out = proc.stdout
    assert proc.returncode == 0, out[-3000:] + proc.stderr[-2000:]
    started, done = STARTED.findall(out), DONE.findall(out)
    ids = [trial for _, trial in started]
    assert len(ids) == len(set(ids)), started  # no trial ran twice
    assert sorted(done) == sorted(started)  # every trial started finished
    assert {worker for worker, _ in started} == {"tuner0", "tuner1"}  # both workers ran trials

    tune = json.loads((tmp_path / "r" / "tune.json").read_text())
    rows = tune["details"]["results"]
    assert sorted(int(r["trial"]) for r in rows) == sorted(int(i) for i in ids)
    assert tune["numbers"]["trials"] == tune["numbers"]["trials_run_now"] == len(ids)
    if algorithm != "hyperband":
        assert len(ids) == 4
    assert tune["verdicts"]["R5.3"] == "info" and tune["details"]["distributed"]
    assert tune["numbers"]["fits"] == 0  # the chief runs no trial
    # The chief exported the best trial's model from the workers' checkpoints.
    best = tmp_path / "tune" / "best.keras"
    score = min(r["score"] for r in rows)
    assert rows[0]["score"] == score and best.is_file()
    logs = tmp_path / "r" / "tune" / "tensorboard"
    assert {p.name for p in logs.iterdir()} == {f"trial-{i}" for i in ids}


@pytest.mark.slow
def test_a_worker_killed_mid_trial_loses_that_trial_only(project, tmp_path):
    name = _config(project, "killed.toml", tmp_path, trials=4, epochs=3)
    proc = subprocess.Popen(
        _command(name),
        cwd=project,
        env=_env(project),
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    seen, pid, killed = [], None, None
    try:
        for line in proc.stdout:
            seen.append(line)
            if pid is None and line.startswith("tuner1: a worker (pid "):
                pid = int(line.split("pid ")[1].split(")")[0])
            started = STARTED.findall("".join(seen))
            mine = [t for w, t in started if w == "tuner1"]
            if killed is None and mine and line.startswith("tuner1 |     epoch 1/3"):
                killed = mine[-1]
                os.kill(pid, signal.SIGKILL)  # mid-trial: after epoch 1 of 3
        proc.wait(timeout=TIMEOUT)
    finally:
        proc.kill()
    out = "".join(seen)
    assert killed is not None, out[-3000:]
    assert proc.returncode == 1, out[-3000:]
    assert "tuner1 stopped (killed by signal 9)" in out
    assert "tuner1 failed; the search is saved" in out
    done_first = {t for _, t in DONE.findall(out)}
    assert killed not in done_first
    assert not (tmp_path / "r" / "tune.json").exists()  # the chief wrote no partial results

    rerun = _search(project, name)
    assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-2000:]
    again = {t for _, t in STARTED.findall(rerun.stdout)}
    assert killed in again and not again & done_first  # finished trials are not re-run
    tune = json.loads((tmp_path / "r" / "tune.json").read_text())
    assert tune["numbers"]["trials"] == 4
    assert tune["numbers"]["trials_run_now"] == 4 - len(done_first)


def test_shares_split_the_cores_and_role_reads_kerastuners_variables(monkeypatch):
    assert shares([0, 1, 2, 3], 2) == [[0, 1], [2, 3]]
    assert shares([0, 1, 2], 2) == [[0], [1]]
    assert shares([0, 1], 3) == [[0], [1], [0]]
    monkeypatch.delenv("KERASTUNER_ORACLE_IP", raising=False)
    monkeypatch.setenv("KERASTUNER_TUNER_ID", "tuner0")
    assert role() == ""  # no oracle address: not distributed
    monkeypatch.setenv("KERASTUNER_ORACLE_IP", "127.0.0.1")
    assert role() == "tuner0"
    monkeypatch.setenv("KERASTUNER_TUNER_ID", "chief")
    assert role() == "chief"


# Two CPU devices, set before the backend starts: XLA's flag for JAX; TensorFlow's
# logical devices (no variable for it) from this prelude, before recipe-keras runs.
TWO_DEVICES = """
import sys
if sys.argv[1] == "tensorflow":
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from recipe_keras.cli import main
sys.exit(main(sys.argv[2:]))
"""


def _train_args(out: Path, *settings: str) -> list[str]:
    """`recipe-keras train` for 3 epochs without dropout, every output under ``out``."""
    where = [
        f"train.reports_dir={out}",
        f"train.model_path={out / 'model.keras'}",
        f"train.best_model_path={out / 'best.keras'}",
        f"train.backup_dir={out / 'backup'}",
    ]
    return ["train", "--set", "train.epochs=3", "model.dropout=0.0", *where, *settings]


def _train(project: Path, out: Path, *settings: str) -> tuple[dict, str]:
    backend = keras.backend.backend()
    args = _train_args(out, *settings)
    env = {**_env(project), "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    # Two logical devices of one CPU stand in for two GPUs. On CPUs where TensorFlow
    # turns oneDNN on (AVX-512), its fused convolutions break in the second replica
    # ("input depth must be evenly divisible by filter depth: 1 vs 32"); GPUs run no
    # oneDNN kernel, so the stand-in runs without it.
    env.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    proc = subprocess.run(
        [sys.executable, "-c", TWO_DEVICES, backend, *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads((out / "train.json").read_text()), proc.stderr


@pytest.mark.slow
def test_data_parallel_on_two_devices_matches_one_device(project, tmp_path):
    one, _ = _train(project, tmp_path / "one")
    two, stderr = _train(project, tmp_path / "two", "train.distribution=data_parallel")
    assert len(one["details"]["devices"]) == 1
    if keras.backend.backend() == "torch":
        # Keras has no data-parallel path on torch: one line says so, one device trains.
        assert stderr.count("has no data-parallel path on the torch backend") == 1
        assert two["details"]["devices"] == one["details"]["devices"]
        return
    devices = two["details"]["devices"]
    assert len(devices) == 2 and len(set(devices)) == 2
    # The same global batch of 64 split in two: the same gradients up to summation
    # order (TF). JAX splits only evenly, so each pass's last training batch (13 of
    # digits' 1,293 examples) loses one example: a looser match there.
    rel = 1e-3 if keras.backend.backend() == "tensorflow" else 5e-3
    n1, n2 = one["numbers"], two["numbers"]
    assert n2["test_loss"] == pytest.approx(n1["test_loss"], rel=rel)
    assert n2["train_loss"] == pytest.approx(n1["train_loss"], rel=rel)
    # Whole-split evaluation uses every example on both (360 test examples).
    assert abs(n2["test_accuracy"] - n1["test_accuracy"]) <= 3 / 360
    assert two["details"]["sizes"] == one["details"]["sizes"]
    history = one["details"]["history"]["loss"]
    assert two["details"]["history"]["loss"] == pytest.approx(history, rel=rel)


def test_data_parallel_on_jax_needs_a_batch_that_splits_evenly(project, tmp_path):
    if keras.backend.backend() != "jax":
        pytest.skip("JAX alone splits batches only evenly")
    backend = keras.backend.backend()
    env = {**_env(project), "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    # Two logical devices of one CPU stand in for two GPUs. On CPUs where TensorFlow
    # turns oneDNN on (AVX-512), its fused convolutions break in the second replica
    # ("input depth must be evenly divisible by filter depth: 1 vs 32"); GPUs run no
    # oneDNN kernel, so the stand-in runs without it.
    env.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    settings = ["train.distribution=data_parallel", "data.batch_size=63", "train.epochs=1"]
    proc = subprocess.run(
        [sys.executable, "-c", TWO_DEVICES, backend, "train", "--set", *settings],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    line = "data.batch_size = 63: JAX's data parallelism splits each batch evenly between"
    assert line in proc.stderr and "the 2 devices; give a multiple of 2" in proc.stderr


def test_data_parallel_on_one_device_steps_aside_in_one_line(capsys):
    from recipe_keras._backend import data_parallel, devices_in_use

    backend = keras.backend.backend()
    if backend == "jax" and len(keras.distribution.list_devices()) > 1:
        pytest.skip("this process sees several devices")
    with data_parallel(64):
        devices = devices_in_use()
        if backend == "jax":
            assert keras.distribution.distribution() is None
        if backend == "tensorflow":
            import tensorflow as tf

            assert not tf.distribute.has_strategy()
    captured = capsys.readouterr()
    assert len(devices) == 1
    if backend == "torch":
        assert "has no data-parallel path on the torch backend" in captured.err
    else:
        line = f'train.distribution = "data_parallel": one device ({devices[0]})'
        assert captured.out.count(line) == 1


def _processes_env(project: Path, port: int, index: int, count: int = 2) -> dict[str, str]:
    """Keras's variables for process ``index`` of a run over ``count`` local processes."""
    return {
        **_env(project),
        "KERAS_DISTRIBUTION_JOB_ADDRESSES": f"127.0.0.1:{port}",
        "KERAS_DISTRIBUTION_NUM_PROCESSES": str(count),
        "KERAS_DISTRIBUTION_PROCESS_ID": str(index),
    }


@pytest.mark.slow
def test_data_parallel_over_two_processes_matches_one_process(project, tmp_path):
    """The same command on two processes (one per host in real use, here both on
    127.0.0.1): one device each, one model trained over both, one set of outputs."""
    from recipe_keras.workers import free_port

    backend = keras.backend.backend()
    out = tmp_path / "two-processes"
    args = _train_args(out, "train.distribution=data_parallel")
    command = [sys.executable, "-m", "recipe_keras.cli", *args]
    port = free_port()
    if backend != "jax":
        # Keras trains over several processes on JAX only; TF's cluster spec is refused
        # too, as Keras 3's fit fails under MultiWorkerMirroredStrategy.
        env = _processes_env(project, port, 0)
        cluster = {"cluster": {"worker": [f"127.0.0.1:{port}", "127.0.0.1:1"]}}
        cases = [(env, "trains over several processes on the JAX backend only")]
        if backend == "tensorflow":
            tf_env = {**_env(project), "TF_CONFIG": json.dumps(cluster | {"task": {"index": 0}})}
            cases.append((tf_env, "MultiWorkerMirroredStrategy (keras-team/keras#20585)"))
        for env, line in cases:
            proc = subprocess.run(
                command, cwd=project, env=env, capture_output=True, text=True, timeout=TIMEOUT
            )
            assert proc.returncode == 2 and line in proc.stderr, proc.stderr[-2000:]
        assert not (out / "train.json").exists()
        return
    temp = [tmp_path / "tmp0", tmp_path / "tmp1"]
    procs = []
    for index, folder in enumerate(temp):
        folder.mkdir()
        env = {**_processes_env(project, port, index), "TMPDIR": str(folder)}
        procs.append(
            subprocess.Popen(
                command, cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
            )
        )
    logs = [p.communicate(timeout=TIMEOUT)[0].decode() for p in procs]
    assert [p.returncode for p in procs] == [0, 0], logs[0][-3000:] + logs[1][-3000:]
    assert "process 0 of 2: 2 devices in all; this process writes the outputs" in logs[0]
    assert "process 1 of 2: 2 devices in all; process 0 writes the outputs" in logs[1]
    assert "report and model: process 0 writes them" in logs[1]
    # Process 1's outputs went to a temporary folder, removed when it ended.
    assert not list(temp[1].glob("recipe-keras-process1-*"))
    two = json.loads((out / "train.json").read_text())
    assert (out / "model.keras").is_file()
    devices = two["details"]["devices"]
    assert len(devices) == 2 and len(set(devices)) == 2
    # Two devices in one process, the same global batch: the same run, as both
    # processes feed their halves of each batch.
    one, _ = _train(project, tmp_path / "one-process", "train.distribution=data_parallel")
    n1, n2 = one["numbers"], two["numbers"]
    for key in ("test_loss", "train_loss", "val_loss", "test_accuracy"):
        assert n2[key] == pytest.approx(n1[key], rel=1e-5), key
    history = one["details"]["history"]["loss"]
    assert two["details"]["history"]["loss"] == pytest.approx(history, rel=1e-5)


def test_process_index_reads_kerass_variables_and_refuses_bad_ones(monkeypatch):
    from recipe_keras._backend import process_index
    from recipe_keras.config import ConfigError

    for name in ("KERAS_DISTRIBUTION_PROCESS_ID", "KERAS_DISTRIBUTION_NUM_PROCESSES"):
        monkeypatch.delenv(name, raising=False)
    assert process_index() == (0, 1)
    monkeypatch.setenv("KERAS_DISTRIBUTION_NUM_PROCESSES", "3")
    monkeypatch.setenv("KERAS_DISTRIBUTION_PROCESS_ID", "2")
    assert process_index() == (2, 3)
    for index, count in (("3", "3"), ("one", "3"), ("0", "-2")):
        monkeypatch.setenv("KERAS_DISTRIBUTION_PROCESS_ID", index)
        monkeypatch.setenv("KERAS_DISTRIBUTION_NUM_PROCESSES", count)
        with pytest.raises(ConfigError, match="give the number of processes and this one's"):
            process_index()


def test_processes_without_a_distribution_say_each_runs_alone(monkeypatch, capsys):
    from recipe_keras.config import from_dict
    from recipe_keras.project import _outputs_of_process

    monkeypatch.setenv("KERAS_DISTRIBUTION_NUM_PROCESSES", "2")
    monkeypatch.setenv("KERAS_DISTRIBUTION_PROCESS_ID", "1")
    plain = from_dict({})
    assert _outputs_of_process(plain) is plain
    line = (
        "warning: KERAS_DISTRIBUTION_NUM_PROCESSES = 2, but train.distribution is not "
        '"data_parallel": each process runs alone and writes its own outputs'
    )
    assert capsys.readouterr().err.count(line) == 1
    # With it: process 1 writes to a temporary folder and backs up beside process 0.
    spread = from_dict({"train": {"distribution": "data_parallel", "backup_dir": "b/backup"}})
    moved = _outputs_of_process(spread).train
    assert moved.backup_dir == "b/backup-process1"
    assert Path(moved.reports_dir).parent.name.startswith("recipe-keras-process1-")
    assert Path(moved.model_path).parent == Path(moved.reports_dir).parent
    assert capsys.readouterr().err == ""
