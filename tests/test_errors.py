"""Bad input, as a hostile but realistic user gives it: one clear line, a non-zero exit.

Every case runs a `recipe-keras` command on a generated project (in a subprocess,
as `make` does) and checks the exit code, the message, that it is one line, and
that no traceback is shown (RECIPE_KERAS_TRACEBACK=1 brings it back). The
template's own answers are refused by its hook (tests/test_template.py).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import render


@pytest.fixture(scope="module")
def project(tmp_path_factory, tfds_dir) -> Path:
    root = render(tmp_path_factory.mktemp("errors"), epochs="1")
    text = (root / "config.toml").read_text()
    (root / "config.toml").write_text(text.replace('data_dir = ""', f'data_dir = "{tfds_dir}"'))
    return root


def recipe(project: Path, step: str, config: str = "config.toml", **env: str):
    full = {**os.environ, "PYTHONPATH": str(project), **env}
    full.pop("KERAS_BACKEND", None)
    if "KERAS_BACKEND" in env:
        full["KERAS_BACKEND"] = env["KERAS_BACKEND"]
    cmd = [sys.executable, "-m", "recipe_keras.cli", step, "--config", config]
    return subprocess.run(cmd, cwd=project, env=full, capture_output=True, text=True, timeout=300)


def variant(project: Path, name: str, *changes: tuple[str, str]) -> str:
    """A copy of config.toml with each (old, new) text replaced; its file name."""
    text = (project / "config.toml").read_text()
    for old, new in changes:
        assert old in text, old
        text = text.replace(old, new, 1)
    (project / name).write_text(text)
    return name


def one_line(proc, code: int, message: str) -> None:
    assert proc.returncode == code, (proc.returncode, proc.stdout[-1500:], proc.stderr[-1500:])
    lines = [line for line in proc.stderr.splitlines() if line.startswith("recipe-keras")]
    assert len(lines) == 1 and message in lines[0], proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr


def image_folder(root: Path, size: int, classes=("a", "b"), empty: str = "") -> Path:
    from PIL import Image

    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for label in classes:
            folder = root / split / label
            folder.mkdir(parents=True, exist_ok=True)
            if label == empty:
                continue
            for i in range(2):
                pixels = rng.integers(0, 255, (size, size), dtype=np.uint8)
                Image.fromarray(pixels, mode="L").save(folder / f"{i}.png")
    return root


LR = "learning_rate = 3e-4"
CONFIG_CASES = [
    (
        "nan rate",
        "train",
        [(LR, "learning_rate = nan")],
        "train.learning_rate = nan is not allowed; expected a finite number",
    ),
    (
        "inf rate",
        "check",
        [(LR, "learning_rate = inf")],
        "train.learning_rate = inf is not allowed",
    ),
    (
        "seed too big",
        "train",
        [("seed = 42", "seed = 4294967296")],
        "seed = 4294967296 is not allowed; expected an integer from 0 to 4294967295",
    ),
    ("negative seed", "tune", [("seed = 42", "seed = -1")], "seed = -1 is not allowed"),
    (
        "model path",
        "train",
        [('model_path = "artifacts/model.keras"', 'model_path = "artifacts/model.h5"')],
        "ending in .keras",
    ),
    (
        "string bound",
        "tune",
        [("min = 1e-4, max = 3e-3", 'min = "small", max = 3e-3')],
        "must be finite numbers",
    ),
    (
        "typo",
        "check",
        [("epochs = 1", "epoch = 1")],
        "unknown key 'train.epoch' (did you mean 'train.epochs'?)",
    ),
    ("no package", "ladder", [('package = "digits_classifier"', "")], "package is not set"),
    (
        "not installed",
        "learning-curve",
        [('package = "digits_classifier"', 'package = "nowhere_pkg"')],
        "cannot import nowhere_pkg.data",
    ),
    ("bad toml", "inspect", [("seed = 42", "seed = ")], "not valid TOML"),
    (
        "bad backend",
        "check",
        [('backend = "tensorflow"', 'backend = "theano"')],
        "backend = 'theano' is not allowed",
    ),
    (
        "bad schedule",
        "train",
        [('lr_schedule = "constant"', 'lr_schedule = "linear"')],
        "train.lr_schedule = 'linear' is not allowed; expected one of",
    ),
    ("zero epochs", "train", [("epochs = 1", "epochs = 0")], "train.epochs = 0 is not allowed"),
    (
        "flip on digits",
        "check",
        [("augment = []", 'augment = ["flip_horizontal"]')],
        "'flip_horizontal' is refused for 'digits'",
    ),
    (
        "bad rung",
        "ladder",
        [('{ "model.width" = 128 },', '{ "model.width" = 128, "model.dropout" = 0.5 },')],
        "changes 2 settings",
    ),
    (
        "reports is a file",
        "check",
        [('reports_dir = "reports"', 'reports_dir = "config.toml/reports"')],
        "is a file, not a folder",
    ),
]


@pytest.mark.parametrize(
    "step, changes, message", [c[1:] for c in CONFIG_CASES], ids=[c[0] for c in CONFIG_CASES]
)
def test_a_bad_config_stops_every_command_in_one_line(project, step, changes, message):
    name = variant(project, f"bad-{step}.toml", *changes)
    one_line(recipe(project, step, name), 2, message)


def test_a_missing_config_and_a_bad_environment(project):
    one_line(recipe(project, "train", "missing.toml"), 2, "no config file at 'missing.toml'")
    proc = recipe(project, "check", KERAS_BACKEND="theano")
    one_line(proc, 2, "KERAS_BACKEND='theano' is not a supported backend")


def test_the_traceback_is_there_on_request(project):
    name = variant(project, "nan.toml", (LR, "learning_rate = nan"))
    proc = recipe(project, "train", name, RECIPE_KERAS_TRACEBACK="1")
    assert proc.returncode != 0 and "Traceback" in proc.stderr
    assert "expected a finite number" in proc.stderr


def _made(*folders: str):
    """A dataset folder with these (empty) folders in it."""

    def make(root: Path) -> str:
        for folder in ("", *folders):
            (root / folder).mkdir(parents=True, exist_ok=True)
        return str(root)

    return make


def _loop(root: Path) -> str:
    """A symbolic link that points at itself through a second one."""
    root.mkdir(parents=True)
    (root / "a").symlink_to(root / "b")
    (root / "b").symlink_to(root / "a")
    return str(root / "a")


def _without_test(root: Path) -> str:
    image_folder(root, 8)
    shutil.rmtree(root / "test")
    return str(root)


DATA_CASES = [
    ("empty", lambda root: "", "data.dataset = '' is not allowed"),
    ("symlink loop", _loop, "cannot be followed: Symlink loop"),
    ("no test split", _without_test, "data.test_split = 'test': "),
    ("one class", lambda root: str(image_folder(root, 8, classes=("a",))), "1 class folder (a)"),
    ("unknown version", lambda root: "mnist:9.9.9", "cannot be loaded at version 9.9.9"),
    ("relative path", lambda root: "images/train_set", "is neither a folder"),
    ("no splits", _made(), "no split folders in it"),
    ("no classes", _made("train", "test"), "no class folders in this split"),
    ("empty class", lambda root: str(image_folder(root, 8, empty="b")), "no image in this class"),
    ("huge images", lambda root: str(image_folder(root, 600)), "stored at 600x600, too large"),
]


@pytest.mark.parametrize(
    "make, message", [c[1:] for c in DATA_CASES], ids=[c[0] for c in DATA_CASES]
)
def test_bad_data_stops_in_one_line_before_training(project, tmp_path, make, message):
    dataset = make(tmp_path / "data")
    name = variant(project, "data.toml", ('dataset = "digits"', f'dataset = "{dataset}"'))
    one_line(recipe(project, "train", name), 2, message)


def test_a_broken_image_names_make_inspect(project, tmp_path):
    root = image_folder(tmp_path / "data", 8)
    (root / "train" / "a" / "0.png").write_bytes(b"")  # a zero-byte file
    name = variant(project, "broken.toml", ('dataset = "digits"', f'dataset = "{root}"'))
    one_line(recipe(project, "train", name), 1, "make inspect lists every broken file")
    # make inspect reads the folder file by file: it names the file, and does not crash.
    proc = recipe(project, "inspect", name)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "train/a/0.png" in (project / "reports" / "inspect.json").read_text()


def test_human_score_before_the_sheet_and_a_sheet_that_holds_labels(project):
    name = variant(project, "human.toml", ('reports_dir = "reports"', 'reports_dir = "human_r"'))
    one_line(recipe(project, "human-score", name), 2, "no sheet at human_r/human/sheet.csv")
    assert recipe(project, "human-sheet", name).returncode == 0
    sheet = project / "human_r" / "human" / "sheet.csv"
    sheet.write_text(sheet.read_text().replace("0,\n", "0,3\n", 1))
    # Drawing again would throw the labels away: refused.
    one_line(recipe(project, "human-sheet", name), 2, "already holds 1 labels of yours")
    one_line(recipe(project, "human-score", name), 2, "example #1 has no label")


@pytest.fixture
def small_disk(tmp_path):
    """A 16 MiB tmpfs (root only, as CI runs): a disk that can be filled and made read-only."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(disk)])
    if mounted.returncode != 0:
        pytest.skip("this machine does not let root mount a tmpfs")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=False)


def _fill(disk: Path, leave_kib: int) -> None:
    (disk / "ballast").unlink(missing_ok=True)
    free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
    with (disk / "ballast").open("wb") as ballast:
        ballast.truncate(0)
        os.posix_fallocate(ballast.fileno(), 0, free - leave_kib * 1024)


@pytest.mark.slow
def test_a_full_or_read_only_disk_stops_in_one_line_and_corrupts_nothing(project, small_disk):
    outputs = small_disk / "out"
    name = variant(
        project,
        "disk.toml",
        ('reports_dir = "reports"', f'reports_dir = "{outputs}/reports"'),
        ('model_path = "artifacts/model.keras"', f'model_path = "{outputs}/model.keras"'),
        ('backup_dir = "artifacts/backup"', f'backup_dir = "{outputs}/backup"'),
        ("epochs = 1", "epochs = 2"),
    )
    assert recipe(project, "train", name).returncode == 0
    report = outputs / "reports" / "train.json"
    first = report.read_bytes()

    # Full: the backup that HDF5 would have crashed on is refused before it is written.
    _fill(small_disk, leave_kib=300)
    # (The best model, staged in the backup folder, comes first.)
    one_line(recipe(project, "train", name), 1, "No space left for epoch 1's best model")
    assert report.read_bytes() == first
    assert zipfile.is_zipfile(outputs / "model.keras")
    assert not list(outputs.rglob("*.tmp*"))

    # Read-only: refused before any training.
    (small_disk / "ballast").unlink()
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    one_line(recipe(project, "train", name), 2, "cannot write in")
    one_line(recipe(project, "report", name), 1, "Read-only file system")
    subprocess.run(["mount", "-o", "remount,rw", str(small_disk)], check=True)
    assert report.read_bytes() == first

    # Space freed: the next run succeeds and matches the first.
    assert recipe(project, "train", name).returncode == 0
    again = json.loads(report.read_text())["numbers"]
    assert again["test_loss"] == json.loads(first)["numbers"]["test_loss"]


def test_a_catalog_dataset_without_network_stops_in_seconds(project):
    name = variant(project, "mnist.toml", ('dataset = "digits"', 'dataset = "mnist"'))
    closed = "http://127.0.0.1:9"  # a closed local port: no traffic leaves the machine
    proxies = {k: closed for k in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy")}
    proc = recipe(project, "train", name, NO_PROXY="", no_proxy="", **proxies)
    one_line(proc, 1, "'mnist' is not prepared in")
    assert "tfds build mnist --data_dir DIR" in proc.stderr


def test_an_unreadable_backup_is_set_aside_and_the_next_run_starts_over(project, tmp_path):
    backup = tmp_path / "backup"
    name = variant(
        project,
        "damaged.toml",
        ('backup_dir = "artifacts/backup"', f'backup_dir = "{backup}"'),
        ('reports_dir = "reports"', 'reports_dir = "damaged_r"'),
    )
    backup.mkdir()
    (backup / "latest.weights.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)
    (backup / "training_metadata.json").write_text('{"epoch": 1, "batch": 0}')
    one_line(recipe(project, "train", name), 1, "could not be read")
    assert not backup.exists() and len(list(tmp_path.glob("backup.damaged-*"))) == 1
    assert recipe(project, "train", name).returncode == 0


@pytest.mark.slow
def test_a_search_killed_mid_trial_reruns_only_the_unfinished_trials(project, tmp_path):
    import signal

    name = variant(
        project,
        "killed_tune.toml",
        ("trials = 10", "trials = 3"),
        ('directory = "artifacts/tune"', f'directory = "{tmp_path / "tune"}"'),
        ('reports_dir = "reports"', f'reports_dir = "{tmp_path / "reports"}"'),
    )
    # The project's backend, as recipe() runs it: an in-process test before may have set
    # KERAS_BACKEND in this process's environment.
    full = {**os.environ, "PYTHONPATH": str(project)}
    full.pop("KERAS_BACKEND", None)
    cmd = [sys.executable, "-m", "recipe_keras.cli", "tune", "--config", name]
    proc = subprocess.Popen(
        cmd, cwd=project, env=full, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    seen = []
    for line in proc.stdout:  # SIGKILL after trial 2's first epoch, mid-trial
        seen.append(line)
        if any(s.startswith("trial 2 of 3,") for s in seen) and "epoch 1/5" in line:
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "".join(seen)[-2000:]
    done_before = [s for s in seen if "trial done" in s]
    assert len(done_before) == 1

    rerun = recipe(project, "tune", name)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert rerun.stdout.count("trial done") == 2  # trial 1 is not run again
    tune = json.loads((tmp_path / "reports" / "tune.json").read_text())
    assert tune["numbers"]["trials"] == 3 and tune["numbers"]["trials_run_now"] == 2
    assert (tmp_path / "tune" / "best.keras").is_file()
    # The interrupted trial, run again in a new process, scores what it scores in a
    # search that was never interrupted.
    whole = variant(
        project,
        "whole_tune.toml",
        ("trials = 10", "trials = 3"),
        ('directory = "artifacts/tune"', f'directory = "{tmp_path / "whole"}"'),
        ('reports_dir = "reports"', f'reports_dir = "{tmp_path / "whole_r"}"'),
    )
    assert recipe(project, "tune", whole).returncode == 0

    def scores(folder: Path) -> dict:
        rows = json.loads((folder / "results.json").read_text())["results"]
        return {row["trial"]: row["score"] for row in rows}

    assert scores(tmp_path / "tune") == scores(tmp_path / "whole")


def test_make_args_set_one_runs_values_and_the_report_records_them(project):
    name = variant(
        project,
        "args.toml",
        ('reports_dir = "reports"', 'reports_dir = "args_r"'),
        ('backup_dir = "artifacts/backup"', 'backup_dir = "artifacts/args_backup"'),
    )
    env = {**os.environ, "PYTHONPATH": str(project)}
    cmd = ["make", f"PYTHON={sys.executable}", "train", f"CONFIG={name}"]
    proc = subprocess.run(
        [*cmd, "ARGS=train.epochs=2 model.width=8"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads((project / "args_r" / "train.json").read_text())
    assert report["overrides"] == ["train.epochs=2", "model.width=8"]
    assert report["numbers"]["epochs_run"] == 2
    assert report["details"]["config"]["model"]["width"] == 8
    assert "epochs = 1" in (project / name).read_text()  # the file is as it was
    # A bad override is refused like a bad config line, before any training.
    proc = subprocess.run(
        [*cmd, "ARGS=model.widht=8"], cwd=project, env=env, capture_output=True, text=True
    )
    one_line(proc, 2, "with model.widht=8: unknown key 'model.widht' (did you mean 'model.width'?)")


@pytest.mark.slow
def test_make_ensemble_then_make_distill_through_the_command_line(project, tmp_path):
    # The wiring of step 6: commands, overrides, the ensemble as the default teacher,
    # the report page. The numbers themselves are tested in tests/test_step6.py.
    name = variant(project, "step6.toml", ('reports_dir = "reports"', 'reports_dir = "step6_r"'))
    paths = [
        f"ensemble.model_path={tmp_path / 'ensemble.keras'}",
        f"distill.teacher={tmp_path / 'ensemble.keras'}",
        f"distill.model_path={tmp_path / 'student.keras'}",
    ]
    env = {**os.environ, "PYTHONPATH": str(project)}
    for step in ("ensemble", "distill"):
        cmd = [sys.executable, "-m", "recipe_keras.cli", step, "--config", name, "--set", *paths]
        proc = subprocess.run(
            cmd, cwd=project, env=env, capture_output=True, text=True, timeout=600
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
    assert (
        "member 3 of 3: seed 44"
        in subprocess.run(
            [
                sys.executable,
                "-m",
                "recipe_keras.cli",
                "ensemble",
                "--config",
                name,
                "--set",
                *paths,
            ],
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        ).stdout
    )  # the rerun reuses the members
    assert "distilled minus alone:" in proc.stdout
    ensemble = json.loads((project / "step6_r" / "ensemble.json").read_text())
    distill = json.loads((project / "step6_r" / "distill.json").read_text())
    assert ensemble["numbers"]["members"] == 3 and distill["details"]["teacher"].endswith(
        "ensemble.keras"
    )
    assert distill["overrides"] == paths
    report = subprocess.run(
        [sys.executable, "-m", "recipe_keras.cli", "report", ".", "--config", name],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
    )
    assert report.returncode == 0, report.stderr
    page = (project / "step6_r" / "index.html").read_text()
    assert "ensemble.png" in page and "distill.png" in page
    assert "student distilled (R6.2)" in page


def test_processes_started_together_prepare_the_data_once(tmp_path):
    # make tune WORKERS=2 on a fresh project: three processes find the data unprepared.
    from recipe_keras.datasets.digits import TEST_SIZE

    script = (
        "import sys; from recipe_keras import data; from recipe_keras.config import DataConfig\n"
        "b = data.make_builder(DataConfig(dataset='digits', data_dir=sys.argv[1]))\n"
        "print(sorted((k, v.num_examples) for k, v in b.info.splits.items()))"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(tmp_path)], stdout=subprocess.PIPE, text=True
        )
        for _ in range(3)
    ]
    outs = [proc.communicate(timeout=300)[0] for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0, 0]
    assert sum("Downloading and preparing" in out for out in outs) == 1  # once, not three times
    splits = {out.splitlines()[-1] for out in outs}
    assert len(splits) == 1 and f"('test', {TEST_SIZE})" in splits.pop()
    assert not list(tmp_path.rglob("incomplete*"))


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


BACKUP_CASES = [
    ("the project", ".", "holds the folder it runs from"),
    ("above the project", "..", "holds the folder it runs from"),
    ("artifacts", "artifacts", "/artifacts/model.keras; a backup needs a folder of its own"),
    ("a folder of the user's", "mine", "holds files the recipe did not write (notes.txt)"),
]


@pytest.mark.parametrize(
    "folder, message", [c[1:] for c in BACKUP_CASES], ids=[c[0] for c in BACKUP_CASES]
)
def test_no_backup_dir_can_delete_what_the_recipe_did_not_write(project, folder, message):
    # Keras's BackupAndRestore deletes its whole folder when training ends: a backup
    # that is the project, a folder above it or the user's is refused before training.
    (project / "mine").mkdir(exist_ok=True)
    (project / "mine" / "notes.txt").write_text("mine")
    (project / "artifacts").mkdir(exist_ok=True)
    (project / "artifacts" / "keep.txt").write_text("mine too")
    name = variant(
        project, "backup.toml", ('backup_dir = "artifacts/backup"', f'backup_dir = "{folder}"')
    )
    before = _tree(project)
    one_line(recipe(project, "train", name), 2, message)
    assert _tree(project) == before


def test_the_backup_folder_loses_its_own_files_only(project, tmp_path):
    name = variant(
        project,
        "own.toml",
        ('backup_dir = "artifacts/backup"', f'backup_dir = "{tmp_path}/shared/backup"'),
        ('reports_dir = "reports"', 'reports_dir = "own_r"'),
    )
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "beside.txt").write_text("mine")
    assert recipe(project, "train", name).returncode == 0
    assert not (tmp_path / "shared" / "backup").exists()
    assert (tmp_path / "shared" / "beside.txt").read_text() == "mine"


FAILING = """
import recipe_keras.baselines

from digits_classifier.train import run  # noqa: F401


def _fails(*args, **kwargs):
    raise ValueError("a planted failure after training")


recipe_keras.baselines.fit_linear = _fails
"""


def test_a_run_that_fails_after_training_keeps_the_previous_model_and_report(project, tmp_path):
    # The project's own train.py, whose R2.7 baseline fails once the model is trained.
    package = tmp_path / "failing_run"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "data.py").write_text("from digits_classifier.data import load_data  # noqa\n")
    (package / "model.py").write_text("from digits_classifier.model import build_model  # noqa\n")
    (package / "train.py").write_text(FAILING)
    outputs = (
        ('reports_dir = "reports"', 'reports_dir = "failing_r"'),
        ('model_path = "artifacts/model.keras"', 'model_path = "failing_a/model.keras"'),
        ('best_model_path = "artifacts/best.keras"', 'best_model_path = "failing_a/best.keras"'),
        ('backup_dir = "artifacts/backup"', 'backup_dir = "failing_a/backup"'),
    )
    good = variant(project, "good.toml", *outputs)
    bad = variant(
        project,
        "failing.toml",
        *outputs,
        ('package = "digits_classifier"', 'package = "failing_run"'),
        ("seed = 42", "seed = 7"),
    )
    assert recipe(project, "train", good).returncode == 0
    kept = ("failing_a/model.keras", "failing_a/best.keras", "failing_r/train.json")
    before = {path: (project / path).read_bytes() for path in kept}
    proc = recipe(project, "train", bad, PYTHONPATH=f"{project}{os.pathsep}{tmp_path}")
    assert proc.returncode != 0 and "a planted failure after training" in proc.stderr
    assert "failing_a/model.keras, failing_a/best.keras, failing_r/train.json are still " in (
        proc.stderr
    )
    assert {path: (project / path).read_bytes() for path in kept} == before


def _stream(project: Path, config: str) -> subprocess.Popen:
    # PYTHONFAULTHANDLER: a hung run, sent SIGABRT by _ended, prints every thread's stack.
    full = {**os.environ, "PYTHONPATH": str(project), "PYTHONUNBUFFERED": "1"}
    full["PYTHONFAULTHANDLER"] = "1"
    full.pop("KERAS_BACKEND", None)
    # The run gets SIGINT as a terminal's Ctrl-C finds it: at its default. A suite
    # started as a background job inherits it ignored, and Python then never raises
    # KeyboardInterrupt; a handler set here is reset to the default in the child.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "recipe_keras.cli", "train", "--config", config],
            cwd=project,
            env=full,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    finally:
        if previous is not None:  # None: a handler set outside Python, left as it is
            signal.signal(signal.SIGINT, previous)


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def _ended(proc: subprocess.Popen, timeout: float) -> str:
    """``proc``'s stderr once it exits; a run still alive after ``timeout`` seconds fails
    the test with its threads' stacks (SIGABRT under PYTHONFAULTHANDLER) instead, and
    what tells a run that trained on (its epoch lines, its CPU time) from a stuck one."""
    cpu = _cpu_seconds(proc.pid) if sys.platform == "linux" else None
    try:
        return proc.communicate(timeout=timeout)[1]
    except subprocess.TimeoutExpired:
        used = f"{_cpu_seconds(proc.pid) - cpu:.1f} s" if cpu is not None else "unknown"
        proc.send_signal(signal.SIGABRT)
        out, err = proc.communicate(timeout=60)
        epochs = [line for line in out.splitlines() if line.startswith("Epoch ")]
        raise AssertionError(
            f"still running {timeout:.0f} s after Ctrl-C, having used {used} of CPU and "
            f"printed {len(epochs)} epoch lines after the third (last: {epochs[-1:]}):\n"
            f"{err[-12000:]}"
        ) from None


def _until(proc: subprocess.Popen, start: str) -> None:
    for line in proc.stdout:
        if line.startswith(start):
            return
    raise AssertionError(f"{start!r} never came: {proc.stderr.read()[-2000:]}")


def test_one_run_per_project_and_ctrl_c_says_where_it_resumes(project):
    long = variant(
        project,
        "long.toml",
        ("epochs = 1", "epochs = 500"),
        ('reports_dir = "reports"', 'reports_dir = "long_r"'),
        ('backup_dir = "artifacts/backup"', 'backup_dir = "long_a/backup"'),
    )
    first = _stream(project, long)
    try:
        _until(first, "Epoch 3/500")
        second = recipe(project, "train")  # the project's own config: refused, unharmed
        one_line(second, 1, f"recipe-keras train (pid {first.pid}, since ")
        first.send_signal(signal.SIGINT)  # Ctrl-C
        err = _ended(first, 120)
    finally:
        first.kill()
    assert first.returncode == 130, err[-2000:]
    assert "Traceback" not in err
    line = err.strip().splitlines()[-1]
    assert line.startswith("recipe-keras train: interrupted; run it again to resume after epoch ")
    assert line.endswith("(the backup in long_a/backup)")

    # A run killed outright leaves no lock behind: the next one starts.
    killed = _stream(project, long)
    _until(killed, "Epoch ")
    killed.send_signal(signal.SIGKILL)
    killed.wait(timeout=60)
    assert recipe(project, "train").returncode == 0


def test_a_tune_worker_without_a_chief_stops_in_one_line(project):
    from recipe_keras.workers import free_port

    name = variant(project, "worker.toml", ("wait_for_chief = 120", "wait_for_chief = 3"))
    port = free_port()  # nothing listens there
    ids = {"KERASTUNER_TUNER_ID": "tuner0", "KERASTUNER_ORACLE_IP": "127.0.0.1"}
    proc = recipe(project, "tune", name, KERASTUNER_ORACLE_PORT=str(port), **ids)
    one_line(proc, 1, f"tuner0: no chief answered at 127.0.0.1:{port} within 3 s")


def test_the_chiefs_port_is_held_until_the_chief_takes_it():
    import socket
    from concurrent import futures

    import grpc

    from recipe_keras.workers import reserve_port

    held, port = reserve_port()
    try:
        squatter = socket.socket()
        with pytest.raises(OSError):  # another process cannot take it meanwhile
            squatter.bind(("127.0.0.1", port))
        squatter.close()
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
        assert server.add_insecure_port(f"127.0.0.1:{port}") == port  # the chief can
        server.start()
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        grpc.channel_ready_future(channel).result(timeout=10)
        channel.close()
        server.stop(0)
    finally:
        held.close()


def test_python_m_train_takes_config_and_set_like_the_command(project):
    # `python -m <package>.train --config alt.toml --set ...` runs alt.toml (its backend
    # chosen before Keras starts), with the overrides; an argument it does not take stops it.
    name = variant(
        project,
        "alt_train.toml",
        ('backend = "tensorflow"', 'backend = "jax"'),
        ('reports_dir = "reports"', 'reports_dir = "alt_train_r"'),
        ('backup_dir = "artifacts/backup"', 'backup_dir = "alt_train_a/backup"'),
    )
    full = {**os.environ, "PYTHONPATH": str(project)}
    full.pop("KERAS_BACKEND", None)
    module = [sys.executable, "-m", "digits_classifier.train"]
    args = ["--config", name, "--set", "train.epochs=1", "model.width=8"]
    done = subprocess.run(
        [*module, *args], cwd=project, env=full, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads((project / "alt_train_r" / "train.json").read_text())
    assert report["backend"] == "jax" and report["numbers"]["epochs_run"] == 1
    assert report["overrides"] == ["train.epochs=1", "model.width=8"]
    bad = subprocess.run(
        [*module, "--bogus"], cwd=project, env=full, capture_output=True, text=True, timeout=300
    )
    assert bad.returncode == 2 and "unrecognized arguments: --bogus" in bad.stderr
