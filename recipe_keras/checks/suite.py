"""``make check``: every step-2 check on the project's own pipeline and model.

Prints a line per check as it finishes, then a table (id, check, verdict,
measured vs expected) with one line of advice per warning or failure, writes
``reports/check.json`` and the figures, and says whether any check failed.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from recipe_keras._heap import frozen_heap
from recipe_keras.checks.baselines import check_baselines, suite_batches
from recipe_keras.checks.capacity import check_capacity, check_loss_decreases
from recipe_keras.checks.dependencies import check_batch_independence
from recipe_keras.checks.determinism import check_determinism
from recipe_keras.checks.dynamics import PredictionDynamics, check_dynamics
from recipe_keras.checks.equivalence import check_model_batching
from recipe_keras.checks.init import check_init_loss
from recipe_keras.checks.inputs import check_inputs, check_shuffled
from recipe_keras.checks.overfit import check_overfit_batch
from recipe_keras.checks.result import CheckResult, format_table, results_report
from recipe_keras.checks.subject import Subject, to_numpy
from recipe_keras.config import CheckConfig
from recipe_keras.initialise import check_bias_init
from recipe_keras.report import write_report
from recipe_keras.verdicts import Verdict

__all__ = ["check_project", "format_table", "project_subject", "run_checks"]


# A JAX suite made one full collection over the imports' heap; with that heap frozen
# the collections skip it (recipe_keras._heap; docs/benchmarks.md has the numbers).
@frozen_heap()
def run_checks(
    subject: Subject,
    reports_dir: str | os.PathLike[str] = "reports",
    config: CheckConfig | None = None,
    verbose: bool = True,
) -> list[CheckResult]:
    """Run the suite; write ``<reports_dir>/check.json`` and figures; return the results."""
    config = config or CheckConfig()
    out = Path(reports_dir)
    out.mkdir(parents=True, exist_ok=True)
    # An interrupted suite must not leave its new figures beside the last run's verdicts.
    (out / "check.json").unlink(missing_ok=True)
    start = time.perf_counter()
    results: list[CheckResult] = []

    last = start

    def record(result: CheckResult) -> None:
        nonlocal last
        now = time.perf_counter()
        result.seconds, last = round(now - last, 3), now
        results.append(result)
        if verbose:
            print(
                f"  {result.recipe_id:<6} {result.verdict:<5} {result.name} "
                f"({result.seconds:.1f} s)",
                flush=True,
            )

    if subject.task is not None and not subject.task.classifies:
        from recipe_keras.checks.regression import run_regression_checks

        run_regression_checks(subject, out, config, record)
    else:
        _classification_checks(subject, out, config, record)
    seconds = time.perf_counter() - start

    write_report(
        results_report(
            "check",
            results,
            {
                "checks": len(results),
                "failed": sum(r.verdict == Verdict.FAIL for r in results),
                "warned": sum(r.verdict == Verdict.WARN for r in results),
                "seconds": round(seconds, 2),
            },
        ),
        out,
    )
    if verbose:
        print(format_table(results))
    return results


def _classification_checks(subject: Subject, out: Path, config: CheckConfig, record) -> None:
    """Every classifier's check, each handed to ``record`` as it finishes."""
    splits = subject.splits
    batches, steps, probe = suite_batches(subject, config.steps)
    y = batches[0][1]
    # One untrained model serves the inference-only checks; R2.5 changes its bias, so last.
    fresh = subject.model()
    record(check_init_loss(fresh, batches[:4], splits.num_classes))
    record(check_batch_independence(fresh, probe, seed=subject.seed))
    record(check_model_batching(fresh, probe))
    if subject.task is not None and subject.task.padded_tokens:
        from recipe_keras.checks.padding import check_padding

        record(check_padding(fresh, to_numpy(batches[0][0])))
    record(check_bias_init(fresh, batches[:4], subject.train_labels, splits.num_classes))
    record(
        check_inputs(
            splits.fit_train,
            splits.class_names,
            out / "check_inputs.png",
            task=subject.task,
            rows_as_stored=splits.rows_as_stored,
            vocabulary=splits.vocabulary,
        )
    )
    fed = np.concatenate([np.ravel(labels) for _, labels in batches])
    record(check_shuffled(fed, subject.train_labels))
    # R2.11 follows held-out examples: the first of R2.7's test sample, read whole (see
    # Subject.test_sample), and spread over the split.
    test, _ = subject.test_sample(config.test_examples, batch=len(y))
    held_x, held_y = next(iter(test))
    dynamics = PredictionDynamics(
        to_numpy(held_x)[:8], to_numpy(held_y)[:8], every_n_batches=max(1, steps // 30)
    )
    baselines, model, losses = check_baselines(
        subject,
        batches,
        steps,
        margin=config.baseline_margin,
        callbacks=[dynamics],
        test_examples=config.test_examples,
    )
    record(baselines)
    record(check_dynamics(dynamics, out / "check_dynamics.png"))
    record(check_loss_decreases(losses))
    # R2.1 compares a fresh run with the first steps of this training (one run saved).
    record(check_determinism(subject, reference=(batches, losses)))
    # After R2.1, whose reseed it then need not repeat (see check_overfit_batch).
    record(check_overfit_batch(subject, out / "check_overfit.png", max_steps=config.overfit_steps))
    record(check_capacity(subject, model, losses, batches))


def project_subject(project) -> Subject:
    """The project under check: its ``load_data``, and its model built the way ``make
    train`` builds it (``train.build_compiled``, the schedule over the planned steps).

    The data is loaded right after seeding, as a fresh run loads it, so R2.1 can take
    the suite's own training as one of its runs.
    """
    from recipe_keras.compile import build_compiled, compile_as

    config = project.config
    splits = project.seeded_data()
    return Subject(
        project.load_data,
        lambda model_config: build_compiled(project.network, splits, config, model=model_config),
        config.model,
        config.seed,
        splits,
        # Another model (R2.7's linear baseline) compiled as the project compiles its own.
        compile=lambda model: compile_as(project.network, model, splits, config),
        task=project.task,
    )


def check_project(project, verbose: bool = True) -> list[CheckResult]:
    """``make check``: the suite on the project's own data, model and compile."""
    subject = project_subject(project)
    return run_checks(subject, project.config.train.reports_dir, project.config.check, verbose)
