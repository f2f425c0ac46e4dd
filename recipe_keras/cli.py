"""The ``recipe-keras`` command line."""

from __future__ import annotations

import argparse
import re
import sys

from recipe_keras.verdicts import Verdict

__all__ = ["STEPS", "main"]

# The recipe's steps a project runs through its config (the Makefile's targets).
STEPS = {
    "train": "train the project's model through its train.py (make train)",
    "check": "step 2's sanity checks and dumb baselines, R2.1-R2.13 (make check)",
    "human-sheet": "R2.6: draw test examples for you to label (make human-sheet)",
    "human-score": "R2.6: score your filled-in sheet next to the model (make human-score)",
    "ladder": "step 3's experiment ladder, R3.3 (make ladder)",
    "learning-curve": "the learning curve, R4.1 (make learning-curve)",
    "tune": "step 5's KerasTuner search, R5.1/R5.2 (make tune)",
    "ensemble": "step 6: train N members and average them, R6.1 (make ensemble)",
    "distill": "step 6: a small student learns from a teacher's soft targets, R6.2 (make distill)",
}


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
    overrides = {
        "metavar": "KEY=VALUE",
        "nargs": "+",
        "action": "extend",
        "default": [],
        "dest": "overrides",
        "help": "override config keys for this run, e.g. --set train.epochs=2 model.width=16",
    }
    report = commands.add_parser(
        "report",
        help="render reports/index.html from a project's reports/*.json",
        description="Render the recipe report (one static HTML page) of a project.",
    )
    report.add_argument("project", nargs="?", default=".", help="the project folder")
    report.add_argument(
        "--config",
        help="the config whose reports_dir to render (default: the project's config.toml)",
    )
    inspect = commands.add_parser(
        "inspect",
        help="audit a dataset (recipe step 1): writes <out>/inspect.json and figures",
        description="Audit every split of a dataset: R1.1-R1.7, and R1.8 with --model. "
        "With --config, what the project's load_data returns, its [inspect] settings, "
        "reports folder and trained model.",
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
    inspect.add_argument("--set", **overrides)
    report.add_argument("--set", **overrides)
    for name, what in STEPS.items():
        step = commands.add_parser(name, help=what, description=f"{what[0].upper()}{what[1:]}.")
        step.add_argument("--config", default="config.toml", help="the project's config file")
        step.add_argument("--set", **overrides)
        if name == "tune":
            step.add_argument(
                "--workers",
                type=int,
                default=0,
                metavar="N",
                help="R5.3: a chief and N local worker processes share the search "
                "(KerasTuner's distributed mode, on 127.0.0.1)",
            )
        if name == "human-score":
            step.add_argument(
                "sheet", nargs="?", help="the filled-in sheet (default: reports/human/sheet.csv)"
            )
    args = parser.parse_args(argv)

    if args.command == "inspect":
        return _inspect(args)
    if args.command == "tune" and args.workers:
        return _workers(args)
    if args.command in STEPS:
        return _step(args)
    if args.command == "report":
        return _report(args.project, args.config, args.overrides)

    if args.command == "new":
        from cookiecutter.exceptions import CookiecutterException, OutputDirExistsException

        from recipe_keras.new import new_project

        try:
            project = new_project(args.output_dir, _answers(args.answers), args.no_input)
        except OutputDirExistsException as exc:
            print(
                f"recipe-keras new: no project written: {_exists(exc, args.output_dir)}",
                file=sys.stderr,
            )
            return 1
        except OSError as exc:  # a name the file system refuses, a read-only folder
            where = f" ({exc.filename})" if exc.filename else ""
            print(
                f"recipe-keras new: no project written: {exc.strerror or exc}{where}",
                file=sys.stderr,
            )
            return 1
        except CookiecutterException as exc:
            # The pre-gen hook has printed which answer is wrong; cookiecutter removed the folder.
            print(f"recipe-keras new: no project written ({exc})", file=sys.stderr)
            return 1
        except ValueError as exc:  # cookiecutter's check of a choice answer
            print(f"recipe-keras new: no project written: {exc}", file=sys.stderr)
            return 1
        print(f"Created {project}\nNext: cd {project} && make install && make train")
    return 0


def _exists(exc: Exception, output_dir: str) -> str:
    """Cookiecutter's "already exists", said of the folder it means."""
    import re
    from pathlib import Path

    named = re.search(r'"(.*)"', str(exc))
    folder = Path(named[1]) if named else None
    if folder is not None and folder.resolve() == Path(output_dir).resolve():
        return (
            "the project's name gives no folder name (no ASCII letters or digits in it); "
            "answer project_slug as well, e.g. project_slug=my_project"
        )
    return f"{folder or exc} already exists; choose another project_name, or -o another folder"


def _inspect(args: argparse.Namespace) -> int:
    from pathlib import Path

    from recipe_keras.config import ConfigError, from_dict

    if args.config:  # a project: what its load_data returns, its settings and model
        return _step(args)
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
    return 1 if Verdict.FAIL in report.verdicts.values() else 0


def _workers(args: argparse.Namespace) -> int:
    """``make tune WORKERS=N``: the same tune command as a chief and N workers."""
    from recipe_keras.config import ConfigError, load_config
    from recipe_keras.workers import launch, role

    if args.workers < 0:
        print(f"recipe-keras tune: --workers {args.workers}: give 1 or more", file=sys.stderr)
        return 2
    if role():
        print(
            "recipe-keras tune: --workers starts its own chief and workers; unset "
            "KERASTUNER_ORACLE_IP to use it, or drop --workers to join that search",
            file=sys.stderr,
        )
        return 2
    try:  # one message here, not one from each process
        load_config(args.config, args.overrides)
    except (ConfigError, OSError) as exc:
        print(f"recipe-keras tune: {exc}", file=sys.stderr)
        return 2
    command = [sys.executable, "-m", "recipe_keras.cli", "tune", "--config", args.config]
    if args.overrides:
        command += ["--set", *args.overrides]
    from recipe_keras.lock import Busy

    try:
        with _one_run("tune", args.config):  # the chief and workers run under it
            return launch(command, args.workers)
    except Busy as exc:
        print(f"recipe-keras tune: {exc}", file=sys.stderr)
        return 1


# Set to 1 for the whole traceback of an expected error (a bad config, a missing or
# unwritable file, an undecodable image) instead of its one line.
TRACEBACK = "RECIPE_KERAS_TRACEBACK"


def _step(args: argparse.Namespace) -> int:
    """A recipe step on the project the config file names (see recipe_keras.project).

    Expected errors end in one line on stderr and a non-zero exit; anything else is
    a bug and keeps its traceback.
    """
    import os
    import time

    from recipe_keras.config import ConfigError
    from recipe_keras.project import open_project

    # Importing Keras and its backend takes seconds: say so before, not after.
    print(f"recipe-keras {args.command}: {args.config}, loading Keras...", flush=True)
    start = time.monotonic()
    project = None
    try:
        # Selects the backend before Keras starts.
        project = open_project(args.config, args.overrides)
        import keras  # after open_project, which selects the backend

        print(
            f"recipe-keras {args.command}: {project.config.package} on Keras {keras.__version__}, "
            f"{keras.backend.backend()} backend ({time.monotonic() - start:.0f} s)",
            flush=True,
        )
        with _one_run(args.command, project.path):
            return _run_step(args, project)
    except KeyboardInterrupt:
        then = RESUMES.get(args.command, "nothing was left half-written")
        if args.command == "train" and project is not None:
            then = _train_resumes(project.config)
        print(f"recipe-keras {args.command}: interrupted; {then}", file=sys.stderr)
        return 130
    except Exception as exc:
        line = _expected(exc)
        if line is None or os.environ.get(TRACEBACK) == "1":
            raise
        print(f"recipe-keras {args.command}: {line}", file=sys.stderr)
        return 2 if isinstance(exc, ConfigError) else 1


# What the same command does after a Ctrl-C.
RESUMES = {
    "train": "run it again to resume after the last finished epoch",
    "ladder": "run it again: finished rungs are kept",
    "learning-curve": "run it again: finished points are kept",
    "tune": "run it again to resume: finished trials are kept",
    "ensemble": "run it again: finished members are kept",
    "distill": "run it again: finished runs are kept",
}
# The steps that train into the project's artifacts: one at a time per project.
LOCKED = frozenset(RESUMES)


def _train_resumes(config) -> str:
    """What the next ``make train`` does after an interruption: resume from the backup's
    epoch, measure the trained model when training had ended, or start over when no
    epoch was backed up."""
    import json
    from pathlib import Path

    backup = Path(config.train.backup_dir)
    try:
        epoch = json.loads((backup / "training_metadata.json").read_text())["epoch"]
    except (OSError, ValueError, KeyError, TypeError):
        return "no epoch was backed up, so the next run starts over"
    if isinstance(epoch, int) and epoch >= config.train.epochs:
        return (
            "training had ended: run it again to measure and save the trained model "
            f"without training again (the backup in {backup})"
        )
    return f"run it again to resume after epoch {epoch} (the backup in {backup})"


def _one_run(command: str, config_path):
    """The project's lock (``recipe_keras.lock``) for a training step, held by the
    process that leads it: not a tune worker, not a data-parallel process beyond the
    first (they run beside their leader, with outputs of their own)."""
    import contextlib

    from recipe_keras._backend import process_index
    from recipe_keras.lock import one_run
    from recipe_keras.workers import role

    if command not in LOCKED or role() not in ("", "chief") or process_index()[0]:
        return contextlib.nullcontext()
    from pathlib import Path

    return one_run(Path(config_path).resolve().parent, f"recipe-keras {command}")


def _expected(exc: Exception) -> str | None:
    """The one line an expected error is reported in; None for anything else."""
    from recipe_keras.errors import Busy, ConfigError

    if isinstance(exc, ConfigError | Busy):
        return str(exc)
    if isinstance(exc, OSError):  # a full disk, a read-only folder, a missing file
        where = f" ({exc.filename})" if exc.filename else ""
        return f"{exc.strerror or exc}{where}"
    tf = sys.modules.get("tensorflow")
    if tf is not None and isinstance(exc, tf.errors.InvalidArgumentError):
        first = str(exc.message).strip().splitlines()[0]
        return (
            f"the input pipeline failed ({first[:200]}); an image that cannot be decoded? "
            "make inspect lists every broken file"
        )
    short = re.search(r"expected to contain (\d+) elements but contained only (\d+)", str(exc))
    if tf is not None and isinstance(exc, tf.errors.FailedPreconditionError) and short:
        # The size check before each cache (data.make_pipeline).
        return (
            f"a split ended before its size: its source reports {short[1]} elements but "
            f"gave {short[2]}; a data file missing or cut short? Nothing short was "
            "cached: fix the files and run it again"
        )
    return None


def _run_step(args: argparse.Namespace, project) -> int:
    from recipe_keras._backend import process_index

    config = project.config
    if args.command == "train":
        report = project.train()
        if not isinstance(getattr(report, "numbers", None), dict):
            return 0  # a train.run of the project's own that returns no report
        n = report.numbers
        where = (
            f"report: {config.train.reports_dir}/train.json, model: {config.train.model_path}"
            if not (config.train.distribution and process_index()[0])
            else "report and model: process 0 writes them"
        )
        task = project.task
        name, metric = task.score.label, f"test_{task.score.metric}"
        dumb = f"{task.null_label} {n[f'{task.null_name}_{task.score.metric}']:.3f}"
        print(
            f"[{report.backend}] test {name} {n[metric]:.3f} ({dumb}, linear model "
            f"{n['linear_' + metric]:.3f}), test loss {n['test_loss']:.3f}, fit "
            f"{n['fit_seconds']:.1f} s; {where}"
        )
        if Verdict.FAIL in report.verdicts.values():
            return 1
        print(f"Next: {project.task.next_step}")
        return 0
    if args.command == "check":
        from recipe_keras.checks.suite import check_project

        results = check_project(project)
        return 1 if any(r.verdict == Verdict.FAIL for r in results) else 0
    if args.command == "human-sheet":
        return project.task.human_sheet(project)
    if args.command == "human-score":
        return project.task.human_score(project, args.sheet)
    if args.command == "ladder":
        from recipe_keras.ladder import run_ladder

        run_ladder(project.train, config)
        return 0
    if args.command == "learning-curve":
        from recipe_keras.learning_curve import learning_curve

        learning_curve(project.train, config)
        return 0
    if args.command == "tune":
        from recipe_keras.tune import search_project

        search_project(project)
        return 0
    if args.command == "ensemble":
        from recipe_keras.ensemble import run_ensemble

        run_ensemble(project)
        return 0
    if args.command == "distill":
        from recipe_keras.distill import run_distill

        run_distill(project)
        return 0
    report = project.task.inspect(project)  # inspect --config
    return 1 if Verdict.FAIL in report.verdicts.values() else 0


def _report(project: str, config_file: str | None = None, overrides: list[str] = ()) -> int:
    from pathlib import Path

    from recipe_keras.config import ConfigError, load_config
    from recipe_keras.html import write_html_report

    root = Path(project)
    if not root.is_dir():
        print(f"recipe-keras report: {project!r} is not a folder", file=sys.stderr)
        return 1
    path = root / (config_file or "config.toml")
    try:
        config = load_config(path, overrides) if config_file or path.is_file() else None
    except ConfigError as exc:
        print(f"recipe-keras report: {exc}", file=sys.stderr)
        return 1
    reports = root / (config.train.reports_dir if config else "reports")
    try:
        path = write_html_report(reports, task=config.task if config else None)
    except OSError as exc:  # a read-only or full reports folder
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"recipe-keras report: {exc.strerror or exc}{where}", file=sys.stderr)
        return 1
    print(f"Wrote {path} (open it in a browser; it needs no server)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
