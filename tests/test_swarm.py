"""Jobs on the swarm engine backend (RENDER_LOCAL_ENGINE=swarm): each a Swarm service of one
replica that may not restart. The engine is made a one-node swarm for this module if it is not one
(CI's is a single dockerd) and left as it was found, also when a test fails."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time

import docker.errors
import pytest

from renderlocal.core.errors import EngineUnavailable, InvalidInput
from renderlocal.core.jobstore import JobStore
from tests.conftest import wait_until
from tests.test_jobs import BLUEPRINT, FILES, built, cli, log_of, serve_in_background  # noqa: F401 (built: a fixture)
# The job tests that matter, run here on the swarm backend (``plane`` below is a swarm one)
from tests.test_jobs import (test_a_job_over_its_timeout_is_timed_out, test_cancel_ends_as_canceled,  # noqa: F401
                             test_echo_hi_succeeds_with_times_and_log, test_env_snapshot_is_taken_at_creation,
                             test_exit_3_fails_with_non_zero_exit, test_huge_logs_are_complete,
                             test_memory_past_the_starter_limit_is_oom_killed,
                             test_plan_limits_are_applied_to_the_container,
                             test_twenty_jobs_in_parallel_keep_their_own_logs)

pytestmark = [pytest.mark.docker, pytest.mark.swarm]

@pytest.fixture(scope="module")
def swarm(engine):
    """The engine as a swarm manager for this module; left after it as found (SIGTERM too
    ends the session through this clean-up: other work shares the engine)."""
    before = engine.info()["Swarm"]
    if before.get("LocalNodeState") != "inactive":
        if not before.get("ControlAvailable"):
            pytest.skip(f"this engine is in a swarm as {before.get('LocalNodeState')} but not a manager")
        yield engine  # someone's swarm: used as it is, never left
        return
    had_gateway = bool(engine.networks.list(names=["docker_gwbridge"]))
    try:
        engine.swarm.init(advertise_addr="127.0.0.1")
    except Exception as exc:
        pytest.skip(f"this engine cannot be made a swarm: {exc}")
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield engine
    finally:
        try:
            engine.swarm.leave(force=True)
            if not had_gateway:  # the bridge swarm init made for its containers' outside traffic
                for network in engine.networks.list(names=["docker_gwbridge"]):
                    network.remove()
        finally:
            signal.signal(signal.SIGTERM, previous)


def _interrupt(_signum, _frame):
    raise KeyboardInterrupt("SIGTERM")


@pytest.fixture
def swarm_backend(swarm, data_dir, monkeypatch):
    """This test's control planes (in process or started by its CLIs) use the swarm backend."""
    monkeypatch.setenv("RENDER_LOCAL_ENGINE", "swarm")
    yield
    remove_swarm_leftovers(swarm, data_dir)


@pytest.fixture
def swarm_plane(swarm_backend, started, data_dir, write_blueprint):
    plane = started(data_dir, write_blueprint(BLUEPRINT.format(greeting="hello"), FILES))
    assert plane.build("box", wait=True).status == "succeeded"
    return plane


@pytest.fixture
def plane(swarm_plane):
    """What the job tests imported from test_jobs run on."""
    return swarm_plane


def remove_swarm_leftovers(engine, data_dir) -> None:
    """This test's services, then its overlay network once their tasks left it."""
    mine = f"render-local.data-dir={data_dir}"
    for service in engine.services.list(filters={"label": mine}):
        service.remove()
    for network in engine.networks.list(filters={"label": mine}):
        deadline = time.monotonic() + 30
        while True:
            try:
                network.remove()
                break
            except docker.errors.NotFound:  # its control plane removed it meanwhile
                break
            except docker.errors.APIError:  # its tasks' endpoints are still going away
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)


def services_of(engine, data_dir):
    return engine.services.list(filters={"label": f"render-local.data-dir={data_dir}"})


def test_a_job_is_a_one_replica_service_with_the_plans_limits_and_reservations(swarm_plane, swarm, data_dir):
    job = swarm_plane.create_job("box", "sleep 3; echo hi")
    service = wait_until(lambda: services_of(swarm, data_dir))[0]
    spec = service.attrs["Spec"]
    assert spec["Mode"] == {"Replicated": {"Replicas": 1}} and spec["TaskTemplate"]["RestartPolicy"]["Condition"] == "none"
    resources = spec["TaskTemplate"]["Resources"]
    assert resources["Limits"]["MemoryBytes"] == resources["Reservations"]["MemoryBytes"] == 512 * 1024 * 1024
    assert resources["Limits"]["NanoCPUs"] == resources["Reservations"]["NanoCPUs"] == 500_000_000
    assert spec["Labels"]["render-local.job-id"] == job.id
    network = swarm.networks.get(spec["TaskTemplate"]["Networks"][0]["Target"])
    assert network.attrs["Driver"] == "overlay" and network.attrs["Attachable"]
    ended = swarm_plane.jobs.wait(job.id, timeout=120)
    assert ended.status == "succeeded" and ended.engine == "swarm:default" and log_of(swarm_plane, job.id) == ["hi"]
    assert services_of(swarm, data_dir) == []  # removed once its end and log were recorded


def test_finished_jobs_leave_no_task_that_holds_the_nodes_reservations(swarm_plane, swarm):
    """Six Starter jobs reserve 3 CPUs in all, more than this node has: once they end, their tasks go
    with their services. (A replicated-job task stays after its service, counted against the node by
    Swarm's constraint enforcer up to Docker 29, which then rejects new tasks: moby/moby#52652.)"""
    jobs = [swarm_plane.create_job("box", f"echo done-{n}") for n in range(6)]
    ended = [swarm_plane.jobs.wait(job.id, timeout=120) for job in jobs]
    assert [job.status for job in ended] == ["succeeded"] * 6
    services = {job.containerId for job in ended}
    wait_until(lambda: not [task for task in swarm.api.tasks() if task["ServiceID"] in services], 60)
    assert not any("placed again" in event["message"] for job in ended for event in job.events)


def test_cancel_sends_sigterm_and_ends_as_canceled(swarm_plane):
    job = swarm_plane.create_job("box", "trap 'echo got TERM; exit 143' TERM; echo started; sleep 60 & wait")
    wait_until(lambda: "started" in log_of(swarm_plane, job.id), 60)
    began = time.monotonic()
    swarm_plane.cancel_job(job.id)
    job = swarm_plane.jobs.wait(job.id, timeout=60)
    assert job.status == "canceled" and job.failureReason is None and time.monotonic() - began < 10
    assert log_of(swarm_plane, job.id) == ["started", "got TERM"]  # its own handler ran, its output kept
    with pytest.raises(InvalidInput, match="already ended"):
        swarm_plane.cancel_job(job.id)


def test_logs_arrive_live_and_are_complete_after_the_end(swarm_plane):
    job = swarm_plane.create_job("box", "echo first; sleep 4; i=0; while [ $i -lt 3000 ]; do echo line-$i; i=$((i+1)); done")
    wait_until(lambda: log_of(swarm_plane, job.id) == ["first"], 60)  # before the job ended
    assert not swarm_plane.jobs.get(job.id).final
    ended = swarm_plane.jobs.wait(job.id, timeout=120)
    assert ended.status == "succeeded" and ended.logsComplete
    assert log_of(swarm_plane, job.id) == ["first"] + [f"line-{i}" for i in range(3000)]


def test_kill_9_mid_job_then_a_lost_record_is_rebuilt_from_its_service(swarm_backend, built, started):
    data_dir, blueprint = built
    server = serve_in_background(data_dir, blueprint)
    made = cli(data_dir, blueprint, "jobs", "create", "box", "--start-command", "echo begun; sleep 4; echo done", "-o", "json")
    assert made.returncode == 0, made.stderr
    job_id = json.loads(made.stdout)["id"]
    store = JobStore(data_dir / "store" / "jobs")
    wait_until(lambda: store.get(job_id)["status"] == "running", 60)
    os.kill(server.pid, signal.SIGKILL)
    server.wait()
    store.remove_all()  # the store is lost; the service knows what it is
    restarted = started(data_dir, blueprint)
    assert restarted.state.list_jobs() == [] and job_id in restarted.recover()
    recovered = restarted.jobs.wait(job_id, timeout=120)
    assert recovered.status == "succeeded" and recovered.startCommand == "echo begun; sleep 4; echo done"
    assert recovered.engine == "swarm:default" and log_of(restarted, job_id) == ["begun", "done"]


def test_swarm_on_an_engine_that_is_no_manager_is_refused_in_one_line(monkeypatch):
    from renderlocal.executor.engine import Engine

    class Standalone:  # what a plain dockerd says of its swarm
        def info(self):
            return {"Swarm": {"LocalNodeState": "inactive", "ControlAvailable": False}}

    monkeypatch.setenv("RENDER_LOCAL_ENGINE", "swarm")
    with pytest.raises(EngineUnavailable) as refused:
        Engine(Standalone()).client
    assert "not one (swarm state: inactive)" in str(refused.value) and "\n" not in str(refused.value)


@pytest.fixture
def registry(tmp_path):
    """A registry on 127.0.0.1 (an engine trusts it over plain HTTP), from Debian's docker-registry."""
    binary = shutil.which("docker-registry")
    if binary is None:
        pytest.skip("needs a registry: apt-get install docker-registry")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{probe.getsockname()[1]}"
    config = tmp_path / "registry.yml"
    config.write_text(f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {tmp_path / 'registry'}\n"
                      f"http:\n  addr: {address}\n")
    process = subprocess.Popen([binary, "serve", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: _answers(address), 30)
        yield address
    finally:
        process.kill()
        process.wait()


def test_with_a_registry_the_build_image_is_pushed_and_run_by_digest(swarm_plane, swarm, data_dir, registry, monkeypatch):
    monkeypatch.setenv("RENDER_LOCAL_REGISTRY", registry)
    job = swarm_plane.create_job("box", "sleep 2; cat /version.txt")
    service = wait_until(lambda: services_of(swarm, data_dir))[0]
    image = service.attrs["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]
    assert image.startswith(f"{registry}/{job.image.split(':')[0]}@sha256:")  # what every node pulls
    ended = swarm_plane.jobs.wait(job.id, timeout=120)
    assert ended.status == "succeeded" and log_of(swarm_plane, job.id) == ["v1"]
    assert ended.image == job.image  # the record keeps the build's own name


def _answers(address: str) -> bool:
    host, port = address.split(":")
    with socket.socket() as probe:
        return probe.connect_ex((host, int(port))) == 0


def test_a_job_on_the_swarm_reaches_a_private_service_by_name(swarm_backend, engine, data_dir, write_blueprint):
    """Services stay containers on the manager, on the data dir's overlay network with the jobs."""
    from renderlocal.executor.control import ControlPlane
    from tests.conftest import close_running_plane
    from tests.test_services_run import BLUEPRINT as SERVICES, FILES as SERVICE_FILES, Clock
    from tests.test_services_run import test_a_job_reaches_a_private_service_by_name_and_gets_from_service_values as reaches

    plane = ControlPlane(data_dir, write_blueprint(SERVICES, SERVICE_FILES), engine=engine, clock=Clock()).start(loop=False)
    try:
        reaches(plane)
    finally:
        close_running_plane(plane)


def test_a_plan_is_capped_at_the_largest_nodes_cpus_and_one_no_node_holds_is_refused(swarm_plane, swarm):
    info = swarm.info()
    # Pro Plus reserves every CPU of this node (capped at 2): the earlier tests' job services must be gone
    # first, as Swarm counts a finished task's reservation until its service is removed
    wait_until(lambda: not swarm.services.list(filters={"label": "render-local"}), 180)
    job = swarm_plane.jobs.wait(swarm_plane.create_job("box", "echo ok", plan_id="plan-srv-011").id, timeout=240)
    assert job.status == "succeeded"  # Pro Plus: 4 CPU, 8 GB
    assert any("capped at that" in event["message"] for event in job.events) == (info["NCPU"] < 4)
    if info["MemTotal"] < 32 * 2**30:  # Pro Ultra reserves 32 GB: no node here has them
        refused = swarm_plane.jobs.wait(swarm_plane.create_job("box", "echo never", plan_id="plan-srv-014").id, 60)
        assert refused.status == "failed" and refused.failureReason["type"] == "startFailed"
        assert "no node of the swarm has the 32 GB of memory the Pro Ultra plan reserves" in refused.failureReason["message"]


def test_a_swarm_job_on_this_engine_has_a_shell_live_figures_and_a_peak(swarm_plane):
    hog = "x=$(head -c 40000000 /dev/zero | tr '\\0' a); echo held; sleep 30"  # 40 MB held
    job = swarm_plane.create_job("box", hog)
    peak = []
    measuring = threading.Thread(target=lambda: peak.append(swarm_plane._peak_memory(job.id)))  # as a comparison does
    measuring.start()
    wait_until(lambda: "held" in log_of(swarm_plane, job.id), 60)
    target = swarm_plane.running_container(job.id)
    assert target["containerId"] != swarm_plane.jobs.get(job.id).containerId  # its task's container, not its service
    said = swarm_plane.engine.api.exec_start(swarm_plane.engine.api.exec_create(target["containerId"], ["echo", "inside"]))
    assert said.decode().strip() == "inside"  # what render-local ssh opens a shell into
    figures = wait_until(lambda: (lambda f: f if f["latest"] and f["latest"]["memoryBytes"] > 40e6 else None)(
        swarm_plane.resource_figures(job.id)), 30)
    assert figures["latest"]["memoryLimitBytes"] == 512 * 1024 * 1024
    swarm_plane.cancel_job(job.id)
    assert swarm_plane.jobs.wait(job.id, 60).status == "canceled"
    measuring.join(30)
    assert peak and peak[0] > 40e6
