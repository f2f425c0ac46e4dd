"""Jinja filters of this template (cookiecutter loads them through ``_extensions``).

``package_name`` makes the default package name from any project name.

``recipe_requirement`` turns the answer ``auto`` into a pip requirement for the
very recipe-keras this template came with, so a default project installs:

- rendered from a clone cookiecutter made of a git URL: that URL at its commit;
- rendered from a checkout or folder on this machine: that folder (``file://``);
- rendered from an installed recipe-keras (``recipe-keras new``): where that was
  installed from.
"""

from __future__ import annotations

import re
import subprocess
import unicodedata
from pathlib import Path

from cookiecutter.utils import simple_filter

AUTO = "auto"
# The pre-gen hook refuses longer package names (hooks/pre_gen_project.py's MAX_SLUG).
MAX_SLUG = 64


@simple_filter
def package_name(name: str) -> str:
    """'My MNIST-Net' -> 'my_mnist_net', 'Café 🚀' -> 'cafe': ASCII letters, digits and _.

    Accents are dropped, other characters become one _, at most MAX_SLUG long; a name
    with no ASCII letter or digit gives '' (the hook then asks for project_slug).
    """
    text = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    return re.sub(r"[^a-z0-9]+", "_", text).strip("_")[:MAX_SLUG].rstrip("_")


def _git(root: Path, *args: str) -> str:
    out = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True)
    return out.stdout.strip() if out.returncode == 0 else ""


def _pip_url(origin: str) -> str:
    """A git remote as pip takes it: ``git@host:path`` becomes ``ssh://git@host/path``."""
    scp = re.fullmatch(r"([\w.-]+@[\w.-]+):(?!//)(.+)", origin)
    if scp:
        return f"ssh://{scp[1]}/{scp[2]}"
    return origin


def _cookiecutters_dir() -> Path | None:
    """Where cookiecutter clones templates given as git URLs."""
    try:
        from cookiecutter.config import get_user_config

        return Path(get_user_config()["cookiecutters_dir"]).expanduser().resolve()
    except Exception:  # an unreadable user config: treat the template as local
        return None


@simple_filter
def recipe_requirement(answer: str, repo_dir: str = "") -> str:
    if answer.strip() != AUTO:
        return answer
    template = Path(repo_dir) if repo_dir and Path(repo_dir).is_absolute() else None
    template = (template or Path(__file__).parent).resolve()
    root = template.parent
    pyproject = root / "pyproject.toml"
    if pyproject.is_file() and 'name = "recipe-keras"' in pyproject.read_text():
        clones = _cookiecutters_dir()
        origin = _git(root, "remote", "get-url", "origin")
        commit = _git(root, "rev-parse", "HEAD")
        if clones is not None and root.parent == clones and origin and commit:
            return f"recipe-keras @ git+{_pip_url(origin)}@{commit}"
        return f"recipe-keras @ {root.as_uri()}"
    try:  # the template inside an installed recipe-keras
        from recipe_keras.new import installed_requirement

        return installed_requirement()
    except Exception:
        return "recipe-keras"
