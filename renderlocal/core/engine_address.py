"""Which Docker engine a process means, picked as the docker CLI picks it, with the
standard library only (the CLI compares it with its control plane's without the SDK)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from renderlocal.core.errors import InvalidInput

DEFAULT_SOCKET = "unix:///var/run/docker.sock"
ENV_BACKEND = "RENDER_LOCAL_ENGINE"  # local (containers on the engine, the default) or swarm (services)
BACKENDS = ("local", "swarm")


def engine_url() -> str | None:
    """``DOCKER_HOST``, else the current docker context's host; None for the default socket."""
    host = os.environ.get("DOCKER_HOST") or _context_host()
    return None if host in (None, "", DEFAULT_SOCKET) else host


def engine_id() -> str:
    """How a job records the engine it runs on: its address, or ``default``; a swarm
    backend's is ``swarm:`` and the address (its jobs are services, not containers)."""
    address = engine_url() or "default"
    return f"swarm:{address}" if engine_backend() == "swarm" else address


def engine_backend() -> str:
    """``RENDER_LOCAL_ENGINE`` (``render-local --engine``): how jobs run on the engine."""
    backend = os.environ.get(ENV_BACKEND) or "local"
    if backend not in BACKENDS:
        raise InvalidInput(f"{ENV_BACKEND}={backend} is not an engine backend; use one of: {', '.join(BACKENDS)}")
    return backend


def _context_host() -> str | None:
    """The host of ``DOCKER_CONTEXT`` or the config's ``currentContext`` (a broken config: the default)."""
    config_dir = Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker")
    name = os.environ.get("DOCKER_CONTEXT")
    try:
        if not name:
            name = json.loads((config_dir / "config.json").read_text()).get("currentContext")
        if not name or name == "default":
            return None
        meta = config_dir / "contexts" / "meta" / hashlib.sha256(name.encode()).hexdigest() / "meta.json"
        return json.loads(meta.read_text())["Endpoints"]["docker"]["Host"]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
