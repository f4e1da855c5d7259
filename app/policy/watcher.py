"""Watch the policy folder and report edits of the files the service loads.

`watchfiles` (inotify on Linux, polling elsewhere) reports a burst of writes as one change set
about 50 ms after the last write, so an editor's save (or `git checkout`) becomes one reload.
Only `model.conf` and `*.csv` directly in the folder count, plus Kubernetes' `..data` symlink
swap when the folder is a mounted ConfigMap.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from pathlib import Path

from loguru import logger
from watchfiles import Change, awatch

from app.policy.sources import MODEL_FILE

OnChange = Callable[[list[str]], Awaitable[None]]


class PolicyWatcher:
    def __init__(self, policy_dir: Path, on_change: OnChange, *, step_ms: int = 50) -> None:
        self.policy_dir = policy_dir.resolve()
        self.on_change = on_change
        self.step_ms = step_ms
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def relevant(self, change: Change, path: str) -> bool:
        p = Path(path)
        if p.parent != self.policy_dir:
            return False
        return p.name == MODEL_FILE or p.suffix == ".csv" or p.name.startswith("..data")

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="policy-watcher")

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
            logger.info("policy.watch.stopped", path=str(self.policy_dir))

    async def _run(self) -> None:
        logger.info("policy.watch.started", path=str(self.policy_dir))
        while not self._stop.is_set():
            try:
                async for changes in awatch(
                    self.policy_dir,
                    watch_filter=self.relevant,
                    stop_event=self._stop,
                    step=self.step_ms,
                    recursive=False,
                ):
                    names = sorted({Path(p).name for _, p in changes})
                    try:
                        await self.on_change(names)
                    except Exception:
                        logger.exception("policy.watch.handler_failed", files=names)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the folder vanished, inotify limits, ...
                logger.warning("policy.watch.failed", path=str(self.policy_dir), error=str(exc))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), timeout=1.0)
