"""Builders shared by the composition root (`app.services`, `app.token_services`) and the
command line, kept apart so that a CLI command building one of them imports only what it
builds, not the HTTP layer the composition root wires in."""

from __future__ import annotations

from app.config import Settings
from app.policy.sources import FileRuleSource, RuleSource
from app.security.passwords import PasswordHasher
from app.store.database import Database
from app.store.policy_rules import DatabaseRuleSource


def rule_sources(settings: Settings, db: Database) -> list[RuleSource]:
    """Where the policy's rules come from: its files, the database, or both."""
    sources: list[RuleSource] = []
    if "files" in settings.policy_source:
        sources.append(FileRuleSource(settings.policy_dir))
    if "db" in settings.policy_source:
        sources.append(DatabaseRuleSource(db.sync_engine))
    return sources


def password_hasher(settings: Settings) -> PasswordHasher:
    return PasswordHasher(
        time_cost=settings.argon2_time_cost,
        memory_kib=settings.argon2_memory_kib,
        parallelism=settings.argon2_parallelism,
        workers=settings.hash_workers or None,
        queue=settings.hash_queue,
        queue_timeout=settings.hash_queue_timeout,
    )
