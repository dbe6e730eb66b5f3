"""The swarm engine backend of jobs (``render-local --engine swarm``): each job is a Swarm
service with one replica and no restart, so Swarm places it on a node with room for its plan
(memory and CPU are limits and reservations) and runs it once.

Why not ``replicated-job`` mode, which is made for run-to-completion tasks: up to Docker 29
(moby/moby#52652, fixed in swarmkit#3237) a job task that completed keeps counting against its
node's reservations in the constraint enforcer, even after its service is removed, so after a
few dozen jobs a node rejects every new task ("assigned node no longer meets constraints").
A replicated service whose task may not restart ends the same way (its finished task leaves
the node's reservations, and is deleted with the service), and the supervisor removes the
service once the end is recorded.

What the local backend reads from a container comes from the service and its task here:
the task's state says how it ended (complete, failed, rejected; its container's exit code;
Swarm's error), the service's log API gives the output (live, and again after the fact),
and the service's labels are the same as a job container's, for recovery. Where the task's
container is on this engine (always, on a one-node swarm) it is asked directly for what a
task does not say: its start and end times, whether the kernel killed it for memory, and
a cancel's SIGTERM with the job's grace. Elsewhere a cancel or a timeout removes the
service (Swarm sends SIGTERM, then SIGKILL after the service's stop grace period).

Images: a one-node swarm runs the build's image by id (no registry, no pull). With more
nodes, ``RENDER_LOCAL_REGISTRY`` names a registry each node can pull from: the image is
tagged and pushed there once, and the service runs it by digest.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
from datetime import timedelta

import docker.errors
import requests

from renderlocal.core.clock import parse_stored, utcnow
from renderlocal.core.errors import InvalidInput
from renderlocal.core.job_limits import DEFAULT_GRACE_SECONDS, DEFAULT_TIMEOUT_SECONDS
from renderlocal.core.models import Job, stamp
from renderlocal.core.statuses import JobStatus
from renderlocal.executor.container_limits import BOUNDED_ENGINE_LOG, DROPPED_CAPABILITIES
from renderlocal.executor.engine import LABEL, is_not_found, label
from renderlocal.executor.jobs import (CANCELABLE, ENGINE_RETRY_SECONDS, JobRunner, JobSupervision, _docker_time,
                                       _short, container_name, job_labels)
from renderlocal.executor.logcapture import LogCapture

ENV_REGISTRY = "RENDER_LOCAL_REGISTRY"
POLL_SECONDS = 1.0  # how often a job's supervisor reads its task's state (one request per job)
RECORD_EVERY_POLLS = 3  # its record is read every third poll: hundreds of jobs share one store's lock
WAITING_POLL_SECONDS = 3.0  # while no node has room: a fan-out of hundreds waits, and polls the manager less
ENDED = ("complete", "failed", "rejected", "shutdown", "orphaned", "remove")
STARTED = ("running",) + ENDED


class SwarmJobRunner(JobRunner):
    """The jobs of one data dir as Swarm services; everything else as the local runner does."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._containers: dict[str, str] = {}  # job service id -> its task's container on this engine

    def supervision(self, job_id: str) -> "SwarmJobSupervision":
        return SwarmJobSupervision(self, job_id)

    def container_of(self, job: Job) -> str | None:
        """Its task's container when that runs on this engine (the job's ``containerId`` is its service's)."""
        if not job.containerId:
            return None
        found = self._containers.get(job.containerId)  # a service's one task keeps its container
        if found is None:
            found = _task_container(self.engine, job.containerId)
            if found is not None:
                if len(self._containers) > 10_000:  # ended jobs' entries: forgotten in one go
                    self._containers.clear()
                self._containers[job.containerId] = found
        return found

    def _stop_container(self, service_id: str, grace: int) -> None:
        """Cancel: SIGTERM now and SIGKILL after the grace; the supervisor records the end."""
        stop_task(self.engine, service_id, grace)

    def recreate_missing_records(self) -> None:
        """A job whose record was lost is rebuilt from its service's spec and labels; the service
        of a settled job (a crash came between its record and its removal) is removed."""
        services = self.engine.client.services.list(
            filters={"label": [f"{LABEL}=job", f"{label('data-dir')}={self.data_dir}"]})
        for service in services:
            spec = service.attrs["Spec"]
            labels = spec.get("Labels") or {}
            job_id = labels.get(label("job-id"))
            if not self.ours(service, job_id, labels):
                continue
            known = self.store.get(job_id)
            if known is not None:
                if Job.from_doc(known).settled:
                    remove_service(self.engine, service.id)
                continue
            container = spec["TaskTemplate"]["ContainerSpec"]
            env = dict(item.partition("=")[::2] for item in container.get("Env") or [])
            env.pop("TINI_KILL_PROCESS_GROUP", None)
            job = Job(
                id=job_id, serviceId=labels[label("service-id")],
                startCommand=(container.get("Args") or [""])[-1].removeprefix(CANCELABLE),
                planId=labels[label("plan-id")], createdAt=labels[label("created-at")],
                buildId=labels[label("build-id")], image=labels.get(label("image"), container.get("Image", "")),
                env=env, timeoutSeconds=int(labels.get(label("timeout-seconds"), DEFAULT_TIMEOUT_SECONDS)),
                cancelGraceSeconds=int(labels.get(label("cancel-grace-seconds"), DEFAULT_GRACE_SECONDS)),
                containerId=service.id, engine=self.engine.id,
            )
            job.events = [{"at": job.createdAt, "status": JobStatus.PENDING,
                           "message": "created (record rebuilt from its swarm service)"}]
            self.store.insert(job.to_doc())


class SwarmJobSupervision(JobSupervision):
    """One job's service to its end. The job's ``containerId`` holds its service's id."""

    def __init__(self, runner: JobRunner, job_id: str):
        super().__init__(runner, job_id)
        self.capture: ServiceLogCapture | None = None  # once its task was placed

    def launch(self, job: Job) -> Job:
        """Create the job's service (or take over the one a crash left under its name); it stays
        pending until Swarm runs its task. A launch error fails the job."""
        records = self.records
        service = None
        try:
            self.runner.prepare(job.serviceId)
            service = self._left_behind(job)
            if service is None:
                service = self._create(job)
            return records.update(job.id, containerId=service.id)
        except Exception as exc:
            if service is not None:  # made, but its id could not be saved: it must not run unrecorded
                remove_service(self.engine, service.id)
            return records.record_end(job.id, JobStatus.FAILED, None, {
                "type": "startFailed", "message": f"the swarm service could not be created: {_short(exc)}"})

    def _create(self, job: Job):
        from docker.types import NetworkAttachmentConfig, RestartPolicy, ServiceMode

        plan = job.plan
        nano_cpus = swarm_nano_cpus(self.engine, plan)
        if nano_cpus < plan.nano_cpus:
            self.records.note(job.id, f"{plan.name} has {plan.cpu} CPU; the largest swarm node has "
                                      f"{nano_cpus / 1e9:g}: capped at that")
        return self.engine.client.services.create(
            swarm_image(self.engine, job.image), command=["/bin/sh", "-c"], args=[CANCELABLE + job.startCommand],
            env=job.env | {"TINI_KILL_PROCESS_GROUP": "1"}, name=container_name(job.id),
            mode=ServiceMode("replicated", replicas=1),  # not replicated-job: see the top of this module
            restart_policy=RestartPolicy(condition="none"),  # one task, run once, as a job container
            resources=service_resources(plan, nano_cpus), init=True, cap_drop=list(DROPPED_CAPABILITIES),
            # no-new-privileges has no field in a service's spec before API 1.44 (Docker 25)
            log_driver=BOUNDED_ENGINE_LOG["type"], log_driver_options=BOUNDED_ENGINE_LOG["config"],
            stop_grace_period=job.cancelGraceSeconds * 1_000_000_000,
            labels=job_labels(job, self.runner.data_dir) | {label("image"): job.image},
            networks=[NetworkAttachmentConfig(self.runner.network.ensure())],
        )

    def _left_behind(self, job: Job):
        try:
            service = self.engine.client.services.get(container_name(job.id))
        except Exception as exc:
            if is_not_found(exc):
                return None
            raise
        if not self.runner.ours(service, job.id, service.attrs["Spec"].get("Labels") or {}):
            raise InvalidInput(f"a swarm service named {service.name} that render-local did not make is in the way; "
                               "remove it (docker service rm) and run the job again")
        return service

    def run(self) -> None:
        records = self.records
        job = records.get(self.job_id)
        if self.nothing_to_run(job):
            return
        if not job.containerId:  # new, or a crash came before its service was made
            job = self.launch(job)
            if job.final:
                return
        try:
            task, timed_out = self._wait_for_task_end(job)
        except _Released:  # its control plane closed: the next one adopts the job from its service
            self._finish_capture(job)
            return
        self._finish_capture(job)
        job = records.get(job.id)
        if task is None:
            if job.cancelRequestedAt:  # removed by the cancel before its task ended (or ran)
                records.record_end(job.id, JobStatus.CANCELED, None, None, "canceled")
            else:
                records.record_end(job.id, JobStatus.FAILED, None, {
                    "type": "lost", "message": "its swarm service was removed while it ran (docker service rm)"})
        elif self._never_ran(task):
            records.record_end(job.id, JobStatus.FAILED, None, {
                "type": "startFailed", "message": f"swarm could not start its task: {task['Status'].get('Err')}"},
                finished=_docker_time(task["Status"].get("Timestamp")))
        else:
            self._record_exit(job.id, self._end_state(task, job, timed_out), timed_out)
        records.update(job.id, logsComplete=True)
        remove_service(self.engine, job.containerId)

    def _wait_for_task_end(self, job: Job) -> tuple[dict | None, bool]:
        """Poll the task: follow its log and record its start once placed, kill it at its deadline
        or after a cancel's grace. Returns its last state (None: the service is gone) and whether
        it timed out."""
        timed_out = bool(job.timedOutAt)
        killed = False
        waiting = None
        polls = 0
        while True:
            if self.runner.released.is_set():
                raise _Released()
            try:
                task = self._task(job.containerId)
            except (requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError):
                self.engine_lost_at = self.engine_lost_at or stamp()  # the manager restarts: ask again
                time.sleep(ENGINE_RETRY_SECONDS)
                continue
            except docker.errors.APIError as exc:
                if exc.status_code != 503:
                    raise
                # no manager now (a leader election, or this engine left the swarm): ask again
                self.engine_lost_at = self.engine_lost_at or stamp()
                time.sleep(ENGINE_RETRY_SECONDS)
                continue
            if task is None:
                return None, timed_out
            state = task["Status"]["State"] if task else "new"
            if state == "pending" and task["Status"].get("Err") not in (None, "", waiting):
                waiting = task["Status"]["Err"]  # no node has room for its plan now: said once per reason
                self.records.note(job.id, f"waiting for a swarm node with room for its plan ({waiting})")
            if state == "rejected" and not _container_id(task) and not job.cancelRequestedAt:
                job = self._place_again(job, task)
                continue
            if state in STARTED and (self.capture is None or job.status == JobStatus.PENDING) \
                    and not self._never_ran(task):
                if self.capture is None:
                    self.capture = ServiceLogCapture(self.engine.api, self.runner.logs, job.id, job.containerId)
                    self.capture.start_following()
                if job.status == JobStatus.PENDING:
                    job = self.records.mark_running(job.id, self._started_at(task))
            if state in ENDED and not self._container_runs_on(task):
                return task, timed_out
            if job.status == JobStatus.RUNNING and not timed_out:
                deadline = (job.started() or utcnow()) + timedelta(seconds=job.timeoutSeconds)
                if utcnow() >= deadline:
                    job = self.records.update(job.id, timedOutAt=job.timedOutAt or stamp())
                    timed_out = True
                    kill_task(self.engine, job.containerId)
            polls += 1
            if polls % RECORD_EVERY_POLLS == 0:  # a cancel is all that changes it from outside
                job = self.records.get(job.id)
            if job.cancelRequestedAt and not killed:
                asked = parse_stored(job.cancelRequestedAt)
                if job.status == JobStatus.PENDING or (utcnow() - asked).total_seconds() > job.cancelGraceSeconds + 2:
                    remove_service(self.engine, job.containerId)  # not placed yet, or the stop did not take
                    killed = True
            time.sleep(WAITING_POLL_SECONDS if waiting and state == "pending" else POLL_SECONDS)

    def _place_again(self, job: Job, task: dict) -> Job:
        """A task Swarm rejected before any container of it existed: nothing ran, so a new service
        is made in its place. Docker 20.10's constraint enforcer counts the reservations of other
        jobs' finished tasks until their services are removed, and rejects tasks the scheduler had
        rightly placed."""
        self.records.note(job.id, f"swarm rejected its task before it ran ({task['Status'].get('Err')}): placed again")
        remove_service(self.engine, job.containerId)
        return self.records.update(job.id, containerId=self._create(job).id)

    def _container_runs_on(self, task: dict) -> bool:
        """Whether the ended task's container still runs here (the constraint enforcer can mark a
        task rejected after its container started): its own end is waited for."""
        state = local_container_state(self.engine, task)
        return bool(state and state.get("Running"))

    def _never_ran(self, task: dict) -> bool:
        """Swarm refused the task (no image, rejected) or its container never started; where the
        container is on this engine, its own state says."""
        state = local_container_state(self.engine, task)
        if state is not None:
            return not _docker_time(state.get("StartedAt"))
        return task["Status"]["State"] == "rejected" or (task["Status"]["State"] in ENDED and _exit_code(task) is None)

    def _finish_capture(self, job: Job) -> None:
        if self.capture is None:
            return
        self.capture.stop()
        try:
            self.capture.join()
        except Exception as exc:  # what was captured live is all there is
            if not is_not_found(exc):  # removed (a cancel elsewhere) needs no word
                print(f"render-local: job {job.id}: its log could not be caught up from the swarm ({_short(exc)}); "
                      "it keeps the lines captured live", file=sys.stderr, flush=True)

    def _task(self, service_id: str) -> dict | None:
        """The service's task ({} while Swarm has not made it yet), None when the service is gone."""
        try:
            tasks = self.engine.api.tasks(filters={"service": service_id})
            if not tasks:
                self.engine.api.inspect_service(service_id)  # NotFound when removed
        except Exception as exc:
            if is_not_found(exc):
                return None
            raise
        return max(tasks, key=lambda t: t["CreatedAt"]) if tasks else {}

    def _started_at(self, task: dict) -> str:
        state = local_container_state(self.engine, task)
        started = _docker_time(state.get("StartedAt")) if state else None
        return started or _docker_time(task["Status"].get("Timestamp")) or stamp()

    def _end_state(self, task: dict, job: Job, timed_out: bool) -> dict:
        """The ended task as the container state ``_record_exit`` reads."""
        code = _exit_code(task)
        state = local_container_state(self.engine, task)
        if state is not None:  # its container is on this engine: the kernel's word on memory
            oom, finished = bool(state.get("OOMKilled")), state.get("FinishedAt")
        else:  # on another node: SIGKILL that neither a cancel nor the timeout sent is the memory limit
            oom = code == 137 and not job.cancelRequestedAt and not timed_out
            finished = task["Status"].get("Timestamp")
        return {"ExitCode": code, "OOMKilled": oom, "FinishedAt": finished}

    def _finish_logs(self, job: Job) -> None:
        if job.containerId:
            try:
                ServiceLogCapture(self.engine.api, self.runner.logs, job.id, job.containerId).fetch_once()
            except Exception as exc:
                if not is_not_found(exc):
                    raise
            remove_service(self.engine, job.containerId)
        self.records.update(job.id, logsComplete=True)


class _Released(Exception):
    """The supervisor's control plane closed while its job ran."""


class ServiceLogCapture(LogCapture):
    """A job service's log. Swarm's follow stream does not end with the task (a service may
    run more), so the supervisor cuts it once the task ended, then catches up once more."""

    source = "services"
    LAST_LINES_SECONDS = 0.3  # lines the broker delivers after the end; the catch-up reads any it did not
    STOP_SECONDS = 10.0
    CATCH_UP_TRIES = 5  # a busy manager answers a log request 503 now and then

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._following = None
        self._cut = False

    def _log_request(self, follow: bool):
        response = super()._log_request(follow)
        if follow:
            self._following = response
        return response

    def _copy_logs(self, follow: bool) -> None:
        from urllib3.exceptions import ProtocolError

        try:
            super()._copy_logs(follow)
        except ProtocolError:
            if not (follow and self._cut):
                raise  # the stream broke without being cut here: the catch-up reads it again anyway

    def stop(self) -> None:
        """End the follow stream: its socket is shut down, which wakes a blocked read (a close does not)."""
        if self.thread is None:
            return
        self.thread.join(self.LAST_LINES_SECONDS)
        if self.thread.is_alive() and self._following is not None:
            self._cut = True
            try:  # the SDK's way to the socket under a response (its attach uses it); a unix one is wrapped
                raw = self.api._get_raw_response_socket(self._following)
                getattr(raw, "_sock", raw).shutdown(socket.SHUT_RDWR)
            except (OSError, AttributeError):  # closed meanwhile
                pass

    def join(self) -> None:
        if self.thread is not None:
            self.thread.join(self.STOP_SECONDS)  # the reader closes the stream as it ends
        for attempt in range(self.CATCH_UP_TRIES):
            try:
                self._copy_logs(False)
                break
            except Exception as exc:
                if is_not_found(exc) or getattr(exc, "status_code", None) != 503 or attempt == self.CATCH_UP_TRIES - 1:
                    self.writer.close()
                    raise
                time.sleep(1.0)
        self.writer.close()


def swarm_nano_cpus(engine, plan) -> int:
    """The plan's CPU as its service gets it: capped at the largest ready node's, as the local engine
    caps it at its machine's (a Pro Plus job on 2-core nodes runs with 2 rather than never). A plan
    whose memory no node has is refused: its task would wait forever."""
    nodes = [node["Description"]["Resources"] for node in engine.api.nodes()
             if node["Spec"].get("Availability") == "active" and node["Status"].get("State") == "ready"]
    roomy = [size for size in nodes if size["MemoryBytes"] >= plan.memory_bytes]
    if not roomy:
        largest = max((size["MemoryBytes"] for size in nodes), default=0)
        raise InvalidInput(f"no node of the swarm has the {plan.memory_text} of memory the {plan.name} plan reserves "
                           f"(the largest has {largest / 2**30:.1f} GB); pick a smaller plan or join a bigger node")
    return min(plan.nano_cpus, max(size["NanoCPUs"] for size in roomy))


def service_resources(plan, nano_cpus: int) -> dict:
    """The plan's memory and CPU as limits and reservations (Swarm places the task where they
    fit), and its process limit (API 1.41, Docker 20.10)."""
    from docker.types import Resources

    resources = Resources(cpu_limit=nano_cpus, mem_limit=plan.memory_bytes,
                          cpu_reservation=nano_cpus, mem_reservation=plan.memory_bytes)
    resources["Limits"]["Pids"] = plan.pids_limit
    return resources


_pushed: dict[tuple[str, str], str] = {}
_push_guard = threading.Lock()


def swarm_image(engine, image: str) -> str:
    """What a job's service runs: the build's image by id on a one-node swarm (an id is never
    pulled), or, with RENDER_LOCAL_REGISTRY, by digest after a push there (once per image)."""
    local = engine.client.images.get(image)
    registry = os.environ.get(ENV_REGISTRY, "").strip().rstrip("/")
    if not registry:
        return local.id
    with _push_guard:
        key = (registry, local.id)
        if key not in _pushed:
            _pushed[key] = _push(engine, local, image, registry)
        return _pushed[key]


def _push(engine, local, image: str, registry: str) -> str:
    repository, _, tag = image.rpartition(":") if ":" in image.rpartition("/")[2] else (image, "", "latest")
    target = f"{registry}/{repository}"
    local.tag(target, tag)
    digest = None
    for event in engine.api.push(target, tag, stream=True, decode=True):
        if event.get("error"):
            raise InvalidInput(f"pushing {image} to {registry} ({ENV_REGISTRY}) failed: {event['error']}")
        digest = (event.get("aux") or {}).get("Digest") or digest
    if not digest:
        raise InvalidInput(f"pushing {image} to {registry} ({ENV_REGISTRY}) gave no digest")
    return f"{target}@{digest}"


def local_container_state(engine, task: dict) -> dict | None:
    """The State of the task's container when it is on this engine, else None."""
    container_id = _container_id(task)
    if not container_id:
        return None
    try:
        return engine.api.inspect_container(container_id)["State"]
    except Exception as exc:
        if is_not_found(exc):
            return None
        raise


def stop_task(engine, service_id: str, grace: int) -> None:
    """SIGTERM to the job's task and SIGKILL after ``grace``: through its container when it is on
    this engine (its end and log stay readable), else by removing the service (whose stop grace
    period is the job's)."""
    container_id = _task_container(engine, service_id)
    if container_id is None:
        remove_service(engine, service_id)
        return
    try:
        engine.api.stop(container_id, timeout=grace)
    except Exception as exc:
        if not is_not_found(exc):
            raise


def kill_task(engine, service_id: str) -> None:
    """SIGKILL to the job's task (its timeout); a service whose task is elsewhere is removed."""
    container_id = _task_container(engine, service_id)
    if container_id is None:
        remove_service(engine, service_id)
        return
    try:
        engine.api.kill(container_id)
    except Exception as exc:  # it stopped meanwhile: the poll sees it
        if not is_not_found(exc) and getattr(exc, "status_code", None) != 409:
            raise


def _task_container(engine, service_id: str) -> str | None:
    try:
        tasks = engine.api.tasks(filters={"service": service_id})
    except Exception as exc:
        if is_not_found(exc):
            return None
        raise
    for task in tasks:
        if local_container_state(engine, task) is not None:
            return task["Status"]["ContainerStatus"]["ContainerID"]
    return None


def remove_service(engine, service_id: str) -> None:
    try:
        engine.api.remove_service(service_id)
    except Exception as exc:
        if not is_not_found(exc):
            raise


def _exit_code(task: dict) -> int | None:
    return (task.get("Status", {}).get("ContainerStatus") or {}).get("ExitCode")


def _container_id(task: dict) -> str | None:
    return (task.get("Status", {}).get("ContainerStatus") or {}).get("ContainerID")