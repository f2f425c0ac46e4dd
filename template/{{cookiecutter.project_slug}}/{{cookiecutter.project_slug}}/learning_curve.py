"""R4.1 on this project: `make learning-curve` (would more data help?).

Trains train.run on growing shares of the training split ([learning_curve] in
config.toml) and plots accuracy against the number of training examples.
"""

import argparse

from recipe_keras.config import load_config
from recipe_keras.learning_curve import learning_curve

from {{ cookiecutter.project_slug }}.train import run


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Plot the learning curve.")
    parser.add_argument("--config", default="config.toml", help="the project's config file")
    args = parser.parse_args(argv)
    learning_curve(run, load_config(args.config))


if __name__ == "__main__":
    main()
