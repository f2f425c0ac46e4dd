"""Progress lines for long work, so a person watching the terminal is never left
wondering whether anything is happening.

Keras prints one line per epoch at ``verbose=2`` (what the recipe uses, since a
progress bar fills logs with carriage returns). On a large dataset an epoch can
take minutes; ``Heartbeat`` adds a line every ``HEARTBEAT_SECONDS`` inside one.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

import keras

__all__ = ["HEARTBEAT_SECONDS", "EpochLine", "Heartbeat", "duration", "ticking", "waiting"]

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


T = TypeVar("T")


def ticking(
    items: Iterable[T],
    what: str,
    every: float = HEARTBEAT_SECONDS,
    clock: Callable[[], float] = time.monotonic,
) -> Iterator[T]:
    """``items`` as they come, with a line at most every ``every`` seconds while a
    long pass over them lasts (``what: 1200 batches, 16 s in``)."""
    start = last = clock()
    for done, item in enumerate(items, 1):
        yield item
        now = clock()
        if now - last >= every:
            last = now
            print(f"  {what}: {done} batches, {duration(now - start)} in", flush=True)


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


def _metrics(logs: dict | None) -> str:
    return ", ".join(f"{k} {float(v):.4f}" for k, v in (logs or {}).items())


class EpochLine(keras.callbacks.Callback):
    """One line per epoch where Keras prints none (``verbose=0``, as in a tuner's trials)."""

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.perf_counter() - self.start
        print(
            f"    epoch {epoch + 1}/{self.params.get('epochs')}: {_metrics(logs)} ({seconds:.1f} s)"
        )


class Heartbeat(keras.callbacks.Callback):
    """A line at most every ``every`` seconds within an epoch, a validation pass, an
    ``evaluate`` or a ``predict``: batches done (of how many, where known), time in,
    time left in this pass and the running metrics.

    Silent while each pass is shorter than ``every``, so small data prints nothing
    more than Keras's own epoch lines. ``label`` names a lone ``evaluate`` or
    ``predict`` (e.g. "test split"); ``clock`` is injectable for tests.
    """

    def __init__(
        self,
        label: str = "",
        every: float = HEARTBEAT_SECONDS,
        indent: str = "  ",
        clock: Callable[[], float] = time.monotonic,
    ):
        super().__init__()
        self.label, self.every, self.indent, self.clock = label, every, indent, clock
        self.epoch: int | None = None

    def _begin(self, what: str, total: int | None) -> None:
        self.what, self.total = what, total
        self.start = self.last = self.clock()

    def _batch(self, batch: int, logs: dict | None) -> None:
        now = self.clock()
        if now - self.last < self.every:
            return
        self.last, done, elapsed = now, batch + 1, now - self.start
        line = f"{self.indent}{self.what}: batch {done}"
        if self.total:
            line += f"/{self.total}, {duration(elapsed)} in"
            line += f", about {duration(elapsed / done * (self.total - done))} left"
        else:
            line += f", {duration(elapsed)} in"
        shown = _metrics(logs)
        print(f"{line}{', ' + shown if shown else ''}", flush=True)

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch
        self._begin(f"epoch {epoch + 1}/{self.params.get('epochs')}", self.params.get("steps"))

    def on_train_batch_end(self, batch, logs=None):
        self._batch(batch, logs)

    def on_epoch_end(self, epoch, logs=None):
        self.epoch = None

    def on_test_begin(self, logs=None):
        # Within fit this is the epoch's validation pass; its length Keras does not pass.
        if self.epoch is None:
            self._begin(self.label or "evaluate", self.params.get("steps"))
        else:
            self._begin(f"epoch {self.epoch + 1} validation", None)

    def on_test_batch_end(self, batch, logs=None):
        self._batch(batch, logs)

    def on_predict_begin(self, logs=None):
        self._begin(self.label or "predict", self.params.get("steps"))

    def on_predict_batch_end(self, batch, logs=None):
        self._batch(batch, None)
