"""Validate every answer before anything is written; stdlib only, one clear line on failure.

Cookiecutter renders this file with Jinja first, then runs it in whatever
Python runs cookiecutter (recipe-keras may not be installed there). A non-zero
exit makes cookiecutter delete the half-made project.
"""

import keyword
import re
import sys
from pathlib import Path

ANSWERS = {
    "project_name": {{cookiecutter.project_name | tojson}},
    "description": {{cookiecutter.description | tojson}},
    "author_name": {{cookiecutter.author_name | tojson}},
    "author_email": {{cookiecutter.author_email | tojson}},
    "project_slug": {{cookiecutter.project_slug | tojson}},
    "backend": {{cookiecutter.backend | tojson}},
    "task": {{cookiecutter.task | tojson}},
    "dataset": {{cookiecutter.dataset | tojson}},
    "model": {{cookiecutter.model | tojson}},
    "epochs": {{cookiecutter.epochs | tojson}},
    "batch_size": {{cookiecutter.batch_size | tojson}},
    "seed": {{cookiecutter.seed | tojson}},
    "python_version": {{cookiecutter.python_version | tojson}},
    "recipe_keras_requirement": {{cookiecutter.recipe_keras_requirement | tojson}},
    "ci": {{cookiecutter.ci | tojson}},
}
# What pyproject.toml gets: 'auto' made into the copy this template came from
# (local_extensions.py beside this folder).
REQUIREMENT_USED = {{cookiecutter.recipe_keras_requirement
                     | recipe_requirement(cookiecutter._repo_dir) | tojson}}
CHOICES = {
    "backend": ("jax", "tensorflow", "torch"),
    "task": ("image_classification",),
    "model": ("linear", "mlp", "cnn"),
}
EMBEDDED = ("digits",)
# Same rule as recipe_keras.config.dataset_kind (this hook cannot import recipe_keras).
TFDS_NAME = re.compile(r"^[a-z][a-z0-9_]*(/[A-Za-z0-9_.-]+)?(:[0-9*]+(\.[0-9*]+){0,2})?$")
# Names a package must not take: they would shadow what the project imports (the
# dependencies of recipe-keras, by their import names) or its tests.
SHADOWED = {
    "keras", "tensorflow", "torch", "jax", "jaxlib", "numpy", "scipy", "sklearn", "matplotlib",
    "keras_tuner", "tensorflow_datasets", "tensorboard", "cleanlab", "cookiecutter", "jinja2",
    "PIL", "tomli", "importlib_resources", "hatchling", "pytest", "ruff", "absl", "google",
    "etils", "grpc", "recipe_keras", "tests", "test",
}
# Free text lands in TOML, Python, YAML, Makefile and Markdown: one line of it only.
TEXT = ("project_name", "description", "author_name", "author_email")
# Exactly one pip requirement for recipe-keras: extras, then version specifiers or
# "@ <url>" (no spaces, quotes, commas or semicolons in the URL: nothing more can follow).
SPEC = r"(==|>=|<=|~=|!=|<|>)\s*[A-Za-z0-9.*+!_-]+"
REQUIREMENT = re.compile(
    rf"^recipe[-_]keras(\[[A-Za-z0-9_-]+(,[A-Za-z0-9_-]+)*\])?"
    rf"(\s*{SPEC}(\s*,\s*{SPEC})*|\s*@\s*[^\s\"',;\\]+)?$"
)


def problem() -> str | None:
    """The first invalid answer, as one line naming the value and what is allowed."""
    for key in TEXT:
        value = ANSWERS[key]
        if any(not c.isprintable() for c in value):
            return f"{key} {value!r} is not allowed; give one line of text (no newline or tab)"
    if not ANSWERS["project_name"].strip():
        return "project_name '' is not allowed; give the project a name"
    slug = ANSWERS["project_slug"]
    if not slug.isascii() or not slug.isidentifier() or keyword.iskeyword(slug):
        return (
            f"project_slug {slug!r} is not a valid Python identifier "
            "(ASCII letters, digits and _, not starting with a digit)"
        )
    if slug in sys.stdlib_module_names or slug in SHADOWED:
        return f"project_slug {slug!r} would shadow the module of that name; pick another"
    for key, allowed in CHOICES.items():
        if ANSWERS[key] not in allowed:
            return f"{key} {ANSWERS[key]!r} is not allowed; choose one of {', '.join(allowed)}"
    dataset = ANSWERS["dataset"]
    path = Path(dataset).expanduser()
    if dataset.startswith(("/", "~", ".")):
        if not path.is_absolute():
            return f"dataset {dataset!r}: give an image folder as an absolute path"
        if not path.is_dir():
            return f"dataset {dataset!r}: no such folder (an image folder is laid out split/label/image)"
    elif dataset not in EMBEDDED and not TFDS_NAME.match(dataset):
        return (
            f"dataset {dataset!r} is not allowed; give an embedded name ({', '.join(EMBEDDED)}), "
            "a TFDS catalog name such as 'mnist', or an image folder's absolute path"
        )
    for key in ("epochs", "batch_size", "seed"):
        value = str(ANSWERS[key])
        if not value.isdigit() or (key != "seed" and int(value) < 1):
            return f"{key} {value!r} is not allowed; give a whole number" + (
                "" if key == "seed" else " >= 1"
            )
    version = ANSWERS["python_version"]
    if not re.fullmatch(r"3\.\d+", version) or int(version.split(".")[1]) < 10:
        return f"python_version {version!r} is not allowed; give 3.10 or newer, as 3.X"
    requirement = ANSWERS["recipe_keras_requirement"].strip()
    if requirement == "auto":
        requirement = REQUIREMENT_USED
    if not REQUIREMENT.match(requirement):
        return (
            f"recipe_keras_requirement {requirement!r} is not allowed; give exactly one "
            "requirement for recipe-keras (e.g. 'recipe-keras @ git+https://...' or "
            "'recipe-keras==0.1.0')"
        )
    return None


def warnings() -> list[str]:
    """What would work here but not on GitHub's runners, with the fix."""
    if ANSWERS["ci"] != "github":
        return []
    found = []
    if "file:" in REQUIREMENT_USED:
        found.append(
            f"recipe-keras comes from {REQUIREMENT_USED.split('@', 1)[1].strip()}, a path on "
            "this machine that the GitHub workflow cannot install: push recipe-keras where CI "
            "can reach it and set that in pyproject.toml (e.g. 'recipe-keras @ "
            "git+https://github.com/you/recipe-keras@<commit>'), or answer "
            "recipe_keras_requirement so"
        )
    if ANSWERS["dataset"].startswith(("/", "~")):
        found.append(
            f"dataset {ANSWERS['dataset']!r} is a folder on this machine, so the GitHub "
            "workflow's tests cannot read it: publish it as a TFDS dataset, or point "
            "config.toml's data.dataset at data the runner has"
        )
    return found


if __name__ == "__main__":
    message = problem()
    if message:
        print(f"ERROR: {message}", file=sys.stderr)
        sys.exit(1)
    for line in warnings():
        print(f"warning: {line}", file=sys.stderr)
