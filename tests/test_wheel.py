"""`pip install recipe-keras` then `recipe-keras new`: the wheel carries the template.

A fresh venv installs the built wheel, renders a project with no source
checkout around, and that project's `make install` resolves its recipe-keras
requirement to the very wheel file, with no index that knows recipe-keras.
Then `make train` runs in it.

The fresh venv borrows the test venv's third-party packages (one .pth line)
instead of installing TensorFlow a second time: that copy is about 2 GB, and
a CI run died of a full disk installing it. That pyproject's dependencies
resolve from the registry is what `make setup` itself shows on every CI run.
"""

from __future__ import annotations

import sysconfig
import venv
import zipfile
from pathlib import Path

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
    purelib = run(
        [str(py), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], cwd=tmp_path
    )
    fresh_site = Path(purelib.stdout.strip())
    # Appended after the fresh venv's own site-packages, so the wheel's recipe_keras wins.
    (fresh_site / "zz_borrowed_test_venv.pth").write_text(sysconfig.get_path("purelib") + "\n")
    run([str(py), "-m", "pip", "install", "--quiet", str(wheel)], cwd=tmp_path, timeout=900)
    where = run([str(py), "-c", "import recipe_keras; print(recipe_keras.__file__)"], cwd=tmp_path)
    assert Path(where.stdout.strip()).is_relative_to(fresh_site), where.stdout

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
