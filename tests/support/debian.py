"""Debian packages a test needs (promtool, nginx): installed by the test set-up when missing."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

_APT_ENV = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
_LOCK = ("-o", "DPkg::Lock::Timeout=600")


def ensure_binary(binary: str, package: str, *, extra_paths: tuple[str, ...] = ()) -> str:
    """The path of `binary`, installing Debian `package` with apt-get when it is missing.

    Raises RuntimeError (the test fails, it is never skipped) when it cannot be installed.
    """
    found = _which(binary, extra_paths)
    if found:
        return found
    if shutil.which("apt-get") is None:
        raise RuntimeError(f"{binary} is missing and apt-get is not available to install {package}")
    install = ["apt-get", *_LOCK, "install", "-y", "-q", "--no-install-recommends", package]
    done = subprocess.run(install, env=_APT_ENV, capture_output=True, text=True, timeout=900)
    if done.returncode != 0:  # the package lists may be missing or stale
        subprocess.run(
            ["apt-get", *_LOCK, "update", "-q"], env=_APT_ENV, capture_output=True, timeout=900
        )
        done = subprocess.run(install, env=_APT_ENV, capture_output=True, text=True, timeout=900)
    found = _which(binary, extra_paths)
    if done.returncode != 0 or not found:
        raise RuntimeError(f"could not install {package}: {done.stderr.strip()[-500:]}")
    return found


def _which(binary: str, extra_paths: tuple[str, ...]) -> str | None:
    found = shutil.which(binary)
    if found:
        return found
    for folder in (*extra_paths, "/usr/sbin", "/usr/bin"):
        candidate = Path(folder) / binary
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None
