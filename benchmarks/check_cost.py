"""The cost of `make check` as a ratio to one full `make train`, per backend.

Renders a default project (embedded digits) into a temporary folder and times
the two commands as a user runs them (whole processes, imports included),
alternating train, check, train, check ... and printing medians. Ratios:
- suite / make train: the suite's own seconds (check.json) against the whole
  `make train` command. This is the issue's goal (<= 0.3);
- make check / make train: both whole processes, so both pay the imports
  (8-12 s here);
- suite / fit: against train.json's fit and evaluation seconds, without the
  start-up both pay.
JAX runs twice: with the project's compile cache warm (the usual case from the
second run on), and cold, with an empty cache for every command (a first run).
Then each check's seconds (median), to show where the suite's time goes.

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
        f"{'backend':<16} {'make train':>10} {'make check':>10} {'ratio':>6}   "
        f"{'suite':>6} {'/ make train':>12}   {'fit':>5} {'suite / fit':>11}"
    )
    per_check: dict[str, dict[str, float]] = {}
    for backend in args.backends.split(","):
        for cold in (False, True) if backend == "jax" else (False,):
            name = f"{backend} (cold)" if cold else backend
            train, check, fit, suite, checks = [], [], [], [], {}
            for _ in range(args.repeats):
                benv = {**env, "KERAS_BACKEND": backend}
                if cold:  # a new, empty compile cache for each command: a first run
                    benv["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(dir=work)
                train.append(timed([*make, "train"], project, benv))
                report = json.loads((reports / "train.json").read_text())
                fit.append(report["numbers"]["wall_seconds"])
                if cold:
                    benv["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(dir=work)
                check.append(timed([*make, "check"], project, benv))
                report = json.loads((reports / "check.json").read_text())
                suite.append(report["numbers"]["seconds"])
                for c in report["details"]["checks"]:
                    checks.setdefault(f"{c['recipe_id']} {c['name'].split(' (')[0]}", []).append(
                        c["seconds"]
                    )
            t, c = statistics.median(train), statistics.median(check)
            f, s = statistics.median(fit), statistics.median(suite)
            per_check[name] = {k: statistics.median(v) for k, v in checks.items()}
            print(
                f"{name:<16} {t:>10.1f} {c:>10.1f} {c / t:>6.2f}   "
                f"{s:>6.1f} {s / t:>12.2f}   {f:>5.1f} {s / f:>11.2f}",
                flush=True,
            )
    print("\nseconds per check (median; R2.7 includes the training R2.9 and R2.11 reuse)")
    names = list(per_check)
    print(f"{'check':<52} " + " ".join(f"{n:>16}" for n in names))
    for check_name in per_check[names[0]]:
        cells = " ".join(f"{per_check[n].get(check_name, float('nan')):>16.2f}" for n in names)
        print(f"{check_name[:52]:<52} {cells}")


if __name__ == "__main__":
    main()
