"""CPU the `oms-auth` command spends on start-up for `--help` and the light commands.

Each command runs `runs` times as a child process; its CPU time (user + system) comes from
`getrusage(RUSAGE_CHILDREN)` before and after, so the figure does not depend on how busy the
machine is, only on what the command imports and does. The median of the runs is reported.
"""

from __future__ import annotations

import resource
import statistics
import subprocess
import sys
from dataclasses import dataclass

from bench.processes import REPO

LIGHT = (
    ("--help",),
    ("--version",),
    ("users", "--help"),
    ("users", "import", "--help"),
    ("policy", "--help"),
    ("decisions", "--help"),
)
BUDGET_S = 0.5


@dataclass
class CliRow:
    command: str
    median_cpu_s: float
    max_cpu_s: float
    runs: int


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def cpu_seconds(args: tuple[str, ...]) -> float:
    """User + system CPU seconds of one `oms-auth ARGS` (the installed entry point's module)."""
    before = _children_cpu()
    subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        cwd=REPO,
        capture_output=True,
        check=True,
        timeout=60,
    )
    return _children_cpu() - before


def run_cli_startup(runs: int = 5) -> list[CliRow]:
    rows = []
    for args in LIGHT:
        samples = [cpu_seconds(args) for _ in range(runs)]
        rows.append(
            CliRow(f"oms-auth {' '.join(args)}", statistics.median(samples), max(samples), runs)
        )
    return rows
