"""Finding a data dir's control plane, or starting one.

A face asks the process announced in ``control-plane.json``. When none runs,
the CLI starts ``render-local serve --port 0 --idle-exit N`` in the background
(a lock file makes concurrent CLIs start one, not several) and connects to it
once it announces itself; it stops by itself after N idle seconds.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from renderlocal.client import discovery
from renderlocal.client.remote import RemoteControlPlane, Unreachable, load_token
from renderlocal.core.engine_address import engine_id
from renderlocal.core.errors import Conflict, ControlPlaneUnavailable, RenderLocalError, error_from
from renderlocal.core.job_limits import ENV_GRACE, ENV_TIMEOUT

ENV_AUTOSTART = "RENDER_LOCAL_AUTOSTART"  # 0: never start one; say so instead
ENV_IDLE_EXIT = "RENDER_LOCAL_IDLE_EXIT_SECONDS"
IDLE_EXIT_SECONDS = 300
START_TIMEOUT_SECONDS = 60  # a control plane that is stopping finishes its jobs first
STOP_WAIT_SECONDS = 10
LOG_FILE = "control-plane.log"
START_LOCK = "control-plane.start.lock"


def connect(data_dir: Path, blueprint: Path, tell=lambda _text: None) -> RemoteControlPlane:
    """The data dir's control plane, started now if none runs (``tell`` says so).

    One a CLI started in the background for another blueprint is asked to stop
    when idle and replaced; one started by hand for another blueprint, or one on
    another engine, is an error that says which.
    """
    for _attempt in range(3):  # another project's CLI may start its own in between: look again
        found = _answering(data_dir)
        if found is None:
            if os.environ.get(ENV_AUTOSTART, "1") == "0":
                raise ControlPlaneUnavailable(
                    f"no control plane runs for {data_dir} and {ENV_AUTOSTART}=0: start one with "
                    f"render-local --data-dir {data_dir} serve")
            found = _start(data_dir, blueprint, tell)
        plane, endpoint = found
        if endpoint.blueprint == str(blueprint):
            mine = engine_id()
            if mine != endpoint.engine:
                raise Conflict(f"the control plane of {data_dir} (pid {endpoint.pid}) runs jobs on the engine "
                               f"{endpoint.engine}, not {mine} (DOCKER_HOST, the docker context or --engine here): "
                               "stop it, or use another --data-dir")
            return plane
        if not endpoint.idle_exit:
            raise Conflict(
                f"the control plane of {data_dir} (pid {endpoint.pid}) runs {endpoint.blueprint}, not {blueprint}: "
                "stop it, or give this project its own --data-dir")
        try:
            plane.stop_if_idle()  # one a CLI started for another project: ours next, if it runs nothing
        except Unreachable:
            pass  # stopping already
        _wait_gone(endpoint.pid)
    raise ControlPlaneUnavailable(f"the control plane of {data_dir} keeps being started for another blueprint: "
                                  "another project's CLI uses this data dir too; give each project its own --data-dir")


def _answering(data_dir: Path) -> tuple[RemoteControlPlane, discovery.Endpoint] | None:
    """The announced control plane if it answers."""
    endpoint = discovery.read_live(data_dir)
    if endpoint is None:
        return None
    token = load_token(data_dir)
    if token is None:
        return None
    plane = RemoteControlPlane(endpoint, token)
    try:
        plane.status()
    except Unreachable:
        return None  # stopping, or a leftover announcement of a reused pid
    return plane, endpoint


def _start(data_dir: Path, blueprint: Path, tell) -> tuple[RemoteControlPlane, discovery.Endpoint]:
    """Start ``serve`` in the background and wait until a control plane answers."""
    import subprocess  # only here: every other CLI call skips its import

    from filelock import FileLock, Timeout

    idle = os.environ.get(ENV_IDLE_EXIT) or str(IDLE_EXIT_SECONDS)
    log = Path(data_dir) / LOG_FILE
    try:
        with FileLock(str(Path(data_dir) / START_LOCK), timeout=START_TIMEOUT_SECONDS):
            found = _answering(data_dir)
            if found is not None:
                return found  # another CLI started it while we waited
            # a job's timeout and grace come with each request: the shell that started it sets no defaults
            env = {k: v for k, v in os.environ.items() if k not in (ENV_TIMEOUT, ENV_GRACE)}
            with open(log, "ab") as out:
                process = subprocess.Popen(
                    [sys.executable, "-m", "renderlocal", "--data-dir", str(data_dir), "--blueprint", str(blueprint),
                     "serve", "--port", "0", "--idle-exit", idle],
                    stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True, env=env)
            deadline = time.monotonic() + START_TIMEOUT_SECONDS
            while time.monotonic() < deadline:
                found = _answering(data_dir)
                if found is not None:
                    if found[1].pid == process.pid:
                        found[0].started_process = process
                        tell(f"started a control plane for {data_dir} (pid {process.pid}; it stops after {idle} s "
                             f"idle; log: {log})")
                    return found
                if process.poll() is not None:
                    failure = discovery.read_failure(data_dir, process.pid)
                    if failure is not None:  # a broken blueprint, a corrupt store...: that error, as it is
                        raise error_from(failure.get("id"), failure.get("message", ""))
                    break
                time.sleep(0.02)
    except Timeout:
        pass
    raise ControlPlaneUnavailable(f"could not start a control plane for {data_dir}; see {log}")


def stop_if_started_for_nothing(plane: RemoteControlPlane) -> None:
    """After a call that failed: stop the control plane it started, unless something runs on it
    by now (another CLI's job), so a refused command leaves no process behind."""
    process = plane.started_process
    if process is None:
        return
    try:
        plane.reset_connection()
        plane.stop_if_idle("the call that started it failed")
    except RenderLocalError:
        return  # busy, or gone already
    import subprocess  # already imported: this process started the control plane

    try:
        process.wait(STOP_WAIT_SECONDS)  # our child: reaped here, or it would linger as a zombie until we exit
    except subprocess.TimeoutExpired:
        pass  # still draining: it ends by itself


def _wait_gone(pid: int, seconds: float = START_TIMEOUT_SECONDS) -> None:
    deadline = time.monotonic() + seconds
    while discovery.pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
