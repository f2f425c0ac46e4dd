"""How config values are read and checked: standard library only.

``recipe_keras.config`` declares every key (a typed dataclass field, a comment, a
default); this module reads ``KEY=VALUE`` overrides, says where ``data.dataset``
points, and checks each value against its field's type and metadata, naming the
key, the value received and what is allowed.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import sys
import typing
from pathlib import Path
from typing import Any

from recipe_keras.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = [
    "EMBEDDED_DATASETS",
    "EMBEDDED_TABLES",
    "LABEL_CHANGING",
    "OVERRIDES_ENV",
    "TABLE_SUFFIXES",
    "TUNABLE",
    "UNSAFE_FOR",
    "active_overrides",
    "check_augment",
    "check_space",
    "check_value",
    "dataset_kind",
    "is_a",
    "override",
    "parse_overrides",
]

# Config keys a search may draw (make tune), and the search space it starts with.
TUNABLE = (
    "model.name",
    "model.width",
    "model.dropout",
    "train.learning_rate",
    "train.weight_decay",
)


# Tables that ship with recipe-keras (task = "tabular_classification" and
# "tabular_regression").
EMBEDDED_TABLES = ("adult", "abalone")
# The files a table may come in (data.dataset, a folder's train/val/test).
TABLE_SUFFIXES = (".csv", ".csv.gz", ".parquet")
# Corpora of short labelled texts that ship with recipe-keras (task = "text_classification").
EMBEDDED_TEXTS = ("health_news",)
EMBEDDED_DATASETS = ("digits", *EMBEDDED_TABLES, *EMBEDDED_TEXTS)

# Image augmentations (data.augment, R4.2) and mixes of two examples (data.mix, R4.3).
AUGMENTATIONS = (
    "flip_horizontal",
    "flip_vertical",
    "rotate",
    "translate",
    "zoom",
    "contrast",
    "randaugment",
)
MIXES = ("mixup", "cutmix")
# The ladder's rungs (make ladder) and the search space (make tune) a config starts with.
DEFAULT_RUNGS = (
    {"model.width": 128},
    {"data.augment": ["rotate", "translate"]},
    {"model.dropout": 0.25},
)
DEFAULT_SPACE = {
    "train.learning_rate": {"type": "float", "min": 1e-4, "max": 3e-3, "sampling": "log"},
    "model.width": {"type": "choice", "values": [16, 32, 64]},
    "model.dropout": {"type": "choice", "values": [0.0, 0.25]},
}


# Transforms that can turn one class into another (or into no class at all).
LABEL_CHANGING = ("flip_horizontal", "flip_vertical")


# What is known to be unsafe for the datasets recipe-keras knows, and why.
UNSAFE_FOR = {
    name: {
        "flip_horizontal": "a mirrored digit is another symbol or none (2, 3, 4, 7)",
        "flip_vertical": "an upside-down 6 is a 9",
    }
    for name in ("digits", "mnist", "emnist", "svhn_cropped", "kmnist")
}


# A TFDS catalog name, optionally with a config and a version: "mnist", "mnist:3.*.*",
# "cifar10_corrupted/brightness_1". The template's pre-gen hook applies the same rule.
_TFDS_NAME = re.compile(r"^[a-z][a-z0-9_]*(/[A-Za-z0-9_.-]+)?(:[0-9*]+(\.[0-9*]+){0,2})?$")


def dataset_kind(dataset: str) -> str:
    """Say where ``data.dataset`` points: "embedded", "table", "text", "folder" or "tfds".

    A path (absolute, ``~``, ``./``, or an existing folder) is an image folder;
    an embedded name wins over the TFDS catalog; anything else must look like a
    TFDS catalog name.
    """
    if not dataset.strip():
        raise ConfigError(
            "data.dataset = '' is not allowed; give an embedded name "
            f"({', '.join(EMBEDDED_DATASETS)}), a TFDS catalog name or an image folder's path"
        )
    path = Path(dataset).expanduser()
    try:
        path.resolve()
    except (OSError, RuntimeError) as exc:  # a symbolic link loop
        raise ConfigError(f"data.dataset = {dataset!r} cannot be followed: {exc}") from exc
    if dataset in EMBEDDED_TABLES or (path.is_file() and path.name.endswith(TABLE_SUFFIXES)):
        return "table"
    if dataset in EMBEDDED_TEXTS:
        return "text"
    if dataset.startswith(("/", "~", ".")) or path.is_dir():
        if not path.is_dir():
            raise ConfigError(
                f"data.dataset = {dataset!r}: no such folder; an image folder must exist "
                "and be laid out split/label/image"
            )
        return "folder"
    if dataset in EMBEDDED_DATASETS:
        return "embedded"
    if _TFDS_NAME.match(dataset):
        return "tfds"
    raise ConfigError(
        f"data.dataset = {dataset!r} is not allowed; expected an embedded name "
        f"({', '.join(EMBEDDED_DATASETS)}), a TFDS catalog name such as 'mnist', "
        "or the path of an image folder"
    )


# The KEY=VALUE overrides a command was given, as a JSON list: the package's
# ``activate`` and every report of that command read them from here.
OVERRIDES_ENV = "RECIPE_KERAS_SET"


_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


def parse_overrides(pairs: typing.Sequence[str]) -> dict[str, Any]:
    """``["train.epochs=2", "data.dataset=mnist"]`` as ``{key: value}``.

    A value is read as TOML (``2``, ``3e-4``, ``true``, ``[28, 28]``, ``"text"``) and
    taken as text when it is not TOML, so ``data.dataset=mnist`` needs no quotes.
    """
    found: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        key = key.strip()
        if not sep or not _KEY.fullmatch(key):
            raise ConfigError(f"{pair!r} is not KEY=VALUE (e.g. train.epochs=2 model.width=16)")
        try:
            value = tomllib.loads(f"v = {text}")["v"]
        except tomllib.TOMLDecodeError:
            value = text
        found[key] = value
    return found


def active_overrides() -> list[str]:
    """The overrides of the running command (``OVERRIDES_ENV``), as it was given them."""
    return list(json.loads(os.environ.get(OVERRIDES_ENV) or "[]"))


def override(raw: dict[str, Any], values: dict[str, Any], source: str) -> None:
    for key, value in values.items():
        *sections, name = key.split(".")
        table = raw
        for i, section in enumerate(sections):
            table = table.setdefault(section, {})
            if not isinstance(table, dict):
                where = ".".join(sections[: i + 1])
                raise ConfigError(f"{source}: {key}: {where} is a value, not a table")
        table[name] = value


def check_augment(data, source: str) -> None:
    """R4.2: a transform that can change what a label means runs only where declared safe."""
    for transform in data.augment:
        if transform not in LABEL_CHANGING:
            continue
        known = UNSAFE_FOR.get(data.dataset, {})
        if transform in known:
            raise ConfigError(
                f"{source}: data.augment = {data.augment!r}: {transform!r} is refused for "
                f"{data.dataset!r}: {known[transform]}"
            )
        if transform not in data.label_safe:
            raise ConfigError(
                f"{source}: data.augment = {data.augment!r}: {transform!r} can change what a "
                f"label means (a mirrored 'b' is a 'd'); add it to data.label_safe if it "
                f"does not for {data.dataset!r}"
            )


def check_value(
    key: str, value: Any, hint: Any, meta: Any, source: str, sections: dict[str, type]
) -> Any:
    """``value`` as ``key``'s type and metadata allow it, or a ConfigError naming both.

    ``sections``: the config tables a ladder rung may change (``[data]``, ...).
    """

    def fail(allowed: str) -> typing.NoReturn:
        raise ConfigError(f"{source}: {key} = {value!r} is not allowed; expected {allowed}")

    origin = typing.get_origin(hint)
    if hint is dict:
        return check_space(key, value, source)
    if origin is list:
        (item,) = typing.get_args(hint)
        if item is dict:
            return _check_rungs(key, value, source, sections)
        if not isinstance(value, list) or not all(is_a(v, item) for v in value):
            fail(f"a list of {_NAMES[item].split(' ', 1)[1]}s")
        if "choices" in meta and not set(value) <= set(meta["choices"]):
            fail("a list drawn from " + ", ".join(repr(c) for c in meta["choices"]))
        if key.endswith("fractions") and not (value and all(0 < v <= 1 for v in value)):
            fail("a non-empty list of shares in (0, 1]")
        if key.endswith("image_size") and value and (len(value) != 2 or min(value) < 1):
            fail("[] or [height, width] with positive sizes")
        return list(value)
    if not is_a(value, hint):
        fail(_NAMES[hint])
    if hint is float and not math.isfinite(value):
        fail(f"a finite {_NAMES[hint].split(' ', 1)[1]}")
    if key == "train.best_model_path":
        if value and not value.endswith(".keras"):
            fail('a path ending in .keras (Keras\'s native format), or "" to keep none')
    elif (key.endswith("model_path") or key == "distill.teacher") and not value.endswith(".keras"):
        fail("a path ending in .keras (Keras's native format)")
    if "choices" in meta and value not in meta["choices"]:
        fail("one of " + ", ".join(repr(c) for c in meta["choices"]))
    if "max" in meta and not meta["min"] <= value <= meta["max"]:
        fail(f"{_NAMES[hint]} from {meta['min']} to {meta['max']}")
    if "min" in meta and value < meta["min"]:
        fail(f"{_NAMES[hint]} >= {meta['min']}")
    return float(value) if hint is float else value


_SPEC_KEYS = {
    "float": {"type", "min", "max", "sampling"},
    "int": {"type", "min", "max", "step"},
    "choice": {"type", "values"},
}


def check_space(key: str, value: Any, source: str) -> dict:
    """A search space: every name tunable, every spec complete and consistent."""
    if not isinstance(value, dict) or not value:
        raise ConfigError(f"{source}: {key} = {value!r} is not allowed; expected a table of specs")
    for name, spec in value.items():
        where = f"{source}: {key}.{name!r}"
        if name not in TUNABLE:
            raise ConfigError(f"{where} is not tunable; allowed: {', '.join(TUNABLE)}")
        kind = spec.get("type") if isinstance(spec, dict) else None
        if kind not in _SPEC_KEYS:
            raise ConfigError(
                f"{where} = {spec!r} is not allowed; expected a table with "
                'type = "float", "int" or "choice"'
            )
        extra = set(spec) - _SPEC_KEYS[kind]
        missing = _SPEC_KEYS[kind] - set(spec) - {"sampling", "step"}
        if extra or missing:
            raise ConfigError(
                f"{where}: a {kind} spec takes {', '.join(sorted(_SPEC_KEYS[kind]))}; "
                f"got {', '.join(sorted(spec))}"
            )
        if kind == "choice" and not (isinstance(spec["values"], list) and spec["values"]):
            raise ConfigError(f"{where}: values = {spec['values']!r}; expected a non-empty list")
        bounds = [spec[k] for k in ("min", "max", "step") if kind != "choice" and k in spec]
        wanted = int if kind == "int" else float
        if not all(is_a(b, wanted) and math.isfinite(b) for b in bounds):
            raise ConfigError(
                f"{where} = {spec!r} is not allowed; min, max and step of a {kind} spec must "
                f"be finite {'integers' if kind == 'int' else 'numbers'}"
            )
        if kind != "choice" and not spec["min"] < spec["max"]:
            raise ConfigError(f"{where}: min {spec['min']!r} must be below max {spec['max']!r}")
        if spec.get("sampling", "linear") not in ("linear", "log"):
            raise ConfigError(f"{where}: sampling = {spec['sampling']!r}; expected linear or log")
    return value


def _check_rungs(key: str, value: Any, source: str, sections: dict[str, type]) -> list[dict]:
    """R3.3: each rung is a table changing exactly one data/model/train setting."""
    if not isinstance(value, list):
        raise ConfigError(f"{source}: {key} = {value!r} is not allowed; expected a list of tables")
    for i, rung in enumerate(value, 1):
        where = f"{source}: {key}[{i}]"
        if not isinstance(rung, dict) or len(rung) != 1:
            changes = ", ".join(rung) if isinstance(rung, dict) else repr(rung)
            raise ConfigError(
                f"{where} changes {len(rung) if isinstance(rung, dict) else 0} settings "
                f"({changes or 'none'}); a rung adds exactly one change, e.g. "
                '{ "model.width" = 64 }'
            )
        (name,) = rung
        section, _, field_name = name.partition(".")
        known = sections.get(section)
        if known is None or field_name not in {f.name for f in dataclasses.fields(known)}:
            raise ConfigError(
                f"{where}: {name!r} is not a setting a rung can change; use a quoted "
                f'"section.key" from [{"], [".join(sections)}]'
            )
    return [dict(r) for r in value]


_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}


def is_a(value: Any, hint: type) -> bool:
    if isinstance(value, bool):  # TOML's true is not a number
        return hint is bool
    if hint is float:
        return isinstance(value, (int, float))
    return isinstance(value, hint)
