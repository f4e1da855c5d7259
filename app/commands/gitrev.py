"""A policy folder as it was at a git revision, exported for `policy diff --git REV`."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from app.policy.sources import MODEL_FILE


class GitError(Exception):
    """git is missing, the folder is not in a repository, or the revision is unknown."""


def _git(cwd: Path, *args: str) -> bytes:
    exe = shutil.which("git")
    if exe is None:
        raise GitError("git is not installed")
    proc = subprocess.run(  # noqa: S603  (argv list, no shell, arguments are not interpreted)
        [exe, "-C", str(cwd), *args], capture_output=True, check=False, timeout=60
    )
    if proc.returncode != 0:
        raise GitError(f"git {' '.join(args)}: {proc.stderr.decode(errors='replace').strip()}")
    return proc.stdout


def export_policy_dir(policy_dir: Path, rev: str, target: Path) -> Path:
    """Write `model.conf` and `*.csv` of `policy_dir` at `rev` into `target`; return it."""
    if rev.startswith("-"):
        raise GitError(f"not a revision: {rev!r}")
    if not policy_dir.is_dir():
        raise GitError(f"{policy_dir} is not a folder")
    names = _git(policy_dir, "ls-tree", "--name-only", rev, "--", "./").decode().splitlines()
    wanted = [n for n in names if n == MODEL_FILE or n.endswith(".csv")]
    if MODEL_FILE not in wanted:
        raise GitError(f"{policy_dir} has no {MODEL_FILE} at {rev}")
    target.mkdir(parents=True, exist_ok=True)
    for name in wanted:
        (target / name).write_bytes(_git(policy_dir, "show", f"{rev}:./{name}"))
    return target
