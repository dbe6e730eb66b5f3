"""Shared fixtures. Docker tests use the real engine: they skip without one,
except under CI=true, where a missing engine fails the run."""

from __future__ import annotations

import os
import signal
import textwrap
import time
from pathlib import Path

import pytest

# A CLI that finds no control plane starts one in the background; the tests stop
# every one they caused (below), and this bounds how long a missed one lingers.
os.environ.setdefault("RENDER_LOCAL_IDLE_EXIT_SECONDS", "120")

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_services" / "render.yaml"
BUSYBOX = "busybox:1.36"
PYTHON = "python:3.11-slim"


def _engine_or_reason():
    try:
        from renderlocal.executor.engine import connect

        return connect(), None
    except Exception as exc:  # EngineUnavailable, or docker SDK import trouble
        return None, str(exc)


@pytest.fixture(scope="session")
def engine():
    client, reason = _engine_or_reason()
    if client is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but no Docker engine answers: {reason}")
        pytest.skip(f"needs a Docker engine: {reason}")
    for image in (BUSYBOX, PYTHON):
        try:
            client.images.get(image)
        except Exception:
            pytest.fail(f"base image {image} is missing; run .ci/base-images to make it offline")
    return client


@pytest.fixture
def data_dir(tmp_path) -> Path:
    path = tmp_path / "data"
    path.mkdir()
    return path


@pytest.fixture
def write_blueprint(tmp_path):
    """Write a render.yaml (dedented) plus extra files; returns its path."""

    def write(yaml_text: str, files: dict[str, str] | None = None) -> Path:
        root = tmp_path / "project"
        root.mkdir(exist_ok=True)
        for name, body in (files or {}).items():
            target = root / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(textwrap.dedent(body))
        path = root / "render.yaml"
        path.write_text(textwrap.dedent(yaml_text))
        return path

    return write


def stop_control_planes(root: Path) -> None:
    """Stop the control planes announced in data dirs under ``root`` (those CLIs started)."""
    from renderlocal.client import discovery

    pids = []
    for announcement in Path(root).glob("**/control-plane.json"):
        found = discovery.read_live(announcement.parent)
        if found is not None and found.pid != os.getpid():
            os.kill(found.pid, signal.SIGTERM)
            pids.append(found.pid)
    deadline = time.monotonic() + 30
    for pid in pids:
        while discovery.pid_alive(pid) and time.monotonic() < deadline:
            try:  # our child: reap it, or it stays a zombie that looks alive
                if os.waitpid(pid, os.WNOHANG) != (0, 0):
                    break
            except ChildProcessError:
                pass
            time.sleep(0.05)
        if discovery.pid_alive(pid):
            os.kill(pid, signal.SIGKILL)


def under(path: str, root: Path) -> bool:
    """Whether a data dir label names ``root`` or a folder in it (``pytest-34`` is not ``pytest-348``)."""
    return path == str(root) or path.startswith(str(root) + os.sep)


def remove_networks(root: Path) -> None:
    """Remove the private networks and volumes of data dirs under ``root`` (a killed control plane
    leaves its own; an engine has room for a few dozen networks, a disk for so many databases)."""
    try:
        from renderlocal.executor.engine import connect

        client = connect()
    except Exception:  # no engine: no networks either
        return
    for network in client.networks.list(filters={"label": "render-local=network"}):
        if under(str(network.attrs["Labels"].get("render-local.data-dir", "")), root):
            network.reload()
            for container in client.containers.list(all=True, filters={"network": network.id}):
                if under(container.labels.get("render-local.data-dir", ""), root):
                    container.remove(force=True)  # a test's leftover instance or job
            network.remove()
    for found in client.api.containers(all=True, filters={"label": "render-local.data-dir"}):  # no inspect: races
        if under(found["Labels"].get("render-local.data-dir", ""), root):
            try:
                client.api.remove_container(found["Id"], force=True)  # its control plane was stopped first
            except Exception:  # removed meanwhile
                pass
    for volume in client.volumes.list(filters={"label": "render-local.data-dir"}):  # disks, databases' data
        if under(str(volume.attrs.get("Labels", {}).get("render-local.data-dir", "")), root):
            for container in client.containers.list(all=True, filters={"volume": volume.name}):
                container.remove(force=True)
            volume.remove()


@pytest.fixture(autouse=True)
def _stop_this_tests_control_planes(tmp_path):
    yield
    stop_control_planes(tmp_path)
    remove_networks(tmp_path)


@pytest.fixture(autouse=True, scope="session")
def _stop_every_control_plane(tmp_path_factory):
    yield
    stop_control_planes(tmp_path_factory.getbasetemp())
    remove_networks(tmp_path_factory.getbasetemp())
    remove_build_images(tmp_path_factory.getbasetemp())


def remove_build_images(root: Path) -> None:
    """The images the session's builds made (hundreds per run); their untagged parents stay, the
    build cache of the next run (shop-web's apt-get layer)."""
    try:
        from renderlocal.executor.engine import connect

        client = connect()
    except Exception:
        return
    for image in client.images.list(filters={"label": "render-local.data-dir"}):
        if under(str(image.labels.get("render-local.data-dir", "")), root):
            try:
                client.images.remove(image.id, force=True, noprune=True)
            except Exception:  # shared with an image of another run, or in use: it stays
                pass


@pytest.fixture
def started(engine):
    """Start a control plane in this process (``started(data_dir, blueprint)``); closed after the test."""
    planes = []

    def start(data_dir, blueprint, loop: bool = False, serve: bool = False):
        from renderlocal.executor.control import ControlPlane

        plane = ControlPlane(data_dir, blueprint, engine=engine).start(loop=loop)
        planes.append(plane)
        if serve:  # CLIs of this data dir ask this process
            from renderlocal.api.server import start_in_thread

            plane.api = start_in_thread(plane)
        return plane

    yield start
    for plane in planes:
        if getattr(plane, "api", None) is not None:
            plane.api.stop()
        plane.close()


def close_running_plane(plane) -> None:
    """After a test that ran services and jobs: everything down (data too), every job ended, closed."""
    try:
        plane.down(volumes=True)
    finally:
        for job in plane.state.unsettled_jobs():
            if not job.final:
                plane.cancel_job(job.id)
            plane.jobs.wait(job.id, timeout=30)
        plane.close()


def wait_until(condition, seconds: float = 30):
    """``condition()``'s first truthy value, polled until ``seconds`` pass."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"never happened within {seconds} s")
