"""The token section's targets never quote a row that answered errors (an error path is fast)."""

from __future__ import annotations

from bench.load import LoadResult
from bench.report import _token_targets, token_table
from bench.tokens import (
    API_KEY,
    BEARER,
    BEARER_BATCH,
    OPEN,
    OPEN_BATCH,
    VALIDATE_ROW,
    TokenReport,
    TokenRow,
)


def _row(name: str, *, errors: int = 0, per_request: int = 1) -> TokenRow:
    result = LoadResult(
        requests_per_s=1000.0, p50_ms=10.0, p99_ms=20.0, errors=errors, requests=5000, tool="wrk"
    )
    return TokenRow(name, result, 1000.0, per_request)


def _report(validate_errors: int) -> TokenReport:
    return TokenReport(
        [
            _row(OPEN),
            _row(BEARER),
            _row(API_KEY),
            _row(VALIDATE_ROW, errors=validate_errors, per_request=0),
            _row(OPEN_BATCH, per_request=1000),
            _row(BEARER_BATCH, per_request=1000),
        ],
        redis=True,
    )


def test_a_row_with_errors_makes_its_target_invalid() -> None:
    targets = {t.what: t for t in _token_targets(_report(validate_errors=2251))}
    validate = targets[f"{VALIDATE_ROW} p99 vs p50 (32 connections)"]
    assert not validate.met
    assert validate.measured == "invalid: 2,251 errors"
    assert "INVALID" in token_table(_report(validate_errors=2251))
    others = [t for w, t in targets.items() if w != validate.what]
    assert others and all(t.met for t in others)


def test_clean_rows_are_quoted() -> None:
    targets = _token_targets(_report(validate_errors=0))
    assert all(t.met and not t.measured.startswith("invalid") for t in targets)
    assert "INVALID" not in token_table(_report(validate_errors=0))
