"""The longest silence of each step: how long a person watching the terminal waits
between two lines of output, for every command of a generated project.

Renders the template's defaults into a temporary folder, installs nothing (the
project's package is put on PYTHONPATH) and runs each step with
``recipe-keras <step> --set ...`` through a pipe, stamping each line on arrival.
Prints, per step, its wall time, its line count and its longest gap with the line
that ended it. Usage::

    python benchmarks/silence.py [--backend tensorflow] [--steps inspect,check,...]
        [--set train.epochs=3 ...]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from _bench import fresh_project, machine

STEPS = "inspect,check,train,ladder,learning-curve,tune,ensemble,distill,report"


def watch(cmd: list[str], cwd: Path, env: dict) -> tuple[float, int, float, str, int]:
    """(wall s, lines, longest gap s, where it ended (s from start: the line), exit code)."""
    start = last = time.monotonic()
    proc = subprocess.Popen(
        cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines, gap, after = 0, 0.0, ""
    assert proc.stdout is not None
    for line in proc.stdout:
        now = time.monotonic()
        if now - last > gap:
            gap, after = now - last, f"{now - start:.0f} s: {line.strip()[:80]}"
        last, lines = now, lines + 1
    code = proc.wait()
    end = time.monotonic()
    if end - last > gap:
        gap, after = end - last, "(exit)"
    return end - start, lines, gap, after, code


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", default="tensorflow")
    parser.add_argument("--steps", default=STEPS)
    parser.add_argument("--set", nargs="*", default=[], dest="overrides")
    args = parser.parse_args()
    print(machine(), flush=True)
    _, project = fresh_project("silence-")
    env = {
        **os.environ,
        "KERAS_BACKEND": args.backend,
        "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": str(project),
    }
    overrides = ["--set", *args.overrides] if args.overrides else []
    print(f"backend {args.backend}, project {project}")
    print(f"{'step':16} {'wall s':>7} {'lines':>6} {'longest gap s':>14}  the gap ended at")
    worst = 0.0
    for step in args.steps.split(","):
        cmd = [sys.executable, "-m", "recipe_keras.cli", step, *overrides]
        if step == "inspect":
            cmd[4:4] = ["--config", "config.toml"]
        if step == "report":
            cmd = [sys.executable, "-m", "recipe_keras.cli", "report", "."]
        wall, lines, gap, after, code = watch(cmd, project, env)
        worst = max(worst, gap)
        flag = "" if code == 0 else f"  (exit {code})"
        print(f"{step:16} {wall:7.1f} {lines:6d} {gap:14.1f}  {after}{flag}", flush=True)
    print(f"longest silence of any step: {worst:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
