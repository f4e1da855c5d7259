"""Policy rules stored in the `casbin_rule` table, read through casbin-sqlalchemy-adapter."""

from __future__ import annotations

from typing import Any

import casbin
from casbin_sqlalchemy_adapter import Adapter
from sqlalchemy import Engine

from app.errors import InvalidPolicy
from app.policy.model import ModelInfo
from app.policy.rules import Rule, rule_problems
from app.store.models import CasbinRule


class DatabaseRuleSource:
    name = "db"

    def __init__(self, engine: Engine) -> None:
        # Alembic owns the schema, so the adapter must not create tables itself.
        self.adapter = Adapter(engine, db_class=CasbinRule, create_all_models=False)

    def load_rules(self, model: ModelInfo) -> list[Rule]:
        scratch: Any = casbin.Enforcer.new_model(text=model.text)
        self.adapter.load_policy(scratch)
        rules: list[Rule] = []
        for sec in ("p", "g"):
            for ptype, assertion in scratch.model.get(sec, {}).items():
                for values in assertion.policy:
                    problems = rule_problems(ptype, values, model)
                    if problems:
                        raise InvalidPolicy(
                            f"database rule {ptype}, {', '.join(values)}: {problems[0]}",
                            details={"source": "db", "rule": [ptype, *values]},
                        )
                    rules.append(Rule(ptype, tuple(values), "db"))
        return rules
