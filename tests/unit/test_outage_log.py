"""A retrying background job logs one warning per outage and one line when it recovers."""

from __future__ import annotations

from loguru import logger

from app.observability.outages import OutageLog


def test_one_warning_per_outage_and_one_line_at_recovery() -> None:
    seen: list[tuple[str, str, str, object]] = []
    sink = logger.add(
        lambda m: seen.append(
            (m.record["level"].name, m.record["message"], m.record["name"] or "", m.record["extra"])
        ),
        level="INFO",
    )
    try:
        outage = OutageLog("job.failed", "job.recovered")
        outage.succeeded()  # no outage: nothing said
        outage.failed("ConnectionError")
        outage.failed("ConnectionError")
        outage.succeeded()
        outage.succeeded()
        outage.failed("TimeoutError")
    finally:
        logger.remove(sink)
    assert [(level, message, extra) for level, message, _, extra in seen] == [
        ("WARNING", "job.failed", {"error": "ConnectionError"}),
        ("INFO", "job.recovered", {}),
        ("WARNING", "job.failed", {"error": "TimeoutError"}),
    ]
    assert {name for _, _, name, _ in seen} == {__name__}  # attributed to the job's module
