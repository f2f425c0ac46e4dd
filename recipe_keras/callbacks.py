"""The recipe's callbacks for ``model.fit``, built on Keras's own where Keras has one.

``callbacks(config, splits)`` gives them in the order they must run, as Keras runs
a list: the epoch's shuffle order first, then the resume record, the best model
and the backup (a kill while the best model is saved resumes at that epoch), then
TensorBoard, timing, the stop at a non-finite loss, a heartbeat, early stopping.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from collections.abc import Callable
from pathlib import Path

import keras

from recipe_keras.backup import (
    BEST_IN_BACKUP,
    RECORD,
    Backup,
    check_backup_dir,
    has_weights,
    outputs,
    read_json,
    require_room,
    weights_bytes,
)
from recipe_keras.config import Config, TrainConfig
from recipe_keras.data import Splits
from recipe_keras.errors import ConfigError
from recipe_keras.progress import HEARTBEAT_SECONDS, Progress
from recipe_keras.report import atomic_write
from recipe_keras.runs import new_run_name, run_folder

__all__ = [
    "EpochLine",
    "EpochSeconds",
    "EpochTensorBoard",
    "Heartbeat",
    "KeepBest",
    "ResumeRecord",
    "ShuffleByEpoch",
    "StopOnNonFinite",
    "callbacks",
    "heartbeat",
]


class EpochSeconds(keras.callbacks.Callback):
    """Adds each epoch's wall seconds to its logs: History, TensorBoard and train.json keep them."""

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["epoch_seconds"] = time.perf_counter() - self.start


class EpochTensorBoard(keras.callbacks.TensorBoard):
    """Keras's ``TensorBoard``, without its batch-level scalar calls where it writes per
    epoch (``update_freq="epoch"``, the default).

    Those calls record nothing then, yet cost one summary call per metric per step:
    about 3% of a small model's training time on a CPU. Given no logs, Keras's method
    still writes the graph at the first step and runs the profiler when asked.
    """

    def on_train_batch_end(self, batch, logs=None):
        super().on_train_batch_end(batch, None if self.update_freq == "epoch" else logs)


class StopOnNonFinite(keras.callbacks.TerminateOnNaN):
    """Keras's ``TerminateOnNaN``, and a line naming the epoch, the step and the fix.

    A diverged run trains on garbage for every epoch left; this stops it at once
    and ``evaluate`` then reports it as R2.9's fail (the loss did not decrease).
    """

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_batch_end(self, batch, logs=None):
        super().on_batch_end(batch, logs)
        if self.model.stop_training:
            loss = float((logs or {}).get("loss", math.nan))
            print(
                f"R2.9 FAIL: the training loss became {loss} at epoch {self.epoch + 1}, step "
                f"{batch + 1}: training stopped (lower train.learning_rate, or look for "
                "NaN in the inputs: make inspect)",
                flush=True,
            )


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
    which restores the weights. The record also names the run's folder
    (``runs.new_run_name``): ``evaluate`` reads it there, and removes it with the rest
    of the backup folder once the run is written.
    """

    def __init__(self, config: Config):
        super().__init__()
        self.path = Path(config.train.backup_dir) / RECORD
        # The run's folder name: the interrupted run's when this one resumes it.
        self.run = read_json(self.path).get("run") or new_run_name(config.train.reports_dir)
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
        self.earlier: dict[str, list[float]] = {}
        saved = read_json(self.path)
        if saved:
            # Only weights make a backup: a record alone (a run stopped before its
            # first epoch was backed up) names the run's folder, nothing to resume.
            weights = has_weights(self.path.parent)
            changed = _changes(saved.get("trained_with", {}), self.trained_with) if weights else []
            if changed:
                raise ConfigError(
                    f"the backup in {self.path.parent} was trained with another config "
                    f"({'; '.join(changed)}): restore those values to resume it, or delete "
                    "that folder to start over"
                )
            self.earlier = saved.get("history", {})
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


class KeepBest(keras.callbacks.ModelCheckpoint):
    """R6.3: the best epoch's model by ``train.monitor``: Keras's ``ModelCheckpoint``
    (``save_best_only``), written to a temporary file and moved into place.

    It is staged in the backup folder (``backup.BEST_IN_BACKUP``) while the run goes
    on, and ``evaluate`` moves it to ``train.best_model_path`` with the last model and
    the report once the run has succeeded: a run that fails leaves the previous best
    model in place. A resumed run starts from the best of the epochs before the
    interruption (the ``ResumeRecord``'s history), so the kept model is the best of the
    whole run; a fresh run first removes a best model an earlier run staged.
    """

    def __init__(self, backup_dir: str | os.PathLike[str], monitor: str, record: ResumeRecord):
        self.final = Path(backup_dir) / BEST_IN_BACKUP
        self.writing = self.final.with_name(f".{self.final.stem}.writing{self.final.suffix}")
        mode = "min" if monitor.endswith("loss") else "max"
        super().__init__(str(self.writing), monitor=monitor, save_best_only=True, mode=mode)
        self.record = record
        self.resumed = False

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        self.resumed = False
        self.writing.unlink(missing_ok=True)
        if not self.record.earlier:  # a fresh run: an older run's best is not this one's
            self.final.unlink(missing_ok=True)

    def on_epoch_begin(self, epoch, logs=None):
        super().on_epoch_begin(epoch, logs)
        if not self.resumed:  # the record is aligned to the restored epoch by now
            self.resumed = True
            earlier = [v for v in self.record.earlier.get(self.monitor, []) if math.isfinite(v)]
            if earlier and self.final.is_file():
                self.best = min(earlier) if self.mode == "min" else max(earlier)

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None or not math.isfinite(float(value)):
            return  # Keras would keep a first epoch it cannot rank (NaN, or no value)
        require_room(
            self.final.parent, weights_bytes(self.model), f"epoch {epoch + 1}'s best model"
        )
        super().on_epoch_end(epoch, logs)
        if self.writing.is_file():  # this epoch was the best so far: now it is kept
            os.replace(self.writing, self.final)


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
    """The recipe's callbacks for ``model.fit``, in the order they must run.

    Epoch-end backups let an interrupted run resume where it stopped, with the shuffle
    order it would have had (``splits``' epoch, ``ShuffleByEpoch``) and the config it
    was trained with (``ResumeRecord``). ``make tensorboard`` serves the logs; a NaN or
    infinite loss stops training at once; early stopping (R4.11) keeps the best
    epoch's weights when ``train.early_stopping_patience`` is set.
    """
    tc = config.train
    check_backup_dir(tc.backup_dir, outputs(config))
    record = ResumeRecord(config)
    in_order: list[keras.callbacks.Callback] = []
    if splits is not None and splits.epoch is not None:
        in_order.append(ShuffleByEpoch(splits))  # before anything reads the epoch's data
    in_order.append(record)  # aligns the history to the epoch the backup restores
    if tc.best_model_path:  # reads the aligned history; before the backup of its epoch
        in_order.append(KeepBest(tc.backup_dir, tc.monitor, record))
    if tc.early_stopping_patience:  # restores the best weights before they are backed up
        in_order.append(
            keras.callbacks.EarlyStopping(
                monitor=tc.monitor, patience=tc.early_stopping_patience, restore_best_weights=True
            )
        )
    in_order += [
        Backup(tc.backup_dir),
        EpochTensorBoard(str(run_folder(config, record.run) / "tensorboard")),
        EpochSeconds(),
        StopOnNonFinite(),
        *heartbeat(tc),
    ]
    return in_order


def heartbeat(tc: TrainConfig, split: str = "") -> list[keras.callbacks.Callback]:
    """A ``Heartbeat`` where Keras prints one line per epoch (``train.verbose = 2``): a
    line every few seconds within a long epoch or a whole-split evaluation."""
    return [Heartbeat(f"whole {split} split" if split else "")] if tc.verbose == 2 else []


def _metrics(logs: dict | None) -> str:
    return ", ".join(f"{k} {float(v):.4f}" for k, v in (logs or {}).items())


class EpochLine(keras.callbacks.Callback):
    """One line per epoch where Keras prints none (``verbose=0``, as in a tuner's trials)."""

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.perf_counter() - self.start
        print(
            f"    epoch {epoch + 1}/{self.params.get('epochs')}: {_metrics(logs)} ({seconds:.1f} s)"
        )


class Heartbeat(keras.callbacks.Callback):
    """A line at most every ``every`` seconds within an epoch, a validation pass, an
    ``evaluate`` or a ``predict``: batches done (of how many, where known), time in,
    time left in this pass and the running metrics.

    Silent while each pass is shorter than ``every``, so small data prints nothing
    more than Keras's own epoch lines. ``label`` names a lone ``evaluate`` or
    ``predict`` (e.g. "test split"); ``clock`` is injectable for tests.
    """

    def __init__(
        self,
        label: str = "",
        every: float = HEARTBEAT_SECONDS,
        indent: str = "  ",
        clock: Callable[[], float] = time.monotonic,
    ):
        super().__init__()
        self.label, self.every, self.indent, self.clock = label, every, indent, clock
        self.epoch: int | None = None

    def _begin(self, what: str, total: int | None) -> None:
        self.progress = Progress(
            what, total, every=self.every, indent=self.indent, clock=self.clock
        )

    def _batch(self, batch: int, logs: dict | None) -> None:
        self.progress.update(batch + 1, _metrics(logs))

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch
        self._begin(f"epoch {epoch + 1}/{self.params.get('epochs')}", self.params.get("steps"))

    def on_train_batch_end(self, batch, logs=None):
        self._batch(batch, logs)

    def on_epoch_end(self, epoch, logs=None):
        self.epoch = None

    def on_test_begin(self, logs=None):
        # Within fit this is the epoch's validation pass; its length Keras does not pass.
        if self.epoch is None:
            self._begin(self.label or "evaluate", self.params.get("steps"))
        else:
            self._begin(f"epoch {self.epoch + 1} validation", None)

    def on_test_batch_end(self, batch, logs=None):
        self._batch(batch, logs)

    def on_predict_begin(self, logs=None):
        self._begin(self.label or "predict", self.params.get("steps"))

    def on_predict_batch_end(self, batch, logs=None):
        self._batch(batch, None)
