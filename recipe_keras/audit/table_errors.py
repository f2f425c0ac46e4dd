"""R1.8 for a table: what the trained model gets wrong, shown as the rows as stored.

The test split is encoded exactly as ``make train`` encodes it (the FeatureSpace
adapted on the training split, ``tabular.load_table_splits``), predicted in its
stored order, and each prediction is set beside its row: the worst are listed in
``inspect.json`` and written whole to ``inspect/worst_rows.csv``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from recipe_keras.checks.result import CheckResult
from recipe_keras.report import atomic_write
from recipe_keras.verdicts import Verdict

__all__ = ["TOP", "table_errors"]

# Rows listed in inspect.json (the CSV holds the same rows, every column).
TOP = 20


def table_errors(
    model_path: str | os.PathLike[str],
    frames: dict[str, pd.DataFrame],
    target: str,
    data,
    seed: int,
    out: Path,
    regression: bool = False,
    load=None,
) -> tuple[CheckResult, list[dict], list[Path]] | None:
    """R1.8 on the test split: (the result, the worst rows, figures); None until a model
    is saved at ``model_path``. ``load``: makes the splits as training made them (a
    table's own loader by default; a corpus passes its own)."""
    if not Path(model_path).is_file():
        return None
    import keras
    from scipy.special import log_softmax

    from recipe_keras import figures as fig
    from recipe_keras.tabular import load_table_splits, predict_split

    model = keras.saving.load_model(model_path)
    if load is None:
        splits = load_table_splits(data, seed, regression=regression, verbose=False)
    else:
        splits = load()
    outputs, labels = predict_split(model, splits.test)
    test = frames["test"]
    if len(outputs) != len(test):
        raise ValueError(f"the test split gave {len(outputs)} predictions for {len(test)} rows")
    names = splits.class_names
    if regression:
        predicted = outputs.reshape(len(test), -1)[:, 0]
        actual = labels.reshape(len(test), -1)[:, 0].astype(np.float64)
        loss = (predicted - actual) ** 2
        shown_predicted = [f"{p:.4g}" for p in predicted]
        rmse = float(np.sqrt(loss.mean()))
        measured = f"test RMSE {rmse:.4g}"
        numbers = {"rmse": rmse}
        figures = [fig.plot_predictions(actual, predicted, out / "inspect" / "predictions.png")]
    else:
        labels = labels.ravel().astype(int)
        log_p = log_softmax(outputs, axis=-1)
        loss = -log_p[np.arange(len(labels)), labels]
        guess = log_p.argmax(axis=1)
        shown_predicted = [f"{names[g]} ({np.exp(log_p[i, g]):.2f})" for i, g in enumerate(guess)]
        confusion = np.zeros((len(names), len(names)), dtype=np.int64)
        np.add.at(confusion, (labels, guess), 1)
        accuracy = float((guess == labels).mean())
        measured = f"test accuracy {accuracy:.3f}"
        numbers = {"accuracy": accuracy, "confusion": confusion.tolist()}
        path = out / "inspect" / "confusion.png"
        figures = [fig.plot_confusion(confusion, list(names), path)]
    worst = np.argsort(-loss, kind="stable")[:TOP]
    table = test.iloc[worst].copy()
    table.insert(0, "row", [f"test:{i}" for i in table.index])
    table["predicted"] = [shown_predicted[i] for i in worst]
    table["loss"] = loss[worst]
    csv = out / "inspect" / "worst_rows.csv"
    atomic_write(csv, lambda tmp: table.to_csv(tmp, index=False))
    rows = [
        {
            "id": f"test:{test.index[i]}",
            "given": str(test[target].iloc[i]),
            "predicted": shown_predicted[i],
            "loss": float(loss[i]),
        }
        for i in worst
    ]
    numbers["top_loss"] = [r["id"] for r in rows]
    shown = "; ".join(f"{r['id']} {r['given']} -> {r['predicted']}" for r in rows[:3])
    result = CheckResult(
        "R1.8",
        "model errors (worst rows)",
        Verdict.INFO,  # rows to look at, nothing measured against an expectation
        f"{measured}; worst: {shown}",
        f"look at the worst rows ({csv.relative_to(out)}, every column) and the figure",
        "",
        numbers,
    )
    return result, rows, [*figures, csv]
