"""Step 5, tune: ``make tune`` wraps KerasTuner's search over config keys (R5.1, R5.2).

The search space lives in config.toml (``[tune.space]``); each trial draws
values for those keys, applies them to the project's config (validated like
any config), and builds the model through the project's own ``build_model`` and
:func:`recipe_keras.train.compile_model`, so the hypermodel is the project's
model and nothing is re-implemented. KerasTuner keeps the search's state in
``tune.directory``: re-running resumes, skipping finished trials and re-running
an interrupted one. It clears the Keras session before each build.
"""

from __future__ import annotations

import gc
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import keras_tuner as kt

from recipe_keras.config import Config, with_values
from recipe_keras.data import Splits
from recipe_keras.report import Report, write_report

__all__ = ["apply_values", "declare", "format_results", "make_tuner", "search"]

_TUNERS = {
    "random": kt.RandomSearch,
    "bayesian": kt.BayesianOptimization,
    "hyperband": kt.Hyperband,
}


def declare(hp: kt.HyperParameters, space: dict[str, dict]) -> dict[str, Any]:
    """Draw every key of ``space`` from ``hp``; returns {config key: value}."""
    values = {}
    for name, spec in space.items():
        if spec["type"] == "choice":
            values[name] = hp.Choice(name, spec["values"])
        elif spec["type"] == "int":
            values[name] = hp.Int(name, spec["min"], spec["max"], step=spec.get("step", 1))
        else:
            values[name] = hp.Float(
                name, spec["min"], spec["max"], sampling=spec.get("sampling", "linear")
            )
    return values


def apply_values(config: Config, values: dict[str, Any]) -> Config:
    """``config`` with one trial's values (dotted keys) applied and validated."""
    return with_values(config, values, source="tune")


def make_tuner(build: Callable[[kt.HyperParameters], keras.Model], config: Config) -> kt.Tuner:
    """The configured KerasTuner tuner; it reloads the search state found in its directory."""
    tc = config.tune
    options: dict[str, Any] = {
        "objective": kt.Objective(tc.objective, "min" if tc.objective.endswith("loss") else "max"),
        "directory": tc.directory,
        "project_name": "search",
        "seed": config.seed,
        "overwrite": False,
    }
    if tc.algorithm == "hyperband":
        options |= {"max_epochs": tc.epochs, "hyperband_iterations": 1}
    else:
        options["max_trials"] = tc.trials
    return _TUNERS[tc.algorithm](build, **options)


class _Clock:
    """Fit seconds summed over trials; shared by KerasTuner's per-trial copies of callbacks."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.fits = 0
        self.peak_rss_mb: list[float] = []  # after each trial: growth would be a leak

    def __deepcopy__(self, memo: dict) -> _Clock:
        return self  # KerasTuner deep-copies callbacks for each trial


class _Progress(keras.callbacks.Callback):
    """One line per trial with its result and fit time; KerasTuner's own display is off."""

    def __init__(self, clock: _Clock, objective: str, verbose: bool) -> None:
        super().__init__()
        self.clock, self.objective, self.verbose = clock, objective, verbose

    def on_train_begin(self, logs=None):
        self.start = time.perf_counter()

    def on_train_end(self, logs=None):
        seconds = time.perf_counter() - self.start
        self.clock.seconds += seconds
        self.clock.fits += 1
        self.clock.peak_rss_mb.append(_peak_rss_mb())
        if self.verbose:
            value = (logs or {}).get(self.objective)
            shown = "?" if value is None else f"{value:.4f}"
            print(f"  trial done: {self.objective} {shown}, fit {seconds:.1f} s", flush=True)


def _peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MiB (0 where unknown)."""
    try:
        import resource
    except ImportError:  # Windows
        return 0.0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1024 if sys.platform != "darwin" else 1024 * 1024), 1)


def search(
    build_model: Callable[[Config], keras.Model],
    splits: Splits,
    config: Config,
    verbose: bool = True,
) -> Report:
    """Run (or resume) the search; write tune.json, the results table and the best model.

    ``build_model(config)`` returns a compiled model for a config; the search
    hands it the project's config with the trial's values applied.
    """
    tc = config.tune

    def hypermodel(hp: kt.HyperParameters) -> keras.Model:
        return build_model(apply_values(config, declare(hp, tc.space)))

    tuner = make_tuner(hypermodel, config)
    before = {t.trial_id for t in tuner.oracle.trials.values() if t.status == "COMPLETED"}
    clock = _Clock()
    if verbose:
        print(
            f"{tc.algorithm} search, {tc.trials} trials, {tc.epochs} epochs each, "
            f"{len(before)} already finished in {tc.directory}",
            flush=True,
        )
    start = time.perf_counter()
    # KerasTuner clears the Keras session before each build, and that runs gc.collect()
    # twice: 0.5 s each over the heap TensorFlow's import leaves (measured), most of the
    # tuner's cost on short trials. Freezing what exists now exempts that heap from
    # collection; every trial's models are still collected, so trials do not leak.
    gc.freeze()
    try:
        tuner.search(
            splits.train,
            validation_data=splits.val,
            epochs=tc.epochs,
            shuffle=False,
            callbacks=[_Progress(clock, tc.objective, verbose)],
            verbose=0,
        )
    finally:
        gc.unfreeze()
    seconds = time.perf_counter() - start
    trials = [t for t in tuner.oracle.trials.values() if t.status == "COMPLETED"]
    higher = not tc.objective.endswith("loss")
    trials.sort(key=lambda t: t.score, reverse=higher)
    rows = [
        {"trial": t.trial_id, "score": float(t.score), **t.hyperparameters.values} for t in trials
    ]
    out = Path(config.train.reports_dir)
    best_dir = Path(tc.directory)
    best_model = tuner.get_best_models(1)[0]
    best_path = best_dir / "best.keras"
    best_model.save(best_path)
    best_values = {k: v for k, v in rows[0].items() if k not in ("trial", "score")}
    (best_dir / "best_hyperparameters.json").write_text(json.dumps(best_values, indent=2) + "\n")
    from recipe_keras.figures import plot_trials

    figure = plot_trials(rows, tc.objective, out / "tune_trials.png")
    ran = [t.trial_id for t in trials if t.trial_id not in before]
    report = Report(
        step="tune",
        recipe_ids=["R5.1", "R5.2"] if tc.algorithm != "random" else ["R5.1"],
        verdicts={"R5.1": "pass", **({"R5.2": "pass"} if tc.algorithm != "random" else {})},
        numbers={
            "trials": len(trials),
            "trials_run_now": len(ran),
            "best_score": rows[0]["score"],
            "worst_score": rows[-1]["score"],
            "search_seconds": round(seconds, 3),
            "fit_seconds": round(clock.seconds, 3),
            "fits": clock.fits,
        },
        figures=[figure.name],
        details={
            "algorithm": tc.algorithm,
            "objective": tc.objective,
            "results": rows,
            "best": best_values,
            "best_model": str(best_path),
            "trials_run_now": ran,
            "peak_rss_mb_after_each_trial": clock.peak_rss_mb,
            "space": tc.space,
        },
        backend=keras.backend.backend(),
    )
    write_report(report, out)
    if verbose:
        print(format_results(rows, tc.objective))
        print(f"best model: {best_path}; its values: {best_dir / 'best_hyperparameters.json'}")
    return report


def format_results(rows: list[dict], objective: str) -> str:
    """The trials as a plain-text table, best first."""
    keys = [k for k in rows[0] if k not in ("trial", "score")] if rows else []
    header = ["trial", objective, *keys]
    lines = [header] + [
        [str(r["trial"]), f"{r['score']:.4f}", *(f"{r.get(k)!s:.8}" for k in keys)] for r in rows
    ]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) for line in lines
    )
