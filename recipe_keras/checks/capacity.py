"""R2.9 verify decreasing training loss, and that more capacity fits better."""

from __future__ import annotations

import math

import keras
import numpy as np

from recipe_keras.checks.subject import (
    Batches,
    Subject,
    fit_steps,
)
from recipe_keras.verdicts import CheckResult, Verdict

__all__ = [
    "check_capacity",
    "check_loss_decreases",
    "loss_falls",
]


def _tail_mean(losses: list[float]) -> float:
    k = max(1, len(losses) // 10)
    return float(np.mean(losses[-k:]))


def _ends(losses: list[float]) -> tuple[float, float]:
    """The mean loss of the first tenth of a run and of its last tenth."""
    k = max(1, len(losses) // 10)
    return float(np.mean(losses[:k])), _tail_mean(losses)


def loss_falls(losses: list[float], factor: float = 0.97) -> bool:
    """Whether the last tenth's mean loss is under ``factor`` times the first tenth's."""
    first, last = _ends(losses)
    return math.isfinite(last) and last < factor * first


def check_loss_decreases(losses: list[float], factor: float = 0.97) -> CheckResult:
    """R2.9: over a short run the training loss falls (last tenth vs first tenth)."""
    first, last = _ends(losses)
    ok = loss_falls(losses, factor)
    return CheckResult(
        "R2.9",
        "training loss decreases",
        Verdict.PASS if ok else Verdict.FAIL,
        measured=f"{first:.4f} -> {last:.4f} over {len(losses)} steps",
        expected=f"last < {factor} x first",
        advice=""
        if ok
        else "the training loss does not fall: check the learning rate (not 0, not huge), "
        "that gradients reach the weights, and that labels match inputs",
        numbers={"first": first, "last": last},
    )


def check_capacity(
    subject: Subject, base: keras.Model, base_losses: list[float], batches: Batches
) -> CheckResult:
    """R2.9: a model twice as wide reaches a lower training loss in the same steps."""
    width = subject.model_config.width
    wider = subject.model(width=2 * width)
    name = "a wider model fits better"
    if wider.count_params() <= base.count_params():
        # Nothing measured: info, not a warning painted on every hand-written model.
        return CheckResult(
            "R2.9",
            name,
            Verdict.INFO,
            "not applicable",
            "more parameters at width x2",
            "build_model ignores model.width, so no wider model could be compared: read "
            "config.width for its units or filters (as the zoo does) to have R2.9 widen it",
        )
    losses = fit_steps(wider, batches, len(base_losses))
    base_last, wide_last = _tail_mean(base_losses), _tail_mean(losses)
    ok = wide_last < base_last
    return CheckResult(
        "R2.9",
        name,
        Verdict.PASS if ok else Verdict.WARN,
        measured=f"width {2 * width}: {wide_last:.4f} vs width {width}: {base_last:.4f}",
        expected="wider < base",
        advice=""
        if ok
        else "more capacity did not fit the training data better: the optimisation, "
        "not the size, may be what limits the model",
        numbers={"base": base_last, "wider": wide_last, "width": width},
    )
