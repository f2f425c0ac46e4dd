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

    def inspect(self, project):
        """``make inspect``: the table as stored (every split), before any encoding."""
        from recipe_keras.audit.table import audit_table
        from recipe_keras.tabular import read_tables

        config = project.config
        frames, target = read_tables(config.data, config.seed)
        print(f"Reading {config.data.dataset} (every split): {target!r} is the target")
        return audit_table(
            frames,
            target,
            config.train.reports_dir,
            folds=config.inspect.folds,
            seed=config.seed,
        )

    def baselines(self, splits, seed: int) -> dict[str, dict[str, Any]]:
        """R2.7: on tables the strongest dumb baseline is usually gradient-boosted trees."""
        from recipe_keras.baselines import fit_trees

        return {**super().baselines(splits, seed), "trees": fit_trees(splits, seed)}
