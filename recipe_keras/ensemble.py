"""R6.1 "ensembles": ``make ensemble`` trains N members and averages their predictions.

Each member is a training run of the project's own train.py in its own folder
(``reports/ensemble/member-<i>``), resumable and reused like a ladder rung. The
members differ by seed, or are the best configurations of a finished ``make
tune``. Their predicted probabilities on the whole test split are averaged: by
Jensen's inequality the ensemble's log loss is never above the members' mean,
and its accuracy usually beats the best member's. The ensemble is saved as one
Keras model whose output is the log of the averaged probabilities (logits, like
every zoo model). A regression's members' predictions are averaged as they are
(the ensemble's MSE is never above the members' mean MSE, by the same inequality),
and it is judged by RMSE.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import keras
import numpy as np
from keras import ops

from recipe_keras.callbacks import Heartbeat
from recipe_keras.config import Config, ConfigError
from recipe_keras.data import labels_of
from recipe_keras.initialise import targets_of
from recipe_keras.report import Report, atomic_write, write_report
from recipe_keras.runs import run_in
from recipe_keras.task import get_task
from recipe_keras.verdicts import Verdict

__all__ = [
    "LogOfMeanProbability",
    "average",
    "combine",
    "member_configs",
    "probabilities",
    "regression_scores",
    "run_ensemble",
    "scores",
]


@keras.saving.register_keras_serializable(package="recipe_keras")
class LogOfMeanProbability(keras.layers.Layer):
    """The log of the members' mean softmax: logits whose softmax is the average."""

    def call(self, inputs):
        probabilities = ops.stack([ops.softmax(x, axis=-1) for x in inputs], axis=0)
        return ops.log(ops.maximum(ops.mean(probabilities, axis=0), 1e-12))


def combine(
    members: Sequence[keras.Model], input_shape: Sequence[int], classifies: bool = True
) -> keras.Model:
    """One model averaging ``members``' probabilities (a regression's predictions, when
    not ``classifies``); saves and loads as one .keras file."""
    # The members' own input type: token ids (int32) for text, floats otherwise.
    dtype = getattr(members[0], "inputs", None) and members[0].inputs[0].dtype
    x = keras.Input(tuple(input_shape), dtype=dtype or "float32")
    outputs = []
    for i, member in enumerate(members):
        if getattr(member, "inputs", None):  # functional or Sequential: a named copy
            member = keras.Model(member.inputs[0], member.outputs[0], name=f"member_{i}")
        outputs.append(member(x))
    mean = LogOfMeanProbability() if classifies else keras.layers.Average()
    return keras.Model(x, mean(outputs), name="ensemble")


def average(probabilities: Sequence[np.ndarray], labels: np.ndarray) -> dict[str, float]:
    """Accuracy and log loss of the mean of ``probabilities`` (each N x C)."""
    mean = np.mean(np.stack(probabilities), axis=0)
    return scores(mean, labels)


def scores(probabilities: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Accuracy and log loss of predicted ``probabilities`` (N x C) against ``labels``."""
    picked = probabilities[np.arange(len(labels)), labels]
    return {
        "accuracy": float(np.mean(np.argmax(probabilities, axis=1) == labels)),
        "loss": float(-np.mean(np.log(np.maximum(picked, 1e-12)))),
    }


def regression_scores(predicted: np.ndarray, targets: np.ndarray) -> dict[str, float]:
    """RMSE and mean squared error (the loss) of ``predicted`` against ``targets``."""
    mse = float(np.mean((predicted.reshape(targets.shape) - targets) ** 2))
    return {"rmse": mse**0.5, "loss": mse}


def member_configs(config: Config) -> list[tuple[str, dict]]:
    """(description, dotted-key values) of each member, from ``ensemble.source``."""
    ec = config.ensemble
    epochs = {"train.epochs": ec.epochs or config.train.epochs}
    if ec.source == "seeds":
        return [
            (f"seed {config.seed + i}", {"seed": config.seed + i, **epochs})
            for i in range(ec.members)
        ]
    # The search tune.directory names, whatever reports_dir holds ("results.json" is
    # recipe_keras.tune.RESULTS; importing it would import KerasTuner).
    tune_json = Path(config.tune.directory) / "results.json"
    if not tune_json.is_file():
        raise ConfigError(
            f"ensemble.source = 'tune' needs a finished make tune in tune.directory: no "
            f"{tune_json}; run make tune (it resumes a search that has not written it), "
            "or set ensemble.source = 'seeds'"
        )
    rows = json.loads(tune_json.read_text())["results"][: ec.members]
    if len(rows) < ec.members:
        raise ConfigError(
            f"ensemble.members = {ec.members}, but {tune_json} holds {len(rows)} finished trials"
        )
    found = []
    for i, row in enumerate(rows):
        values = {k: v for k, v in row.items() if k not in ("trial", "score")}
        shown = ", ".join(
            f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items()
        )
        found.append(
            (f"trial {row['trial']}: {shown}", {**values, "seed": config.seed + i, **epochs})
        )
    return found


def probabilities(model: keras.Model, dataset, softmax: bool = True) -> np.ndarray:
    """A logits model's softmax over ``dataset``, in float64 (``softmax`` False: the
    outputs as they are, a regression's predictions)."""
    predicted = model.predict(dataset, verbose=0, callbacks=[Heartbeat("predict")])
    outputs = keras.ops.convert_to_numpy(predicted)
    if not softmax:
        return outputs.astype(np.float64)
    return keras.ops.convert_to_numpy(ops.softmax(outputs, axis=-1)).astype(np.float64)


def run_ensemble(project, config: Config | None = None, verbose: bool = True) -> Report:
    """Train (or reuse) every member, average them on the test split, save the ensemble,
    write ensemble.json and its figure."""
    config = config or project.config
    out = Path(config.train.reports_dir)
    score = get_task(config.task).score
    classifies = get_task(config.task).classifies
    metric, name = score.metric, score.label
    members = member_configs(config)
    rows, models = [], []
    splits = project.load_data(config)
    labels = labels_of(splits.test) if classifies else targets_of(splits.test)

    def score_of(predictions: np.ndarray) -> dict[str, float]:
        return scores(predictions, labels) if classifies else regression_scores(predictions, labels)

    predicted = []
    for i, (what, values) in enumerate(members):
        if verbose:
            print(f"member {i + 1} of {len(members)}: {what}", flush=True)
        report, reused = run_in(project.train, config, out / "ensemble" / f"member-{i}", **values)
        model = keras.models.load_model(report.details["model_path"])
        predicted.append(probabilities(model, splits.test, softmax=classifies))
        found = score_of(predicted[-1])
        rows.append({"member": i, "what": what, "reused": reused, **found})
        models.append(model)
        if verbose:
            note = " (already trained)" if reused else ""
            print(f"  test {name} {found[metric]:.3f}, loss {found['loss']:.4f}{note}")
    ensemble = score_of(np.mean(np.stack(predicted), axis=0))
    combined = combine(models, splits.input_shape, classifies)
    atomic_write(config.ensemble.model_path, combined.save)
    each = [r[metric] for r in rows]
    best = score.best(dict(enumerate(each)))
    numbers = {
        "members": len(rows),
        f"ensemble_test_{metric}": ensemble[metric],
        "ensemble_test_loss": ensemble["loss"],
        f"mean_member_test_{metric}": float(np.mean(each)),
        "mean_member_test_loss": float(np.mean([r["loss"] for r in rows])),
        "best_member": best,
        f"best_member_test_{metric}": each[best],
        # Accuracy points, or the share of the member's RMSE the ensemble removes.
        "gain_over_best_member": score.gain(ensemble[metric], each[best]),
        "gain_over_mean_member": score.gain(ensemble[metric], float(np.mean(each))),
    }
    beats = not score.under(ensemble[metric], each[best])
    advice = (
        ""
        if beats
        else f"the ensemble scores {name} {ensemble[metric]:.3f}, worse than its best "
        f"member's {each[best]:.3f}: the members are too alike or too uneven; try "
        "ensemble.source = 'tune', more members, or longer training"
    )
    from recipe_keras.figures import plot_ensemble

    figure = plot_ensemble(rows, ensemble, out / "ensemble.png", metric, name)
    report = Report(
        step="ensemble",
        recipe_ids=["R6.1"],
        verdicts={"R6.1": Verdict.PASS if beats else Verdict.WARN},
        numbers=numbers,
        figures=[figure.name],
        details={
            "source": config.ensemble.source,
            "metric": metric,
            "members": rows,
            "model_path": config.ensemble.model_path,
            "advice": {"R6.1": advice} if advice else {},
        },
        backend=keras.backend.backend(),
    )
    write_report(report, out)
    if verbose:
        print(
            f"ensemble of {len(rows)}: test {name} {ensemble[metric]:.3f} (best member "
            f"{each[best]:.3f}, mean {numbers[f'mean_member_test_{metric}']:.3f}), loss "
            f"{ensemble['loss']:.4f}; saved to {config.ensemble.model_path}"
        )
        if advice:
            print(f"R6.1 WARN: {advice}")
    return report
