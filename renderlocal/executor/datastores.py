"""The blueprint's data stores: a PostgreSQL server per ``databases:`` entry and a
Redis-compatible server per Key Value, on the private network.

Each runs the official image's contract (``postgres:<major>``, ``redis:7``; offline,
``.ci/base-images`` builds stand-ins from Debian's packages), with its data in a
named volume that survives restarts, ``down`` and crashes, its plan's memory as
its limit, a localhost port of its own for the user's ``psql`` or GUI, and a
restart policy, so it outlives a killed control plane. A store starts, and is
waited for (``pg_isready``'s check, ``PING``), before anything that needs it runs.
"""

from __future__ import annotations

import collections
import re
import socket
import threading
import time
from pathlib import Path

from renderlocal.core.errors import EngineUnavailable
from renderlocal.core.models import KEY_VALUE_PORT, POSTGRES_PORT, Database, KeyValue, stamp
from renderlocal.core.state import State
from renderlocal.executor.engine import LABEL, Engine, is_not_found, label
from renderlocal.executor.network import PrivateNetwork
from renderlocal.executor.readiness import key_value_ready, postgres_ready

READY_TIMEOUT_SECONDS = 90
PROBE_SECONDS = 0.02
CONTAINER_LOOK_SECONDS = 0.5
KEY_VALUE_IMAGE = "redis:7"
KEY_VALUE_OVERHEAD_MB = 64  # the container's limit beyond Redis's own maxmemory


class DataStoreFailed(EngineUnavailable):
    """A database or Key Value did not start or did not turn ready."""

    kind = "data_store_unavailable"


def container_name(store) -> str:
    return f"render-local-{store.id}"


def volume_name(store) -> str:
    return f"render-local-{store.id}-data"


class DataStores:
    """Starts, waits for and stops the data stores of one data dir."""

    def __init__(self, engine: Engine, state: State, network: PrivateNetwork, data_dir: Path):
        self.engine = engine
        self.state = state
        self.store = state.store
        self.network = network
        self.data_dir = data_dir
        self.notes: list[str] = []  # what the faces should know (a Postgres version this engine lacks)
        self._locks: dict[str, threading.Lock] = {}
        self._unpullable: set[str] = set()
        self._starting: collections.Counter = collections.Counter()  # store id -> starts under way here
        self._guard = threading.Lock()

    def all(self) -> list:
        return [*self.state.list_databases(), *self.state.list_key_values()]

    def ensure(self, store_ids: list[str]) -> None:
        """Start what is not running and wait until each answers (a job, a deploy or ``up`` needs them)."""
        self._begin(store_ids)
        try:
            for store_id in store_ids:
                store = self._record(store_id)
                with self._lock_of(store.id):  # a fan-out's jobs all need it: one start
                    self._ensure(self._record(store_id))
        finally:
            self._end(store_ids)

    def _begin(self, store_ids: list[str]) -> None:
        with self._guard:
            self._starting.update(store_ids)

    def _end(self, store_ids: list[str]) -> None:
        with self._guard:
            self._starting.subtract(store_ids)
            self._starting += collections.Counter()  # drops the ids at zero

    def _being_started(self, store_id: str) -> bool:
        with self._guard:
            return self._starting[store_id] > 0

    def _ensure(self, store) -> None:
        try:
            container = self._container(store)
            if container is None:
                container = self._create(store)
            if not container.attrs["State"].get("Running"):
                self._update(store, status="creating")
                try:
                    container.start()
                except Exception as exc:
                    if "allocated" not in str(exc) and "already in use" not in str(exc):
                        raise
                    container.remove(force=True)  # its port went to another program: a new port (its data stays)
                    self._update(store, hostPort=None)
                    container = self._create(store)
                    container.start()
            self._wait_ready(store, container)
        except DataStoreFailed as exc:
            self._update(store, status="unavailable", statusMessage=str(exc))
            raise
        except Exception as exc:
            self._update(store, status="unavailable", statusMessage=f"{_what(store)} {store.name} did not start: {exc}")
            if isinstance(exc, EngineUnavailable):
                raise
            raise DataStoreFailed(store.statusMessage) from None
        if store.status != "available":
            self._update(store, status="available", statusMessage=None)

    def mark_starting(self, store_ids: list[str]) -> None:
        """Those not available are ``creating`` from now: a face that polls after ``up`` sees them
        start, not the outcome of an earlier attempt. Until the caller's ``unmark_starting``
        (after its ``ensure``) no pass takes their missing containers for lost ones."""
        self._begin(store_ids)
        for store_id in store_ids:
            store = self._record(store_id)
            if store.status != "available":
                self._update(store, status="creating", statusMessage=None)

    def unmark_starting(self, store_ids: list[str]) -> None:
        self._end(store_ids)

    def _create(self, store):
        engine = self.engine.client
        image = self._image(store)
        port = store.hostPort or free_port()
        common = dict(
            name=container_name(store), detach=True, restart_policy={"Name": "unless-stopped"},
            labels={LABEL: store.kind, label("data-dir"): str(self.data_dir), label("store-id"): store.id},
            **self.network.join([store.id, store.name]),
        )
        if isinstance(store, Database):
            password = self.state.password_of(store.id)
            container = engine.containers.create(
                image, environment={"POSTGRES_USER": store.databaseUser, "POSTGRES_PASSWORD": password,
                                    "POSTGRES_DB": store.databaseName},
                volumes={self.engine.volume(volume_name(store), self.data_dir, "data"): {
                    "bind": "/var/lib/postgresql/data", "mode": "rw"}},
                ports={f"{POSTGRES_PORT}/tcp": ("127.0.0.1", port)},
                mem_limit=store.memoryMB * 1024 * 1024, **common)
        else:
            container = engine.containers.create(
                image, command=["redis-server", "--protected-mode", "no", "--appendonly", "yes", "--dir", "/data",
                                "--maxmemory", f"{store.memoryMB}mb", "--maxmemory-policy", store.maxmemoryPolicy],
                volumes={self.engine.volume(volume_name(store), self.data_dir, "data"): {"bind": "/data", "mode": "rw"}},
                ports={f"{KEY_VALUE_PORT}/tcp": ("127.0.0.1", port)},
                mem_limit=(store.memoryMB + KEY_VALUE_OVERHEAD_MB) * 1024 * 1024, **common)
        self._update(store, hostPort=port, image=image, status="creating")
        return container

    def _image(self, store) -> str:
        """The image to run: the version asked for if the engine has it or can pull it, else the
        nearest Postgres it has (a note says so, with the blueprint's line)."""
        if isinstance(store, KeyValue):
            self._pull_if_missing(KEY_VALUE_IMAGE)
            return KEY_VALUE_IMAGE
        wanted = f"postgres:{store.version}"
        if self._pull_if_missing(wanted):
            return wanted
        versions = sorted({int(m.group(1)) for image in self.engine.client.images.list("postgres")
                           for tag in image.tags if (m := re.fullmatch(r"postgres:(\d+)", tag))})
        if not versions:
            raise DataStoreFailed(f"no PostgreSQL image here: {wanted} could not be pulled and no postgres:<major> "
                                  "image exists (.ci/base-images builds one offline)")
        nearest = min(versions, key=lambda v: (abs(v - int(store.version)), -v))
        if store.versionLine:
            asked = f"render.yaml:{store.versionLine}: {store.name} asks for PostgreSQL {store.version}"
        else:
            asked = f"{store.name} gets Render's default, PostgreSQL {store.version} (postgresMajorVersion sets another)"
        note = f"{asked}, which this engine does not have and cannot pull: it runs postgres:{nearest}"
        if note not in self.notes:
            self.notes.append(note)
        return f"postgres:{nearest}"

    def _pull_if_missing(self, image: str) -> bool:
        client = self.engine.client
        try:
            client.images.get(image)
            return True
        except Exception as exc:
            if not is_not_found(exc):
                raise
        if image in self._unpullable:  # asked once: an offline engine stays offline for this process
            return False
        try:
            repository, tag = image.split(":")
            client.images.pull(repository, tag=tag)
            return True
        except Exception:  # no registry answers (offline): the caller decides what runs instead
            self._unpullable.add(image)
            return False

    def _wait_ready(self, store, container) -> None:
        """Until it answers as ``pg_isready`` or ``redis-cli ping`` would have it, on its localhost
        port (probed every 20 ms: ``readiness.py``), or its container exits."""
        if isinstance(store, Database):
            def ready() -> bool:
                return postgres_ready(store.hostPort, store.databaseUser, store.databaseName)
        else:
            def ready() -> bool:
                return key_value_ready(store.hostPort)
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        next_look = 0.0
        while time.monotonic() < deadline:
            if ready():
                return
            if time.monotonic() >= next_look:  # did it die? (a bad setting, a full disk): say why
                next_look = time.monotonic() + CONTAINER_LOOK_SECONDS
                container.reload()
                state = container.attrs["State"]
                if not state.get("Running") and not state.get("Restarting"):
                    logs = container.logs(tail=5).decode("utf-8", "replace").strip().replace("\n", " | ")
                    raise DataStoreFailed(f"{_what(store)} {store.name} exited with code {state.get('ExitCode')}: "
                                          f"{logs}")
            time.sleep(PROBE_SECONDS)
        raise DataStoreFailed(f"{_what(store)} {store.name} did not answer within {READY_TIMEOUT_SECONDS} s")

    def stop(self, remove_volumes: bool = False) -> None:
        """Stop every data store (``down``); with ``remove_volumes`` their data goes too."""
        for store in [*self.state.list_databases(include_removed=True), *self.state.list_key_values(include_removed=True)]:
            with self._lock_of(store.id):
                container = self._container(store)
                if container is not None:
                    container.stop(timeout=10)
                    if remove_volumes:
                        container.remove(force=True)
                if remove_volumes:
                    self.engine.remove_volume(volume_name(store))
                self._update(store, status="unavailable", statusMessage="stopped by down: up starts it again")

    def reconcile(self) -> None:
        """A store recorded available (or starting when a control plane died) whose container is gone
        (removed by hand) is unavailable."""
        for store in self.all():
            if store.status not in ("available", "creating") or self._being_started(store.id):
                continue  # a start under way here makes its container: not gone, not yet there
            lock = self._lock_of(store.id)
            if not lock.acquire(blocking=False):
                continue
            try:
                store = self._record(store.id)  # as it is now, not as listed
                if store.status in ("available", "creating") and self._container(store) is None:
                    self._update(store, status="unavailable", statusMessage="its container is gone: up starts a new "
                                                                           "one (its data stays)")
            finally:
                lock.release()

    # -- records ------------------------------------------------------------------------------
    def _record(self, store_id: str):
        return self.state.get_database(store_id) if store_id.startswith("dpg-") else self.state.get_key_value(store_id)

    def _container(self, store):
        try:
            return self.engine.client.containers.get(container_name(store))
        except Exception as exc:
            if is_not_found(exc):
                return None
            raise

    def _update(self, store, **changes) -> None:
        table = "databases" if isinstance(store, Database) else "keyvalues"
        self.store.update(table, store.id, lambda doc: doc.update(changes, updatedAt=stamp()))
        for name, value in changes.items():
            setattr(store, name, value)

    def _lock_of(self, store_id: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(store_id, threading.Lock())


def _what(store) -> str:
    return "database" if isinstance(store, Database) else "Key Value"


def free_port() -> int:
    """A localhost port free now: the store keeps it (a taken one later means a new one)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
