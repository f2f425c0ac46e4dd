"""Tables: rows of a table, their columns encoded by Keras's FeatureSpace, a class or
a number predicted, set against a linear model and gradient-boosted trees (R2.7)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from recipe_keras.errors import ConfigError
from recipe_keras.task import Score, Task

__all__ = ["TabularClassification", "TabularRegression"]


class TabularClassification(Task):
    name = "tabular_classification"
    next_step = "make inspect adds the model's worst test rows, as stored (R1.8)"

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
            regression=not self.classifies,
            model_path=config.train.model_path,
            data=config.data,
        )

    def outcome(self, model, splits, out: Path) -> dict[str, Any]:
        """Two classes: the ROC AUC and the calibration plot of the test split (the log
        loss is train.json's test_loss)."""
        if splits.num_classes != 2:
            return super().outcome(model, splits, out)
        from scipy.special import softmax
        from sklearn.metrics import roc_auc_score

        from recipe_keras.figures import plot_calibration
        from recipe_keras.tabular import predict_split

        logits, labels = predict_split(model, splits.test)
        positive = softmax(logits, axis=-1)[:, 1]
        labels = labels.ravel().astype(int)
        auc = float(roc_auc_score(labels, positive)) if len(set(labels)) == 2 else None
        figure = plot_calibration(positive, labels, out / "calibration.png")
        return {"numbers": {"test_auc": auc}, "figures": [figure.name]}

    def baselines(self, splits, seed: int) -> dict[str, dict[str, Any]]:
        """R2.7: on tables the strongest dumb baseline is usually gradient-boosted trees."""
        from recipe_keras.baselines import fit_trees

        return {**super().baselines(splits, seed), "trees": fit_trees(splits, seed)}


class TabularRegression(TabularClassification):
    """Predict a number from a row: mean squared error on the target's own scale, the
    final bias at the target mean (R2.5), judged by test RMSE against the mean, a
    ridge regression and gradient-boosted trees (R2.7)."""

    name = "tabular_regression"
    score = Score("rmse", higher_is_better=False, label="RMSE")
    classifies = False
    null_name, null_label = "mean", "the mean"

    def load_splits(self, data, seed: int):
        from recipe_keras.tabular import load_table_splits

        return load_table_splits(data, seed, regression=True)

    def loss_and_metrics(self, soft_labels: bool = False) -> tuple[Any, list[Any]]:
        """MSE, so R2.4's loss at init is the target's variance once the bias holds its
        mean; RMSE, MAE and R² (over the whole split in ``evaluate``) beside it."""
        import keras

        if soft_labels:
            raise ConfigError("data.mix mixes labels of classes; a regression takes none")
        return keras.losses.MeanSquaredError(), [
            keras.metrics.RootMeanSquaredError(name="rmse"),
            keras.metrics.MeanAbsoluteError(name="mae"),
            keras.metrics.R2Score(name="r2"),
        ]

    def init_final_bias(self, model, splits):
        """R2.5: the final bias set to the training mean, the MSE before and after."""
        from recipe_keras.initialise import init_to_mean

        return init_to_mean(model, splits)

    def outcome(self, model, splits, out: Path) -> dict[str, Any]:
        """The test split's predictions against the targets, and the residuals."""
        from recipe_keras.figures import plot_predictions
        from recipe_keras.tabular import predict_split

        predicted, targets = predict_split(model, splits.test)
        figure = plot_predictions(targets.ravel(), predicted.ravel(), out / "predictions.png")
        return {"numbers": {}, "figures": [figure.name]}

    def null_baseline(self, splits) -> dict[str, float]:
        """Always the training split's mean target."""
        from recipe_keras.baselines import mean_baseline

        return mean_baseline(splits)

    def linear_baseline(self, splits, seed: int) -> dict[str, Any]:
        from recipe_keras.baselines import fit_ridge

        return fit_ridge(splits, seed)

    def baselines(self, splits, seed: int) -> dict[str, dict[str, Any]]:
        from recipe_keras.baselines import fit_trees_regressor

        linear = self.linear_baseline(splits, seed)
        return {"linear_converged": linear, "trees": fit_trees_regressor(splits, seed)}
