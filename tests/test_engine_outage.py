"""The Docker engine stops while a job runs: the job ends `lost`, naming the engine, with no traceback.

The control plane reaches the real engine through a unix socket proxy the test can cut, as a
stopping engine cuts its API; the job's container is then sent SIGTERM, as a stopping engine
stops its containers, and the proxy comes back, as the restarted engine does.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path

import pytest

from renderlocal.executor.control import ControlPlane
from tests.conftest import wait_until

pytestmark = pytest.mark.docker

BLUEPRINT = """\
services:
  - type: worker
    name: box
    runtime: docker
    dockerCommand: sleep 3600
"""
REAL_SOCKET = "/var/run/docker.sock"


class EngineProxy:
    """A unix socket forwarding to the engine's, which can stop answering and come back."""

    def __init__(self, path: Path):
        self.path = path
        self.listener: socket.socket | None = None
        self.open: list[socket.socket] = []
        self.guard = threading.Lock()

    def start(self) -> None:
        self.path.unlink(missing_ok=True)
        self.listener = socket.socket(socket.AF_UNIX)
        self.listener.bind(str(self.path))
        self.listener.listen(64)
        threading.Thread(target=self._accept, args=(self.listener,), daemon=True).start()

    def stop(self) -> None:
        listener, self.listener = self.listener, None
        if listener is not None:
            listener.close()
        self.path.unlink(missing_ok=True)  # a new connection is refused
        with self.guard:
            for sock in self.open:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()
            self.open.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.socket(socket.AF_UNIX)
            upstream.connect(REAL_SOCKET)
            with self.guard:
                self.open += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


@pytest.fixture
def proxied_plane(engine, data_dir, write_blueprint, tmp_path):
    import docker

    if os.environ.get("DOCKER_HOST", "unix://").split("://")[0] != "unix" or not Path(REAL_SOCKET).exists():
        pytest.skip(f"the proxy forwards to the local engine's socket {REAL_SOCKET}")
    proxy = EngineProxy(Path("/tmp") / f"render-local-proxy-{os.getpid()}-{tmp_path.name}.sock")
    proxy.start()
    path = write_blueprint(BLUEPRINT, {"Dockerfile": "FROM busybox:1.36\n"})
    plane = ControlPlane(data_dir, path, engine=docker.DockerClient(base_url=f"unix://{proxy.path}")).start(loop=False)
    assert plane.build("box", wait=True).status == "succeeded"
    yield plane, proxy
    proxy.stop()
    proxy.start()
    try:
        for job in plane.state.unsettled_jobs():
            if not job.final:
                plane.cancel_job(job.id)
            plane.jobs.wait(job.id, timeout=30)
    finally:
        plane.close()
        proxy.stop()


def test_a_job_whose_engine_stops_ends_lost_naming_the_engine(proxied_plane, engine, capfd):
    plane, proxy = proxied_plane
    job = plane.create_job("box", "echo up; sleep 60")
    deadline = time.monotonic() + 30
    while "up" not in [line.message for line in plane.logs.read(job.id)] and time.monotonic() < deadline:
        time.sleep(0.05)
    container_id = plane.state.get_job(job.id).containerId
    assert container_id, plane.state.get_job(job.id)
    proxy.stop()  # the engine stops answering...
    time.sleep(1.5)
    engine.api.kill(container_id, signal="SIGTERM")  # ...stops its containers as it shuts down...
    time.sleep(1.5)
    proxy.start()  # ...and is started again
    ended = plane.jobs.wait(job.id, timeout=60)
    assert ended.status == "failed" and ended.failureReason["type"] == "lost", ended.failureReason
    assert "Docker engine stopped answering" in ended.failureReason["message"]
    assert [line.message for line in plane.logs.read(job.id)] == ["up"] and ended.logsComplete
    wait_until(lambda: engine.api.containers(all=True, filters={"id": container_id}) == [], 30)  # cleaned up once back
    assert "Traceback" not in capfd.readouterr().err
