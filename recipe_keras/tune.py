"""Step 5, tune: ``make tune`` wraps KerasTuner's search (R5.1, R5.2).

The hypermodel builds each trial through the project contract: the search
space lives in config.toml (``[tune.space]``), :func:`trial_config` draws those
config keys from ``hp`` and applies them to the project's config (validated like
any config), and the trial's model is built and compiled by the path ``make
train`` takes (``train.build_compiled``), its schedule placed over the trial's
epochs. A project that needs more draws defines ``build_trial_model(hp,
input_shape, num_classes, config)`` in its model.py (``hp.Int`` and friends).
KerasTuner keeps the search's state in ``tune.directory``: re-running resumes,
skipping finished trials and re-running an interrupted one.
It clears the Keras session before each build; :func:`search` counts the models
of earlier trials still alive at each build and warns when they pile up.

Distributed (R5.3): with KerasTuner's ``KERASTUNER_TUNER_ID``,
``KERASTUNER_ORACLE_IP`` and ``KERASTUNER_ORACLE_PORT`` set, the same search runs as
the chief (holds the oracle, runs no trial, writes the results) or as a worker (runs
trials, writes nothing but their checkpoints); :mod:`recipe_keras.workers` starts a
chief and local workers.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import keras_tuner as kt

from recipe_keras._heap import frozen_heap
from recipe_keras.callbacks import EpochLine, EpochTensorBoard, Heartbeat, ShuffleByEpoch
from recipe_keras.config import Config, with_values
from recipe_keras.data import Splits
from recipe_keras.progress import duration
from recipe_keras.report import Report, atomic_write, write_report
from recipe_keras.seed import set_seed
from recipe_keras.verdicts import Verdict
from recipe_keras.workers import role, wait_for_chief

__all__ = [
    "RESULTS",
    "declare",
    "format_results",
    "make_tuner",
    "search",
    "search_project",
    "trial_config",
]

# The finished trials, best first, in the search's own folder (``tune.directory``).
RESULTS = "results.json"

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


def trial_config(hp: kt.HyperParameters, config: Config) -> Config:
    """``config`` with this trial's draws of ``[tune.space]`` applied and validated."""
    return with_values(config, declare(hp, config.tune.space), source="tune")


def _naming_trials(base: type[kt.Tuner]) -> type[kt.Tuner]:
    """``base`` telling its hypermodel which trial it fits (``run_trial`` is the public
    override point), so workers sharing one folder name their logs by trial id."""

    class Tuner(base):
        def run_trial(self, trial, *args, **kwargs):
            self.hypermodel.trial_id = trial.trial_id
            return super().run_trial(trial, *args, **kwargs)

    Tuner.__name__ = Tuner.__qualname__ = base.__name__
    return Tuner


def make_tuner(
    build: kt.HyperModel | Callable[[kt.HyperParameters], keras.Model], config: Config
) -> kt.Tuner:
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
    return _naming_trials(_TUNERS[tc.algorithm])(build, **options)


class _Trials(kt.HyperModel):
    """The project's ``build_model(hp)`` as a KerasTuner HyperModel that times and watches trials.

    ``build`` and ``fit`` are KerasTuner's own extension points and all a trial runs
    of the project's work, so their seconds are the trials' own; what a search
    takes beyond them is the tuner's. At each build it also counts the models of
    earlier builds still alive (held weakly, after KerasTuner's session clear and
    garbage collection): growth is a leak. One line per trial (KerasTuner's own
    display is off) and the process's peak memory after each.
    """

    def __init__(
        self,
        build_model: Callable[[kt.HyperParameters], keras.Model],
        objective: str,
        verbose: bool,
    ) -> None:
        super().__init__()
        self.build_model, self.objective, self.verbose = build_model, objective, verbose
        self.build_seconds = 0.0
        self.fit_seconds = 0.0
        self.fits = 0
        self.peak_rss_mb: list[float] = []
        self.models: weakref.WeakSet[keras.Model] = weakref.WeakSet()
        self.alive_at_build: list[int] = []

    # Set by ``search``: trials asked for (None for hyperband, which sets its own),
    # finished before this process, and when this process's search began.
    total: int | None = None
    done_before: int = 0
    search_start: float = 0.0
    logs: Path | None = None  # the trials' TensorBoard folder
    worker: str = ""  # a distributed worker's id ("" alone)
    trial_id: str = ""  # set by the tuner before each trial (see _naming_trials)

    def progress(self, now: float) -> str:
        """``trial k of N, 1 min 5 s in, about 2 min left`` (left: the mean trial so far).

        A worker knows only its own trials: ``tuner0: trial 03 (its #2), 1 min 5 s in``.
        """
        elapsed = now - self.search_start
        if self.worker:
            line = f"{self.worker}: trial {self.trial_id} (its #{self.fits + 1})"
            return line + f", {duration(elapsed)} in"
        k = self.done_before + self.fits + 1
        line = f"trial {k}" + (f" of {self.total}" if self.total else "")
        line += f", {duration(elapsed)} in"
        if self.total and self.fits:
            left = elapsed / self.fits * (self.total - k + 1)
            line += f", about {duration(left)} left"
        return line

    def leak(self) -> tuple[int, str]:
        """The most models of earlier builds alive at a build, and a warning if a leak."""
        alive = max(self.alive_at_build, default=0)
        if alive <= LEAK_ALIVE:
            return alive, ""
        return alive, (
            f"{alive} models of earlier trials were still alive when a trial built its "
            "model: something keeps a reference to each trial's model (a list, a "
            "callback, a global), so memory grows with the number of trials"
        )

    # Set by ``search``: the seed every trial starts from, and the splits whose
    # training order each epoch sets (a callback of its own per trial: one shared
    # would keep the trial before's model alive).
    seed: int | None = None
    splits: Splits | None = None

    def build(self, hp: kt.HyperParameters) -> keras.Model:
        self.alive_at_build.append(len(self.models))
        start = time.perf_counter()
        if self.seed is not None:
            # Each trial starts as a fresh run of its configuration would (R2.1), not
            # from where the trials before it left the random state: a trial re-run
            # after an interruption then scores what the uninterrupted search scored.
            set_seed(self.seed, None)
        model = self.build_model(hp)
        self.build_seconds += time.perf_counter() - start
        self.models.add(model)
        return model

    def fit(self, hp: kt.HyperParameters, model: keras.Model, *args, **kwargs):
        start = time.perf_counter()
        # Each trial's own TensorBoard run (KerasTuner separates them on TF only).
        if self.logs is not None:
            trial = self.logs / f"trial-{self.trial_id}"
            logs = EpochTensorBoard(str(trial))
            kwargs["callbacks"] = [*kwargs.get("callbacks", []), logs]
        if self.splits is not None and self.splits.epoch is not None:
            # Epoch e's order, whichever trials ran before in this process.
            kwargs["callbacks"] = [*kwargs.get("callbacks", []), ShuffleByEpoch(self.splits)]
        if self.verbose:
            values = ", ".join(
                f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}"
                for k, v in hp.values.items()
                if not k.startswith("tuner/")
            )
            print(f"{self.progress(start)}: {values}", flush=True)
            kwargs["callbacks"] = [
                *kwargs.get("callbacks", []),
                EpochLine(),
                Heartbeat(indent="    "),
            ]
        history = model.fit(*args, **kwargs)
        seconds = time.perf_counter() - start
        self.fit_seconds += seconds
        self.fits += 1
        self.peak_rss_mb.append(_peak_rss_mb())
        if self.verbose:
            values = history.history.get(self.objective) or [None]
            best = min(values) if self.objective.endswith("loss") else max(values)
            shown = "?" if best is None else f"{best:.4f}"
            who = f"{self.worker}: trial {self.trial_id} done," if self.worker else "  trial done:"
            print(f"{who} best {self.objective} {shown}, fit {seconds:.1f} s", flush=True)
        return history


def _peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MiB (0 where unknown)."""
    try:
        import resource
    except ImportError:  # Windows
        return 0.0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1024 if sys.platform != "darwin" else 1024 * 1024), 1)


# More models of earlier builds alive at a build than this is a leak. KerasTuner drops
# each trial's model; the one exception is the model its constructor builds to learn
# the search space: made before `frozen_heap` below, it sits in the frozen heap until
# the search ends (so 1 alive at each build is no leak).
LEAK_ALIVE = 1


def search(
    build_model: Callable[[kt.HyperParameters], keras.Model],
    splits: Splits,
    config: Config,
    verbose: bool = True,
) -> Report:
    """Run (or resume) the search; write tune.json, the results table and the best model.

    ``build_model(hp)`` returns a compiled model for one trial's hyperparameters,
    usually through ``trial_config(hp, config)``.
    """
    tc = config.tune
    trials_run = _Trials(build_model, tc.objective, verbose)
    part = role()
    trials_run.worker = "" if part == "chief" else part
    if trials_run.worker:  # before KerasTuner's client, which would wait for days
        wait_for_chief(tc.wait_for_chief)
    trials_run.seed, trials_run.splits = config.seed, splits
    tuner = make_tuner(trials_run, config)
    # A worker's oracle is a client of the chief's: it has no trials to count.
    before = set()
    if not trials_run.worker:
        before = {t.trial_id for t in tuner.oracle.trials.values() if t.status == "COMPLETED"}
    if verbose:
        what = f"{tc.algorithm} search, {tc.trials} trials, {tc.epochs} epochs each"
        if part == "chief":
            where = f"{os.environ['KERASTUNER_ORACLE_IP']}:{os.environ['KERASTUNER_ORACLE_PORT']}"
            what = f"chief of a distributed {what} on {where} (workers run the trials)"
        if trials_run.worker:
            print(f"{part}: a worker (pid {os.getpid()}) of the distributed {what}", flush=True)
        else:
            print(f"{what}, {len(before)} already finished in {tc.directory}", flush=True)
    built_before = trials_run.build_seconds
    start = time.perf_counter()
    trials_run.total = None if tc.algorithm == "hyperband" else tc.trials
    trials_run.done_before, trials_run.search_start = len(before), start
    # KerasTuner clears the Keras session before each build, and that runs gc.collect()
    # twice over the large heap TensorFlow's import leaves: most of the tuner's cost on
    # short trials (docs/benchmarks.md). Freezing what exists now exempts that heap from
    # collection; every trial's models are still collected, so trials do not leak.
    trials_run.logs = Path(config.train.reports_dir) / "tune" / "tensorboard"
    with frozen_heap(), _chief_state(tuner, part == "chief"):
        tuner.search(
            splits.fit_train,
            validation_data=splits.fit_val,
            epochs=tc.epochs,
            shuffle=False,
            verbose=0,
        )
    seconds = time.perf_counter() - start
    if trials_run.worker:  # the chief writes the results
        return _worker_report(trials_run, seconds, verbose)
    # Builds within the search only: KerasTuner's constructor builds once to learn the
    # space, and get_best_models below builds once more.
    build_seconds = trials_run.build_seconds - built_before
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
    atomic_write(best_path, best_model.save)
    best_values = {k: v for k, v in rows[0].items() if k not in ("trial", "score")}
    text = json.dumps(best_values, indent=2) + "\n"
    atomic_write(best_dir / "best_hyperparameters.json", lambda tmp: tmp.write_text(text))
    # Every finished trial, best first, beside the search they belong to (make ensemble
    # with ensemble.source = "tune" reads them from here).
    table = json.dumps({"objective": tc.objective, "results": rows}, indent=2) + "\n"
    atomic_write(best_dir / RESULTS, lambda tmp: tmp.write_text(table))
    from recipe_keras.figures import plot_trials

    figure = plot_trials(rows, tc.objective, out / "tune_trials.png")
    ran = [t.trial_id for t in trials if t.trial_id not in before]
    alive, leak = trials_run.leak()
    # The chief runs no trial, so it measured no leak: its workers warn of their own.
    verdict = Verdict.INFO if part == "chief" else Verdict.WARN if leak else Verdict.PASS
    ids = ["R5.1", "R5.2"] if tc.algorithm != "random" else ["R5.1"]
    verdicts = dict.fromkeys(ids, verdict)
    if part == "chief":  # a way of running the search, not a measurement
        ids, verdicts["R5.3"] = [*ids, "R5.3"], Verdict.INFO
    report = Report(
        step="tune",
        recipe_ids=ids,
        verdicts=verdicts,
        numbers={
            "trials": len(trials),
            "trials_run_now": len(ran),
            "best_score": rows[0]["score"],
            "worst_score": rows[-1]["score"],
            "search_seconds": round(seconds, 3),
            "fit_seconds": round(trials_run.fit_seconds, 3),
            "build_seconds": round(build_seconds, 3),
            "fits": trials_run.fits,
            "models_alive_at_build_max": alive,
        },
        figures=[figure.name],
        details={
            "algorithm": tc.algorithm,
            "objective": tc.objective,
            "distributed": part == "chief",
            "results": rows,
            "best": best_values,
            "best_model": str(best_path),
            "trials_run_now": ran,
            "peak_rss_mb_after_each_trial": trials_run.peak_rss_mb,
            "models_alive_at_each_build": trials_run.alive_at_build,
            "leak": leak,
            "space": tc.space,
        },
        backend=keras.backend.backend(),
    )
    write_report(report, out)
    if verbose:
        print(format_results(rows, tc.objective))
        print(f"best model: {best_path}; its values: {best_dir / 'best_hyperparameters.json'}")
    if leak:
        print(f"warning: {leak}", file=sys.stderr, flush=True)
    return report


class _WorkersDone(Exception):
    """The launcher's word (SIGUSR1) that every worker has finished."""


@contextlib.contextmanager
def _chief_state(tuner: kt.Tuner, chief: bool):
    """On the chief: save the oracle when the search ends or is stopped, and end the
    wait early when the launcher says every worker has finished.

    The chief saves its state as a worker's trial ends but before it marks the trial
    closed, and a worker's own save skips the oracle: a chief stopped then would hand
    each worker's last finished trial out again on the next run. And once stopped,
    KerasTuner's chief checks for its workers every 20 s: up to 20 s of nothing after
    the last trial, unless the launcher (which sees its workers exit) says so.
    """
    if not chief:
        yield
        return
    searching = [True]

    def workers_done(signum, frame) -> None:
        if searching[0]:
            searching[0] = False
            raise _WorkersDone

    previous = signal.signal(signal.SIGTERM, _exit_on_term)
    usr1 = getattr(signal, "SIGUSR1", None)  # POSIX
    if usr1 is not None:
        signal.signal(usr1, workers_done)
    try:
        try:
            yield
        finally:
            searching[0] = False
    except _WorkersDone:  # every trial has ended: the oracle has nothing open
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        if usr1 is not None:  # a late word must not end the process (SIGUSR1's default)
            signal.signal(usr1, signal.SIG_IGN)
        tuner.oracle.save()


def _exit_on_term(signum, frame) -> None:
    raise SystemExit(128 + signum)


def _worker_report(trials_run: _Trials, seconds: float, verbose: bool) -> Report:
    """A worker's account of its own trials; not written (the chief's tune.json is the search's)."""
    alive, leak = trials_run.leak()
    if leak:
        print(f"warning: {trials_run.worker}: {leak}", file=sys.stderr, flush=True)
    if verbose:
        print(
            f"{trials_run.worker}: done, {trials_run.fits} trial{'s' * (trials_run.fits != 1)} "
            f"in {duration(seconds)}; "
            "the chief writes the results",
            flush=True,
        )
    return Report(
        step="tune",
        recipe_ids=["R5.3"],
        verdicts={"R5.3": Verdict.INFO},
        numbers={
            "fits": trials_run.fits,
            "models_alive_at_build_max": alive,
            "search_seconds": round(seconds, 3),
            "fit_seconds": round(trials_run.fit_seconds, 3),
        },
        details={"worker": trials_run.worker},
        backend=keras.backend.backend(),
    )


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


def search_project(project, verbose: bool = True) -> Report:
    """``make tune``: the search over the project's data, model and compile."""
    from recipe_keras.compile import build_compiled, compile_as

    config = project.config
    splits = project.seeded_data()
    own = project.hook("build_trial_model")

    def build_model(hp: kt.HyperParameters) -> keras.Model:
        """One trial's compiled model: the project's model with the trial's values."""
        trial = trial_config(hp, config)
        if own is None:
            return build_compiled(project.network, splits, trial, epochs=config.tune.epochs)
        net = own(hp, splits.input_shape, splits.num_classes, trial)
        return compile_as(project.network, net, splits, trial, epochs=config.tune.epochs)

    return search(build_model, splits, config, verbose=verbose)
