"""The ``recipe-keras`` command line."""

from __future__ import annotations

import argparse
import sys

__all__ = ["main"]


def _answers(pairs: list[str]) -> dict[str, str]:
    answers = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"recipe-keras new: {pair!r} is not KEY=VALUE (e.g. backend=jax)")
        answers[key] = value
    return answers


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="recipe-keras", description="Karpathy's training recipe as Keras 3 tools."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    new = commands.add_parser(
        "new",
        help="create a project from the template this package carries (works offline)",
        description="Create a project; answers not given as KEY=VALUE are prompted for.",
    )
    new.add_argument("answers", nargs="*", metavar="KEY=VALUE", help="e.g. backend=jax")
    new.add_argument("-o", "--output-dir", default=".", help="where the project folder goes")
    new.add_argument("--no-input", action="store_true", help="take defaults, ask nothing")
    report = commands.add_parser(
        "report",
        help="render reports/index.html from a project's reports/*.json",
        description="Render the recipe report (one static HTML page) of a project.",
    )
    report.add_argument("project", nargs="?", default=".", help="the project folder")
    args = parser.parse_args(argv)

    if args.command == "report":
        return _report(args.project)

    if args.command == "new":
        from cookiecutter.exceptions import CookiecutterException

        from recipe_keras.new import new_project

        try:
            project = new_project(args.output_dir, _answers(args.answers), args.no_input)
        except CookiecutterException as exc:
            # The pre-gen hook has printed which answer is wrong; cookiecutter removed the folder.
            print(f"recipe-keras new: no project written ({exc})", file=sys.stderr)
            return 1
        except ValueError as exc:  # cookiecutter's check of a choice answer
            print(f"recipe-keras new: no project written: {exc}", file=sys.stderr)
            return 1
        print(f"Created {project}\nNext: cd {project} && make install && make train")
    return 0


def _report(project: str) -> int:
    from pathlib import Path

    from recipe_keras.config import ConfigError, load_config
    from recipe_keras.html import write_html_report

    root = Path(project)
    if not root.is_dir():
        print(f"recipe-keras report: {project!r} is not a folder", file=sys.stderr)
        return 1
    try:
        config = load_config(root / "config.toml") if (root / "config.toml").is_file() else None
    except ConfigError as exc:
        print(f"recipe-keras report: {exc}", file=sys.stderr)
        return 1
    reports = root / (config.train.reports_dir if config else "reports")
    path = write_html_report(reports)
    print(f"Wrote {path} (open it in a browser; it needs no server)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
