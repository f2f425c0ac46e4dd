"""One training command per project at a time.

Two ``make train`` in one project would share one backup: the second resumes the
first's unfinished epochs while the first still writes them. A command that trains
holds an exclusive lock on ``.recipe-keras.lock`` in the project's folder; the
operating system releases it when the process ends, however it ends, so a killed
run never leaves it stuck. Processes a command starts itself (``make tune
WORKERS=N``'s chief and workers) run under their parent's lock.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

from recipe_keras.errors import Busy

__all__ = ["HELD_ENV", "LOCK_FILE", "Busy", "one_run"]

LOCK_FILE = ".recipe-keras.lock"
# Set for the processes a locked command starts: they run under its lock.
HELD_ENV = "RECIPE_KERAS_LOCK_HELD"


@contextlib.contextmanager
def one_run(folder: str | os.PathLike[str], command: str) -> Iterator[None]:
    """Hold the project's lock while ``command`` runs; ``Busy`` when another holds it.

    POSIX only (``fcntl``); elsewhere it does nothing.
    """
    try:
        import fcntl
    except ImportError:  # Windows
        yield
        return
    if os.environ.get(HELD_ENV):
        yield
        return
    path = Path(folder) / LOCK_FILE
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            try:
                holder = json.loads(handle.read())
                who = (
                    f"{holder['command']} (pid {holder['pid']}, since "
                    f"{time.strftime('%H:%M:%S', time.localtime(holder['since']))})"
                )
            except (ValueError, KeyError, TypeError):
                who = "another command"
            raise Busy(
                f"{who} is running in this project; wait for it to end or stop it (its "
                "lock ends with it), then run this again"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({"command": command, "pid": os.getpid(), "since": time.time()}))
        handle.flush()
        os.environ[HELD_ENV] = str(os.getpid())
        try:
            yield
        finally:
            os.environ.pop(HELD_ENV, None)
            fcntl.flock(handle, fcntl.LOCK_UN)
