"""Figures drawn in a second process, so a short job does not wait for matplotlib.

``make check`` draws three figures, 0.7-0.9 s of its 5 s suite on TensorFlow
(2 vCPU), all of it Python holding the GIL: a thread gained nothing. Inside
``in_background()`` the plot functions of ``recipe_keras.figures`` (those marked
``deferrable``) send their arguments to one child process, which imports only
matplotlib and NumPy and draws them in order while the caller goes on; leaving
the block waits for the child. A figure's bytes are the same drawn there or
here (tested). One the child could not draw (it did not start, died, or the
plot raised there) is drawn here on leaving, so a bug in a plot raises with its
usual traceback, only later. After an exception in the block (Ctrl-C included)
leaving still waits for the child to draw what it has, but draws nothing here.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import importlib
import inspect
import os
import pickle
import signal
import subprocess
import sys
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path

__all__ = ["deferrable", "in_background"]

# (module, name, args, kwargs): the plot function is looked up by name in the child.
Job = tuple[str, str, tuple, dict]
# What the child runs: this very recipe_keras ({root} holds it) first on its path.
_CHILD_CODE = (
    "import sys; sys.path.insert(0, {root!r}); from recipe_keras import drawing; drawing._serve()"
)


class _Drawer:
    """One child process that draws the jobs it is sent, in order."""

    def __init__(self) -> None:
        self.sent: list[Job] = []  # in the order the child receives them
        self.here: list[Job] = []  # to draw in this process on leaving
        code = _CHILD_CODE.format(root=str(Path(__file__).resolve().parent.parent))
        try:
            self.child: subprocess.Popen | None = subprocess.Popen(
                [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE
            )
        except OSError:
            self.child = None

    def submit(self, job: Job) -> None:
        try:
            data = pickle.dumps(job, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:  # arguments that cannot travel: draw it here
            self.here.append(job)
            return
        if self.child is not None:
            try:
                self.child.stdin.write(data)
                self.child.stdin.flush()
                self.sent.append(job)
                return
            except OSError:  # the child has gone: the rest is drawn here
                self.child = None
        self.here.append(job)

    def close(self, redraw: bool) -> None:
        results: list[str | None] = []
        if self.child is not None:
            with contextlib.suppress(OSError):
                self.child.stdin.close()
            out = self.child.stdout.read()
            self.child.wait()
            with contextlib.suppress(Exception):
                results = pickle.loads(out)
        failed = [job for i, job in enumerate(self.sent) if i >= len(results) or results[i]]
        if redraw:
            for module, name, args, kwargs in failed + self.here:
                getattr(importlib.import_module(module), name)(*args, **kwargs)


_DRAWER: contextvars.ContextVar[_Drawer | None] = contextvars.ContextVar("drawer", default=None)


@contextlib.contextmanager
def in_background() -> Iterator[None]:
    """Draw the deferrable figures asked for inside the block in a child process."""
    drawer = _Drawer()
    token = _DRAWER.set(drawer)
    try:
        yield
    except BaseException:
        _DRAWER.reset(token)
        drawer.close(redraw=False)
        raise
    _DRAWER.reset(token)
    drawer.close(redraw=True)


def deferrable(plot: Callable[..., Path]) -> Callable[..., Path]:
    """A plot function with a ``path`` argument that ``in_background`` may draw elsewhere.

    Outside the block it draws as usual; inside, it returns ``Path(path)`` at once,
    and the file exists once the block is left.
    """
    signature = inspect.signature(plot)

    @functools.wraps(plot)
    def draw(*args, **kwargs) -> Path:
        drawer = _DRAWER.get()
        if drawer is None:
            return plot(*args, **kwargs)
        path = Path(signature.bind(*args, **kwargs).arguments["path"])
        drawer.submit((plot.__module__, plot.__name__, args, kwargs))
        return path

    return draw


def _serve() -> None:
    """The child: draw each job read from stdin; at its end, one pickled list of errors."""
    results = os.fdopen(os.dup(1), "wb")  # the parent reads this; prints go to stderr
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    # Ctrl-C reaches the whole process group: the parent closes stdin, and the
    # figures already asked for are still drawn.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    import recipe_keras.figures  # noqa: F401  (matplotlib's import, before the first job)

    errors: list[str | None] = []
    stdin = sys.stdin.buffer
    while True:
        try:
            module, name, args, kwargs = pickle.load(stdin)
        except EOFError:
            break
        try:
            getattr(importlib.import_module(module), name)(*args, **kwargs)
            errors.append(None)
        except Exception:
            errors.append(traceback.format_exc())
    results.write(pickle.dumps(errors))
    results.close()
