"""Process series that stay meaningful when several workers share one `/metrics`.

prometheus-client's own process collector reads the process that renders the page, which under
several workers is whichever worker the scrape reached. Instead every worker publishes its own
figures into the ordinary metrics (multiprocess mode then combines them): CPU seconds as a
counter (summed over every worker of this start, so it never goes backwards when one is
replaced), memory and open descriptors summed over the live workers, the oldest live worker's
start time, the number of live workers, and the worker starts (replacements included).
Values are refreshed every few seconds and whenever this worker renders `/metrics`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import time
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge

REFRESH_SECONDS = 5.0


def _boot_time() -> float | None:
    try:
        for line in Path("/proc/stat").read_text().splitlines():
            if line.startswith("btime "):
                return float(line.split()[1])
    except OSError:
        pass
    return None


def _start_time() -> float:
    """This process's start, in seconds since the epoch (from /proc when there is one)."""
    boot = _boot_time()
    try:
        stat = Path("/proc/self/stat").read_text()
        ticks = os.sysconf("SC_CLK_TCK")
        started = float(stat.rpartition(")")[2].split()[19]) / ticks
    except (OSError, ValueError, IndexError):
        return time.time()
    return boot + started if boot is not None else time.time()


def _rss_bytes() -> float:
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    return float(pages * os.sysconf("SC_PAGE_SIZE"))


def _open_fds() -> float:
    try:
        return float(len(os.listdir("/proc/self/fd")))
    except OSError:
        return float("nan")


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class ProcessMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.cpu = Counter(
            "process_cpu_seconds_total",
            "User and system CPU seconds of the service's processes (every worker of this start)",
            registry=r,
        )
        self.rss = Gauge(
            "process_resident_memory_bytes",
            "Resident memory of the live workers, summed",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.fds = Gauge(
            "process_open_fds",
            "Open file descriptors of the live workers, summed",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.start_time = Gauge(
            "process_start_time_seconds",
            "Start of the oldest live worker, seconds since the epoch",
            registry=r,
            multiprocess_mode="livemin",
        )
        self.workers = Gauge(
            "oms_auth_workers",
            "Worker processes serving requests now",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.worker_starts = Counter(
            "oms_auth_worker_starts",
            "Worker processes started (a worker replaced after a crash counts again)",
            registry=r,
        )
        self._cpu_published = 0.0
        self._started = False

    def started(self) -> None:
        """This process begins serving: count it as a worker."""
        if not self._started:
            self._started = True
            self.workers.set(1)
            self.worker_starts.inc()
            self.start_time.set(_start_time())
        self.update()

    def update(self) -> None:
        cpu = _cpu_seconds()
        if cpu > self._cpu_published:
            self.cpu.inc(cpu - self._cpu_published)
            self._cpu_published = cpu
        self.rss.set(_rss_bytes())
        self.fds.set(_open_fds())

    async def refresh_forever(self, interval: float = REFRESH_SECONDS) -> None:
        while True:
            await asyncio.sleep(interval)
            with contextlib.suppress(Exception):
                self.update()
