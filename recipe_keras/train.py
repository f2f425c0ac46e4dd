"""The training run's pieces: the one build-and-compile path, the callbacks, the evaluation.

A project's train.py reads like a Keras example: ``build_compiled`` (model.py's
network with the recipe's compile, or the project's own), ``init_from_priors``
(R2.5), ``model.fit`` with ``callbacks(config)``, then ``evaluate`` (whole
splits, baselines, figures, train.json). Every other step (check, tune, ladder,
learning curve) builds through ``build_compiled`` too, so they all judge the
optimizer, loss and schedule ``make train`` uses.

The recipe's compile: Adam at 3e-4 with a constant learning rate (R3.2, R3.4),
logits with ``from_logits=True``, ``jit_compile="auto"`` (forcing XLA on a CPU
is slower on TensorFlow; turning jit off on JAX much slower).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import keras
import numpy as np

from recipe_keras._backend import devices_in_use, undistributed
from recipe_keras.backup import (
    BEST_IN_BACKUP,
    Backup,
    check_backup_dir,
    outputs,
    remove_backup,
    require_room,
    weights_bytes,
)
from recipe_keras.checks.result import CheckResult
from recipe_keras.config import Config, ModelConfig, TrainConfig, recipe_learning_rate
from recipe_keras.data import Splits, labels_of
from recipe_keras.figures import plot_curves
from recipe_keras.models import flat_layers
from recipe_keras.progress import Heartbeat, waiting
from recipe_keras.report import Report, atomic_write, write_report

__all__ = [
    "EpochSeconds",
    "ResumeRecord",
    "ShuffleByEpoch",
    "StopOnNonFinite",
    "build_compiled",
    "build_optimizer",
    "callbacks",
    "compile_as",
    "compile_model",
    "evaluate",
    "fit_and_evaluate",
    "heartbeat",
    "init_from_priors",
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
) -> keras.Model:
    """The recipe's compile: integer labels and logits, Adam (AdamW with weight decay).

    ``steps_per_epoch`` and ``epochs`` place a configured schedule over the planned
    run; ``build_compiled`` passes the project's, and every step compiles through it.
    ``soft_labels``: training batches are mixed (R4.3, ``data.mix``), so the loss and
    accuracy take soft labels as well as integer ones.
    """
    rate = _schedule(cfg, steps_per_epoch, epochs or cfg.epochs)
    optimizer = (
        keras.optimizers.AdamW(learning_rate=rate, weight_decay=cfg.weight_decay)
        if cfg.weight_decay
        else keras.optimizers.Adam(learning_rate=rate)
    )
    if soft_labels:
        from recipe_keras.mixing import MixedLabelAccuracy, MixedLabelCrossentropy

        loss, accuracy = MixedLabelCrossentropy(), MixedLabelAccuracy(name="accuracy")
    else:
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        accuracy = keras.metrics.SparseCategoricalAccuracy(name="accuracy")
    model.compile(optimizer=optimizer, loss=loss, metrics=[accuracy], jit_compile="auto")
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
        return compile_model(model, config.train, steps, epochs, soft_labels=bool(config.data.mix))
    custom(model, config, steps, epochs)
    _check_labels(model, config)
    build_optimizer(model)
    return model


def _check_labels(model: keras.Model, config: Config) -> None:
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


def init_from_priors(model: keras.Model, splits: Splits) -> CheckResult:
    """R2.5: the final layer's bias set to the log class priors, with the loss before and after.

    The model then starts by predicting the class frequencies, so its first steps
    go to learning rather than to discovering an imbalance. A model whose final
    layer has no bias of the classes' shape is left as it is (verdict warn).
    """
    from recipe_keras.checks.init import check_bias_init
    from recipe_keras.checks.subject import first_batches

    labels = labels_of(splits.train)
    return check_bias_init(model, first_batches(splits.train, 4), labels, splits.num_classes)


class EpochSeconds(keras.callbacks.Callback):
    """Adds each epoch's wall seconds to its logs: History, TensorBoard and train.json keep them."""

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["epoch_seconds"] = time.perf_counter() - self.start


class StopOnNonFinite(keras.callbacks.Callback):
    """Stops training at the first step whose loss is NaN or infinite, naming where.

    A diverged run trains on garbage for every epoch left; this stops it at once
    and ``evaluate`` then reports it as R2.9's fail (the loss did not decrease).
    """

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = float((logs or {}).get("loss", 0.0))
        if not math.isfinite(loss):
            print(
                f"R2.9 FAIL: the training loss became {loss} at epoch {self.epoch + 1}, step "
                f"{batch + 1}: training stopped (lower train.learning_rate, or look for "
                "NaN in the inputs: make inspect)",
                flush=True,
            )
            self.model.stop_training = True


class ShuffleByEpoch(keras.callbacks.Callback):
    """Sets the training pipeline's epoch before each pass, so its order is that epoch's.

    The library's pipeline shuffles as a function of the seed and the epoch (see
    ``data.make_pipeline``): an interrupted run resumed in a new process continues
    with the order it would have seen.
    """

    def __init__(self, splits: Splits):
        super().__init__()
        self.epoch = splits.epoch

    def on_epoch_begin(self, epoch, logs=None):
        if self.epoch is not None:
            self.epoch.assign(epoch)

    def on_train_end(self, logs=None):
        if self.epoch is not None:
            self.epoch.assign(0)  # what the steps after training read is epoch 0's order


# What a backup was trained with: a resumed run must be the run it continues.
_NOT_TRAINING = ("verbose", "reports_dir", "model_path", "backup_dir", "best_model_path")


class ResumeRecord(keras.callbacks.Callback):
    """Keeps, beside the epoch backups, the config they were trained with and their history.

    On a resume it refuses a backup made with another config (one line naming what
    changed), and at the end it puts the earlier epochs' history before this
    process's, so train.json holds the whole run. Goes before ``BackupAndRestore``,
    which restores the weights; like the backups, it is removed when training ends.
    """

    def __init__(self, config: Config):
        super().__init__()
        self.path = Path(config.train.backup_dir) / "recipe_run.json"
        # The run's folder name: the interrupted run's when this one resumes it.
        saved = _read_json(self.path)
        self.run = saved.get("run") or new_run_name(config.train.reports_dir)
        _RUNS[str(Path(config.train.backup_dir))] = self.run
        train = {
            k: v for k, v in dataclasses.asdict(config.train).items() if k not in _NOT_TRAINING
        }
        self.trained_with = {
            "seed": config.seed,
            "data": dataclasses.asdict(config.data),
            "model": dataclasses.asdict(config.model),
            "train": train,
        }

    def on_train_begin(self, logs=None):
        from recipe_keras.config import ConfigError

        self.earlier: dict[str, list[float]] = {}
        if self.path.is_file():
            saved = json.loads(self.path.read_text())
            changed = _changes(saved["trained_with"], self.trained_with)
            if changed:
                raise ConfigError(
                    f"the backup in {self.path.parent} was trained with another config "
                    f"({'; '.join(changed)}): restore those values to resume it, or delete "
                    "that folder to start over"
                )
            self.earlier = saved["history"]
        self.history = {k: list(v) for k, v in self.earlier.items()}
        self._aligned = False

    def on_epoch_begin(self, epoch, logs=None):
        # The first epoch is the one the backup restored: a kill while the backup was
        # written leaves the record an epoch ahead of the copy Keras falls back to.
        if not self._aligned:
            self._aligned = True
            self.earlier = {k: v[:epoch] for k, v in self.earlier.items()}
            self.history = {k: list(v) for k, v in self.earlier.items()}
            self._write()

    def on_epoch_end(self, epoch, logs=None):
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(float(value))
        self._write()

    def on_train_end(self, logs=None):
        history = self.model.history  # Keras's History, which fit returns
        for key, values in self.earlier.items():
            history.history[key] = values + list(history.history.get(key, []))

    def _write(self) -> None:
        record = {"trained_with": self.trained_with, "history": self.history, "run": self.run}
        text = json.dumps(record, allow_nan=True)
        atomic_write(self.path, lambda tmp: tmp.write_text(text))


class KeepBest(keras.callbacks.Callback):
    """R6.3: the best epoch's model by ``train.monitor``, saved atomically.

    It is staged in the backup folder (``backup.BEST_IN_BACKUP``) while the run goes
    on, and ``evaluate`` moves it to ``train.best_model_path`` with the last model and
    the report once the run has succeeded: a run that fails leaves the previous best
    model in place. A resumed run starts from the best of the epochs before the
    interruption (the ``ResumeRecord``'s history), so the kept model is the best of the
    whole run; a fresh run first removes a best model an earlier run staged. Goes after
    the record and before the backup, so a kill while it saves resumes at that epoch.
    """

    def __init__(self, backup_dir: str | Path, monitor: str, record: ResumeRecord):
        super().__init__()
        self.path, self.monitor, self.record = Path(backup_dir) / BEST_IN_BACKUP, monitor, record
        self.higher = not monitor.endswith("loss")

    def on_train_begin(self, logs=None):
        self.best: float | None = None
        if not self.record.earlier:  # a fresh run: an older run's best is not this one's
            self.path.unlink(missing_ok=True)

    def on_epoch_begin(self, epoch, logs=None):
        if self.best is None:  # the record is aligned to the restored epoch by now
            earlier = [v for v in self.record.earlier.get(self.monitor, []) if math.isfinite(v)]
            if earlier and self.path.is_file():
                self.best = max(earlier) if self.higher else min(earlier)

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None or not math.isfinite(float(value)):
            return
        value = float(value)
        if self.best is None or (value > self.best if self.higher else value < self.best):
            self.best = value
            what = f"epoch {epoch + 1}'s best model"
            require_room(self.path.parent, weights_bytes(self.model), what)
            atomic_write(self.path, self.model.save)


# The run name each backup folder's training chose in this process, for ``evaluate``.
_RUNS: dict[str, str] = {}


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def new_run_name(reports_dir: str | Path) -> str:
    """A fresh folder name under ``<reports_dir>/runs``: the start time, made unique."""
    runs = Path(reports_dir) / "runs"
    stem = time.strftime("%Y%m%d-%H%M%S")
    name, n = stem, 1
    while (runs / name).exists() or name in _RUNS.values():
        n += 1
        name = f"{stem}-{n}"
    return name


def run_folder(config: Config, run: str) -> Path:
    """Where one training run keeps its config, report, figures, model and TensorBoard logs."""
    return Path(config.train.reports_dir) / "runs" / run


def _commit(model: keras.Model, report: Report, config: Config, folder: Path, saved: bool) -> None:
    """Write the run's model, best model, figures and train.json, now that it has succeeded.

    Until here they sat in the run's own folder (figures) and the backup folder (the
    best model), so a run that fails before its end leaves the previous ones, which
    still describe each other. Each file is replaced atomically; the run's folder also
    keeps its config, report and models, which later runs leave alone (the models
    hard-linked where the disk allows: no second copy). ``saved``: the weights are
    worth saving (a diverged run's are not).
    """
    tc = config.train
    reports = Path(tc.reports_dir)
    kept: list[Path] = []
    if saved:
        kept.append(atomic_write(tc.model_path, model.save))
    if tc.best_model_path:
        staged, best = Path(tc.backup_dir) / BEST_IN_BACKUP, Path(tc.best_model_path)
        if staged.is_file():
            best.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.replace(staged, best)
            except OSError:  # another disk
                atomic_write(best, lambda tmp: shutil.copyfile(staged, tmp))
            kept.append(best)
        else:  # nothing finite to rank: an older run's best is not this one's
            best.unlink(missing_ok=True)
    for figure in report.figures:
        if (folder / figure).is_file():
            atomic_write(reports / figure, lambda tmp, f=figure: shutil.copyfile(folder / f, tmp))
    write_report(report, reports)
    text = json.dumps(dataclasses.asdict(config), indent=2) + "\n"
    atomic_write(folder / "config.json", lambda tmp: tmp.write_text(text))
    for source in kept:
        link = folder / source.name
        link.unlink(missing_ok=True)
        try:
            os.link(source, link)
        except OSError:  # another disk, or links not allowed
            atomic_write(link, lambda tmp, f=source: shutil.copyfile(f, tmp))
    write_report(report, folder)
    remove_backup(tc.backup_dir)


def _changes(before: dict, now: dict, prefix: str = "") -> list[str]:
    """``section.key was -> is`` for every value that differs between two nested dicts."""
    found = []
    for key in sorted(set(before) | set(now)):
        a, b = before.get(key), now.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            found += _changes(a, b, f"{prefix}{key}.")
        elif a != b:
            found.append(f"{prefix}{key} was {a!r}, is {b!r}")
    return found


def callbacks(config: Config, splits: Splits | None = None) -> list[keras.callbacks.Callback]:
    """The recipe's callbacks for ``model.fit``: resume, TensorBoard, timing, divergence,
    early stopping.

    Epoch-end backups let an interrupted run resume where it stopped, with the shuffle
    order it would have had (``splits``' epoch, ``ShuffleByEpoch``) and the config it
    was trained with (``ResumeRecord``); they are removed once training completes.
    ``make tensorboard`` serves the logs; a NaN or infinite loss stops training at
    once; early stopping (R4.11) keeps the best epoch's weights when
    ``train.early_stopping_patience`` is set.
    """
    tc = config.train
    check_backup_dir(tc.backup_dir, outputs(config))
    record = ResumeRecord(config)
    found = [
        *([ShuffleByEpoch(splits)] if splits is not None and splits.epoch is not None else []),
        record,
        # Before the backup: a kill while the best model is saved resumes at that epoch.
        *([KeepBest(tc.backup_dir, tc.monitor, record)] if tc.best_model_path else []),
        Backup(tc.backup_dir),
        keras.callbacks.TensorBoard(str(run_folder(config, record.run) / "tensorboard")),
        EpochSeconds(),
        StopOnNonFinite(),
        *heartbeat(tc),
    ]

    if tc.early_stopping_patience:
        found.append(
            keras.callbacks.EarlyStopping(
                monitor=tc.monitor, patience=tc.early_stopping_patience, restore_best_weights=True
            )
        )
    return found


def heartbeat(tc: TrainConfig, split: str = "") -> list[keras.callbacks.Callback]:
    """A ``Heartbeat`` where Keras prints one line per epoch (``train.verbose = 2``): a
    line every few seconds within a long epoch or a whole-split evaluation."""
    return [Heartbeat(f"whole {split} split" if split else "")] if tc.verbose == 2 else []


def evaluate(
    model: keras.Model,
    history: keras.callbacks.History,
    splits: Splits,
    config: Config,
    init: CheckResult | None = None,
) -> Report:
    """Evaluate every split in full, set the model beside its baselines, save, write train.json.

    The final numbers come from whole splits in inference mode (R2.3), so train and
    test compare fairly. The trained model is set beside the commonest class and a
    linear model fitted to convergence (R2.7): a network that does not beat a
    linear model by ``baselines.LINEAR_MARGIN`` is reported as a warning.
    ``init`` is ``init_from_priors``'s result (R2.5), if the run applied it.
    """
    devices = devices_in_use()
    try:
        with undistributed():  # JAX: every example of each split, not cut to split evenly
            return _evaluate(model, history, splits, config, init, devices)
    except BaseException:
        tc = config.train
        kept = [p for p in (tc.model_path, tc.best_model_path) if p and Path(p).is_file()]
        kept += [str(p) for p in [Path(tc.reports_dir) / "train.json"] if p.is_file()]
        if kept:
            print(
                f"the run stopped before its end: {', '.join(kept)} are still the previous run's",
                file=sys.stderr,
                flush=True,
            )
        raise


def _evaluate(
    model: keras.Model,
    history: keras.callbacks.History,
    splits: Splits,
    config: Config,
    init: CheckResult | None,
    devices: list[str],
) -> Report:
    from recipe_keras.baselines import LINEAR_MARGIN, fit_linear

    tc = config.train
    steps_per_epoch = splits.steps_per_epoch(config.data.batch_size)
    warning = schedule_warning(tc, steps_per_epoch, tc.epochs)
    if warning:
        print(f"R3.4 WARN: {warning}")
    batchnorm = _has(model, keras.layers.BatchNormalization)
    if config.model.dropout and batchnorm:
        print(
            "R4.9 WARN: dropout together with BatchNorm: dropout shifts the variance BatchNorm "
            "learned in training (Li et al. 2019); prefer one, or put dropout after the last BN"
        )
    # The run's own folder: the name its callbacks chose (resumed runs keep theirs).
    # Figures go there first and reach the reports folder with train.json (``_commit``).
    run = _RUNS.pop(str(Path(tc.backup_dir)), None) or new_run_name(tc.reports_dir)
    folder = run_folder(config, run)
    # Wall seconds are no training history: two seeded runs have the same history.
    curves_history = {k: v for k, v in history.history.items() if k != "epoch_seconds"}
    epoch_seconds = [float(s) for s in history.history.get("epoch_seconds", [])]
    final = {
        name: model.evaluate(ds, return_dict=True, verbose=0, callbacks=heartbeat(tc, name))
        for name, ds in (("train", splits.train), ("val", splits.val), ("test", splits.test))
    }
    losses = curves_history.get("loss", [])
    diverged = next((i + 1 for i, v in enumerate(losses) if not math.isfinite(v)), None)
    curves = plot_curves(curves_history, final["test"], folder / "train_curves.png")
    look = _look_inside(model, splits, folder)
    if tc.verbose:  # scikit-learn's fit prints nothing, and takes seconds on large data
        print("R2.7: fitting a linear model to convergence on the training split...", flush=True)
    with waiting("R2.7 linear model") if tc.verbose else contextlib.nullcontext():
        linear = fit_linear(splits, config.seed)
    best = _best_versus_last(history, splits, config, final["test"])

    numbers = {
        f"{split}_{metric}": float(value)
        for split, result in final.items()
        for metric, value in result.items()
    }
    epochs_run = len(history.history["loss"])  # the whole run's, resumed or not
    # The epoch this process started from: after 0 when it ran from the start.
    resumed_from = history.epoch[0] + 1 if history.epoch and history.epoch[0] > 0 else None
    fit_seconds = sum(epoch_seconds)
    test_labels = labels_of(splits.test)
    commonest = float(np.bincount(test_labels).max() / len(test_labels))
    beats_linear = numbers["test_accuracy"] - linear["test_accuracy"]
    numbers |= {
        # R6.3: the epoch the kept best model comes from (None: nothing finite to rank).
        "best_epoch": best["epoch"],
        "seed": config.seed,
        "epochs": tc.epochs,
        "epochs_run": epochs_run,
        "resumed_from_epoch": resumed_from,
        "fit_seconds": round(fit_seconds, 3),
        "train_examples_per_second": round(
            splits.sizes["train"] * epochs_run / max(fit_seconds, 1e-9), 1
        ),
        "params": int(model.count_params()),
        "chance_accuracy": 1.0 / splits.num_classes,
        # Always guessing the commonest test class: on a 9:1 split that is 0.9, where
        # "chance" (1 / C) says 0.5.
        "commonest_class_accuracy": commonest,
        "linear_test_accuracy": linear["test_accuracy"],
        "linear_test_loss": linear["test_loss"],
        "beats_linear_by": beats_linear,
        "first_layer_noise": look["noise"],
        "learning_rate": _initial_rate(model),
    }
    if init is not None:  # R2.5 applied by the run: the loss at init before and after
        numbers["init_loss_before"] = init.numbers.get("loss_before")
        numbers["init_loss_after"] = init.numbers.get("loss_after")
    recipe_rate = recipe_learning_rate(config.model.name)
    verdicts = {
        # Artefacts and settings for a person to judge: nothing measured against them.
        **({"R4.2": "info"} if config.data.augment else {}),
        **({"R4.3": "info"} if config.data.mix or "randaugment" in config.data.augment else {}),
        **({} if config.data.augment or config.data.mix else {"R2.2": "info"}),
        "R2.3": "info",
        "R2.7": "pass" if beats_linear >= LINEAR_MARGIN else "warn",
        "R3.2": "pass"
        if _is_adam(model) and math.isclose(numbers["learning_rate"], recipe_rate, rel_tol=1e-6)
        else "warn",
        "R3.4": "warn" if warning else "pass",
        "R6.3": "info",
        **({"R4.9": "warn" if batchnorm else "pass"} if config.model.dropout else {}),
        **({"R4.10": "info"} if tc.weight_decay else {}),
        **({"R4.11": "info"} if tc.early_stopping_patience else {}),
        "R4.13": "warn" if look["dead_layers"] else "pass",
        **({"R2.9": "fail"} if diverged else {}),
        **({"R2.5": init.verdict} if init is not None else {}),
    }
    advice = {
        "R2.7": ""
        if verdicts["R2.7"] == "pass"
        else f"a linear model fitted to convergence scores {linear['test_accuracy']:.3f} on the "
        f"test split, the trained model {numbers['test_accuracy']:.3f} (not {LINEAR_MARGIN} "
        "better): the network adds nothing yet; train longer, or try a bigger model",
        "R2.9": f"the training loss became {losses[diverged - 1]} in epoch {diverged}: "
        "training stopped there and the model was not saved; lower train.learning_rate, "
        "or look for NaN in the inputs (make inspect)"
        if diverged
        else "",
        "R3.2": ""
        if verdicts["R3.2"] == "pass"
        else f"the recipe starts a {config.model.name} with Adam at {recipe_rate:g}; this run "
        f"starts at {numbers['learning_rate']:g}: leave the safe rate only once the checks pass",
    }
    for rid, text in advice.items():
        if text and rid != "R2.9":  # StopOnNonFinite said it as it happened
            print(f"{rid} {verdicts[rid].upper()}: {text}")
    report = Report(
        step="train",
        recipe_ids=sorted(verdicts, key=lambda i: tuple(map(int, i[1:].split(".")))),
        numbers=numbers,
        figures=[curves.name, *look["figures"]],
        verdicts=verdicts,
        backend=keras.backend.backend(),
        details={
            "history": {k: [float(v) for v in vs] for k, vs in curves_history.items()},
            "epoch_seconds": epoch_seconds,
            "baselines": {
                "commonest_class": {"test_accuracy": commonest},
                "linear_converged": linear,
            },
            "advice": {k: v for k, v in advice.items() if v},
            "init": None if init is None else dataclasses.asdict(init),
            "schedule_warning": warning,
            "activations": look["activations"],
            "dead_layers": look["dead_layers"],
            "best_epoch": best["epoch"],
            "best": best,
            "sizes": splits.sizes,
            "class_names": list(splits.class_names),
            "input_shape": list(splits.input_shape),
            "model": model.name,
            "model_path": str(tc.model_path),
            "config": dataclasses.asdict(config),
            "run": run,
            # Where it trained: several devices under train.distribution = "data_parallel".
            "devices": devices,
        },
    )
    _commit(model, report, config, folder, saved=not diverged)
    return report


def fit_and_evaluate(
    model: keras.Model,
    splits: Splits,
    config: Config,
    extra: Sequence[keras.callbacks.Callback] = (),
) -> Report:
    """A compiled model's whole run in one call (a notebook's, a test's): ``fit`` with
    the recipe's ``callbacks`` (and ``extra``), then ``evaluate``. A project's train.py
    writes these steps out, so they stay in sight and open to edits."""
    _check_labels(model, config)
    history = model.fit(
        splits.fit_train,
        validation_data=splits.fit_val,
        epochs=config.train.epochs,
        shuffle=False,
        callbacks=[*callbacks(config, splits), *extra],
        verbose=config.train.verbose,
    )
    return evaluate(model, history, splits, config)


def _initial_rate(model: keras.Model) -> float:
    """The optimizer's learning rate at step 0 (a schedule's first value), from its config."""
    rate = model.optimizer.get_config()["learning_rate"]
    if isinstance(rate, dict):  # a serialised schedule
        rate = keras.optimizers.schedules.deserialize(rate)(0)
    return float(keras.ops.convert_to_numpy(rate))


def _is_adam(model: keras.Model) -> bool:
    return isinstance(model.optimizer, keras.optimizers.Adam | keras.optimizers.AdamW)


def _best_epoch(history: keras.callbacks.History, monitor: str = "val_loss") -> int | None:
    """The epoch (from 1) with the best ``monitor``: what early stopping restores and
    ``KeepBest`` keeps."""
    values = [v if math.isfinite(v) else math.nan for v in history.history.get(monitor, [])]
    if not values or all(math.isnan(v) for v in values):
        return None
    pick = np.nanargmax if not monitor.endswith("loss") else np.nanargmin
    return int(pick(values)) + 1


def _best_versus_last(
    history: keras.callbacks.History, splits: Splits, config: Config, last_test: dict
) -> dict:
    """R6.3: the best epoch, and the kept best model beside the last one on the whole
    test split."""
    tc = config.train
    epoch = _best_epoch(history, tc.monitor)
    found = {"monitor": tc.monitor, "epoch": epoch, "epochs_run": len(history.epoch)}
    found["value"] = history.history[tc.monitor][epoch - 1] if epoch else None
    staged = Path(tc.backup_dir) / BEST_IN_BACKUP
    if not tc.best_model_path or not staged.is_file():
        return found | {"path": None}
    best = keras.models.load_model(staged)
    test = best.evaluate(splits.test, return_dict=True, verbose=0, callbacks=heartbeat(tc, "test"))
    return found | {
        "path": tc.best_model_path,
        "best_test_loss": float(test["loss"]),
        "best_test_accuracy": float(test.get("accuracy", math.nan)),
        "last_test_loss": float(last_test["loss"]),
        "last_test_accuracy": float(last_test.get("accuracy", math.nan)),
    }


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
