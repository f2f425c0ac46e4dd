"""R1.4 broken examples and R1.5 per-example statistics with a robust outlier rule."""

from __future__ import annotations

from collections import Counter

import numpy as np

from recipe_keras.audit.examples import Examples, example_stats
from recipe_keras.checks.result import CheckResult
from recipe_keras.verdicts import Verdict

__all__ = ["example_stats", "find_broken", "find_outliers", "robust_z"]

# Iglewicz and Hoaglin's rule: |modified z| > 3.5 is an outlier.
OUTLIER_Z = 3.5


def robust_z(values: np.ndarray) -> np.ndarray:
    """Modified z-score 0.6745 (x - median) / MAD; zero where the MAD is zero."""
    median = np.median(values)
    mad = np.median(np.abs(values - median))
    if mad == 0:
        return np.zeros_like(values, dtype=np.float64)
    return 0.6745 * (values - median) / mad


def find_broken(ex: Examples, stats: dict[str, np.ndarray]) -> tuple[CheckResult, list[dict]]:
    """Unreadable files, blank or constant images, NaN/inf, odd channels or size, bad range."""
    broken = list(ex.unreadable)

    def add(mask: np.ndarray, problem) -> None:
        for i in np.flatnonzero(mask):
            text = problem(i) if callable(problem) else problem
            broken.append({"id": ex.ids[i], "split": str(ex.splits[i]), "problem": text})

    constant = stats["std"] == 0
    add(constant & (stats["max"] == 0), "blank image (every pixel 0)")
    add(
        constant & (stats["max"] != 0),
        lambda i: f"constant image (every pixel {stats['max'][i]:g})",
    )
    add(~stats["finite"], "NaN or inf pixel values")
    add(
        ex.channels != ex.expected_channels,
        lambda i: f"{int(ex.channels[i])} channels where the dataset has {ex.expected_channels}",
    )
    sizes = [tuple(s) for s in ex.sizes.tolist()]
    common, count = Counter(sizes).most_common(1)[0]
    if count >= 0.9 * len(sizes):  # one size dominates: the few others are suspects
        add(
            np.array([s != common for s in sizes]),
            lambda i: f"size {sizes[i]} where {count} of {len(sizes)} are {common}",
        )
    if ex.dtype.kind == "f":
        top = 1.0 if np.median(stats["max"][stats["finite"]]) <= 1.0 else 255.0
        add(
            stats["finite"] & ((stats["min"] < 0) | (stats["max"] > top)),
            lambda i: f"values {stats['min'][i]:g}..{stats['max'][i]:g} outside 0..{top:g}",
        )
    numbers = {
        "broken": len(broken),
        "problems": dict(Counter(b["problem"].split(":")[0].split(" (")[0] for b in broken)),
    }
    result = CheckResult(
        "R1.4",
        "broken examples",
        Verdict.FAIL if broken else Verdict.PASS,
        f"{len(broken)} broken of {len(ex) + len(ex.unreadable)}",
        "0",
        "fix or delete each listed file; a model trains on a blank image as on any other"
        if broken
        else "",
        numbers,
    )
    return result, broken


def find_outliers(ex: Examples, stats: dict[str, np.ndarray]) -> tuple[CheckResult, dict]:
    """Examples whose brightness, contrast or stored aspect ratio is far from the rest."""
    measures = {"mean": stats["mean"], "std": stats["std"]}
    aspect = ex.sizes[:, 1] / np.maximum(ex.sizes[:, 0], 1)
    if np.ptp(aspect) > 0:
        measures["aspect"] = aspect
    findings, numbers = {}, {}
    for name, values in measures.items():
        z = robust_z(values)
        idx = np.flatnonzero(np.abs(z) > OUTLIER_Z)
        idx = idx[np.argsort(-np.abs(z[idx]))]
        findings[name] = [
            {"id": ex.ids[i], "value": float(values[i]), "z": float(z[i])} for i in idx
        ]
        numbers[f"{name}_outliers"] = len(idx)
        numbers[f"{name}_median"] = float(np.median(values))
    h, w = ex.sizes[:, 0], ex.sizes[:, 1]
    numbers.update(
        height_min=int(h.min()),
        height_max=int(h.max()),
        width_min=int(w.min()),
        width_max=int(w.max()),
    )
    total = sum(numbers[f"{m}_outliers"] for m in measures)
    result = CheckResult(
        "R1.5",
        "statistics and outliers",
        Verdict.WARN if total else Verdict.PASS,
        ", ".join(f"{numbers[f'{m}_outliers']} {m} outliers" for m in measures),
        f"|robust z| <= {OUTLIER_Z} (median/MAD)",
        "look at the extremes strip: wrong exposure, wrong crop or wrong data" if total else "",
        numbers,
    )
    return result, findings
