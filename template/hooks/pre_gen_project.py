"""Validate every answer before anything is written; stdlib only, one clear line on failure.

Cookiecutter renders this file with Jinja first, then runs it in whatever
Python runs cookiecutter (recipe-keras may not be installed there). A non-zero
exit makes cookiecutter delete the half-made project.
"""

import keyword
import re
import sys
from pathlib import Path


def _text(value):
    """An answer as typed: tojson writes a character beyond the BMP (an emoji) as a JSON
    surrogate pair, which a Python string literal keeps as two lone surrogates."""
    if not isinstance(value, str):
        return value
    return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


ANSWERS = {
    key: _text(value)
    for key, value in {
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
    }.items()
}
# What pyproject.toml gets: 'auto' made into the copy this template came from
# (local_extensions.py beside this folder).
REQUIREMENT_USED = {{cookiecutter.recipe_keras_requirement
                     | recipe_requirement(cookiecutter._repo_dir) | tojson}}
CHOICES = {
    "backend": ("jax", "tensorflow", "torch"),
    "task": (
        "image_classification",
        "tabular_classification",
        "tabular_regression",
        "text_classification",
    ),
    "model": ("auto", "linear", "mlp", "cnn", "bag_of_embeddings", "conv1d", "transformer"),
}
# The zoo's models of token ids (recipe_keras.models.TEXT_MODELS).
TEXT_MODELS = ("bag_of_embeddings", "conv1d", "transformer")
# The embedded corpora (recipe_keras.text.TEXT_FILES).
TEXTS = ("health_news",)
EMBEDDED = ("digits",)
# The embedded tables, and the files a table may come in (recipe_keras.tabular).
TABLES = ("adult", "abalone")
TABLE_SUFFIXES = (".csv", ".csv.gz", ".parquet")
# Same rule as recipe_keras.config.dataset_kind (this hook cannot import recipe_keras).
TFDS_NAME = re.compile(r"^[a-z][a-z0-9_]*(/[A-Za-z0-9_.-]+)?(:[0-9*]+(\.[0-9*]+){0,2})?$")
# Names a package must not take: they would shadow what the project imports (the
# import names of recipe-keras's dependencies, with every backend and the project's
# dev tools; tests/test_template.py holds this list to the installed ones) or its tests.
SHADOWED = {
    "absl", "array_record", "arrow", "astunparse", "attr", "attrs", "binaryornot",
    "certifi", "cfgv", "charset_normalizer", "clang", "cleanlab", "click", "cloudpickle",
    "contourpy", "cookiecutter", "cycler", "dateutil", "distlib", "docstring_parser",
    "einops", "etils", "filelock", "flatbuffers", "fonttools", "fsspec", "functorch",
    "gast", "google", "grpc", "h5py", "hatchling", "identify", "idna", "immutabledict",
    "importlib_resources", "iniconfig", "isympy", "jax", "jaxlib", "jinja2", "joblib",
    "keras", "keras_tuner", "kerastuner", "kiwisolver", "markdown", "markdown_it",
    "markupsafe", "matplotlib", "mdurl", "ml_dtypes", "mpl_toolkits", "mpmath", "namex",
    "narwhals", "networkx", "nodeenv", "numpy", "opt_einsum", "optree", "packaging",
    "pandas", "pasta", "pathspec", "pil", "platformdirs", "pluggy", "pre_commit", "promise",
    "psutil", "py", "pyarrow", "pygments", "pylab", "pyparsing", "pytest",
    "python_discovery", "recipe_keras", "requests", "rich", "ruff", "scipy", "setuptools",
    "simple_parsing", "six", "sklearn", "slugify", "sympy", "tensorboard",
    "tensorboard_data_server", "tensorflow", "tensorflow_datasets", "tensorflow_metadata",
    "termcolor", "test", "tests", "text_unidecode", "threadpoolctl", "toml", "tomli",
    "tomlkit", "torch", "torchgen", "tqdm", "tree", "trove_classifiers",
    "typing_extensions", "tzdata", "urllib3", "virtualenv", "werkzeug", "wheel", "wrapt",
    "yaml", "zipp",
}  # fmt: skip
# Longer names make paths that some file systems refuse (the folder and the package).
MAX_SLUG = 64
# Pythons the generated CI may run: those TensorFlow 2.21 publishes wheels for.
PYTHONS = ("3.10", "3.11", "3.12", "3.13")
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
    if not slug:
        return (
            f"project_name {ANSWERS['project_name']!r} gives no package name (it has no ASCII "
            "letters or digits); answer project_slug as well, e.g. project_slug=my_project"
        )
    if len(slug) > MAX_SLUG:
        return f"project_slug {slug[:20]!r}... is {len(slug)} characters; give {MAX_SLUG} or fewer"
    if not slug.isascii() or not slug.isidentifier() or keyword.iskeyword(slug):
        return (
            f"project_slug {slug!r} is not a valid Python identifier "
            "(ASCII letters, digits and _, not starting with a digit)"
        )
    if slug in sys.stdlib_module_names or slug.lower() in SHADOWED:
        return f"project_slug {slug!r} would shadow the module of that name; pick another"
    for key, allowed in CHOICES.items():
        if ANSWERS[key] not in allowed:
            return f"{key} {ANSWERS[key]!r} is not allowed; choose one of {', '.join(allowed)}"
    dataset = ANSWERS["dataset"]
    path = Path(dataset).expanduser()
    if ANSWERS["task"] == "text_classification":
        return _text_answers(dataset, path)
    if ANSWERS["model"] in TEXT_MODELS:
        return f"model {ANSWERS['model']!r} reads token ids; answer task=text_classification for it"
    if ANSWERS["task"].startswith("tabular_"):
        return _table_answers(dataset, path)
    if dataset in TEXTS:
        return f"dataset {dataset!r} is a corpus of texts; answer task=text_classification for it"
    if dataset in TABLES:
        return f"dataset {dataset!r} is a table; answer task=tabular_classification (or tabular_regression) for it"
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
    return _numbers_and_requirement()


def _table_answers(dataset, path):
    """A table's dataset: an embedded table, or a table file or folder on this machine."""
    if ANSWERS["model"] == "cnn":
        return "model 'cnn' reads images; for a table choose mlp or linear"
    if dataset not in TABLES:
        if not path.is_absolute():
            return (
                f"dataset {dataset!r} is not allowed for a table; give an embedded table "
                f"({', '.join(TABLES)}) or the absolute path of a .csv or .parquet file, or "
                "of a folder holding train.csv"
            )
        if not (path.is_dir() or (path.is_file() and path.name.endswith(TABLE_SUFFIXES))):
            return f"dataset {dataset!r}: no such table file or folder"
    return _numbers_and_requirement()


def _text_answers(dataset, path):
    """A corpus: an embedded one, a file or folder on this machine, or a TFDS name."""
    if ANSWERS["model"] not in ("auto", *TEXT_MODELS):
        return f"model {ANSWERS['model']!r} does not read text; choose {', '.join(TEXT_MODELS)}"
    if dataset in TEXTS or (TFDS_NAME.match(dataset) and dataset not in (*TABLES, *EMBEDDED)):
        return _numbers_and_requirement()
    if not path.is_absolute():
        return (
            f"dataset {dataset!r} is not allowed for text; give an embedded corpus "
            f"({', '.join(TEXTS)}), a TFDS catalog name, or the absolute path of a .csv or "
            ".parquet file, or of a folder laid out split/label/text.txt"
        )
    if not (path.is_dir() or (path.is_file() and path.name.endswith(TABLE_SUFFIXES))):
        return f"dataset {dataset!r}: no such text file or folder"
    return _numbers_and_requirement()


def _numbers_and_requirement():
    for key in ("epochs", "batch_size", "seed"):
        value = str(ANSWERS[key])
        # ASCII digits only: str.isdigit() also takes '٣', which TOML does not.
        if (
            not re.fullmatch(r"[0-9]{1,10}", value)
            or (key != "seed" and int(value) < 1)
            or int(value) > 2**32 - 1
        ):
            return f"{key} {value!r} is not allowed; give a whole number" + (
                "" if key == "seed" else " >= 1"
            )
    version = ANSWERS["python_version"]
    if version not in PYTHONS:
        return (
            f"python_version {version!r} is not allowed; give one of {', '.join(PYTHONS)} "
            "(the Pythons TensorFlow 2.21 has wheels for)"
        )
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
