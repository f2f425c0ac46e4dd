"""The cost of `make check` as a ratio to one full `make train`, per backend.

Renders a default project (embedded digits) into a temporary folder and times
the two commands as a user runs them (whole processes, imports included),
alternating train, check, train, check ... and printing medians and the ratio.
Also the same ratio inside the processes, without the start-up both pay
(imports, data loading): the suite's seconds from check.json against train.json's
wall seconds (fit and the whole-split evaluation). The issue's goal is <= 0.3.

Usage: python benchmarks/check_cost.py [--repeats 2] [--backends tensorflow,jax,torch]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--backends", default="tensorflow,jax,torch")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from recipe_keras.new import new_project

    work = Path(tempfile.mkdtemp(prefix="check-cost-"))
    project = new_project(
        work, {"recipe_keras_requirement": f"recipe-keras @ {ROOT.as_uri()}"}, no_input=True
    )
    make = ["make", f"PYTHON={sys.executable}"]
    env = {**os.environ, "TFDS_DATA_DIR": str(work / "tfds")}
    timed([*make, "train"], project, env)  # prepare the dataset once, outside the timings
    reports = project / "reports"
    print(f"digits, default project, median of {args.repeats} alternating runs (wall seconds)")
    print(
        f"{'backend':<11} {'make train':>10} {'make check':>10} {'ratio':>6}   "
        f"{'in-process: train':>17} {'suite':>6} {'ratio':>6}"
    )
    for backend in args.backends.split(","):
        benv = {**env, "KERAS_BACKEND": backend}
        train, check, fit, suite = [], [], [], []
        for _ in range(args.repeats):
            train.append(timed([*make, "train"], project, benv))
            fit.append(json.loads((reports / "train.json").read_text())["numbers"]["wall_seconds"])
            check.append(timed([*make, "check"], project, benv))
            suite.append(json.loads((reports / "check.json").read_text())["numbers"]["seconds"])
        t, c = statistics.median(train), statistics.median(check)
        f, s = statistics.median(fit), statistics.median(suite)
        print(
            f"{backend:<11} {t:>10.1f} {c:>10.1f} {c / t:>6.2f}   "
            f"{f:>17.1f} {s:>6.1f} {s / f:>6.2f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
