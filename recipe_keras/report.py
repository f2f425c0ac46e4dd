"""The one schema of ``reports/<step>.json``: every step writes through here.

A report says which step ran, which recipe ids it covers, a verdict per id
(info / pass / warn / fail), the numbers measured and the figures drawn, plus the run's
context (backend, seed, time). Readers (tests, the HTML report) load it back
with :func:`read_report`, which checks the same shape.
"""

from __future__ import annotations

import json
import math
import os
import platform
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from recipe_keras._backend import active_backend
from recipe_keras.verdicts import Verdict

__all__ = ["SCHEMA_VERSION", "VERDICTS", "Report", "atomic_write", "read_report", "write_report"]

SCHEMA_VERSION = 1
# The verdicts a report may hold (recipe_keras.verdicts.Verdict).
VERDICTS = tuple(v.value for v in Verdict)


@dataclass
class Report:
    step: str
    recipe_ids: list[str]
    # One verdict per recipe id this step judged.
    verdicts: dict[str, str] = field(default_factory=dict)
    # Measured numbers, flat and JSON-friendly: {"test_accuracy": 0.97, ...}.
    numbers: dict[str, Any] = field(default_factory=dict)
    # Paths of figures relative to the reports folder.
    figures: list[str] = field(default_factory=list)
    # Anything else a step records (per-epoch history, the config used, ...).
    details: dict[str, Any] = field(default_factory=dict)
    # The backend that ran the step: Keras's own answer once it is imported.
    backend: str = field(default_factory=active_backend)
    created: str = field(
        default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds")
    )
    python: str = field(default_factory=platform.python_version)
    # The command's KEY=VALUE overrides of config.toml (--set, make ... ARGS=...).
    overrides: list[str] = field(default_factory=list)
    schema: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        bad = {k: v for k, v in self.verdicts.items() if v not in VERDICTS}
        if bad:
            raise ValueError(f"verdicts {bad} are not allowed; a verdict is one of {VERDICTS}")


def write_report(report: Report, reports_dir: str | os.PathLike[str]) -> Path:
    """Write ``<reports_dir>/<step>.json`` atomically (a crash never leaves half a file).

    Strict JSON: a NaN or infinite number (a loss that diverged) is written as null.
    """
    from recipe_keras.config import active_overrides

    path = Path(reports_dir) / f"{report.step}.json"
    record = asdict(report)
    record["overrides"] = record["overrides"] or active_overrides()
    text = json.dumps(_finite(record), indent=2, sort_keys=True, allow_nan=False)
    atomic_write(path, lambda tmp: tmp.write_text(text + "\n", encoding="utf-8"))
    return path


def atomic_write(path: str | os.PathLike[str], write: Callable[[Path], object]) -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then move it into place.

    An interruption or a full disk leaves ``path`` as it was (the old file, or none)
    and no temporary file behind. The temporary name keeps ``path``'s suffix, which
    writers such as Keras's ``model.save`` check.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(f".{path.stem}.*.tmp{path.suffix}"):
        _remove_if_orphaned(stale)  # left by a writer that was killed
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    try:
        write(tmp)
        os.replace(tmp, path)
    except OSError as error:
        if error.filename or not error.errno:
            raise
        # Writers such as zipfile raise ENOSPC without a file name: name the target.
        raise OSError(error.errno, os.strerror(error.errno), str(path)) from error
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def _remove_if_orphaned(tmp: Path) -> None:
    """Delete a temporary file of ``atomic_write`` whose writing process is gone."""
    try:
        pid = int(tmp.name.rsplit(".tmp", 1)[0].rsplit(".", 1)[1])
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        tmp.unlink(missing_ok=True)
    except (ValueError, IndexError, PermissionError):
        pass  # not ours, or another user's live process


def _finite(value: Any) -> Any:
    """``value`` with every NaN or infinite float replaced by None, for strict JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def read_report(path: str | os.PathLike[str]) -> Report:
    """Load a report written by :func:`write_report`."""
    raw = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: a report is a JSON object, not {type(raw).__name__}")
    if raw.get("schema") != SCHEMA_VERSION:
        raise ValueError(
            f"{path}: schema {raw.get('schema')!r} is not the supported {SCHEMA_VERSION}"
        )
    return Report(**raw)
