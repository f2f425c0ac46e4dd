"""KerasTuner's own cost in `make tune`: search time minus the trials' own work, as a share.

Runs a random search (by default what `make tune` does on a fresh project: the
CNN on the embedded digits, 5 epochs per trial; here 8 trials) per backend in a
fresh process and reads from tune.json the search's wall time, the summed time
of its trials' `fit` calls and the summed time of building their models (the
project's build_model(hp), compile included). What remains is the tuner:
KerasTuner's session clears, per-epoch checkpoints, oracle files and trial
bookkeeping, and recipe_keras's wrapper. "vs fit" counts the builds as overhead
too: an upper bound.

Also prints how many models of earlier trials were alive at any build (a leak
shows as growth; 1 is KerasTuner's first build, see tune.LEAK_ALIVE) and the
process's peak memory after the first and the last trial. The goal is <= 5%.

Usage: python benchmarks/tune_overhead.py [--backends tensorflow,jax,torch] [--trials 8]
       [--model cnn] [--epochs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from _bench import machine

ROOT = Path(__file__).resolve().parent.parent

SEARCH = """
import sys
sys.path.insert(0, {root!r})
from recipe_keras import data, models
from recipe_keras.config import from_dict
from recipe_keras.seed import set_seed
from recipe_keras.train import compile_model
from recipe_keras.tune import search, trial_config

work = {work!r}
config = from_dict({{
    "model": {{"name": {model!r}}},
    "train": {{"reports_dir": work + "/reports"}},
    "tune": {{"trials": {trials}, "epochs": {epochs}, "directory": work + "/tune"}},
}})
set_seed(config.seed)
splits = data.load_splits(config.data, config.seed)

def build_model(hp):
    c = trial_config(hp, config)
    net = models.build(c.model.name, splits.input_shape, 10, c.model.width, c.model.dropout)
    return compile_model(net, c.train)

search(build_model, splits, config, verbose=False)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="tensorflow,jax,torch")
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=5, help="per trial (tune.epochs)")
    parser.add_argument("--model", default="cnn", help="zoo model (model.name)")
    args = parser.parse_args()
    print(machine(), flush=True)
    print(
        f"{'backend':<11} {'search s':>9} {'build s':>8} {'fit s':>7} {'tuner s':>8} "
        f"{'overhead':>9} {'vs fit':>7} {'alive':>6}  peak RSS MiB after trial 1 -> last"
    )
    for backend in args.backends.split(","):
        work = tempfile.mkdtemp(prefix="tune-overhead-")
        code = SEARCH.format(
            root=str(ROOT), work=work, trials=args.trials, epochs=args.epochs, model=args.model
        )
        env = {**os.environ, "KERAS_BACKEND": backend}
        subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True)
        report = json.loads((Path(work) / "reports" / "tune.json").read_text())
        n, rss = report["numbers"], report["details"]["peak_rss_mb_after_each_trial"]
        search, fit, build = n["search_seconds"], n["fit_seconds"], n["build_seconds"]
        tuner = search - fit - build
        print(
            f"{backend:<11} {search:>9.2f} {build:>8.2f} {fit:>7.2f} {tuner:>8.2f} "
            f"{tuner / search:>9.1%} {(search - fit) / search:>7.1%} "
            f"{n['models_alive_at_build_max']:>6}  {rss[0]:.0f} -> {rss[-1]:.0f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
