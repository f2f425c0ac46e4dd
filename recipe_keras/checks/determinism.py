"""R2.1 fix the random seed: one seed gives the same weights, batches and losses."""

from __future__ import annotations

import keras
import numpy as np

from recipe_keras.checks.subject import (
    Batches,
    Run,
    Subject,
    fit_steps,
    seed_again,
)
from recipe_keras.data import first_batches, to_numpy
from recipe_keras.verdicts import CheckResult, Verdict

__all__ = [
    "check_determinism",
]


def check_determinism(
    subject: Subject, steps: int = 10, reference: Run | None = None
) -> CheckResult:
    """R2.1: one seed gives the same initial weights, the same batches and the same losses.

    A run is: seed, load the pipeline, train ``steps`` steps from the initial
    weights. Two seeded builds must start from identical weights, and two runs must
    see identical batches and give identical losses. ``reference`` (batches and
    losses of an earlier run) saves one run: ``make check`` passes its own training's,
    its pipeline having been loaded right after seeding. If the reference saw other
    batches than a fresh run, a second fresh run is compared instead, so a reference
    from a pipeline loaded some other way cannot fail the check.

    """
    initial = subject.initial_weights
    again = subject.build_seeded()
    pairs = zip(initial, again.variables, strict=True)
    init_diff = max(
        (float(np.max(np.abs(a - to_numpy(b)), initial=0.0)) for a, b in pairs), default=0.0
    )
    del again

    def fresh() -> Run:
        seed_again(subject.seed)
        batches = first_batches(subject.load_splits().train, steps)
        return batches, fit_steps(subject.model(), batches, steps)

    first = fresh()
    from_reference = (
        reference is not None
        and len(reference[1]) >= steps
        and _same_batches(reference[0], first[0], steps)
    )
    other = reference if from_reference else fresh()
    fresh_runs = 1 if from_reference else 2
    same_batches = from_reference or _same_batches(first[0], other[0], steps)
    runs = [first[1][:steps], other[1][:steps]]
    diff = float(np.max(np.abs(np.subtract(*runs))))
    same = runs[0] == runs[1] and init_diff == 0.0 and same_batches
    if same:
        advice = ""
    elif init_diff:
        advice = (
            "two builds from one seed start from different weights: an initializer or "
            "weights drawn outside Keras's seeded random ops (NumPy, Python random)"
        )
    elif not same_batches:
        advice = (
            "two loads of the pipeline after seeding give different batches: a shuffle, "
            "augmentation or generator in the data pipeline without the seed"
        )
    else:
        advice = (
            "same weights and same batches, yet different losses: randomness in the model "
            "or its training that is not seeded, or a non-deterministic op (on GPU)"
        )
    return CheckResult(
        "R2.1",
        f"same seed, same losses ({keras.backend.backend()})",
        Verdict.PASS if same else Verdict.FAIL,
        measured=f"max loss difference {diff:.3g} over {steps} steps; "
        f"initial weights differ by {init_diff:.3g}; "
        f"batches {'identical' if same_batches else 'differ'}",
        expected="0 (bit-identical)",
        advice=advice,
        numbers={
            "max_difference": diff,
            "initial_weight_difference": init_diff,
            "same_batches": same_batches,
            "fresh_runs": fresh_runs,
            "steps": steps,
            "losses": runs[0],
        },
    )


def _same_batches(a: Batches, b: Batches, steps: int) -> bool:
    """Whether two batch lists feed the same ``steps`` steps (``fit_steps`` cycles over them)."""
    return all(
        np.array_equal(a[i % len(a)][k], b[i % len(b)][k]) for i in range(steps) for k in (0, 1)
    )
