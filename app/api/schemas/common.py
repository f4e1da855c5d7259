"""Field types shared by request schemas."""

from __future__ import annotations

import math
import unicodedata
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, Field, StringConstraints
from pydantic_core import PydanticCustomError

from app.api.errors import BATCH_TOO_LARGE


def _no_control_chars(value: str) -> str:
    if value.isprintable():  # C fast path: Cc, Cf, Zl and Zp characters are never printable
        return value
    for ch in value:
        category = unicodedata.category(ch)
        if category == "Cs":
            raise ValueError(f"lone surrogate U+{ord(ch):04X} is not allowed")
        if category in ("Cc", "Cf", "Zl", "Zp"):
            raise ValueError(f"control character U+{ord(ch):04X} is not allowed")
    return value


Identifier = Annotated[
    str,
    StringConstraints(min_length=1, max_length=255),
    AfterValidator(_no_control_chars),
    Field(examples=["alice"]),
]
"""A subject, resource, action or domain id: 1-255 characters, no control characters."""

MAX_PROPERTY_DEPTH = 32
MAX_PROPERTY_NODES = 10_000
MAX_PROPERTY_KEY = 255
MAX_PROPERTY_STRING = 65_536


def _has_surrogate(text: str) -> bool:
    return not text.isprintable() and any("\ud800" <= ch <= "\udfff" for ch in text)


def check_properties(value: dict[str, Any]) -> dict[str, Any]:
    """Entity properties are JSON the engine can read and the cache can key: at most
    `MAX_PROPERTY_DEPTH` levels and `MAX_PROPERTY_NODES` values, keys up to 255 and strings
    up to 64 KiB characters, no lone surrogates, only finite numbers (NaN would compare
    unequal to itself in a matcher and collapse into `null` in any JSON encoding)."""
    budget = [MAX_PROPERTY_NODES]

    def walk(node: Any, depth: int) -> None:
        budget[0] -= 1
        if budget[0] < 0:
            raise ValueError(f"properties hold more than {MAX_PROPERTY_NODES} values")
        if depth > MAX_PROPERTY_DEPTH:
            raise ValueError(f"properties nest deeper than {MAX_PROPERTY_DEPTH} levels")
        if isinstance(node, str):
            if len(node) > MAX_PROPERTY_STRING:
                raise ValueError(f"a property string exceeds {MAX_PROPERTY_STRING} characters")
            if _has_surrogate(node):
                raise ValueError("a property string holds a lone surrogate")
        elif isinstance(node, float):
            if not math.isfinite(node):
                raise ValueError("property numbers must be finite (no NaN or Infinity)")
        elif isinstance(node, dict):
            for key, item in node.items():
                if not isinstance(key, str) or len(key) > MAX_PROPERTY_KEY:
                    raise ValueError(f"property names are strings of at most {MAX_PROPERTY_KEY}")
                if _has_surrogate(key):
                    raise ValueError("a property name holds a lone surrogate")
                walk(item, depth + 1)
        elif isinstance(node, list):
            for item in node:
                walk(item, depth + 1)
        elif node is not None and not isinstance(node, bool | int):
            raise ValueError(f"unsupported property value of type {type(node).__name__}")

    walk(value, 1)
    return value


Properties = Annotated[dict[str, Any], AfterValidator(check_properties)]

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
