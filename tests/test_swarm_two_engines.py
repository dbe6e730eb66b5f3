"""The swarm backend across two machines: CI's engine as the manager, and a second dockerd in a
network namespace of its own (a veth pair between them) joined as a worker. Jobs and service
instances run on the node Swarm picks; the manager's control plane follows them there (state,
exit code, log), its URL reaches a web instance on the other node, and a job on one node
reaches a service on the other over the overlay network. Left as found: the worker leaves,
its engine stops, the namespace and the swarm go."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import urllib.request

import docker
import pytest

from renderlocal.core.statuses import DeployStatus
from tests.conftest import close_running_plane, wait_until
from tests.test_swarm import remove_swarm_leftovers

pytestmark = [pytest.mark.docker, pytest.mark.swarm]

BLUEPRINT = """\
services:
  - type: web
    name: web
    runtime: docker
    rootDir: web
    dockerCommand: httpd -f -p $PORT -h /www
  - type: worker
    name: box
    runtime: docker
    rootDir: web
    dockerCommand: sleep 3600
"""
FILES = {"web/Dockerfile": "FROM busybox:1.36\nCOPY www /www\n", "web/www/index.html": "v1\n"}


def _missing() -> str | None:
    if os.geteuid() != 0:
        return "needs root (a network namespace and a second dockerd)"
    for tool in ("ip", "nsenter", "dockerd"):
        if shutil.which(tool) is None:
            return f"needs {tool}"
    return None


def _run(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def two_engines(engine, tmp_path_factory):
    """(manager, worker) clients: this engine made a swarm manager on a veth address, and a
    second dockerd in its own network namespace joined as a worker."""
    why = _missing()
    if why:
        pytest.skip(why)
    if engine.info()["Swarm"].get("LocalNodeState") != "inactive":
        pytest.skip("this engine is in a swarm already")
    tag = f"{os.getpid() % 100000}"
    namespace, host_end, worker_end = f"rl2e-{tag}", f"rlm{tag}", f"rlw{tag}"
    subnet = f"10.99.{os.getpid() % 250}"
    root = tmp_path_factory.mktemp("worker")
    sock = f"unix://{root}/docker.sock"
    had_gateway = bool(engine.networks.list(names=["docker_gwbridge"]))
    worker_daemon = None
    try:
        _run("ip", "netns", "add", namespace)
        _run("ip", "link", "add", host_end, "type", "veth", "peer", "name", worker_end)
        _run("ip", "link", "set", worker_end, "netns", namespace)
        _run("ip", "addr", "add", f"{subnet}.1/24", "dev", host_end)
        _run("ip", "link", "set", host_end, "up")
        inside = ["ip", "netns", "exec", namespace]
        _run(*inside, "ip", "addr", "add", f"{subnet}.2/24", "dev", worker_end)
        _run(*inside, "ip", "link", "set", worker_end, "up")
        _run(*inside, "ip", "link", "set", "lo", "up")
        # nsenter, not `ip netns exec`: that one remounts /sys, hiding the cgroups dockerd needs
        worker_daemon = subprocess.Popen(
            ["nsenter", f"--net=/var/run/netns/{namespace}", "dockerd", "--data-root", str(root / "data"),
             "--exec-root", str(root / "exec"), "--pidfile", str(root / "docker.pid"), "-H", sock,
             "--default-address-pool", "base=10.240.0.0/16,size=24"],
            stdout=open(root / "dockerd.log", "wb"), stderr=subprocess.STDOUT, start_new_session=True)
        worker = wait_until(lambda: _client(sock), 60)
        engine.swarm.init(advertise_addr=f"{subnet}.1")
        worker.swarm.join(remote_addrs=[f"{subnet}.1:2377"], advertise_addr=f"{subnet}.2",
                          join_token=engine.swarm.attrs["JoinTokens"]["Worker"])
        wait_until(lambda: len([n for n in engine.api.nodes() if n["Status"]["State"] == "ready"]) == 2, 60)
        yield engine, worker
    finally:
        if worker_daemon is not None:
            try:
                _client(sock).swarm.leave(force=True)
            except Exception:
                pass
        try:
            engine.swarm.leave(force=True)
        except Exception:
            pass
        if not had_gateway:
            for network in engine.networks.list(names=["docker_gwbridge"]):
                network.remove()
        if worker_daemon is not None:
            worker_daemon.send_signal(signal.SIGTERM)
            try:
                worker_daemon.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(worker_daemon.pid, signal.SIGKILL)
                worker_daemon.wait(10)
        subprocess.run(["ip", "link", "del", host_end], capture_output=True)
        subprocess.run(["ip", "netns", "del", namespace], capture_output=True)


def _client(sock: str):
    """A client of the engine on ``sock`` once it answers (None before)."""
    try:
        client = docker.DockerClient(base_url=sock, timeout=120)
        return client if client.ping() else None
    except Exception:
        return None


def _availability(client, node_id: str, availability: str) -> None:
    node = client.api.inspect_node(node_id)
    client.api.update_node(node_id, node["Version"]["Index"], node["Spec"] | {"Availability": availability})


@pytest.fixture
def plane(two_engines, data_dir, write_blueprint, monkeypatch):
    """A swarm control plane with both services built, their images on the worker too (as a
    registry would bring them: RENDER_LOCAL_REGISTRY has its own test)."""
    from renderlocal.executor.control import ControlPlane

    manager, worker = two_engines
    monkeypatch.setenv("RENDER_LOCAL_ENGINE", "swarm")
    plane = ControlPlane(data_dir, write_blueprint(BLUEPRINT, FILES), engine=manager).start(loop=False)
    try:
        for name in ("web", "box"):
            assert plane.build(name, wait=True).status == "succeeded"
            image = plane.state.get_build(plane.get_service(name).lastSuccessfulBuildId).image
            worker.images.load(manager.images.get(image).save())
        yield plane
    finally:
        for node in manager.api.nodes():
            _availability(manager, node["ID"], "active")
        close_running_plane(plane)
        remove_swarm_leftovers(manager, data_dir)


def test_a_job_and_a_web_instance_on_the_other_node_are_followed_and_served(plane, two_engines):
    manager, worker = two_engines
    me, other = manager.info()["Swarm"]["NodeID"], worker.info()["Swarm"]["NodeID"]
    _availability(manager, me, "drain")  # everything goes to the worker
    job = plane.create_job("box", "echo begun; sleep 3; echo on-the-worker; exit 3")
    wait_until(lambda: plane.jobs.get(job.id).status == "running", 60)
    with pytest.raises(Exception, match="runs on another node of the swarm"):
        plane.running_container(job.id)  # no shell into a container this engine does not have
    ended = plane.jobs.wait(job.id, timeout=120)
    assert ended.status == "failed" and ended.exitCode == 3
    assert [line.message for line in plane.logs.read(job.id)] == ["begun", "on-the-worker"]
    deploy = plane.deploy("web", wait=True)
    assert deploy.status == DeployStatus.LIVE, deploy.failureReason
    [task] = manager.api.tasks(filters={"service": deploy.instances[0]["swarmServiceId"], "desired-state": "running"})
    assert task["NodeID"] == other
    with urllib.request.urlopen(plane.get_service("web").url, timeout=5) as response:
        assert response.read() == b"v1\n"  # the manager's proxy reaches the worker's published port


def test_a_job_on_the_manager_reaches_a_service_on_the_worker_over_the_overlay(plane, two_engines):
    manager, worker = two_engines
    me, other = manager.info()["Swarm"]["NodeID"], worker.info()["Swarm"]["NodeID"]
    _availability(manager, me, "drain")
    deploy = plane.deploy("web", wait=True)
    assert deploy.status == DeployStatus.LIVE, deploy.failureReason
    _availability(manager, me, "active")
    _availability(manager, other, "pause")  # its instance stays; new tasks (the job) can only go to the manager
    job = plane.jobs.wait(plane.create_job("box", "echo GET / HTTP/1.0 | nc -w 5 web 10000 | tail -1").id, timeout=120)
    assert job.status == "succeeded" and [line.message for line in plane.logs.read(job.id)] == ["v1"]
    [task] = manager.api.tasks(filters={"service": deploy.instances[0]["swarmServiceId"], "desired-state": "running"})
    assert task["NodeID"] == other
