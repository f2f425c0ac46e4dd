"""``recipe-keras new``: render the template this installed package carries, offline.

The wheel carries ``template/`` as ``recipe_keras/_template``; a source checkout
uses the folder itself. The project's dependency on recipe-keras is filled in
with where this copy was installed from, so ``make install`` resolves it with no
package index that knows recipe-keras.
"""

from __future__ import annotations

import difflib
import json
import logging
import os
from importlib import metadata
from pathlib import Path

__all__ = ["JINJA_MARKERS", "installed_requirement", "new_project", "template_dir"]

# Cookiecutter renders every answer as a Jinja template before any hook sees it, so an
# answer holding one of these runs what it holds: refused here.
JINJA_MARKERS = ("{{", "{%", "{#")
# The template's hook refuses longer package names (template/hooks/pre_gen_project.py).
MAX_SLUG = 64


def template_dir() -> Path:
    """The cookiecutter template: inside the wheel, or beside the package in a checkout."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "_template", here.parent / "template"):
        if (candidate / "cookiecutter.json").is_file():
            return candidate
    raise RuntimeError(f"recipe-keras is installed without its template (looked in {here})")


def installed_requirement() -> str:
    """A pip requirement that reinstalls this very copy of recipe-keras.

    PEP 610's direct_url.json says where pip took it from (a folder, a wheel
    file, a git URL); a copy from an index is pinned to its version.
    """
    dist = metadata.distribution("recipe-keras")
    direct = dist.read_text("direct_url.json")
    if not direct:
        return f"recipe-keras=={dist.version}"
    info = json.loads(direct)
    url = info["url"]
    vcs = info.get("vcs_info")
    if vcs:
        return f"recipe-keras @ {vcs['vcs']}+{url}@{vcs['commit_id']}"
    return f"recipe-keras @ {url}"


def new_project(
    output_dir: str | os.PathLike[str] = ".",
    answers: dict[str, str] | None = None,
    no_input: bool = False,
) -> Path:
    """Render a project and return its folder; hooks validate the answers."""
    from cookiecutter.main import cookiecutter

    answers = dict(answers or {})
    out = Path(output_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"-o {str(out)!r} is a file; give the folder the project goes in")
    for key, value in answers.items():
        marker = next((m for m in JINJA_MARKERS if m in value), None)
        if marker:
            raise ValueError(
                f"answer {key}={value!r} holds {marker!r}: cookiecutter would run it as a "
                "Jinja template; leave out {{, {% and {#"
            )
    if "project_name" in answers and not answers["project_name"].strip():
        raise ValueError("project_name '' is not allowed; give the project a name")
    if len(answers.get("project_slug", "")) > MAX_SLUG:
        raise ValueError(
            f"project_slug is {len(answers['project_slug'])} characters; give {MAX_SLUG} or fewer"
        )
    known = [
        k for k in json.loads((template_dir() / "cookiecutter.json").read_text()) if k[0] != "_"
    ]
    for key in answers:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(
                f"unknown answer {key!r}{hint}; the template asks for: {', '.join(known)}"
            )
    answers.setdefault("recipe_keras_requirement", installed_requirement())
    dataset = answers.get("dataset")
    if dataset and Path(dataset).expanduser().exists():  # a folder, or a table's file
        # The project runs from its own folder: a path relative to here would break there.
        answers["dataset"] = str(Path(dataset).expanduser().resolve())
    # The pre-gen hook prints the one line that says which answer is wrong; cookiecutter
    # would log its own traceback after it.
    hooks_log = logging.getLogger("cookiecutter.hooks")
    was = hooks_log.disabled
    hooks_log.disabled = True
    try:
        return Path(
            cookiecutter(
                str(template_dir()),
                no_input=no_input,
                extra_context=answers,
                output_dir=str(output_dir),
            )
        )
    finally:
        hooks_log.disabled = was
