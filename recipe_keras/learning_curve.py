"""R4.1 "get more data": ``make learning-curve``, the metric against the training-set size.

Trains the project's config on growing shares of the training split (the first
10/25/50/100% of its stored order, by default) and plots train and validation
accuracy against the number of examples. A validation curve still rising at
100% says more data would help; a flat one says look elsewhere (regularize,
a bigger model). Points already trained with the same config are reused.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from recipe_keras.config import Config
from recipe_keras.report import Report, write_report
from recipe_keras.runs import run_in
from recipe_keras.task import get_task
from recipe_keras.verdicts import Verdict

__all__ = ["learning_curve"]

# Validation accuracy gained by the last doubling (for a regression, the share of its
# RMSE removed) above which more data is advised.
STILL_RISING = 0.01


def learning_curve(
    train: Callable[[Config], Report], config: Config, verbose: bool = True
) -> Report:
    """Train at each share of ``learning_curve.fractions``; write learning_curve.json and a plot."""
    out = Path(config.train.reports_dir)
    score = get_task(config.task).score
    train_m, val_m = f"train_{score.metric}", f"val_{score.metric}"
    points = []
    for fraction in sorted(config.learning_curve.fractions):
        folder = out / "learning_curve" / f"{fraction:g}"
        report, reused = run_in(
            train,
            config,
            folder,
            **{"data.train_fraction": fraction, "train.epochs": config.learning_curve.epochs},
        )
        n = report.details["sizes"]["train"]
        points.append(
            {
                "fraction": fraction,
                "examples": n,
                **{k: report.numbers[k] for k in (train_m, val_m, "train_loss", "val_loss")},
            }
        )
        if verbose:
            note = " (already trained)" if reused else ""
            print(
                f"  {fraction:>5.0%} = {n} examples: train {score.label} "
                f"{points[-1][train_m]:.3f}, val {score.label} {points[-1][val_m]:.3f}{note}",
                flush=True,
            )
    from recipe_keras.figures import plot_learning_curve

    figure = plot_learning_curve(points, out / "learning_curve.png", score.metric, score.label)
    gain = score.gain(points[-1][val_m], points[-2][val_m]) if len(points) > 1 else 0.0
    rising = gain > STILL_RISING
    curve = Report(
        step="learning_curve",
        recipe_ids=["R4.1"],
        verdicts={"R4.1": Verdict.INFO},  # a curve to read; its advice says which way it points
        numbers={"points": len(points), "last_gain": gain, "more_data_helps": rising},
        figures=[figure.name],
        details={
            "points": points,
            "advice": f"validation {score.label} still improves with data: more data would help"
            if rising
            else f"validation {score.label} has levelled off: more of the same data helps little",
            "metric": score.metric,
        },
        backend=report.backend,
    )
    write_report(curve, out)
    if verbose:
        print(curve.details["advice"] + f" (last step: {gain:+.3f})")
    return curve
