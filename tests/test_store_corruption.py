"""Damaged store files (issue 17, item 8): each file kind is emptied, filled with bytes that are
not JSON, given a JSON top level of the wrong type, or a record of the wrong shape; then the data
dir's control plane starts, every list answers, what can be rebuilt is, what cannot is moved aside
with one line naming the file, and services keep their ids, generated values and last build."""

import json
import shutil
import subprocess
import sys

import pytest

from renderlocal.core import jobstore
from renderlocal.core.jobstore import JobStore
from renderlocal.core.state import State
from tests.conftest import stop_control_planes, wait_until

pytestmark = pytest.mark.docker

BLUEPRINT = """\
services:
  - type: worker
    name: box
    runtime: docker
    rootDir: app
    dockerCommand: echo from-the-service
    envVars:
      - key: SECRET
        generateValue: true
"""
SEEDED_JOBS = 3
NOT_JSON = b"\xff\xfe\x00 not json {{"


def cli(data, blueprint, *args):
    command = [sys.executable, "-m", "renderlocal", "--data-dir", str(data), "--blueprint", str(blueprint), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def ok(result) -> subprocess.CompletedProcess:
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    return result


@pytest.fixture(scope="module")
def seeded(engine, tmp_path_factory):
    """A data dir with box built and SEEDED_JOBS jobs ended and archived; no control plane left running."""
    root = tmp_path_factory.mktemp("seed")
    (root / "app").mkdir()
    (root / "app" / "Dockerfile").write_text("FROM busybox:1.36\n")
    blueprint = root / "render.yaml"
    blueprint.write_text(BLUEPRINT)
    data = root / "data"
    try:
        ok(cli(data, blueprint, "builds", "create", "box"))
        for n in range(SEEDED_JOBS):
            ok(cli(data, blueprint, "jobs", "create", "box", "--start-command", f"echo seeded-{n}", "--wait"))
        wait_until(lambda: not JobStore(data / "store" / "jobs").live(), 30)
    finally:
        stop_control_planes(root)
    service = State(data).get_service("box")
    jobs = [d["id"] for d in JobStore(data / "store" / "jobs").query()]
    return {"data": data, "blueprint": blueprint, "service": service, "jobs": jobs}


@pytest.fixture
def copy(seeded, tmp_path):
    """This test's own copy of the seeded data dir (its control planes are stopped by conftest)."""
    data = tmp_path / "data"
    shutil.copytree(seeded["data"], data)
    (data / "control-plane.json").unlink(missing_ok=True)
    return data


def bucket_of(job_id: str) -> str:
    return f"store/jobs/index/{job_id[4:6]}.json"


def wrong_record(raw: bytes) -> bytes:
    """The file's JSON with its first record replaced by one of the wrong shape (a table that has
    none becomes a list)."""
    data = json.loads(raw)
    table = next(iter(data))
    if data[table]:
        data[table][next(iter(data[table]))] = {"id": 5, "name": ["not", "a", "name"]}
    else:
        data[table] = ["not a record"]
    return json.dumps(data).encode()


CORRUPTIONS = {
    "empty": lambda raw: b"",
    "not-json": lambda raw: NOT_JSON,
    "wrong-top-level": lambda raw: b"[1, 2]",
    "wrong-record": wrong_record,
}
# what cannot be rebuilt from other files is moved aside; the rest is rebuilt in place
SET_ASIDE = {"store/services.json", "store/builds.json", "store/jobs/live.json", "store/jobs/archive/000000.json"}
REBUILT = {"store/jobs/recent.json", "store/jobs/manifest.json", "index bucket"}


def manifest_matches_shards(data) -> bool:
    root = data / "store" / "jobs"
    entries = {e["id"]: e["count"] for e in json.loads((root / "manifest.json").read_bytes())["shards"].values()}
    shards = {p.stem: len(json.loads(p.read_bytes())["jobs"]) for p in (root / "archive").glob("*.json")}
    return entries == shards


@pytest.mark.parametrize("corruption", list(CORRUPTIONS))
@pytest.mark.parametrize("file_kind", sorted(SET_ASIDE | REBUILT))
def test_a_damaged_store_file_is_rebuilt_or_set_aside_and_nothing_else_breaks(seeded, copy, file_kind, corruption):
    data, blueprint = copy, seeded["blueprint"]
    oldest = seeded["jobs"][-1]
    name = bucket_of(oldest) if file_kind == "index bucket" else file_kind
    path = data / name
    path.write_bytes(CORRUPTIONS[corruption](path.read_bytes()))

    said = [ok(cli(data, blueprint, "services", "list", "-o", "json"))]
    services = json.loads(said[0].stdout)
    box = next(s["service"] for s in services if s["service"]["name"] == "box")
    assert box["id"] == seeded["service"].id  # ids survive: old jobs still belong to it
    if file_kind == "store/builds.json":  # the build records are what was lost: build again
        said.append(ok(cli(data, blueprint, "builds", "create", "box")))
    # its last successful build survives: a job runs without building again (the archive is written to)
    said.append(ok(cli(data, blueprint, "jobs", "create", "box", "--start-command", "echo after", "--wait")))
    said.append(ok(cli(data, blueprint, "builds", "list", "box", "-o", "json")))
    listed = ok(cli(data, blueprint, "jobs", "list", "-o", "json"))
    said.append(listed)
    ids = [job["job"]["id"] if "job" in job else job["id"] for job in json.loads(listed.stdout)]
    assert set(seeded["jobs"]) <= set(ids) and len(ids) == SEEDED_JOBS + 1
    for job_id in seeded["jobs"]:
        said.append(ok(cli(data, blueprint, "jobs", "get", job_id)))
    said.append(ok(cli(data, blueprint, "services", "list")))  # a face's first call shows the warnings so far

    state = State(data)
    assert state.get_service("box").envVars["SECRET"] == seeded["service"].envVars["SECRET"]
    assert manifest_matches_shards(data)
    told = "".join(result.stderr for result in said)
    assert f"{name} is damaged" in told, told  # the faces say it (with the control plane's warnings)
    logged = [line for line in (data / "control-plane.log").read_text().splitlines() if f"{name} is damaged" in line]
    assert len(logged) == 1, logged  # the control plane's log says it once, in one line
    asides = list(path.parent.glob(path.name + ".corrupt-*"))
    if file_kind in SET_ASIDE:
        assert len(asides) == 1 and asides[0].read_bytes() == CORRUPTIONS[corruption]((seeded["data"] / name).read_bytes())
    else:
        assert asides == []  # rebuilt in place: nothing was lost
    json.loads(path.read_bytes())  # sound again


def test_a_lost_services_json_keeps_ids_generated_values_and_the_last_build(seeded, copy):
    data, blueprint = copy, seeded["blueprint"]
    (data / "store" / "services.json").unlink()
    ok(cli(data, blueprint, "services", "list"))
    service = State(data).get_service("box")
    before = seeded["service"]
    assert (service.id, service.envVars["SECRET"]) == (before.id, before.envVars["SECRET"])
    assert service.lastSuccessfulBuildId == before.lastSuccessfulBuildId
    ran = ok(cli(data, blueprint, "jobs", "list", "box", "-o", "json"))
    assert len(json.loads(ran.stdout)) == SEEDED_JOBS  # old jobs still found under its id


def test_an_api_token_that_is_not_text_is_replaced(seeded, copy):
    data, blueprint = copy, seeded["blueprint"]
    (data / "api-token").write_bytes(NOT_JSON)
    ok(cli(data, blueprint, "services", "list"))
    token = (data / "api-token").read_text().strip()
    assert token.startswith("rnd_")
    assert [p.read_bytes() for p in data.glob("api-token.corrupt-*")] == [NOT_JSON]
    assert "api-token held no token" in (data / "control-plane.log").read_text()


def test_an_unfinished_job_lost_with_live_json_is_rebuilt_from_its_container(seeded, copy):
    data, blueprint = copy, seeded["blueprint"]
    made = ok(cli(data, blueprint, "jobs", "create", "box", "--start-command", "sleep 3; echo late", "-o", "json"))
    job_id = json.loads(made.stdout)["id"]
    wait_until(lambda: (State(data).job_store.get(job_id) or {}).get("containerId"), 30)
    stop_control_planes(data.parent)  # the job's container runs on without a control plane
    (data / "store" / "jobs" / "live.json").write_bytes(NOT_JSON)
    told = ok(cli(data, blueprint, "jobs", "get", job_id))
    assert job_id in told.stdout
    said = ok(cli(data, blueprint, "jobs", "get", job_id, "-o", "json")).stderr + told.stderr
    assert "live.json is damaged" in said
    ended = wait_until(lambda: (lambda d: d if d and d["status"] == "succeeded" else None)(State(data).job_store.get(job_id)), 60)
    assert ended["exitCode"] == 0
    assert list((data / "store" / "jobs").glob("live.json.corrupt-*"))


def test_a_lost_shard_keeps_the_jobs_recent_json_copies_and_counts_the_rest(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(jobstore, "ARCHIVE_SHARD_SIZE", 3)
    monkeypatch.setattr(jobstore, "RECENT_SIZE", 2)
    store = JobStore(tmp_path / "jobs")

    def doc(n):
        return {"id": f"job-{n:020d}", "serviceId": "srv-a", "createdAt": f"2026-01-01T00:00:{n:02d}+00:00",
                "status": "succeeded", "logsComplete": True}

    store.bulk_insert([doc(n) for n in range(3)])  # one full shard, 000000; recent.json: jobs 2 and 1
    (tmp_path / "jobs" / "archive" / "000000.json").write_bytes(b"")
    fresh = JobStore(tmp_path / "jobs")
    assert fresh.get(doc(2)["id"])["id"] == doc(2)["id"] and fresh.get(doc(1)["id"]) is not None
    assert fresh.get(doc(0)["id"]) is None
    said = capsys.readouterr().err
    assert "archive/000000.json is damaged (it is empty)" in said and "1 job record(s) lost" in said
    assert [d["id"] for d in fresh.query()] == [doc(2)["id"], doc(1)["id"]]
