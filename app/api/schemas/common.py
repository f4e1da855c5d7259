"""Field types shared by request schemas."""

from __future__ import annotations

import unicodedata
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, Field, StringConstraints
from pydantic_core import PydanticCustomError

from app.api.errors import BATCH_TOO_LARGE


def _no_control_chars(value: str) -> str:
    if value.isprintable():  # C fast path: Cc, Cf, Zl and Zp characters are never printable
        return value
    for ch in value:
        if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp"):
            raise ValueError(f"control character U+{ord(ch):04X} is not allowed")
    return value


Identifier = Annotated[
    str,
    StringConstraints(min_length=1, max_length=255),
    AfterValidator(_no_control_chars),
    Field(examples=["alice"]),
]
"""A subject, resource, action or domain id: 1-255 characters, no control characters."""

Properties = dict[str, Any]

MAX_BATCH = 1000
"""Items per batch request (checks, evaluations, users, tokens); more is 413 REQ_002."""


def refuse_large_batch(data: Any, field: str, *, limit: int = MAX_BATCH) -> Any:
    """A `model_validator(mode="before")` body: count `field` before validating any item, so
    an oversized batch costs nothing and is answered with REQ_002, not a field error."""
    items = data.get(field) if isinstance(data, dict) else None
    if isinstance(items, list) and len(items) > limit:
        raise PydanticCustomError(
            BATCH_TOO_LARGE,
            "at most {limit} {field} per batch, got {count}",
            {"limit": limit, "field": field, "count": len(items)},
        )
    return data


class ErrorBody(BaseModel):
    code: str = Field(examples=["REQ_001"])
    message: str = Field(examples=["Request validation failed"])
    details: dict[str, Any] = Field(default_factory=dict)
    request_id: str | None = Field(default=None, examples=["req_4f0c2a9e1b7d3c5a8e6f0a1b"])


class ErrorEnvelope(BaseModel):
    error: ErrorBody
