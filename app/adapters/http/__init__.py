"""Starlette-bound pieces outside the routes: principal resolvers (admin API key, bearer
tokens), Authlib's request adapter, the idempotent write runner and the JSON/error responses
they answer with. `app.api` (routes) and the composition root use them; the domain does not."""
