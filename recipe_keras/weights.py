"""R4.13: look at the first layer's weights and at every layer's activations.

Trained first-layer filters of an image model look like strokes and edges;
filters that still look like noise say the net did not train enough, or the
learning rate is off. The noise score is the mean absolute difference between
neighbouring weights relative to their mean deviation: sqrt(2) = 1.41 for i.i.d.
random weights, lower for smooth filters. Activation statistics per layer show
dead ReLU units (zero for every example) and exploding scales.
"""

from __future__ import annotations

import os
from pathlib import Path

import keras
import numpy as np

from recipe_keras.models import flat_layers

__all__ = ["activation_stats", "first_layer_tiles", "noise_score", "plot_first_layer"]


def first_layer_tiles(model: keras.Model) -> np.ndarray | None:
    """The first weighted layer as images (N, h, w): conv filters, or Dense rows as inputs."""
    for layer in flat_layers(model):  # resnet50's first conv is in the nested base
        kernel = getattr(layer, "kernel", None)
        if kernel is None:
            continue
        w = np.asarray(keras.ops.convert_to_numpy(kernel))
        if w.ndim == 4:  # Conv2D: (kh, kw, in, out) -> one tile per output filter
            return np.moveaxis(w.mean(axis=2), -1, 0)
        shape = tuple(model.input_shape[1:])
        if w.ndim == 2 and len(shape) == 3 and w.shape[0] == int(np.prod(shape)):
            return np.moveaxis(w.reshape(*shape, -1).mean(axis=2), -1, 0)  # Dense on pixels
        return None
    return None


def noise_score(tiles: np.ndarray) -> float:
    """Mean |neighbour difference| / mean |deviation| (i.i.d. noise: sqrt 2; smooth: << 1)."""
    dy = np.abs(np.diff(tiles, axis=1)).mean() if tiles.shape[1] > 1 else 0.0
    dx = np.abs(np.diff(tiles, axis=2)).mean() if tiles.shape[2] > 1 else 0.0
    scale = np.abs(tiles - tiles.mean(axis=(1, 2), keepdims=True)).mean()
    return float((dy + dx) / 2 / scale) if scale > 0 else 0.0


def activation_stats(model: keras.Model, x) -> list[dict]:
    """Per layer: output mean, std and the share of units that are zero for every example."""
    try:
        inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
        probe = keras.Model(inputs, [layer.output for layer in model.layers])
    except (AttributeError, ValueError, TypeError):
        return []  # a subclassed model has no symbolic outputs to tap
    outputs = probe(x, training=False)
    stats = []
    for layer, out in zip(model.layers, outputs, strict=True):
        a = np.asarray(keras.ops.convert_to_numpy(out)).reshape(len(x), -1)
        stats.append(
            {
                "layer": layer.name,
                "mean": float(a.mean()),
                "std": float(a.std()),
                "dead_share": float((a == 0).all(axis=0).mean()),
            }
        )
    return stats


def plot_first_layer(tiles: np.ndarray, path: str | os.PathLike[str]) -> Path:
    """The first layer's filters as tiles, each scaled to its own range."""
    from recipe_keras.figures import plot_rows

    lo = tiles.min(axis=(1, 2), keepdims=True)
    span = np.maximum(tiles.max(axis=(1, 2), keepdims=True) - lo, 1e-12)
    unit = ((tiles - lo) / span)[..., None][:64]
    rows = [("", unit[k : k + 16], ["" for _ in unit[k : k + 16]]) for k in range(0, len(unit), 16)]
    return plot_rows(
        rows, path, f"first layer: {len(tiles)} filters (noise {noise_score(tiles):.2f})"
    )
