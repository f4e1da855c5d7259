"""Address syntax shared by the settings (which validate it) and the bindings that use it.

Kept free of any client library so `app.config` can check a value without importing Redis or
the HTTP layer.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(values: Iterable[str]) -> tuple[Network, ...]:
    """CIDRs (or single addresses) as networks; ValueError names the bad entry."""
    out = []
    for value in values:
        text = value.strip()
        if not text:
            continue
        try:
            out.append(ipaddress.ip_network(text, strict=False))
        except ValueError:
            raise ValueError(f"{text!r} is not an IP address or CIDR") from None
    return tuple(out)


SENTINEL_SCHEME = "redis+sentinel"
CLUSTER_SCHEME = "redis+cluster"


def _host_ports(hosts: str, what: str) -> list[tuple[str, int]]:
    """`HOST:PORT[,HOST:PORT...]` (IPv6 hosts in brackets); ValueError naming `what`."""
    found = []
    for item in hosts.split(","):
        host, _, port = item.strip().rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"{what} {item!r} is not HOST:PORT")
        found.append((host.strip("[]"), int(port)))
    return found


@dataclass(frozen=True)
class SentinelTarget:
    sentinels: tuple[tuple[str, int], ...]
    service: str
    db: int
    password: str | None


def parse_sentinel_url(url: str) -> SentinelTarget:
    """`redis+sentinel://[:PASSWORD@]HOST:PORT[,HOST:PORT...]/SERVICE[/DB]`; ValueError if not."""
    parts = urlsplit(url)
    if parts.scheme != SENTINEL_SCHEME:
        raise ValueError(f"not a {SENTINEL_SCHEME}:// URL")
    credentials, _, hosts = parts.netloc.rpartition("@")
    password = unquote(credentials.partition(":")[2]) or None if credentials else None
    sentinels = _host_ports(hosts, "sentinel address")
    path = [p for p in parts.path.split("/") if p]
    if not path or len(path) > 2:
        raise ValueError("the path must be /SERVICE or /SERVICE/DB (the monitored primary)")
    if len(path) == 2 and not path[1].isdigit():
        raise ValueError("the database number must be an integer")
    return SentinelTarget(
        tuple(sentinels), path[0], int(path[1]) if len(path) == 2 else 0, password
    )


@dataclass(frozen=True)
class ClusterTarget:
    nodes: tuple[tuple[str, int], ...]
    username: str | None
    password: str | None


def parse_cluster_url(url: str) -> ClusterTarget:
    """`redis+cluster://[[USER]:PASSWORD@]HOST:PORT[,HOST:PORT...][/]`; ValueError if not."""
    parts = urlsplit(url)
    if parts.scheme != CLUSTER_SCHEME:
        raise ValueError(f"not a {CLUSTER_SCHEME}:// URL")
    credentials, _, hosts = parts.netloc.rpartition("@")
    user, _, secret = credentials.partition(":")
    nodes = _host_ports(hosts, "cluster node address")
    if parts.path.strip("/") not in ("", "0"):
        raise ValueError("a cluster has one database: no /DB other than /0")
    if parts.query:
        raise ValueError("no ?options: a cluster URL is only its nodes and credentials")
    return ClusterTarget(tuple(nodes), unquote(user) or None, unquote(secret) or None)
