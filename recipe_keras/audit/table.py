"""``make inspect`` for a table: the rows as they are stored, before any encoding.

Every finding names its columns and rows (``<split>:<row>``, the row's index in its
file). The quick models are scikit-learn's HistGradientBoosting on the columns
as stored (categories as codes, missing values left missing), which is what a
table's audit needs: fast, and blind to nothing a column holds.
"""

from __future__ import annotations

import os
import time
import warnings
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd

from recipe_keras.audit import classes, noise, targets
from recipe_keras.audit.record import record_errors, recorder, write_audit
from recipe_keras.audit.table_errors import table_errors
from recipe_keras.checks.result import CheckResult
from recipe_keras.report import Report
from recipe_keras.verdicts import Verdict

__all__ = ["Rows", "audit_table", "finding", "rows_of"]

# Numeric values that often stand for "unknown": flagged at a column's edge when
# they sit far from the rest of it.
SENTINELS = (-1, -9, -99, -999, -9999, 99, 999, 9999, 99999, 999999)
# A column missing in more than this share of rows is a warning.
MISSING_SHARE = 0.05
# A single column whose cross-validated accuracy (R² for a regression) reaches this
# predicts the target (almost) alone: a leak, or the task is not what it seems.
LEAK_SCORE = 0.99
# A classifier telling train from test apart beyond this AUC: the splits differ.
SHIFT_AUC = 0.6
# Robust z-score (median and MAD) beyond which a number is an outlier.
OUTLIER_Z = 10.0
# Rows the quick models read at most (the first of a seeded permutation).
MAX_ROWS = 20_000
SHOWN = 10


@dataclass
class Rows:
    """All splits' rows in one frame, with what the shared R1 checks read."""

    frame: pd.DataFrame
    labels: np.ndarray
    splits: np.ndarray
    ids: list[str]
    class_names: tuple[str, ...]
    split_names: tuple[str, ...]
    # A regression's targets as numbers (NaN where missing); None for classes.
    values: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.frame)


def rows_of(frames: dict[str, pd.DataFrame], target: str, regression: bool = False) -> Rows:
    parts = [f.assign(__split=s) for s, f in frames.items()]
    frame = pd.concat(parts)
    splits = frame["__split"].to_numpy(dtype=str)
    ids = [f"{s}:{i}" for s, i in zip(splits, frame.index, strict=True)]
    features = frame.drop(columns=[target, "__split"]).reset_index(drop=True)
    if regression:
        values = pd.to_numeric(frame[target], errors="coerce").to_numpy(np.float64)
        labels = np.where(np.isfinite(values), 0, -1)
        return Rows(features, labels, splits, ids, (target,), tuple(frames), values)
    text = frame[target].astype("string")
    names = tuple(sorted(text.dropna().unique()))
    index = {n: i for i, n in enumerate(names)}
    labels = np.array([index.get(v, -1) if v is not pd.NA else -1 for v in text], dtype=np.int64)
    return Rows(features, labels, splits, ids, names, tuple(frames))


def _target(rows: Rows, i: int) -> str:
    if rows.values is not None:
        return f"{rows.values[i]:g}"
    return rows.class_names[rows.labels[i]] if rows.labels[i] >= 0 else "(missing)"


def _codes(frame: pd.DataFrame) -> tuple[np.ndarray, list[bool]]:
    """Numbers as they are, categories as integer codes; NaN stays missing."""
    columns, categorical = [], []
    for name in frame.columns:
        column = frame[name]
        if pd.api.types.is_numeric_dtype(column):
            columns.append(column.to_numpy(np.float64))
            categorical.append(False)
        else:
            codes = pd.Categorical(column.astype("string")).codes.astype(np.float64)
            codes[codes < 0] = np.nan
            columns.append(codes)
            categorical.append(True)
    return np.column_stack(columns), categorical


def _trees(x: np.ndarray, categorical: list[bool], seed: int, regression: bool = False):
    """A quick HistGradientBoosting for ``x``; a category column of over 255 values is
    read as its codes (they do not fit its categorical bins)."""
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    fits = [c and np.nanmax(col, initial=0) < 255 for c, col in zip(categorical, x.T, strict=True)]
    kind = HistGradientBoostingRegressor if regression else HistGradientBoostingClassifier
    return kind(max_iter=100, random_state=seed, categorical_features=np.array(fits))


def _sample(n: int, seed: int) -> np.ndarray:
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[:MAX_ROWS])


def _shown(items: list[str], sep: str = ", ") -> str:
    return sep.join(items[:SHOWN]) + (
        f" and {len(items) - SHOWN} more" if len(items) > SHOWN else ""
    )


def finding(
    rid: str, name: str, found: list[str], expected: str, advice: str, numbers: dict, sep=", "
) -> CheckResult:
    """A check that warns when it found something, naming what (the first few, joined
    by ``sep``)."""
    return CheckResult(
        rid,
        name,
        Verdict.WARN if found else Verdict.PASS,
        _shown(found, sep) or "none",
        expected,
        advice if found else "",
        numbers,
    )


def missing_values(rows: Rows) -> CheckResult:
    """R1.4: missing values per column, and sentinel numbers standing in for them."""
    frame, n = rows.frame, len(rows)
    missing = {c: int(frame[c].isna().sum()) for c in frame.columns if frame[c].isna().any()}
    sentinels = {}
    for name in frame.select_dtypes("number").columns:
        values = frame[name].dropna()
        for value in SENTINELS:
            hits = int((values == value).sum())
            edge = values.max() if value > 0 else values.min()
            rest = values[values != value]
            far = len(rest) and abs(value) >= 2 * max(abs(rest.quantile(0.99)), 1)
            if hits >= max(2, 0.001 * len(values)) and value == edge and far:
                sentinels[name] = {"value": value, "rows": hits}
    heavy = {c: k for c, k in missing.items() if k > MISSING_SHARE * n}
    parts = [f"{c}: {k} ({k / n:.1%})" for c, k in missing.items()]
    parts += [f"{c} = {s['value']} in {s['rows']} rows (a sentinel?)" for c, s in sentinels.items()]
    warn = bool(heavy or sentinels)
    return CheckResult(
        "R1.4",
        "missing values",
        Verdict.WARN if warn else Verdict.PASS,
        "; ".join(parts) or "no missing value",
        f"no column missing in over {MISSING_SHARE:.0%} of rows; no sentinel number",
        "missing numbers are filled with the training median and flagged, missing categories "
        "become '(missing)'; a sentinel is not missing to the encoder: replace it with an "
        "empty cell"
        if warn
        else "",
        {"missing": missing, "sentinels": sentinels},
    )


def useless_columns(rows: Rows) -> CheckResult:
    """R1.5: constant columns, and ID-like ones (a different value in every row)."""
    frame = rows.frame
    constant = [c for c in frame.columns if frame[c].nunique(dropna=False) <= 1]
    ids = []
    for name in frame.columns:
        column = frame[name].dropna()
        # Nearly every value distinct (a copied row repeats one); numbers counting up.
        if len(column) > 20 and column.nunique() >= 0.99 * len(column):
            if not pd.api.types.is_numeric_dtype(column):
                ids.append(name)
            elif pd.api.types.is_integer_dtype(column):
                steps = np.diff(np.unique(column.to_numpy()))
                if np.mean(steps == 1) >= 0.99:
                    ids.append(name)
    found = [f"{c} (constant)" for c in constant] + [f"{c} (an ID?)" for c in ids]
    return finding(
        "R1.5",
        "constant and ID-like columns",
        found,
        "every column varies, none is a row number",
        "list them in data.ignore: they teach nothing, or teach the row's position",
        {"constant": constant, "id_like": ids},
    )


def duplicate_rows(rows: Rows) -> CheckResult:
    """R1.3: rows with the same features within a split, across splits, and with different
    targets (conflicting duplicates)."""
    keys = pd.util.hash_pandas_object(rows.frame, index=False).to_numpy()
    first: dict[int, int] = {}
    within, across, conflicts = [], [], []
    for i, key in enumerate(keys):
        j = first.setdefault(int(key), i)
        if j == i:
            continue
        pair = f"{rows.ids[i]} = {rows.ids[j]}"
        (within if rows.splits[i] == rows.splits[j] else across).append(pair)
        if _target(rows, i) != _target(rows, j):
            conflicts.append(f"{pair} ({_target(rows, i)} / {_target(rows, j)})")
    warn = bool(across or conflicts)
    measured = [f"{len(within)} within a split", f"{len(across)} across splits"]
    measured.append(f"{len(conflicts)} with different targets")
    if across:
        measured.append(f"across: {_shown(across)}")
    if conflicts:
        measured.append(f"conflicting: {_shown(conflicts)}")
    return CheckResult(
        "R1.3",
        "duplicate rows",
        Verdict.WARN if warn else Verdict.PASS,
        "; ".join(measured),
        "no row of val or test repeated from train; no features with two targets",
        "drop the val/test copies of training rows (they inflate the scores), and decide "
        "each conflicting pair's target"
        if warn
        else "",
        {"within": within, "across": across, "conflicting": conflicts},
    )


def redundant_pairs(rows: Rows) -> CheckResult:
    """R1.5: column pairs that map one-to-one (one is the other, renamed)."""
    frame = rows.frame.dropna()
    names = [c for c in frame.columns if 1 < frame[c].nunique() <= 1000]
    pairs = []
    for a, b in combinations(names, 2):
        if frame[a].nunique() != frame[b].nunique():
            continue
        if frame.groupby(a)[b].nunique().max() == 1 and frame.groupby(b)[a].nunique().max() == 1:
            pairs.append(f"{a} ~ {b}")
    return CheckResult(
        "R1.5",
        "redundant column pairs",
        Verdict.WARN if pairs else Verdict.PASS,
        _shown(pairs) or "none",
        "no column a one-to-one relabelling of another",
        "keep one of each pair (data.ignore the other)" if pairs else "",
        {"pairs": pairs},
    )


def unseen_categories(rows: Rows) -> CheckResult:
    """R1.4: categories of val and test that train never shows (the encoder's OOV slot)."""
    frame, train = rows.frame, rows.splits == "train"
    found, counts = [], {}
    for name in frame.columns:
        if pd.api.types.is_numeric_dtype(frame[name]):
            continue
        seen = set(frame.loc[train, name].dropna())
        others = frame.loc[~train, name].dropna()
        new = others[~others.isin(seen)]
        if len(new):
            values = sorted(map(str, new.unique()))
            counts[name] = {"values": values[:SHOWN], "rows": len(new)}
            where = [rows.ids[i] for i in new.index[:3]]
            found.append(f"{name}: {', '.join(values[:3])} in {len(new)} rows ({', '.join(where)})")
    return finding(
        "R1.4",
        "categories unseen in training",
        found,
        "every val/test category seen in train",
        "the network sees them all as one unknown category; gather training rows with them",
        counts,
    )


def outliers(rows: Rows) -> CheckResult:
    """R1.5: numbers far outside their column (robust z-score over OUTLIER_Z)."""
    found, numbers = [], {}
    for name in rows.frame.select_dtypes("number").columns:
        values = rows.frame[name]
        centre = values.median()
        spread = 1.4826 * (values - centre).abs().median() or values.std()
        if not spread or np.isnan(spread):
            continue
        z = ((values - centre) / spread).abs()
        far = np.flatnonzero(z.to_numpy() > OUTLIER_Z)
        if len(far):
            worst = far[np.argsort(-z.to_numpy()[far])][:3]
            numbers[name] = {"rows": len(far), "worst": [rows.ids[i] for i in worst]}
            found.append(f"{name}: {len(far)} rows (worst {', '.join(rows.ids[i] for i in worst)})")
    return finding(
        "R1.5",
        "outliers",
        found,
        f"no number over {OUTLIER_Z:g} robust standard deviations from its column's median",
        "look at the worst rows: a typo, a unit, a sentinel? Fix or drop them",
        numbers,
    )


def leakage(rows: Rows, seed: int) -> CheckResult:
    """R1.5: a single column that predicts the target almost alone (cross-validated
    accuracy; R² for a regression)."""
    from sklearn.model_selection import cross_val_score
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    train = np.flatnonzero((rows.splits == "train") & (rows.labels >= 0))
    train = train[_sample(len(train), seed)]
    if rows.values is not None:
        y, tree_kind, unit, floor = rows.values[train], DecisionTreeRegressor, "R²", 0.0
        if len(y) < 10 or np.ptp(y) == 0:
            return CheckResult("R1.5", "target leakage", Verdict.WARN, "not measured", "", "")
        dumb = "the mean: 0"
    else:
        y, tree_kind, unit = rows.labels[train], DecisionTreeClassifier, "accuracy"
        if len(np.unique(y)) < 2 or np.bincount(y).min() < 3:
            return CheckResult("R1.5", "target leakage", Verdict.WARN, "not measured", "", "")
        floor = np.bincount(y).max() / len(y)
        dumb = f"the commonest class: {floor:.3f}"
    found, scores = [], {}
    for name in rows.frame.columns:
        x, _ = _codes(rows.frame.iloc[train][[name]])
        # One column: a single tree splits it as finely as boosting would, far sooner.
        tree = tree_kind(max_depth=8, min_samples_leaf=5, random_state=seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            score = float(cross_val_score(tree, x, y, cv=3).mean())
        scores[name] = score
        if score >= LEAK_SCORE and score > floor + 0.01:
            found.append(f"{name} ({unit} {score:.3f} alone)")
    return CheckResult(
        "R1.5",
        "target leakage",
        Verdict.WARN if found else Verdict.PASS,
        _shown(found) or f"best single column {unit} {max(scores.values(), default=0):.3f}",
        f"no single column at {unit} {LEAK_SCORE} or more ({dumb})",
        "a column that gives the answer away is rarely there at prediction time: "
        "data.ignore it, or find out why it knows"
        if found
        else "",
        {"single_column_score": scores},
    )


def shift(rows: Rows, seed: int) -> CheckResult:
    """R1.2: can a classifier tell train rows from test rows? Which column differs most."""
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import cross_val_predict

    train = np.flatnonzero(rows.splits == "train")
    test = np.flatnonzero(rows.splits == "test")
    take = min(len(train), len(test), MAX_ROWS // 2)
    if take < 10:
        return CheckResult("R1.2", "train/test shift", Verdict.WARN, "not measured", "", "")
    rng = np.random.default_rng(seed)
    picked = np.concatenate([rng.choice(train, take, False), rng.choice(test, take, False)])
    is_test = np.r_[np.zeros(take), np.ones(take)]
    x, categorical = _codes(rows.frame.iloc[picked])
    model = _trees(x, categorical, seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        p = cross_val_predict(model, x, is_test, cv=3, method="predict_proba")[:, 1]
    auc = float(roc_auc_score(is_test, p))
    per_column = {}
    for k, name in enumerate(rows.frame.columns):
        column = np.nan_to_num(x[:, k], nan=-1.0)
        per_column[name] = abs(float(roc_auc_score(is_test, column)) - 0.5) + 0.5
    worst = max(per_column, key=per_column.get)
    warn = auc > SHIFT_AUC
    return CheckResult(
        "R1.2",
        "train/test shift",
        Verdict.WARN if warn else Verdict.PASS,
        f"a classifier tells test rows from train at AUC {auc:.3f}; the column that differs "
        f"most alone: {worst} ({per_column[worst]:.3f})",
        f"AUC <= {SHIFT_AUC} (0.5: indistinguishable)",
        f"the test split is not drawn like train; look at {worst} first" if warn else "",
        {"auc": auc, "per_column_auc": per_column},
    )


def audit_table(
    frames: dict[str, pd.DataFrame],
    target: str,
    reports_dir: str | os.PathLike[str] = "reports",
    *,
    folds: int = 5,
    seed: int = 0,
    verbose: bool = True,
    regression: bool = False,
    model_path: str | os.PathLike[str] | None = None,
    data=None,
) -> Report:
    """Audit a table's splits as stored; write ``<reports_dir>/inspect.json`` and figures.
    ``regression``: the target is a number (its distribution, large residuals).
    ``model_path`` and ``data`` (the ``[data]`` config it trained on): R1.8, the saved
    model's worst test rows, once ``make train`` has saved one."""
    from recipe_keras import figures as fig

    out = Path(reports_dir)
    (out / "inspect").mkdir(parents=True, exist_ok=True)
    (out / "inspect.json").unlink(missing_ok=True)
    start = time.perf_counter()
    rows = rows_of(frames, target, regression)
    results: list[CheckResult] = []
    record = recorder(results, start, verbose)

    if rows.values is not None:
        balance, path = targets.target_distribution(
            rows.values, rows.splits, out / "inspect" / "target.png"
        )
    else:
        balance, counts = classes.class_counts(rows)
        path = fig.plot_counts(counts, list(rows.class_names), out / "inspect" / "counts.png")
    balance.figures.append(str(path.relative_to(out)))
    record(balance)
    for check in (missing_values, useless_columns, duplicate_rows, redundant_pairs):
        record(check(rows))
    record(unseen_categories(rows))
    record(outliers(rows))
    record(leaks := leakage(rows, seed))
    record(shift(rows, seed))
    # R1.6's quick model leaves out the columns that give the target away: with them it
    # would agree with every label, wrong ones included.
    leaked = [c for c, a in leaks.numbers.get("single_column_score", {}).items() if a >= LEAK_SCORE]
    picked = _sample(len(rows), seed)
    sample = Rows(
        rows.frame.iloc[picked].drop(columns=leaked).reset_index(drop=True),
        rows.labels[picked],
        rows.splits[picked],
        [rows.ids[i] for i in picked],
        rows.class_names,
        rows.split_names,
        None if rows.values is None else rows.values[picked],
    )
    x, categorical = _codes(sample.frame)
    if sample.values is not None:
        result, suspects = targets.residual_suspects(
            x,
            sample.values,
            sample.ids,
            _trees(x, categorical, seed, regression=True),
            folds=folds,
            seed=seed,
        )
    else:
        result, suspects, _ = noise.label_suspects(
            sample, x, folds=folds, seed=seed, model=_trees(x, categorical, seed)
        )
    result.numbers["suspect_rows"] = [s["id"] for s in suspects[:50]]
    record(result)
    mistakes: list[dict] = []
    if model_path is not None and data is not None:
        found = table_errors(model_path, frames, target, data, seed, out, regression)
        mistakes = record_errors(found, model_path, out, record)
    return write_audit(
        results, len(rows), "rows", rows.class_names, suspects, mistakes, out, start, verbose
    )
