"""recipe_keras._heap: the imports' heap frozen out of full collections for a long step."""

from __future__ import annotations

import gc
import weakref

from recipe_keras._heap import frozen_heap


class _Node:
    """An object in a reference cycle: only the cyclic collector frees it."""

    def __init__(self) -> None:
        self.me = self


def test_frozen_heap_spares_old_objects_and_still_collects_new_ones():
    assert gc.get_freeze_count() == 0
    node = _Node()
    old = weakref.ref(node)
    with frozen_heap():
        assert gc.get_freeze_count() > 0
        del node  # garbage now, made before the block
        new = weakref.ref(_Node())
        gc.collect()
        assert new() is None, "a cycle made inside the block must still be collected"
        assert old() is not None, "the heap from before the block must be exempt"
    # Given back to the collector: nothing leaks past the block.
    assert gc.get_freeze_count() == 0
    gc.collect()
    assert old() is None


def test_frozen_heap_leaves_a_callers_own_freeze_alone():
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        with frozen_heap():
            pass
        # Unfreezing here would have undone the caller's freeze (e.g. before a fork).
        assert gc.get_freeze_count() == frozen
    finally:
        gc.unfreeze()


def test_frozen_heap_as_a_decorator_freezes_each_call():
    seen = []

    @frozen_heap()
    def step() -> None:
        seen.append(gc.get_freeze_count())

    step()
    step()
    assert len(seen) == 2 and all(count > 0 for count in seen)
    assert gc.get_freeze_count() == 0
