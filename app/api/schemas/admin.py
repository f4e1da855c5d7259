"""Request and response bodies of policy administration (`/api/v1/policies`, roles, audit)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, Field

from app.administration.policies import WriteResult


class RuleIn(BaseModel):
    """A rule as Casbin writes it: the ptype and its values in model order.

    Values are checked against the live model (count, effect, characters that could not be
    stored faithfully); a rule that fails is refused with RBAC_003 and the reasons.
    """

    ptype: str = Field(min_length=1, max_length=16, examples=["p"])
    rule: list[str] = Field(
        min_length=1, max_length=16, examples=[["alice", "api:schemas", "write", "allow"]]
    )

    model_config = {
        "json_schema_extra": {
            "examples": [
                {"ptype": "p", "rule": ["alice", "api:schemas", "write", "allow"]},
                {"ptype": "g", "rule": ["bob", "developer"]},
            ]
        }
    }


class RuleOut(BaseModel):
    ptype: str = Field(examples=["p"])
    rule: list[str] = Field(examples=[["alice", "api:schemas", "write", "allow"]])
    source: str | None = Field(default=None, examples=["policy.csv:17"])


class RulePage(BaseModel):
    items: list[RuleOut]
    total: int = Field(examples=[42])
    limit: int = Field(examples=[100])
    offset: int = Field(examples=[0])
    next_offset: int | None = Field(default=None, examples=[None])
    policy_revision: int = Field(examples=[7])


Revision = Annotated[int, Field(description="Revision the change committed as")]
Live = Annotated[
    bool, Field(description="The change is stored and this instance serves it already")
]
LintWarnings = Annotated[
    list[dict[str, Any]], Field(description="Lint warnings the change introduced")
]


def _change(result: WriteResult) -> dict[str, Any]:
    """The fields every answer to a policy change has."""
    return {
        "ptype": result.rule.ptype,
        "rule": list(result.rule.values),
        "policy_revision": result.revision,
        "live": result.live,
        "warnings": [f.as_dict() for f in result.warnings],
    }


class WriteOut(BaseModel):
    ptype: str = Field(examples=["p"])
    rule: list[str] = Field(examples=[["alice", "api:schemas", "write", "allow"]])
    created: bool = Field(default=True, description="False when the membership existed")
    policy_revision: Revision = Field(examples=[8])
    live: Live = True
    warnings: LintWarnings = Field(default_factory=list)

    @classmethod
    def of(cls, result: WriteResult) -> WriteOut:
        return cls(**_change(result), created=result.created)


class RemoveOut(BaseModel):
    ptype: str = Field(examples=["p"])
    rule: list[str] = Field(examples=[["auditor", "api:reports", "read", "allow"]])
    removed: bool = Field(default=True, description="Always true: the stored rule is gone")
    policy_revision: Revision = Field(examples=[9])
    live: Live = True
    still_defined_in: str | None = Field(
        default=None,
        examples=[None],
        description="Only the stored copy was removed: this file line still defines the rule",
    )
    warnings: LintWarnings = Field(default_factory=list)

    @classmethod
    def of(cls, result: WriteResult) -> RemoveOut:
        return cls(**_change(result), still_defined_in=result.still_defined_in)


class MemberOut(BaseModel):
    subject: str = Field(examples=["alice"])
    source: str = Field(examples=["policy.csv:40"])


class MembersOut(BaseModel):
    role: str = Field(examples=["developer"])
    domain: str | None = None
    members: list[MemberOut]
    effective_members: list[str] = Field(
        examples=[["alice", "carol", "client:ci-pipeline"]],
        description="Everyone holding the role, directly or through other roles",
    )
    policy_revision: int


class ReloadOut(BaseModel):
    policy_revision: int = Field(examples=[9])
    previous_revision: int | None = Field(examples=[8])
    warnings: list[dict[str, Any]] = Field(default_factory=list)


class AuditItem(BaseModel):
    id: int
    occurred_at: str = Field(examples=["2026-11-25T10:00:00.123456Z"])
    actor: str = Field(examples=["api-key:admin"])
    action: str = Field(examples=["policy.rule.added"])
    source: str = Field(examples=["api"])
    request_id: str | None = Field(default=None, examples=["req_4f0c2a9e1b7d3c5a8e6f0a1b"])
    target: str | None = Field(default=None, examples=["p, alice, api:schemas, write, allow"])
    before: Any = None
    after: Any = None
    details: Any = None


class AuditPageOut(BaseModel):
    items: list[AuditItem]
    total: int
    next_cursor: int | None = Field(
        default=None, description="Pass as `cursor` for the next (older) page"
    )
