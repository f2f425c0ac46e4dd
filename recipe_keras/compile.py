"""The one build-and-compile path every step takes (train, check, tune, ladder, ...).

``build_compiled`` builds the project's network (model.py's ``build_model``) and
compiles it as the project compiles: model.py's own ``compile_model`` if it has
one, else the recipe's. So every step judges the optimizer, loss and schedule
``make train`` uses.

The recipe's compile: Adam at 3e-4 with a constant learning rate (R3.2, R3.4),
logits with ``from_logits=True``, ``jit_compile="auto"`` (forcing XLA on a CPU
is slower on TensorFlow; turning jit off on JAX much slower).
"""

from __future__ import annotations

from types import ModuleType

import keras

from recipe_keras.config import Config, ModelConfig, TrainConfig
from recipe_keras.data import Splits
from recipe_keras.task import Task, get_task

__all__ = [
    "build_compiled",
    "build_optimizer",
    "check_labels",
    "compile_as",
    "compile_model",
    "initial_rate",
    "is_adam",
    "learning_rate_at",
    "schedule_warning",
]


def _schedule(cfg: TrainConfig, steps_per_epoch: int, epochs: int):
    """The learning rate: a float (constant, R3.4) or a Keras schedule over the planned steps."""
    if cfg.lr_schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(
            cfg.learning_rate, decay_steps=max(1, steps_per_epoch * epochs)
        )
    if cfg.lr_schedule == "exponential":
        return keras.optimizers.schedules.ExponentialDecay(
            cfg.learning_rate, decay_steps=max(1, steps_per_epoch), decay_rate=cfg.lr_decay_rate
        )
    return cfg.learning_rate


def learning_rate_at(cfg: TrainConfig, step: int, steps_per_epoch: int, epochs: int) -> float:
    """The configured learning rate at ``step``, from the very schedule object training uses."""
    schedule = _schedule(cfg, steps_per_epoch, epochs)
    if isinstance(schedule, float):
        return schedule
    return float(keras.ops.convert_to_numpy(schedule(step)))


def schedule_warning(cfg: TrainConfig, steps_per_epoch: int, epochs: int) -> str:
    """R3.4: a schedule that decays under 1% of the initial rate before half of training."""
    total = steps_per_epoch * epochs
    half = learning_rate_at(cfg, total // 2, steps_per_epoch, epochs)
    if cfg.learning_rate and half < 0.01 * cfg.learning_rate:
        end = learning_rate_at(cfg, total, steps_per_epoch, epochs)
        share = half / cfg.learning_rate
        return (
            f"the {cfg.lr_schedule} schedule is at {half:.2e} halfway ({share:.2%}"
            f" of {cfg.learning_rate:g}) and {end:.2e} at step {total}: the second half of"
            " training barely moves; raise lr_decay_rate or use a constant rate"
        )
    return ""


def compile_model(
    model: keras.Model,
    cfg: TrainConfig,
    steps_per_epoch: int = 1,
    epochs: int | None = None,
    soft_labels: bool = False,
    task: Task | None = None,
) -> keras.Model:
    """The recipe's compile: Adam (AdamW with weight decay), the task's loss and metrics
    (classification: integer labels and logits, cross-entropy and accuracy).

    ``steps_per_epoch`` and ``epochs`` place a configured schedule over the planned
    run; ``build_compiled`` passes the project's, and every step compiles through it.
    ``soft_labels``: training batches are mixed (R4.3, ``data.mix``), so the loss and
    accuracy take soft labels as well as integer ones. ``task``: whose loss and
    metrics (``Task.loss_and_metrics``); classification's when None.
    """
    rate = _schedule(cfg, steps_per_epoch, epochs or cfg.epochs)
    optimizer = (
        keras.optimizers.AdamW(learning_rate=rate, weight_decay=cfg.weight_decay)
        if cfg.weight_decay
        else keras.optimizers.Adam(learning_rate=rate)
    )
    loss, metrics = (task or Task()).loss_and_metrics(soft_labels)
    model.compile(optimizer=optimizer, loss=loss, metrics=metrics, jit_compile="auto")
    build_optimizer(model)
    return model


def build_compiled(
    network: ModuleType,
    splits: Splits,
    config: Config,
    *,
    epochs: int | None = None,
    model: ModelConfig | None = None,
) -> keras.Model:
    """The project's model, compiled: the one path every step builds through.

    ``network`` is the project's model module: its ``build_model(input_shape,
    num_classes, model_config)`` makes the network; its optional
    ``compile_model(model, config, steps_per_epoch, epochs)`` compiles it, else the
    recipe's ``compile_model`` does. The schedule is placed by the planned steps:
    ``splits``' training batches times ``epochs`` (``config.train.epochs`` unless a
    step trains fewer, as a tune trial). ``model`` replaces ``config.model`` (a
    check's wider model, a search trial's draw).
    """
    net = network.build_model(splits.input_shape, splits.num_classes, model or config.model)
    return compile_as(network, net, splits, config, epochs=epochs)


def compile_as(
    network: ModuleType, model: keras.Model, splits: Splits, config: Config, *, epochs=None
) -> keras.Model:
    """Compile ``model`` as the project compiles its own: ``network.compile_model`` if it
    defines one, else the recipe's ``compile_model``, the schedule over the planned steps."""
    steps = splits.steps_per_epoch(config.data.batch_size)
    epochs = epochs or config.train.epochs
    custom = getattr(network, "compile_model", None)
    if custom is None:
        return compile_model(
            model,
            config.train,
            steps,
            epochs,
            soft_labels=bool(config.data.mix),
            task=get_task(config.task),
        )
    custom(model, config, steps, epochs)
    check_labels(model, config)
    build_optimizer(model)
    return model


def check_labels(model: keras.Model, config: Config) -> None:
    """With data.mix set, a model compiled for integer labels only stops here (R4.3)."""
    if config.data.mix:
        from recipe_keras.mixing import require_soft_labels

        require_soft_labels(model, config.data.mix)


def build_optimizer(model: keras.Model) -> None:
    """Create the optimizer's variables now, for a built model.

    On TensorFlow, Keras otherwise creates them inside the first traced train
    step, and a ``tf.function`` that creates variables is traced twice.
    """
    if model.built and model.trainable_variables and not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)


def initial_rate(model: keras.Model) -> float:
    """The optimizer's learning rate at step 0 (a schedule's first value), from its config."""
    rate = model.optimizer.get_config()["learning_rate"]
    if isinstance(rate, dict):  # a serialised schedule
        rate = keras.optimizers.schedules.deserialize(rate)(0)
    return float(keras.ops.convert_to_numpy(rate))


def is_adam(model: keras.Model) -> bool:
    return isinstance(model.optimizer, keras.optimizers.Adam | keras.optimizers.AdamW)
