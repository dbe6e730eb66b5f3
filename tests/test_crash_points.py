"""kill -9 of the control plane at five points of a job's life: nothing lost, nothing run twice.

Each round serves the data dir from a process of its own, asks it for a job over the API,
kills it with SIGKILL at one point, and lets the next control plane (which also serves the
next round) recover the job. The job's end, its whole log (every line once: a job launched
twice would print twice) and its container (removed once settled) are then checked.

Rounds per point: RENDER_LOCAL_CRASH_ROUNDS (default 2 in the suite; the issue's probe ran 10).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import httpx
import pytest

from renderlocal.api.token import load_or_create_token
from renderlocal.core.logstore import LogStore
from tests.conftest import stop_control_planes, wait_until

pytestmark = pytest.mark.docker

ROUNDS = int(os.environ.get("RENDER_LOCAL_CRASH_ROUNDS", "2"))
BLUEPRINT = """\
services:
  - type: worker
    name: box
    runtime: docker
    dockerCommand: sleep 3600
"""
CHATTY_LINES = 100_000


class Served:
    """``render-local serve`` in a process of its own, and a client of its API."""

    def __init__(self, data_dir, blueprint):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "renderlocal", "--data-dir", str(data_dir), "--blueprint", str(blueprint),
             "serve", "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        url = self.proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:"), self.proc.stderr.read()
        self.api = httpx.Client(base_url=url.removesuffix("/v1"), headers={"Authorization": f"Bearer {load_or_create_token(data_dir)}"},
                                timeout=60)

    def kill(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self.api.close()

    def job(self, job_id: str) -> dict:
        answer = self.api.get(f"/local/jobs/{job_id}")
        assert answer.status_code == 200, answer.text
        return answer.json()


@pytest.fixture
def box(engine, data_dir, write_blueprint):
    blueprint = write_blueprint(BLUEPRINT, {"Dockerfile": "FROM busybox:1.36\n"})
    first = Served(data_dir, blueprint)
    listed = first.api.get("/v1/services", params={"name": "box"})
    assert listed.status_code == 200, listed.text
    service_id = listed.json()[0]["service"]["id"]
    build = first.api.post(f"/local/services/{service_id}/builds").json()
    wait_until(lambda: first.api.get(f"/local/builds/{build['id']}").json()["status"] == "succeeded", 120)
    first.kill()
    yield data_dir, blueprint, service_id
    stop_control_planes(data_dir)


def _log(data_dir, job_id: str) -> list[str]:
    return [line.message for line in LogStore(data_dir / "logs").read(job_id)]


def _after_201(served, data_dir, job_id):
    pass  # killed the moment the answer came


def _while_launching(served, data_dir, job_id):
    time.sleep(random.uniform(0.005, 0.08))


def _while_chatty(served, data_dir, job_id):
    wait_until(lambda: len(_log(data_dir, job_id)) > CHATTY_LINES // 10, 60)


def _during_cancel(served, data_dir, job_id):
    wait_until(lambda: served.job(job_id)["status"] == "running", 60)
    assert served.api.post(f"/v1/services/{served.job(job_id)['serviceId']}/jobs/{job_id}/cancel").status_code == 200


def _right_after_exit(served, data_dir, job_id):
    wait_until(lambda: "done" in _log(data_dir, job_id), 60)
    time.sleep(random.uniform(0, 0.3))


POINTS = {  # command, when to kill, how it must end, its log
    "after-201": ("echo one; echo two", _after_201, "succeeded", ["one", "two"]),
    "while-launching": ("echo one; echo two", _while_launching, "succeeded", ["one", "two"]),
    "while-chatty": (f"seq 1 {CHATTY_LINES}", _while_chatty, "succeeded", [str(i) for i in range(1, CHATTY_LINES + 1)]),
    "during-cancel": ("echo up; sleep 60", _during_cancel, "canceled", ["up"]),  # (+ the shell's "Terminated")
    "right-after-exit": ("echo done; exit 3", _right_after_exit, "failed", ["done"]),
}


@pytest.mark.parametrize("point", list(POINTS))
def test_a_control_plane_killed_at_a_point_of_a_jobs_life_loses_nothing(box, engine, point):
    data_dir, blueprint, service_id = box
    command, kill_when, ends, lines = POINTS[point]
    served = Served(data_dir, blueprint)
    made = []
    for _ in range(ROUNDS):
        answer = served.api.post(f"/v1/services/{service_id}/jobs", json={"startCommand": command})
        assert answer.status_code == 201, answer.text
        job_id = answer.json()["id"]
        made.append(job_id)
        kill_when(served, data_dir, job_id)
        served.kill()
        served = Served(data_dir, blueprint)  # recovers what the killed one ran; serves the next round
        settled = wait_until(lambda: (j := served.job(job_id))["status"] in ("succeeded", "failed", "canceled") and j, 120)
        assert settled["status"] == ends, (point, settled)
        wait_until(lambda: not engine.api.containers(all=True, filters={"label": f"render-local.job-id={job_id}"}), 60)
        logged = _log(data_dir, job_id)
        if point == "during-cancel" and logged[-1:] == ["Terminated"]:
            logged = logged[:-1]  # busybox sh says so when SIGTERM ends its child before its own trap runs
        assert logged == lines, (point, job_id, len(logged))
    served.kill()
    assert len(set(made)) == ROUNDS
