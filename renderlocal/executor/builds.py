"""Builds: a service's image, from its Dockerfile or from a native build command.

Each build gets a unique tag; the service's ``lastSuccessfulBuildId`` moves only
when a build succeeds, so a broken rebuild never changes what new jobs run.
Builds run only in the control plane, each in a thread of its own; a build
found ``building`` that no thread here runs was left by a crashed control plane.
"""

from __future__ import annotations

import io
import re
import shutil
import tarfile
import threading
import time
from pathlib import Path
from typing import Callable

from renderlocal.core.errors import InvalidInput
from renderlocal.core.ids import new_id
from renderlocal.core.logstore import LogStore, ts_now
from renderlocal.core.models import Build, Service, stamp
from renderlocal.core.statuses import BuildStatus
from renderlocal.core.state import State
from renderlocal.executor.engine import LABEL, Engine, is_not_found, label
from renderlocal.executor.services import ServiceCatalog

KEEP_BUILDS = 3  # successful build images kept per service, besides those in use
NATIVE_WORKDIR = "/opt/render/project/src"  # where Render puts a native service's code
RUNTIME_IMAGES = {
    "python": "python:3.11-slim",
    "node": "node:20-slim",
    "go": "golang:1.22",
    "ruby": "ruby:3.3-slim",
    "rust": "rust:1-slim",
    "elixir": "elixir:1.16-slim",
}
SNAPSHOT_IGNORE = shutil.ignore_patterns(".git", "__pycache__", ".venv", "node_modules")
_STEP = re.compile(r"^Step (\d+)/(\d+) : (.*)$")
_RUNNING_IN = re.compile(r"^ ---> Running in ([0-9a-f]{12,64})$")  # the legacy builder's step container


def image_tag(service: Service, build_id: str) -> str:
    return f"render-local/{service.id}:{build_id}"


class Builder:
    """Runs the builds of one data dir. ``jobs_in_use()`` names the builds unfinished jobs run
    (their images are never pruned)."""

    def __init__(self, engine: Engine, state: State, services: ServiceCatalog, data_dir: Path,
                 jobs_in_use: Callable[[], set[str]], on_success: Callable[[Build], None] = lambda _build: None):
        self.engine = engine
        self.state = state
        self.store = state.store
        self.logs: LogStore = state.logs
        self.services = services
        self.data_dir = data_dir
        self.jobs_in_use = jobs_in_use
        self.on_success = on_success  # after the pointer moved: the control plane may deploy it
        self._running: dict[str, BuildStep] = {}  # build id -> its current step, while it runs here
        self._guard = threading.Lock()

    # -- running a build ---------------------------------------------------------
    def start(self, service: Service, trigger: str = "manual") -> tuple[Build, threading.Thread]:
        """Record a new build and run it in a thread; returns both."""
        self.engine.client  # no engine: fail before recording a build nobody can run
        build = Build(id=new_id("bld"), serviceId=service.id, status=BuildStatus.BUILDING, createdAt=stamp(),
                      startedAt=stamp(), trigger=trigger)
        build.image = image_tag(service, build.id)
        step = BuildStep(self.engine, build.id)
        with self._guard:  # registered before it is recorded: recover() never takes it for a dead one's
            self._running[build.id] = step
        try:
            self.store.insert("builds", build.to_doc())
            self.services.update(service.id, latestBuildId=build.id)
        except BaseException:
            with self._guard:
                self._running.pop(build.id, None)
            raise
        thread = threading.Thread(target=self._run, args=(build.id, step), name=f"build-{build.id}", daemon=True)
        thread.start()
        return build, thread

    def wait(self, build_id: str, timeout: float) -> Build:
        """The build once it ended (or as it is after ``timeout`` seconds)."""
        deadline = time.monotonic() + timeout
        while (build := self.state.get_build(build_id)).status == BuildStatus.BUILDING and time.monotonic() < deadline:
            time.sleep(0.1)
        return build

    def building(self) -> bool:
        """Whether a build runs right now."""
        with self._guard:
            return bool(self._running)

    def _run(self, build_id: str, step: "BuildStep") -> Build:
        build = self.state.get_build(build_id)
        writer = self.logs.writer(build.id)
        try:
            service = self.state.get_service(build.serviceId)
            if service.runtime == "docker":
                image_id, failure = self._docker_build(service, build, writer, step)
            else:
                image_id, failure = self._native_build(service, build, writer, step)
        except Exception as exc:  # the engine vanished, a path is unreadable...
            image_id, failure = None, {"message": f"{type(exc).__name__}: {exc}"}
        finally:
            step.done()
            writer.close()
        try:
            return self._finish(build.id, image_id, failure)
        finally:
            with self._guard:
                self._running.pop(build.id, None)

    def cancel(self, build_id: str) -> Build:
        """Stop a running build: its current step is killed; the last successful build stays."""
        self.state.get_build(build_id)  # unknown ids: NotFound
        now = stamp()

        def request(doc):
            if doc["status"] != BuildStatus.BUILDING:
                raise InvalidInput(f"build {build_id} already ended ({doc['status']}); nothing to cancel")
            doc["cancelRequestedAt"] = doc.get("cancelRequestedAt") or now  # the first request counts

        self.store.update("builds", build_id, request)
        with self._guard:
            step = self._running.get(build_id)
        if step is None:
            self.recover()  # nobody runs it any more: stop what it left and record the end now
        else:
            step.cancel()
        return self.state.get_build(build_id)

    def _finish(self, build_id: str, image_id: str | None, failure: dict | None) -> Build:
        def change(doc):  # a cancel recorded up to this write wins, so it is read in the same transaction
            canceled = bool(doc.get("cancelRequestedAt"))
            status = BuildStatus.CANCELED if canceled else BuildStatus.FAILED if failure else BuildStatus.SUCCEEDED
            doc.update(status=status, finishedAt=stamp(), progress=None,
                       imageId=None if canceled else image_id, failureReason=None if canceled else failure)

        build = Build.from_doc(self.store.update("builds", build_id, change))
        if build.status == BuildStatus.SUCCEEDED:
            self._promote(build)
            self.prune(build.serviceId)
            self.on_success(build)
            return build
        shutil.rmtree(self.data_dir / "builds" / build.id, ignore_errors=True)  # a native snapshot
        if build.status == BuildStatus.CANCELED and image_id:
            try:  # it finished before the cancel took: jobs never run a canceled build
                self.engine.client.images.remove(build.image)
            except Exception as exc:
                if not is_not_found(exc):
                    raise
        return build

    def _promote(self, build: Build) -> None:
        """Move the last-successful pointer, unless a newer build already succeeded."""

        def change(doc):
            current = doc.get("lastSuccessfulBuildId")
            if current and current != build.id:
                other = self.store.get("builds", current)
                if other and other["createdAt"] > build.createdAt:
                    return
            doc["lastSuccessfulBuildId"] = build.id

        self.store.update("services", build.serviceId, change)

    def _docker_build(self, service: Service, build: Build, writer, step: "BuildStep"):
        engine = self.engine.client
        context = Path(service.dockerContext)
        dockerfile = Path(service.dockerfilePath)
        if not dockerfile.is_file():
            return None, {"message": f"Dockerfile not found: {dockerfile}"}
        try:
            relative = str(dockerfile.relative_to(context))
        except ValueError:
            relative = str(dockerfile)  # outside the context: the SDK ships it along
        step_line, image_id, failure = None, None, None
        labels = {LABEL: "build", label("service-id"): service.id, label("build-id"): build.id,
                  label("data-dir"): str(self.data_dir)}
        stream = engine.api.build(path=str(context), dockerfile=relative, tag=build.image, rm=True, forcerm=True,
                                  decode=True, labels=labels)
        pending = ""
        for chunk in stream:
            if "stream" in chunk:
                pending += chunk["stream"]
                *lines, pending = pending.split("\n")
                for line in lines:
                    if found := _STEP.match(line):
                        step_line = line
                        # the builder counts a step of its own for each label: the Dockerfile's are the first
                        steps = int(found.group(2)) - len(labels)
                        if int(found.group(1)) <= steps:
                            self._record_progress(build.id, int(found.group(1)), steps, found.group(3))
                    elif running := _RUNNING_IN.match(line):
                        step.running(running.group(1))
                    writer.write(ts_now(), "stdout", line)
            elif "error" in chunk:
                message = chunk.get("errorDetail", {}).get("message") or chunk["error"]
                writer.write(ts_now(), "stderr", message.rstrip("\n"))
                failure = {"message": message.strip(), "step": step_line}
            elif "aux" in chunk and "ID" in chunk["aux"]:
                image_id = chunk["aux"]["ID"]
        if pending:
            writer.write(ts_now(), "stdout", pending)
        if failure:
            return None, failure
        if image_id is None:
            image_id = engine.images.get(build.image).id
        return image_id, None

    def _record_progress(self, build_id: str, step: int, steps: int, text: str) -> None:
        """The step it is at, on its record while it builds (faces follow it by the change it makes)."""
        def change(doc):
            if doc["status"] == BuildStatus.BUILDING:
                doc["progress"] = {"step": step, "steps": steps, "text": text}

        self.store.update("builds", build_id, change)

    def _native_build(self, service: Service, build: Build, writer, step: "BuildStep"):
        engine = self.engine.client
        base = RUNTIME_IMAGES[service.runtime]
        try:
            engine.images.get(base)
        except Exception as exc:
            if not is_not_found(exc):
                raise
            return None, {"message": f"base image {base} for runtime {service.runtime} is missing; docker pull {base}"}
        snapshot = self.data_dir / "builds" / build.id / "src"
        shutil.copytree(service.rootDir, snapshot, symlinks=True, ignore=SNAPSHOT_IGNORE)
        self.store.update("builds", build.id, lambda d: d.update(snapshotDir=str(snapshot)))
        command = service.buildCommand or "true"
        writer.write(ts_now(), "stdout", f"==> Snapshot of {service.rootDir} taken; running build command: {command}")
        self._record_progress(build.id, 1, 1, command)
        container = engine.containers.create(
            base, entrypoint=["/bin/sh", "-c"], command=[command], working_dir=NATIVE_WORKDIR,
            environment=service.envVars, labels={LABEL: "build", label("build-id"): build.id,
                                                 label("data-dir"): str(self.data_dir)},
        )
        try:
            container.put_archive("/", _tar_of(snapshot, NATIVE_WORKDIR.lstrip("/")))
            container.start()
            step.running(container.id)
            for chunk in container.logs(stream=True, follow=True):
                for line in chunk.decode("utf-8", "replace").splitlines():
                    writer.write(ts_now(), "stdout", line)
            code = container.wait()["StatusCode"]
            if code != 0:
                return None, {"message": f"build command exited with code {code}: {command}", "exitCode": code}
            image = container.commit(
                repository=build.image.split(":")[0], tag=build.id,
                changes=[f"WORKDIR {NATIVE_WORKDIR}", f'LABEL {LABEL}="build" {LABEL}.service-id="{service.id}" '
                                                      f'{LABEL}.build-id="{build.id}" {LABEL}.data-dir="{self.data_dir}"'],
            )
            return image.id, None
        finally:
            container.remove(force=True)

    # -- pruning and recovery --------------------------------------------------------
    def prune(self, service_id: str) -> list[str]:
        """Drop old build images and snapshots; keep the newest few and any in use."""
        service = self.state.get_service(service_id)
        in_use = {service.lastSuccessfulBuildId} | self.jobs_in_use()
        succeeded = [b for b in self.state.list_builds(service_id) if b.status == BuildStatus.SUCCEEDED]
        removed = []
        for old in succeeded[KEEP_BUILDS:]:
            if old.id in in_use:
                continue
            try:
                self.engine.client.images.remove(old.image, noprune=False)
            except Exception:  # still used by a stopped container (or gone): try next time
                continue
            shutil.rmtree(self.data_dir / "builds" / old.id, ignore_errors=True)
            self.store.update("builds", old.id, lambda d: d.update(pruned=True))
            removed.append(old.id)
        return removed

    def recover(self) -> None:
        """A build that no thread here runs was left by a control plane that died:
        stop what it left, record how it ended."""
        recorded = self.state.running_builds()  # read before the running ones: one started since is in both
        with self._guard:
            running = set(self._running)
        for build in recorded:
            if build.id in running:
                continue
            self._remove_containers(build.id)
            shutil.rmtree(self.data_dir / "builds" / build.id, ignore_errors=True)

            def end(doc):
                if doc["status"] != BuildStatus.BUILDING:
                    return  # it ended meanwhile
                doc["progress"] = None
                if doc.get("cancelRequestedAt"):
                    doc.update(status=BuildStatus.CANCELED, failureReason=None, finishedAt=stamp())
                else:
                    doc.update(status=BuildStatus.FAILED, finishedAt=stamp(),
                               failureReason={"message": "render-local stopped while this build ran"})

            self.store.update("builds", build.id, end)

    def _remove_containers(self, build_id: str) -> None:
        """A native build's container outlives a killed render-local: remove it (a Dockerfile
        build stops by itself when the engine loses its client)."""
        for container in self.engine.client.containers.list(all=True, filters={"label": f"{label('build-id')}={build_id}"}):
            container.remove(force=True)


class BuildStep:
    """The container a running build's current step runs in, and the cancel that kills it.

    The legacy builder runs each RUN step in a container it names in the log;
    killing it fails the build at that step. Once canceled, the current step is
    killed again every KILL_EVERY seconds until the build ends: a step container
    may be named before it has started, when a kill does not take yet.
    """

    KILL_EVERY = 0.25

    def __init__(self, engine: Engine, build_id: str):
        self.engine = engine
        self.build_id = build_id
        self.container_id: str | None = None
        self.canceled = threading.Event()
        self.finished = threading.Event()
        self._lock = threading.Lock()

    def running(self, container_id: str) -> None:
        with self._lock:
            self.container_id = container_id
        if self.canceled.is_set():
            self._kill()

    def cancel(self) -> None:
        if not self.canceled.is_set():
            self.canceled.set()
            threading.Thread(target=self._keep_killing, name=f"cancel-{self.build_id}", daemon=True).start()

    def done(self) -> None:
        self.finished.set()

    def _keep_killing(self) -> None:
        while True:
            self._kill()
            if self.finished.wait(self.KILL_EVERY):
                return

    def _kill(self) -> None:
        with self._lock:
            container_id = self.container_id
        if container_id:
            try:
                self.engine.api.kill(container_id)
            except Exception:  # gone, not started yet (409) or the engine busy: the next round tries again
                pass


def _tar_of(directory: Path, prefix: str) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        tar.add(str(directory), arcname=prefix)
    return buffer.getvalue()
