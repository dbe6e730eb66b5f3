"""Handing jobs to the data dir's control plane over its local API.

When ``serve`` or the terminal app runs on the same data dir and blueprint, the
CLI creates jobs through that process's API: the process that stays supervises
them (logs, timeouts, the recorded end), as a single control plane per data dir
should, and the CLI never imports the Docker SDK, a third of a short job's
time. When none runs, the CLI starts one in the background (``serve --port 0
--idle-exit``) that stops by itself once idle. Stdlib only on the hot path.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import threading
import time
import urllib.parse
from pathlib import Path

from renderlocal.api import discovery
from renderlocal.api.token import TOKEN_FILE
from renderlocal.core.envvars import env_digests, parse_env_overrides
from renderlocal.core.errors import RenderLocalError

FINAL = ("succeeded", "failed", "canceled")
# Seconds: a short job is seen ending within 10 ms; after BRISK a long one is polled gently.
POLL_FIRST, POLL_MOST, BRISK = 0.01, 0.1, 2.0
ENV_AUTOSTART = "RENDER_LOCAL_AUTOSTART"  # 0: with no control plane running, the CLI runs jobs itself
ENV_IDLE_EXIT = "RENDER_LOCAL_IDLE_EXIT_SECONDS"
IDLE_EXIT_SECONDS = 300
START_TIMEOUT_SECONDS = 30
LOG_FILE = "control-plane.log"
ENV_HEADER = "X-Render-Local-Env"  # the CLI's env var digests: see ControlPlane.env_differences
WARNINGS_HEADER = "X-Render-Local-Warnings"  # the blueprint sync's warnings, as a JSON list
ENVIRONMENT_DIFFERS = "environment_differs"


class Unreachable(Exception):
    """The published control plane does not answer: the caller does the work itself."""


class ApiError(RenderLocalError):
    """The control plane refused the request; its message names the problem."""

    def __init__(self, message: str, code: str | None = None):
        super().__init__(message)
        self.code = code


class RemotePlane:
    """The control plane's API; safe to share between threads (a connection each)."""

    def __init__(self, endpoint: discovery.Endpoint, token: str):
        self.endpoint = endpoint
        self.unreachable = False  # a create found it not answering: it may be stopping
        self.refusal: str | None = None  # why it would not take a job (our environment differs)
        self.warnings: set[str] = set()  # what its blueprint sync said
        parts = urllib.parse.urlsplit(endpoint.url)
        self.host, self.port = parts.hostname, parts.port
        self.prefix = parts.path.rstrip("/")
        self.token = token
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        self._local = threading.local()

    @property
    def connection(self) -> http.client.HTTPConnection:
        if getattr(self._local, "connection", None) is None:
            self._local.connection = http.client.HTTPConnection(self.host, self.port, timeout=30)
        return self._local.connection

    @classmethod
    def find_or_start(cls, data_dir: Path, blueprint: Path, tell, forget: "RemotePlane | None" = None) -> "RemotePlane | None":
        """The running control plane, else one started now; None: do the work here.

        ``forget``: one that stopped answering; its announcement goes, so another can start.
        """
        if forget is not None:
            discovery.forget(data_dir, forget.endpoint.pid)
        live = discovery.read_live(data_dir)
        if live is not None:  # another blueprint's control plane: leave it be, work here
            return cls.connect(data_dir, live) if live.blueprint == str(blueprint) else None
        if os.environ.get(ENV_AUTOSTART, "1") == "0":
            return None
        endpoint = _start(data_dir, blueprint, tell)
        return cls.connect(data_dir, endpoint) if endpoint else None

    @classmethod
    def connect(cls, data_dir: Path, endpoint: discovery.Endpoint) -> "RemotePlane | None":
        try:
            token = (Path(data_dir) / TOKEN_FILE).read_text().strip()
        except OSError:
            return None
        return cls(endpoint, token) if token else None

    def call(self, method: str, path: str, body=None, headers=None):
        for attempt in (1, 2):
            try:
                self.connection.request(method, self.prefix + path, headers=self.headers | (headers or {}),
                                        body=None if body is None else json.dumps(body))
            except OSError as exc:  # not sent (refused, or a keep-alive the server closed): nothing happened
                self.connection.close()
                if attempt == 2:
                    raise Unreachable(str(exc)) from None
                continue
            try:
                response = self.connection.getresponse()
                raw = response.read()
                break
            except (OSError, http.client.HTTPException) as exc:
                self.connection.close()
                if method == "GET":
                    if attempt == 2:
                        raise Unreachable(str(exc)) from None
                    continue
                raise ApiError(f"the control plane at {self.endpoint.url} took the request but did not answer "
                               f"({exc or type(exc).__name__}); the job may exist: render-local jobs list") from None
        try:
            data = json.loads(raw)
        except ValueError:
            raise Unreachable(f"not render-local's API (status {response.status})") from None
        if response.status >= 400:
            message = data.get("message") if isinstance(data, dict) else None
            raise ApiError(message or f"the control plane answered {response.status}",
                           data.get("id") if isinstance(data, dict) else None)
        for warning in json.loads(response.getheader(WARNINGS_HEADER) or "[]"):
            self.warnings.add(warning)
        return data

    def create_job(self, service: str, start_command: str, plan_id: str | None, env: list[str]) -> dict:
        body: dict = {"startCommand": start_command}
        if plan_id is not None:
            body["planId"] = plan_id
        if env:
            body["envVars"] = [{"key": key, "value": value} for key, value in parse_env_overrides(env).items()]
        # the job must be what this process would have made: same secrets, timeout, engine
        return self.call("POST", f"/services/{urllib.parse.quote(service, safe='')}/jobs", body,
                         {ENV_HEADER: json.dumps(env_digests(self.token.encode()))})

    def try_create_job(self, service: str, start_command: str, plan_id: str | None, env: list[str]) -> dict | None:
        """The created job, or None when it does not answer or would make a different job (create it here)."""
        try:
            return self.create_job(service, start_command, plan_id, env)
        except Unreachable:
            self.unreachable = True
        except ApiError as exc:
            if exc.code != ENVIRONMENT_DIFFERS:
                raise
            self.refusal = f"{exc}; running the job here"
        return None

    def get_job(self, job: dict) -> dict:
        return self.call("GET", f"/services/{job['serviceId']}/jobs/{job['id']}")

    def wait(self, job: dict) -> dict:
        """Poll until the job has ended: every POLL_FIRST for BRISK seconds, then slower."""
        pause, brisk_until = POLL_FIRST, time.monotonic() + BRISK
        while job["status"] not in FINAL:
            time.sleep(pause)
            if time.monotonic() > brisk_until:
                pause = min(POLL_MOST, pause * 1.5)
            job = self.get_job(job)
        return job


def _start(data_dir: Path, blueprint: Path, tell) -> discovery.Endpoint | None:
    """Start ``serve`` for this data dir in the background and wait until it announces itself.

    A lock file makes concurrent CLIs start one, not several. If it cannot
    start, the caller runs the job itself (and any error is reported there).
    """
    from filelock import FileLock, Timeout

    idle = os.environ.get(ENV_IDLE_EXIT) or str(IDLE_EXIT_SECONDS)
    try:
        with FileLock(str(Path(data_dir) / "control-plane.start.lock"), timeout=START_TIMEOUT_SECONDS):
            found = discovery.find(data_dir, blueprint)
            if found is not None:
                return found  # another CLI started it while we waited
            with open(Path(data_dir) / LOG_FILE, "ab") as log:
                process = subprocess.Popen(
                    [sys.executable, "-m", "renderlocal", "--data-dir", str(data_dir), "--blueprint", str(blueprint),
                     "serve", "--port", "0", "--idle-exit", idle],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
            deadline = time.monotonic() + START_TIMEOUT_SECONDS
            while time.monotonic() < deadline and process.poll() is None:
                found = discovery.find(data_dir, blueprint)
                if found is not None and found.pid == process.pid:
                    tell(f"started a control plane for {data_dir} (pid {process.pid}; it stops after {idle} s idle; "
                         f"log: {Path(data_dir) / LOG_FILE})")
                    return found
                time.sleep(0.02)
    except Timeout:
        return None
    tell(f"could not start a control plane (see {Path(data_dir) / LOG_FILE}); running the job here")
    return None
