"""The task seam: what varies with the kind of problem, asked of one object.

A task (images; tables, classified or regressed; texts) says how its data is
read and encoded, how the inputs a network sees are shown (R2.10) and what range
they should hold, its loss, metrics and score (R2.7 judges by the score), how its
final bias starts (R2.5), its dumb baselines (R2.7), what to look at inside a
trained model (R4.13), and its audit (``make inspect``) and human sheet (R2.6).
The steps ask the task named by ``config.task``; they never branch on its name.

``Task`` gives defaults that hold for any classification of numeric inputs; a
task overrides what differs. A task of your own is registered once, before a
step asks for it (``register``), or named in config.toml by its import path
(``task = "my_package.tasks:MyTask"``). docs/tasks.md walks through adding one.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from recipe_keras.errors import ConfigError

if TYPE_CHECKING:  # the seam imports no Keras until a step uses it
    import keras

    from recipe_keras.config import DataConfig
    from recipe_keras.data import Splits
    from recipe_keras.verdicts import CheckResult

__all__ = ["BUILTIN", "Score", "Task", "get_task", "register", "task_names"]


@dataclass(frozen=True)
class Score:
    """The compiled metric a task is judged by (R2.7), and which way is better."""

    metric: str  # its name in ``model.evaluate``'s results: "accuracy", "rmse"
    higher_is_better: bool
    # How it reads in a sentence: "accuracy", "RMSE".
    label: str

    def gain(self, model: float, baseline: float) -> float:
        """How much better ``model`` scores than ``baseline``: accuracy points, or
        for an error the share of the baseline's error it removes."""
        if self.higher_is_better:
            return model - baseline
        return (baseline - model) / baseline if baseline > 0 else baseline - model

    def best(self, scores: dict[Any, float]) -> Any:
        """The name of the best score in ``scores`` (None if empty)."""
        pick = max if self.higher_is_better else min
        return pick(scores, key=lambda k: scores[k], default=None)

    def under(self, model: float, baseline: float) -> bool:
        """Whether ``model`` scores worse than ``baseline``."""
        return model < baseline if self.higher_is_better else model > baseline


class Task:
    """One kind of problem. Subclass it, override what your task changes, register it."""

    # The name config.toml's ``task`` gives.
    name: str = ""
    # R2.10: the range every input value should lie in once encoded (None: any).
    input_range: tuple[float, float] | None = None
    # What R2.7 judges the trained model by (train.json's test_<metric>).
    score: Score = Score("accuracy", higher_is_better=True, label="accuracy")
    # R2.7's dumbest answer (``null_baseline``), in train.json's keys and in words.
    null_name: str = "commonest_class"
    null_label: str = "commonest class"
    # R2.7's linear baseline (``linear_baseline``) in words.
    linear_label: str = "a linear model fitted to convergence"
    # What `make train` suggests next, once it has finished.
    next_step: str = "make inspect adds the model's confusion matrix and worst mistakes (R1.8)"
    # Whether its labels are class indices (their counts, priors and confusions mean
    # something) or values to predict.
    classifies: bool = True
    # Whether its inputs are token ids padded with 0 (text): make check then expects
    # the output to stay the same when the padding is trimmed away.
    padded_tokens: bool = False

    def load_splits(self, data: DataConfig, seed: int) -> Splits:
        """The batched train/val/test pipelines (tf.data, fed to any backend)."""
        raise NotImplementedError(f"task {self.name!r} defines no load_splits")

    def draw_inputs(self, x: np.ndarray, titles: list[str], path: str | os.PathLike[str]) -> Path:
        """R2.10: the encoded inputs the net receives, one row per example, as a figure.

        The default draws each example's values as a row of a heat map.
        """
        from recipe_keras.figures import plot_rows_of_values

        return plot_rows_of_values(x.reshape(len(x), -1), titles, path)

    def loss_and_metrics(self, soft_labels: bool = False) -> tuple[Any, list[Any]]:
        """The compiled loss and metrics: cross-entropy on logits and accuracy.

        ``soft_labels``: training batches are mixed (R4.3), so both take soft labels too.
        """
        import keras

        if soft_labels:
            from recipe_keras.mixing import MixedLabelAccuracy, MixedLabelCrossentropy

            return MixedLabelCrossentropy(), [MixedLabelAccuracy(name="accuracy")]
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True), [
            keras.metrics.SparseCategoricalAccuracy(name="accuracy")
        ]

    def init_final_bias(self, model: keras.Model, splits: Splits) -> CheckResult:
        """R2.5: the final bias set to the log class priors, the loss before and after."""
        from recipe_keras.initialise import init_from_priors

        return init_from_priors(model, splits)

    def null_baseline(self, splits: Splits) -> dict[str, float]:
        """R2.7's dumbest answer's test score: always the commonest test class."""
        from recipe_keras.data import labels_of

        labels = labels_of(splits.test)
        return {"test_accuracy": float(np.bincount(labels).max() / len(labels))}

    def linear_baseline(self, splits: Splits, seed: int) -> dict[str, Any]:
        """R2.7: a linear model fitted to convergence, scored on the whole test split."""
        from recipe_keras.baselines import fit_linear

        return fit_linear(splits, seed)

    def baselines(self, splits: Splits, seed: int) -> dict[str, dict[str, Any]]:
        """R2.7: every fitted dumb baseline of the task by name, each with its test
        ``score`` and loss; the trained model is judged against the strongest."""
        return {"linear_converged": self.linear_baseline(splits, seed)}

    def look_inside(self, model: keras.Model, splits: Splits, out: Path) -> dict[str, Any]:
        """R4.13: statistics of every layer's activations (and figures, where the task
        has a picture of its first layer)."""
        from recipe_keras.weights import activation_stats

        x, _ = next(iter(splits.val))
        stats = activation_stats(model, x)
        return {
            "figures": [],
            "noise": None,
            "activations": stats,
            # A layer whose units are mostly zero for every example has stopped learning.
            "dead_layers": [s["layer"] for s in stats if s["dead_share"] > 0.5],
        }

    def outcome(self, model: keras.Model, splits: Splits, out: Path) -> dict[str, Any]:
        """Numbers and figures of the trained model's test predictions that its task
        adds to train.json: ``{"numbers": {...}, "figures": [file names in out]}``.
        The default adds none."""
        return {"numbers": {}, "figures": []}

    def inspect(self, project) -> Any:
        """``make inspect`` (R1): the audit of this task's data; returns its report."""
        raise ConfigError(f"make inspect has no audit for task {self.name!r} yet")

    def human_sheet(self, project) -> int:
        """``make human-sheet`` (R2.6): test examples for a person to label."""
        raise ConfigError(f"make human-sheet has no sheet for task {self.name!r} yet")

    def human_score(self, project, sheet: str | None) -> int:
        """``make human-score`` (R2.6): the person's sheet scored against the answers."""
        raise ConfigError(f"make human-score has no sheet for task {self.name!r} yet")


# The tasks recipe-keras ships, by the import path of their class (imported on first use).
BUILTIN = {
    "image_classification": "recipe_keras.tasks.image:ImageClassification",
    "tabular_classification": "recipe_keras.tasks.tabular:TabularClassification",
    "tabular_regression": "recipe_keras.tasks.tabular:TabularRegression",
    "text_classification": "recipe_keras.tasks.text:TextClassification",
}
_registered: dict[str, Task] = {}


def register(task: Task) -> Task:
    """Make ``task`` known by its name, for every step in this process."""
    if not task.name or not task.name.isidentifier():
        raise ValueError(f"a task's name must be an identifier, got {task.name!r}")
    _registered[task.name] = task
    return task


def task_names() -> list[str]:
    """The task names a config may give: the built-in ones and those registered."""
    return sorted({*BUILTIN, *_registered})


def get_task(name: str) -> Task:
    """The task ``name`` (a registered or built-in name, or ``"module:Class"``)."""
    if name in _registered:
        return _registered[name]
    path = BUILTIN.get(name, name)
    module, sep, attr = path.partition(":")
    if not sep:
        raise ConfigError(
            f"task = {name!r} is not a known task; known: {', '.join(task_names())} (or a "
            'task of your own by its import path, e.g. "my_package.tasks:MyTask")'
        )
    try:
        found = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"task = {name!r}: cannot import it ({exc})") from exc
    task = found() if isinstance(found, type) else found
    if not isinstance(task, Task):
        raise ConfigError(f"task = {name!r} is not a recipe_keras.task.Task")
    _registered[name] = task
    return task
