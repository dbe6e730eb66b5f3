"""The connection to the Docker engine: DOCKER_HOST or the current docker context,
and the labels that mark what render-local made on it."""

from __future__ import annotations

import functools
import os
import re
import threading

from renderlocal.core.engine_address import engine_backend, engine_id, engine_url
from renderlocal.core.errors import EngineUnavailable

LABEL = "render-local"  # every container and image render-local makes carries it


def label(name: str) -> str:
    """A render-local label key: ``render-local.<name>``."""
    return f"{LABEL}.{name}"


# How long one engine call may take. The SDK's 60 s failed jobs of a 200-job fan-out on a loaded
# machine ("could not start: Read timed out") that `docker run`, which waits, started.
ENGINE_TIMEOUT_SECONDS = 300


def connect():
    """A ready ``docker.DockerClient``; raises EngineUnavailable with the reason."""
    import docker

    url = engine_url()
    try:
        client = (docker.DockerClient(base_url=url, timeout=ENGINE_TIMEOUT_SECONDS) if url
                  else docker.from_env(timeout=ENGINE_TIMEOUT_SECONDS))
        client.ping()
    except Exception as exc:  # the SDK raises several unrelated types here
        where = url or os.environ.get("DOCKER_HOST") or "the default socket (/var/run/docker.sock)"
        # the SDK nests the OS error deep in its message: keep the part a person can act on
        text = str(exc)
        reasons = re.findall(r"\[Errno -?\d+\] [^'\")\]]+", text) or re.findall(r"\w+Error\(-?\d+, '([^']+)'\)", text)
        reason = reasons[-1] if reasons else f"{type(exc).__name__}: {exc}"
        raise EngineUnavailable(
            f"the Docker engine at {where} does not answer ({reason}); start dockerd or set DOCKER_HOST"
        ) from None
    return client


class Engine:
    """The engine the control plane uses: connected on first use (start-up stays fast),
    or given (tests pass theirs). ``id`` names it on the jobs it runs. ``backend`` says
    how jobs run on it: ``local`` containers, or ``swarm`` services (``swarm_jobs.py``),
    which needs the engine to be a swarm manager."""

    def __init__(self, client=None):
        self._client = client
        self._lock = threading.Lock()
        self.backend = engine_backend()
        self._checked = self.backend == "local"

    @functools.cached_property
    def id(self) -> str:
        """Its address, or ``default`` for the default socket."""
        return engine_id()

    @property
    def client(self):
        """The ``docker.DockerClient``; raises EngineUnavailable when the engine does not answer."""
        if self._client is None or not self._checked:
            with self._lock:
                if self._client is None:
                    self._client = connect()
                if not self._checked:
                    require_swarm_manager(self._client)
                    self._checked = True
        return self._client

    @property
    def api(self):
        """The SDK's low-level client."""
        return self.client.api

    def limits(self, plan, image: str, bounded_log: bool = True) -> dict:
        """The ``containers.create`` arguments that bound a container of ``plan``: see container_limits.py."""
        from renderlocal.executor.container_limits import container_limits

        return container_limits(self.client, plan, image, bounded_log)

    def is_running(self, container_id: str) -> bool:
        """Whether the container exists and runs (not restarting, not exited)."""
        try:
            state = self.api.inspect_container(container_id)["State"]
        except Exception as exc:
            if is_not_found(exc):
                return False
            raise
        return bool(state.get("Running")) and not state.get("Restarting")

    def volume(self, name: str, data_dir, purpose: str) -> str:
        """A named volume, created labelled with its data dir (so a clean-up can find it) unless it
        exists; its data outlives containers, ``down`` and crashes. Returns its name."""
        try:
            self.client.volumes.get(name)
        except Exception as exc:
            if not is_not_found(exc):
                raise
            self.client.volumes.create(name, labels={LABEL: purpose, label("data-dir"): str(data_dir)})
        return name

    def remove_volume(self, name: str) -> None:
        """Remove a named volume and its data; gone already is fine."""
        try:
            self.client.volumes.get(name).remove()
        except Exception as exc:
            if not is_not_found(exc):
                raise


def require_swarm_manager(client) -> None:
    """Raise EngineUnavailable unless the engine manages a swarm (the swarm backend creates services)."""
    swarm = client.info().get("Swarm") or {}
    if not swarm.get("ControlAvailable"):
        state = swarm.get("LocalNodeState") or "inactive"
        where = engine_url() or "the default socket"
        raise EngineUnavailable(
            f"the swarm engine backend needs a swarm manager, and the Docker engine at {where} is not one (swarm "
            f"state: {state}{', a worker' if state == 'active' else ''}); run docker swarm init there, "
            "or use --engine local")


def is_not_found(exc: BaseException) -> bool:
    """Whether the engine said the object does not exist (docker.errors.NotFound)."""
    from docker.errors import NotFound

    return isinstance(exc, NotFound)
