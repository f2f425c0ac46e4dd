"""The recipe's step 5 on this project: `make tune` (random search; bayesian or hyperband).

config.toml's [tune] picks the algorithm, the budget and the search space: the
config keys each trial draws. `build_model(hp)` below is KerasTuner's
hypermodel and the one place that reads hyperparameters: it applies the
[tune.space] draws to the config and builds through model.py, so this file
holds no model code. Draw more here (`hp.Int("layers", 1, 3)`) and pass them on
if your model needs them. Re-running resumes the search from tune.directory;
delete that folder to start over. The best model and its values are exported there.
"""

import argparse

import keras
import keras_tuner
from recipe_keras.config import load_config
from recipe_keras.seed import set_seed
from recipe_keras.train import compile_model
from recipe_keras.tune import search, trial_config

from {{ cookiecutter.project_slug }} import model as network
from {{ cookiecutter.project_slug }}.data import load_data


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Search hyperparameters with KerasTuner.")
    parser.add_argument("--config", default="config.toml", help="the project's config file")
    args = parser.parse_args(argv)

    config = load_config(args.config)
    set_seed(config.seed, config.deterministic)
    splits = load_data(config)
    steps_per_epoch = splits.steps_per_epoch(config.data.batch_size)

    def build_model(hp: keras_tuner.HyperParameters) -> keras.Model:
        """One trial's compiled model: the project's model with the trial's values."""
        trial = trial_config(hp, config)
        net = network.build_model(splits.input_shape, splits.num_classes, trial.model)
        return compile_model(net, trial.train, steps_per_epoch, config.tune.epochs)

    search(build_model, splits, config)


if __name__ == "__main__":
    main()
