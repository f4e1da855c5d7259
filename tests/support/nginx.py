"""nginx from the distribution, configured from deploy/nginx/oms-auth.conf, on free ports.

The shipped site configuration is used as is, with only what a test must change rewritten:
the upstream servers, the listen addresses, the certificate paths and the redirect's port.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.support.debian import ensure_binary
from tests.support.server import REPO, free_port
from tests.support.tls import TestPki
from tests.support.waiting import DEADLINE_SCALE

SITE = REPO / "deploy" / "nginx" / "oms-auth.conf"


def site_config(upstreams: Sequence[int], *, http_port: int, https_port: int, pki: TestPki) -> str:
    text = SITE.read_text()
    servers = "".join(
        f"    server 127.0.0.1:{port} max_fails=2 fail_timeout=5s;\n" for port in upstreams
    )
    text, n = re.subn(
        r"(upstream oms_auth \{\n(?:.*\n)*?)((?:    server .*\n)+)", rf"\g<1>{servers}", text
    )
    assert n == 1, "upstream block not found in deploy/nginx/oms-auth.conf"
    replacements = {
        "    listen 80;": f"    listen 127.0.0.1:{http_port};",
        "    listen 443 ssl http2;": f"    listen 127.0.0.1:{https_port} ssl http2;",
        "/etc/nginx/certs/server.crt": str(pki.server_cert),
        "/etc/nginx/certs/server.key": str(pki.server_key),
        "return 308 https://$host$request_uri;": (
            f"return 308 https://$host:{https_port}$request_uri;"
        ),
    }
    for old, new in replacements.items():
        assert old in text, f"{old!r} not in deploy/nginx/oms-auth.conf"
        text = text.replace(old, new)
    return text


@dataclass
class Nginx:
    folder: Path
    pki: TestPki
    upstreams: list[int]
    http_port: int = field(default_factory=free_port)
    https_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    binary: str = ""

    @property
    def url(self) -> str:
        return f"https://localhost:{self.https_port}"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def _write(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (self.folder / sub).mkdir(exist_ok=True)
        site = site_config(
            self.upstreams, http_port=self.http_port, https_port=self.https_port, pki=self.pki
        )
        (self.folder / "site.conf").write_text(site)
        user = "user root;\n" if os.geteuid() == 0 else ""
        f = self.folder
        (f / "nginx.conf").write_text(
            f"{user}worker_processes 1;\ndaemon off;\npid {f}/nginx.pid;\n"
            f"error_log {f}/error.log warn;\nevents {{ worker_connections 512; }}\n"
            "http {\n"
            f"  access_log {f}/access.log;\n"
            f"  client_body_temp_path {f}/body;\n  proxy_temp_path {f}/proxy;\n"
            f"  fastcgi_temp_path {f}/fastcgi;\n  uwsgi_temp_path {f}/uwsgi;\n"
            f"  scgi_temp_path {f}/scgi;\n"
            f"  include {f}/site.conf;\n"
            "}\n"
        )

    def _args(self) -> list[str]:
        return [self.binary, "-p", str(self.folder), "-c", str(self.folder / "nginx.conf")]

    def start(self, timeout: float = 30.0) -> None:
        self.binary = ensure_binary("nginx", "nginx-light")
        self._write()
        check = subprocess.run([*self._args(), "-t"], capture_output=True, text=True, timeout=60)
        assert check.returncode == 0, check.stderr
        self.process = subprocess.Popen(
            self._args(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + timeout * DEADLINE_SCALE
        while True:
            try:
                httpx.get(self.http_url + "/livez", timeout=1)
                return
            except httpx.TransportError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"nginx did not start: {(self.folder / 'error.log').read_text()}"
                    ) from None
                time.sleep(0.05)

    def set_upstreams(self, upstreams: list[int]) -> None:
        """Rewrite the upstream list and reload (in-flight requests finish on old workers)."""
        self.upstreams = upstreams
        self._write()
        done = subprocess.run([*self._args(), "-s", "reload"], capture_output=True, timeout=60)
        assert done.returncode == 0, done.stderr

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
