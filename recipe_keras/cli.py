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
    inspect = commands.add_parser(
        "inspect",
        help="audit a dataset (recipe step 1): writes <out>/inspect.json and figures",
        description="Audit every split of a dataset: R1.1-R1.7, and R1.8 with --model. "
        "With --config, a project's dataset, [inspect] settings, reports folder and model.",
    )
    source = inspect.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", help="an embedded name (digits), a TFDS name or an image folder")
    source.add_argument("--config", help="a project's config.toml (what make inspect passes)")
    inspect.add_argument("--out", default="reports", help="folder for inspect.json and figures")
    inspect.add_argument("--data-dir", default="", help="TFDS data_dir (default: TFDS's own)")
    inspect.add_argument("--channels", type=int, default=0, help="1 or 3 to convert to")
    inspect.add_argument("--limit", type=int, default=0, help="audit the first N of each split")
    inspect.add_argument("--near-bits", type=int, default=5, help="near-duplicate hash bits")
    inspect.add_argument("--folds", type=int, default=5, help="folds of the label-noise model")
    inspect.add_argument("--seed", type=int, default=0)
    inspect.add_argument("--model", help="a saved .keras model: adds its mistakes (R1.8)")
    for name, what in (
        ("ladder", "step 3's experiment ladder (R3.3)"),
        ("learning-curve", "the learning curve (R4.1)"),
    ):
        step = commands.add_parser(name, help=f"run a project's {what}", description=f"Run {what}.")
        step.add_argument("--config", default="config.toml", help="the project's config file")
        step.add_argument(
            "--train",
            required=True,
            metavar="MODULE:FUNCTION",
            help="the project's one training run, e.g. my_project.train:run",
        )
    args = parser.parse_args(argv)

    if args.command == "inspect":
        return _inspect(args)
    if args.command in ("ladder", "learning-curve"):
        return _experiments(args)
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


def _inspect(args: argparse.Namespace) -> int:
    from pathlib import Path

    from recipe_keras.config import ConfigError, from_dict, load_config, select_backend

    if args.config:  # a project: its own data, settings, reports folder and trained model
        try:
            config = load_config(args.config)
        except ConfigError as exc:
            print(f"recipe-keras inspect: {exc}", file=sys.stderr)
            return 2
        select_backend(config)  # R1.8 loads the model with the project's backend
        from recipe_keras.audit import inspect_dataset

        report = inspect_dataset(
            config.data,
            config.train.reports_dir,
            config.inspect,
            seed=config.seed,
            model_path=config.train.model_path,
        )
        return 1 if "fail" in report.verdicts.values() else 0
    raw = {
        "data": {"dataset": args.data, "data_dir": args.data_dir, "channels": args.channels},
        "inspect": {
            "near_duplicate_bits": args.near_bits,
            "folds": args.folds,
            "limit": args.limit,
        },
    }
    try:
        config = from_dict(raw, source="recipe-keras inspect")
    except ConfigError as exc:  # its message starts with the source, "recipe-keras inspect"
        print(exc, file=sys.stderr)
        return 2
    if args.model and not Path(args.model).is_file():
        print(f"recipe-keras inspect: --model {args.model!r}: no such file", file=sys.stderr)
        return 2
    from recipe_keras.audit import inspect_dataset

    try:
        report = inspect_dataset(
            config.data, args.out, config.inspect, seed=args.seed, model_path=args.model
        )
    except ValueError as exc:  # an empty or malformed folder
        print(f"recipe-keras inspect: {exc}", file=sys.stderr)
        return 2
    return 1 if "fail" in report.verdicts.values() else 0


def _experiments(args: argparse.Namespace) -> int:
    import importlib

    from recipe_keras.config import ConfigError, load_config

    module, _, function = args.train.partition(":")
    try:
        config = load_config(args.config)
        # The project's package picks the backend from config.toml as it is imported.
        train = getattr(importlib.import_module(module), function)
    except ConfigError as exc:
        print(f"recipe-keras {args.command}: {exc}", file=sys.stderr)
        return 2
    except (ImportError, AttributeError, ValueError) as exc:
        print(
            f"recipe-keras {args.command}: --train {args.train!r} is not MODULE:FUNCTION "
            f"of an importable module ({exc})",
            file=sys.stderr,
        )
        return 2
    if args.command == "ladder":
        from recipe_keras.ladder import run_ladder

        run_ladder(train, config)
    else:
        from recipe_keras.learning_curve import learning_curve

        learning_curve(train, config)
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
