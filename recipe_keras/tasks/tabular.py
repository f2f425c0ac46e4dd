"""Tabular classification: rows of a table, their columns encoded by Keras's
FeatureSpace, set against a linear model and gradient-boosted trees (R2.7)."""

from __future__ import annotations

from typing import Any

from recipe_keras.task import Task

__all__ = ["TabularClassification"]


class TabularClassification(Task):
    name = "tabular_classification"

    def load_splits(self, data, seed: int):
        from recipe_keras.tabular import load_table_splits

        return load_table_splits(data, seed)

    def baselines(self, splits, seed: int) -> dict[str, dict[str, Any]]:
        """R2.7: on tables the strongest dumb baseline is usually gradient-boosted trees."""
        from recipe_keras.baselines import fit_trees

        return {**super().baselines(splits, seed), "trees": fit_trees(splits, seed)}
