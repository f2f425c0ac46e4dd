"""The recipe's step 5 on this project: `make tune` (random search; bayesian or hyperband).

config.toml's [tune] picks the algorithm, the budget and the search space: the
config keys each trial draws. Every trial builds the model through
model.py's build_model with those values applied, so this file holds no model
code. Re-running resumes the search from tune.directory; delete that folder
to start over. The best model and its values are exported there.
"""

import argparse

from recipe_keras.config import Config, load_config
from recipe_keras.seed import set_seed
from recipe_keras.train import compile_model
from recipe_keras.tune import search

from {{ cookiecutter.project_slug }}.data import load_data
from {{ cookiecutter.project_slug }}.model import build_model


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Search hyperparameters with KerasTuner.")
    parser.add_argument("--config", default="config.toml", help="the project's config file")
    args = parser.parse_args(argv)

    config = load_config(args.config)
    set_seed(config.seed)
    splits = load_data(config)
    steps_per_epoch = splits.steps_per_epoch(config.data.batch_size)

    def build(trial_config: Config):
        # The project's model with one trial's values (config keys) applied.
        model = build_model(splits.input_shape, splits.num_classes, trial_config.model)
        return compile_model(model, trial_config.train, steps_per_epoch, config.tune.epochs)

    search(build, splits, config)


if __name__ == "__main__":
    main()
