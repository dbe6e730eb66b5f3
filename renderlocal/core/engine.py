"""The connection to the Docker engine: DOCKER_HOST or the current docker context."""

from __future__ import annotations

import os
import re

from renderlocal.core.errors import EngineUnavailable


def engine_url() -> str | None:
    """Where the engine is, as the docker CLI would pick it; None for the default socket."""
    if os.environ.get("DOCKER_HOST"):
        return os.environ["DOCKER_HOST"]
    try:
        from docker.context import ContextAPI

        context = ContextAPI.get_current_context()
        if context is not None and context.name != "default":
            return context.Host
    except Exception:  # a broken ~/.docker config must not hide the default socket
        pass
    return None


def connect():
    """A ready ``docker.DockerClient``; raises EngineUnavailable with the reason."""
    import docker

    url = engine_url()
    try:
        client = docker.DockerClient(base_url=url) if url else docker.from_env()
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
