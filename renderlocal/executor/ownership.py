"""Proof that a container is this data dir's own, before recovery trusts it.

Anyone who can reach the engine can start a container labelled as one of our jobs.
Recovery rebuilds records, bills and removes the containers it adopts, so it must
know they are ours: each carries ``render-local.proof``, an HMAC of what it is under
a key kept owner-only in the data dir (``secrets/container-key``), which someone
else on the engine does not have. A container without a valid proof is left alone.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from pathlib import Path

from renderlocal.core.atomic import publish_once
from renderlocal.executor.engine import label

PROOF = label("proof")


class ContainerProof:
    """Signs and checks the proof label of one data dir's containers."""

    def __init__(self, data_dir: Path):
        self.data_dir = Path(data_dir)
        self.path = self.data_dir / "secrets" / "container-key"
        self._key: bytes | None = None

    def key(self) -> bytes:
        if self._key is None:
            try:
                text = self.path.read_text().strip()
            except FileNotFoundError:
                self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                publish_once(self.path, secrets.token_hex(32), private=True)  # a racing process's key wins
                text = self.path.read_text().strip()
            self._key = text.encode()
        return self._key

    def sign(self, kind: str, resource_id: str) -> str:
        message = f"{kind}\n{resource_id}\n{self.data_dir}".encode()
        return hmac.new(self.key(), message, hashlib.sha256).hexdigest()

    def labels(self, kind: str, resource_id: str) -> dict[str, str]:
        return {PROOF: self.sign(kind, resource_id)}

    def verify(self, labels: dict, kind: str, resource_id: str) -> bool:
        given = labels.get(PROOF)
        return isinstance(given, str) and hmac.compare_digest(given, self.sign(kind, resource_id))
