"""Decision, permission-set and token-validation caches, and policy change propagation.

Two tiers, placed by measurement (DESIGN.md §7): an in-process L1 first (a dict lookup is
far cheaper than any network hop) and Redis as L2 only where a hit saves more than a Redis
round trip costs (~200 µs) or where the value must be shared between instances. Decisions of
the indexed path take a few microseconds, less than any Redis round trip, so they bypass
both tiers; generic-path decisions, permission sets and token validation results use them.
Every decision key carries the policy revision, so a change can never be answered from the
old policy, whatever the cache holds.
"""
