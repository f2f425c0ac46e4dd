"""R2.13 special case first: check a vectorised function against its loop reference."""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np

from recipe_keras.checks.result import CheckResult
from recipe_keras.verdicts import Verdict

__all__ = ["check_equivalent", "check_model_batching", "loop_over_batch"]


def loop_over_batch(fn: Callable) -> Callable:
    """The loop reference of a batched ``fn``: call it one example at a time and stack."""

    def looped(x):
        return np.concatenate([np.asarray(fn(x[i : i + 1])) for i in range(len(x))])

    return looped


def check_equivalent(
    vectorised: Callable,
    reference: Callable,
    make_input: Callable[[np.random.Generator], np.ndarray],
    trials: int = 5,
    rtol: float = 1e-5,
    atol: float = 1e-6,
    seed: int = 0,
    name: str = "vectorised == loop reference",
) -> CheckResult:
    """Compare ``vectorised(x)`` with ``reference(x)`` on ``trials`` random inputs."""
    rng = np.random.default_rng(seed)
    worst, where = 0.0, None
    for trial in range(trials):
        x = make_input(rng)
        a = np.asarray(keras.ops.convert_to_numpy(vectorised(x)))
        b = np.asarray(keras.ops.convert_to_numpy(reference(x)))
        if a.shape != b.shape:
            return CheckResult(
                "R2.13",
                name,
                Verdict.FAIL,
                f"shape {a.shape}",
                f"shape {b.shape}",
                "the vectorised version returns a different shape than the loop",
            )
        excess = np.abs(a - b) - (atol + rtol * np.abs(b))
        if excess.max() > 0 and (where is None or np.abs(a - b).max() > worst):
            worst = float(np.abs(a - b).max())
            where = (trial, tuple(int(i) for i in np.unravel_index(excess.argmax(), a.shape)))
    ok = where is None
    return CheckResult(
        "R2.13",
        name,
        Verdict.PASS if ok else Verdict.FAIL,
        measured="equal within tolerance" if ok else f"max |difference| {worst:.3g} at {where}",
        expected=f"|a - b| <= {atol:.3g} + {rtol:.3g}|b| on {trials} input" + ("s" * (trials != 1)),
        advice=""
        if ok
        else "the vectorised code differs from its loop reference at the index shown",
        numbers={"max_difference": worst, "first_mismatch": where},
    )


def check_model_batching(model: keras.Model, x: np.ndarray) -> CheckResult:
    """R2.13 applied to the model: a batched call equals calling it one example at a time.

    The tolerance is 1e-3 of the outputs' scale: GPUs that multiply in TF32 (JAX's
    default on Ampere and Hopper) give batch and single-example results that differ
    by about 1e-4 (the benchmarks page's GPU checks), while the bugs this catches (a softmax
    or a statistic over the batch axis) differ by a sizeable share of the output.
    Through ``predict_on_batch`` (inference mode): on JAX an eager call compiles
    every op at each new shape, while the predict function is compiled once per
    shape, and the suite needs it at this batch anyway (R2.8, R2.11).
    """

    def batched(inputs):
        return keras.ops.convert_to_numpy(model.predict_on_batch(inputs))

    scale = float(np.abs(np.asarray(batched(x))).max())
    return check_equivalent(
        batched,
        loop_over_batch(batched),
        lambda rng: x,
        trials=1,
        rtol=1e-3,
        atol=max(1e-3 * scale, 1e-6),
        name="model on a batch == model example by example",
    )
