"""``make check`` for a regression (a task whose ``classifies`` is False): the step-2
checks that apply to a number predicted from its inputs, each with its expectation
on the target's own scale.

R2.4 and R2.5 compare the mean squared error at init with the targets' variance
(after the final bias takes their mean), R2.7 sets the model against the mean and a
linear model after the same steps, R2.8 memorises a few examples to under 1% of
their variance. R2.12, loop equivalence, R2.1 and R2.9 are the classifier's own
checks: they read outputs and losses, not classes.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np

from recipe_keras.checks.baselines import check_regression_baselines, suite_batches
from recipe_keras.checks.capacity import check_capacity, check_loss_decreases
from recipe_keras.checks.dependencies import check_batch_independence
from recipe_keras.checks.determinism import check_determinism
from recipe_keras.checks.equivalence import check_model_batching
from recipe_keras.checks.init import check_regression_init_loss
from recipe_keras.checks.inputs import check_inputs
from recipe_keras.checks.subject import Subject, first_batches, fit_steps, precise_batchnorm
from recipe_keras.config import CheckConfig
from recipe_keras.data import to_numpy
from recipe_keras.initialise import (
    check_regression_bias_init,
    init_regression_bias,
    target_rows,
    targets_of,
)
from recipe_keras.verdicts import CheckResult, Verdict

__all__ = ["OVERFIT_SHARE", "check_overfit_targets", "run_regression_checks"]

# R2.8: a few examples are learnt when their MSE falls under this share of their variance.
OVERFIT_SHARE = 0.01


def check_overfit_targets(subject: Subject, examples: int = 8, max_steps: int = 500) -> CheckResult:
    """R2.8 for a regression: a handful of examples learnt to under ``OVERFIT_SHARE``
    of their targets' variance (an R² over 0.99 on them) within a step budget, the
    final bias started at their mean as R2.5 starts it."""
    x, y = subject.train_batches(1)[0]
    x, y = x[:examples], y[:examples]
    variance = float(np.mean(np.var(target_rows(y), axis=0)))
    threshold = OVERFIT_SHARE * variance if variance > 0 else 1e-6
    model = subject.model(reseed=False)
    # Started as make train starts it (R2.5): the budget goes to memorising, not to
    # walking the bias from 0 to the targets' mean.
    init_regression_bias(model, y)
    losses = fit_steps(model, [(x, y)], max_steps, stop_below=threshold)
    norms = precise_batchnorm(model, [(x, y)])
    predicted = target_rows(to_numpy(model.predict_on_batch(x)))
    final = float(np.mean((predicted - target_rows(y)) ** 2))
    ok = math.isfinite(final) and final < threshold
    if ok:
        advice = ""
    elif not math.isfinite(final):
        advice = "the loss became NaN: the learning rate is far too high"
    elif predicted.max() < target_rows(y).min() or predicted.min() > target_rows(y).max():
        advice = (
            f"every prediction lies in [{predicted.min():.4g}, {predicted.max():.4g}], outside "
            f"the targets' [{target_rows(y).min():.4g}, {target_rows(y).max():.4g}]: an output "
            "activation that cannot reach the targets (a sigmoid, a relu)? End in a linear Dense"
        )
    elif abs(losses[-1] - losses[0]) < 1e-3 * max(losses[0], 1e-12):
        advice = "the loss never moved: a learning rate of 0, frozen weights, or no gradient"
    else:
        advice = (
            "could not memorise a few examples: too little capacity, a learning rate too "
            "low, or targets that do not belong to their inputs"
        )
    return CheckResult(
        "R2.8",
        f"overfit {len(y)} examples (L2 regression)",
        Verdict.PASS if ok else Verdict.FAIL,
        measured=f"MSE {final:.4g} after {len(losses)} steps (their variance {variance:.4g})",
        expected=f"MSE < {threshold:.4g} ({OVERFIT_SHARE:.0%} of their variance) within "
        f"{max_steps} steps",
        advice=advice,
        numbers={
            "final_loss": final,
            "threshold": threshold,
            "variance": variance,
            "steps": len(losses),
            "batchnorm_reestimated": norms,
        },
    )


def run_regression_checks(
    subject: Subject,
    out: Path,
    config: CheckConfig,
    record: Callable[[CheckResult], None],
) -> None:
    """Every regression check, each handed to ``record`` as it finishes."""
    splits = subject.splits
    batches, steps, probe = suite_batches(subject, config.steps)
    y = batches[0][1]
    fresh = subject.model()
    record(check_regression_init_loss(fresh, batches[:4]))
    record(check_batch_independence(fresh, probe, seed=subject.seed))
    record(check_model_batching(fresh, probe))
    record(check_regression_bias_init(fresh, batches[:4], targets_of(splits.train)))
    record(
        check_inputs(
            splits.fit_train,
            splits.class_names,
            out / "check_inputs.png",
            task=subject.task,
            rows_as_stored=splits.rows_as_stored,
        )
    )
    # The test split is read in its order (it is not shuffled): its first examples.
    test = first_batches(splits.test, max(1, -(-config.test_examples // len(y))))
    model = subject.model()
    baselines, losses = check_regression_baselines(
        model, batches, test, steps, margin=config.baseline_margin, seed=subject.seed
    )
    record(baselines)
    record(check_loss_decreases(losses))
    record(check_determinism(subject, reference=(batches, losses)))
    record(check_overfit_targets(subject, max_steps=config.overfit_steps))
    record(check_capacity(subject, model, losses, batches))
