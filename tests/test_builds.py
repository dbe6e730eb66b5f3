import re
import time

import pytest

from renderlocal.core.errors import InvalidInput
from renderlocal.executor.watch import ChangeFilter, ServiceWatcher
from tests.conftest import wait_until

pytestmark = pytest.mark.docker

BLUEPRINT = """\
services:
  - type: worker
    name: app
    runtime: docker
    rootDir: app
  - type: worker
    name: native
    runtime: python
    rootDir: native
    buildCommand: echo building && python -c "open('built.txt','w').write('ok')"
    startCommand: cat message.txt
"""


FILES = {
    "app/Dockerfile": "FROM busybox:1.36\nCOPY version.txt /version.txt\n",
    "app/version.txt": "v1\n",
    "native/message.txt": "first\n",
}


@pytest.fixture
def plane(started, data_dir, write_blueprint):
    return started(data_dir, write_blueprint(BLUEPRINT, FILES), serve=True)  # CLIs of the data dir ask it


def test_a_successful_build_becomes_the_last_successful_build(plane):
    build = plane.build("app", wait=True)
    assert build.status == "succeeded", build.failureReason
    assert plane.get_service("app").lastSuccessfulBuildId == build.id
    image = plane.engine.client.images.get(build.image)
    assert image.labels["render-local.build-id"] == build.id
    log = [line.message for line in plane.logs.read(build.id)]
    assert any(re.match(r"Step 2/\d+ : COPY version.txt", line) for line in log)


def test_a_broken_rebuild_fails_with_its_step_and_the_pointer_stays(plane):
    good = plane.build("app", wait=True)
    dockerfile = plane.blueprint_path.parent / "app" / "Dockerfile"
    dockerfile.write_text("FROM busybox:1.36\nRUN echo about to fail && exit 7\nCOPY version.txt /version.txt\n")
    bad = plane.build("app", wait=True)
    assert bad.status == "failed"
    assert re.fullmatch(r"Step 2/\d+ : RUN echo about to fail && exit 7", bad.failureReason["step"])
    assert "returned a non-zero code: 7" in bad.failureReason["message"]
    service = plane.get_service("app")
    assert service.lastSuccessfulBuildId == good.id and service.latestBuildId == bad.id
    job = plane.jobs.wait(plane.create_job("app", "cat /version.txt").id)
    assert job.buildId == good.id and job.status == "succeeded"


def test_no_successful_build_means_no_jobs(plane):
    with pytest.raises(InvalidInput, match="no successful build yet; build it first: render-local builds create app"):
        plane.create_job("app", "true")


def test_a_native_build_snapshot_ignores_later_source_edits(plane):
    build = plane.build("native", wait=True)
    assert build.status == "succeeded", build.failureReason
    assert "building" in [line.message for line in plane.logs.read(build.id)]
    (plane.blueprint_path.parent / "native" / "message.txt").write_text("edited\n")
    job = plane.jobs.wait(plane.create_job("native").id)
    assert job.status == "succeeded"
    assert [line.message for line in plane.logs.read(job.id)] == ["first"]
    job = plane.jobs.wait(plane.create_job("native", "cat built.txt; echo; pwd").id)
    assert [line.message for line in plane.logs.read(job.id)] == ["ok", "/opt/render/project/src"]


def test_a_failing_build_command_fails_with_its_exit_code(plane, write_blueprint):
    path = write_blueprint(BLUEPRINT.replace('echo building && python -c "open(\'built.txt\',\'w\').write(\'ok\')"', "exit 4"))
    plane.refresh()
    build = plane.build("native", wait=True)
    assert build.status == "failed" and build.failureReason["exitCode"] == 4
    assert plane.get_service("native").lastSuccessfulBuildId is None


def test_build_log_lines_arrive_while_the_build_runs(plane):
    dockerfile = plane.blueprint_path.parent / "app" / "Dockerfile"
    nonce = time.time_ns()  # never a cached layer
    dockerfile.write_text(f"FROM busybox:1.36\nRUN echo early-line {nonce} && sleep 3 && echo late-line\n")
    build = plane.build("app", wait=False)
    deadline = time.monotonic() + 30
    seen = []
    while time.monotonic() < deadline:
        seen = [line.message for line in plane.logs.read(build.id)]
        if any(line.startswith("early-line") for line in seen):
            break
        time.sleep(0.05)
    assert any(line.startswith("early-line") for line in seen) and "late-line" not in seen
    assert plane.state.get_build(build.id).status == "building"
    while plane.state.get_build(build.id).status == "building":
        time.sleep(0.1)
    assert "late-line" in [line.message for line in plane.logs.read(build.id)]


def test_a_running_build_shows_its_current_step_and_a_finished_one_none(plane):
    dockerfile = plane.blueprint_path.parent / "app" / "Dockerfile"
    dockerfile.write_text(f"FROM busybox:1.36\nRUN echo {time.time_ns()} && sleep 2\nCOPY version.txt /version.txt\n")
    build = plane.build("app", wait=False)
    seen = wait_until(lambda: (plane.state.get_build(build.id).to_render().get("progress") or {}).get("step") == 2
                      and plane.state.get_build(build.id).to_render(), 30)
    assert seen["status"] == "building"
    assert seen["progress"] == {"step": 2, "steps": 3, "text": seen["progress"]["text"]}
    assert seen["progress"]["text"].startswith("RUN echo ") and seen["progress"]["text"].endswith("&& sleep 2")
    done = plane.builds.wait(build.id, 60)
    assert done.status == "succeeded" and "progress" not in done.to_render()


def test_watch_rebuilds_once_per_burst_and_ignores_filtered_paths(tmp_path):
    root = tmp_path / "src"
    (root / "docs").mkdir(parents=True)
    (root / "app.py").write_text("1")
    started = []

    def fake_build():
        import threading

        started.append(time.monotonic())
        thread = threading.Thread(target=time.sleep, args=(0.2,))
        thread.start()
        return thread

    watcher = ServiceWatcher(root, ChangeFilter(root, ignored=["docs/**"]), fake_build, debounce_ms=300).start()
    try:
        time.sleep(0.5)
        (root / "docs" / "notes.md").write_text("ignored")
        time.sleep(1.5)
        assert started == []
        for n in range(5):  # a burst of saves
            (root / "app.py").write_text(str(n))
            time.sleep(0.02)
        deadline = time.monotonic() + 10
        while not started and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.5)
        assert len(started) == 1
    finally:
        watcher.stop()


def test_a_change_during_a_build_queues_exactly_one_more(tmp_path):
    import threading

    release = threading.Event()
    started = []

    def slow_build():
        started.append(1)
        thread = threading.Thread(target=release.wait, args=(10,))
        thread.start()
        return thread

    watcher = ServiceWatcher(tmp_path, ChangeFilter(tmp_path), slow_build)
    watcher.changed()
    for _ in range(4):
        watcher.changed()  # all while the first build runs
    assert len(started) == 1
    release.set()
    time.sleep(0.5)
    assert len(started) == 2


def test_dockerignore_and_build_filter_paths(tmp_path):
    (tmp_path / ".dockerignore").write_text("**/*.log\nsecret/\n")
    change_filter = ChangeFilter(tmp_path, paths=["src/**"], dockerignore=True)
    assert change_filter.wants(tmp_path / "src" / "a.py")
    assert not change_filter.wants(tmp_path / "README.md")  # outside buildFilter.paths
    assert not change_filter.wants(tmp_path / "src" / "debug.log")
    assert not change_filter.wants(tmp_path / "src" / "__pycache__" / "a.pyc")


def test_watch_mode_on_a_real_service_builds_on_save(plane):
    plane.set_watch("app", True)
    try:
        time.sleep(0.5)
        (plane.blueprint_path.parent / "app" / "version.txt").write_text("v2\n")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            builds = plane.state.list_builds(plane.get_service("app").id)
            if builds and builds[0].status == "succeeded":
                break
            time.sleep(0.2)
        assert [b.trigger for b in builds] == ["watch"] and builds[0].status == "succeeded"
    finally:
        plane.set_watch("app", False)


def test_old_build_images_are_pruned_but_the_newest_and_used_ones_kept(plane):
    version = plane.blueprint_path.parent / "app" / "version.txt"
    builds = []
    for n in range(5):
        version.write_text(f"v{n}-{time.time_ns()}\n")
        builds.append(plane.build("app", wait=True))
    images = plane.engine.client.images

    def exists(build):
        try:
            images.get(build.image)
            return True
        except Exception:
            return False

    assert [exists(b) for b in builds] == [False, False, True, True, True]
    assert plane.get_service("app").lastSuccessfulBuildId == builds[-1].id


def wait_for_log(plane, build_id, pattern, seconds=60):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if any(re.search(pattern, line.message) for line in plane.logs.read(build_id)):
            return
        time.sleep(0.05)
    raise AssertionError(f"no {pattern!r} in the log of {build_id}")


def test_canceling_a_build_kills_its_step_and_keeps_the_last_good_build(plane):
    good = plane.build("app", wait=True)
    dockerfile = plane.blueprint_path.parent / "app" / "Dockerfile"
    dockerfile.write_text(f"FROM busybox:1.36\nRUN echo slow-step {time.time_ns()} && sleep 60\nRUN echo never\n")
    build = plane.build("app", wait=False)
    wait_for_log(plane, build.id, r"^slow-step")
    started = time.monotonic()
    plane.cancel_build(build.id)
    ended = plane.builds.wait(build.id, timeout=30)
    assert ended.status == "canceled" and ended.failureReason is None and ended.finishedAt
    assert time.monotonic() - started < 15  # the sleep was killed, not waited out
    assert "never" not in [line.message for line in plane.logs.read(build.id)]
    assert plane.get_service("app").lastSuccessfulBuildId == good.id
    with pytest.raises(InvalidInput, match="already ended \\(canceled\\)"):
        plane.cancel_build(build.id)


def test_canceling_a_native_build_stops_its_build_command(plane, write_blueprint):
    path = write_blueprint(BLUEPRINT.replace('echo building && python -c "open(\'built.txt\',\'w\').write(\'ok\')"',
                                             "echo compiling && sleep 60"))
    plane.refresh()
    build = plane.build("native", wait=False)
    wait_for_log(plane, build.id, r"^compiling")
    plane.cancel_build(build.id)
    assert plane.builds.wait(build.id, timeout=30).status == "canceled"
    assert plane.get_service("native").lastSuccessfulBuildId is None


def test_a_cancel_from_another_process_reaches_the_build(plane):
    import subprocess
    import sys

    dockerfile = plane.blueprint_path.parent / "app" / "Dockerfile"
    dockerfile.write_text(f"FROM busybox:1.36\nRUN echo slow-step {time.time_ns()} && sleep 60\n")
    base = [sys.executable, "-m", "renderlocal", "--data-dir", str(plane.data_dir), "--blueprint", str(plane.blueprint_path)]
    builder = subprocess.Popen(base + ["builds", "create", "app", "--wait"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not (building := [b for b in plane.state.list_builds(plane.get_service("app").id) if b.status == "building"]):
        assert time.monotonic() < deadline and builder.poll() is None
        time.sleep(0.1)
    wait_for_log(plane, building[0].id, r"^slow-step")
    canceled = subprocess.run(base + ["builds", "cancel", building[0].id, "--confirm", "-o", "json"],
                              capture_output=True, text=True, timeout=120)
    assert canceled.returncode == 0, canceled.stderr
    assert '"status": "canceled"' in canceled.stdout
    out, err = builder.communicate(timeout=60)
    assert builder.returncode == 1 and f"build {building[0].id} canceled" in err
    refused = subprocess.run(base + ["builds", "cancel", building[0].id, "--confirm"], capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and "already ended (canceled); nothing to cancel" in refused.stderr


def test_a_build_whose_control_plane_died_is_ended_and_what_it_left_removed(engine, started, data_dir, write_blueprint):
    import os
    import signal
    import subprocess
    import sys

    path = write_blueprint(BLUEPRINT.replace('echo building && python -c "open(\'built.txt\',\'w\').write(\'ok\')"',
                                             "echo compiling && sleep 300"), FILES)
    base = [sys.executable, "-m", "renderlocal", "--data-dir", str(data_dir), "--blueprint", str(path)]
    server = subprocess.Popen(base + ["serve", "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert server.stdout.readline().startswith("http://")
    builder = subprocess.Popen(base + ["builds", "create", "native"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    from renderlocal.core.state import State

    state = State(data_dir)
    deadline = time.monotonic() + 60
    while not (building := [b for b in state.list_builds() if b.status == "building"]):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    build_id = building[0].id
    while "compiling" not in [line.message for line in state.logs.read(build_id)]:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    builder.kill()  # it would start another control plane when this one goes
    builder.wait()
    os.kill(server.pid, signal.SIGKILL)
    server.wait()
    label = {"label": f"render-local.build-id={build_id}"}
    assert engine.containers.list(filters=label)  # its build command still runs
    plane = started(data_dir, path)  # the next control plane: nobody runs that build any more
    plane.recover()
    ended = plane.state.get_build(build_id)
    assert ended.status == "failed" and ended.failureReason == {"message": "render-local stopped while this build ran"}
    assert engine.containers.list(all=True, filters=label) == []
    assert not (data_dir / "builds" / build_id).exists()


def test_recovery_running_beside_new_builds_never_takes_them_for_a_dead_control_planes(plane):
    """The loop's recover() reads the store while builds start: a build just started is not orphaned."""
    import threading

    stop = threading.Event()

    def recover_all_the_time():
        while not stop.is_set():
            plane.builds.recover()

    racer = threading.Thread(target=recover_all_the_time, daemon=True)
    racer.start()
    try:
        started = [plane.build("app") for _ in range(6)]
        ended = [plane.builds.wait(build.id, timeout=120) for build in started]
    finally:
        stop.set()
        racer.join()
    assert [build.status for build in ended] == ["succeeded"] * 6, [b.failureReason for b in ended]
