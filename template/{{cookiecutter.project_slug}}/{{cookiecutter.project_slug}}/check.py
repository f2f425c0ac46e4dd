"""The recipe's step 2 on this project: `make check` (sanity checks and dumb baselines).

Runs every check on the same data pipeline and model `make train` uses, prints
a table with a verdict and advice per check, writes reports/check.json and the
figures, and exits non-zero if a check fails. `--human-sheet` and
`--human-score` run the human baseline (R2.6).
"""

import argparse
import sys

from recipe_keras.checks.human import record_human_score, write_sheet
from recipe_keras.checks.subject import Subject
from recipe_keras.checks.suite import run_checks
from recipe_keras.config import load_config
from recipe_keras.seed import set_seed
from recipe_keras.train import compile_model

from {{ cookiecutter.project_slug }}.data import load_data
from {{ cookiecutter.project_slug }}.model import build_model


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the recipe's sanity checks.")
    parser.add_argument("--config", default="config.toml", help="the project's config file")
    parser.add_argument("--human-sheet", action="store_true", help="draw test examples to label")
    parser.add_argument("--human-score", metavar="CSV", help="score a filled-in sheet")
    args = parser.parse_args(argv)

    config = load_config(args.config)
    reports = config.train.reports_dir
    if args.human_score:
        n = record_human_score(args.human_score, reports).numbers
        model = n["model_test_accuracy"]
        model = "(run make train)" if model is None else f"{model:.3f}"
        print(
            f"human accuracy {n['human_accuracy']:.3f} on {n['examples']} test examples; "
            f"model {model} -> {reports}/human.json"
        )
        return 0

    set_seed(config.seed, config.deterministic)
    splits = load_data(config)
    if args.human_sheet:
        sheet = write_sheet(
            splits.test,
            splits.class_names,
            f"{reports}/human",
            n=config.check.human_examples,
            seed=config.seed,
        )
        print(f"Label the images in {sheet.with_suffix('.png')} in {sheet}, then: make human-score")
        return 0

    def build(model_config):
        # A fresh compiled model, exactly as train.py makes it.
        model = build_model(splits.input_shape, splits.num_classes, model_config)
        return compile_model(model, config.train)

    subject = Subject(lambda: load_data(config), build, config.model, config.seed, splits)
    results = run_checks(subject, reports, config.check)
    return 1 if any(r.verdict == "fail" for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
