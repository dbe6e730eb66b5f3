"""Plan comparisons (issue 21): one command on several plans, run by the control plane one after
another or at once; the small plan is OOM-killed, a bigger one succeeds and is the cheapest that
did. Real engine."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from renderlocal.core.clock import utcnow
from renderlocal.core.errors import InvalidInput, NotFound
from renderlocal.core.models import stamp
from renderlocal.core.statuses import FINAL_JOB_STATUSES
from renderlocal.core.comparison import comparison_view
from renderlocal.executor.comparisons import TABLE
from tests.conftest import close_running_plane, wait_until

pytestmark = pytest.mark.docker

BLUEPRINT = """\
services:
  - type: worker
    name: py
    runtime: docker
    rootDir: py
    plan: starter
    dockerCommand: sleep 3600
"""
FILES = {"py/Dockerfile": "FROM python:3.11-slim\n"}
# more than Starter's 512 MB, held a moment: peak memory is sampled every 200 ms, and a container's
# figures go with it when it exits
ALLOCATE = "python -c \"import time; b = bytearray(700 * 2**20); print(len(b)); time.sleep(1.5)\""


@pytest.fixture
def plane(engine, data_dir, write_blueprint):
    from renderlocal.executor.control import ControlPlane

    plane = ControlPlane(data_dir, write_blueprint(BLUEPRINT, FILES), engine=engine).start(loop=False)
    assert plane.build("py", wait=True).status == "succeeded"
    yield plane
    close_running_plane(plane)


def view_when_finished(plane, comparison_id: str) -> dict:
    def finished():
        doc = plane.comparisons.get(comparison_id)
        jobs = {job_id: plane.jobs.get(job_id) for job_id in doc["jobIds"].values()}
        view = comparison_view(doc, jobs, utcnow())
        return view if view["finished"] and all(j.settled for j in jobs.values()) else None

    return wait_until(finished, 120)


def test_one_after_another_the_small_plan_is_oom_killed_and_the_bigger_one_is_the_cheapest(plane):
    doc = plane.compare_plans("py", ALLOCATE, ["plan-srv-006", "plan-srv-008", "plan-srv-010"])
    assert len(doc["jobIds"]) == 1  # the first run is made at once; the others after it ended
    view = view_when_finished(plane, doc["id"])
    outcomes = {run["planId"]: (run["status"], (run.get("failureReason") or {}).get("type")) for run in view["runs"]}
    assert outcomes == {"plan-srv-006": ("failed", "oomKilled"), "plan-srv-008": ("succeeded", None),
                        "plan-srv-010": ("succeeded", None)}
    assert view["cheapestPlanId"] == "plan-srv-008"
    peaks = wait_until(lambda: (lambda p: p if len(p) == 3 else None)(plane.comparisons.get(doc["id"]).get("peaks", {})), 10)
    assert peaks["plan-srv-006"] == 512 * 2**20  # OOM-killed: it used all of Starter's memory
    assert 700 * 2**20 <= peaks["plan-srv-008"] <= 2048 * 2**20  # the 700 MB it allocated, within Standard's 2 GB
    jobs = [plane.jobs.get(doc_id) for doc_id in plane.comparisons.get(doc["id"])["jobIds"].values()]
    jobs.sort(key=lambda job: job.createdAt)
    for before, after in zip(jobs, jobs[1:]):
        assert after.started() >= before.finished()  # one after another: they did not slow each other
    assert [job.planId for job in jobs] == ["plan-srv-006", "plan-srv-008", "plan-srv-010"]
    assert all(job.startCommand == ALLOCATE for job in jobs)


def test_at_once_every_run_is_made_together_and_env_overrides_reach_each(plane):
    doc = plane.compare_plans("py", "echo $WHO", ["plan-srv-006", "plan-srv-008"], sequential=False,
                              env=["WHO=both"])
    wait_until(lambda: len(plane.comparisons.get(doc["id"])["jobIds"]) == 2, 10)
    view = view_when_finished(plane, doc["id"])
    assert [run["status"] for run in view["runs"]] == ["succeeded", "succeeded"]
    assert view["cheapestPlanId"] == "plan-srv-006"
    for job_id in plane.comparisons.get(doc["id"])["jobIds"].values():
        assert [line.message for line in plane.logs.read(job_id)] == ["both"]


def test_bad_comparisons_are_refused_and_an_interrupted_one_goes_on(plane):
    for plans, words in ((["plan-srv-006"], "at least two plans"), (["plan-srv-006", "plan-crn-003"], "plan-crn-003"),
                         (["plan-srv-006", "plan-nope"], "plan-nope")):
        with pytest.raises(InvalidInput, match=words):
            plane.compare_plans("py", "true", plans)
    with pytest.raises(NotFound, match="unknown plan comparison"):
        plane.comparisons.get("cmp-00000000000000000000")
    # as a control plane that crashed after recording it and before making a run leaves it
    left = {"id": "cmp-0000000000000000left", "serviceId": plane.get_service("py").id, "startCommand": "true",
            "planIds": ["plan-srv-006", "plan-srv-008"], "sequential": True, "env": [], "jobIds": {},
            "createdAt": stamp()}
    plane.state.store.insert(TABLE, left)
    plane.comparisons.resume()  # the supervisor's pass
    view = view_when_finished(plane, left["id"])
    assert [run["status"] for run in view["runs"]] == ["succeeded", "succeeded"]
    assert all(j.status in FINAL_JOB_STATUSES for j in plane.state.list_jobs())


def test_the_cli_prints_the_comparison_and_exits_by_its_outcome(engine, tmp_path):
    for path, text in FILES.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text)
    (tmp_path / "render.yaml").write_text(BLUEPRINT)
    base = [sys.executable, "-m", "renderlocal", "--data-dir", str(tmp_path / "data"), "--blueprint", str(tmp_path / "render.yaml")]

    def cli(*args):
        return subprocess.run(base + list(args), capture_output=True, text=True, timeout=240)

    assert cli("builds", "create", "py", "--wait").returncode == 0
    shown = cli("jobs", "create", "py", "--start-command", ALLOCATE, "--compare-plans", "--plans",
                "plan-srv-006,plan-srv-008", "--wait")
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert "one after another" in lines[0]
    assert "OOM-killed" in next(l for l in lines if l.startswith("Starter"))
    assert next(l for l in lines if l.startswith("Standard")).endswith("cheapest that succeeded")
    failing = cli("jobs", "create", "py", "--start-command", "exit 4", "--compare-plans", "--plans",
                  "plan-srv-006,plan-srv-008", "--parallel", "--wait", "-o", "json")
    assert failing.returncode == 1 and "cheapestPlanId" not in json.loads(failing.stdout)
    later = json.loads(cli("jobs", "comparison", json.loads(failing.stdout)["id"], "-o", "json").stdout)
    assert [run["failureReason"]["type"] for run in later["runs"]] == ["nonZeroExit", "nonZeroExit"]
    for args, words in ((["--compare-plans"], "needs --start-command"),
                        (["--compare-plans", "--start-command", "true", "--plan-id", "plan-srv-008"], "--plan-id does not go")):
        refused = cli("jobs", "create", "py", *args)
        assert refused.returncode == 2 and words in refused.stderr and "Traceback" not in refused.stderr
