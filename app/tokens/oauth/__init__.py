"""OAuth 2.0 protocol endpoints on Authlib's `AuthorizationServer` (RFC 6749, 7009, 7662).

Authlib's server API is synchronous: each request runs in a worker thread, and the grants
reach our async services (storage, password hashing, rate limits) through a `Bridge` back to
the event loop. Nothing here knows about FastAPI/Starlette: `app.adapters.http.oauth` does.
"""
