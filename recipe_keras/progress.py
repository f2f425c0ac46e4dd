"""Progress lines for long work, so a person watching the terminal is never left
wondering whether anything is happening. Standard library only.

One ``Progress`` line serves every long pass: an epoch or an evaluation
(``callbacks.Heartbeat``), reading a split (``make inspect``), reading labels
(``ticking``). ``waiting`` covers one silent call (a scikit-learn fit).
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

__all__ = ["HEARTBEAT_SECONDS", "Progress", "duration", "ticking", "waiting"]

# At most this long without a line inside an epoch, an evaluation or a prediction.
HEARTBEAT_SECONDS = 8.0


def duration(seconds: float) -> str:
    """``42 s``, ``3 min 5 s``, ``2 h 10 min``."""
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


class Progress:
    """One pass's progress: ``what: 250/1000 examples, 125/s, 2 s in, about 6 s left``.

    ``update`` prints at most every ``every`` seconds; with ``bar`` on a terminal the
    line also shows a bar and is redrawn in place twice a second (a log gets a new
    line every ``every`` seconds instead). ``total`` None: a pass of unknown length.
    ``clock`` is injectable for tests.
    """

    WIDTH = 20

    def __init__(
        self,
        what: str,
        total: int | None = None,
        unit: str = "batches",
        *,
        every: float = HEARTBEAT_SECONDS,
        indent: str = "  ",
        bar: bool = False,
        rate: bool = False,
        quiet: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.what, self.total, self.unit, self.indent = what, total, unit, indent
        self.bar, self.rate, self.quiet, self.clock = bar, rate, quiet, clock
        self.tty = bar and sys.stdout.isatty()
        self.every = 0.5 if self.tty else every
        self.start = self.last = clock()

    def line(self, done: int, elapsed: float, extra: str = "", final: bool = False) -> str:
        count = f"{done}/{self.total}" if self.total else str(done)
        if self.bar and self.total:
            filled = min(self.WIDTH, self.WIDTH * done // self.total)
            count = f"[{'#' * filled}{'.' * (self.WIDTH - filled)}] {count}"
        parts = [f"{self.indent}{self.what}: {count} {self.unit}"]
        if self.rate:
            parts.append(f"{done / elapsed if elapsed > 0 else 0.0:,.0f}/s")
        parts.append(f"{duration(elapsed)} in")
        if self.total and not final and done:
            parts.append(f"about {duration(elapsed / done * (self.total - done))} left")
        return ", ".join([*parts, *([extra] if extra else [])])

    def update(self, done: int, extra: str = "", final: bool = False) -> None:
        now = self.clock()
        if self.quiet or (not final and now - self.last < self.every):
            return
        self.last = now
        end = "\r" if self.tty and not final else "\n"
        print(self.line(done, now - self.start, extra, final), end=end, flush=True)


T = TypeVar("T")


def ticking(
    items: Iterable[T],
    what: str,
    every: float = HEARTBEAT_SECONDS,
    clock: Callable[[], float] = time.monotonic,
) -> Iterator[T]:
    """``items`` as they come, with a line at most every ``every`` seconds while a
    long pass over them lasts (``what: 1200 batches, 16 s in``)."""
    progress = Progress(what, every=every, clock=clock)
    for done, item in enumerate(items, 1):
        yield item
        progress.update(done)


@contextlib.contextmanager
def waiting(what: str, every: float = HEARTBEAT_SECONDS) -> Iterator[None]:
    """A line every ``every`` seconds while one call that prints nothing runs (a
    scikit-learn fit): ``what: still running, 16 s in``. From a daemon thread, which
    stops when the block ends, however it ends."""
    done = threading.Event()
    start = time.monotonic()

    def tick() -> None:
        while not done.wait(every):
            print(f"  {what}: still running, {duration(time.monotonic() - start)} in", flush=True)

    thread = threading.Thread(target=tick, name=f"waiting: {what}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
