"""Run a command (by default the whole suite) beside CPU hogs of its own.

`make test-loaded` uses it to show that the suite passes when every core is busy: it starts
`--hogs` busy-loop processes (one per core by default), runs the command, stops the hogs by
their PIDs whatever happens, and prints the wall time and the load averages.

    python -m tests.loaded [--hogs N] [-- COMMAND ...]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

HOG = "while True: pass"


def _load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.loaded", description=__doc__)
    parser.add_argument("--hogs", type=int, default=os.cpu_count() or 2, help="busy loops")
    parser.add_argument("command", nargs="*", help="default: make test")
    args = parser.parse_args(argv)
    command = args.command or ["make", "--no-print-directory", "test"]
    hogs: list[subprocess.Popen[bytes]] = []
    started = time.monotonic()
    try:
        for _ in range(args.hogs):
            hogs.append(subprocess.Popen([sys.executable, "-c", HOG]))
        pids = " ".join(str(h.pid) for h in hogs)
        print(f"loaded: {args.hogs} busy loops (PIDs {pids}); load {_load()}", flush=True)
        print(f"loaded: running {' '.join(command)}", flush=True)
        code = subprocess.call(command)
    finally:
        for hog in hogs:
            hog.terminate()
        for hog in hogs:
            hog.wait(timeout=10)
    elapsed = time.monotonic() - started
    print(
        f"loaded: exit {code} after {elapsed:.0f} s beside {args.hogs} busy loops; load {_load()}"
    )
    return code


if __name__ == "__main__":
    sys.exit(main())
