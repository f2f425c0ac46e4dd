"""The recipe's step 3 on this project: `make ladder` (one change at a time, R3.3).

Trains the base config, then each rung of config.toml's [ladder], every rung
adding exactly one change to the one before, and prints a table of train and
validation numbers with the change in validation accuracy per rung. Rungs
already trained with the same config are skipped, so re-running resumes.
"""

import argparse

from recipe_keras.config import load_config
from recipe_keras.ladder import run_ladder

from {{ cookiecutter.project_slug }}.train import run


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run the experiment ladder.")
    parser.add_argument("--config", default="config.toml", help="the project's config file")
    args = parser.parse_args(argv)
    run_ladder(run, load_config(args.config))


if __name__ == "__main__":
    main()
