"""Process-wide garbage-collector policy for the server process (opt-in, never a library call).

The engine never touches `gc`; the app's lifespan applies these only when
`OMS_AUTH_GC_FREEZE` is on (the deploy files and the benchmarked servers turn it on; an app
embedded in another process leaves that process's collector alone): the collector paused
for the start-up load (nothing is served yet), then the freezes (every worker of a group
runs its own lifespan, so each freezes its own heap).
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """The cyclic collector off for the block (then as it was before).

    The start-up policy load allocates millions of long-lived objects; the collector, which
    a growing heap keeps triggering, would rescan them again and again while they are built:
    measured at 110,000 rules, the load took 3.9-4.3 s with it and 2.3-2.6 s without, the
    first third of the start-up. The lifespan pauses it only while nothing is served yet,
    never around a reload under traffic."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


async def freeze_after_load(snapshot: object, trigger: str) -> None:
    """A policy listener for servers with `OMS_AUTH_GC_FREEZE=true`: one full collection,
    then everything alive is frozen out of the cyclic garbage collector.

    A snapshot is millions of long-lived objects at large policy sizes; the collector would
    rescan them all as requests allocate (measured: a third of a 1000-check batch at 110,000
    rules). Frozen, they are skipped. A replaced snapshot holds no reference cycles (tested),
    so reference counting frees it; the full collection (~60 ms at 110,000 rules, on the event
    loop) reclaims any cyclic garbage the previous load froze. Process-wide, so only the
    server opts in, never the engine.
    """
    gc.unfreeze()
    gc.collect()
    gc.freeze()


# The young generation's threshold once the heap is frozen: the default (700) runs the
# collector every few requests; a frozen heap leaves it nothing old to scan, so fewer, larger
# young collections cost less and pause no longer than a fraction of a millisecond.
GEN0_THRESHOLD = 10_000


def settle_heap() -> None:
    """Freeze what start-up built (settings, the app, the token service, pools, the policy)
    so the cyclic collector never rescans it: unfrozen, a gen-1/gen-2 collection under load
    walked all of it and paused the event loop for tens of milliseconds, the p99 tail."""
    gc.collect()
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(GEN0_THRESHOLD, gen1, gen2)
