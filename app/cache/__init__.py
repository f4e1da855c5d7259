"""Decision and permission-set caches: keys, the in-process tier and what the tiers share.

Two tiers, placed by measurement (docs/benchmarks.md): an in-process L1 first
(a dict lookup is far cheaper than any network hop) and Redis as L2 only where a hit saves
more than a Redis round trip costs (~200 µs) or where the value must be shared between
instances. Indexed decisions take a few microseconds, less than computing a cache key, so
they bypass both tiers; generic-path decisions use L1 and Redis; permission sets use L1,
and Redis on the generic path. Token validation results are not cached here: the validator
remembers verified signatures in process. Every decision key
carries the policy revision and content digest, so a change is never answered from the old
policy, whatever the cache holds.

Modules here are pure: `keys` (key names), `local` (L1), `decisions`, `permissions` (the
caches and what they share), `metrics`, `ports` (the shared tier they need). The Redis side
lives in `app.adapters.redis`: `remote` + `availability` (the L2 tier, degraded mode), `sync`
(announce, subscribe, poll), `warming` (activity and warming), `layer` (wiring for one
instance).
"""
