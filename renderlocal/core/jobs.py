"""Jobs: create on the last successful build, run under plan limits, supervise.

A job's truth outlives render-local: its container carries labels that say what
it is, the engine keeps its state and exit code, and its log file holds every
line captured so far. Whoever holds a job's lock file supervises it (captures
logs, enforces the timeout, records the end); when that process dies the lock
is released and the next render-local to reconcile adopts the job, fetches the
log lines it missed and records how it ended.
"""

from __future__ import annotations

import os
import threading
import time
from datetime import timedelta

from filelock import FileLock, Timeout

from renderlocal.core.clock import parse_stored, utcnow
from renderlocal.core.envvars import parse_env_overrides
from renderlocal.core.errors import InvalidInput, NotFound
from renderlocal.core.ids import looks_like_id, new_id
from renderlocal.core.logstore import TS_LEN, normalize_ts, ts_now
from renderlocal.core.models import FINAL_JOB_STATUSES, JOB_STATUSES, Job, Service, stamp
from renderlocal.core.plans import plan_for_job

LABEL = "render-local"
DEFAULT_TIMEOUT_SECONDS = 30 * 86_400
ENV_TIMEOUT = "RENDER_LOCAL_JOB_TIMEOUT_SECONDS"
ENV_GRACE = "RENDER_LOCAL_CANCEL_GRACE_SECONDS"
# On cancel every process of the command gets SIGTERM (docker-init signals the
# process group); the shell then waits for its child to finish handling it and
# exits instead of going on to the command's next step.
CANCELABLE = "trap 'exit 143' TERM; "


def job_timeout_seconds() -> int:
    raw = os.environ.get(ENV_TIMEOUT)
    if not raw:
        return DEFAULT_TIMEOUT_SECONDS
    try:
        value = int(raw)
    except ValueError:
        raise InvalidInput(f"{ENV_TIMEOUT} must be a whole number of seconds, not {raw!r}") from None
    if value <= 0:
        raise InvalidInput(f"{ENV_TIMEOUT} must be positive")
    return value


def cancel_grace_seconds() -> int:
    return int(os.environ.get(ENV_GRACE, "10"))


class JobRunner:
    def __init__(self, plane):
        self.plane = plane
        self.store = plane.job_store
        self.logs = plane.logs
        self.lock_dir = plane.data_dir / "locks"
        self.lock_dir.mkdir(exist_ok=True)
        self._supervised: dict[str, threading.Thread] = {}
        self._attached: dict[str, object] = {}  # job id -> output stream opened before start
        self._guard = threading.Lock()

    # -- queries -------------------------------------------------------------------
    def get(self, job_id: str) -> Job:
        doc = self.store.get(job_id) if looks_like_id(job_id, "job") else None  # ids become file names
        if doc is None:
            raise NotFound(f"unknown job {job_id!r}")
        return Job.from_doc(doc)

    def list(self, service_id: str | None = None, statuses=None, limit: int | None = None,
             before: Job | None = None, where=None) -> list[Job]:
        """Jobs newest first (createdAt, then id); ``before``: the page starts after that job.

        ``where`` is an extra test on the stored document (e.g. time filters).
        """
        wanted = set(statuses or ())
        unknown = wanted - set(JOB_STATUSES)
        if unknown:
            raise InvalidInput(f"unknown status {', '.join(sorted(unknown))}; valid: {', '.join(JOB_STATUSES)}")

        def match(doc):
            return ((service_id is None or doc["serviceId"] == service_id) and (not wanted or doc["status"] in wanted)
                    and (where is None or where(doc)))

        after = (before.createdAt, before.id) if before is not None else None
        return [Job.from_doc(doc) for doc in self.store.query(match, limit, after)]

    # -- create --------------------------------------------------------------------
    def create(self, service: Service, start_command: str | None = None, plan_id: str | None = None,
               env_overrides=None, supervise: bool = True) -> Job:
        if start_command is not None and not isinstance(start_command, str):
            raise InvalidInput("startCommand must be a string")
        command = (start_command if start_command is not None else service.own_start_command) or ""
        if not command.strip():
            raise InvalidInput(f"startCommand is required (service {service.name} has no start command of its own)")
        plan = plan_for_job(service.type, service.planId, plan_id)
        overrides = parse_env_overrides(env_overrides)
        self.plane.engine  # no engine: fail now, before any record exists
        if not service.lastSuccessfulBuildId:
            raise InvalidInput(
                f"service {service.name} has no successful build yet; build it first: render-local builds create {service.name}"
            )
        build = self.plane.builds.get(service.lastSuccessfulBuildId)
        env = dict(service.envVars) | {
            "RENDER": "true", "RENDER_SERVICE_ID": service.id, "RENDER_SERVICE_NAME": service.name,
            "RENDER_SERVICE_TYPE": service.type,
        } | overrides
        job = Job(
            id=new_id("job"), serviceId=service.id, startCommand=command, planId=plan.id,
            createdAt=stamp(), buildId=build.id, image=build.image, env=env,
            envOverrides=overrides, timeoutSeconds=job_timeout_seconds(), engine=self.plane.engine_id,
        )
        job.events = [{"at": job.createdAt, "status": "pending", "message": "created"}]
        lock = self._lock(job.id)
        lock.acquire()  # before the record exists, so no reconciler launches it twice
        try:
            self.store.insert(job.to_doc())
        except BaseException:
            lock.release()
            raise
        if supervise:  # returned pending, as on Render; the supervisor launches it
            self._start_supervisor(job.id, lock)
            return job
        try:
            return self._launch(job)  # nobody stays to supervise: launch before returning
        finally:
            lock.release()

    def _launch(self, job: Job, attach: bool = False) -> Job:
        """Create and start the job's container; a launch error fails the job.

        With ``attach``, its output stream is opened before the start, as
        ``docker run`` does, so the supervisor captures every byte live.
        """
        plan = job.plan
        try:
            engine = self.plane.engine
            container = engine.containers.create(
                job.image, entrypoint=["/bin/sh", "-c"], command=[CANCELABLE + job.startCommand],
                environment=job.env | {"TINI_KILL_PROCESS_GROUP": "1"}, name=f"render-local-{job.id}", detach=True,
                init=True,  # docker-init as PID 1 passes SIGTERM to the whole process group
                mem_limit=plan.memory_bytes, memswap_limit=plan.memory_bytes, nano_cpus=plan.nano_cpus,
                labels=self._labels(job),
            )
            self._update(job.id, containerId=container.id)
            if self.get(job.id).cancelRequestedAt:
                container.remove(force=True)
                return self._record_end(job.id, "canceled", None, None, "canceled before it started")
            if attach:
                self._attached[job.id] = _attach(engine.api, container.id)
            container.start()
            container.reload()
            started = _docker_time(container.attrs["State"]["StartedAt"]) or stamp()
        except Exception as exc:
            stream = self._attached.pop(job.id, None)
            if stream is not None:
                stream.close()
            return self._record_end(job.id, "failed", None, {
                "type": "startFailed", "message": f"the container could not start: {_short(exc)}"})
        return self._mark_running(job.id, started)

    def _labels(self, job: Job) -> dict[str, str]:
        return {
            LABEL: "job",
            f"{LABEL}.data-dir": str(self.plane.data_dir),
            f"{LABEL}.job-id": job.id,
            f"{LABEL}.service-id": job.serviceId,
            f"{LABEL}.build-id": job.buildId,
            f"{LABEL}.plan-id": job.planId,
            f"{LABEL}.created-at": job.createdAt,
            f"{LABEL}.timeout-seconds": str(job.timeoutSeconds),
        }

    # -- lifecycle records -----------------------------------------------------------
    def _update(self, job_id: str, **changes) -> Job:
        return Job.from_doc(self.store.update(job_id, lambda d: d.update(changes)))

    def _mark_running(self, job_id: str, started: str) -> Job:
        def change(doc):
            if doc["status"] == "pending":
                doc["status"] = "running"
                doc["startedAt"] = started
                doc["events"].append({"at": started, "status": "running", "message": "started"})

        return Job.from_doc(self.store.update(job_id, change))

    def _record_end(self, job_id: str, status: str, exit_code: int | None, reason: dict | None,
                    message: str | None = None, finished: str | None = None) -> Job:
        finished = finished or stamp()

        def change(doc):
            if doc["status"] in FINAL_JOB_STATUSES:
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

    # -- cancel ----------------------------------------------------------------------------
    def cancel(self, job_id: str, wait: bool = False) -> Job:
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
            return self._record_end(job_id, "canceled", None, None, "canceled before it started")
        stopper = threading.Thread(target=self._stop_container, args=(job.containerId,), daemon=True)
        stopper.start()
        if wait:  # until its end is recorded, here or by the process that supervises it
            stopper.join()
            return self.wait(job_id, timeout=cancel_grace_seconds() + 10)
        return self.get(job_id)

    def _stop_container(self, container_id: str) -> None:
        try:
            self.plane.engine.api.stop(container_id, timeout=cancel_grace_seconds())
        except Exception:
            pass  # already gone: the supervisor records the end

    # -- supervision -------------------------------------------------------------------
    def _lock(self, job_id: str) -> FileLock:
        return FileLock(str(self.lock_dir / f"{job_id}.lock"), thread_local=False)

    def _start_supervisor(self, job_id: str, lock: FileLock) -> threading.Thread:
        thread = threading.Thread(target=self._supervise_holding, args=(job_id, lock, True),
                                  name=f"job-{job_id}", daemon=True)
        with self._guard:
            self._supervised[job_id] = thread
        thread.start()
        return thread

    def supervising(self) -> bool:
        """Whether this process is supervising any job right now."""
        with self._guard:
            return any(thread.is_alive() for thread in self._supervised.values())

    def wait(self, job_id: str, timeout: float | None = None) -> Job:
        """Block until the job ends, adopting it if no live process supervises it."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._guard:
                thread = self._supervised.get(job_id)
            if thread is not None:
                thread.join(None if deadline is None else max(0, deadline - time.monotonic()))
            job = self.reconcile_one(job_id, follow=True)
            if job.final and job.logsComplete:
                return self.get(job_id)
            if deadline is not None and time.monotonic() > deadline:
                return job
            time.sleep(0.1)

    def reconcile_one(self, job_id: str, follow: bool) -> Job:
        """Supervise the job here if nobody else does; with follow=False never block."""
        doc = self.store.get(job_id)
        if doc is not None and self._elsewhere(doc):
            return Job.from_doc(doc)
        with self._guard:
            thread = self._supervised.get(job_id)
            if thread is not None and thread.is_alive():
                return self.get(job_id)
        lock = self._lock(job_id)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            return self.get(job_id)  # another live process supervises it
        if follow:
            self._start_supervisor(job_id, lock).join()
        else:
            self._supervise_holding(job_id, lock, False)
        return self.get(job_id)

    def reconcile(self, follow: bool = True) -> list[str]:
        """Adopt every unfinished job nobody supervises, and jobs known only to the engine."""
        self._recreate_missing_records()
        adopted = []
        for doc in self.store.live():
            if doc["status"] in FINAL_JOB_STATUSES and doc.get("logsComplete") or self._elsewhere(doc):
                continue
            with self._guard:
                thread = self._supervised.get(doc["id"])
                if thread is not None and thread.is_alive():
                    continue
            lock = self._lock(doc["id"])
            try:
                lock.acquire(timeout=0)
            except Timeout:
                continue
            adopted.append(doc["id"])
            if follow:
                self._start_supervisor(doc["id"], lock)
            else:
                self._supervise_holding(doc["id"], lock, False)
        return adopted

    def _elsewhere(self, doc: dict) -> bool:
        """A job on another engine (a process with another DOCKER_HOST made it): not ours to adopt."""
        return doc.get("engine") not in (None, self.plane.engine_id)

    def _recreate_missing_records(self) -> None:
        """A job whose record was lost (a store set aside) is rebuilt from its container."""
        try:
            containers = self.plane.engine.containers.list(
                all=True, filters={"label": [f"{LABEL}=job", f"{LABEL}.data-dir={self.plane.data_dir}"]})
        except Exception:
            return
        for container in containers:
            labels = container.labels
            job_id = labels.get(f"{LABEL}.job-id")
            if not job_id or self.store.get(job_id) is not None:
                continue
            config = container.attrs["Config"]
            env = dict(item.partition("=")[::2] for item in config.get("Env") or [])
            env.pop("TINI_KILL_PROCESS_GROUP", None)
            job = Job(
                id=job_id, serviceId=labels[f"{LABEL}.service-id"],
                startCommand=(config.get("Cmd") or [""])[-1].removeprefix(CANCELABLE),
                planId=labels[f"{LABEL}.plan-id"], createdAt=labels[f"{LABEL}.created-at"],
                buildId=labels[f"{LABEL}.build-id"], image=config.get("Image", ""), env=env,
                timeoutSeconds=int(labels.get(f"{LABEL}.timeout-seconds", DEFAULT_TIMEOUT_SECONDS)),
                containerId=container.id, engine=self.plane.engine_id,
            )
            job.events = [{"at": job.createdAt, "status": "pending", "message": "created (record rebuilt from its container)"}]
            self.store.insert(job.to_doc())

    def _supervise_holding(self, job_id: str, lock: FileLock, follow: bool) -> None:
        try:
            JobSupervision(self, job_id, follow).run()
        finally:
            lock.release()
            with self._guard:
                if self._supervised.get(job_id) is threading.current_thread():
                    del self._supervised[job_id]


class JobSupervision:
    """One pass of supervising one job, by the process that holds its lock."""

    def __init__(self, runner: JobRunner, job_id: str, follow: bool):
        self.runner = runner
        self.job_id = job_id
        self.follow = follow
        self.engine = runner.plane.engine

    def run(self) -> None:
        runner = self.runner
        job = runner.get(self.job_id)
        if job.final:
            if not job.logsComplete:
                self._finish_logs(job)
            return
        if not job.containerId:
            if job.cancelRequestedAt:
                runner._record_end(job.id, "canceled", None, None, "canceled before it started")
                return
            job = runner._launch(job, attach=self.follow)  # new, or never launched before a crash
            if job.final:
                return
        container = self._container(job)
        if container is None:
            runner._record_end(job.id, "failed", None, {"type": "lost", "message": "its container vanished"})
            return
        state = container.attrs["State"]
        if job.status == "pending" and state.get("StartedAt", "").startswith("0001"):
            if not state.get("Running"):
                container.start()
                container.reload()
                state = container.attrs["State"]
        if job.status == "pending":
            job = runner._mark_running(job.id, _docker_time(state["StartedAt"]) or stamp())
        capture = LogCapture(runner, job, container.id, runner._attached.pop(job.id, None))
        if self.follow:
            capture.start_following()
            timed_out = self._wait_for_exit(job, container)
            capture.join()
        else:
            if state.get("Running"):
                if self._past_deadline(job):
                    self._kill_for_timeout(job, container)
                    container.wait()
                else:
                    capture.fetch_once()
                    return  # still running; a live supervisor will record the end
            timed_out = bool(runner.get(job.id).timedOutAt)
            capture.fetch_once()
        container.reload()
        self._record_exit(job.id, container.attrs["State"], timed_out)
        runner._update(job.id, logsComplete=True)
        try:
            container.remove()
        except Exception:
            pass

    def _container(self, job: Job):
        try:
            return self.engine.containers.get(job.containerId)
        except Exception as exc:
            if type(exc).__name__ == "NotFound":
                return None
            raise

    def _past_deadline(self, job: Job) -> bool:
        started = job.started()
        return started is not None and utcnow() >= started + timedelta(seconds=job.timeoutSeconds)

    def _kill_for_timeout(self, job: Job, container) -> None:
        self.runner._update(job.id, timedOutAt=stamp())
        try:
            container.kill()
        except Exception:
            pass

    def _wait_for_exit(self, job: Job, container) -> bool:
        """Wait for the container to stop; kill it at its deadline or after a cancel's grace."""
        import requests

        started = job.started() or utcnow()
        deadline = started + timedelta(seconds=job.timeoutSeconds)
        timed_out = bool(job.timedOutAt)
        while True:
            remaining = (deadline - utcnow()).total_seconds()
            if remaining <= 0 and not timed_out:
                self._kill_for_timeout(job, container)
                timed_out = True
            try:
                self.engine.api.wait(container.id, timeout=max(0.5, min(remaining, 2.0)) if remaining > 0 else 2.0)
                return timed_out
            except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError):
                pass
            current = self.runner.get(job.id)
            if current.cancelRequestedAt:
                asked = parse_stored(current.cancelRequestedAt)
                if (utcnow() - asked).total_seconds() > cancel_grace_seconds() + 2:
                    try:
                        container.kill()
                    except Exception:
                        pass

    def _record_exit(self, job_id: str, state: dict, timed_out: bool) -> None:
        runner = self.runner
        job = runner.get(job_id)
        code = state.get("ExitCode")
        finished = _docker_time(state.get("FinishedAt")) or stamp()
        if job.cancelRequestedAt:
            runner._record_end(job_id, "canceled", code, None, "canceled", finished)
        elif timed_out:
            runner._record_end(job_id, "failed", code, {
                "type": "timedOut", "seconds": job.timeoutSeconds,
                "message": f"timed out after {job.timeoutSeconds} s"}, finished=finished)
        elif state.get("OOMKilled"):
            plan = job.plan
            runner._record_end(job_id, "failed", code, {
                "type": "oomKilled", "memoryLimitMB": plan.memory_mb,
                "message": f"out of memory: killed at the {plan.name} plan's {plan.memory_text} limit"}, finished=finished)
        elif code == 0:
            runner._record_end(job_id, "succeeded", 0, None, "succeeded", finished)
        else:
            runner._record_end(job_id, "failed", code, {
                "type": "nonZeroExit", "exitCode": code, "message": f"exited with code {code}"}, finished=finished)

    def _finish_logs(self, job: Job) -> None:
        container = self._container(job) if job.containerId else None
        if container is not None:
            LogCapture(self.runner, job, container.id).fetch_once()
            try:
                container.remove()
            except Exception:
                pass
        self.runner._update(job.id, logsComplete=True)


class LogCapture:
    """Copies a container's stdout and stderr into the job's log file, line by line.

    A job launched here is attached before it starts: its output arrives live,
    a few frames per socket read, and each batch is stamped when received.
    A job adopted after a crash (or read once by a short-lived CLI) is caught up
    from the engine's log API instead, skipping as many lines per stream as the
    file already holds. Docker's log API splits lines over 16 KiB into partial
    frames without a newline; they are joined back into one line.
    """

    def __init__(self, runner: JobRunner, job: Job, container_id: str, attached=None):
        self.api = runner.plane.engine.api
        self.path = runner.logs.path(job.id)
        self.writer = runner.logs.writer(job.id)
        self.container_id = container_id
        self.attached = attached
        self.thread: threading.Thread | None = None

    def start_following(self) -> None:
        target = self._copy_attached if self.attached is not None else self._copy_logs
        args = () if self.attached is not None else (True,)
        self.thread = threading.Thread(target=target, args=args, daemon=True)
        self.thread.start()

    def join(self) -> None:
        if self.thread is not None:
            self.thread.join()
        self.writer.close()

    def fetch_once(self) -> None:
        self._copy_logs(False)
        self.writer.close()

    def _copy_attached(self) -> None:
        carry = {1: b"", 2: b""}
        for frames in _frames_of(self.attached):
            stamp_now = ts_now().encode()
            out = []
            for kind, chunk in frames:
                kind = kind if kind in carry else 1
                *lines, carry[kind] = (carry[kind] + chunk).split(b"\n")
                name = _STREAM_NAMES[kind]
                out.extend(b"%s %s %s\n" % (stamp_now, name, line) for line in lines)
            if out:
                self.writer.write_raw(b"".join(out))
        stamp_now = ts_now().encode()
        for kind, rest in carry.items():
            if rest:
                self.writer.write_raw(b"%s %s %s\n" % (stamp_now, _STREAM_NAMES[kind], rest))

    def _copy_logs(self, follow: bool) -> None:
        skip = self.writer.line_counts() if self.path.stat().st_size else {}
        skip = {1: skip.get("stdout", 0), 2: skip.get("stderr", 0)}
        partial = {1: [], 2: []}  # per stream: pieces of a long line
        partial_ts: dict[int, bytes | None] = {1: None, 2: None}
        frames_iter = _frames_of(_log_request(self.api, self.container_id, follow))
        for frames in frames_iter:
            out = []
            for kind, frame in frames:
                kind = kind if kind in partial else 1
                ts_raw, _, message = frame.partition(b" ")
                ts = ts_raw if len(ts_raw) == TS_LEN else _normalized(ts_raw)
                if ts is None:  # not a timestamped frame: keep the bytes anyway
                    ts, message = partial_ts[kind] or b"1970-01-01T00:00:00.000000000Z", frame
                if not message.endswith(b"\n"):  # a partial frame of a long line
                    partial_ts[kind] = partial_ts[kind] or ts
                    partial[kind].append(message)
                    continue
                if partial[kind]:
                    ts, message = partial_ts[kind], b"".join(partial[kind]) + message
                    partial[kind], partial_ts[kind] = [], None
                if skip[kind] > 0:  # already in the file
                    skip[kind] -= 1
                    continue
                out.append(b"%s %s %s" % (ts, _STREAM_NAMES[kind], message))
            if out:
                self.writer.write_raw(b"".join(out))
        for kind, pieces in partial.items():
            if pieces and skip[kind] <= 0:
                self.writer.write_raw(b"%s %s %s\n" % (partial_ts[kind], _STREAM_NAMES[kind], b"".join(pieces)))


_STREAM_NAMES = {1: b"stdout", 2: b"stderr"}


def _normalized(ts_raw: bytes) -> bytes | None:
    try:
        return normalize_ts(ts_raw).encode()
    except ValueError:
        return None


def _attach(api, container_id: str):
    """The container's output stream, opened before it starts (as docker run does)."""
    response = api._post(api._url("/containers/{0}/attach", container_id),
                         params={"stdout": 1, "stderr": 1, "stream": 1, "logs": 0}, stream=True)
    api._raise_for_status(response)
    return response


def _log_request(api, container_id: str, follow: bool):
    """The container's whole log so far (and, with follow, to its end), timestamped."""
    params = {"stdout": 1, "stderr": 1, "timestamps": 1, "follow": int(follow), "tail": "all"}
    response = api._get(api._url("/containers/{0}/logs", container_id), params=params, stream=True)
    api._raise_for_status(response)
    return response


def _frames_of(response):
    """Frames of a multiplexed stream as (stream, bytes), a batch per socket read.

    The SDK reads twice per frame (header, then body); a job printing a million
    lines needs bulk reads, so the stream is parsed here: an 8-byte header
    (stream 1 or 2, three zero bytes, size) before each frame.
    """
    raw = response.raw
    read = raw.read1 if hasattr(raw, "read1") else raw.read
    buffer = bytearray()
    try:
        while True:
            try:
                chunk = read(1 << 16)
            except (OSError, ValueError):
                break  # the engine closed the stream
            if not chunk:
                break
            buffer += chunk
            frames, used = [], 0
            while len(buffer) - used >= 8:
                size = int.from_bytes(buffer[used + 4 : used + 8], "big")
                if len(buffer) - used - 8 < size:
                    break
                frames.append((buffer[used], bytes(buffer[used + 8 : used + 8 + size])))
                used += 8 + size
            del buffer[:used]
            if frames:
                yield frames
    finally:
        response.close()


def _docker_time(value: str | None) -> str | None:
    """Docker's state times to a stored timestamp; its zero time means never."""
    if not value or value.startswith("0001-"):
        return None
    return stamp(parse_stored(normalize_ts(value)[:26] + "Z"))


def _short(exc: Exception) -> str:
    text = getattr(exc, "explanation", None) or str(exc)
    return text.strip().splitlines()[0] if text else type(exc).__name__


