"""With OMS_AUTH_GC_FREEZE, a started server freezes its heap, so collections never rescan it."""

from __future__ import annotations

import gc

import pytest

from app.heap import GEN0_THRESHOLD, collector_paused, settle_heap


@pytest.mark.usefixtures("restored_gc")
def test_start_up_objects_are_frozen_and_young_collections_rarer() -> None:
    built_at_start = [{"rule": i} for i in range(1000)]
    gen1, gen2 = gc.get_threshold()[1:]
    settle_heap()
    assert gc.get_freeze_count() >= len(built_at_start)
    assert gc.get_threshold() == (GEN0_THRESHOLD, gen1, gen2)


def test_the_collector_is_paused_for_the_block_and_restored_after() -> None:
    assert gc.isenabled()
    with collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(RuntimeError), collector_paused():
        raise RuntimeError("a failed start-up load")
    assert gc.isenabled()


def test_a_collector_already_off_stays_off() -> None:
    gc.disable()
    try:
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()
