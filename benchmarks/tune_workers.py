"""Distributed tuning (R5.3): trials per hour with 2 local workers against 1.

Renders the template's defaults into a temporary folder and runs the same random
search three ways, side by side in one run: one process alone on one core (plain
``make tune``), a chief with 1 worker on one core, and a chief with 2 workers on
a core each (every worker one thread). Each line of output is stamped on arrival.

Two rates per row: the search's (trials over the time from the first trial's start
to the last trial's end) and the command's (trials over the whole wall time,
with every process's Keras import and KerasTuner's 20 s poll before the chief
exits). Usage::

    python benchmarks/tune_workers.py [--backend tensorflow] [--trials 12] [--epochs 3]
        [--repeats 1]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _bench import fresh_project, machine

START = re.compile(r"^(?:tuner\d+: )?trial \d+ (?:\(its|of )")
DONE = re.compile(r"^(?:tuner\d+: trial \d+ done|  trial done)")

# Runs `launch` (or plain tune) on the given cores; the search's command follows.
LAUNCHER = """
import os, sys
from recipe_keras.workers import launch
workers, cores, command = int(sys.argv[1]), [int(c) for c in sys.argv[2].split(",")], sys.argv[3:]
if workers == 0:
    os.sched_setaffinity(0, cores)
    os.execv(command[0], command)
sys.exit(launch(command, workers, cores=cores))
"""


def run(project: Path, env: dict, workers: int, cores: list[int], search: list[str]):
    """(trials, search seconds, wall seconds) of one search from a fresh directory."""
    cmd = [sys.executable, "-c", LAUNCHER, str(workers), ",".join(map(str, cores)), *search]
    start = time.monotonic()
    proc = subprocess.Popen(
        cmd, cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    first = last = None
    trials = 0
    tail = []
    assert proc.stdout is not None
    for line in proc.stdout:
        now = time.monotonic()
        tail = [*tail[-30:], line]
        if START.match(line) and first is None:
            first = now
        if DONE.match(line):
            last, trials = now, trials + 1
    code = proc.wait()
    wall = time.monotonic() - start
    if code != 0 or first is None or last is None:
        raise SystemExit(f"the search failed ({code}):\n{''.join(tail)}")
    return trials, last - first, wall


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", default="tensorflow")
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    print(machine(), flush=True)
    if len(os.sched_getaffinity(0)) < 2:
        raise SystemExit("needs 2 cores")
    out, project = fresh_project("tune-workers-")
    env = {
        **os.environ,
        "PYTHONPATH": str(project),
        "KERAS_BACKEND": args.backend,
        "PYTHONUNBUFFERED": "1",
        # The one-process row gets one thread too (the launcher sets these per worker).
        "OMP_NUM_THREADS": "1",
        "TF_NUM_INTRAOP_THREADS": "1",
        "TF_NUM_INTEROP_THREADS": "1",
    }
    for key in ("KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT", "KERASTUNER_TUNER_ID"):
        env.pop(key, None)
    # The data prepared once before the timed runs.
    subprocess.run(
        [
            sys.executable,
            "-m",
            "recipe_keras.cli",
            "inspect",
            "--data",
            "digits",
            "--limit",
            "10",
            "--out",
            str(out / "inspect"),
        ],
        cwd=project,
        env=env,
        check=True,
        capture_output=True,
    )
    configs = [
        ("one process, 1 core", 0, [0]),
        ("chief + 1 worker, 1 core", 1, [0]),
        ("chief + 2 workers, 1 core each", 2, [0, 1]),
    ]
    times: dict[str, list[tuple[int, float, float]]] = {label: [] for label, _, _ in configs}
    for round_ in range(args.repeats):  # the rows alternate: a slow spell hits each round
        for label, workers, cores in configs:
            name = f"{label.replace(' ', '_')}_{round_}"  # a fresh search each time
            search = [
                sys.executable,
                "-m",
                "recipe_keras.cli",
                "tune",
                "--set",
                f"tune.trials={args.trials}",
                f"tune.epochs={args.epochs}",
                f"tune.directory={out / name}",
                f"train.reports_dir={out / ('reports_' + name)}",
            ]
            trials, searching, wall = run(project, env, workers, cores, search)
            times[label].append((trials, searching, wall))
            print(
                f"round {round_ + 1}, {label}: {trials} trials, search {searching:.1f} s, "
                f"command {wall:.1f} s",
                flush=True,
            )
    print(f"\n{args.backend}, {args.trials} trials of {args.epochs} epochs (digits, default model)")
    print(f"medians of {args.repeats} rounds; ratios are each round's, 2 workers over 1")
    print(f"{'':32} {'trials/h (search)':>18} {'trials/h (command)':>19}")
    for label, runs in times.items():
        search_rate = statistics.median(t / s * 3600 for t, s, _ in runs)
        command_rate = statistics.median(t / w * 3600 for t, _, w in runs)
        print(f"{label:32} {search_rate:18.0f} {command_rate:19.0f}")
    one, two = times[configs[1][0]], times[configs[2][0]]
    for name, at in (("search", 1), ("command", 2)):
        ratios = [(b[0] / b[at]) / (a[0] / a[at]) for a, b in zip(one, two, strict=True)]
        print(
            f"2 workers / 1 worker ({name}): {statistics.median(ratios):.2f}x "
            f"(rounds: {', '.join(f'{r:.2f}' for r in ratios)})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
