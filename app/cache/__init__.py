"""Decision, permission-set and token-validation caches, and policy change propagation.

Two tiers, placed by measurement (docs/benchmarks.md): an in-process L1 first
(a dict lookup is far cheaper than any network hop) and Redis as L2 only where a hit saves
more than a Redis round trip costs (~200 µs) or where the value must be shared between
instances. Indexed decisions take a few microseconds, less than computing a cache key, so
they bypass both tiers; generic-path decisions use L1 and Redis; permission sets use L1,
and Redis on the generic path. Token validation results are not cached here: the validator
remembers verified signatures in process. Every decision key
carries the policy revision and content digest, so a change is never answered from the old
policy, whatever the cache holds.

Modules: `keys` (key names), `local` (L1), `remote` + `availability` (Redis tier, degraded
mode), `decisions`, `permissions` (the caches), `metrics`, `sync` (announce, subscribe,
poll), `warming` (activity and warming), `login_failures` (login back-off state on Redis),
`layer` (wiring for one instance).
"""
