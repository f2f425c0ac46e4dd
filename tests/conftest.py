"""Shared fixtures: rendering the template, a TFDS data_dir, an image folder of real digits.

Tests marked ``backend`` import Keras in-process; scripts/run_tests.py runs
them once per KERAS_BACKEND. Everything else must not import Keras.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from recipe_keras._backend import jax_random_environment

ROOT = Path(__file__).resolve().parent.parent
BACKENDS = ("tensorflow", "jax", "torch")

# The random numbers every generated project's process draws on JAX (select_backend),
# set before a test imports Keras, so tests draw what projects draw (and compile
# faster). Not Keras: recipe_keras.config must not import it.
jax_random_environment()


@pytest.fixture(scope="session")
def tfds_dir(tmp_path_factory) -> Path:
    """A private TFDS data_dir, also handed to subprocesses through TFDS_DATA_DIR."""
    path = tmp_path_factory.mktemp("tfds")
    os.environ["TFDS_DATA_DIR"] = str(path)
    return path


def render(output_dir: Path, directory: str | None = None, **answers) -> Path:
    """Render the template from the repository root, as `cookiecutter <repo>` does."""
    from cookiecutter.main import cookiecutter

    output_dir.mkdir(parents=True, exist_ok=True)
    config = output_dir / "cookiecutter-config.yaml"
    config.write_text(
        f"cookiecutters_dir: {output_dir / 'cc'}\nreplay_dir: {output_dir / 'replay'}\n"
    )
    answers.setdefault("recipe_keras_requirement", f"recipe-keras @ {ROOT.as_uri()}")
    return Path(
        cookiecutter(
            str(ROOT),
            directory=directory,
            no_input=True,
            extra_context=answers,
            output_dir=str(output_dir / "out"),
            config_file=str(config),
        )
    )


def run(cmd: list[str], cwd: Path, timeout: float = 600, **env: str) -> subprocess.CompletedProcess:
    """Run a command, failing the test with its output when it fails."""
    full_env = {**os.environ, **env}
    for key, value in env.items():
        if value is None:
            full_env.pop(key)
    proc = subprocess.run(
        cmd, cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout
    )
    assert proc.returncode == 0, f"{cmd} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return proc


def run_step(project: Path, step: str, *settings: str) -> subprocess.CompletedProcess:
    """``recipe-keras <step>`` in a rendered project, on this run's backend, with
    ``--set`` for ``settings``; fails the test with its output when it fails."""
    cmd = [sys.executable, "-m", "recipe_keras.cli", step, "--config", "config.toml"]
    cmd += ["--set", *settings] if settings else []
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    env = {**os.environ, "PYTHONPATH": str(project), "KERAS_BACKEND": backend}
    proc = subprocess.run(cmd, cwd=project, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc


def project_config(root: Path, tfds_dir: Path, **sections):
    """A quiet 2-epoch Config whose outputs all go under ``root``; ``sections`` override."""
    from recipe_keras.config import from_dict

    raw = {
        "data": {"data_dir": str(tfds_dir)},
        "train": {
            "epochs": 2,
            "verbose": 0,
            "reports_dir": str(root / "reports"),
            "model_path": str(root / "artifacts" / "model.keras"),
            "backup_dir": str(root / "artifacts" / "backup"),
            "best_model_path": str(root / "artifacts" / "best.keras"),
        },
    }
    for name, values in sections.items():
        if isinstance(values, dict):
            raw.setdefault(name, {}).update(values)
        else:  # a top-level key (task, seed, ...)
            raw[name] = values
    return from_dict(raw)


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())


def digits_images() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits as uint8 8x8 images (0..16 scaled to 0..255) and labels."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    return np.round(digits.images * (255 / 16)).astype(np.uint8), digits.target


@pytest.fixture(scope="session")
def digits_folder(tmp_path_factory) -> Path:
    """An image folder (split/label/image.png) of 300 real digits: 200 train, 100 test."""
    from PIL import Image

    root = tmp_path_factory.mktemp("digits_folder")
    images, labels = digits_images()
    for i in range(300):
        split = "train" if i < 200 else "test"
        folder = root / split / f"digit_{labels[i]}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(images[i], mode="L").save(folder / f"{i:04d}.png")
    return root


PYTHON = sys.executable
