"""``make inspect`` for a regression's target: its distribution per split (R1.2) and
rows whose target the features cannot explain (R1.6, large cross-validated residuals).

The residuals come from scikit-learn's HistGradientBoostingRegressor fitted k-fold on
the columns as stored; a row is a suspect when its residual lies beyond
``SUSPECT_Z`` robust standard deviations (median and MAD) of all residuals.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from recipe_keras.checks.result import CheckResult
from recipe_keras.verdicts import Verdict

__all__ = ["SUSPECT_SHARE", "SUSPECT_Z", "residual_suspects", "target_distribution"]

# A residual beyond this many robust standard deviations makes its row a suspect.
SUSPECT_Z = 4.0
# More suspects than this share of the rows is a warning (a normal error puts 0.006%
# of rows beyond 4 SD; a heavy tail, or wrong targets, put many more).
SUSPECT_SHARE = 0.01


def _robust_z(values: np.ndarray) -> np.ndarray:
    centre = np.median(values)
    spread = 1.4826 * np.median(np.abs(values - centre))
    if spread == 0:
        spread = np.std(values) or 1.0
    return (values - centre) / spread


def target_distribution(
    values: np.ndarray, splits: np.ndarray, path: Path
) -> tuple[CheckResult, Path]:
    """R1.2 for a regression: each split's target mean, spread and range, drawn as
    histograms (the figure written to ``path``); a split whose mean sits over a quarter
    of a standard deviation from train's is a warning (the splits are not drawn alike)."""
    from recipe_keras.figures import plot_histograms

    stats, found = {}, []
    for split in dict.fromkeys(splits):
        y = values[(splits == split) & np.isfinite(values)]
        stats[split] = {
            "rows": len(y),
            "mean": float(np.mean(y)) if len(y) else float("nan"),
            "std": float(np.std(y)) if len(y) else float("nan"),
            "min": float(np.min(y)) if len(y) else float("nan"),
            "max": float(np.max(y)) if len(y) else float("nan"),
        }
    train = stats.get("train")
    for split, s in stats.items():
        if train and split != "train" and train["std"] > 0:
            shift = abs(s["mean"] - train["mean"]) / train["std"]
            s["mean_shift_sd"] = float(shift)
            if shift > 0.25:
                found.append(f"{split} mean {s['mean']:.4g} vs train {train['mean']:.4g}")
    missing = int((~np.isfinite(values)).sum())
    if missing:
        found.append(f"{missing} rows without a target value")
    figure = plot_histograms({s: values[(splits == s) & np.isfinite(values)] for s in stats}, path)
    result = CheckResult(
        "R1.2",
        "target distribution",
        Verdict.WARN if found else Verdict.PASS,
        "; ".join(found)
        or ", ".join(f"{s} {v['mean']:.4g} ± {v['std']:.3g}" for s, v in stats.items()),
        "every split's mean within 0.25 SD of train's; a target in every row",
        "the splits are not drawn alike, or rows lack a target: carve them again, seeded, "
        "or drop those rows"
        if found
        else "",
        {"per_split": stats, "missing": missing},
    )
    return result, figure


def residual_suspects(
    x: np.ndarray,
    values: np.ndarray,
    ids: list[str],
    model,
    *,
    folds: int = 5,
    seed: int = 0,
    top: int = 50,
) -> tuple[CheckResult, list[dict]]:
    """R1.6 for a regression: rows whose cross-validated residual is extreme, most
    extreme first. ``model``: the quick scikit-learn regressor."""
    from sklearn.model_selection import KFold, cross_val_predict

    usable = np.flatnonzero(np.isfinite(values))
    if len(usable) < 2 * folds:
        return CheckResult(
            "R1.6",
            "target noise",
            Verdict.WARN,
            "not measured",
            f"{2 * folds} rows or more",
            "too few rows with a target to cross-validate",
        ), []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        predicted = cross_val_predict(
            model, x[usable], values[usable], cv=KFold(folds, shuffle=True, random_state=seed)
        )
    residual = values[usable] - predicted
    z = _robust_z(residual)
    order = np.argsort(-np.abs(z))
    flagged = [i for i in order if abs(z[i]) > SUSPECT_Z]
    suspects = [
        {
            "id": ids[usable[i]],
            "target": float(values[usable[i]]),
            "predicted": float(predicted[i]),
            "robust_z": float(z[i]),
        }
        for i in flagged[:top]
    ]
    share = len(flagged) / len(usable)
    rmse = float(np.sqrt(np.mean(residual**2)))
    shown = ", ".join(
        f"{s['id']} ({s['target']:.4g}, predicted {s['predicted']:.4g})" for s in suspects[:5]
    )
    return CheckResult(
        "R1.6",
        "target noise",
        Verdict.WARN if share > SUSPECT_SHARE else Verdict.PASS,
        f"{len(flagged)} rows ({share:.2%}) beyond {SUSPECT_Z:g} robust SD of the "
        f"cross-validated residuals (RMSE {rmse:.4g})" + (f"; worst: {shown}" if shown else ""),
        f"at most {SUSPECT_SHARE:.0%} of rows",
        "look at the worst rows first: a wrong target, a unit slip or a sentinel (99, -1) "
        "teaches the network a wrong answer"
        if share > SUSPECT_SHARE
        else "",
        {"suspects": len(flagged), "share": share, "cv_rmse": rmse, "folds": folds},
    ), suspects
