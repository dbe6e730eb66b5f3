"""A data dir's secret keys: random, made once, kept owner-only under ``secrets/``.

Each key has one purpose (its file name); what it signs or derives is an HMAC-SHA256 of
``\\0``-joined parts, so the same parts never mean two things.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from pathlib import Path

from renderlocal.core.atomic import publish_once, write_atomic

MIN_KEY_BYTES = 32


class SecretKey:
    """``<data dir>/secrets/<name>``: read, or made on first use (a racing process's key wins)."""

    def __init__(self, data_dir: Path, name: str):
        self.path = Path(data_dir) / "secrets" / name
        self._key: bytes | None = None

    def key(self) -> bytes:
        if self._key is None:
            key = self._read()
            if key is None:
                self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                fresh = secrets.token_hex(32)
                if not publish_once(self.path, fresh, private=True) and self._read() is None:
                    write_atomic(self.path, fresh, private=True)  # an empty or short leftover: replaced
                key = self._read()
            self._key = key
        return self._key

    def _read(self) -> bytes | None:
        try:
            key = self.path.read_bytes().strip()
        except FileNotFoundError:
            return None
        return key if len(key) >= MIN_KEY_BYTES else None

    def digest(self, *parts: str) -> bytes:
        return hmac.new(self.key(), "\0".join(parts).encode(), hashlib.sha256).digest()
