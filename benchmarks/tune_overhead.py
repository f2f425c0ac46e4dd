"""KerasTuner's own cost in `make tune`: search time minus the trials' fit time, as a share.

Runs a random search (by default what `make tune` does on a fresh project: the
CNN on the embedded digits, 5 epochs per trial; here 8 trials) per
backend in a fresh process, and reads the search's wall time and the summed
`fit` time of its trials from tune.json. What remains is the tuner: building
and compiling each trial's model, its checkpoints, the oracle's bookkeeping.
Also prints the process's peak memory after the first and the last trial: a
leak between trials would show as growth. The issue's goal is <= 5%.

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

ROOT = Path(__file__).resolve().parent.parent

TRIAL = """
import sys
sys.path.insert(0, {root!r})
from recipe_keras import data, models
from recipe_keras.config import from_dict
from recipe_keras.seed import set_seed
from recipe_keras.train import compile_model
from recipe_keras.tune import search

work = {work!r}
config = from_dict({{
    "model": {{"name": {model!r}}},
    "train": {{"reports_dir": work + "/reports"}},
    "tune": {{"trials": {trials}, "epochs": {epochs}, "directory": work + "/tune"}},
}})
set_seed(config.seed)
splits = data.load_splits(config.data, config.seed)
search(
    lambda c: compile_model(
        models.build(c.model.name, splits.input_shape, 10, c.model.width, c.model.dropout),
        c.train,
    ),
    splits, config, verbose=False,
)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="tensorflow,jax,torch")
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=5, help="per trial (tune.epochs)")
    parser.add_argument("--model", default="cnn", help="zoo model (model.name)")
    args = parser.parse_args()
    header = f"{'backend':<11} {'search s':>9} {'fit s':>7} {'tuner s':>8} {'overhead':>9}"
    print(header + "  peak RSS MiB after trial 1 -> last")
    for backend in args.backends.split(","):
        work = tempfile.mkdtemp(prefix="tune-overhead-")
        code = TRIAL.format(
            root=str(ROOT), work=work, trials=args.trials, epochs=args.epochs, model=args.model
        )
        env = {**os.environ, "KERAS_BACKEND": backend}
        subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True)
        report = json.loads((Path(work) / "reports" / "tune.json").read_text())
        n, rss = report["numbers"], report["details"]["peak_rss_mb_after_each_trial"]
        tuner = n["search_seconds"] - n["fit_seconds"]
        print(
            f"{backend:<11} {n['search_seconds']:>9.2f} {n['fit_seconds']:>7.2f} "
            f"{tuner:>8.2f} {tuner / n['search_seconds']:>9.1%}  {rss[0]:.0f} -> {rss[-1]:.0f}"
        )


if __name__ == "__main__":
    main()
