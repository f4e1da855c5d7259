"""Prometheus series of the token service, on the instance's own registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

_TOKEN_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1)


class TokenMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r = registry or CollectorRegistry(auto_describe=True)
        self.issued = Counter(
            "oms_auth_tokens_issued_total",
            "Tokens issued, by kind (access/refresh), grant and token version",
            ["kind", "grant", "version"],
            registry=r,
        )
        self.validations = Counter(
            "oms_auth_token_validations_total",
            "Access-token validations by result (valid or the error code)",
            ["result"],
            registry=r,
        )
        self.revocation_lookups = Counter(
            "oms_auth_revocation_lookups_total",
            "Revocation lookups by the store that answered (cache or db)",
            ["path"],
            registry=r,
        )
        self.revocations = Counter(
            "oms_auth_token_revocations_total",
            "Revoked access tokens, sessions and per-user cut-offs, by reason",
            ["reason"],
            registry=r,
        )
        self.logins = Counter(
            "oms_auth_logins_total", "Password logins by result", ["result"], registry=r
        )
        self.scope_checks = Counter(
            "oms_auth_scope_checks_total",
            "v2 checks by the path that decided (token_scope or engine) and outcome",
            ["path", "allowed"],
            registry=r,
        )
        self.alerts = Counter(
            "oms_auth_security_alerts_total",
            "Security alerts (also in the audit log as alert.<kind>), by kind",
            ["kind"],
            registry=r,
        )
        self.issue_seconds = Histogram(
            "oms_auth_token_issue_duration_seconds",
            "Time to build and sign an access token (scope computation included), by version",
            ["version"],
            buckets=_TOKEN_BUCKETS,
            registry=r,
        )
        self.validation_seconds = Histogram(
            "oms_auth_token_validation_duration_seconds",
            "Time to validate one access token (signature, claims, revocation)",
            buckets=_TOKEN_BUCKETS,
            registry=r,
        )
