"""Where a run's decoded splits stay between epochs, sized to the memory available.

Real datasets are larger than memory: decoded to float32 an image takes several
times its file, and a pipeline that caches every split in memory is killed with
no message once they outgrow it. ``storage_plan`` reads the memory this process may
still take (the system's, or its cgroup's) and keeps the splits in memory only when
they fit comfortably; the shuffle's block is cut to fit too.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from recipe_keras.config import DataConfig
from recipe_keras.errors import ConfigError

__all__ = [
    "MEMORY_SHARE",
    "SHUFFLE_SHARE",
    "Storage",
    "cache_folder",
    "memory_available",
    "refuse_over_memory",
    "storage_plan",
]


# The decoded splits may take this share of the memory available before "auto" keeps
# them out of it; the shuffle's block, this share.
MEMORY_SHARE = 0.25


SHUFFLE_SHARE = 1 / 16


@dataclass(frozen=True)
class Storage:
    """Where the decoded splits stay ("memory", "disk" or "none"), the shuffle's block of
    examples, and the bytes tf.data's autotuner may buffer (None: its own default)."""

    keep: str
    block: int
    ram_budget: int | None


def storage_plan(cfg: DataConfig, sizes: dict[str, int], input_shape: tuple[int, ...]) -> Storage:
    """Where the decoded splits stay, and how much of the memory available the pipeline
    may hold.

    Decoded, an example takes its float32 pixels; ``data.cache = "auto"`` keeps the
    splits in memory when they take under ``MEMORY_SHARE`` of what is available, and
    otherwise decodes them again each epoch. The shuffle holds one block of examples:
    cut to ``SHUFFLE_SHARE`` of the memory available where large images need it. The
    autotuner's prefetch buffers get ``SHUFFLE_SHARE`` too (it would take half of the
    machine's memory, not knowing the process's cgroup).
    """
    example = 4 * int(np.prod(input_shape))
    decoded = example * sum(sizes.values())
    available = memory_available()
    keep = cfg.cache
    if keep == "auto":
        keep = "memory" if available is None or decoded < MEMORY_SHARE * available else "none"
    block = cfg.shuffle_buffer
    if available is not None:
        block = max(1, min(block, int(SHUFFLE_SHARE * available) // example))
    if keep != "memory" or block < cfg.shuffle_buffer:
        room = "unknown" if available is None else f"{available / 2**30:.1f} GiB"
        print(
            f"data: the decoded splits take {decoded / 2**30:.2f} GiB, {room} of memory is "
            f"available: kept in {keep} ({'data.cache = ' + repr(cfg.cache)}), shuffled in "
            f"blocks of {block} examples",
            flush=True,
        )
    budget = None if available is None else max(1 << 20, int(SHUFFLE_SHARE * available))
    return Storage(keep, block, budget)


def refuse_over_memory(size: int, what: str, kind: str) -> None:
    """Stop in one line, rather than be killed with no message, before reading whole a
    ``kind`` ("table", "corpus") that takes ``size`` bytes: ``what`` names it."""
    available = memory_available()
    if available is not None and size > MEMORY_SHARE * available:
        raise ConfigError(
            f"{what} takes {size / 2**20:.0f} MiB, over a quarter of the memory available "
            f"({available / 2**20:.0f} MiB): a {kind} is read whole; sample it, or give a "
            "loader of your own (data.py)"
        )


def memory_available() -> int | None:
    """Bytes this process may still take: the system's available memory, or its memory
    cgroup's room where that is less (Linux); None where neither can be read."""
    found = []
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                found.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        pass
    for limit, usage in _cgroup_files():
        try:
            text = limit.read_text().strip()
            if text != "max" and int(text) < 2**60:
                found.append(int(text) - int(usage.read_text().strip()))
        except (OSError, ValueError):
            continue
    return max(0, min(found)) if found else None


def _cgroup_files() -> list[tuple[Path, Path]]:
    """(limit, usage) files of this process's memory cgroup: v2, then v1."""
    root, found = Path("/sys/fs/cgroup"), []
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return found
    for line in lines:
        _, controllers, where = line.split(":", 2)
        where = where.lstrip("/")
        if controllers == "":  # v2: one unified hierarchy
            folder = root / where
            found.append((folder / "memory.max", folder / "memory.current"))
        elif "memory" in controllers.split(","):
            folder = root / "memory" / where
            found.append((folder / "memory.limit_in_bytes", folder / "memory.usage_in_bytes"))
    return found


def cache_folder(name: str) -> Path:
    """A new file name for one pipeline's ``data.cache = "disk"`` (each pipeline its own:
    a split loaded twice must not share one), in this process's folder, which is removed
    when it exits; the folders of processes that were killed are removed first."""
    global _CACHE, _FILES
    if _CACHE is None:
        import atexit
        import shutil
        import tempfile

        base = Path(tempfile.gettempdir())
        for stale in base.glob("recipe-keras-cache-*"):
            try:
                os.kill(int(stale.name.split("-")[3]), 0)
            except (ProcessLookupError, ValueError, IndexError):
                shutil.rmtree(stale, ignore_errors=True)
            except PermissionError:  # another user's process: alive
                pass
        _CACHE = Path(tempfile.mkdtemp(prefix=f"recipe-keras-cache-{os.getpid()}-", dir=base))
        atexit.register(shutil.rmtree, _CACHE, ignore_errors=True)
    _FILES += 1
    return _CACHE / f"{name}-{_FILES}"


_CACHE: Path | None = None
_FILES = 0
