"""Where a data dir's control plane listens: ``<data dir>/control-plane.json``.

The control plane (``serve``, the terminal app, or one the CLI started in the
background) publishes its API's URL, its pid, the blueprint it loaded and the
engine it uses once it listens, and withdraws it when it stops. Faces read it
to find the process to ask. Stdlib only: the CLI reads this before anything heavy.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from renderlocal.core.atomic import write_atomic

FILE = "control-plane.json"
FAILURE_FILE = "control-plane.failure.json"  # why the last control plane could not start


@dataclass(frozen=True)
class Endpoint:
    url: str  # http://host:port/v1
    pid: int
    blueprint: str
    engine: str = "default"  # DOCKER_HOST, or default
    idle_exit: bool = False  # started in the background by a CLI: it stops when idle


def publish(data_dir: Path, endpoint: Endpoint) -> None:
    """Announce the control plane's API (atomically: a reader never sees half a file)."""
    write_atomic(Path(data_dir) / FILE, json.dumps({
        "url": endpoint.url, "pid": endpoint.pid, "blueprint": endpoint.blueprint, "engine": endpoint.engine,
        "idleExit": endpoint.idle_exit}), durable=False)


def withdraw(data_dir: Path) -> None:
    """Remove the announcement if it is this process's."""
    found = read(data_dir)
    if found is not None and found.pid == os.getpid():
        (Path(data_dir) / FILE).unlink(missing_ok=True)


def read(data_dir: Path) -> Endpoint | None:
    try:
        data = json.loads((Path(data_dir) / FILE).read_text())
        return Endpoint(str(data["url"]), int(data["pid"]), str(data["blueprint"]), str(data.get("engine", "default")),
                        bool(data.get("idleExit", False)))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def read_live(data_dir: Path) -> Endpoint | None:
    """The announced control plane, if its process still runs (a crash leaves the file behind)."""
    found = read(data_dir)
    return found if found is not None and pid_alive(found.pid) else None


def pid_alive(pid) -> bool:
    if not pid:
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False  # it ended without cleaning up: what it recorded is stale
    except PermissionError:
        return True  # someone else's process
    return True


def report_failure(data_dir: Path, error) -> None:
    """Say why this control plane could not start (its kind and message), for the CLI that started it."""
    kind = getattr(error, "kind", "internal_error")
    message = str(error) if hasattr(error, "kind") else f"{type(error).__name__}: {error}"  # a bug: its type helps
    write_atomic(Path(data_dir) / FAILURE_FILE, json.dumps({"id": kind, "message": message, "pid": os.getpid()}),
                 durable=False)


def read_failure(data_dir: Path, pid: int) -> dict | None:
    """What the control plane of ``pid`` reported when it could not start, if it did."""
    try:
        found = json.loads((Path(data_dir) / FAILURE_FILE).read_text())
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) and found.get("pid") == pid else None
