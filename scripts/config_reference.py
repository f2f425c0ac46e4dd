"""Write the config reference from its one source: the comments above each field of
``recipe_keras/config.py``'s dataclasses.

Two files come from it: the template's ``config.toml`` (every key with its comment
and default) and the table of ``docs/config.md`` (between its generated markers).
``tests/test_config.py`` regenerates both and compares, so an edited comment or
default that was not regenerated fails the suite.

    python scripts/config_reference.py          # rewrite both files
    python scripts/config_reference.py --check  # exit 1 and name the stale file
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "recipe_keras" / "config.py"
TOML = ROOT / "template" / "{{cookiecutter.project_slug}}" / "config.toml"
DOCS = ROOT / "docs" / "config.md"
BEGIN = "<!-- generated from recipe_keras/config.py by scripts/config_reference.py -->"
END = "<!-- end of generated table -->"

HEADER = """\
# {{ cookiecutter.project_name }}: the one config of this project, read by recipe_keras.config.
# Every key is listed with its default; an unknown key or a bad value stops the run
# with a message naming the key, the value and what is allowed. Any key can be set
# for one run: make train ARGS="train.epochs=2 model.width=16".
"""

# Keys whose value the template's answers fill in (Jinja, rendered by cookiecutter).
ANSWERED = {
    "package": '"{{ cookiecutter.project_slug }}"',
    "backend": '"{{ cookiecutter.backend }}"',
    "task": '"{{ cookiecutter.task }}"',
    "seed": "{{ cookiecutter.seed }}",
    "data.dataset": "{{ cookiecutter.dataset | tojson }}",
    "data.batch_size": "{{ cookiecutter.batch_size }}",
    "model.name": '"{{ cookiecutter.__net }}"',
    "train.epochs": "{{ cookiecutter.epochs }}",
    "train.learning_rate": '{{ "3e-4" if cookiecutter.__net in ("mlp", "cnn") else "3e-3" }}',
}
# Rungs (a list's tables) that change images: a table project's config.toml leaves them out.
IMAGES_ONLY = ("data.augment", "data.mix", "data.image_size", "data.channels")
NOT_IMAGES = 'cookiecutter.task != "image_classification"'
# Defaults shown in the docs where the library has none of its own.
DOCS_DEFAULT = {"package": "(the project's)"}


def field_comments() -> dict[str, dict[str, list[str]]]:
    """{class name: {field name: the comment lines right above it}}."""
    found: dict[str, dict[str, list[str]]] = {}
    cls, pending = None, []
    for line in SOURCE.read_text().splitlines():
        if match := re.match(r"^class (\w+)", line):
            cls, pending = match[1], []
            found[cls] = {}
        elif cls and line.startswith("    # "):
            pending.append(line[6:])
        elif cls and line.startswith("    #"):
            pending.append(line[5:])
        elif cls and (match := re.match(r"^    (\w+): ", line)):
            found[cls][match[1]] = pending
            pending = []
        else:
            pending = []
    return found


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, float) and value and abs(value) < 1e-2:  # 3e-4, not 0.0003
        mantissa, exponent = f"{value:e}".split("e")
        return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"no TOML for {value!r}")


def toml_key(key: str) -> str:
    return key if key.replace("_", "").isalnum() else json.dumps(key)


def sections():
    """(section name or "", dataclass, instance) in the file's order."""
    from recipe_keras.config import Config

    config = Config()
    nested = []
    yield "", Config, config
    for f in dataclasses.fields(Config):
        value = getattr(config, f.name)
        if dataclasses.is_dataclass(value):
            nested.append((f.name, type(value), value))
    yield from nested


def entries():
    """(section, field name, dotted key, value, comment lines) for every key, in order."""
    comments = field_comments()
    for section, cls, instance in sections():
        for f in dataclasses.fields(cls):
            value = getattr(instance, f.name)
            if dataclasses.is_dataclass(value):
                continue
            key = f"{section}.{f.name}" if section else f.name
            yield section, f.name, key, value, comments.get(cls.__name__, {}).get(f.name, [])


def render_toml() -> str:
    out, current = [HEADER], None
    for section, name, key, value, comment in entries():
        if section != current:
            out.append(f"\n[{section}]\n" if section else "\n")
            current = section
        out.extend(f"# {line}".rstrip() + "\n" for line in comment)
        tables = isinstance(value, dict) and all(isinstance(v, dict) for v in value.values())
        if value and tables:
            out.append(f"\n[{key}]\n")  # a table of tables: tune.space
            out.extend(f"{toml_key(k)} = {toml_value(v)}\n" for k, v in value.items())
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            out.append(f"{name} = [\n")
            for v in value:
                line = f"  {toml_value(v)},"
                if set(v) & set(IMAGES_ONLY):
                    line = f"{{%- if not {NOT_IMAGES} %}}\n{line}\n{{%- endif %}}"
                out.append(f"{line}\n")
            out.append("]\n")
        else:
            out.append(f"{name} = {ANSWERED.get(key, toml_value(value))}\n")
    return "".join(out).replace("\n\n\n", "\n\n")


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _default(key: str, value) -> str:
    if key in DOCS_DEFAULT:
        return DOCS_DEFAULT[key]
    if isinstance(value, dict) and len(toml_value(value)) > 40:
        return "`" + "`, `".join(value) + "`"
    if isinstance(value, list) and value and isinstance(value[0], dict):
        return "; ".join(f"`{toml_value(v)}`" for v in value)
    return f"`{toml_value(value)}`"


def render_table() -> str:
    """One row per comment: keys sharing a comment share its row."""
    rows: list[tuple[list[str], list[str], str]] = []
    for _, _, key, value, comment in entries():
        if comment or not rows:
            rows.append(([key], [_default(key, value)], " ".join(comment)))
        else:
            rows[-1][0].append(key)
            rows[-1][1].append(_default(key, value))
    lines = ["| key | default | meaning |", "|---|---|---|"]
    for keys, defaults, text in rows:
        shown = " / ".join(f"`{k}`" for k in keys)
        lines.append(f"| {shown} | {_cell(' / '.join(defaults))} | {_cell(text)} |")
    return "\n".join(lines) + "\n"


def render_docs() -> str:
    text = DOCS.read_text()
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    return f"{head}{BEGIN}\n{render_table()}{END}{tail}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 if stale")
    args = parser.parse_args()
    stale = []
    for path, text in ((TOML, render_toml()), (DOCS, render_docs())):
        if path.read_text() != text:
            stale.append(path)
            if not args.check:
                path.write_text(text)
    for path in stale:
        verb = "is stale" if args.check else "rewritten"
        print(f"{path.relative_to(ROOT)} {verb}")
    return 1 if stale and args.check else 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
