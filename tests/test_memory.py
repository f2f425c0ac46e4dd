"""Data larger than memory trains: `make train` under a memory cgroup smaller than the
decoded splits completes, decoding them again each epoch; and where the order does
not depend on it, keeping them in memory or not gives the same run.

Root only (CI runs as root): the limit is a memory cgroup the test makes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import render

pytestmark = pytest.mark.slow


def _folder(root: Path, per_class: int, size: int, test_share: float = 0.2) -> Path:
    """Two classes of smooth RGB images (a bright left or a bright right half), JPEG."""
    from PIL import Image

    rng = np.random.default_rng(0)
    ramp = np.linspace(0, 1, size)[None, :, None]
    for label, side in (("left", ramp[:, ::-1]), ("right", ramp)):
        for i in range(per_class):
            split = "test" if i < test_share * per_class else "train"
            folder = root / split / label
            folder.mkdir(parents=True, exist_ok=True)
            pixels = 200 * side + rng.normal(0, 20, (size, size, 3))
            image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
            image.save(folder / f"{i:05d}.jpg", quality=90)
    return root


def _cgroup(limit: int) -> Path | None:
    """A fresh memory cgroup (v1 or v2) limited to ``limit`` bytes, or None."""
    if os.geteuid() != 0:
        return None
    lines = Path("/proc/self/cgroup").read_text().splitlines()
    for line in lines:
        _, controllers, where = line.split(":", 2)
        if "memory" in controllers.split(","):  # v1
            folder = (
                Path("/sys/fs/cgroup/memory") / where.lstrip("/") / f"rk-{uuid.uuid4().hex[:8]}"
            )
            limit_file = "memory.limit_in_bytes"
            break
        if controllers == "" and len(lines) == 1:  # v2 only
            folder = Path("/sys/fs/cgroup") / where.lstrip("/") / f"rk-{uuid.uuid4().hex[:8]}"
            limit_file = "memory.max"
            break
    else:
        return None
    try:
        folder.mkdir()
        (folder / limit_file).write_text(str(limit))
    except OSError:
        return None
    return folder


def _peak(group: Path) -> int:
    for name in ("memory.max_usage_in_bytes", "memory.peak"):
        if (group / name).is_file():
            return int((group / name).read_text())
    return -1


def _train(project: Path, *overrides: str, group: Path | None = None, step: str = "train"):
    env = {**os.environ, "PYTHONPATH": str(project)}
    env.pop("KERAS_BACKEND", None)
    config = ["--config", "config.toml"] if step == "inspect" else []  # it needs a source
    command = [sys.executable, "-m", "recipe_keras.cli", step, *config, "--set", *overrides]
    if group is not None:  # the child joins the cgroup before Python starts
        procs = group / "cgroup.procs"
        command = ["sh", "-c", f'echo $$ > {procs} && exec "$@"', "sh", *command]
    return subprocess.run(command, cwd=project, env=env, capture_output=True, text=True)


TRAIN = ("train.epochs=1", "model.name=linear", "train.learning_rate=3e-3", "train.verbose=0")


def test_splits_larger_than_memory_train_streaming_from_the_folder(tmp_path):
    project = render(tmp_path / "p")
    # The same order in memory or not: a copy small enough for both gives the same run.
    small = _folder(tmp_path / "small", per_class=60, size=32)
    runs = {}
    for keep in ("memory", "none", "disk"):
        reports = f"r_{keep}"
        sets = (
            *TRAIN,
            f"data.dataset={small}",
            f"data.cache={keep}",
            f"train.reports_dir={reports}",
        )
        done = _train(project, *sets, f"train.backup_dir=a_{keep}/backup")
        assert done.returncode == 0, done.stderr[-3000:]
        runs[keep] = json.loads((project / reports / "train.json").read_text())["numbers"]
    assert runs["none"]["test_loss"] == runs["memory"]["test_loss"]
    assert runs["disk"]["test_loss"] == runs["memory"]["test_loss"]

    # 1,100 images of 448x448x3: 2.47 GiB decoded to float32, more than the 2 GiB
    # limit of the whole process (TensorFlow and Keras included).
    limit = 2 * 2**30
    group = _cgroup(limit)
    if group is None:
        pytest.skip("this machine does not let the test make a memory cgroup")
    try:
        big = _folder(tmp_path / "big", per_class=550, size=448)
        done = _train(
            project,
            *TRAIN,
            f"data.dataset={big}",
            "train.reports_dir=r_big",
            "train.backup_dir=a_big/backup",
            group=group,
        )
        peak = _peak(group)
    finally:
        group.rmdir()
    assert done.returncode == 0, (peak, done.stderr[-3000:])
    assert "kept in none" in done.stdout
    report = json.loads((project / "r_big" / "train.json").read_text())
    assert report["numbers"]["test_accuracy"] > 0.9  # a bright half is easy to learn
    print(f"peak memory {peak / 2**30:.2f} GiB of a {limit / 2**30:.1f} GiB limit")
    assert 0 < peak <= limit

    # make inspect on the same folder under half that limit: its 662 MB of stored
    # pixels (uint8) are read a block at a time; the table keeps ~1 KB an image, and
    # R1.8 predicts with the model just trained, a block at a time.
    limit = 2**30
    group = _cgroup(limit)
    try:
        done = _train(
            project, f"data.dataset={big}", "train.reports_dir=r_big", group=group, step="inspect"
        )
        peak = _peak(group)
    finally:
        group.rmdir()
    assert done.returncode in (0, 1), (peak, done.stderr[-3000:])  # 1: a finding failed
    assert "reading the" in done.stdout and "examples the figures show again" in done.stdout
    report = json.loads((project / "r_big" / "inspect.json").read_text())
    assert report["numbers"]["examples"] == 1100
    assert "R1.8" in report["verdicts"]  # the trained model's mistakes, predicted streaming
    print(f"inspect: peak memory {peak / 2**30:.2f} GiB of a {limit / 2**30:.1f} GiB limit")
    assert 0 < peak <= limit
