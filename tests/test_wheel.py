"""`pip install recipe-keras` then `recipe-keras new`: the wheel carries the template.

A fresh venv installs the built wheel (dependencies from the package registry),
renders a project with no source checkout around, and that project's
`make install` resolves its recipe-keras requirement to the very wheel file,
with no index that knows recipe-keras. Then `make train` runs in it.
"""

from __future__ import annotations

import venv
import zipfile

import pytest

from tests.conftest import PYTHON, ROOT, read_json, run

pytestmark = pytest.mark.slow


def test_recipe_keras_new_from_a_wheel_in_a_fresh_venv(tmp_path, tfds_dir):
    dist = tmp_path / "dist"
    run(
        [PYTHON, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(dist), "."],
        cwd=ROOT,
    )
    (wheel,) = dist.glob("recipe_keras-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for inside in (
        "cookiecutter.json",
        "hooks/pre_gen_project.py",
        "hooks/post_gen_project.py",
        "{{cookiecutter.project_slug}}/config.toml",
    ):
        assert f"recipe_keras/_template/{inside}" in names

    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    py = env_dir / "bin" / "python"
    run([str(py), "-m", "pip", "install", "--quiet", str(wheel)], cwd=tmp_path, timeout=900)

    work = tmp_path / "work"
    work.mkdir()
    run(
        [str(env_dir / "bin" / "recipe-keras"), "new", "--no-input", "epochs=3"],
        cwd=work,
        HOME=str(tmp_path),
    )
    project = work / "digits_classifier"
    assert f'"recipe-keras @ {wheel.as_uri()}"' in (project / "pyproject.toml").read_text()

    run(["make", f"PYTHON={py}", "install"], cwd=project, timeout=900)
    run(["make", f"PYTHON={py}", "train"], cwd=project, KERAS_BACKEND=None)
    report = read_json(project / "reports" / "train.json")
    assert report["backend"] == "tensorflow" and report["numbers"]["epochs_run"] == 3
    assert report["numbers"]["test_accuracy"] > 0.3  # 3 epochs; chance is 0.1
