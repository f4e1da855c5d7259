"""`python -m bench [--quick] [--no-http]`: run every section, print it, write the docs."""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

from loguru import logger

from bench import engines
from bench.cli import run_cli_startup
from bench.load import ASYNCIO_TOOL, WRK_INSTALL_HINT, wrk_available
from bench.logins import FAST_MS, run_logins
from bench.models import run_models
from bench.policies import SIZES, requests, write_policy
from bench.report import (
    EngineRow,
    Results,
    chart,
    cli_table,
    engines_table,
    http_table,
    login_table,
    models_table,
    search_table,
    targets_table,
    tiers_table,
    token_table,
    workers_table,
)
from bench.search import run_search
from bench.tiers import run_tiers
from bench.tokens import run_token_mode
from bench.web import run_http, run_memory
from bench.workers import run_workers

DOCS = Path(__file__).resolve().parents[1] / "docs"
# `--only-<name>` runs just these sections (the in-process ones run only in a full run).
SECTIONS = {
    "http": "the HTTP section (11,000 rules, decision log on/off, batches)",
    "memory": "the memory and load-time section (110,000 rules)",
    "workers": "the 1 vs 2 workers section",
    "tokens": "the token-mode section",
    "login": "the password-login section",
    "cli": "the CLI start-up section",
}


def say(text: str) -> None:
    print(text, flush=True)


def run_engines(results: Results, workdir: Path, budget: float) -> None:
    for size in SIZES:
        folder = write_policy(workdir / size.name, size)
        reqs = requests(size, 2000)
        reference = engines.ours(folder)
        expected = [reference.check(*r) for r in reqs[:200]]
        builders: list[Callable[[], engines.Engine | None]] = [
            partial(lambda engine: engine, reference),
            partial(engines.ours_generic, folder),
            partial(engines.casbin_fast, folder),
            partial(engines.casbin_enforcer, folder),
            partial(engines.cedar, size),
            partial(engines.oso_engine, size),
        ]
        for build in builders:
            engine = build()  # one at a time: each is dropped before the next is built
            if engine is None:
                continue
            slow = engine.name in ("casbin.Enforcer", "oms-auth (generic path)", "cedarpy")
            sample = reqs[:40] if slow and size.name == "large" else reqs[:200]
            mismatches = sum(engine.check(*r) != e for r, e in zip(sample, expected, strict=False))
            latency = engines.measure(engine.check, reqs, budget=budget)
            results.engines.append(
                EngineRow(
                    engine.name,
                    size.name,
                    size.rules,
                    latency.p50_us,
                    latency.p99_us,
                    latency.samples,
                    engine.load_seconds,
                    mismatches,
                )
            )
            say(f"  {size.rules:>7,} rules  {engine.name:26s} p50 {latency.p50_us:10.1f} µs")
    for name, module in (("cedarpy", "cedarpy"), ("oso", "oso")):
        try:
            __import__(module)
        except ImportError:
            results.missing.append(name)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--quick", action="store_true", help="short runs (a smoke test)")
    parser.add_argument("--no-http", action="store_true", help="skip the HTTP sections")
    parser.add_argument("--no-docs", action="store_true", help="do not rewrite docs/")
    for section, what in SECTIONS.items():
        parser.add_argument(
            f"--only-{section}",
            action="store_true",
            help=f"only {what} (implies --no-docs; may be combined)",
        )
    args = parser.parse_args()
    only = {section for section in SECTIONS if getattr(args, f"only_{section}")}
    if only:
        args.no_docs = True  # a partial run must not overwrite the full report

    def wanted(section: str) -> bool:
        return not only or section in only

    logger.remove()  # the engine's own log lines would drown the tables
    budget = 0.3 if args.quick else 1.5
    seconds, rounds = (2.0, 1) if args.quick else (5.0, 3)
    tool = "wrk" if wrk_available() else ASYNCIO_TOOL
    if not wrk_available():
        say(f"note: {WRK_INSTALL_HINT}; using the asyncio load generator instead")
    results = Results(
        machine=f"{os.cpu_count()} CPUs, {platform.platform()}, Python {platform.python_version()}",
        load_tool=tool,
    )
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="oms-auth-bench-") as tmp:
        workdir = Path(tmp)
        if not only:
            say("in-process check latency")
            run_engines(results, workdir, budget)
            say("search, 110,000 rules")
            results.search = run_search(
                write_policy(workdir / "search-large", SIZES[2]), SIZES[2], budget=budget
            )
            say("example models: generic path vs casbin.Enforcer")
            results.models = run_models(workdir, budget / 3)
            say("cache tiers (11,000 rules)")
            results.tiers = run_tiers(workdir, SIZES[1], budget=budget)
        if wanted("cli"):
            say("CLI start-up (CPU of --help and the light commands)")
            results.cli = run_cli_startup(runs=2 if args.quick else 5)
        medium = write_policy(workdir / "http-medium", SIZES[1])
        if not args.no_http and wanted("http"):
            say(f"HTTP, 11,000 rules (load: {tool})")
            results.http = run_http(
                workdir, medium, SIZES[1], seconds=seconds, rounds=rounds, log=say
            )
        if not args.no_http and wanted("memory"):
            say("memory and load time, 110,000 rules")
            large = write_policy(workdir / "http-large", SIZES[2])
            try:
                results.memory = run_memory(workdir, large, SIZES[2], seconds=seconds)
            except RuntimeError as exc:  # a server that never became ready on a busy machine
                say(f"  memory run failed: {exc}")
                results.missing.append("memory and load time (server not ready)")
        if not args.no_http and wanted("workers"):
            say("1 vs 2 workers, Redis, 11,000 rules")
            results.workers = run_workers(
                workdir, medium, SIZES[1], seconds=seconds, rounds=rounds, log=say
            )
        if not args.no_http and wanted("tokens"):
            say(f"token mode vs open mode, 11,000 rules (load: {tool})")
            medium = write_policy(workdir / "token-medium", SIZES[1])
            results.tokens = run_token_mode(
                workdir, medium, SIZES[1], seconds=seconds, rounds=rounds, log=say
            )
        if not args.no_http and wanted("login"):
            say("password logins (v2, the bounded hashing pool)")
            results.logins = run_logins(workdir, seconds=2.0 if args.quick else 8.0, log=say)
    say("")
    say(render_text(results))
    if not args.no_docs:
        DOCS.mkdir(exist_ok=True)
        has_chart = chart(results, DOCS / "benchmarks-latency.png")
        (DOCS / "benchmarks.md").write_text(render_markdown(results, has_chart))
        say(f"wrote {DOCS / 'benchmarks.md'}" + (" and the chart" if has_chart else ""))
    say(f"done in {time.monotonic() - started:.0f} s")
    return 0


def render_text(results: Results) -> str:
    parts = ["TARGETS", targets_table(results)]
    if results.engines:
        parts += ["", "IN-PROCESS CHECKS", engines_table(results)]
    if results.models:
        parts += ["", "EXAMPLE MODELS (p50 per check)", models_table(results)]
    if results.tiers:
        parts += ["", "CACHE TIERS (11,000 rules)", tiers_table(results)]
    if results.search:
        parts += ["", "SEARCH (110,000 rules)", search_table(results)]
    if results.cli:
        parts += ["", "CLI START-UP (user + sys CPU per run)", cli_table(results.cli)]
    if results.http is not None:
        parts += ["", f"HTTP, 11,000 rules (load: {results.load_tool})", http_table(results.http)]
        b = results.http.batch
        parts.append(
            f"1000-check batches: {results.http.batch_decisions_per_s:,.0f} decisions/s "
            f"(p50 {b.p50_ms:.1f} ms, p99 {b.p99_ms:.1f} ms per batch, errors {b.errors})"
        )
    if results.memory is not None:
        m = results.memory
        load = m.policy_load_seconds or float("nan")
        parts.append(
            f"110,000 rules: RSS {m.rss_mb_ready:.0f} MB ready, {m.rss_mb_loaded:.0f} MB after "
            f"load; policy load {load:.2f} s; ready in {m.ready_seconds:.1f} s "
            f"({m.ready_seconds / load:.2f}x the policy load)"
        )
    if results.workers is not None:
        w = results.workers
        parts += ["", "WORKERS (Redis, 11,000 rules, single checks)", workers_table(w), w.note]
    if results.tokens is not None:
        parts += ["", "TOKEN MODE vs OPEN MODE (11,000 rules)", token_table(results.tokens)]
    if results.logins is not None:
        parts += [
            "",
            f"PASSWORD LOGINS ({results.logins.cost}, pool {results.logins.workers} threads "
            f"+ {results.logins.queue} queued)",
            login_table(results.logins),
        ]
    if results.missing:
        parts.append(f"not measured (not installed): {', '.join(results.missing)}")
    return "\n".join(parts)


def render_markdown(results: Results, has_chart: bool) -> str:
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    sections = [
        "# Benchmarks",
        "",
        f"Generated by `make bench` ({stamp}; {results.machine}; HTTP load from "
        f"{results.load_tool}). Every figure below comes from one run on one machine, and "
        "each comparison is a ratio against a baseline measured in that same run. Numbers on "
        "a shared 2-core machine are noisy: compare ratios, not absolute values.",
        "",
        "Policies follow Casbin's published RBAC benchmark (`BenchmarkRBACModelSmall/Medium/"
        "Large`): 100 / 1,000 / 10,000 roles each allowed to read one resource, 10 users per "
        "role, so 1,100 / 11,000 / 110,000 rules, with Casbin's `rbac_model.conf`. Requests: "
        "Casbin's own benchmark request (a deny, which makes a scanning engine read every rule) "
        "followed by random ones, half to the user's own resource (allowed), half to a random "
        "resource (mostly denied). Every engine answers the same requests; `≠` counts answers "
        "that differ from oms-auth's (it must be 0).",
        "",
        "## Targets",
        "",
        targets_table(results),
        "",
        "## In-process check latency",
        "",
        "One check on the calling thread: `PolicySnapshot.decide` for oms-auth (request "
        "objects included), `enforce` for Casbin, `is_authorized` with pre-parsed policies and "
        "entities for Cedar. `load s` is the time to read and index the policy.",
        "",
        engines_table(results),
        "",
    ]
    if has_chart:
        sections += ["![check latency vs rule count](benchmarks-latency.png)", ""]
    if results.missing:
        sections += [
            f"Not measured here: {', '.join(results.missing)} (not installed; oso pins "
            "`cffi~=1.15`, which cannot share an environment with this project's cffi 2).",
            "",
        ]
    if results.search:
        sections += [
            "## Search (AuthZEN subject and resource search)",
            "",
            "`search_subjects` / `search_resources` on the 110,000-rule policy, in process: "
            "which users may read a resource (10 roles x 10 users each), which resources a "
            "user may read. Subject search walks the role links backwards from the rules that "
            "match the resource, then confirms every candidate with a real decision.",
            "",
            search_table(results),
            "",
        ]
    sections += [
        "## Every example model: the generic path against casbin.Enforcer",
        "",
        "The fidelity cases (`policies/fidelity/`, one per Casbin feature) and a generated "
        "~3,800-line pattern policy in the style of Casbin's `rbac_with_pattern_large_scale`. "
        "Same requests for every engine; Casbin gets the registration code a Casbin user "
        "writes for the model's `[functions]`. `decide` is the path the service takes "
        "(indexed where the model's shape allows); `generic` is the matcher compiled to "
        "bytecode and run over every rule; the ratio is generic / Casbin (below 1: faster).",
        "",
        models_table(results),
        "",
    ]
    sections += [
        "## Where the caches sit, and why",
        "",
        "Measured through the real `DecisionService` / permission cache, 11,000 rules, Redis "
        "on loopback. An indexed check costs less than computing a cache key, so putting any "
        "tier in front of it makes it slower, and Redis makes it ~40x slower: indexed "
        "decisions bypass both tiers. A generic-path check scans every rule (milliseconds): "
        "L1 and Redis each cut that by orders of magnitude, and Redis shares the work between "
        "instances. Permission sets follow the same split: L1 always, Redis only on the "
        "generic path.",
        "",
        tiers_table(results),
        "",
    ]
    if results.http is not None:
        h = results.http
        sections += [
            "## HTTP, 11,000 rules",
            "",
            "Each server is one uvicorn worker (uvloop, httptools) started the way `oms-auth "
            "serve` starts it, on loopback; the load generator takes the other core. The "
            "*FastAPI floor* is a bare FastAPI endpoint returning constant JSON; the *naive* "
            "service is FastAPI + a plain `casbin.Enforcer` on the same policy, without cache. "
            "Warm figures are medians of interleaved rounds after a warm-up over the same "
            "1,000 requests; *cold* is a freshly started instance asked about subjects it has "
            "never seen. oms-auth logs every request (JSON access log) and records metrics; "
            "the floor does neither. "
            f"Redis {'was' if h.redis else 'was not'} configured for oms-auth.",
            "",
            http_table(h),
            "",
            f"1000-check batches (`/api/v1/authz/check/batch`, 4 connections): "
            f"**{h.batch_decisions_per_s:,.0f} decisions/s** (p50 {h.batch.p50_ms:.1f} ms, "
            f"p99 {h.batch.p99_ms:.1f} ms per batch).",
            "",
        ]
    if results.memory is not None:
        m = results.memory
        sections += [
            "## Memory and load time, 110,000 rules",
            "",
            f"One instance serving the large policy: RSS {m.rss_mb_ready:.0f} MB when ready, "
            f"{m.rss_mb_loaded:.0f} MB after a load run; policy read + index "
            f"{m.policy_load_seconds or float('nan'):.2f} s; process start to ready "
            f"{m.ready_seconds:.1f} s (interpreter start, migrations check, policy load).",
            "",
        ]
    if results.workers is not None:
        w = results.workers
        sections += [
            "## 1 vs 2 workers",
            "",
            "`oms-auth serve --workers N` with Redis, 11,000 rules, single checks from 32 "
            "connections. *decisions/CPU-s* divides the decisions answered by the CPU seconds "
            "the server's whole process group (supervisor and workers, from /proc) spent in "
            "the same run: what a core of server buys, whatever the load generator takes. "
            f"{w.note}.",
            "",
            workers_table(w),
            "",
        ]
    if results.tokens is not None:
        sections += [
            "## Token mode against open mode, 11,000 rules",
            "",
            "Two oms-auth servers in the same run, same policy, same Redis: "
            "`OMS_AUTH_DECISION_AUTH=open` and `token`. The token server is asked with a bearer "
            "JWT (client credentials) and with `X-API-Key`, and validates another token at "
            "`/api/v1/tokens/validate` as a resource server does, authenticated by its own "
            "client-credentials token; its check limit is raised so every check is charged "
            "but none refused. A row with errors (any non-2xx answer) measured an error path: "
            "its targets are marked invalid. *decisions / CPU-s* divides the decisions "
            "answered by the CPU time (user + system, from `/proc`) the server process used "
            "meanwhile: the load generator shares the cores, so req/s alone also measures how "
            "much CPU the server was left. Single checks use 32 connections, 1000-check "
            "batches 4. Each ratio is against open mode's row of the same kind in this run.",
            "",
            token_table(results.tokens),
            "",
        ]
    if results.cli:
        sections += [
            "## CLI start-up",
            "",
            "CPU time (user + system, from `getrusage` of the child) of `oms-auth` for `--help` "
            "and the commands that need neither the database nor the engine. The service's "
            "libraries (SQLAlchemy, FastAPI, Authlib, Casbin, Redis, the settings model) are "
            "imported by the commands that use them; `tests/unit/test_cli_startup.py` checks "
            "which modules each of these commands imports.",
            "",
            cli_table(results.cli),
            "",
        ]
    if results.logins is not None:
        lg = results.logins
        sections += [
            "## Password logins per core",
            "",
            f"`POST /api/v2/auth/login` on one oms-auth server at the configured cost "
            f"({lg.cost}; hashing pool of {lg.workers} threads, {lg.queue} waiting at most). "
            "*argon2 alone* is the same verification run in the benchmark's own process, by "
            "as many threads at once as the pool has: the ceiling of logins per CPU-second. "
            "*At capacity*, twice as many clients as pool "
            "threads log in back to back; *logins / CPU-s* divides the logins by the CPU time "
            "(user + system, from `/proc`) the server process used meanwhile, i.e. logins per "
            "second per core of server. *Overloaded*, more clients than the pool and its "
            "queue hold, arriving over the first second: the excess must be refused at once "
            "with 503 `SYS_003` and `Retry-After` while the pool keeps logging people in. "
            "The clients honour `Retry-After` plus up to a second of random jitter (it is "
            "whole seconds: without jitter, every client told the same value returns in the "
            "same instant, and the one-process generator then measures its own queue). "
            f"*fast 503* is the share of the logins that did not succeed which were refused "
            f"within {FAST_MS:.0f} ms; *other* counts any other outcome (a timeout, another "
            "status).",
            "",
            login_table(lg),
            "",
        ]
    sections += [
        "## How the hot path is kept lean",
        "",
        "- Indexed evaluation (`app/policy/indexed.py`): rules grouped by (subject, domain, "
        "action), exact resources in a dict and keyMatch patterns by prefix; a check costs "
        "(roles of the subject) x (actions) x (distinct prefix lengths) lookups. The oracle "
        "test holds it to plain Casbin's decisions and explain output.",
        "- The decision routes answer through a fast lane in the request-context middleware "
        "(`app/api/fastlane.py`): the documented routes' own models and handlers, without "
        "FastAPI's dependency and response-model machinery; anything unusual goes to the "
        "documented route, so errors and OpenAPI are unchanged.",
        "- Token mode takes the same lane: `admit_decision_caller` (`app/api/principals.py`) "
        "authenticates the caller and charges its checks for the lane and the documented "
        "routes alike. A token seen before skips decoding and claim parsing (its key, expiry, "
        "device binding and revocation are checked again); the revocation lookup and the "
        "check-limit charge share one Redis pipeline (`RedisBatcher`), and neither asks Redis "
        "again for `OMS_AUTH_CALLER_CACHE_SECONDS` (1 s; revocations are also announced on "
        "pub/sub, which ends the window at once). No route depends on a sync function. "
        "Token validation takes the lane too, once `admit_validation_caller` has admitted "
        "its caller (a client or an administrator).",
        "- Once started, the serving process freezes its heap (`gc.freeze()`, "
        "`app/heap.py`, with `OMS_AUTH_GC_FREEZE=true`) and raises the young generation's "
        "threshold: the cyclic collector no longer rescans what start-up built, which "
        "paused the event loop for tens of milliseconds under load.",
        "- Plain 1000-check batches (string ids, no explanations) are read with orjson "
        "straight into the engine's requests, without a pydantic model per item; anything "
        "else goes through the model, so errors keep their envelopes.",
        "- The access log line is written directly while the JSON sink is loguru's only sink "
        "(same line, about a fifth of the cost); metric children are looked up once.",
        "- Snapshots are frozen out of the cyclic GC after each load (`gc.freeze()`, "
        "`OMS_AUTH_GC_FREEZE=true`), which otherwise rescans millions of long-lived objects "
        "as requests allocate.",
        "",
        "Run it: `make bench` (installs the `bench` extra: matplotlib, cedarpy). HTTP load "
        "comes from `wrk` (installed with `apt-get` when missing and run as root); otherwise "
        "from a keep-alive "
        "HTTP/1.1 client on `asyncio.Protocol` under uvloop (`bench/load.py`), which takes the "
        "core the server does not use, like wrk would. Either way the load generator shares "
        "this 2-core machine with the server: ratios from one run are what to compare.",
        "",
    ]
    return "\n".join(sections)


if __name__ == "__main__":
    sys.exit(main())
