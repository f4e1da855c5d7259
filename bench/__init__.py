"""`make bench` (`python -m bench`): oms-auth against its baselines, measured in one run.

Sections: in-process check latency per engine and policy size, cache tiers, HTTP throughput
and latency against a bare FastAPI endpoint and a naive FastAPI + casbin.Enforcer service,
1000-check batches, memory and load time with 110,000 rules. Results are printed and written
to docs/benchmarks.md with a chart. Speed targets live here, never in the test suite.
"""
