"""Proof that a container is this data dir's own, before recovery trusts it.

Anyone who can reach the engine can start a container labelled as one of our jobs.
Recovery rebuilds records, bills and removes the containers it adopts, so it must
know they are ours: each carries ``render-local.proof``, an HMAC of what it is under
a key kept owner-only in the data dir (``secrets/container-key``), which someone
else on the engine does not have. A container without a valid proof is left alone.
"""

from __future__ import annotations

import hmac
from pathlib import Path

from renderlocal.core.secret_key import SecretKey
from renderlocal.executor.engine import label

PROOF = label("proof")


class ContainerProof:
    """Signs and checks the proof label of one data dir's containers."""

    def __init__(self, data_dir: Path):
        self.data_dir = Path(data_dir)
        self.secret = SecretKey(self.data_dir, "container-key")

    def sign(self, kind: str, resource_id: str) -> str:
        return self.secret.digest(kind, resource_id, str(self.data_dir)).hex()

    def labels(self, kind: str, resource_id: str) -> dict[str, str]:
        return {PROOF: self.sign(kind, resource_id)}

    def verify(self, labels: dict, kind: str, resource_id: str) -> bool:
        given = labels.get(PROOF)
        return isinstance(given, str) and hmac.compare_digest(given, self.sign(kind, resource_id))
