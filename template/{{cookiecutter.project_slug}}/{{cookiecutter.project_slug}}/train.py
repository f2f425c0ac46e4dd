"""Train the model and evaluate it on the whole test split: `make train`.

The recipe's defaults come from recipe_keras and config.toml: one seed (R2.1),
no augmentation (R2.2), full-split evaluation (R2.3), Adam 3e-4 at a constant
rate (R3.2, R3.4). Edit model.py for the network and config.toml for the rest.
"""

import argparse

from recipe_keras.config import Config, load_config
from recipe_keras.report import Report
from recipe_keras.seed import set_seed
from recipe_keras.train import compile_model, fit_and_evaluate

from {{ cookiecutter.project_slug }}.data import load_data
from {{ cookiecutter.project_slug }}.model import build_model


def run(config: Config, summary: bool = False) -> Report:
    """One training run of ``config`` (make ladder calls it once per rung)."""
    set_seed(config.seed, config.deterministic)  # before anything random: weights, shuffling
    splits = load_data(config)
    model = build_model(splits.input_shape, splits.num_classes, config.model)
    if summary:
        model.summary()
    # The planned steps place a configured learning-rate schedule (constant by default).
    steps_per_epoch = splits.steps_per_epoch(config.data.batch_size)
    compile_model(model, config.train, steps_per_epoch)
    return fit_and_evaluate(model, splits, config)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Train and evaluate the model.")
    parser.add_argument("--config", default="config.toml", help="the project's config file")
    args = parser.parse_args(argv)

    config = load_config(args.config)
    report = run(config, summary=True)
    n = report.numbers
    print(
        f"[{report.backend}] test accuracy {n['test_accuracy']:.3f} "
        f"(chance {n['chance_accuracy']:.3f}, "
        f"commonest class {n['commonest_class_accuracy']:.3f}), test loss {n['test_loss']:.3f}, "
        f"{n['wall_seconds']:.1f} s; report: {config.train.reports_dir}/train.json, "
        f"model: {config.train.model_path}"
    )


if __name__ == "__main__":
    main()
