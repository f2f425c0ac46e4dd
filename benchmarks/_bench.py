"""What the in-process benchmarks share: a quiet config with every output in a
temporary folder, and one child process per backend (Keras picks its backend once)."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path


def machine() -> str:
    """The CPU the numbers come from: model, cores this process may use, and the vector
    extensions that decide which backend is fastest (AVX2, AVX-512, AMX)."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and value.strip():
                model = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
    except OSError:  # not Linux: the model only
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    found = {"AVX2": "avx2", "AVX-512": "avx512f", "AMX": "amx_tile"}
    extensions = ", ".join(
        f"{name} {'yes' if flag in flags else 'no'}" for name, flag in found.items()
    )
    return f"machine: {model}, {cores} cores; {extensions if flags else 'extensions unknown'}"


def quiet_config(epochs: int, **sections: dict):
    """A config that trains ``epochs`` silently, its outputs under a fresh temp folder."""
    from recipe_keras.config import from_dict

    out = tempfile.mkdtemp(prefix="bench-")
    raw = {
        "train": {
            "epochs": epochs,
            "verbose": 0,
            "reports_dir": f"{out}/reports",
            "model_path": f"{out}/model.keras",
            "backup_dir": f"{out}/backup",
            "best_model_path": f"{out}/best.keras",
        }
    }
    for name, values in sections.items():
        raw.setdefault(name, {}).update({k: v.format(out=out) for k, v in values.items()})
    return from_dict(raw)


def report(result: dict) -> None:
    """What a child prints for its parent."""
    print("RESULT " + json.dumps(result))


def per_backend(script: str, backends: str, *args: str) -> Iterator[tuple[str, dict]]:
    """Run ``script --child args`` once per backend; yield (backend, its result)."""
    for backend in backends.split(","):
        proc = subprocess.run(
            [sys.executable, script, "--child", *args],
            env={**os.environ, "KERAS_BACKEND": backend},
            capture_output=True,
            text=True,
            check=True,
        )
        line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT "))
        yield backend, json.loads(line[len("RESULT ") :])


def fresh_project(prefix: str) -> tuple[Path, Path]:
    """(a new temporary folder, the template's defaults rendered in it)."""
    out = Path(tempfile.mkdtemp(prefix=prefix))
    subprocess.run(
        [sys.executable, "-m", "recipe_keras.cli", "new", "--no-input", "--output-dir", str(out)],
        check=True,
        capture_output=True,
    )
    (project,) = [p for p in out.iterdir() if p.is_dir()]
    return out, project
