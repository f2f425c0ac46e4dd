"""Train with the recipe's defaults and evaluate on whole splits (R2.2, R2.3, R3.2, R3.4).

Adam at 3e-4 with a constant learning rate, no augmentation, logits with
``from_logits=True``, ``jit_compile="auto"`` (forcing XLA on TF/CPU measured
~4x slower; turning jit off on JAX ~8x slower). The epoch loop is Keras's own
``model.fit``; this module adds only what the recipe asks for around it.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from pathlib import Path

import keras
import numpy as np

from recipe_keras.config import Config, TrainConfig
from recipe_keras.data import Splits, labels_of
from recipe_keras.figures import plot_curves
from recipe_keras.models import flat_layers
from recipe_keras.report import Report, write_report

__all__ = [
    "build_optimizer",
    "compile_model",
    "fit_and_evaluate",
    "learning_rate_at",
    "schedule_warning",
]

RECIPE_IDS = ["R2.1", "R2.2", "R2.3", "R3.1", "R3.2", "R3.4"]


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
    model: keras.Model, cfg: TrainConfig, steps_per_epoch: int = 1, epochs: int | None = None
) -> keras.Model:
    """Compile for integer labels and logits: Adam (AdamW with weight decay), constant by default.

    ``steps_per_epoch`` and ``epochs`` place a configured schedule over the planned run.
    """
    rate = _schedule(cfg, steps_per_epoch, epochs or cfg.epochs)
    optimizer = (
        keras.optimizers.AdamW(learning_rate=rate, weight_decay=cfg.weight_decay)
        if cfg.weight_decay
        else keras.optimizers.Adam(learning_rate=rate)
    )
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
        jit_compile="auto",
    )
    build_optimizer(model)
    return model


def build_optimizer(model: keras.Model) -> None:
    """Create the optimizer's variables now, for a built model.

    On TensorFlow, Keras otherwise creates them inside the first traced train
    step, and a ``tf.function`` that creates variables is traced twice: measured
    0.5-0.7 s more for the first step of every new model on CPU.
    """
    if model.built and model.trainable_variables and not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)


def fit_and_evaluate(
    model: keras.Model,
    splits: Splits,
    cfg: Config,
    callbacks: Sequence[keras.callbacks.Callback] = (),
) -> Report:
    """Fit, evaluate every split in full, save the model and write ``train.json``.

    Validation runs on the whole validation split each epoch and the test split
    is evaluated whole at the end (R2.3). Backups at each epoch's end let an
    interrupted run resume; they are removed once training completes.
    """
    tc = cfg.train
    steps_per_epoch = splits.steps_per_epoch(cfg.data.batch_size)
    warning = schedule_warning(tc, steps_per_epoch, tc.epochs)
    if warning:
        print(f"R3.4 WARN: {warning}")
    if cfg.model.dropout and _has(model, keras.layers.BatchNormalization):
        print(
            "R4.9 WARN: dropout together with BatchNorm: dropout shifts the variance BatchNorm "
            "learned in training (Li et al. 2019); prefer one, or put dropout after the last BN"
        )
    stopping = (
        [
            keras.callbacks.EarlyStopping(
                monitor="val_loss", patience=tc.early_stopping_patience, restore_best_weights=True
            )
        ]
        if tc.early_stopping_patience
        else []
    )
    start = time.perf_counter()
    history = model.fit(
        splits.train,
        validation_data=splits.val,
        epochs=tc.epochs,
        shuffle=False,  # tf.data shuffles, seeded, in the pipeline
        callbacks=[
            keras.callbacks.BackupAndRestore(tc.backup_dir),
            # `make tensorboard` serves these logs on localhost.
            keras.callbacks.TensorBoard(str(Path(tc.reports_dir) / "tensorboard")),
            *stopping,
            *callbacks,
        ],
        verbose=tc.verbose,
    )
    fit_seconds = time.perf_counter() - start
    # Final numbers on whole splits, in inference mode, so train and test compare fairly.
    final = {
        name: model.evaluate(ds, return_dict=True, verbose=0)
        for name, ds in (("train", splits.train), ("val", splits.val), ("test", splits.test))
    }
    model_path = Path(tc.model_path)
    model_path.parent.mkdir(parents=True, exist_ok=True)
    model.save(model_path)
    curves = plot_curves(history.history, final["test"], Path(tc.reports_dir) / "train_curves.png")
    look = _look_inside(model, splits, Path(tc.reports_dir))

    numbers = {
        f"{split}_{metric}": float(value)
        for split, result in final.items()
        for metric, value in result.items()
    }
    epochs_run = len(history.history["loss"])  # fewer than planned after a resume
    test_labels = labels_of(splits.test)
    numbers |= {
        "seed": cfg.seed,
        "epochs": tc.epochs,
        "epochs_run": epochs_run,
        "fit_seconds": round(fit_seconds, 3),
        "wall_seconds": round(time.perf_counter() - start, 3),
        "train_examples_per_second": round(splits.sizes["train"] * epochs_run / fit_seconds, 1),
        "params": int(model.count_params()),
        "chance_accuracy": 1.0 / splits.num_classes,
        # The accuracy of always guessing the commonest test class: on a 9:1 split
        # that is 0.9, where "chance" (1 / C) says 0.5.
        "commonest_class_accuracy": float(np.bincount(test_labels).max() / len(test_labels)),
        "first_layer_noise": look["noise"],
    }
    report = Report(
        step="train",
        recipe_ids=RECIPE_IDS,
        numbers=numbers,
        figures=[curves.name, *look["figures"]],
        # What this run itself establishes; the step-2 checks judge the rest.
        verdicts={
            # Step 2 trains without augmentation; from step 4 on it is R4.2's.
            **({"R4.2": "pass"} if cfg.data.augment else {"R2.2": "pass"}),
            "R2.3": "pass",  # whole splits evaluated above
            "R3.2": "pass" if tc.learning_rate == 3e-4 else "warn",
            "R3.4": "warn" if warning else "pass",
            "R6.3": "pass",  # epoch-end backups, removed on completion
            **(
                {"R4.9": "warn" if _has(model, keras.layers.BatchNormalization) else "pass"}
                if cfg.model.dropout
                else {}
            ),
            **({"R4.10": "pass"} if tc.weight_decay else {}),
            **({"R4.11": "pass"} if stopping else {}),
            "R4.13": "warn" if look["dead_layers"] else "pass",
        },
        backend=keras.backend.backend(),
        details={
            "history": {k: [float(v) for v in vs] for k, vs in history.history.items()},
            "schedule_warning": warning,
            "activations": look["activations"],
            "dead_layers": look["dead_layers"],
            "best_epoch": (stopping[0].best_epoch + 1) if stopping else None,
            "sizes": splits.sizes,
            "class_names": list(splits.class_names),
            "input_shape": list(splits.input_shape),
            "model": model.name,
            "model_path": str(model_path),
            "config": dataclasses.asdict(cfg),
        },
    )
    write_report(report, tc.reports_dir)
    return report


def _has(model: keras.Layer, kind: type) -> bool:
    """Whether any layer, nested models included, is a ``kind``."""
    return any(isinstance(layer, kind) for layer in flat_layers(model))


def _look_inside(model: keras.Model, splits: Splits, out: Path) -> dict:
    """R4.13: the first layer as tiles with a noise score, and activation statistics."""
    from recipe_keras.weights import (
        activation_stats,
        first_layer_tiles,
        noise_score,
        plot_first_layer,
    )

    tiles = first_layer_tiles(model)
    figures = [plot_first_layer(tiles, out / "first_layer.png").name] if tiles is not None else []
    x, _ = next(iter(splits.val))
    stats = activation_stats(model, x)
    return {
        "figures": figures,
        "noise": noise_score(tiles) if tiles is not None else None,
        "activations": stats,
        # A layer whose units are mostly zero for every example has stopped learning.
        "dead_layers": [s["layer"] for s in stats if s["dead_share"] > 0.5],
    }
