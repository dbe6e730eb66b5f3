"""One executor per data dir: every CLI command asks the data dir's control plane
(serve, the app, or one the CLI starts in the background) and never runs a job,
a build or the Docker SDK itself."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from renderlocal.client import discovery
from renderlocal.core.jobstore import JobStore
from renderlocal.core.logstore import LogStore
from tests.conftest import wait_until

pytestmark = pytest.mark.docker


def cli(base, *args, importtime=False, env=None):
    extra = ["-X", "importtime"] if importtime else []
    command = [base[0], *extra, *base[1:], *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)


def imported_docker(stderr: str) -> bool:
    """Whether ``-X importtime`` output shows the Docker SDK (or the executor) loaded."""
    return any(line.rsplit("|", 1)[-1].strip().split(".")[0] == "docker" or "renderlocal.executor" in line
               for line in stderr.splitlines() if line.startswith("import time:"))


@pytest.fixture
def project(engine, tmp_path):
    root = tmp_path
    (root / "app").mkdir()
    (root / "app" / "Dockerfile").write_text("FROM busybox:1.36\n")
    (root / "render.yaml").write_text("services:\n  - type: worker\n    name: box\n    runtime: docker\n    rootDir: app\n"
                                      "    dockerCommand: echo from-the-service\n")
    base = [sys.executable, "-m", "renderlocal", "--data-dir", str(root / "data"), "--blueprint", str(root / "render.yaml")]
    return root, base


@pytest.fixture
def serving(project):
    root, base = project
    server = subprocess.Popen(base + ["serve", "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert server.stdout.readline().startswith("http://127.0.0.1:")
    built = cli(base, "builds", "create", "box", "--wait", importtime=True)
    assert built.returncode == 0, built.stderr
    assert not imported_docker(built.stderr)  # the build ran in the control plane
    yield root / "data", server
    if server.poll() is None:
        server.send_signal(signal.SIGTERM)
        server.wait(30)


def test_a_job_left_by_the_cli_is_supervised_by_the_control_plane(project, serving):
    _root, base = project
    data, _server = serving
    made = cli(base, "jobs", "create", "box", "--start-command", "sleep 1; echo done", "-o", "json", importtime=True)
    assert made.returncode == 0, made.stderr
    job = json.loads(made.stdout)
    assert job["status"] == "pending"  # as the API answers: the control plane launches it
    assert not imported_docker(made.stderr)
    store = JobStore(data / "store" / "jobs")
    ended = wait_until(lambda: (lambda d: d if d["status"] == "succeeded" and d.get("logsComplete") else None)(store.get(job["id"])), 60)
    assert ended["exitCode"] == 0
    assert [line.message for line in LogStore(data / "logs").read(job["id"])] == ["done"]


def test_wait_exit_codes_and_errors(project, serving):
    _root, base = project
    ok = cli(base, "jobs", "create", "box", "--wait", "--env", "A=1", importtime=True)  # the service's own command
    assert ok.returncode == 0 and "succeeded" in ok.stdout and "echo from-the-service" in ok.stdout
    assert not imported_docker(ok.stderr)
    bad = cli(base, "jobs", "create", "box", "--start-command", "exit 3", "--wait", "-o", "json")
    assert bad.returncode == 1
    assert json.loads(bad.stdout)["exitCode"] == 3 and "failed: exited with code 3" in bad.stderr
    tailed = cli(base, "jobs", "create", "box", "--start-command", "echo one; echo two", "--tail")
    assert tailed.returncode == 0 and tailed.stdout.startswith("one\ntwo\n")
    for args, words in [(["nosuch"], "unknown service 'nosuch'"), (["box", "--plan-id", "plan-x"], "unknown planId 'plan-x'"),
                        (["box", "--env", "1A=x"], "env var name '1A' is invalid"),
                        (["box", "--plan-id", "plan-crn-003"], "needs a service plan")]:
        refused = cli(base, "jobs", "create", *args, "--start-command", "true")
        assert refused.returncode == 2 and words in refused.stderr and "Traceback" not in refused.stderr
    unknown = cli(base, "jobs", "get", "job-00000000000000000000")
    assert unknown.returncode == 2 and unknown.stderr.strip() == "render-local: error: unknown job 'job-00000000000000000000'"


def test_cancel_from_the_cli_reports_the_end_the_control_plane_records(project, serving):
    _root, base = project
    data, _server = serving
    made = cli(base, "jobs", "create", "box", "--start-command", "sleep 60", "-o", "json")
    job = json.loads(made.stdout)
    store = JobStore(data / "store" / "jobs")
    wait_until(lambda: store.get(job["id"])["status"] == "running", 60)
    canceled = cli(base, "jobs", "cancel", job["id"], "--confirm", "-o", "json")
    assert canceled.returncode == 0, canceled.stderr
    assert json.loads(canceled.stdout)["status"] == "canceled"


def test_a_second_control_plane_on_the_data_dir_is_refused_and_names_the_first(project, serving):
    _root, base = project
    data, server = serving
    announced = discovery.read_live(data)
    same_port = announced.url.rsplit(":", 1)[1].removesuffix("/v1")
    for port in ("0", same_port):  # on its port too: who runs says more than "address in use"
        second = cli(base, "serve", "--port", port)
        assert second.returncode == 2 and "Traceback" not in second.stderr
        assert f"a control plane already runs for {data} at {announced.url} (pid {server.pid})" in second.stderr


def test_with_none_running_the_cli_starts_one_control_plane_that_stops_when_idle(project):
    root, base = project
    data = root / "data"
    env = os.environ | {"RENDER_LOCAL_IDLE_EXIT_SECONDS": "4"}
    assert discovery.read_live(data) is None
    built = cli(base, "builds", "create", "box", env=env)
    assert built.returncode == 0 and "started a control plane" in built.stderr
    os.kill(discovery.read_live(data).pid, signal.SIGTERM)
    wait_until(lambda: discovery.read_live(data) is None, 60)
    command = base + ["jobs", "create", "box", "--wait", "--start-command"]
    runs = [subprocess.Popen(command + [f"echo {n}"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
            for n in range(3)]  # at once: they must agree on one
    outputs = [run.communicate(timeout=120) for run in runs]
    assert [run.returncode for run in runs] == [0, 0, 0], outputs
    assert sum("started a control plane" in err for _out, err in outputs) == 1
    started = discovery.read_live(data)
    assert started is not None and started.idle_exit
    again = cli(base, "jobs", "create", "box", "--start-command", "echo again", "--wait", env=env)
    assert again.returncode == 0 and "started a control plane" not in again.stderr
    assert discovery.read_live(data).pid == started.pid
    # idle: it withdraws, stops and says so
    wait_until(lambda: "idle for 4 s, stopping" in (data / "control-plane.log").read_text(), 60)
    # its own last line, not the first one's (killed above): the test's clean-up must not race its close
    wait_until(lambda: "render-local API stopped" in (data / "control-plane.log").read_text().split("idle for 4 s")[1], 30)
    assert not (data / discovery.FILE).exists()


def test_without_autostart_and_none_running_the_cli_says_what_to_do(project):
    root, base = project
    refused = cli(base, "services", "list", env=os.environ | {"RENDER_LOCAL_AUTOSTART": "0"})
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert f"no control plane runs for {root / 'data'} and RENDER_LOCAL_AUTOSTART=0: start one with" in refused.stderr


def test_a_control_plane_that_does_not_answer_is_replaced_by_a_new_one(project):
    root, base = project
    data = root / "data"
    data.mkdir()
    (data / "api-token").write_text("rnd_x\n")
    # announced by a live process that does not answer (this test, on a closed port)
    discovery.publish(data, discovery.Endpoint("http://127.0.0.1:9/v1", os.getpid(), str(root / "render.yaml")))
    made = cli(base, "services", "list")
    assert made.returncode == 0, made.stderr
    assert "started a control plane" in made.stderr
    started = discovery.read_live(data)
    assert started is not None and started.pid != os.getpid()


def test_jobs_asked_for_while_an_idle_control_plane_stops_all_run(project):
    """Each CLI finds the control plane that is up, or starts one: none of their jobs is lost,
    whether it lands before, during or after an idle control plane's stop."""
    root, base = project
    data = root / "data"
    env = os.environ | {"RENDER_LOCAL_IDLE_EXIT_SECONDS": "1"}
    assert cli(base, "builds", "create", "box", env=env).returncode == 0
    pids = set()
    for n, pause in enumerate((0.9, 1.0, 1.1, 1.2, 1.5, 2.0)):
        time.sleep(pause)  # around the moment the previous one decides it is idle
        made = cli(base, "jobs", "create", "box", "--start-command", f"echo run-{n}", "--wait", "-o", "json", env=env)
        assert made.returncode == 0, made.stderr
        job = json.loads(made.stdout)
        assert job["status"] == "succeeded"
        assert [line.message for line in LogStore(data / "logs").read(job["id"])] == [f"run-{n}"]
        if (found := discovery.read_live(data)) is not None:
            pids.add(found.pid)
    assert len(pids) >= 2  # some did stop when idle, and the next CLI started another


def test_a_cli_of_another_project_takes_over_an_idle_background_control_plane(project, tmp_path_factory):
    root, base = project
    data = root / "data"
    assert cli(base, "services", "list").returncode == 0
    first = discovery.read_live(data)
    other = tmp_path_factory.mktemp("other")
    (other / "render.yaml").write_text("services:\n  - type: worker\n    name: elsewhere\n    runtime: docker\n"
                                       "    dockerCommand: echo hi\n")
    listed = cli([*base[:-1], str(other / "render.yaml")], "services", "list", "-o", "json")
    assert listed.returncode == 0, listed.stderr
    assert [item["service"]["name"] for item in json.loads(listed.stdout)] == ["elsewhere"]
    second = discovery.read_live(data)
    assert second.pid != first.pid and second.blueprint == str(other / "render.yaml")
    assert not discovery.pid_alive(first.pid)


def test_a_control_plane_started_by_hand_for_another_blueprint_is_left_alone(project, serving, tmp_path_factory):
    root, base = project
    other = tmp_path_factory.mktemp("other") / "render.yaml"
    other.write_text("services: []\n")
    refused = cli([*base[:-1], str(other)], "services", "list")
    assert refused.returncode == 2
    assert f"runs {root / 'render.yaml'}, not {other}: stop it, or give this project its own --data-dir" in refused.stderr
    wrong_engine = cli(base, "services", "list", env=os.environ | {"DOCKER_HOST": "tcp://127.0.0.1:9"})
    assert wrong_engine.returncode == 2 and "runs jobs on the engine default, not tcp://127.0.0.1:9" in wrong_engine.stderr
    same_engine = cli(base, "services", "list", env=os.environ | {"DOCKER_HOST": "unix:///var/run/docker.sock"})
    assert same_engine.returncode == 0, same_engine.stderr


def test_a_cli_on_the_default_engine_refuses_a_control_plane_on_another(project):
    root, base = project
    env = {k: v for k, v in os.environ.items() if k != "DOCKER_HOST"}
    server = subprocess.Popen(base + ["serve", "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              text=True, env=env | {"DOCKER_HOST": "tcp://127.0.0.1:9"})
    try:
        assert server.stdout.readline().startswith("http://")
        refused = cli(base, "services", "list", env=env)
        assert refused.returncode == 2
        assert "runs jobs on the engine tcp://127.0.0.1:9, not default" in refused.stderr
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)


def test_the_first_clis_timeout_does_not_become_everyones(project):
    """The background control plane a CLI starts does not keep that shell's job timeout for other shells."""
    root, base = project
    short = os.environ | {"RENDER_LOCAL_JOB_TIMEOUT_SECONDS": "2"}
    assert cli(base, "builds", "create", "box", env=short).returncode == 0  # starts the control plane
    plain = {k: v for k, v in os.environ.items() if k != "RENDER_LOCAL_JOB_TIMEOUT_SECONDS"}
    long_enough = cli(base, "jobs", "create", "box", "--start-command", "sleep 4", "--wait", env=plain)
    assert long_enough.returncode == 0, long_enough.stderr
    cut = cli(base, "jobs", "create", "box", "--start-command", "sleep 4", "--wait", env=short)
    assert cut.returncode == 1 and "timed out after 2 s" in cut.stderr


def test_tail_goes_on_when_the_control_plane_is_killed_mid_job(project, serving):
    """kill -9 of the control plane while a CLI tails: the next one adopts the job, the CLI prints every line."""
    _root, base = project
    data, server = serving
    command = "for i in 1 2 3 4 5 6 7 8; do echo line $i; sleep 0.5; done"
    tail = subprocess.Popen(base[:1] + base[1:] + ["jobs", "create", "box", "--start-command", command, "--tail"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(2)
    os.kill(server.pid, signal.SIGKILL)
    server.wait()
    out, err = tail.communicate(timeout=120)
    assert tail.returncode == 0, err
    assert out.splitlines()[:8] == [f"line {i}" for i in range(1, 9)] and "Traceback" not in err
    assert "started a control plane" in err  # the next one, which adopted the job


@pytest.fixture
def secret_project(engine, tmp_path):
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "Dockerfile").write_text("FROM busybox:1.36\n")
    (tmp_path / "render.yaml").write_text("services:\n  - type: worker\n    name: box\n    runtime: docker\n"
                                          "    rootDir: app\n    envVars:\n      - key: MYSECRET\n        sync: false\n")
    base = [sys.executable, "-m", "renderlocal", "--data-dir", str(tmp_path / "data"), "--blueprint", str(tmp_path / "render.yaml")]
    env = {k: v for k, v in os.environ.items() if k not in ("MYSECRET", "RENDER_LOCAL_JOB_TIMEOUT_SECONDS")}
    server = subprocess.Popen(base + ["serve", "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              text=True, env=env | {"MYSECRET": "from-the-control-plane"})
    assert server.stdout.readline().startswith("http://")
    subprocess.run(base + ["builds", "create", "box", "--wait"], check=True, capture_output=True, timeout=120)
    yield base, env
    server.send_signal(signal.SIGTERM)
    server.wait(30)


def test_a_job_gets_the_secrets_and_timeout_of_the_shell_that_asked(secret_project):
    base, env = secret_project
    command = ["jobs", "create", "box", "--start-command", 'echo "secret=[$MYSECRET]"', "--tail"]
    same = cli(base, *command, env=env | {"MYSECRET": "from-the-control-plane"})
    assert same.returncode == 0 and "secret=[from-the-control-plane]" in same.stdout
    other = cli(base, *command, env=env | {"MYSECRET": "abc"})
    assert other.returncode == 0 and "secret=[abc]" in other.stdout  # this shell's value, for this job only
    unset = cli(base, *command, env=env)
    assert unset.returncode == 0 and "secret=[]" in unset.stdout
    assert "MYSECRET is 'sync: false' and not set in this shell; the job runs without it" in unset.stderr
    again = cli(base, *command, env=env | {"MYSECRET": "from-the-control-plane"})
    assert "secret=[from-the-control-plane]" in again.stdout  # the control plane's own value never changed
    timeout = cli(base, "jobs", "create", "box", "--start-command", "sleep 5", "--wait",
                  env=env | {"RENDER_LOCAL_JOB_TIMEOUT_SECONDS": "1"})
    assert timeout.returncode == 1 and "timed out after 1 s" in timeout.stderr
    for name, value in (("RENDER_LOCAL_JOB_TIMEOUT_SECONDS", "abc"), ("RENDER_LOCAL_CANCEL_GRACE_SECONDS", "-3")):
        bad = cli(base, "jobs", "create", "box", "--start-command", "true", env=env | {name: value})
        assert bad.returncode == 2 and "Traceback" not in bad.stderr
        assert ("must be a whole number of seconds" if value == "abc" else "must be at least 0") in bad.stderr


def serve_processes_of(data_dir) -> list[int]:
    """Pids of the ``serve`` processes of ``data_dir`` (whether announced or not)."""
    found = []
    for cmdline in __import__("pathlib").Path("/proc").glob("[0-9]*/cmdline"):
        try:
            words = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        if b"serve" in words and str(data_dir).encode() in words:
            found.append(int(cmdline.parent.name))
    return found


def test_a_refused_creation_leaves_no_control_plane_started(project):
    root, base = project
    never_built = cli(base, "jobs", "create", "box", "--start-command", "echo hi")
    assert never_built.returncode != 0 and "render-local: error:" in never_built.stderr
    assert "started a control plane" in never_built.stderr
    assert serve_processes_of(root / "data") == []
    assert "render-local: the call that started it failed, stopping" in (root / "data" / "control-plane.log").read_text()
    unknown = cli(base, "jobs", "create", "nope", "--start-command", "echo hi")
    assert unknown.returncode == 2 and serve_processes_of(root / "data") == []
    assert discovery.read_live(root / "data") is None


def test_ssh_runs_a_command_in_a_running_job_and_refuses_one_that_ended(project, serving):
    _root, base = project
    data, _server = serving
    job = json.loads(cli(base, "jobs", "create", "box", "--start-command", "sleep 30", "-o", "json").stdout)
    store = JobStore(data / "store" / "jobs")
    wait_until(lambda: store.get(job["id"])["status"] == "running", 60)
    said = cli(base, "ssh", job["id"], "--", "echo", "hi")
    assert said.returncode == 0 and said.stdout == "hi\n", said.stderr
    failing = cli(base, "ssh", job["id"], "--", "sh", "-c", "echo $RENDER_SERVICE_NAME; exit 7")
    assert failing.returncode == 7 and failing.stdout == "box\n"  # its exit code; it runs in the job's container
    no_docker_cli = dict(os.environ, PATH=os.path.dirname(sys.executable))  # through the engine's API instead
    assert cli(base, "ssh", job["id"], "--", "echo", "hi", env=no_docker_cli).stdout == "hi\n"
    assert cli(base, "jobs", "cancel", job["id"], "--confirm").returncode == 0
    ended = cli(base, "ssh", job["id"], "--", "echo", "hi")
    assert ended.returncode == 2 and ended.stderr.splitlines() == [
        f"render-local: error: job {job['id']} is canceled; only a running job has a shell"]
    unknown = cli(base, "ssh", "job-00000000000000000000")
    assert unknown.stderr.splitlines() == ["render-local: error: unknown job 'job-00000000000000000000'"]
    never_deployed = cli(base, "ssh", "box")
    assert never_deployed.returncode == 2 and never_deployed.stderr.splitlines() == [
        "render-local: error: box has no running instance (render-local up box deploys it)"]


def test_ssh_into_a_service_opens_in_its_running_instance(engine, tmp_path):
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "Dockerfile").write_text("FROM busybox:1.36\n")
    (tmp_path / "render.yaml").write_text("services:\n  - type: worker\n    name: loop\n    runtime: docker\n"
                                          "    rootDir: app\n    dockerCommand: sleep 300\n")
    base = [sys.executable, "-m", "renderlocal", "--data-dir", str(tmp_path / "data"), "--blueprint",
            str(tmp_path / "render.yaml")]
    up = cli(base, "up")
    assert up.returncode == 0, up.stderr
    [deploy] = json.loads(cli(base, "deploys", "list", "loop", "-o", "json").stdout)
    [instance] = deploy["instances"]
    for ref in ("loop", instance["id"]):
        said = cli(base, "ssh", ref, "--", "sh", "-c", "echo $RENDER_INSTANCE_ID")
        assert said.returncode == 0 and said.stdout == instance["id"] + "\n", said.stderr
    from renderlocal.client.connect import connect

    figures = connect(tmp_path / "data", tmp_path / "render.yaml").resource_figures("loop")  # a meter too
    assert figures["kind"] == "instance" and figures["id"] == instance["id"] and figures["latest"]["memoryBytes"] > 0
    assert cli(base, "services", "suspend", "loop").returncode == 0
    suspended = cli(base, "ssh", "loop")
    assert suspended.stderr.splitlines() == [
        "render-local: error: loop is suspended: it has no running instance (render-local services resume loop)"]


def test_builds_create_wait_on_a_terminal_draws_one_line_of_progress(project):
    import pty

    root, base = project
    (root / "app" / "Dockerfile").write_text(f"FROM busybox:1.36\nRUN echo {time.time_ns()} && sleep 2\nRUN true\n")
    parent, child = pty.openpty()
    building = subprocess.Popen(base + ["builds", "create", "box", "--wait"], stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=child)
    os.close(child)
    drawn = b""
    while True:
        try:
            chunk = os.read(parent, 4096)
        except OSError:  # the terminal's other end closed: the build ended
            break
        if not chunk:
            break
        drawn += chunk
    os.close(parent)
    assert building.wait(60) == 0
    text = drawn.decode()
    assert "\r\x1b[2Kbuilding box: [#############.......] step 2/3: RUN echo " in text  # its sleep holds it there
    assert "Step 2/" not in text  # the log's lines are not printed on a terminal
    plain = cli(base, "builds", "create", "box", "--wait")  # not a terminal: the log, as lines
    assert plain.returncode == 0 and "Step 2/" in plain.stderr and "\x1b" not in plain.stderr


def test_a_running_jobs_memory_and_cpu_are_sampled_against_its_plan(project, serving):
    from renderlocal.client.connect import connect
    from renderlocal.core.errors import Conflict
    from renderlocal.core.plans import get_plan

    root, base = project
    data, _server = serving
    hog = "x=$(head -c 40000000 /dev/zero | tr '\\0' a); while true; do :; done"  # 40 MB held, a CPU busy
    job = json.loads(cli(base, "jobs", "create", "box", "--start-command", hog, "-o", "json").stdout)
    plane = connect(data, root / "render.yaml")
    wait_until(lambda: plane.find_job(job["id"])["status"] == "running", 60)
    figures = wait_until(lambda: (lambda f: f if len(f["history"]) >= 3 and f["latest"]["memoryBytes"] > 40e6 else None)(
        plane.resource_figures(job["id"])), 60)
    latest, limit = figures["latest"], get_plan(job["planId"])
    assert figures["kind"] == "job" and figures["id"] == job["id"]
    assert latest["memoryLimitBytes"] == limit.memory_bytes and latest["cpuLimit"] == float(limit.cpu)
    assert 40e6 < latest["memoryBytes"] < limit.memory_bytes
    assert latest["memoryFraction"] == round(latest["memoryBytes"] / limit.memory_bytes, 4)
    assert 0.3 < latest["cpu"] <= float(limit.cpu) * 1.1  # the busy loop, held to the plan's CPUs
    assert [entry["id"] for entry in plane.resource_figures()] == [job["id"]]
    from renderlocal.client.plane import RemotePlane  # what the terminal app asks when another process runs

    assert RemotePlane(data, root / "render.yaml").resource_figures(job["id"])["latest"]["memoryBytes"] > 40e6
    assert cli(base, "jobs", "cancel", job["id"], "--confirm").returncode == 0
    with pytest.raises(Conflict, match="only a running job has live resource figures"):
        plane.resource_figures(job["id"])
