"""R1.1 random examples per class and R1.2 the class distribution per split."""

from __future__ import annotations

import numpy as np

from recipe_keras.audit.examples import Examples
from recipe_keras.checks.result import CheckResult
from recipe_keras.verdicts import Verdict

__all__ = ["class_counts", "sample_per_class"]

# A class under this share of a uniform split's count is rare (10% of 1/C).
RARE_SHARE = 0.1


def sample_per_class(ex: Examples, per_class: int, seed: int) -> list[np.ndarray]:
    """Random indices of training examples, per class (any split if train lacks the class)."""
    rng = np.random.default_rng(seed)
    pool = ex.splits == ("train" if "train" in ex.split_names else ex.split_names[0])
    picked = []
    for c in range(len(ex.class_names)):
        idx = np.flatnonzero(pool & (ex.labels == c))
        if not len(idx):
            idx = np.flatnonzero(ex.labels == c)
        picked.append(rng.choice(idx, min(per_class, len(idx)), replace=False) if len(idx) else idx)
    return picked


def class_counts(ex: Examples) -> tuple[CheckResult, dict[str, list[int]]]:
    """Counts per class and split, the imbalance ratio, rare and missing classes."""
    classes = len(ex.class_names)
    counts = {
        s: np.bincount(ex.labels[(ex.splits == s) & (ex.labels >= 0)], minlength=classes).tolist()
        for s in ex.split_names
    }
    rare, missing = [], []
    for split, row in counts.items():
        total = sum(row)
        for c, n in enumerate(row):
            if n == 0:
                missing.append(f"{ex.class_names[c]} in {split}")
            elif n < RARE_SHARE * total / classes:
                rare.append(f"{ex.class_names[c]} in {split} ({n} of {total})")
    train = np.array(counts.get("train", next(iter(counts.values()))))
    ratio = float(train.max() / train.min()) if train.min() > 0 else float("inf")
    numbers = {"counts": counts, "imbalance_ratio": ratio, "rare": rare, "missing": missing}
    problems = rare + [f"no {m}" for m in missing]
    result = CheckResult(
        "R1.2",
        "class balance",
        Verdict.WARN if problems else Verdict.PASS,
        f"imbalance ratio {ratio:.2f} (largest / smallest training class)"
        + (f"; {'; '.join(problems)}" if problems else ""),
        f"every class >= {RARE_SHARE:.0%} of a uniform share in every split",
        "collect more of the rare class, or weight it (and check per-class metrics, R1.8)"
        if problems
        else "",
        numbers,
    )
    return result, counts
