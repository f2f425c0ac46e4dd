"""Train the model and evaluate it on the whole test split: `make train`.

Every recipe-keras step reads the same three things: ``load_data`` (data.py),
``build_model`` (model.py) and this training run. `make ladder` and `make
learning-curve` call ``run`` once per variant of config.toml.
"""

from recipe_keras import train as recipe
from recipe_keras.config import Config
from recipe_keras.report import Report
from recipe_keras.seed import set_seed

from {{ cookiecutter.project_slug }} import model as network
from {{ cookiecutter.project_slug }}.data import load_data


def run(config: Config) -> Report:
    """One training run of ``config``: fit, then evaluate and write reports/train.json."""
    set_seed(config.seed, config.deterministic)  # R2.1: before anything random
    splits = load_data(config)
    model = network.build_model(splits.input_shape, splits.num_classes, config.model)
    # Compiled as every step compiles it: model.py's compile_model if it has one, else
    # the recipe's: Adam at train.learning_rate (AdamW with train.weight_decay),
    # constant unless train.lr_schedule (R3.2, R3.4),
{%- if cookiecutter.task == "tabular_regression" %} the mean squared error, RMSE,
    # MAE and R², the schedule placed over the planned steps.
{%- else %} cross-entropy on the logits
    # (from_logits=True) and accuracy, the schedule placed over the planned steps.
{%- endif %}
    recipe.compile_as(network, model, splits, config)
    if config.train.verbose:
        model.summary()
{%- if cookiecutter.task == "tabular_regression" %}
    # R2.5: start the final bias at the training split's mean target.
    init = recipe.init_to_mean(model, splits)
{%- else %}
    # R2.5: start the final bias at the log class priors.
    init = recipe.init_from_priors(model, splits)
{%- endif %}
    history = model.fit(
        splits.fit_train,  # the training split; mixed (R4.3) when data.mix is set
        validation_data=splits.fit_val,  # the whole validation split, every epoch (R2.3)
        epochs=config.train.epochs,
        shuffle=False,  # the pipeline shuffles, seeded; Keras would warn it cannot
        # Resume after an interruption (same order, same config), TensorBoard logs,
        # epoch times, a stop at a non-finite loss, early stopping.
        callbacks=recipe.callbacks(config, splits),
        verbose=config.train.verbose,
    )
    # Whole splits, the baselines beside the model, figures, the saved model.
    return recipe.evaluate(model, history, splits, config, init=init)


if __name__ == "__main__":
    # `python -m {{ cookiecutter.project_slug }}.train` is `make train`; it takes the same
    # --config FILE and --set KEY=VALUE ... as `recipe-keras train`.
    import sys

    from recipe_keras.cli import main

    from {{ cookiecutter.project_slug }} import CONFIG

    raise SystemExit(main(["train", "--config", str(CONFIG), *sys.argv[1:]]))
