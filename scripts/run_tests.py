"""Run the whole suite: the backend-free tests and one pytest per Keras backend, in parallel.

Keras chooses its backend once per process, so tests marked ``backend`` run in
three pytest processes with KERAS_BACKEND set, side by side with the rest.
Each run's output is printed when it ends, then one closing line summed over
all runs. Extra arguments go to every pytest (e.g. ``-m "not slow"``, ``-x``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

BACKENDS = ("tensorflow", "jax", "torch")
# Each run ends with its slowest tests and their seconds.
DURATIONS = ("--durations=15",)
ROOT = Path(__file__).resolve().parent.parent


def main(extra: list[str]) -> int:
    logs = Path(tempfile.mkdtemp(prefix="recipe-keras-tests-"))
    marker = next((extra[i + 1] for i, a in enumerate(extra[:-1]) if a == "-m"), None)
    extra = [a for i, a in enumerate(extra) if a != "-m" and (i == 0 or extra[i - 1] != "-m")]

    def select(base: str) -> list[str]:
        return ["-m", f"({base}) and ({marker})" if marker else base]

    runs = {"no backend": ({}, select("not backend"))}
    for backend in BACKENDS:
        runs[backend] = ({"KERAS_BACKEND": backend}, select("backend"))
    procs = {}
    for name, (env, selection) in runs.items():
        junit = logs / f"{name.replace(' ', '-')}.xml"
        log = (logs / f"{name.replace(' ', '-')}.log").open("w")
        cmd = [
            sys.executable,
            "-m",
            "pytest",
            *selection,
            f"--junitxml={junit}",
            *DURATIONS,
            *extra,
        ]
        print(f"started  [{name}]: {' '.join(cmd[1:])}", flush=True)
        proc = subprocess.Popen(
            cmd, cwd=ROOT, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT
        )
        procs[name] = (proc, log, junit, time.monotonic())

    totals = {"passed": 0, "failed": 0, "skipped": 0}
    failed_runs = []
    for name, (proc, log, junit, start) in procs.items():
        code = proc.wait()
        log.close()
        print(f"\n===== [{name}] exit {code} after {time.monotonic() - start:.0f} s =====")
        print(Path(log.name).read_text(), flush=True)
        counts = _counts(junit)
        for key in totals:
            totals[key] += counts[key]
        # pytest's 5 means no test ran: a selection that matches nothing is a broken suite.
        if code != 0:
            failed_runs.append(name)
    summary = f"{totals['passed']} passed, {totals['failed']} failed, {totals['skipped']} skipped"
    if failed_runs:
        print(f"failing runs: {', '.join(failed_runs)} (logs in {logs})")
    print(summary)
    return 1 if failed_runs else 0


def _counts(junit: Path) -> dict[str, int]:
    if not junit.is_file():
        return {"passed": 0, "failed": 1, "skipped": 0}
    suite = ET.parse(junit).getroot()
    suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
    tests, skipped = int(suite.get("tests", 0)), int(suite.get("skipped", 0))
    failed = int(suite.get("failures", 0)) + int(suite.get("errors", 0))
    return {"passed": tests - skipped - failed, "failed": failed, "skipped": skipped}


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
