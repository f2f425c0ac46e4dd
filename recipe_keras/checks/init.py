"""R2.4 verify the loss at init (R2.5's initialisation lives in ``recipe_keras.initialise``).

A fresh classifier should be unsure of every class: its loss is -log(1/C), or,
once its final bias holds the log class priors (R2.5), the entropy of those
priors. A start far above that is over-confident (raw 0-255 pixels, a final
layer at a large scale) and wastes the first steps undoing it. This check cannot
see a double softmax (softmax of probabilities is near uniform, so the loss sits
at ln C by construction): R2.8 catches that one.

For L2 regression the same holds with the target variance: a fresh regressor
should predict about its final bias, which R2.5 sets to the target mean, so its
mean squared error starts at the targets' variance (their second moment while the
bias is still zero). Over that means outputs that swing at init: unnormalised
inputs, or a final layer at a large scale.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np

from recipe_keras.initialise import (
    check_bias_init,
    check_regression_bias_init,
    class_priors,
    expected_init_loss,
    expected_regression_loss,
    final_bias,
    init_final_bias,
    init_regression_bias,
    measure_loss,
    require_mean_squared_error,
    target_rows,
    targets_of,
)
from recipe_keras.verdicts import CheckResult, Verdict

__all__ = [
    "check_bias_init",
    "check_init_loss",
    "check_regression_bias_init",
    "check_regression_init_loss",
    "class_priors",
    "expected_init_loss",
    "expected_regression_loss",
    "init_final_bias",
    "init_regression_bias",
    "measure_loss",
    "require_mean_squared_error",
    "target_rows",
    "targets_of",
]


def check_init_loss(
    model: keras.Model,
    batches: Sequence[tuple[np.ndarray, np.ndarray]],
    num_classes: int,
    priors: np.ndarray | None = None,
    tolerance: float = 0.1,
) -> CheckResult:
    """R2.4: the untrained model's loss against its expected value (relative tolerance).

    Without ``priors`` the loss is class-balanced. Its value at init is -log(1/C)
    whatever the imbalance, while the plain loss also depends on which way the
    untrained model happens to lean: on a 9:1 folder it ranged 0.64-0.87 over 12
    seeds of a correct CNN (ln 2 = 0.69), and one seed failed as "over-confident".
    With ``priors`` (after R2.5) the plain loss is compared with their entropy.
    """
    measured = measure_loss(model, batches, balanced=priors is None)
    expected = expected_init_loss(num_classes, priors)
    verdict, advice, deviation = _init_verdict(
        measured,
        expected,
        tolerance,
        high="the model starts over-confident: normalise the inputs (e.g. pixels to [0, 1]) "
        "and check the final layer's initial scale",
        low="the loss is below chance before any training: do labels leak into the inputs, "
        "or does the model output probabilities where the loss expects logits?",
    )
    what = "-log(1/C)" if priors is None else "entropy of the class priors"
    return CheckResult(
        "R2.4",
        "loss at init",
        verdict,
        measured=f"{measured:.4f}" + (" (class-balanced)" if priors is None else ""),
        expected=f"{expected:.4f} = {what} (±{tolerance:.0%})",
        advice=advice,
        numbers={
            "init_loss": measured,
            "class_balanced": priors is None,
            "expected": expected,
            "deviation": deviation,
        },
    )


def _init_verdict(
    measured: float, expected: float, tolerance: float, high: str, low: str, chance: bool = False
) -> tuple[str, str, float]:
    """pass within ``tolerance`` (relative), warn within 2.5 times it, else fail.

    ``chance``: the loss may fall below the expected value by chance, so below it
    only warns, and only past 2.5 times the tolerance.
    """
    deviation = abs(measured - expected) / max(expected, 1e-12)
    if chance and measured < expected:
        verdict = Verdict.WARN if deviation > 2.5 * tolerance else Verdict.PASS
    else:
        verdict = (
            Verdict.PASS
            if deviation <= tolerance
            else Verdict.WARN
            if deviation <= 2.5 * tolerance
            else Verdict.FAIL
        )
    advice = "" if verdict == Verdict.PASS else high if measured > expected else low
    return verdict, advice, deviation


def check_regression_init_loss(
    model: keras.Model, batches: Sequence[tuple[np.ndarray, np.ndarray]], tolerance: float = 0.1
) -> CheckResult:
    """R2.4 for L2 regression: the untrained model's MSE against that of predicting its bias.

    After R2.5 (bias = target mean) that is the target variance; with a zero bias,
    the targets' second moment. Far over it, the outputs swing at init. Under it
    only warns: a random init's outputs correlate with the targets by chance (a
    correct MLP started 13% under the variance of targets with a tenth of its spread).
    """
    require_mean_squared_error(model)
    y = targets_of(batches)
    bias = final_bias(model, y.shape[1])
    bias = np.zeros(y.shape[1]) if bias is None else keras.ops.convert_to_numpy(bias)
    measured = measure_loss(model, batches)
    expected = expected_regression_loss(y, bias)
    verdict, advice, deviation = _init_verdict(
        measured,
        expected,
        tolerance,
        high="the outputs swing at init: normalise the inputs and the targets, and start "
        "the final layer small (kernel_initializer='zeros': the model predicts its bias)",
        low="the loss is far below that of predicting the final bias before any training: "
        "do the targets leak into the inputs?",
        chance=True,
    )
    at_mean = np.allclose(bias, y.mean(axis=0), rtol=1e-4, atol=1e-6)
    what = "target variance" if at_mean else "mean of (y - final bias)^2"
    return CheckResult(
        "R2.4",
        "loss at init (L2 regression)",
        verdict,
        measured=f"{measured:.4g}",
        expected=f"{expected:.4g} = {what} (±{tolerance:.0%})",
        advice=advice,
        numbers={
            "init_loss": measured,
            "expected": expected,
            "deviation": deviation,
            "bias_at_target_mean": bool(at_mean),
        },
    )
