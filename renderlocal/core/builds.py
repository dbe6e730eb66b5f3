"""Builds: a service's image, from its Dockerfile or from a native build command.

Each build gets a unique tag; the service's ``lastSuccessfulBuildId`` moves only
when a build succeeds, so a broken rebuild never changes what new jobs run.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import tarfile
import threading
import time
from pathlib import Path

from renderlocal.core.errors import InvalidInput, NotFound
from renderlocal.core.ids import new_id
from renderlocal.core.logstore import ts_now
from renderlocal.core.models import Build, Service, stamp
from renderlocal.core.processes import pid_alive

LABEL = "render-local"
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
_STEP = re.compile(r"^Step \d+/\d+ : ")
_RUNNING_IN = re.compile(r"^ ---> Running in ([0-9a-f]{12,64})$")  # the legacy builder's step container
CANCEL_POLL_SECONDS = 0.25


def image_tag(service: Service, build_id: str) -> str:
    return f"render-local/{service.id}:{build_id}"


class Builder:
    def __init__(self, plane):
        self.plane = plane
        self.store = plane.store
        self.logs = plane.logs
        self._steps: dict[str, BuildStep] = {}  # running here: build id -> its current step container

    # -- queries ---------------------------------------------------------------
    def get(self, build_id: str) -> Build:
        doc = self.store.get("builds", build_id)
        if doc is None:
            raise NotFound(f"unknown build {build_id!r}")
        return Build.from_doc(doc)

    def list(self, service_id: str | None = None) -> list[Build]:
        docs = self.store.find("builds", serviceId=service_id) if service_id else self.store.all("builds")
        return sorted((Build.from_doc(d) for d in docs), key=lambda b: b.createdAt, reverse=True)

    def building(self, service_id: str) -> Build | None:
        return next((b for b in self.list(service_id) if b.status == "building"), None)

    # -- running a build ---------------------------------------------------------
    def create(self, service: Service, trigger: str = "manual") -> Build:
        """Record a new build; ``run`` does the work (call it in a thread)."""
        build = Build(
            id=new_id("bld"), serviceId=service.id, status="building", createdAt=stamp(),
            startedAt=stamp(), trigger=trigger, image=image_tag(service, "pending"),
        )
        build.image = image_tag(service, build.id)
        doc = build.to_doc() | {"ownerPid": os.getpid()}
        self.store.insert("builds", doc)
        self.plane.update_service(service.id, latestBuildId=build.id)
        return build

    def start(self, service: Service, trigger: str = "manual") -> tuple[Build, threading.Thread]:
        build = self.create(service, trigger)
        thread = threading.Thread(target=self.run, args=(build.id,), name=f"build-{build.id}", daemon=True)
        thread.start()
        return build, thread

    def run(self, build_id: str) -> Build:
        build = self.get(build_id)
        service = self.plane.get_service(build.serviceId)
        writer = self.logs.writer(build.id)
        step = self._steps[build.id] = BuildStep(self, build.id)
        step.watch_for_cancel()
        try:
            if service.runtime == "docker":
                image_id, failure = self._docker_build(service, build, writer, step)
            else:
                image_id, failure = self._native_build(service, build, writer, step)
        except Exception as exc:  # the engine vanished, a path is unreadable...
            image_id, failure = None, {"message": f"{type(exc).__name__}: {exc}"}
        finally:
            step.done()
            del self._steps[build.id]
            writer.close()
        return self._finish(build.id, image_id, failure)

    def cancel(self, build_id: str) -> Build:
        """Ask a running build to stop; the process running it kills its current step."""
        self.get(build_id)  # unknown ids: NotFound
        now = stamp()

        def request(doc):
            if doc["status"] != "building":
                raise InvalidInput(f"build {build_id} already ended ({doc['status']}); nothing to cancel")
            doc["cancelRequestedAt"] = doc.get("cancelRequestedAt") or now  # the first request counts

        doc = self.store.update("builds", build_id, request)
        if not pid_alive(doc.get("ownerPid")):
            self.recover()  # nobody runs it any more: stop what it left and record the end now
        return self.get(build_id)

    def wait(self, build_id: str, timeout: float) -> Build:
        deadline = time.monotonic() + timeout
        while (build := self.get(build_id)).status == "building" and time.monotonic() < deadline:
            time.sleep(0.1)
        return build

    def _finish(self, build_id: str, image_id: str | None, failure: dict | None) -> Build:
        def change(doc):  # a cancel recorded up to this write wins, so it is read in the same transaction
            canceled = bool(doc.get("cancelRequestedAt"))
            doc.update(status="canceled" if canceled else "failed" if failure else "succeeded", finishedAt=stamp(),
                       imageId=None if canceled else image_id, failureReason=None if canceled else failure)

        build = Build.from_doc(self.store.update("builds", build_id, change))
        if build.status == "succeeded":
            self._promote(build)
            self.prune(build.serviceId)
            return build
        shutil.rmtree(self.plane.data_dir / "builds" / build.id, ignore_errors=True)  # a native snapshot
        if build.status == "canceled" and image_id:
            try:  # it finished before the cancel took: jobs never run a canceled build
                self.plane.engine.images.remove(build.image)
            except Exception:
                pass
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
        engine = self.plane.engine
        context = Path(service.dockerContext)
        dockerfile = Path(service.dockerfilePath)
        if not dockerfile.is_file():
            return None, {"message": f"Dockerfile not found: {dockerfile}"}
        try:
            relative = str(dockerfile.relative_to(context))
        except ValueError:
            relative = str(dockerfile)  # outside the context: the SDK ships it along
        step_line, image_id, failure = None, None, None
        stream = engine.api.build(
            path=str(context), dockerfile=relative, tag=build.image, rm=True, forcerm=True,
            decode=True, labels={LABEL: "build", f"{LABEL}.service-id": service.id, f"{LABEL}.build-id": build.id},
        )
        pending = ""
        for chunk in stream:
            if "stream" in chunk:
                pending += chunk["stream"]
                *lines, pending = pending.split("\n")
                for line in lines:
                    if _STEP.match(line):
                        step_line = line
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

    def _native_build(self, service: Service, build: Build, writer, step: "BuildStep"):
        engine = self.plane.engine
        base = RUNTIME_IMAGES[service.runtime]
        try:
            engine.images.get(base)
        except Exception:
            return None, {"message": f"base image {base} for runtime {service.runtime} is missing; docker pull {base}"}
        snapshot = self.plane.data_dir / "builds" / build.id / "src"
        shutil.copytree(service.rootDir, snapshot, symlinks=True, ignore=SNAPSHOT_IGNORE)
        self.store.update("builds", build.id, lambda d: d.update(snapshotDir=str(snapshot)))
        command = service.buildCommand or "true"
        writer.write(ts_now(), "stdout", f"==> Snapshot of {service.rootDir} taken; running build command: {command}")
        container = engine.containers.create(
            base, entrypoint=["/bin/sh", "-c"], command=[command], working_dir=NATIVE_WORKDIR,
            environment=service.envVars, labels={LABEL: "build", f"{LABEL}.build-id": build.id},
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
                changes=[f"WORKDIR {NATIVE_WORKDIR}", f'LABEL {LABEL}="build" {LABEL}.service-id="{service.id}" {LABEL}.build-id="{build.id}"'],
            )
            return image.id, None
        finally:
            container.remove(force=True)

    # -- pruning and recovery --------------------------------------------------------
    def prune(self, service_id: str) -> list[str]:
        """Drop old build images and snapshots; keep the newest few and any in use."""
        service = self.plane.get_service(service_id)
        in_use = {service.lastSuccessfulBuildId}
        in_use |= {j["buildId"] for j in self.plane.job_store.live() if j["status"] in ("pending", "running")}
        succeeded = [b for b in self.list(service_id) if b.status == "succeeded"]
        removed = []
        for old in succeeded[KEEP_BUILDS:]:
            if old.id in in_use:
                continue
            try:
                self.plane.engine.images.remove(old.image, noprune=False)
            except Exception:
                continue  # still used by a stopped container; try next time
            shutil.rmtree(self.plane.data_dir / "builds" / old.id, ignore_errors=True)
            self.store.update("builds", old.id, lambda d: d.update(pruned=True))
            removed.append(old.id)
        return removed

    def recover(self) -> None:
        """A build whose process died is not coming back: stop what it left, record how it ended."""
        for doc in self.store.all("builds"):
            if doc["status"] == "building" and not pid_alive(doc.get("ownerPid")):
                self._remove_containers(doc["id"])
                shutil.rmtree(self.plane.data_dir / "builds" / doc["id"], ignore_errors=True)
                if doc.get("cancelRequestedAt"):
                    ended = {"status": "canceled", "failureReason": None}
                else:
                    ended = {"status": "failed", "failureReason": {"message": "render-local stopped while this build ran"}}
                self.store.update("builds", doc["id"], lambda d, ended=ended: d.update(ended, finishedAt=stamp()))

    def _remove_containers(self, build_id: str) -> None:
        """A native build's container outlives a killed render-local: remove it (a Dockerfile
        build stops by itself when the engine loses its client)."""
        try:
            for container in self.plane.engine.containers.list(all=True, filters={"label": f"{LABEL}.build-id={build_id}"}):
                container.remove(force=True)
        except Exception:
            pass  # no engine: the container, if any, goes with the next recovery


class BuildStep:
    """The container a running build's current step runs in, and the cancel that kills it.

    A cancel may come from another process (the CLI while the app builds), so
    it is read from the store; the legacy builder runs each RUN step in a
    container it names in the log, and killing it fails the build at that step.
    """

    def __init__(self, builder: Builder, build_id: str):
        self.builder = builder
        self.build_id = build_id
        self.container_id: str | None = None
        self.canceled = threading.Event()
        self.finished = threading.Event()
        self._lock = threading.Lock()

    def watch_for_cancel(self) -> None:
        threading.Thread(target=self._watch, name=f"cancel-{self.build_id}", daemon=True).start()

    def running(self, container_id: str) -> None:
        with self._lock:
            self.container_id = container_id
        if self.canceled.is_set():
            self._kill()

    def done(self) -> None:
        self.finished.set()

    def _watch(self) -> None:
        while not self.finished.wait(CANCEL_POLL_SECONDS):
            try:
                if self.canceled.is_set() or self.builder.get(self.build_id).cancelRequestedAt:
                    self.canceled.set()
                    self._kill()  # on every poll: a step container may exist but not have started yet
            except Exception:
                pass  # a busy store or engine: try again on the next poll

    def _kill(self) -> None:
        with self._lock:
            container_id = self.container_id
        if container_id:
            try:
                self.builder.plane.engine.api.kill(container_id)
            except Exception:
                pass  # already gone: the step ended by itself


def _tar_of(directory: Path, prefix: str) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        tar.add(str(directory), arcname=prefix)
    return buffer.getvalue()
