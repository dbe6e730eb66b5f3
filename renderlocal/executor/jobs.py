"""Jobs: create on the last successful build, run under plan limits, supervise.

The control plane is the only process that runs jobs, so it supervises every
job of its data dir: one thread per running job captures the log, enforces
the timeout and records the end. What a job is outlives the process: its
container carries labels that say what it is, the engine keeps its state and
exit code, and its log file holds every line captured so far. A control plane
that starts after a crash adopts every unfinished job from those
(``reconcile``), catches its log up from the engine and records how it ended.
"""

from __future__ import annotations

import sys
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Callable

from renderlocal.core.clock import parse_stored, utcnow
from renderlocal.core.envvars import parse_env_overrides
from renderlocal.core.errors import InvalidInput
from renderlocal.core.ids import looks_like_id, new_id
from renderlocal.core.job_limits import (DEFAULT_GRACE_SECONDS, DEFAULT_TIMEOUT_SECONDS, cancel_grace_seconds,
                                          job_timeout_seconds, seconds_setting)
from renderlocal.core.jobstore import JobStore
from renderlocal.core.logstore import LogStore, normalize_ts
from renderlocal.core.models import Build, Job, Service, stamp
from renderlocal.core.statuses import JobStatus
from renderlocal.core.plans import plan_for_job
from renderlocal.executor.container_limits import cpu_cap_note
from renderlocal.executor.engine import LABEL, Engine, is_not_found, label
from renderlocal.executor.logcapture import LogCapture, attach
from renderlocal.executor.network import PrivateNetwork
from renderlocal.executor.ownership import ContainerProof

# On cancel every process of the command gets SIGTERM (docker-init signals the
# process group); the shell then waits for its child to finish handling it and
# exits instead of going on to the command's next step.
CANCELABLE = "trap 'exit 143' TERM; "
ENGINE_RETRY_SECONDS = 1.0  # how often a job's supervisor asks an engine that went away
REMOVAL_GRACE_SECONDS = 0.5  # how long a killed container may take to vanish under docker rm -f


def container_name(job_id: str) -> str:
    return f"render-local-{job_id}"


def job_labels(job: Job, data_dir: Path) -> dict[str, str]:
    """What a job's container says it is: enough to rebuild its record if the store is lost,
    and the proof that this data dir made it (``ownership.py``)."""
    return ContainerProof(data_dir).labels("job", job.id) | {
        LABEL: "job",
        label("data-dir"): str(data_dir),
        label("job-id"): job.id,
        label("service-id"): job.serviceId,
        label("build-id"): job.buildId,
        label("plan-id"): job.planId,
        label("created-at"): job.createdAt,
        label("timeout-seconds"): str(job.timeoutSeconds),
        label("cancel-grace-seconds"): str(job.cancelGraceSeconds),
    }



class JobRecords:
    """A job's lifecycle in the store: each change one read-modify-write of its record."""

    def __init__(self, store: JobStore):
        self.store = store

    def get(self, job_id: str) -> Job:
        return Job.from_doc(self.store.get(job_id))

    def update(self, job_id: str, **changes) -> Job:
        return Job.from_doc(self.store.update(job_id, lambda d: d.update(changes)))

    def mark_running(self, job_id: str, started: str, note: str | None = None) -> Job:
        def change(doc):
            if doc["status"] == JobStatus.PENDING:
                doc["status"] = JobStatus.RUNNING
                doc["startedAt"] = started
                message = f"started ({note})" if note else "started"
                doc["events"].append({"at": started, "status": JobStatus.RUNNING, "message": message})

        return Job.from_doc(self.store.update(job_id, change))

    def note(self, job_id: str, message: str) -> Job:
        """An event that says something about the job without changing its status."""
        def change(doc):
            doc["events"].append({"at": stamp(), "status": doc["status"], "message": message})

        return Job.from_doc(self.store.update(job_id, change))

    def record_end(self, job_id: str, status: JobStatus, exit_code: int | None, reason: dict | None,
                    message: str | None = None, finished: str | None = None) -> Job:
        finished = finished or stamp()

        def change(doc):
            if Job.from_doc(doc).final:
                return
            end = finished
            if doc.get("startedAt") and parse_stored(end) < parse_stored(doc["startedAt"]):
                end = doc["startedAt"]  # the engine's two clocks can disagree by microseconds
            doc.update(status=status, finishedAt=end, exitCode=exit_code, failureReason=reason)
            if not doc.get("containerId"):
                doc["logsComplete"] = True  # it never ran: there is nothing to capture
            text = message or (reason or {}).get("message") or status
            doc["events"].append({"at": end, "status": status, "message": text})

        return Job.from_doc(self.store.update(job_id, change))



class JobRunner:
    """Runs and supervises the jobs of one data dir on one engine.

    ``build_of(build_id)`` looks a build up (the image a job runs).
    """

    def __init__(self, engine: Engine, jobs: JobStore, logs: LogStore, build_of: Callable[[str], Build],
                 data_dir: Path, network: PrivateNetwork, prepare: Callable[[str], None] = lambda _service_id: None):
        self.engine = engine
        self.store = jobs
        self.logs = logs
        self.build_of = build_of
        self.data_dir = data_dir
        self.network = network
        self.prepare = prepare  # starts what the service's env needs (its databases) before a job runs
        self.records = JobRecords(jobs)
        self.proof = ContainerProof(data_dir)
        self._foreign: set[str] = set()  # containers already said to be someone else's
        self._supervised: dict[str, threading.Thread] = {}
        self._guard = threading.Lock()
        # set when its control plane closes: swarm supervisors then leave their jobs to the next one
        self.released = threading.Event()

    def get(self, job_id: str) -> Job:
        return self.records.get(job_id)

    # -- create --------------------------------------------------------------------
    def create(self, service: Service, start_command: str | None = None, plan_id: str | None = None,
               env_overrides=None, secrets: dict | None = None, timeout_seconds=None,
               cancel_grace=None, trigger: str = "api") -> Job:
        """Record a pending job and start supervising it (its supervisor launches it), as on Render.

        ``secrets``: the values of the service's ``sync: false`` vars as the asking face
        has them (None: this process's); a key it lacks is left unset, as the face would.
        """
        if start_command is not None and not isinstance(start_command, str):
            raise InvalidInput("startCommand must be a string", field="startCommand")
        command = (start_command if start_command is not None else service.own_start_command) or ""
        if not command.strip():
            raise InvalidInput(f"startCommand is required (service {service.name} has no start command of its own)",
                               field="startCommand")
        plan = plan_for_job(service.type, service.planId, plan_id)
        overrides = parse_env_overrides(env_overrides)
        timeout = (job_timeout_seconds() if timeout_seconds is None
                   else seconds_setting("timeoutSeconds", timeout_seconds, DEFAULT_TIMEOUT_SECONDS))
        grace = (cancel_grace_seconds() if cancel_grace is None
                 else seconds_setting("cancelGraceSeconds", cancel_grace, DEFAULT_GRACE_SECONDS, minimum=0))
        self.engine.client  # no engine: fail now, before any record exists
        if not service.lastSuccessfulBuildId:
            raise InvalidInput(
                f"service {service.name} has no successful build yet; build it first: render-local builds create {service.name}"
            )
        build = self.build_of(service.lastSuccessfulBuildId)
        env = dict(service.envVars)
        if secrets is not None:
            for key in service.secretKeys:
                env.pop(key, None)
                if secrets.get(key) is not None:
                    env[key] = secrets[key]
        env |= {"RENDER": "true", "RENDER_SERVICE_ID": service.id, "RENDER_SERVICE_NAME": service.name,
                "RENDER_SERVICE_TYPE": service.type} | overrides
        job = Job(
            id=new_id("job"), serviceId=service.id, startCommand=command, planId=plan.id,
            createdAt=stamp(), buildId=build.id, image=build.image, env=env, envOverrides=overrides,
            timeoutSeconds=timeout, cancelGraceSeconds=grace, engine=self.engine.id, trigger=trigger,
        )
        job.events = [{"at": job.createdAt, "status": JobStatus.PENDING, "message": "created"}]
        self.store.insert(job.to_doc())
        self.adopt(job.id)
        return job

    # -- cancel ----------------------------------------------------------------------------
    def cancel(self, job_id: str) -> Job:
        """Ask a job to stop: SIGTERM now, SIGKILL after its grace period; its supervisor records the end."""
        job = self.get(job_id)
        if job.final:
            raise InvalidInput(f"job {job_id} already ended ({job.status}); nothing to cancel")
        now = stamp()

        def change(doc):
            if not doc.get("cancelRequestedAt"):
                doc["cancelRequestedAt"] = now
                doc["events"].append({"at": now, "status": doc["status"], "message": "cancel requested"})

        job = Job.from_doc(self.store.update(job_id, change))
        if not job.containerId:
            return self.records.record_end(job_id, JobStatus.CANCELED, None, None, "canceled before it started")
        threading.Thread(target=self._stop_container, args=(job.containerId, job.cancelGraceSeconds),
                         name=f"cancel-{job_id}", daemon=True).start()
        return self.get(job_id)

    def _stop_container(self, container_id: str, grace: int) -> None:
        try:
            self.engine.api.stop(container_id, timeout=grace)
        except Exception as exc:
            if not is_not_found(exc):
                raise  # gone already is fine: the supervisor records the end

    # -- supervision -------------------------------------------------------------------
    def adopt(self, job_id: str) -> None:
        """Supervise the job from a thread of its own, unless one already does."""
        with self._guard:
            running = self._supervised.get(job_id)
            if running is not None and running.is_alive():
                return
            thread = threading.Thread(target=self._supervise, args=(job_id,), name=f"job-{job_id}", daemon=True)
            self._supervised[job_id] = thread
        thread.start()

    def _supervise(self, job_id: str) -> None:
        try:
            self.supervision(job_id).run()
        finally:
            with self._guard:
                if self._supervised.get(job_id) is threading.current_thread():
                    del self._supervised[job_id]

    def container_of(self, job: Job) -> str | None:
        """The running job's container on this engine (a shell, live figures and peak memory look
        into it); the swarm backend's may run on another node (None)."""
        return job.containerId

    def supervision(self, job_id: str) -> "JobSupervision":
        """What runs one job to its end on this runner's backend (swarm_jobs.py has the other)."""
        return JobSupervision(self, job_id)

    def supervising(self) -> bool:
        """Whether any job is being supervised right now."""
        with self._guard:
            return any(thread.is_alive() for thread in self._supervised.values())

    def wait(self, job_id: str, timeout: float | None = None) -> Job:
        """Block until the job has ended and its log is complete (or ``timeout`` passed)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            job = self.get(job_id)
            if job.settled:
                return job
            with self._guard:
                thread = self._supervised.get(job_id)
            if thread is None:
                self.adopt(job_id)
                continue
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return job
            thread.join(None if left is None else min(left, 1.0))

    def reconcile(self, jobs: list[Job]) -> list[str]:
        """Adopt every unsettled job on this engine nobody supervises; returns the adopted ids."""
        adopted = []
        for job in jobs:
            if job.settled or job.engine not in (None, self.engine.id):
                continue  # another engine's (a control plane with another DOCKER_HOST made it): not ours
            with self._guard:
                running = self._supervised.get(job.id)
                if running is not None and running.is_alive():
                    continue
            adopted.append(job.id)
            self.adopt(job.id)
        return adopted

    def recreate_missing_records(self) -> None:
        """A job whose record was lost (a store set aside) is rebuilt from its container; the
        container of a settled job (a crash came between its record and its removal) is removed."""
        # sparse: the list call alone (labels, state), not an inspect per container every pass, which
        # during a 200-job fan-out asked the engine 200 more times every two seconds
        containers = self.engine.client.containers.list(
            all=True, sparse=True, filters={"label": [f"{LABEL}=job", f"{label('data-dir')}={self.data_dir}"]})
        for listed in containers:
            labels = listed.attrs.get("Labels") or {}
            job_id = labels.get(label("job-id"))
            if not self.ours(listed, job_id, labels):
                continue
            known = self.store.get(job_id)
            if known is not None:
                if Job.from_doc(known).settled and listed.status != "running":
                    listed.remove(force=True)  # its end and log were recorded, then the process died
                continue
            container = self.engine.client.containers.get(listed.id)  # a lost record: rebuilt from its config
            config = container.attrs["Config"]
            env = dict(item.partition("=")[::2] for item in config.get("Env") or [])
            env.pop("TINI_KILL_PROCESS_GROUP", None)
            job = Job(
                id=job_id, serviceId=labels[label("service-id")],
                startCommand=(config.get("Cmd") or [""])[-1].removeprefix(CANCELABLE),
                planId=labels[label("plan-id")], createdAt=labels[label("created-at")],
                buildId=labels[label("build-id")], image=config.get("Image", ""), env=env,
                timeoutSeconds=int(labels.get(label("timeout-seconds"), DEFAULT_TIMEOUT_SECONDS)),
                cancelGraceSeconds=int(labels.get(label("cancel-grace-seconds"), DEFAULT_GRACE_SECONDS)),
                containerId=container.id, engine=self.engine.id,
            )
            job.events = [{"at": job.createdAt, "status": JobStatus.PENDING,
                           "message": "created (record rebuilt from its container)"}]
            self.store.insert(job.to_doc())


    def ours(self, container, job_id: str | None, labels: dict | None = None) -> bool:
        """Whether the container (or swarm service) is this data dir's job ``job_id`` (an id of a job's
        shape, and the proof label of it); a foreign one is left alone and said once on stderr. ``labels``:
        its labels when the object does not carry them (a container listed sparse, a swarm service)."""
        if looks_like_id(job_id or "", "job") and self.proof.verify(
                container.labels if labels is None else labels, "job", job_id):
            return True
        if container.id not in self._foreign:
            self._foreign.add(container.id)
            attrs = getattr(container, "attrs", None) or {}
            what = "service" if "Spec" in attrs and "Config" not in attrs else "container"
            name = (attrs.get("Name") or (attrs.get("Names") or [getattr(container, "name", "?")])[0] or "?").lstrip("/")
            if what == "service":
                name = attrs["Spec"].get("Name", name)
            print(f"render-local: {what} {name} ({container.id[:12]}) carries the labels of a job of "
                  f"{self.data_dir} without this data dir's proof: left alone (not recorded, billed or removed)",
                  file=sys.stderr, flush=True)
        return False


class JobSupervision:
    """Supervising one job to its end: launch it if nobody has, capture its log,
    enforce its timeout and cancel grace, record how it ended."""

    def __init__(self, runner: JobRunner, job_id: str):
        self.runner = runner
        self.records = runner.records
        self.job_id = job_id
        self.engine = runner.engine
        self.engine_lost_at: str | None = None  # when the engine stopped answering while the job ran
        self.launched = None  # the container launch() made or took over: run() need not look it up again

    def launch(self, job: Job):
        """Create and start the job's container (the one place that does); a launch error fails
        the job. Returns the job and its output stream, opened before the start as ``docker run``
        does so that every byte is captured live. A container that a crash left behind under the
        job's name is taken over instead of made twice.
        """
        records = self.runner.records
        plan = job.plan
        engine = self.engine.client
        stream = None
        try:
            self.runner.prepare(job.serviceId)
            container = self._left_behind(job) if job.containerId else None
            if container is None:
                try:
                    container = engine.containers.create(
                        job.image, entrypoint=["/bin/sh", "-c"], command=[CANCELABLE + job.startCommand],
                        environment=job.env | {"TINI_KILL_PROCESS_GROUP": "1"}, name=container_name(job.id),
                        detach=True, init=True,  # docker-init as PID 1 passes SIGTERM to the whole process group
                        **self.engine.limits(plan, job.image),  # memory, CPU, processes, privileges, engine log
                        labels=job_labels(job, self.runner.data_dir),
                        **self.runner.network.join(),  # beside the services, reaching them by name; never a disk
                    )
                except Exception as exc:  # 409: the name is taken, by a container a crash left before its id was saved
                    if getattr(exc, "status_code", None) != 409 or (container := self._named_after(job)) is None:
                        raise
            records.update(job.id, containerId=container.id)
            state = container.attrs["State"]
            if state.get("StartedAt", "").startswith("0001") and not state.get("Running"):  # never started
                if records.get(job.id).cancelRequestedAt:
                    container.remove(force=True)
                    return records.record_end(job.id, JobStatus.CANCELED, None, None, "canceled before it started"), None
                stream = attach(engine.api, container.id)
                container.start()
            container.reload()
            started = _docker_time(container.attrs["State"]["StartedAt"]) or stamp()
            self.launched = container
        except Exception as exc:
            if stream is not None:
                stream.close()
            return records.record_end(job.id, JobStatus.FAILED, None, {
                "type": "startFailed", "message": f"the container could not start: {_short(exc)}"}), None
        return records.mark_running(job.id, started, cpu_cap_note(engine, plan)), stream

    def _named_after(self, job: Job, seconds: float = 5.0):
        """The container that holds the job's name, once the engine shows it: a closing control
        plane's last launch may have reserved the name a moment before the container appears."""
        deadline = time.monotonic() + seconds
        while (container := self._left_behind(job)) is None and time.monotonic() < deadline:
            time.sleep(0.1)
        return container

    def _left_behind(self, job: Job):
        """The job's container, if a crash came between its creation and its id being saved
        (one under its name that this data dir did not make is refused, never taken over)."""
        try:
            container = self.engine.client.containers.get(container_name(job.id))
        except Exception as exc:
            if is_not_found(exc):
                return None
            raise
        if not self.runner.ours(container, job.id):
            raise InvalidInput(f"a container named {container.name} that render-local did not make is in the way; "
                               "remove it (docker rm -f) and run the job again")
        return container


    def nothing_to_run(self, job: Job) -> bool:
        """Whether the job ended already (its log is caught up if a crash left it short), or was
        canceled before anything ran (its end is recorded now)."""
        if job.final:
            if not job.logsComplete:
                self._finish_logs(job)
            return True
        if job.cancelRequestedAt and not job.containerId:
            self.records.record_end(job.id, JobStatus.CANCELED, None, None, "canceled before it started")
            return True
        return False

    def run(self) -> None:
        records = self.records
        job = records.get(self.job_id)
        if self.nothing_to_run(job):
            return
        stream = None
        if job.status == JobStatus.PENDING:  # new, or launched just before a crash
            if self.runner.released.is_set():  # its control plane closed meanwhile: the next one launches it
                return
            job, stream = self.launch(job)
            if job.final:
                return
        container = self.launched or self._container(job)
        if container is None:
            records.record_end(job.id, JobStatus.FAILED, None, {"type": "lost", "message": "its container vanished"})
            return
        capture = LogCapture(self.engine.api, self.runner.logs, job.id, container.id, stream)
        capture.start_following()
        timed_out = self._wait_for_exit(job, container)
        try:
            capture.join()
        except Exception as exc:  # removed before the catch-up read: what was captured is all there is
            if not is_not_found(exc):
                raise
            capture.writer.close()
        state = self._final_state(container, timed_out)
        if state is None:
            records.record_end(job.id, JobStatus.FAILED, None, {
                "type": "lost", "message": "its container was removed while it ran (docker rm -f, or a prune)"})
            records.update(job.id, logsComplete=True)
            return
        if self.engine_lost_at and state.get("ExitCode") != 0 and not records.get(job.id).cancelRequestedAt:
            code = state.get("ExitCode")
            records.record_end(job.id, JobStatus.FAILED, code, {
                "type": "lost", "exitCode": code, "engineLostAt": self.engine_lost_at,
                "message": f"the Docker engine stopped answering while it ran (from {self.engine_lost_at[:19]}Z); "
                           f"its container ended with code {code} (an engine that stops stops its containers)"},
                finished=_docker_time(state.get("FinishedAt")))
        else:
            self._record_exit(job.id, state, timed_out)
        records.update(job.id, logsComplete=True)
        self._remove(container)

    def _final_state(self, container, timed_out: bool) -> dict | None:
        """The stopped container's state, or None if someone removed it. ``docker rm -f`` kills
        first and removes a moment later: a SIGKILL render-local did not send is looked at again."""
        try:
            container.reload()
            state = container.attrs["State"]
            if state.get("Status") in ("removing", "dead"):
                return None
            killed = state.get("ExitCode") == 137 and not state.get("OOMKilled") and not timed_out
            if killed and not self.records.get(self.job_id).cancelRequestedAt:
                time.sleep(REMOVAL_GRACE_SECONDS)
                container.reload()
                if container.attrs["State"].get("Status") in ("removing", "dead"):
                    return None
            return state
        except Exception as exc:
            if is_not_found(exc):
                return None
            raise

    def _container(self, job: Job):
        try:
            return self.engine.client.containers.get(job.containerId)
        except Exception as exc:
            if is_not_found(exc):
                return None
            raise

    def _remove(self, container) -> None:
        try:
            container.remove()
        except Exception as exc:
            if not is_not_found(exc):
                raise

    def _kill(self, container) -> None:
        try:
            container.kill()
        except Exception as exc:  # it stopped meanwhile (409 not running, or gone): the wait sees it
            if is_not_found(exc) or getattr(exc, "status_code", None) == 409:
                return
            raise

    def _wait_for_exit(self, job: Job, container) -> bool:
        """Wait for the container to stop; kill it at its deadline or after a cancel's grace."""
        import requests

        started = job.started() or utcnow()
        deadline = started + timedelta(seconds=job.timeoutSeconds)
        timed_out = bool(job.timedOutAt)
        while True:
            remaining = (deadline - utcnow()).total_seconds()
            if remaining <= 0 and not timed_out:
                self.records.update(job.id, timedOutAt=stamp())
                self._kill(container)
                timed_out = True
            try:
                self.engine.api.wait(container.id, timeout=max(0.5, min(remaining, 2.0)) if remaining > 0 else 2.0)
                return timed_out
            except requests.exceptions.ReadTimeout:
                pass
            except (requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError):
                # a read timeout over a unix socket says so too; a stopping engine cuts the wait short
                if not self._engine_answers():  # the engine went away: ask again once it is back
                    self.engine_lost_at = self.engine_lost_at or stamp()
                    time.sleep(ENGINE_RETRY_SECONDS)
                    continue
            current = self.records.get(job.id)
            if current.cancelRequestedAt:
                asked = parse_stored(current.cancelRequestedAt)
                if (utcnow() - asked).total_seconds() > current.cancelGraceSeconds + 2:
                    self._kill(container)  # the stop's own SIGKILL did not take

    def _engine_answers(self) -> bool:
        try:
            return bool(self.engine.api.ping())
        except Exception:  # refused, reset, timed out: not answering
            return False

    def _record_exit(self, job_id: str, state: dict, timed_out: bool) -> None:
        records = self.records
        job = records.get(job_id)
        code = state.get("ExitCode")
        finished = _docker_time(state.get("FinishedAt")) or stamp()
        if job.cancelRequestedAt:
            records.record_end(job_id, JobStatus.CANCELED, code, None, "canceled", finished)
        elif timed_out:
            records.record_end(job_id, JobStatus.FAILED, code, {
                "type": "timedOut", "seconds": job.timeoutSeconds,
                "message": f"timed out after {job.timeoutSeconds} s"}, finished=finished)
        elif state.get("OOMKilled"):
            plan = job.plan
            records.record_end(job_id, JobStatus.FAILED, code, {
                "type": "oomKilled", "memoryLimitMB": plan.memory_mb,
                "message": f"out of memory: killed at the {plan.name} plan's {plan.memory_text} limit"}, finished=finished)
        elif code == 0:
            records.record_end(job_id, JobStatus.SUCCEEDED, 0, None, "succeeded", finished)
        else:
            records.record_end(job_id, JobStatus.FAILED, code, {
                "type": "nonZeroExit", "exitCode": code, "message": f"exited with code {code}"}, finished=finished)

    def _finish_logs(self, job: Job) -> None:
        """An ended job whose log a crash left incomplete: catch it up from the engine."""
        container = self._container(job) if job.containerId else None
        if container is not None:
            LogCapture(self.engine.api, self.runner.logs, job.id, container.id).fetch_once()
            self._remove(container)
        self.records.update(job.id, logsComplete=True)


def _docker_time(value: str | None) -> str | None:
    """Docker's state times to a stored timestamp; its zero time means never."""
    if not value or value.startswith("0001-"):
        return None
    return stamp(parse_stored(normalize_ts(value)[:26] + "Z"))


def _short(exc: Exception) -> str:
    text = getattr(exc, "explanation", None) or str(exc)
    return text.strip().splitlines()[0] if text else type(exc).__name__
