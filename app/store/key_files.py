"""Signing keys as files in `OMS_AUTH_KEY_DIR` (for deployments that mount keys as secrets).

Each key is `<kid>.pem` (private, mode 0600) plus `<kid>.json` (algorithm, status, dates,
public JWK). Writes go to a temporary file renamed into place, under an exclusive lock on
`.lock`, so instances sharing the folder never read half a key or lose a rotation.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from app.tokens.models import StoredKey


class FileKeyStore:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    async def load(self) -> list[StoredKey]:
        return await asyncio.to_thread(self._load)

    async def activate(self, key: StoredKey, *, at: datetime) -> None:
        await asyncio.to_thread(self._activate, key, at)

    # -- blocking helpers ------------------------------------------------------------------
    def _load(self) -> list[StoredKey]:
        if not self.directory.is_dir():
            return []
        keys = []
        for meta_path in sorted(self.directory.glob("*.json")):
            meta = orjson.loads(meta_path.read_bytes())
            pem_path = meta_path.with_suffix(".pem")
            if not pem_path.is_file() or meta.get("status") == "retired":
                continue
            keys.append(_stored(meta, pem_path.read_text()))
        return keys

    def _activate(self, key: StoredKey, at: datetime) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        with self._locked():
            for meta_path in self.directory.glob("*.json"):
                meta = orjson.loads(meta_path.read_bytes())
                if meta.get("status") == "active":
                    meta.update(status="previous", retired_at=at.isoformat())
                    _write(meta_path, orjson.dumps(meta), mode=0o644)
            _write(self.directory / f"{key.kid}.pem", key.private_pem.encode(), mode=0o600)
            _write(self.directory / f"{key.kid}.json", orjson.dumps(_meta(key)), mode=0o644)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        fd = os.open(self.directory / ".lock", os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


def _meta(key: StoredKey) -> dict[str, Any]:
    return {
        "kid": key.kid,
        "alg": key.alg,
        "status": key.status,
        "created_at": key.created_at.isoformat(),
        "retired_at": key.retired_at.isoformat() if key.retired_at else None,
        "public_jwk": key.public_jwk,
    }


def _stored(meta: dict[str, Any], pem: str) -> StoredKey:
    retired = meta.get("retired_at")
    return StoredKey(
        kid=meta["kid"],
        alg=meta["alg"],
        private_pem=pem,
        public_jwk=meta["public_jwk"],
        status=meta["status"],
        created_at=datetime.fromisoformat(meta["created_at"]),
        retired_at=datetime.fromisoformat(retired) if retired else None,
    )


def _write(path: Path, data: bytes, *, mode: int) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
