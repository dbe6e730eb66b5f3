"""CLI commands hand their jobs to the data dir's running control plane (serve, the app),
and do the work themselves when none runs or the announced one is gone."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from renderlocal.api import discovery
from renderlocal.core.jobstore import JobStore
from renderlocal.core.logstore import LogStore


def test_an_announcement_counts_only_for_a_live_process_on_the_same_blueprint(tmp_path):
    blueprint = tmp_path / "render.yaml"
    discovery.publish(tmp_path, "http://127.0.0.1:1/v1", blueprint)
    assert discovery.find(tmp_path, blueprint) == discovery.Endpoint("http://127.0.0.1:1/v1", os.getpid(), str(blueprint))
    assert discovery.find(tmp_path, tmp_path / "other.yaml") is None
    dead = subprocess.Popen(["true"])
    dead.wait()
    (tmp_path / discovery.FILE).write_text(json.dumps({"url": "http://x/v1", "pid": dead.pid, "blueprint": str(blueprint)}))
    assert discovery.find(tmp_path, blueprint) is None
    (tmp_path / discovery.FILE).write_text("{half")
    assert discovery.find(tmp_path, blueprint) is None
    discovery.publish(tmp_path, "http://127.0.0.1:1/v1", blueprint)
    discovery.withdraw(tmp_path)
    assert not (tmp_path / discovery.FILE).exists()
    # one that withdrew and announces itself again never replaces a newer announcement
    (tmp_path / discovery.FILE).write_text(json.dumps({"url": "http://newer/v1", "pid": 1, "blueprint": str(blueprint)}))
    assert discovery.publish(tmp_path, "http://127.0.0.1:1/v1", blueprint, unless_announced=True) is False
    assert discovery.read(tmp_path).url == "http://newer/v1"
    (tmp_path / discovery.FILE).unlink()
    assert discovery.publish(tmp_path, "http://127.0.0.1:1/v1", blueprint, unless_announced=True) is True
    assert discovery.read(tmp_path).pid == os.getpid()


@pytest.fixture(scope="module")
def project(engine, tmp_path_factory):
    root = tmp_path_factory.mktemp("handoff")
    (root / "app").mkdir()
    (root / "app" / "Dockerfile").write_text("FROM busybox:1.36\n")
    (root / "render.yaml").write_text("services:\n  - type: worker\n    name: box\n    runtime: docker\n    rootDir: app\n")
    base = [sys.executable, "-m", "renderlocal", "--data-dir", str(root / "data"), "--blueprint", str(root / "render.yaml")]
    subprocess.run(base + ["builds", "create", "box", "--wait"], check=True, capture_output=True, timeout=120)
    return root, base


@pytest.fixture
def serving(project):
    root, base = project
    server = subprocess.Popen(base + ["serve", "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert server.stdout.readline().startswith("http://127.0.0.1:")
    yield root / "data"
    if server.poll() is None:
        server.send_signal(signal.SIGTERM)
        server.wait(30)


def cli(base, *args, importtime=False, env=None):
    extra = ["-X", "importtime"] if importtime else []
    command = [base[0], *extra, *base[1:], *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)


def wait_until(condition, seconds=60):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("never happened")


def test_a_job_left_by_the_cli_is_supervised_by_the_running_control_plane(project, serving):
    _root, base = project
    made = cli(base, "jobs", "create", "box", "--start-command", "sleep 1; echo done", "-o", "json", importtime=True)
    assert made.returncode == 0, made.stderr
    job = json.loads(made.stdout)
    assert job["status"] == "pending"  # as the API answers: the control plane launches it
    assert " docker\n" not in made.stderr  # the CLI never loaded the Docker SDK
    # the CLI has exited; the control plane captures the log and records the end
    store = JobStore(serving / "store" / "jobs")
    ended = wait_until(lambda: (lambda d: d if d["status"] == "succeeded" and d.get("logsComplete") else None)(store.get(job["id"])))
    assert ended["exitCode"] == 0
    assert [line.message for line in LogStore(serving / "logs").read(job["id"])] == ["done"]


def test_wait_exit_codes_and_errors_are_the_same_through_the_control_plane(project, serving):
    _root, base = project
    ok = cli(base, "jobs", "create", "box", "--start-command", "echo hi", "--wait", "--env", "A=1")
    assert ok.returncode == 0 and "succeeded" in ok.stdout
    bad = cli(base, "jobs", "create", "box", "--start-command", "exit 3", "--wait", "-o", "json")
    assert bad.returncode == 1
    assert json.loads(bad.stdout)["exitCode"] == 3 and "failed: exited with code 3" in bad.stderr
    tailed = cli(base, "jobs", "create", "box", "--start-command", "echo one; echo two", "--tail")
    assert tailed.returncode == 0 and tailed.stdout.startswith("one\ntwo\n")
    for args, words in [(["nosuch"], "unknown service 'nosuch'"), (["box", "--plan-id", "plan-x"], "unknown planId 'plan-x'"),
                        (["box", "--env", "1A=x"], "env var name '1A' is invalid")]:
        refused = cli(base, "jobs", "create", *args, "--start-command", "true")
        assert refused.returncode == 2 and words in refused.stderr and "Traceback" not in refused.stderr


def test_cancel_from_the_cli_reports_the_end_the_control_plane_records(project, serving):
    _root, base = project
    made = cli(base, "jobs", "create", "box", "--start-command", "sleep 60", "-o", "json")
    job = json.loads(made.stdout)
    store = JobStore(serving / "store" / "jobs")
    wait_until(lambda: store.get(job["id"])["status"] == "running")
    canceled = cli(base, "jobs", "cancel", job["id"], "--confirm", "-o", "json")
    assert canceled.returncode == 0, canceled.stderr
    assert json.loads(canceled.stdout)["status"] == "canceled"


def test_the_cli_works_alone_when_the_announced_control_plane_is_gone(project):
    root, base = project
    data = root / "data"
    server = subprocess.Popen(base + ["serve", "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    url = server.stdout.readline().strip()
    assert discovery.read(data).url == url
    server.send_signal(signal.SIGTERM)  # a clean stop withdraws the announcement
    assert server.wait(30) == 0
    assert not (data / discovery.FILE).exists()
    # announced by a live process that does not answer (here: this test, on a closed port)
    discovery.publish(data, "http://127.0.0.1:9/v1", root / "render.yaml")
    try:
        alone = cli(base, "jobs", "create", "box", "--start-command", "echo alone", "--wait")
    finally:
        (data / discovery.FILE).unlink(missing_ok=True)
    assert alone.returncode == 0, alone.stderr
    assert "succeeded" in alone.stdout


def test_with_none_running_the_cli_starts_one_control_plane_that_stops_when_idle(project):
    root, base = project
    data = root / "data"
    env = os.environ | {"RENDER_LOCAL_AUTOSTART": "1", "RENDER_LOCAL_IDLE_EXIT_SECONDS": "4"}
    assert discovery.read_live(data) is None
    command = base + ["jobs", "create", "box", "--wait", "--start-command"]
    runs = [subprocess.Popen(command + [f"echo {n}"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
            for n in range(3)]  # at once: they must agree on one
    outputs = [run.communicate(timeout=120) for run in runs]
    assert [run.returncode for run in runs] == [0, 0, 0], outputs
    assert sum("started a control plane" in err for _out, err in outputs) == 1
    started = discovery.read_live(data)
    assert started is not None
    again = cli(base, "jobs", "create", "box", "--start-command", "echo again", "--wait", env=env)
    assert again.returncode == 0 and "started a control plane" not in again.stderr
    assert discovery.read_live(data).pid == started.pid
    # idle: it withdraws, stops and says so
    wait_until(lambda: "idle for 4 s, stopping" in (data / "control-plane.log").read_text(), 60)
    wait_until(lambda: "render-local API stopped" in (data / "control-plane.log").read_text(), 30)
    assert not (data / discovery.FILE).exists()


def test_a_control_plane_that_does_not_answer_is_replaced_by_a_new_one(project):
    root, base = project
    data = root / "data"
    env = os.environ | {"RENDER_LOCAL_AUTOSTART": "1", "RENDER_LOCAL_IDLE_EXIT_SECONDS": "60"}
    discovery.publish(data, "http://127.0.0.1:9/v1", root / "render.yaml")  # alive (this test) but deaf
    made = cli(base, "jobs", "create", "box", "--start-command", "echo replaced", "--wait", env=env)
    started = discovery.read_live(data)
    try:
        assert made.returncode == 0, made.stderr
        assert "started a control plane" in made.stderr
        assert started is not None and started.pid != os.getpid()
    finally:
        if started is not None and started.pid != os.getpid():
            os.kill(started.pid, signal.SIGTERM)
            wait_until(lambda: not (data / discovery.FILE).exists())


def test_a_job_posted_while_an_idle_control_plane_stops_is_still_supervised(project):
    root, base = project
    data = root / "data"
    server = subprocess.Popen(base + ["serve", "--port", "0", "--idle-exit", "1"], stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True)
    url = server.stdout.readline().strip()
    token = (data / "api-token").read_text().strip()
    import httpx

    wait_until(lambda: not (data / discovery.FILE).exists(), 30)  # it withdrew: about to stop
    posted = httpx.post(f"{url}/services/box/jobs", json={"startCommand": "sleep 2; echo late"},
                        headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert posted.status_code == 201, posted.text
    store = JobStore(data / "store" / "jobs")
    ended = wait_until(lambda: (lambda d: d if d["status"] == "succeeded" and d.get("logsComplete") else None)(
        store.get(posted.json()["id"])), 60)
    assert ended["exitCode"] == 0
    assert server.wait(60) == 0  # and it still stops once idle
    assert not (data / discovery.FILE).exists()


@pytest.fixture
def secret_project(engine, tmp_path):
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "Dockerfile").write_text("FROM busybox:1.36\n")
    (tmp_path / "render.yaml").write_text("services:\n  - type: worker\n    name: box\n    runtime: docker\n"
                                          "    rootDir: app\n    envVars:\n      - key: MYSECRET\n        sync: false\n")
    base = [sys.executable, "-m", "renderlocal", "--data-dir", str(tmp_path / "data"), "--blueprint", str(tmp_path / "render.yaml")]
    subprocess.run(base + ["builds", "create", "box", "--wait"], check=True, capture_output=True, timeout=120)
    env = {k: v for k, v in os.environ.items() if k not in ("MYSECRET", "RENDER_LOCAL_JOB_TIMEOUT_SECONDS")}
    server = subprocess.Popen(base + ["serve", "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              text=True, env=env | {"MYSECRET": "from-the-control-plane"})
    assert server.stdout.readline().startswith("http://")
    yield base, env
    server.send_signal(signal.SIGTERM)
    server.wait(30)


def test_a_cli_with_other_secrets_or_timeouts_runs_its_job_itself(secret_project):
    base, env = secret_project
    command = ["jobs", "create", "box", "--start-command", 'echo "secret=[$MYSECRET]"', "--tail"]
    same = cli(base, *command, env=env | {"MYSECRET": "from-the-control-plane",
                                          "DOCKER_HOST": "unix:///var/run/docker.sock"})  # = unset: the same engine
    assert same.returncode == 0 and "secret=[from-the-control-plane]" in same.stdout
    assert "running the job here" not in same.stderr  # handed over
    other = cli(base, *command, env=env | {"MYSECRET": "abc"})
    assert other.returncode == 0 and "secret=[abc]" in other.stdout
    assert "runs with a different MYSECRET in its environment; running the job here" in other.stderr
    timeout = cli(base, "jobs", "create", "box", "--start-command", "sleep 5", "--wait",
                  env=env | {"MYSECRET": "from-the-control-plane", "RENDER_LOCAL_JOB_TIMEOUT_SECONDS": "1"})
    assert timeout.returncode == 1 and "timed out after 1 s" in timeout.stderr
    bad = cli(base, "jobs", "create", "box", "--start-command", "true",
              env=env | {"MYSECRET": "from-the-control-plane", "RENDER_LOCAL_JOB_TIMEOUT_SECONDS": "abc"})
    assert bad.returncode == 2 and "RENDER_LOCAL_JOB_TIMEOUT_SECONDS must be a whole number" in bad.stderr
