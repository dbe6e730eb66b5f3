"""The private network of a data dir: one Docker network every instance, job and
pre-deploy container joins, each service reachable by its name and its internal
hostname, as on Render's private network. On the swarm engine backend it is an attachable
overlay network: the jobs' services join it on any node, containers on the manager too."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

from renderlocal.executor.engine import LABEL, Engine, is_not_found, label


def network_name(data_dir: Path) -> str:
    """One per data dir (so two data dirs never share one), stable across restarts."""
    return f"render-local-{hashlib.sha256(str(data_dir).encode()).hexdigest()[:12]}"


class PrivateNetwork:
    def __init__(self, engine: Engine, data_dir: Path):
        self.engine = engine
        self.data_dir = data_dir
        self.overlay = engine.backend == "swarm"
        # another name than the bridge one: a data dir run both ways would otherwise find the wrong kind
        self.name = network_name(data_dir) + ("-overlay" if self.overlay else "")
        self._ready = False
        self._guard = threading.Lock()

    def ensure(self) -> str:
        """The network's name, made if it does not exist yet."""
        with self._guard:
            if not self._ready:
                client = self.engine.client
                try:
                    client.networks.get(self.name)
                except Exception as exc:
                    if not is_not_found(exc):
                        raise
                    kind = {"driver": "overlay", "attachable": True} if self.overlay else {"driver": "bridge"}
                    client.networks.create(self.name, check_duplicate=True, **kind,
                                           labels={LABEL: "network", label("data-dir"): str(self.data_dir)})
                self._ready = True
        return self.name

    def join(self, aliases: list[str] | None = None) -> dict:
        """The ``containers.create`` arguments that put a container on the network, under ``aliases``."""
        name = self.ensure()
        return {"network": name, "networking_config": {name: self.engine.api.create_endpoint_config(aliases=aliases or None)}}

    def remove_if_unused(self) -> None:
        """Remove the network when nothing is on it (the control plane stops): an engine has room
        for a few dozen networks only, and the next control plane makes it again."""
        if not self._ready:
            return  # this process never used it
        with self._guard:
            try:
                network = self.engine.client.networks.get(self.name)
                if not network.attrs.get("Containers"):
                    network.remove()
                    self._ready = False
            except Exception as exc:  # gone already, or joined meanwhile (403): it stays
                if not is_not_found(exc) and getattr(exc, "status_code", None) != 403:
                    raise

    def remove(self) -> None:
        """Remove the network (``down --volumes``); containers still on it keep it."""
        with self._guard:
            self._ready = False
            try:
                self.engine.client.networks.get(self.name).remove()
            except Exception as exc:
                if not is_not_found(exc) and getattr(exc, "status_code", None) != 403:
                    raise
