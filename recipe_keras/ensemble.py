"""R6.1 "ensembles": ``make ensemble`` trains N members and averages their predictions.

Each member is a training run of the project's own train.py in its own folder
(``reports/ensemble/member-<i>``), resumable and reused like a ladder rung. The
members differ by seed, or are the best configurations of a finished ``make
tune``. Their predicted probabilities on the whole test split are averaged: by
Jensen's inequality the ensemble's log loss is never above the members' mean,
and its accuracy usually beats the best member's. The ensemble is saved as one
Keras model whose output is the log of the averaged probabilities (logits, like
every zoo model).
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
from recipe_keras.report import Report, atomic_write, write_report
from recipe_keras.runs import run_in
from recipe_keras.verdicts import Verdict

__all__ = [
    "LogOfMeanProbability",
    "average",
    "combine",
    "member_configs",
    "probabilities",
    "run_ensemble",
    "scores",
]


@keras.saving.register_keras_serializable(package="recipe_keras")
class LogOfMeanProbability(keras.layers.Layer):
    """The log of the members' mean softmax: logits whose softmax is the average."""

    def call(self, inputs):
        probabilities = ops.stack([ops.softmax(x, axis=-1) for x in inputs], axis=0)
        return ops.log(ops.maximum(ops.mean(probabilities, axis=0), 1e-12))


def combine(members: Sequence[keras.Model], input_shape: Sequence[int]) -> keras.Model:
    """One model averaging ``members``' probabilities; saves and loads as one .keras file."""
    x = keras.Input(tuple(input_shape))
    outputs = []
    for i, member in enumerate(members):
        if getattr(member, "inputs", None):  # functional or Sequential: a named copy
            member = keras.Model(member.inputs[0], member.outputs[0], name=f"member_{i}")
        outputs.append(member(x))
    return keras.Model(x, LogOfMeanProbability()(outputs), name="ensemble")


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


def probabilities(model: keras.Model, dataset) -> np.ndarray:
    """A logits model's softmax over ``dataset``, in float64."""
    predicted = model.predict(dataset, verbose=0, callbacks=[Heartbeat("predict")])
    logits = keras.ops.convert_to_numpy(predicted)
    return keras.ops.convert_to_numpy(ops.softmax(logits, axis=-1)).astype(np.float64)


def run_ensemble(project, config: Config | None = None, verbose: bool = True) -> Report:
    """Train (or reuse) every member, average them on the test split, save the ensemble,
    write ensemble.json and its figure."""
    config = config or project.config
    out = Path(config.train.reports_dir)
    members = member_configs(config)
    rows, models = [], []
    splits = project.load_data(config)
    labels = labels_of(splits.test)
    predicted = []
    for i, (what, values) in enumerate(members):
        if verbose:
            print(f"member {i + 1} of {len(members)}: {what}", flush=True)
        report, reused = run_in(project.train, config, out / "ensemble" / f"member-{i}", **values)
        model = keras.models.load_model(report.details["model_path"])
        predicted.append(probabilities(model, splits.test))
        found = scores(predicted[-1], labels)
        rows.append({"member": i, "what": what, "reused": reused, **found})
        models.append(model)
        if verbose:
            note = " (already trained)" if reused else ""
            print(f"  test accuracy {found['accuracy']:.3f}, loss {found['loss']:.4f}{note}")
    ensemble = average(predicted, labels)
    combined = combine(models, splits.input_shape)
    atomic_write(config.ensemble.model_path, combined.save)
    accuracies = [r["accuracy"] for r in rows]
    best = int(np.argmax(accuracies))
    numbers = {
        "members": len(rows),
        "ensemble_test_accuracy": ensemble["accuracy"],
        "ensemble_test_loss": ensemble["loss"],
        "mean_member_test_accuracy": float(np.mean(accuracies)),
        "mean_member_test_loss": float(np.mean([r["loss"] for r in rows])),
        "best_member": best,
        "best_member_test_accuracy": accuracies[best],
        "gain_over_best_member": ensemble["accuracy"] - accuracies[best],
        "gain_over_mean_member": ensemble["accuracy"] - float(np.mean(accuracies)),
    }
    beats = ensemble["accuracy"] >= accuracies[best]
    advice = (
        ""
        if beats
        else f"the ensemble scores {ensemble['accuracy']:.3f}, below its best member's "
        f"{accuracies[best]:.3f}: the members are too alike or too uneven; try "
        "ensemble.source = 'tune', more members, or longer training"
    )
    from recipe_keras.figures import plot_ensemble

    figure = plot_ensemble(rows, ensemble, out / "ensemble.png")
    report = Report(
        step="ensemble",
        recipe_ids=["R6.1"],
        verdicts={"R6.1": Verdict.PASS if beats else Verdict.WARN},
        numbers=numbers,
        figures=[figure.name],
        details={
            "source": config.ensemble.source,
            "members": rows,
            "model_path": config.ensemble.model_path,
            "advice": {"R6.1": advice} if advice else {},
        },
        backend=keras.backend.backend(),
    )
    write_report(report, out)
    if verbose:
        print(
            f"ensemble of {len(rows)}: test accuracy {ensemble['accuracy']:.3f} (best member "
            f"{accuracies[best]:.3f}, mean {numbers['mean_member_test_accuracy']:.3f}), loss "
            f"{ensemble['loss']:.4f}; saved to {config.ensemble.model_path}"
        )
        if advice:
            print(f"R6.1 WARN: {advice}")
    return report
