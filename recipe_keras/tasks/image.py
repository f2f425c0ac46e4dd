"""Image classification: images in [0, 1] from an image folder, TFDS or the embedded
digits, audited as pictures, shown as a grid, its first layer drawn as filters."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from recipe_keras.task import Task

__all__ = ["ImageClassification"]


class ImageClassification(Task):
    name = "image_classification"
    # Pixels scaled to [0, 1] by the pipeline (data.make_pipeline).
    input_range = (0.0, 1.0)

    def load_splits(self, data, seed: int):
        from recipe_keras.config import ConfigError, dataset_kind
        from recipe_keras.data import load_splits

        if dataset_kind(data.dataset) == "table":
            raise ConfigError(
                f"data.dataset = {data.dataset!r} is a table, and task = "
                '"image_classification" reads images; set task = "tabular_classification" '
                '(or "tabular_regression" for a number)'
            )

        return load_splits(data, seed=seed)

    def draw_inputs(self, x: np.ndarray, titles: list[str], path: str | os.PathLike[str]) -> Path:
        """R2.10: the images fit receives, decoded back to pixels."""
        from recipe_keras.figures import plot_image_grid

        pixels = np.clip(np.round(x * 255.0), 0, 255).astype(np.uint8)
        return plot_image_grid(pixels / 255.0, titles, path)

    def look_inside(self, model, splits, out: Path) -> dict[str, Any]:
        """R4.13: the first layer as tiles with a noise score, and activation statistics."""
        from recipe_keras.weights import first_layer_tiles, noise_score, plot_first_layer

        found = super().look_inside(model, splits, out)
        tiles = first_layer_tiles(model)
        if tiles is not None:
            found["figures"] = [plot_first_layer(tiles, out / "first_layer.png").name]
            found["noise"] = noise_score(tiles)
        return found

    def inspect(self, project):
        from recipe_keras.audit import inspect_project

        return inspect_project(project)

    def human_sheet(self, project) -> int:
        from recipe_keras.checks.human import sheet_command

        return sheet_command(project)

    def human_score(self, project, sheet: str | None) -> int:
        from recipe_keras.checks.human import score_command

        return score_command(project, sheet)
