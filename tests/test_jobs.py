import os
import signal
import subprocess
import sys
import time

import pytest

from renderlocal.core.control import ControlPlane
from renderlocal.core.errors import InvalidInput

pytestmark = pytest.mark.docker

BLUEPRINT = """\
services:
  - type: worker
    name: box
    runtime: docker
    rootDir: box
    plan: starter
    envVars:
      - key: GREETING
        value: {greeting}
  - type: worker
    name: py
    runtime: docker
    rootDir: py
    plan: starter
"""
FILES = {
    "box/Dockerfile": "FROM busybox:1.36\nCOPY version.txt /version.txt\n",
    "box/version.txt": "v1\n",
    "py/Dockerfile": "FROM python:3.11-slim\n",
}


@pytest.fixture
def plane(engine, data_dir, write_blueprint):
    path = write_blueprint(BLUEPRINT.format(greeting="hello"), FILES)
    plane = ControlPlane(data_dir, path, engine=engine)
    plane.sync_services()
    assert plane.build("box").status == "succeeded"
    return plane


def log_of(plane, job_id):
    return [line.message for line in plane.logs.read(job_id)]


def run(plane, command, service="box", **kwargs):
    return plane.jobs.wait(plane.create_job(service, command, **kwargs).id, timeout=120)


def test_echo_hi_succeeds_with_times_and_log(plane):
    created = plane.create_job("box", "echo hi")
    assert created.status == "pending" and created.startedAt is None and created.finishedAt is None
    job = plane.jobs.wait(created.id)
    assert job.status == "succeeded" and job.exitCode == 0 and job.failureReason is None
    assert job.startedAt and job.finishedAt and job.createdAt <= job.startedAt <= job.finishedAt
    assert log_of(plane, job.id) == ["hi"]
    assert [e["status"] for e in job.events] == ["pending", "running", "succeeded"]
    assert job.cost() > 0
    assert job.to_render()["costUSD"] == "0.00000270"  # one second of Starter


def test_exit_3_fails_with_non_zero_exit(plane):
    job = run(plane, "echo out; echo err >&2; exit 3")
    assert job.status == "failed" and job.exitCode == 3
    assert job.failureReason == {"type": "nonZeroExit", "exitCode": 3, "message": "exited with code 3"}
    lines = list(plane.logs.read(job.id))
    # stdout and stderr are separate pipes: the engine may take either first
    assert sorted((l.stream, l.message) for l in lines) == [("stderr", "err"), ("stdout", "out")]  # noqa: E741


def test_plan_limits_are_applied_to_the_container(plane):
    job = run(plane, "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max; "
                     "cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us 2>/dev/null || cut -d' ' -f1 /sys/fs/cgroup/cpu.max",
              plan_id="plan-srv-008")
    assert log_of(plane, job.id) == [str(2048 * 1024 * 1024), "100000"]  # 2 GB, 1 CPU (quota = period)


def test_memory_past_the_starter_limit_is_oom_killed(plane):
    assert plane.build("py").status == "succeeded"
    job = run(plane, "python -c \"x = b'x' * (700 * 1024 * 1024); print('survived')\"", service="py")
    assert job.status == "failed"
    assert job.failureReason["type"] == "oomKilled" and job.failureReason["memoryLimitMB"] == 512
    assert "survived" not in log_of(plane, job.id)
    bigger = run(plane, "python -c \"x = b'x' * (700 * 1024 * 1024); print('survived')\"", service="py", plan_id="plan-srv-008")
    assert bigger.status == "succeeded" and log_of(plane, bigger.id) == ["survived"]


def test_a_job_over_its_timeout_is_timed_out(plane, monkeypatch):
    monkeypatch.setenv("RENDER_LOCAL_JOB_TIMEOUT_SECONDS", "2")
    started = time.monotonic()
    job = run(plane, "echo begin; sleep 30; echo never")
    assert time.monotonic() - started < 15
    assert job.status == "failed"
    assert job.failureReason["type"] == "timedOut" and job.failureReason["seconds"] == 2
    assert log_of(plane, job.id) == ["begin"]


def test_cancel_ends_as_canceled(plane):
    job = plane.create_job("box", "echo started; sleep 60")
    deadline = time.monotonic() + 20
    while "started" not in log_of(plane, job.id) and time.monotonic() < deadline:
        time.sleep(0.05)
    began = time.monotonic()
    plane.jobs.cancel(job.id)
    job = plane.jobs.wait(job.id, timeout=60)
    assert job.status == "canceled" and job.failureReason is None
    assert time.monotonic() - began < 8  # SIGTERM reached the command, no grace-period wait
    assert "cancel requested" in [e["message"] for e in job.events]
    with pytest.raises(InvalidInput, match="already ended"):
        plane.jobs.cancel(job.id)


def test_env_snapshot_is_taken_at_creation(plane, write_blueprint):
    first = plane.create_job("box", "sleep 1; echo $GREETING $EXTRA", env=["EXTRA=one"])
    write_blueprint(BLUEPRINT.format(greeting="changed"), FILES)
    second = plane.create_job("box", "echo $GREETING $EXTRA")
    assert log_of(plane, plane.jobs.wait(first.id).id) == ["hello one"]
    assert log_of(plane, plane.jobs.wait(second.id).id) == ["changed"]
    assert plane.jobs.get(first.id).env["GREETING"] == "hello"


def test_bad_env_override_and_plan_are_refused(plane):
    with pytest.raises(InvalidInput, match="KEY=VALUE"):
        plane.create_job("box", "true", env=["NOEQUALS"])
    with pytest.raises(InvalidInput, match="'1BAD' is invalid"):
        plane.create_job("box", "true", env=["1BAD=x"])
    with pytest.raises(InvalidInput, match="needs a service plan"):
        plane.create_job("box", "true", plan_id="plan-crn-003")
    with pytest.raises(InvalidInput, match="startCommand is required"):
        plane.create_job("box", "   ")
    assert plane.jobs.list() == []


def test_a_rebuild_during_a_running_job_does_not_touch_it(plane):
    job = plane.create_job("box", "sleep 3; cat /version.txt")
    deadline = time.monotonic() + 30
    while plane.jobs.get(job.id).status == "pending" and time.monotonic() < deadline:
        time.sleep(0.05)
    (plane.blueprint_path.parent / "box" / "version.txt").write_text("v2\n")
    rebuilt = plane.build("box")
    assert rebuilt.status == "succeeded" and rebuilt.id != job.buildId
    assert plane.jobs.get(job.id).status == "running"
    assert log_of(plane, plane.jobs.wait(job.id).id) == ["v1"]
    assert log_of(plane, run(plane, "cat /version.txt").id) == ["v2"]


def test_kill_9_mid_job_then_restart_recovers_state_and_complete_log(plane):
    command = "for i in 1 2 3 4 5 6; do echo line $i; sleep 0.5; done; exit 5"
    proc = subprocess.Popen(
        [sys.executable, "-m", "renderlocal", "--data-dir", str(plane.data_dir), "--blueprint", str(plane.blueprint_path),
         "jobs", "create", "box", "--start-command", command, "--wait"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 30
    job_id = None
    while time.monotonic() < deadline:
        jobs = plane.jobs.list()
        if jobs and "line 2" in log_of(plane, jobs[0].id):
            job_id = jobs[0].id
            break
        time.sleep(0.05)
    assert job_id, "the job never started"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert plane.jobs.get(job_id).status == "running"
    restarted = ControlPlane(plane.data_dir, plane.blueprint_path, engine=plane.engine)
    assert job_id in restarted.recover()
    job = restarted.jobs.wait(job_id, timeout=60)
    assert job.status == "failed" and job.exitCode == 5 and job.logsComplete
    assert log_of(restarted, job_id) == [f"line {i}" for i in range(1, 7)]


def test_a_lost_job_record_is_rebuilt_from_its_container(plane):
    job = plane.create_job("box", "sleep 2; echo done", supervise=False)
    plane.job_store.remove_all()
    assert plane.jobs.list() == []
    restarted = ControlPlane(plane.data_dir, plane.blueprint_path, engine=plane.engine)
    restarted.recover()
    recovered = restarted.jobs.wait(job.id, timeout=60)
    assert recovered.status == "succeeded" and recovered.startCommand == "sleep 2; echo done"
    assert log_of(restarted, job.id) == ["done"]


def test_twenty_jobs_in_parallel_keep_their_own_logs(plane):
    created = [plane.create_job("box", f"echo job-{n}; sleep 1; echo end-{n}") for n in range(20)]
    finished = [plane.jobs.wait(job.id, timeout=120) for job in created]
    assert all(job.status == "succeeded" for job in finished)
    for n, job in enumerate(finished):
        assert log_of(plane, job.id) == [f"job-{n}", f"end-{n}"]


def test_huge_logs_are_complete(plane):
    job = run(plane, "i=0; while [ $i -lt 200000 ]; do echo line-$i; i=$((i+1)); done | cat; head -c 1048576 /dev/zero | tr '\\0' a; echo")
    assert job.status == "succeeded"
    lines = log_of(plane, job.id)
    assert len(lines) == 200001
    assert lines[0] == "line-0" and lines[199999] == "line-199999"
    assert lines[-1] == "a" * 1048576  # one 1 MiB line, rejoined from docker's 16 KiB frames


def test_jobs_create_wait_exit_codes_via_cli(plane):
    base = [sys.executable, "-m", "renderlocal", "--data-dir", str(plane.data_dir), "--blueprint", str(plane.blueprint_path)]
    ok = subprocess.run(base + ["jobs", "create", "box", "--start-command", "echo hi", "--tail"], capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0 and ok.stdout.splitlines()[0] == "hi"
    bad = subprocess.run(base + ["jobs", "create", "box", "--start-command", "exit 3", "--wait", "-o", "json"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1 and '"exitCode": 3' in bad.stdout and "exited with code 3" in bad.stderr
    unknown = subprocess.run(base + ["jobs", "get", "job-00000000000000000000"], capture_output=True, text=True, timeout=60)
    assert unknown.returncode == 2 and unknown.stderr.strip() == "render-local: error: unknown job 'job-00000000000000000000'"


def test_a_command_that_cannot_start_fails_with_the_engines_reason(plane, engine):
    build = plane.builds.get(plane.get_service("box").lastSuccessfulBuildId)
    engine.images.remove(build.image, force=True)  # the build's image vanished
    job = plane.jobs.wait(plane.create_job("box", "echo hi").id, timeout=60)
    assert job.status == "failed" and job.failureReason["type"] == "startFailed"
    assert "could not start" in job.failureReason["message"] and job.logsComplete


def test_a_job_on_another_engine_is_left_to_the_processes_that_use_that_engine(plane):
    from renderlocal.core.models import Job, stamp

    box = plane.get_service("box")
    made = {}
    for engine in ("tcp://10.255.255.1:2375", plane.engine_id):
        job = Job(id=f"job-{'e' if engine == plane.engine_id else 'o'}{'0' * 19}", serviceId=box.id,
                  startCommand="sleep 60", planId=box.planId, createdAt=stamp(), buildId=box.lastSuccessfulBuildId,
                  image="x", status="running", startedAt=stamp(), containerId="f" * 64, engine=engine)
        plane.job_store.insert(job.to_doc())
        made[engine] = job.id
    adopted = plane.jobs.reconcile(follow=False)
    elsewhere, here = made["tcp://10.255.255.1:2375"], made[plane.engine_id]
    assert elsewhere not in adopted and plane.jobs.get(elsewhere).status == "running"  # not declared lost
    assert plane.jobs.reconcile_one(elsewhere, follow=False).status == "running"
    assert here in adopted and plane.jobs.get(here).failureReason["type"] == "lost"  # ours, and truly gone
