"""OAuth2 tokens: identities, scope-carrying JWT access tokens, refresh, revocation.

The package is the domain core: it imports neither FastAPI nor SQLAlchemy nor redis. Storage
and Redis sit behind the small interfaces of `ports`; the Authlib `AuthorizationServer`
adapter for FastAPI/Starlette is `app.adapters.http.oauth`.

    accounts     who may log in (argon2id, equal timing for unknown users), user admin
    scopes       which `resource:action` scopes a subject gets, and what a scope covers
    keys         signing keys: generation, at-rest encryption, rotation, JWKS
    jose         JWS encoding and header checks (joserfc)
    claims       RFC 9068 access-token claims: building and validating them
    issuer       issuing access + refresh tokens, refresh rotation with reuse detection
    revocation   revoked tokens and sessions, per-user cut-offs: DB durable, cache fast path
    validator    validating one or many access tokens
    staleness    cutting off tokens whose holder's roles or permissions changed
    rotation     refresh-token rotation and reuse detection
    refresh_tokens  opaque refresh tokens, stored only as SHA-256
    checks       v2 checks answered from the bearer token's scope
    scope_checks v2 decisions for a bearer token: its scope first, then the engine
    grant_types  the OAuth grant types this server supports
    models       records the service reads and writes, independent of storage
    metrics      token metrics
    service      the token service the API calls
    oauth/       Authlib grants and endpoints (its FastAPI adapter: `app.adapters.http.oauth`)
    metadata     RFC 8414 authorization server metadata
    ports        the storage and cache interfaces the package depends on
"""
