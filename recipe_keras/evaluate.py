"""The end of a training run: measure it, judge it, write it (``make train``'s train.json).

``evaluate`` measures the trained model on whole splits in inference mode (R2.3)
and sets it beside its task's dumb baselines (R2.7), judges what was measured
against the recipe's expectations, then writes the model, the best model, the
figures and train.json together (``runs.commit``): a run that fails before the end
leaves the previous run's files as they were.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np

from recipe_keras._backend import devices_in_use, undistributed
from recipe_keras.backup import BEST_IN_BACKUP
from recipe_keras.baselines import LINEAR_MARGIN
from recipe_keras.callbacks import callbacks, heartbeat
from recipe_keras.compile import check_labels, initial_rate, is_adam, schedule_warning
from recipe_keras.config import Config, recipe_learning_rate
from recipe_keras.data import Splits
from recipe_keras.figures import plot_curves
from recipe_keras.models import flat_layers
from recipe_keras.progress import waiting
from recipe_keras.report import Report
from recipe_keras.runs import commit, run_folder, run_of
from recipe_keras.task import get_task
from recipe_keras.verdicts import CheckResult, Verdict

__all__ = ["Measured", "evaluate", "fit_and_evaluate", "judge", "measure"]


@dataclass
class Measured:
    """What a finished run measured, before any verdict."""

    final: dict[str, dict[str, float]]  # whole-split metrics: {"test": {"loss": ...}}
    history: dict[str, list[float]]  # per-epoch metrics, the whole run's
    epoch_seconds: list[float]
    diverged: int | None  # the first epoch whose loss was not finite
    baselines: dict[str, Any]  # the task's (R2.7): {"linear_converged": {...}, ...}
    # The dumbest answer's test scores: the commonest class's, the mean target's.
    null: dict[str, float]
    best: dict[str, Any]  # R6.3: the best epoch, and its model beside the last
    outcome: dict[str, Any]  # the task's numbers on the test predictions (a binary AUC)
    look: dict[str, Any]  # R4.13: first-layer tiles, activation statistics
    figures: list[str]
    schedule_warning: str
    batchnorm: bool
    learning_rate: float
    adam: bool
    run: str
    folder: Path
    devices: list[str]


# How the advice names a task's baselines other than the linear model.
BASELINE_NAMES = {
    "trees": "gradient-boosted trees (scikit-learn's HistGradientBoosting)",
    "length_only": "a logistic regression on the texts' lengths alone (a shortcut)",
}


def evaluate(
    model: keras.Model,
    history: keras.callbacks.History,
    splits: Splits,
    config: Config,
    init: CheckResult | None = None,
) -> Report:
    """Measure the trained model on whole splits, judge it, write the run (train.json).

    The final numbers come from whole splits in inference mode (R2.3), so train and
    test compare fairly. The trained model is set beside the commonest class and its
    task's converged linear model (R2.7): a network that does not beat it by
    ``baselines.LINEAR_MARGIN`` is reported as a warning. ``init`` is
    ``init_from_priors``'s result (R2.5), if the run applied it.
    """
    devices = devices_in_use()  # where it trained: several under data_parallel
    try:
        with undistributed():  # JAX: every example of each split, not cut to split evenly
            measured = measure(model, history, splits, config, devices)
        numbers, verdicts, advice = judge(measured, model, splits, config, init)
        report = _report(measured, numbers, verdicts, advice, model, splits, config, init)
        commit(model, report, config, measured.folder, saved=not measured.diverged)
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
    return report


def measure(
    model: keras.Model,
    history: keras.callbacks.History,
    splits: Splits,
    config: Config,
    devices: list[str] | None = None,
) -> Measured:
    """Every number and figure of the run; nothing written beside the run's own folder.
    ``devices``: where it trained (``_backend.devices_in_use`` while it trained)."""
    tc = config.train
    task = get_task(config.task)
    devices = devices if devices is not None else devices_in_use()
    warning = schedule_warning(tc, splits.steps_per_epoch(config.data.batch_size), tc.epochs)
    # The run's own folder: the name its callbacks chose (resumed runs keep theirs).
    # Figures go there first and reach the reports folder with train.json (runs.commit).
    run = run_of(config)
    folder = run_folder(config, run)
    # Wall seconds are no training history: two seeded runs have the same history.
    curves = {k: v for k, v in history.history.items() if k != "epoch_seconds"}
    final = {
        name: model.evaluate(ds, return_dict=True, verbose=0, callbacks=heartbeat(tc, name))
        for name, ds in (("train", splits.train), ("val", splits.val), ("test", splits.test))
    }
    losses = curves.get("loss", [])
    figure = plot_curves(curves, final["test"], folder / "train_curves.png", task.score.metric)
    look = task.look_inside(model, splits, folder)
    outcome = task.outcome(model, splits, folder)
    if tc.verbose:  # scikit-learn's fit prints nothing, and takes seconds on large data
        print("R2.7: fitting the task's baselines on the training split...", flush=True)
    with waiting("R2.7 baselines") if tc.verbose else contextlib.nullcontext():
        baselines = task.baselines(splits, config.seed)
    return Measured(
        final=final,
        history=curves,
        epoch_seconds=[float(s) for s in history.history.get("epoch_seconds", [])],
        diverged=next((i + 1 for i, v in enumerate(losses) if not math.isfinite(v)), None),
        baselines=baselines,
        null=task.null_baseline(splits),
        best=_best_versus_last(history, splits, config, final["test"], task.score.metric),
        look=look,
        figures=[figure.name, *look["figures"], *outcome["figures"]],
        outcome=outcome["numbers"],
        schedule_warning=warning,
        batchnorm=_has(model, keras.layers.BatchNormalization),
        learning_rate=initial_rate(model),
        adam=is_adam(model),
        run=run,
        folder=folder,
        devices=devices,
    )


def judge(
    measured: Measured,
    model: keras.Model,
    splits: Splits,
    config: Config,
    init: CheckResult | None = None,
) -> tuple[dict[str, Any], dict[str, Verdict], dict[str, str]]:
    """(numbers, a verdict per recipe id, advice per id): the measurements against the
    recipe's expectations. Prints each warning's advice."""
    tc, m = config.train, measured
    task = get_task(config.task)
    score = task.score
    metric = f"test_{score.metric}"
    numbers = {
        f"{split}_{name}": float(value)
        for split, result in m.final.items()
        for name, value in result.items()
    }
    linear = m.baselines["linear_converged"]
    epochs_run = len(m.history.get("loss", []))  # the whole run's, resumed or not
    fit_seconds = sum(m.epoch_seconds)
    beats_linear = score.gain(numbers[metric], linear[metric])
    # Other baselines of the task (gradient-boosted trees on tables): the network must
    # not score under any of them.
    others = {k: v for k, v in m.baselines.items() if k != "linear_converged"}
    beaten_by = score.best({k: v[metric] for k, v in others.items()})
    under_other = beaten_by is not None and score.under(numbers[metric], others[beaten_by][metric])
    numbers |= {
        # R6.3: the epoch the kept best model comes from (None: nothing finite to rank).
        "best_epoch": m.best["epoch"],
        "seed": config.seed,
        "epochs": tc.epochs,
        "epochs_run": epochs_run,
        "resumed_from_epoch": m.best["resumed_from_epoch"],
        "fit_seconds": round(fit_seconds, 3),
        "train_examples_per_second": round(
            splits.sizes["train"] * epochs_run / max(fit_seconds, 1e-9), 1
        ),
        "params": int(model.count_params()),
        **({"chance_accuracy": 1.0 / splits.num_classes} if task.classifies else {}),
        # The dumbest answer: always the commonest test class (on a 9:1 split that is
        # 0.9, where "chance", 1 / C, says 0.5), or always the training mean.
        **{f"{task.null_name}_{k.removeprefix('test_')}": v for k, v in m.null.items()},
        **{f"linear_{k}": v for k, v in linear.items() if k.startswith("test_")},
        # Accuracy points, or the share of the linear model's error the network removes.
        "beats_linear_by": beats_linear,
        **{f"{k}_{n}": x for k, v in others.items() for n, x in v.items() if n.startswith("test_")},
        **m.outcome,
        "first_layer_noise": m.look["noise"],
        "learning_rate": m.learning_rate,
    }
    if init is not None:  # R2.5 applied by the run: the loss at init before and after
        numbers["init_loss_before"] = init.numbers.get("loss_before")
        numbers["init_loss_after"] = init.numbers.get("loss_after")
    recipe_rate = recipe_learning_rate(config.model.name)
    safe_rate = m.adam and math.isclose(m.learning_rate, recipe_rate, rel_tol=1e-6)
    info, passes, warns = Verdict.INFO, Verdict.PASS, Verdict.WARN
    augment, mix = config.data.augment, config.data.mix
    verdicts = {
        # Artefacts and settings for a person to judge: nothing measured against them.
        **({"R4.2": info} if augment else {}),
        **({"R4.3": info} if mix or "randaugment" in augment else {}),
        **({} if augment or mix else {"R2.2": info}),
        "R2.3": info,
        "R2.7": passes if beats_linear >= LINEAR_MARGIN and not under_other else warns,
        "R3.2": passes if safe_rate else warns,
        "R3.4": warns if m.schedule_warning else passes,
        "R6.3": info,
        **({"R4.9": warns if m.batchnorm else passes} if config.model.dropout else {}),
        **({"R4.10": info} if tc.weight_decay else {}),
        **({"R4.11": info} if tc.early_stopping_patience else {}),
        "R4.13": warns if m.look["dead_layers"] else passes,
        **({"R2.9": Verdict.FAIL} if m.diverged else {}),
        **({"R2.5": init.verdict} if init is not None else {}),
    }
    advice = {
        "R2.7": "" if verdicts["R2.7"] == passes else _baseline_advice(m, numbers, task),
        "R2.9": f"the training loss became {m.history['loss'][m.diverged - 1]} in epoch "
        f"{m.diverged}: training stopped there and the model was not saved; lower "
        "train.learning_rate, or look for NaN in the inputs (make inspect)"
        if m.diverged
        else "",
        "R3.2": ""
        if safe_rate
        else f"the recipe starts a {config.model.name} with Adam at {recipe_rate:g}; this run "
        f"starts at {m.learning_rate:g}: leave the safe rate only once the checks pass",
        "R3.4": m.schedule_warning,
        "R4.9": "dropout together with BatchNorm: dropout shifts the variance BatchNorm "
        "learned in training (Li et al. 2019); prefer one, or put dropout after the last BN"
        if config.model.dropout and m.batchnorm
        else "",
    }
    for rid, text in advice.items():
        if text and rid != "R2.9":  # StopOnNonFinite said it as it happened
            print(f"{rid} {verdicts[rid].upper()}: {text}")
    return numbers, verdicts, {k: v for k, v in advice.items() if v}


def _baseline_advice(m: Measured, numbers: dict[str, Any], task) -> str:
    """R2.7's warning: which baseline the network does not beat, by how much."""
    score, metric = task.score, f"test_{task.score.metric}"
    others = {k: v for k, v in m.baselines.items() if k != "linear_converged"}
    beaten_by = score.best({k: v[metric] for k, v in others.items()})
    ours = f"the trained model {numbers[metric]:.3f}"
    if beaten_by is not None and score.under(numbers[metric], others[beaten_by][metric]):
        return (
            f"{BASELINE_NAMES.get(beaten_by, beaten_by)} score {score.label} "
            f"{others[beaten_by][metric]:.3f} on the test split, {ours}: the network does not "
            "beat them; use them, or train the network longer or wider before trusting it "
            "over them"
        )
    linear = m.baselines["linear_converged"][metric]
    margin = (
        f"not {LINEAR_MARGIN} better"
        if score.higher_is_better
        else f"not {LINEAR_MARGIN:.0%} lower"
    )
    return (
        f"{task.linear_label} scores {score.label} {linear:.3f} on the test "
        f"split, {ours} ({margin}): the network adds nothing yet; train longer, or try a "
        "bigger model"
    )


def _report(
    m: Measured,
    numbers: dict[str, Any],
    verdicts: dict[str, Verdict],
    advice: dict[str, str],
    model: keras.Model,
    splits: Splits,
    config: Config,
    init: CheckResult | None,
) -> Report:
    return Report(
        step="train",
        recipe_ids=sorted(verdicts, key=lambda i: tuple(map(int, i[1:].split(".")))),
        numbers=numbers,
        figures=m.figures,
        verdicts=verdicts,
        backend=keras.backend.backend(),
        details={
            "history": {k: [float(v) for v in vs] for k, vs in m.history.items()},
            "epoch_seconds": m.epoch_seconds,
            "baselines": {get_task(config.task).null_name: m.null, **m.baselines},
            "advice": advice,
            "init": None if init is None else dataclasses.asdict(init),
            "schedule_warning": m.schedule_warning,
            "activations": m.look["activations"],
            "dead_layers": m.look["dead_layers"],
            "best_epoch": m.best["epoch"],
            "best": {k: v for k, v in m.best.items() if k != "resumed_from_epoch"},
            "sizes": splits.sizes,
            "class_names": list(splits.class_names),
            "input_shape": list(splits.input_shape),
            "model": model.name,
            "model_path": str(config.train.model_path),
            "config": dataclasses.asdict(config),
            "run": m.run,
            # Where it trained: several devices under train.distribution = "data_parallel".
            "devices": m.devices,
        },
    )


def fit_and_evaluate(
    model: keras.Model,
    splits: Splits,
    config: Config,
    extra: Sequence[keras.callbacks.Callback] = (),
) -> Report:
    """A compiled model's whole run in one call (a notebook's, a test's): ``fit`` with
    the recipe's ``callbacks`` (and ``extra``), then ``evaluate``. A project's train.py
    writes these steps out, so they stay in sight and open to edits."""
    check_labels(model, config)
    history = model.fit(
        splits.fit_train,
        validation_data=splits.fit_val,
        epochs=config.train.epochs,
        shuffle=False,  # the pipeline shuffles, seeded; Keras would warn it cannot
        callbacks=[*callbacks(config, splits), *extra],
        verbose=config.train.verbose,
    )
    return evaluate(model, history, splits, config)


def _best_epoch(history: keras.callbacks.History, monitor: str = "val_loss") -> int | None:
    """The epoch (from 1) with the best ``monitor``: what early stopping restores and
    ``KeepBest`` keeps."""
    values = [v if math.isfinite(v) else math.nan for v in history.history.get(monitor, [])]
    if not values or all(math.isnan(v) for v in values):
        return None
    pick = np.nanargmax if not monitor.endswith("loss") else np.nanargmin
    return int(pick(values)) + 1


def _best_versus_last(
    history: keras.callbacks.History,
    splits: Splits,
    config: Config,
    last_test: dict,
    metric: str = "accuracy",
) -> dict:
    """R6.3: the best epoch, and the kept best model beside the last one on the whole
    test split; also the epoch this process resumed from (None: from the start; one
    past the last when training had ended and only its measuring was resumed)."""
    tc = config.train
    epoch = _best_epoch(history, tc.monitor)
    # The history holds the whole run (``ResumeRecord``); ``history.epoch`` this process's.
    earlier = len(history.history.get("loss", [])) - len(history.epoch)
    found = {
        "monitor": tc.monitor,
        "epoch": epoch,
        "epochs_run": len(history.epoch),
        "value": history.history[tc.monitor][epoch - 1] if epoch else None,
        "resumed_from_epoch": earlier + 1 if earlier > 0 else None,
    }
    staged = Path(tc.backup_dir) / BEST_IN_BACKUP
    if not tc.best_model_path or not staged.is_file():
        return found | {"path": None}
    best = keras.models.load_model(staged)
    test = best.evaluate(splits.test, return_dict=True, verbose=0, callbacks=heartbeat(tc, "test"))
    return found | {
        "path": tc.best_model_path,
        "best_test_loss": float(test["loss"]),
        f"best_test_{metric}": float(test.get(metric, math.nan)),
        "last_test_loss": float(last_test["loss"]),
        f"last_test_{metric}": float(last_test.get(metric, math.nan)),
    }


def _has(model: keras.Layer, kind: type) -> bool:
    """Whether any layer, nested models included, is a ``kind``."""
    return any(isinstance(layer, kind) for layer in flat_layers(model))
