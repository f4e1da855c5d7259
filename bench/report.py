"""Tables for the terminal and docs/benchmarks.md, and the latency chart."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from bench.cli import BUDGET_S, CliRow
from bench.logins import FAST_MS, LoginPhase, LoginReport, percentile
from bench.models import ModelRow
from bench.policies import SIZES
from bench.search import SearchRow
from bench.tiers import TierRow
from bench.tokens import (
    API_KEY,
    BEARER,
    BEARER_BATCH,
    OPEN_BATCH,
    VALIDATE_ROW,
    TokenReport,
    TokenRow,
)
from bench.web import HttpReport, MemoryReport
from bench.workers import WorkersReport


@dataclass
class EngineRow:
    engine: str
    size: str
    rules: int
    p50_us: float
    p99_us: float
    samples: int
    load_seconds: float
    mismatches: int  # decisions differing from oms-auth on the same requests


@dataclass
class Results:
    machine: str
    load_tool: str
    engines: list[EngineRow] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    tiers: list[TierRow] = field(default_factory=list)
    http: HttpReport | None = None
    memory: MemoryReport | None = None
    workers: WorkersReport | None = None
    search: list[SearchRow] = field(default_factory=list)
    tokens: TokenReport | None = None
    models: list[ModelRow] = field(default_factory=list)
    logins: LoginReport | None = None
    cli: list[CliRow] = field(default_factory=list)


def table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |"
    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    body = [
        "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in rows
    ]
    return "\n".join([line, rule, *body])


def _num(value: float, digits: int = 1) -> str:
    return f"{value:,.{digits}f}"


def engines_table(results: Results) -> str:
    ours = {r.size: r for r in results.engines if r.engine == "oms-auth (indexed)"}
    rows = []
    for r in results.engines:
        ratio = r.p50_us / ours[r.size].p50_us if r.size in ours else float("nan")
        rows.append(
            [
                r.engine,
                f"{r.rules:,}",
                _num(r.p50_us),
                _num(r.p99_us),
                f"{ratio:,.1f}x",
                _num(r.load_seconds, 2),
                f"{r.samples:,}",
                str(r.mismatches),
            ]
        )
    header = ["engine", "rules", "p50 µs", "p99 µs", "p50 vs oms-auth", "load s", "samples", "≠"]
    return table(header, rows)


def tiers_table(results: Results) -> str:
    rows = [
        [t.path, t.tier, _num(t.p50_us), _num(t.p99_us), f"{t.samples:,}"] for t in results.tiers
    ]
    return table(["what", "tier", "p50 µs", "p99 µs", "samples"], rows)


def http_table(report: HttpReport) -> str:
    floor = next(r for r in report.rows if r.name.startswith("FastAPI floor"))
    naive = next(r for r in report.rows if r.name.startswith("naive"))
    rows = []
    for row in report.rows:
        rps = row.result.requests_per_s
        rows.append(
            [
                row.name,
                _num(rps, 0),
                _num(row.result.p50_ms, 2),
                _num(row.result.p99_ms, 2),
                f"{rps / floor.result.requests_per_s:.0%}",
                f"{rps / naive.result.requests_per_s:,.1f}x",
                str(row.result.errors),
            ]
        )
    header = ["server / route", "req/s", "p50 ms", "p99 ms", "vs floor", "vs naive", "errors"]
    return table(header, rows)


def token_table(report: TokenReport) -> str:
    """Each row against open mode's row of its kind (single checks or batches), same run."""
    singles = report.open
    batches = report.row(OPEN_BATCH)
    rows = []
    for row in report.rows:
        base = batches if row.decisions_per_request == 1000 else singles
        r = row.result
        comparable = row.decisions_per_request > 0
        rows.append(
            [
                row.name + (" (INVALID: errors)" if r.errors else ""),
                _num(r.requests_per_s, 0),
                f"{r.requests_per_s / base.result.requests_per_s:.2f}x" if comparable else "-",
                _num(row.decisions_per_cpu_second, 0) if comparable else "-",
                (
                    f"{row.decisions_per_cpu_second / base.decisions_per_cpu_second:.2f}x"
                    if comparable
                    else "-"
                ),
                _num(r.p50_ms, 2),
                _num(r.p99_ms, 2),
                f"{r.p99_ms / r.p50_ms:.1f}x" if r.p50_ms > 0 else "-",
                str(r.errors),
            ]
        )
    header = [
        "route",
        "req/s",
        "vs open",
        "decisions / CPU-s",
        "vs open",
        "p50 ms",
        "p99 ms",
        "p99/p50",
        "errors",
    ]
    return table(header, rows)


def _token_target(
    what: str, goal: str, rows: tuple[TokenRow, ...], measured: str, met: bool
) -> Target:
    """A row with errors (any non-2xx answer) measured an error path, not the route: none of
    its figures is quoted against a target, which is then invalid (not met)."""
    errors = sum(r.result.errors for r in rows)
    if errors:
        return Target(what, goal, f"invalid: {errors:,} errors", False)
    return Target(what, goal, measured, met)


def _token_targets(report: TokenReport) -> list[Target]:
    """Targets of the token section; a row with errors (any non-2xx) makes its targets invalid."""
    out: list[Target] = []
    base = report.open
    for name in (BEARER, API_KEY):
        row = report.row(name)
        rps = row.result.requests_per_s / base.result.requests_per_s
        cpu = row.decisions_per_cpu_second / base.decisions_per_cpu_second
        label = name.removeprefix("token mode, check ")
        pair = (base, row)
        out.append(
            _token_target(
                f"token check {label} vs open, req/s", "≥ 0.8x", pair, f"{rps:.2f}x", rps >= 0.8
            )
        )
        out.append(
            _token_target(
                f"token check {label} vs open, decisions/CPU-s",
                "≥ 0.8x",
                pair,
                f"{cpu:.2f}x",
                cpu >= 0.8,
            )
        )
    for name in (VALIDATE_ROW, BEARER):
        row = report.row(name)
        r = row.result
        spread = r.p99_ms / r.p50_ms if r.p50_ms > 0 else float("inf")
        out.append(
            _token_target(
                f"{name} p99 vs p50 (32 connections)",
                "≤ 5x",
                (row,),
                f"{spread:.1f}x",
                spread <= 5,
            )
        )
    batches = (report.row(OPEN_BATCH), report.row(BEARER_BATCH))
    batch = batches[1].result.requests_per_s / batches[0].result.requests_per_s
    out.append(
        _token_target(
            "token 1000-check batch vs open, req/s",
            "≥ 0.8x",
            batches,
            f"{batch:.2f}x",
            batch >= 0.8,
        )
    )
    return out


def login_table(report: LoginReport) -> str:
    """argon2 alone, then the server at capacity and overloaded (same cost, same run)."""
    base = report.argon2_per_cpu_s

    def phase_row(name: str, p: LoginPhase) -> list[str]:
        return [
            name,
            str(p.clients),
            _num(p.logins_per_s),
            _num(p.cores, 2),
            _num(p.logins_per_cpu_s),
            f"{p.logins_per_cpu_s / base:.2f}x",
            _num(percentile(p.ok_ms, 0.5), 0),
            _num(percentile(p.ok_ms, 0.99), 0),
            f"{p.refused_share:.0%}",
            _num(percentile(p.refused_ms, 0.99), 1) if p.refused_ms else "-",
            f"{p.fast_503_share:.1%}" if p.refused_ms or p.other else "-",
            p.outcomes(),
        ]

    rows = [
        # as many hashing threads as the server's pool (the clients column counts them)
        ["argon2 alone (in process)", str(report.workers), "-", "-", _num(base), "1.00x"]
        + ["-"] * 6,
        phase_row("server, at capacity", report.capacity),
        phase_row("server, overloaded", report.overload),
    ]
    header = [
        "logins",
        "clients",
        "logins/s",
        "server cores",
        "logins / CPU-s",
        "vs argon2",
        "p50 ms",
        "p99 ms",
        "503",
        "503 p99 ms",
        f"fast 503 (≤ {FAST_MS:.0f} ms)",
        "other",
    ]
    return table(header, rows)


def cli_table(rows: list[CliRow]) -> str:
    body = [[r.command, f"{r.median_cpu_s:.3f}", f"{r.max_cpu_s:.3f}", str(r.runs)] for r in rows]
    return table(["command", "CPU s (median)", "CPU s (max)", "runs"], body)


def _login_targets(report: LoginReport) -> list[Target]:
    over = report.overload
    return [
        Target(
            f"password logins per core ({report.cost})",
            "≥ 0.8x argon2 alone",
            f"{report.capacity.logins_per_cpu_s:.1f}/s ({report.overhead_ratio:.2f}x)",
            report.overhead_ratio >= 0.8,
        ),
        Target(
            "logins beyond the hashing pool: fast 503 + Retry-After",
            f"≥ 95% within {FAST_MS:.0f} ms",
            f"{over.fast_503_share:.1%} ({over.refused_share:.0%} of attempts refused)",
            over.fast_503_share >= 0.95 and bool(over.refused_ms),
        ),
        Target(
            "logins/s overloaded vs at capacity",
            "≥ 0.8x",
            f"{report.overload_ratio:.2f}x",
            report.overload_ratio >= 0.8,
        ),
    ]


@dataclass
class Target:
    what: str
    goal: str
    measured: str
    met: bool | None  # None: this machine cannot measure it (the row says why)


def targets(results: Results) -> list[Target]:
    out: list[Target] = []
    ours = {r.size: r for r in results.engines if r.engine == "oms-auth (indexed)"}
    fast = {r.size: r for r in results.engines if r.engine == "casbin.FastEnforcer"}
    if ours:
        worst = max(r.p50_us for r in ours.values())
        out.append(
            Target("in-process p50, every size", "≤ 50 µs", f"{worst:.1f} µs max", worst <= 50)
        )
        small, large = ours.get("small"), ours.get("large")
        if small and large:
            growth = large.p50_us / small.p50_us
            out.append(
                Target("p50 at 110,000 vs 1,100 rules", "≤ 1.5x", f"{growth:.2f}x", growth <= 1.5)
            )
        if fast:
            slower = [s for s in ours if s in fast and ours[s].p50_us > fast[s].p50_us]
            worst_ratio = max(fast[s].p50_us / ours[s].p50_us for s in ours if s in fast)
            out.append(
                Target(
                    "never slower than FastEnforcer",
                    "p50 ≤ FastEnforcer's",
                    f"{min(fast[s].p50_us / ours[s].p50_us for s in ours if s in fast):.0f}-"
                    f"{worst_ratio:.0f}x faster",
                    not slower,
                )
            )
    if results.models:
        slowest = max(results.models, key=lambda r: r.generic_ratio)
        out.append(
            Target(
                "generic path vs casbin.Enforcer, every example model",
                "≤ 1.0x",
                f"{slowest.generic_ratio:.2f}x worst ({slowest.model})",
                slowest.generic_ratio <= 1.0 and not any(r.mismatches for r in results.models),
            )
        )
    if results.http is not None:
        rows = {r.name: r.result for r in results.http.rows}
        check = rows["oms-auth /api/v1/authz/check"].requests_per_s
        floor = rows["FastAPI floor (constant JSON)"].requests_per_s
        naive = rows["naive FastAPI + casbin.Enforcer"].requests_per_s
        out.append(
            Target(
                "warm check vs FastAPI floor", "≥ 80%", f"{check / floor:.0%}", check >= 0.8 * floor
            )
        )
        out.append(
            Target(
                "warm check vs naive (11,000 rules)",
                "≥ 20x",
                f"{check / naive:.1f}x",
                check >= 20 * naive,
            )
        )
        logged = rows.get("oms-auth /api/v1/authz/check, decision log on")
        if logged is not None:
            cost = 1 - logged.requests_per_s / check
            out.append(
                Target("decision log cost, single checks", "≤ 15%", f"{cost:.0%}", cost <= 0.15)
            )
        if results.http.logged_batch_decisions_per_s:
            cost = (
                1 - results.http.logged_batch_decisions_per_s / results.http.batch_decisions_per_s
            )
            out.append(
                Target(
                    "decision log cost, 1000-check batches", "≤ 15%", f"{cost:.0%}", cost <= 0.15
                )
            )
        decisions = results.http.batch_decisions_per_s
        out.append(
            Target(
                "1000-check batches over HTTP",
                "≥ 50,000 decisions/s",
                f"{decisions:,.0f}/s",
                decisions >= 50_000,
            )
        )
    for row in results.search:
        out.append(
            Target(
                f"{row.kind} search, {row.rules:,} rules (p50)",
                "< 10 ms",
                f"{row.p50_ms:.2f} ms",
                row.p50_ms < 10,
            )
        )
    if results.memory is not None:
        m = results.memory
        out.append(
            Target(
                "RSS with 110,000 rules",
                "< 400 MB",
                f"{m.rss_mb_loaded:.0f} MB",
                m.rss_mb_loaded < 400,
            )
        )
        load = m.policy_load_seconds or float("nan")
        out.append(Target("policy load, 110,000 rules", "< 3 s", f"{load:.2f} s", load < 3))
        ready = m.ready_seconds / load
        out.append(
            Target(
                "110,000 rules: ready to serve vs its own policy load",
                "≤ 1.2x",
                f"{ready:.2f}x ({m.ready_seconds:.1f} s / {load:.2f} s)",
                ready <= 1.2,
            )
        )
    w = results.workers
    if w is not None:
        unpinned = w.ratio(pinned=False)
        if unpinned is not None:
            out.append(
                Target(
                    "2 workers: decisions per server CPU-second vs 1",
                    "≥ 0.9x",
                    f"{unpinned[1]:.2f}x",
                    unpinned[1] >= 0.9,
                )
            )
        pinned = w.ratio(pinned=True)
        if pinned is not None:
            what = "2 workers: req/s vs 1 (load pinned apart)"
            if w.cores >= 3:
                out.append(Target(what, "≥ 1.6x", f"{pinned[0]:.2f}x", pinned[0] >= 1.6))
            else:  # the load generator's core leaves the workers one core to share
                out.append(
                    Target(
                        what,
                        "≥ 1.6x (needs ≥ 3 cores)",
                        f"{pinned[0]:.2f}x with both workers on 1 core ({w.cores} cores)",
                        None,
                    )
                )
    if results.tokens is not None:
        out += _token_targets(results.tokens)
    if results.logins is not None:
        out += _login_targets(results.logins)
    if results.cli:
        slowest_cli = max(results.cli, key=lambda r: r.median_cpu_s)
        out.append(
            Target(
                "CLI start-up, --help and light commands (user + sys CPU)",
                f"≤ {BUDGET_S} s",
                f"{slowest_cli.median_cpu_s:.2f} s max ({slowest_cli.command})",
                slowest_cli.median_cpu_s <= BUDGET_S,
            )
        )
    return out


def workers_table(report: WorkersReport) -> str:
    one = {bool(r.pinned): r for r in report.rows if r.workers == 1}
    rows = []
    for r in report.rows:
        base = one.get(bool(r.pinned))
        rows.append(
            [
                f"{r.workers}",
                r.pinned or "unpinned",
                _num(r.requests_per_s, 0),
                f"{r.requests_per_s / base.requests_per_s:.2f}x" if base else "",
                _num(r.decisions_per_cpu_s, 0),
                f"{r.decisions_per_cpu_s / base.decisions_per_cpu_s:.2f}x" if base else "",
                _num(r.p99_ms, 1),
                str(r.errors),
            ]
        )
    header = ["workers", "placement", "req/s", "vs 1", "decisions/CPU-s", "vs 1", "p99 ms", "err"]
    return table(header, rows)


def search_table(results: Results) -> str:
    rows = [
        [
            r.kind,
            f"{r.rules:,}",
            f"{r.p50_ms:.2f}",
            f"{r.p99_ms:.2f}",
            str(r.results),
            str(r.samples),
        ]
        for r in results.search
    ]
    return table(["search", "rules", "p50 ms", "p99 ms", "results", "samples"], rows)


def models_table(results: Results) -> str:
    rows = [
        [
            r.model,
            f"{r.rules:,}",
            r.evaluator,
            _num(r.ours_us),
            _num(r.generic_us),
            _num(r.casbin_us),
            f"{r.generic_ratio:.2f}x",
            str(r.mismatches),
        ]
        for r in results.models
    ]
    header = ["model", "rules", "path", "decide µs", "generic µs", "Casbin µs", "generic/Casbin"]
    return table([*header, "≠"], rows)


def targets_table(results: Results) -> str:
    verdict = {True: "met", False: "MISSED", None: "not measurable here"}
    rows = [[t.what, t.goal, t.measured, verdict[t.met]] for t in targets(results)]
    return table(["target", "goal", "measured", ""], rows)


def chart(results: Results, path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, ax = plt.subplots(figsize=(8, 5))
    names = list(dict.fromkeys(r.engine for r in results.engines))
    for name in names:
        points = sorted((r.rules, r.p50_us) for r in results.engines if r.engine == name)
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=name)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks([s.rules for s in SIZES], [f"{s.rules:,}" for s in SIZES])
    ax.set_xlabel("rules in the policy (Casbin RBAC benchmark shape)")
    ax.set_ylabel("check latency, p50 (µs, log scale)")
    ax.set_title("In-process check latency vs policy size")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True
