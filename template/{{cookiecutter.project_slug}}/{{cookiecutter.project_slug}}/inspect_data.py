"""The recipe's step 1 on this project: `make inspect` (become one with the data).

Audits every split of the configured dataset before any model code runs:
random examples per class, class balance, duplicates and train/test leakage,
broken files, outliers, label-noise suspects and input resolution (R1.1-R1.7);
after `make train`, the model's confusion matrix and worst mistakes (R1.8).
Writes reports/inspect.json and reports/inspect/*.png; exits non-zero if a
finding fails (leakage, label conflicts, broken files).
"""

import argparse
import sys

from recipe_keras.audit import inspect_dataset
from recipe_keras.config import load_config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Audit the dataset (recipe step 1).")
    parser.add_argument("--config", default="config.toml", help="the project's config file")
    args = parser.parse_args(argv)

    config = load_config(args.config)
    report = inspect_dataset(
        config.data,
        config.train.reports_dir,
        config.inspect,
        seed=config.seed,
        model_path=config.train.model_path,
    )
    return 1 if "fail" in report.verdicts.values() else 0


if __name__ == "__main__":
    sys.exit(main())
