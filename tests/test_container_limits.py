"""Limits beyond memory and CPU on job and service containers: processes, privileges,
capabilities, the engine's own log; and normal work still runs under them. Real engine."""

from __future__ import annotations

import os
import subprocess

import pytest

from renderlocal.core.logstore import LogStore
from renderlocal.core.plans import get_plan, plans_for
from renderlocal.core.statuses import DeployStatus
from renderlocal.executor.logcapture import LogCapture
from tests.conftest import close_running_plane, wait_until

pytestmark = pytest.mark.docker

BLUEPRINT = """\
services:
  - type: worker
    name: box
    runtime: docker
    rootDir: box
    plan: starter
    dockerCommand: sleep 3600
  - type: worker
    name: py
    runtime: docker
    rootDir: py
    plan: starter
"""
FILES = {"box/Dockerfile": "FROM busybox:1.36\n", "py/Dockerfile": "FROM python:3.11-slim\n"}
STARTER = get_plan("plan-srv-006")
# capabilities Docker grants by default that a job does not need: raw sockets, device nodes,
# chroot, file capabilities, changing capability sets, the audit log (bit numbers of linux/capability.h)
DROPPED_BITS = {"NET_RAW": 13, "MKNOD": 27, "SYS_CHROOT": 18, "SETFCAP": 31, "SETPCAP": 8, "AUDIT_WRITE": 29}
KEPT_BITS = {"CHOWN": 0, "DAC_OVERRIDE": 1, "FOWNER": 3, "KILL": 5, "SETGID": 6, "SETUID": 7, "NET_BIND_SERVICE": 10}
ENGINE_LOG = {"Type": "json-file", "Config": {"max-size": "20m", "max-file": "5"}}


@pytest.fixture
def plane(engine, data_dir, write_blueprint):
    from renderlocal.executor.control import ControlPlane

    plane = ControlPlane(data_dir, write_blueprint(BLUEPRINT, FILES), engine=engine).start(loop=False)
    assert plane.build("box", wait=True).status == "succeeded"
    yield plane
    close_running_plane(plane)


def run(plane, command: str, service: str = "box", timeout: float = 120):
    return plane.jobs.wait(plane.create_job(service, command).id, timeout=timeout)


def log_of(plane, job_id: str) -> list[str]:
    return [line.message for line in plane.logs.read(job_id)]


def test_a_fork_bomb_stops_at_the_plans_pids_limit_and_the_job_fails(plane):
    assert 256 <= STARTER.pids_limit <= 1024
    job = run(plane, "i=0; while [ $i -lt 5000 ]; do sleep 20 & i=$((i+1)); echo $i; done; wait")
    lines = log_of(plane, job.id)
    started = max(int(line) for line in lines if line.isdigit())
    assert started < STARTER.pids_limit, f"{started} processes started"
    assert any("can't fork" in line for line in lines)
    assert job.status == "failed" and job.failureReason["type"] == "nonZeroExit"
    subprocess.run(["true"], check=True)  # the host still forks


def test_a_job_gains_no_privileges_and_runs_with_fewer_capabilities(plane):
    job = run(plane, "grep -E '^(NoNewPrivs|CapEff)' /proc/self/status")
    status = dict(line.split(":\t") for line in log_of(plane, job.id))
    assert status["NoNewPrivs"] == "1"
    effective = int(status["CapEff"], 16)
    assert [name for name, bit in DROPPED_BITS.items() if effective >> bit & 1] == []
    assert [name for name, bit in KEPT_BITS.items() if not effective >> bit & 1] == []


def test_job_and_instance_containers_carry_every_limit(plane, engine):
    job = plane.create_job("box", "sleep 30")
    running = wait_until(lambda: plane.jobs.get(job.id).containerId)
    config = engine.api.inspect_container(running)["HostConfig"]
    plane.cancel_job(job.id)
    assert config["PidsLimit"] == STARTER.pids_limit
    assert config["SecurityOpt"] == ["no-new-privileges"]
    assert set(config["CapDrop"]) == set(DROPPED_BITS)
    assert config["LogConfig"] == ENGINE_LOG  # render-local keeps its own copy of every line
    assert not config.get("StorageOpt")  # overlay2 on ext4 here: the engine cannot limit a writable layer

    deploy = plane.deploy("box", wait=True)
    assert deploy.status == DeployStatus.LIVE, deploy.failureReason
    instance = engine.api.inspect_container(deploy.instances[0]["containerId"])["HostConfig"]
    assert instance["PidsLimit"] == STARTER.pids_limit and instance["SecurityOpt"] == ["no-new-privileges"]
    assert set(instance["CapDrop"]) == set(DROPPED_BITS)
    assert instance["LogConfig"] != ENGINE_LOG  # the engine's default: its log is read from there, kept whole


def test_normal_jobs_still_run_under_the_limits(plane):
    box = run(plane, "mkdir -p /srv && echo hi > /srv/index.html && chown 65534:65534 /srv/index.html && "
                     "httpd -p 80 -h /srv && httpd -p 8080 -h /srv && "  # as root, a port under 1024 too
                     "wget -q -O - http://127.0.0.1:80/ && wget -q -O - http://127.0.0.1:8080/")
    assert box.status == "succeeded" and log_of(plane, box.id) == ["hi", "hi"]
    assert plane.build("py", wait=True).status == "succeeded"
    py = run(plane, "su nobody -s /bin/sh -c 'id -u' && python -c \"import subprocess, threading; "
                    "ts = [threading.Thread(target=subprocess.run, args=(['sleep', '1'],)) for _ in range(100)]; "
                    "[t.start() for t in ts]; [t.join() for t in ts]; print('200 tasks')\"", service="py")
    assert py.status == "succeeded" and log_of(plane, py.id) == ["65534", "200 tasks"]


def test_a_catch_up_gets_every_line_of_a_chatty_job_across_the_engines_log_rotation(plane, engine, tmp_path):
    """After a crash the catch-up reads the engine's log; rotated files are read too, as long as
    none was dropped (20 MB x 5 files: about 1.3 million short lines)."""
    from renderlocal.executor.container_limits import container_limits

    count = 400_000  # about 32 MB of the engine's JSON lines: more than one 20 MB file
    container = engine.containers.create("busybox:1.36", ["sh", "-c", f"seq 1 {count}"],
                                         **container_limits(engine, STARTER, "busybox:1.36"))
    try:
        container.start()
        container.wait(timeout=120)
        log_path = engine.api.inspect_container(container.id)["LogPath"]
        if os.path.exists(log_path):  # an engine on this host: see that it rotated
            assert os.path.exists(log_path + ".1")
        logs = LogStore(tmp_path / "logs")
        writer = logs.writer("resumed")
        for n in range(1, 100_001):  # what the file held when the control plane died
            writer.write("2026-01-01T00:00:00.000000000Z", "stdout", str(n))
        writer.close()
        LogCapture(engine.api, logs, "resumed", container.id).fetch_once()
        assert [line.message for line in logs.read("resumed")] == [str(n) for n in range(1, count + 1)]
    finally:
        container.remove(force=True)


def test_a_plan_with_more_cpu_than_the_machine_runs_capped_and_says_so(plane, engine):
    cpus = engine.info()["NCPU"]
    bigger = next(p for p in plans_for("worker") if p.cpu > cpus)  # Pro Plus (4 CPU) on this 2-core machine
    job = plane.jobs.wait(plane.create_job("box", "cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us 2>/dev/null || "
                                                  "cut -d' ' -f1 /sys/fs/cgroup/cpu.max", plan_id=bigger.id).id, timeout=120)
    assert job.status == "succeeded", job.failureReason
    assert int(log_of(plane, job.id)[0]) == cpus * 100_000  # the engine's period is 100 ms: quota = CPUs x period
    started = next(e for e in job.events if e["status"] == "running")
    assert started["message"] == f"started ({bigger.name} has {bigger.cpu} CPU; this engine's machine has {cpus}: capped at that)"
    small = run(plane, "true")
    assert [e["message"] for e in small.events if e["status"] == "running"] == ["started"]
