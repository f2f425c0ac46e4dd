"""`make lint`'s import contracts (pyproject.toml's [tool.importlinter]) hold on this
tree, and fail on a planted import cycle and on a low layer importing a high one."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT

LINT = Path(__import__("sys").executable).with_name("lint-imports")


def _lint(tree: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(LINT), "--no-cache"], cwd=tree, capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def tree(tmp_path) -> Path:
    shutil.copytree(ROOT / "recipe_keras", tmp_path / "recipe_keras")
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    return tmp_path


def _plant(path: Path, line: str) -> None:
    path.write_text(path.read_text() + f"\n{line}  # noqa\n")


def test_the_contracts_hold_and_catch_a_planted_cycle_and_an_upward_import(tree):
    kept = _lint(tree)
    assert kept.returncode == 0, kept.stdout[-3000:]
    assert "Contracts: 2 kept, 0 broken." in kept.stdout

    # Two checks that import each other: same layer, but a cycle.
    _plant(tree / "recipe_keras/checks/overfit.py", "from recipe_keras.checks import baselines")
    _plant(tree / "recipe_keras/checks/baselines.py", "from recipe_keras.checks import overfit")
    cycle = _lint(tree)
    assert cycle.returncode != 0
    assert "No import cycles, at any depth BROKEN" in cycle.stdout
    assert ".overfit -> .baselines" in cycle.stdout

    # The config (low) importing the training run (high): a layer broken, and a cycle.
    shutil.copy(ROOT / "recipe_keras/checks/overfit.py", tree / "recipe_keras/checks/overfit.py")
    shutil.copy(
        ROOT / "recipe_keras/checks/baselines.py", tree / "recipe_keras/checks/baselines.py"
    )
    _plant(tree / "recipe_keras/config.py", "import recipe_keras.train")
    upward = _lint(tree)
    assert upward.returncode != 0
    assert "checks, audit < cli BROKEN" in upward.stdout
    assert "recipe_keras.config -> recipe_keras.train" in upward.stdout
