import subprocess
import sys
import time

import pytest

from renderlocal.executor.forwarder import MAX_MESSAGE_BYTES
from tests.syslog_receiver import SyslogReceiver

pytestmark = pytest.mark.docker

BLUEPRINT = """\
services:
  - type: worker
    name: streamer
    runtime: docker
    rootDir: app
  - type: worker
    name: quiet
    runtime: docker
    rootDir: app
"""


@pytest.fixture
def plane(started, data_dir, write_blueprint):
    path = write_blueprint(BLUEPRINT, {"app/Dockerfile": "FROM busybox:1.36\n"})
    plane = started(data_dir, path, serve=True)  # the CLI's log-streams commands ask it
    assert plane.build("streamer", wait=True).status == "succeeded"
    assert plane.build("quiet", wait=True).status == "succeeded"
    return plane


def wait_for(predicate, seconds=60):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def job_messages(receiver, job_id):
    return [m for m in receiver.messages if m["procid"] == job_id]


def test_every_line_of_a_10000_line_job_arrives_once_in_order(plane):
    receiver = SyslogReceiver()
    try:
        plane.set_log_stream(f"127.0.0.1:{receiver.port}", token="s3cr3t-token")
        job = plane.jobs.wait(plane.create_job("streamer", "seq 1 10000; echo oops >&2").id)
        assert wait_for(lambda: len(job_messages(receiver, job.id)) == 10001)
        got = job_messages(receiver, job.id)
        stdout = [m for m in got if m["pri"] == "14"]  # user facility, info
        assert [m["msg"] for m in stdout] == [str(n) for n in range(1, 10001)]
        errors = [m for m in got if m["pri"] == "11"]  # user facility, error
        assert [m["msg"] for m in errors] == ["oops"]
        first = stdout[0]
        assert first["app"] == "streamer" and first["msgid"] == "job"
        assert 'token="s3cr3t-token"' in first["sd"]
        assert len(first["ts"]) == len("2026-01-01T00:00:00.000000Z")
        assert receiver.raw_errors == []
        time.sleep(0.5)
        assert len(job_messages(receiver, job.id)) == 10001  # nothing twice
    finally:
        receiver.close()


def test_a_receiver_down_for_the_first_half_gets_the_queued_lines(plane):
    probe = SyslogReceiver()
    port = probe.port
    probe.close()  # the port is known but nobody listens yet
    plane.set_log_stream(f"127.0.0.1:{port}")
    job = plane.create_job("streamer", "for i in $(seq 1 20); do echo line-$i; sleep 0.1; done")
    assert wait_for(lambda: "line-10" in [l.message for l in plane.logs.read(job.id)])  # noqa: E741
    assert wait_for(lambda: plane.forwarder.state["lastError"] is not None)
    error = plane.forwarder.state["lastError"]
    assert "cannot send to 127.0.0.1" in error and "refused" in error.lower()
    receiver = SyslogReceiver(port=port)
    try:
        plane.jobs.wait(job.id)
        assert wait_for(lambda: len(job_messages(receiver, job.id)) == 20)
        assert [m["msg"] for m in job_messages(receiver, job.id)] == [f"line-{i}" for i in range(1, 21)]
        assert plane.forwarder.state["connected"] and plane.forwarder.state["dropped"] == 0
    finally:
        receiver.close()


def test_a_small_queue_bound_drops_the_oldest_and_counts_them(plane):
    probe = SyslogReceiver()
    port = probe.port
    probe.close()
    plane.set_log_stream(f"127.0.0.1:{port}", max_queue_bytes=2000)
    job = plane.jobs.wait(plane.create_job("streamer", "seq 1 500").id)
    assert wait_for(lambda: plane.forwarder.state["dropped"] > 0)
    receiver = SyslogReceiver(port=port)
    try:
        dropped = plane.forwarder.state["dropped"]
        assert wait_for(lambda: len(job_messages(receiver, job.id)) == 500 - dropped)
        received = [m["msg"] for m in job_messages(receiver, job.id)]
        assert received == [str(n) for n in range(dropped + 1, 501)]  # the newest were kept
        show = subprocess.run([sys.executable, "-m", "renderlocal", "--data-dir", str(plane.data_dir),
                               "--blueprint", str(plane.blueprint_path), "log-streams", "show", "-o", "json"],
                              capture_output=True, text=True, timeout=60)
        assert f'"dropped": {dropped}' in show.stdout
    finally:
        receiver.close()


def test_tls_with_a_self_signed_certificate(plane, tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    receiver = SyslogReceiver(certfile=str(cert), keyfile=str(key))
    try:
        plane.set_log_stream(f"127.0.0.1:{receiver.port}", tls=True)  # verifying: must refuse
        job = plane.jobs.wait(plane.create_job("streamer", "echo over-tls").id)
        assert wait_for(lambda: "CERTIFICATE_VERIFY_FAILED" in (plane.forwarder.state["lastError"] or ""))
        assert job_messages(receiver, job.id) == []
        plane.set_log_stream(f"127.0.0.1:{receiver.port}", tls=True, insecure=True)
        assert wait_for(lambda: [m["msg"] for m in job_messages(receiver, job.id)] == ["over-tls"])
    finally:
        receiver.close()


def test_opted_out_services_and_long_lines(plane):
    receiver = SyslogReceiver()
    try:
        plane.set_log_stream(f"127.0.0.1:{receiver.port}", token="abcdefghijkl")
        plane.set_log_stream_service("quiet", enabled=False)
        quiet = plane.jobs.wait(plane.create_job("quiet", "echo private").id)
        long = plane.jobs.wait(plane.create_job("streamer", "head -c 20000 /dev/zero | tr '\\0' x; echo").id)
        assert wait_for(lambda: len(job_messages(receiver, long.id)) == 3)
        parts = job_messages(receiver, long.id)
        assert [p["sd"].split("part=")[1][:5] for p in parts] == ['"1/3"', '"2/3"', '"3/3"']
        assert "".join(p["msg"] for p in parts) == "x" * 20000
        assert len(parts[0]["msg"]) == MAX_MESSAGE_BYTES
        assert job_messages(receiver, quiet.id) == []
        assert plane.log_streams.masked_token() == "ab********kl"
    finally:
        receiver.close()


def test_the_cli_sets_the_stream_through_the_control_plane_which_forwards(plane):
    receiver = SyslogReceiver()
    base = [sys.executable, "-m", "renderlocal", "--data-dir", str(plane.data_dir), "--blueprint", str(plane.blueprint_path)]
    try:
        made = subprocess.run(base + ["log-streams", "set", f"127.0.0.1:{receiver.port}", "--token", "t0ken-123456",
                                      "-o", "json"], capture_output=True, text=True, timeout=60)
        assert made.returncode == 0, made.stderr
        assert '"token": "t0********56"' in made.stdout  # masked, never printed in full
        job = plane.jobs.wait(plane.create_job("streamer", "seq 1 50").id)
        assert wait_for(lambda: len(job_messages(receiver, job.id)) == 50)
        off = subprocess.run(base + ["log-streams", "service", "streamer", "--off"], capture_output=True, text=True, timeout=60)
        assert off.returncode == 0 and plane.log_streams.get().optOut == [plane.get_service("streamer").id]
        cleared = subprocess.run(base + ["log-streams", "clear"], capture_output=True, text=True, timeout=60)
        assert cleared.returncode == 0 and plane.log_streams.get() is None
        refused = subprocess.run(base + ["log-streams", "set", "nohost"], capture_output=True, text=True, timeout=60)
        assert refused.returncode == 2 and "must look like HOST:PORT" in refused.stderr
    finally:
        receiver.close()
