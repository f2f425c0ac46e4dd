"""The task seam: what varies with the kind of problem, asked of one object.

A task (image classification today; tables and text next) says how its data is
read and encoded, how the inputs a network sees are shown (R2.10) and what range
they should hold, its converged linear baseline (R2.7), what to look at inside a
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
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from recipe_keras.errors import ConfigError

if TYPE_CHECKING:  # the seam imports no Keras until a step uses it
    import keras

    from recipe_keras.config import DataConfig
    from recipe_keras.data import Splits

__all__ = ["BUILTIN", "Task", "get_task", "register", "task_names"]


class Task:
    """One kind of problem. Subclass it, override what your task changes, register it."""

    # The name config.toml's ``task`` gives.
    name: str = ""
    # R2.10: the range every input value should lie in once encoded (None: any).
    input_range: tuple[float, float] | None = None

    def load_splits(self, data: DataConfig, seed: int) -> Splits:
        """The batched train/val/test pipelines (tf.data, fed to any backend)."""
        raise NotImplementedError(f"task {self.name!r} defines no load_splits")

    def draw_inputs(self, x: np.ndarray, titles: list[str], path: str | os.PathLike[str]) -> Path:
        """R2.10: the encoded inputs the net receives, one row per example, as a figure.

        The default draws each example's values as a row of a heat map.
        """
        from recipe_keras.figures import plot_rows_of_values

        return plot_rows_of_values(x.reshape(len(x), -1), titles, path)

    def linear_baseline(self, splits: Splits, seed: int) -> dict[str, Any]:
        """R2.7: a linear model fitted to convergence, scored on the whole test split."""
        from recipe_keras.baselines import fit_linear

        return fit_linear(splits, seed)

    def baselines(self, splits: Splits, seed: int) -> dict[str, dict[str, Any]]:
        """R2.7: every dumb baseline of the task by name, each with its test accuracy and
        loss; the trained model is judged against the strongest."""
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
