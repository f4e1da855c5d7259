"""Logging a background job that keeps retrying: one warning per outage, one line when it
recovers, instead of a warning per attempt (a poll every second would flood the logs)."""

from __future__ import annotations

from loguru import logger


class OutageLog:
    def __init__(self, failed: str, recovered: str) -> None:
        self.failed_event = failed
        self.recovered_event = recovered
        self.failing = False

    def failed(self, error: str) -> None:
        """An attempt failed: logged if it is the first of an outage."""
        if not self.failing:
            logger.opt(depth=1).warning(self.failed_event, error=error)
        self.failing = True

    def succeeded(self) -> None:
        """An attempt succeeded: logged if it ends an outage."""
        if self.failing:
            logger.opt(depth=1).info(self.recovered_event)
        self.failing = False
