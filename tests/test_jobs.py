import json
import os
import signal
import subprocess
import sys
import time

import pytest

from renderlocal.core.errors import InvalidInput
from renderlocal.core.jobstore import JobStore
from renderlocal.core.logstore import LogStore
from renderlocal.executor.control import ControlPlane
from tests.conftest import wait_until

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
def plane(started, data_dir, write_blueprint):
    path = write_blueprint(BLUEPRINT.format(greeting="hello"), FILES)
    plane = started(data_dir, path)
    assert plane.build("box", wait=True).status == "succeeded"
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
    assert plane.build("py", wait=True).status == "succeeded"
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
    plane.cancel_job(job.id)
    job = plane.jobs.wait(job.id, timeout=60)
    assert job.status == "canceled" and job.failureReason is None
    assert time.monotonic() - began < 8  # SIGTERM reached the command, no grace-period wait
    assert "cancel requested" in [e["message"] for e in job.events]
    with pytest.raises(InvalidInput, match="already ended"):
        plane.cancel_job(job.id)


def test_env_snapshot_is_taken_at_creation(plane, write_blueprint):
    first = plane.create_job("box", "sleep 1; echo $GREETING $EXTRA", env=["EXTRA=one"])
    write_blueprint(BLUEPRINT.format(greeting="changed"), FILES)
    second = plane.create_job("box", "echo $GREETING $EXTRA")
    assert log_of(plane, plane.jobs.wait(first.id).id) == ["hello one"]
    assert log_of(plane, plane.jobs.wait(second.id).id) == ["changed"]
    assert plane.jobs.get(first.id).env["GREETING"] == "hello"


def test_bad_env_override_and_plan_are_refused(plane):
    for kwargs, words, field in [({"env": ["NOEQUALS"]}, "KEY=VALUE", "envVars"),
                                 ({"env": ["1BAD=x"]}, "'1BAD' is invalid", "envVars"),
                                 ({"plan_id": "plan-crn-003"}, "needs a service plan", "planId")]:
        with pytest.raises(InvalidInput, match=words) as refused:
            plane.create_job("box", "true", **kwargs)
        assert refused.value.field == field  # the launcher marks this field
    with pytest.raises(InvalidInput, match="startCommand is required") as refused:
        plane.create_job("box", "   ")
    assert refused.value.field == "startCommand"
    assert plane.state.list_jobs() == []


def test_a_rebuild_during_a_running_job_does_not_touch_it(plane):
    job = plane.create_job("box", "sleep 3; cat /version.txt")
    deadline = time.monotonic() + 30
    while plane.jobs.get(job.id).status == "pending" and time.monotonic() < deadline:
        time.sleep(0.05)
    (plane.blueprint_path.parent / "box" / "version.txt").write_text("v2\n")
    rebuilt = plane.build("box", wait=True)
    assert rebuilt.status == "succeeded" and rebuilt.id != job.buildId
    assert plane.jobs.get(job.id).status == "running"
    assert log_of(plane, plane.jobs.wait(job.id).id) == ["v1"]
    assert log_of(plane, run(plane, "cat /version.txt").id) == ["v2"]


def serve_in_background(data_dir, blueprint):
    """``render-local serve`` in a process of its own; returns it once it announced itself."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "renderlocal", "--data-dir", str(data_dir), "--blueprint", str(blueprint),
         "serve", "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().startswith("http://127.0.0.1:"), proc.stderr.read()
    return proc


def cli(data_dir, blueprint, *args):
    return subprocess.run([sys.executable, "-m", "renderlocal", "--data-dir", str(data_dir), "--blueprint",
                           str(blueprint), *args], capture_output=True, text=True, timeout=120)


@pytest.fixture
def built(engine, data_dir, write_blueprint):
    """A data dir whose box service is built, with no control plane running."""
    path = write_blueprint(BLUEPRINT.format(greeting="hello"), FILES)
    made = cli(data_dir, path, "builds", "create", "box", "--wait")
    assert made.returncode == 0, made.stderr
    from tests.conftest import stop_control_planes

    stop_control_planes(data_dir)
    return data_dir, path


def test_kill_9_of_the_control_plane_mid_job_then_restart_recovers_state_and_complete_log(built, started):
    data_dir, blueprint = built
    server = serve_in_background(data_dir, blueprint)
    command = "for i in 1 2 3 4 5 6; do echo line $i; sleep 0.5; done; exit 5"
    made = cli(data_dir, blueprint, "jobs", "create", "box", "--start-command", command, "-o", "json")
    assert made.returncode == 0, made.stderr
    job_id = json.loads(made.stdout)["id"]
    logs = LogStore(data_dir / "logs")
    deadline = time.monotonic() + 30
    while "line 2" not in [line.message for line in logs.read(job_id)] and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(server.pid, signal.SIGKILL)
    server.wait()
    assert JobStore(data_dir / "store" / "jobs").get(job_id)["status"] == "running"
    restarted = started(data_dir, blueprint)  # the next control plane adopts what the killed one ran
    assert job_id in restarted.recover()
    job = restarted.jobs.wait(job_id, timeout=60)
    assert job.status == "failed" and job.exitCode == 5 and job.logsComplete
    assert log_of(restarted, job_id) == [f"line {i}" for i in range(1, 7)]


def test_a_lost_job_record_is_rebuilt_from_its_container(built, started):
    data_dir, blueprint = built
    server = serve_in_background(data_dir, blueprint)
    made = cli(data_dir, blueprint, "jobs", "create", "box", "--start-command", "sleep 2; echo done", "-o", "json")
    job_id = json.loads(made.stdout)["id"]
    store = JobStore(data_dir / "store" / "jobs")
    deadline = time.monotonic() + 30
    while store.get(job_id)["status"] != "running" and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(server.pid, signal.SIGKILL)
    server.wait()
    store.remove_all()  # the store is lost; the container knows what it is
    restarted = started(data_dir, blueprint)
    assert restarted.state.list_jobs() == []
    assert job_id in restarted.recover()
    recovered = restarted.jobs.wait(job_id, timeout=60)
    assert recovered.status == "succeeded" and recovered.startCommand == "sleep 2; echo done"
    assert log_of(restarted, job_id) == ["done"]


def test_a_job_whose_container_was_made_just_before_a_crash_is_taken_over(plane, engine):
    """A crash between the container's creation and its id being saved: the next launch finds it by name."""
    from renderlocal.executor.jobs import container_name, job_labels

    job = plane.jobs.wait(plane.create_job("box", "echo first").id)
    record = plane.state.get_job(job.id)
    from renderlocal.core.models import Job, stamp

    orphan = Job(id="job-" + "c" * 20, serviceId=record.serviceId, startCommand="echo taken-over", planId=record.planId,
                 createdAt=stamp(), buildId=record.buildId, image=record.image, env=record.env, engine=plane.engine.id)
    made = engine.containers.create(record.image, entrypoint=["/bin/sh", "-c"], command=["echo taken-over"],
                                    name=container_name(orphan.id), init=True,
                                    labels=job_labels(orphan, plane.data_dir))  # as launch labels it
    plane.state.job_store.insert(orphan.to_doc())
    assert orphan.id in plane.recover()
    ended = plane.jobs.wait(orphan.id, timeout=60)
    assert ended.status == "succeeded" and ended.containerId == made.id
    assert log_of(plane, orphan.id) == ["taken-over"]
    # by name: listing every container of a shared engine races with other runs removing theirs
    assert engine.containers.list(all=True, filters={"name": f"^/{container_name(orphan.id)}$"}) == []


def _forged_job_container(engine, plane, job_id: str, name: str | None = None):
    """A container anyone on the engine could start: a job's labels, this data dir's path, no proof."""
    service = plane.get_service("box")
    labels = {"render-local": "job", "render-local.data-dir": str(plane.data_dir), "render-local.job-id": job_id,
              "render-local.service-id": service.id, "render-local.build-id": service.lastSuccessfulBuildId,
              "render-local.plan-id": service.planId, "render-local.created-at": "2026-01-01T00:00:00.000000+00:00"}
    container = engine.containers.create("busybox:1.36", ["sh", "-c", "echo forged"], labels=labels, name=name)
    container.start()
    return container


def test_a_forged_job_container_is_not_recorded_billed_or_removed(plane, engine, capfd):
    forged = [_forged_job_container(engine, plane, "job-" + "f" * 20),
              _forged_job_container(engine, plane, "job-../../x")]  # an id that would escape the store
    try:
        assert plane.recover() == []
        assert [j.id for j in plane.state.list_jobs()] == []  # nothing recorded, so nothing billed
        assert "job-" + "f" * 20 not in [j.id for j in plane.state.unsettled_jobs()]
        for container in forged:
            container.reload()  # still there: not ours to remove
        said = capfd.readouterr().err
        assert said.count("without this data dir's proof") == 2
        plane.recover()
        assert "without this data dir's proof" not in capfd.readouterr().err  # said once
    finally:
        for container in forged:
            container.remove(force=True)


def test_a_container_in_the_way_of_a_job_is_refused_not_taken_over(plane, engine):
    from renderlocal.core.models import Job, stamp
    from renderlocal.executor.jobs import container_name

    job_id = "job-" + "d" * 20
    forged = _forged_job_container(engine, plane, job_id, name=container_name(job_id))
    try:
        record = plane.state.get_job(plane.jobs.wait(plane.create_job("box", "true").id).id)
        plane.state.job_store.insert(Job(id=job_id, serviceId=record.serviceId, startCommand="echo mine",
                                         planId=record.planId, createdAt=stamp(), buildId=record.buildId,
                                         image=record.image, env=record.env, engine=plane.engine.id).to_doc())
        plane.recover()
        ended = plane.jobs.wait(job_id, timeout=60)
        assert ended.status == "failed" and "did not make" in ended.failureReason["message"]
        forged.reload()  # left alone
    finally:
        forged.remove(force=True)


def test_a_job_whose_container_is_removed_while_it_runs_is_lost(plane, engine):
    job = plane.create_job("box", "echo started; sleep 60")
    running = wait_for_status(plane, job.id, "running")
    deadline = time.monotonic() + 30
    while "started" not in log_of(plane, job.id) and time.monotonic() < deadline:
        time.sleep(0.05)
    engine.containers.get(running.containerId).remove(force=True)  # docker rm -f
    ended = plane.jobs.wait(job.id, timeout=60)
    assert ended.status == "failed" and ended.failureReason["type"] == "lost", ended.failureReason
    assert "removed" in ended.failureReason["message"] and log_of(plane, job.id) == ["started"]


def wait_for_status(plane, job_id: str, status: str, seconds: float = 60):
    deadline = time.monotonic() + seconds
    while (job := plane.state.get_job(job_id)).status != status and time.monotonic() < deadline:
        time.sleep(0.05)
    return job


def test_the_container_of_a_settled_job_left_by_a_crash_is_removed(plane, engine):
    """A crash between a job's end being recorded and its container's removal leaves the container."""
    from renderlocal.executor.jobs import container_name, job_labels

    job = plane.jobs.wait(plane.create_job("box", "echo done").id, timeout=60)
    assert job.settled
    left = engine.containers.create(job.image, ["true"], name=container_name(job.id) + "-left",
                                    labels=job_labels(job, plane.data_dir))
    plane.recover()
    assert engine.api.containers(all=True, filters={"id": left.id}) == []


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


def test_jobs_create_wait_exit_codes_via_cli(built):
    data_dir, blueprint = built
    base = [sys.executable, "-m", "renderlocal", "--data-dir", str(data_dir), "--blueprint", str(blueprint)]
    ok = subprocess.run(base + ["jobs", "create", "box", "--start-command", "echo hi", "--tail"], capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0 and ok.stdout.splitlines()[0] == "hi"
    bad = subprocess.run(base + ["jobs", "create", "box", "--start-command", "exit 3", "--wait", "-o", "json"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1 and '"exitCode": 3' in bad.stdout and "exited with code 3" in bad.stderr
    unknown = subprocess.run(base + ["jobs", "get", "job-00000000000000000000"], capture_output=True, text=True, timeout=60)
    assert unknown.returncode == 2 and unknown.stderr.strip() == "render-local: error: unknown job 'job-00000000000000000000'"


def test_a_failed_job_waited_for_shows_the_end_of_its_log(built):
    data_dir, blueprint = built
    failed = cli(data_dir, blueprint, "jobs", "create", "box", "--start-command",
                 "seq 1 30; sleep 0.5; echo 'ERROR: relation missing' >&2; exit 3", "--wait")
    # (the pause: stdout and stderr are two pipes, and lines written at once on both have no order)
    assert failed.returncode == 1
    said = failed.stderr.splitlines()
    job_id = next(word for word in failed.stdout.split() if word.startswith("job-"))
    assert f"render-local: {job_id} failed; the last 20 of 31 lines (render-local logs -r {job_id} for all of it):" in said
    assert said[said.index("  ERROR: relation missing") - 19:][:1] == ["  12"]  # lines 12..30, then the error
    assert said[-1] == f"render-local: job {job_id} failed: exited with code 3"


def _waiting_on_a_running_job(data_dir, blueprint):
    """A ``jobs create --wait`` process, once its job runs: (the process, the job store, the job)."""
    waiting = subprocess.Popen([sys.executable, "-m", "renderlocal", "--data-dir", str(data_dir), "--blueprint",
                                str(blueprint), "jobs", "create", "box", "--start-command", "sleep 60", "--wait"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               # as a shell runs it: a test runner started in the background (`cmd &` without job
                               # control) ignores SIGINT, and a child would inherit that and never hear Ctrl-C
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    store = JobStore(data_dir / "store" / "jobs")
    wait_until(lambda: [j for j in store.live() if j["status"] == "running"], 60)
    [job] = store.live()
    return waiting, store, job


def test_ctrl_c_while_waiting_says_the_job_keeps_running_and_how_to_cancel_it(built):
    data_dir, blueprint = built
    waiting, store, job = _waiting_on_a_running_job(data_dir, blueprint)
    waiting.send_signal(signal.SIGINT)
    _out, err = waiting.communicate(timeout=30)
    assert waiting.returncode == 130
    assert err.strip().splitlines()[-1] == (f"render-local: stopped waiting; job {job['id']} keeps running (and "
                                            f"billing): render-local jobs cancel box {job['id']} --confirm")
    assert store.get(job["id"])["status"] == "running"  # it does keep running
    assert cli(data_dir, blueprint, "jobs", "cancel", "box", job["id"], "--confirm").returncode == 0


def test_ctrl_c_twice_while_waiting_cancels_the_job(built):
    data_dir, blueprint = built
    waiting, store, job = _waiting_on_a_running_job(data_dir, blueprint)
    waiting.send_signal(signal.SIGINT)
    said = []
    while not said or "Ctrl-C again" not in said[-1]:
        said.append(waiting.stderr.readline())
        assert said[-1], "".join(said)
    assert said[-1].strip() == f"render-local: job {job['id']} keeps running; Ctrl-C again within 3 s cancels it"
    waiting.send_signal(signal.SIGINT)
    _out, err = waiting.communicate(timeout=30)
    assert waiting.returncode == 130, err
    assert err.strip().splitlines() == [f"render-local: canceling job {job['id']}", f"render-local: job {job['id']} canceled"]
    assert store.get(job["id"])["status"] == "canceled"


def test_a_command_that_cannot_start_fails_with_the_engines_reason(plane, engine):
    build = plane.state.get_build(plane.get_service("box").lastSuccessfulBuildId)
    engine.images.remove(build.image, force=True)  # the build's image vanished
    job = plane.jobs.wait(plane.create_job("box", "echo hi").id, timeout=60)
    assert job.status == "failed" and job.failureReason["type"] == "startFailed"
    assert "could not start" in job.failureReason["message"] and job.logsComplete


def test_a_job_on_another_engine_is_left_to_the_processes_that_use_that_engine(plane):
    from renderlocal.core.models import Job, stamp

    box = plane.get_service("box")
    made = {}
    for engine in ("tcp://10.255.255.1:2375", plane.engine.id):
        job = Job(id=f"job-{'e' if engine == plane.engine.id else 'o'}{'0' * 19}", serviceId=box.id,
                  startCommand="sleep 60", planId=box.planId, createdAt=stamp(), buildId=box.lastSuccessfulBuildId,
                  image="x", status="running", startedAt=stamp(), containerId="f" * 64, engine=engine)
        plane.state.job_store.insert(job.to_doc())
        made[engine] = job.id
    adopted = plane.recover()
    elsewhere, here = made["tcp://10.255.255.1:2375"], made[plane.engine.id]
    assert elsewhere not in adopted
    assert here in adopted and plane.jobs.wait(here, timeout=30).failureReason["type"] == "lost"  # ours, and truly gone
    assert plane.jobs.get(elsewhere).status == "running"  # not declared lost


def test_a_supervisor_pass_lists_running_job_containers_without_inspecting_each(plane, engine, monkeypatch):
    """Every pass looks for lost records: with many jobs running, one list call, not an inspect per job."""
    jobs = [plane.create_job("box", "sleep 30") for _ in range(3)]
    try:
        for job in jobs:
            wait_for_status(plane, job.id, "running")
        inspected = []
        real = plane.engine.api.inspect_container
        monkeypatch.setattr(plane.engine.api, "inspect_container", lambda *a, **k: inspected.append(a) or real(*a, **k))
        plane.jobs.recreate_missing_records()
        assert inspected == []
    finally:
        for job in jobs:
            plane.cancel_job(job.id)
        for job in jobs:
            plane.jobs.wait(job.id, timeout=60)
