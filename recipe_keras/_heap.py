"""Long steps run with the heap the imports left frozen out of Python's full collections.

TensorFlow's, JAX's and Keras's imports leave millions of objects that the cyclic
garbage collector tracks; each full (generation-2) collection walks them all, in
a JAX `make check` and in each of KerasTuner's ``clear_session`` calls (the
benchmarks page has the measurements). Freezing them for a step exempts them, while every object
the step makes is still collected as usual.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["frozen_heap"]


@contextmanager
def frozen_heap() -> Iterator[None]:
    """Freeze what exists now for the block, and give it back to the collector after.

    A heap frozen already (by an outer block, or a caller's own ``gc.freeze()`` before
    forking) is left as it is: unfreezing it here would undo the caller's.
    """
    if gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
