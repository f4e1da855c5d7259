"""Service settings: environment variables with the `OMS_AUTH_` prefix over embedded defaults.

The defaults run the whole service on one machine with nothing else installed (an SQLite
file and in-process caches). Every value is validated when the settings are built, so a bad
value stops the process at start with one line naming the variable, never later.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.addresses import Network, parse_cluster_url, parse_networks, parse_sentinel_url

SigningAlg = Literal["RS256", "ES256", "EdDSA"]
PolicySource = Literal["files", "db", "files+db"]
IPNetwork = Network
Environment = Literal["development", "test", "production"]

_SUPPORTED_DB_SCHEMES = ("sqlite", "postgresql")
_SENSITIVE_FIELD_WORDS = ("key", "secret", "password", "url", "admin")


class ConfigError(Exception):
    """A setting is missing or invalid; the message is one line meant for an operator."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OMS_AUTH_", extra="ignore", frozen=True)

    environment: Environment = "development"
    service_name: str = Field(default="oms-auth", pattern=r"^[a-z0-9][a-z0-9._-]{0,62}$")
    host: str = "127.0.0.1"
    port: int = Field(default=8001, ge=1, le=65535)
    # Worker processes of `oms-auth serve` (one supervisor restarts any that dies). More than
    # one needs Redis: rate limits and change announcements are shared through it.
    workers: int = Field(default=1, ge=1, le=256)

    database_url: str = "sqlite:///./var/oms_auth.db"
    # Per process: PostgreSQL sees workers x instances x (pool + overflow) connections.
    db_pool_size: int = Field(default=10, ge=1, le=200)
    db_max_overflow: int = Field(default=10, ge=0, le=200)
    # How long a request waits for a pooled connection before 503 SYS_001.
    db_pool_timeout: float = Field(default=3.0, gt=0, le=60)
    redis_url: str | None = None
    redis_pool_size: int = Field(default=50, ge=1, le=1000)
    # How long a command waits for a pooled Redis connection when all are busy.
    redis_pool_timeout: float = Field(default=0.5, gt=0, le=30)

    policy_dir: Path = Path("policies")
    policy_source: PolicySource = "files+db"
    policy_watch: bool = True
    policy_poll_interval: float = Field(default=1.0, gt=0, le=60)

    issuer: str = "http://127.0.0.1:8001"
    audience: str = "oms-api"
    access_token_ttl: int = Field(default=900, ge=30, le=86_400)
    refresh_token_ttl: int = Field(default=14 * 86_400, ge=60, le=365 * 86_400)
    # Seconds after a rotation in which presenting the rotated refresh token again (a retry
    # whose answer was lost) returns the same successor instead of revoking the session.
    refresh_reuse_grace: float = Field(default=5.0, ge=0, le=300)
    signing_alg: SigningAlg = "RS256"
    key_dir: Path | None = None
    encryption_key: SecretStr | None = None
    bootstrap_admin: SecretStr | None = None
    # The policy role the bootstrap admin is given (a `g` rule in the database), so its
    # roles, v2 scope and admin flag agree. Empty = the admin flag only.
    bootstrap_admin_role: str = Field(default="admin", pattern=r"^([A-Za-z0-9_.@+:-]{1,255})?$")
    admin_api_key: SecretStr | None = None
    # None = on in production, off elsewhere; set it to false explicitly to serve plain HTTP
    # in production (logged at start).
    require_https: bool | None = None
    # Proxies whose X-Forwarded-For / X-Forwarded-Proto are believed (comma-separated CIDRs
    # or addresses). Empty: forwarded headers are ignored and the peer is the client.
    trusted_proxies: str = ""
    # argon2id cost for user passwords (RFC 9106 "low memory" profile by default).
    argon2_time_cost: int = Field(default=3, ge=1, le=20)
    argon2_memory_kib: int = Field(default=65_536, ge=1024, le=4 * 1024 * 1024)
    argon2_parallelism: int = Field(default=4, ge=1, le=16)
    # Admission control of password hashing (logins, password grants): threads hashing at
    # once (0 = one per core, at most 4), jobs waiting for one, and the longest wait; beyond
    # either, 503 SYS_003 with Retry-After instead of queueing.
    hash_workers: int = Field(default=0, ge=0, le=64)
    hash_queue: int = Field(default=16, ge=0, le=10_000)
    hash_queue_timeout: float = Field(default=2.0, gt=0, le=60)
    # How often an instance looks for signing keys rotated elsewhere (CLI, another instance).
    key_reload_interval: float = Field(default=5.0, gt=0, le=3600)

    cache_version: str = Field(default="v1", pattern=r"^[a-z0-9]{1,16}$")
    decision_cache_ttl: int = Field(default=60, ge=0, le=86_400)
    decision_cache_size: int = Field(default=100_000, ge=0)
    permission_cache_ttl: int = Field(default=600, ge=0, le=86_400)
    permission_cache_size: int = Field(default=10_000, ge=0)
    cache_warm_subjects: int = Field(default=100, ge=0, le=10_000)

    rate_limit_login_ip: str = "10/minute"
    rate_limit_login_user: str = "5/minute"
    rate_limit_refresh: str = "20/hour"
    # Per-account back-off (app.security.login_guard): failures allowed before waiting, the
    # first wait (doubled per further failure), the longest wait, and how many failures of
    # one account raise a `login_burst` alert.
    login_free_failures: int = Field(default=5, ge=1, le=1000)
    login_backoff_base: float = Field(default=1.0, ge=0.1, le=3600)
    login_backoff_max: float = Field(default=900.0, ge=1, le=86_400)
    login_alert_every: int = Field(default=20, ge=0, le=100_000)
    # Checks per authenticated caller: end-user tokens, and services (client-credentials
    # tokens, API keys). A service sending 1000-check batches at full speed stays under it.
    rate_limit_check: str = "1000/minute"
    rate_limit_check_service: str = "10000000/minute"
    # How long a process trusts what Redis last told it about a decision caller: its token's
    # revocation state and its check-limit usage (0 = ask Redis on every request).
    caller_cache_seconds: float = Field(default=1.0, ge=0, le=10)
    # Who may ask for decisions and permission listings: "open" (like OPA and Cerbos: any
    # caller that reaches the port, for deployments behind network controls) or "token" (a
    # bearer token or the admin API key; checks are then rate limited per caller). Unset =
    # "token" in production, "open" elsewhere.
    decision_auth: Literal["open", "token"] | None = None

    max_body_bytes: int = Field(default=2 * 1024 * 1024, ge=1024)
    # An incoming X-Request-ID up to this many bytes is echoed verbatim; longer ones are
    # replaced by a generated id. Logs get a sanitised copy.
    request_id_max_bytes: int = Field(default=1024, ge=16, le=8192)
    # AuthZEN evaluations: add `context` (decision_id, policy_revision) to every item unless
    # the request's `options.include_context` says otherwise.
    authzen_item_context: bool = True
    # How long the first answer to an admin write with an Idempotency-Key is replayed.
    idempotency_ttl: int = Field(default=86_400, ge=60, le=30 * 86_400)

    # Seconds a stopping server lets requests in flight finish before cancelling them.
    shutdown_timeout: int = Field(default=10, ge=1, le=600)
    # Seconds an idle keep-alive connection stays open. Longer than a proxy's or load
    # balancer's upstream idle timeout (nginx 60 s, AWS ALB 60 s), so the proxy always closes
    # first: a server closing a connection the proxy is reusing fails that request with a
    # 502. Longer than the longest Retry-After (60 s), so a client coming back when told to
    # finds its connection open.
    keep_alive_timeout: int = Field(default=75, ge=1, le=3600)
    # After each policy load, freeze the process's objects out of the cyclic garbage
    # collector (`gc.freeze()`): large policies then cost no collector time per request.
    gc_freeze: bool = False
    # Seconds between background checks of the database and Redis (reported by /readyz).
    health_check_interval: float = Field(default=2.0, gt=0, le=300)

    # Decision logs (every check as one JSON record, written off the request path).
    decision_log_enabled: bool = False
    decision_log_path: str | None = None  # JSON-lines file, "-" = stdout, unset = none
    decision_log_allow_sample_rate: float = Field(default=1.0, ge=0.0, le=1.0)
    decision_log_mask: str = ""  # comma-separated dotted fields, e.g. "subject,caller"
    decision_log_queue_size: int = Field(default=10_000, ge=1, le=10_000_000)
    decision_log_recent: int = Field(default=10_000, ge=1, le=1_000_000)
    decision_log_push_url: str | None = None  # OPA-style batched HTTP push endpoint
    decision_log_push_buffer: int = Field(default=10_000, ge=1, le=10_000_000)
    decision_log_push_batch: int = Field(default=500, ge=1, le=100_000)
    decision_log_flush_interval: float = Field(default=0.2, gt=0, le=60)

    # Audit trail: days of events kept (0 = forever); the service purges once an hour.
    audit_retention_days: int = Field(default=0, ge=0, le=36_500)
    audit_queue_size: int = Field(default=10_000, ge=1, le=1_000_000)

    # In-app detection (per instance): raise audited alert.* events and a metric.
    alert_login_failures_per_account: int = Field(default=10, ge=1)
    alert_login_failures_per_address: int = Field(default=30, ge=1)
    alert_login_window: float = Field(default=60.0, gt=0, le=86_400)
    alert_permission_changes: int = Field(default=50, ge=1)
    alert_permission_window: float = Field(default=60.0, gt=0, le=86_400)

    log_level: Literal["TRACE", "DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # JSON lines for machines; unset = JSON unless stdout is a terminal (then a readable
    # console format and a start banner).
    log_json: bool | None = None

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        scheme = value.split(":", 1)[0].split("+", 1)[0]
        if scheme not in _SUPPORTED_DB_SCHEMES or "://" not in value:
            raise ValueError("must be sqlite:///PATH or postgresql+psycopg://USER@HOST/DB")
        return value

    @field_validator("redis_url")
    @classmethod
    def _known_redis(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        schemes = ("redis://", "rediss://", "unix://", "redis+sentinel://", "redis+cluster://")
        if not value.startswith(schemes):
            raise ValueError(
                "must be redis://HOST:PORT/DB, rediss://..., unix://..., "
                "redis+sentinel://HOST:PORT[,HOST:PORT...]/SERVICE[/DB] or "
                "redis+cluster://HOST:PORT[,HOST:PORT...]"
            )
        if value.startswith("redis+sentinel://"):
            parse_sentinel_url(value)  # raises ValueError with the reason
        if value.startswith("redis+cluster://"):
            parse_cluster_url(value)
        return value

    @field_validator(
        "rate_limit_login_ip",
        "rate_limit_login_user",
        "rate_limit_refresh",
        "rate_limit_check",
        "rate_limit_check_service",
    )
    @classmethod
    def _rate_limit_syntax(cls, value: str) -> str:
        from limits import parse

        try:
            parse(value)
        except ValueError:
            raise ValueError("must look like '10/minute' or '1000 per hour'") from None
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _trusted_proxies_are_networks(cls, value: str) -> str:
        parse_networks(value.split(","))
        return value

    @field_validator("issuer")
    @classmethod
    def _issuer_is_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL")
        return value.rstrip("/")

    @field_validator("bootstrap_admin")
    @classmethod
    def _bootstrap_admin_spec(cls, value: SecretStr | None) -> SecretStr | None:
        from app.security.names import InvalidName, check_username
        from app.security.passwords import WeakPassword, check_password_policy

        if value is None:
            return None
        username, sep, password = value.get_secret_value().partition(":")
        if not sep:
            raise ValueError("must be username:password")
        try:
            check_username(username)
            check_password_policy(password)
        except (InvalidName, WeakPassword) as exc:
            raise ValueError(str(exc)) from None
        return value

    @model_validator(mode="after")
    def _workers_share_redis(self) -> Settings:
        if self.workers > 1 and self.redis_url is None:
            raise ValueError(
                f"OMS_AUTH_WORKERS={self.workers} needs OMS_AUTH_REDIS_URL: without Redis each "
                "worker would count rate limits on its own"
            )
        return self

    @model_validator(mode="after")
    def _production_is_hardened(self) -> Settings:
        if self.environment != "production":
            return self
        if self.encryption_key is None:
            raise ValueError(
                "OMS_AUTH_ENCRYPTION_KEY is required when OMS_AUTH_ENVIRONMENT=production"
            )
        from app.security.secrets import check_secret_strength

        check_secret_strength("OMS_AUTH_ENCRYPTION_KEY", self.encryption_key.get_secret_value())
        if self.admin_api_key is not None:
            check_secret_strength("OMS_AUTH_ADMIN_API_KEY", self.admin_api_key.get_secret_value())
        if not self.issuer.startswith("https://"):
            raise ValueError(
                "OMS_AUTH_ISSUER must be https:// when OMS_AUTH_ENVIRONMENT=production"
            )
        return self

    @property
    def decision_auth_mode(self) -> Literal["open", "token"]:
        if self.decision_auth is not None:
            return self.decision_auth
        return "token" if self.environment == "production" else "open"

    @property
    def logs_as_json(self) -> bool:
        if self.log_json is not None:
            return self.log_json
        import sys

        return not sys.stdout.isatty()

    @property
    def https_required(self) -> bool:
        if self.require_https is not None:
            return self.require_https
        return self.environment == "production"

    @property
    def trusted_proxy_networks(self) -> tuple[IPNetwork, ...]:
        return parse_networks(self.trusted_proxies.split(","))

    @property
    def decision_log_mask_fields(self) -> tuple[str, ...]:
        return tuple(f.strip() for f in self.decision_log_mask.split(",") if f.strip())

    @property
    def redis_enabled(self) -> bool:
        return self.redis_url is not None

    @property
    def key_prefix(self) -> str:
        """Prefix of every cache key: `{service}:{version}`."""
        return f"{self.service_name}:{self.cache_version}"


ENV_PREFIX = "OMS_AUTH_"
# Variables with the prefix that are not settings of the service (the test suite's own).
_NOT_SETTINGS = ("OMS_AUTH_TEST_",)


def unknown_variables(environ: Mapping[str, str] | None = None) -> list[str]:
    """`OMS_AUTH_*` variables that name no setting (a typo is otherwise silently ignored),
    each with the closest setting when one is near: `OMS_AUTH_DATABSE_URL (did you mean
    OMS_AUTH_DATABASE_URL?)`."""
    import difflib
    import os

    known = [ENV_PREFIX + name.upper() for name in Settings.model_fields]
    found = []
    for name in sorted(os.environ if environ is None else environ):
        upper = name.upper()
        if not upper.startswith(ENV_PREFIX) or upper.startswith(_NOT_SETTINGS):
            continue
        if upper in known:
            continue
        close = difflib.get_close_matches(upper, known, n=1, cutoff=0.75)
        found.append(f"{name} (did you mean {close[0]}?)" if close else name)
    return found


def load_settings(**overrides: object) -> Settings:
    """Build settings from the environment, turning validation errors into one line.

    An unknown `OMS_AUTH_*` variable stops a production instance here; elsewhere it is
    reported as a warning at start (see `unknown_variables`)."""
    try:
        settings = Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc)) from None
    if settings.environment == "production":
        unknown = unknown_variables()
        if unknown:
            raise ConfigError(
                f"unknown setting {', '.join(unknown)}: remove or correct it "
                "(refused when OMS_AUTH_ENVIRONMENT=production)"
            )
    return settings


def describe_validation_error(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"])
        name = f"OMS_AUTH_{field.upper()}" if field else "settings"
        value = err.get("input")
        secret = any(word in field for word in _SENSITIVE_FIELD_WORDS)
        shown = "" if secret or not field or isinstance(value, dict) else f" (got {value!r})"
        parts.append(f"{name}: {err['msg']}{shown}")
    return "invalid configuration: " + "; ".join(parts)
