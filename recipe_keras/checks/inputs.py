"""R2.10 visualise just before the net: the exact tensors fit receives, decoded.

Reads the first batch of the very pipeline object that ``fit`` iterates (no
re-implementation of its preprocessing), undoes the [0, 1] scaling and draws
the images with their labels. A label-blind transform (a flip that turns a 2
into a mirror glyph, a crop that cuts the object out) shows here.
"""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf

from recipe_keras.checks.result import CheckResult
from recipe_keras.checks.subject import to_numpy

__all__ = ["check_inputs", "inputs_as_fed"]


def inputs_as_fed(dataset: tf.data.Dataset, n: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """The first ``n`` examples of the first batch ``dataset`` yields: (float images, labels)."""
    x, y = next(iter(dataset))
    return to_numpy(x)[:n], to_numpy(y)[:n]


def decode(images: np.ndarray) -> np.ndarray:
    """Undo the pipeline's scaling: floats in [0, 1] back to uint8 pixels."""
    return np.clip(np.round(images * 255.0), 0, 255).astype(np.uint8)


def _title(label: int, class_names: tuple[str, ...]) -> str:
    name = class_names[label] if 0 <= label < len(class_names) else "?"
    return name if name == str(label) else f"{label}: {name}"


def check_inputs(
    dataset: tf.data.Dataset,
    class_names: tuple[str, ...],
    figure: str | os.PathLike[str],
    n: int = 32,
) -> CheckResult:
    """Save the grid of what enters the net; warn on inputs outside [0, 1] or constant."""
    from recipe_keras.figures import plot_image_grid

    x, y = inputs_as_fed(dataset, n)
    labels = y.astype(int).ravel()
    titles = [_title(label, class_names) for label in labels]
    path = plot_image_grid(decode(x) / 255.0, titles, figure)
    low, high, std = float(x.min()), float(x.max()), float(x.std())
    if low < -1e-6 or high > 1 + 1e-6:
        verdict, advice = "warn", "inputs leave [0, 1]: is the normalisation missing or doubled?"
    elif std < 1e-6:
        verdict, advice = "warn", "every input value is the same: the pipeline feeds blanks"
    else:
        verdict, advice = "pass", ""
    return CheckResult(
        "R2.10",
        "what enters the net (look at the grid)",
        verdict,
        measured=f"range [{low:.3g}, {high:.3g}], std {std:.3g}, shape {x.shape[1:]}",
        expected="values in [0, 1], not constant; images that look right with right labels",
        advice=advice,
        numbers={"min": low, "max": high, "std": std},
        figures=[path.name],
    )
