"""The product page's curl flow and Render's error contract, against a live local server."""

import json
import re
import stat
import time

import httpx
import pytest
import websockets.sync.client

from renderlocal.api.server import start_in_thread
from renderlocal.api.token import load_or_create_token
from renderlocal.executor.control import ControlPlane

pytestmark = pytest.mark.docker

OWNER_ID = "tea-local"  # GET /v1/owners: the one local workspace

BLUEPRINT = """\
services:
  - type: worker
    name: api-box
    runtime: docker
    rootDir: app
  - type: cron
    name: api-cron
    runtime: docker
    rootDir: app
    schedule: "0 * * * *"
"""


@pytest.fixture(scope="module")
def server(engine, tmp_path_factory):
    root = tmp_path_factory.mktemp("api")
    (root / "app").mkdir()
    (root / "app" / "Dockerfile").write_text("FROM busybox:1.36\n")
    (root / "render.yaml").write_text(BLUEPRINT)
    plane = ControlPlane(root / "data", root / "render.yaml", engine=engine).start(loop=False)
    builds = [plane.build("api-box", wait=True), plane.build("api-cron", wait=True)]
    assert [b.status for b in builds] == ["succeeded", "succeeded"]
    handle = start_in_thread(plane, "127.0.0.1", 0)
    yield plane, handle
    handle.stop()
    for job in plane.state.list_jobs():  # supervisors remove their containers once jobs end
        if not job.settled:
            if not job.final:
                plane.cancel_job(job.id)
            plane.jobs.wait(job.id, timeout=30)
    plane.close()
    for build in builds:
        try:
            engine.images.remove(build.image)
        except Exception:
            pass


@pytest.fixture
def client(server):
    plane, handle = server
    token = load_or_create_token(plane.data_dir)
    with httpx.Client(base_url=handle.url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
        yield client


def service_id(client, name):
    return next(i["service"]["id"] for i in client.get("/services").json() if i["service"]["name"] == name)


def wait_for_job(client, sid, job_id, done):
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        job = client.get(f"/services/{sid}/jobs/{job_id}").json()
        if done(job):
            return job
        time.sleep(0.1)
    raise AssertionError(f"job never got there: {job}")


def test_job_responses_are_the_cores_render_shape(client, server):
    plane, _handle = server
    sid = service_id(client, "api-box")
    created = client.post(f"/services/{sid}/jobs", json={"startCommand": "echo shape"}).json()
    done = wait_for_job(client, sid, created["id"], lambda j: "finishedAt" in j)
    assert done == plane.jobs.get(created["id"]).to_render()
    listed = client.get(f"/services/{sid}/jobs", params={"limit": 100}).json()
    assert next(i["job"] for i in listed if i["job"]["id"] == created["id"]) == done
    # optional keys appear once they have a value (Render's spec: absent, never null)
    assert set(done) - set(created) == {"startedAt", "finishedAt", "exitCode"} and None not in created.values()


def test_the_product_page_flow(client):
    sid = service_id(client, "api-box")
    created = client.post(f"/services/{sid}/jobs", json={"startCommand": "sleep 1; echo hi"})
    assert created.status_code == 201
    job = created.json()
    assert set(job) >= {"id", "serviceId", "startCommand", "planId", "createdAt", "status"}
    assert job["status"] == "pending" and "startedAt" not in job and "finishedAt" not in job
    assert job["id"].startswith("job-") and job["planId"] == "plan-srv-006"
    running = wait_for_job(client, sid, job["id"], lambda j: "startedAt" in j)
    assert "finishedAt" not in running or running["status"] == "succeeded"
    done = wait_for_job(client, sid, job["id"], lambda j: "finishedAt" in j)
    assert done["status"] == "succeeded" and done["exitCode"] == 0 and float(done["costUSD"]) > 0
    logs = client.get("/logs", params={"ownerId": OWNER_ID, "resource": job["id"]}).json()
    assert [entry["message"] for entry in logs["logs"]] == ["hi"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00", done["createdAt"])
    labels = {label["name"]: label["value"] for label in logs["logs"][0]["labels"]}
    assert labels == {"resource": job["id"], "instance": job["id"], "level": "info", "type": "app"}


def test_plan_override_and_env_extension(client):
    sid = service_id(client, "api-box")
    job = client.post(f"/services/{sid}/jobs", json={
        "startCommand": "echo $FLAG", "planId": "plan-srv-010", "envVars": [{"key": "FLAG", "value": "on"}]}).json()
    done = wait_for_job(client, sid, job["id"], lambda j: j["status"] == "succeeded")
    assert done["planId"] == "plan-srv-010"
    assert [e["message"] for e in client.get("/logs", params={"ownerId": OWNER_ID, "resource": job["id"]}).json()["logs"]] == ["on"]


def test_paging_walks_every_job_exactly_once_while_jobs_are_created(client):
    sid = service_id(client, "api-cron")
    for n in range(5):
        assert client.post(f"/services/{sid}/jobs", json={"startCommand": f"echo {n}"}).status_code == 201
    before = {item["job"]["id"] for item in client.get(f"/services/{sid}/jobs", params={"limit": 100}).json()}
    seen, cursor, created = [], None, []
    while True:
        page = client.get(f"/services/{sid}/jobs", params={"limit": 2} | ({"cursor": cursor} if cursor else {})).json()
        if not page:
            break
        assert len(page) <= 2
        seen += [item["job"]["id"] for item in page]
        cursor = page[-1]["cursor"]
        created.append(client.post(f"/services/{sid}/jobs", json={"startCommand": "true"}).json()["id"])  # newer: never inside later pages
    assert len(seen) == len(set(seen)) and set(seen) == before
    first = [item["job"]["id"] for item in client.get(f"/services/{sid}/jobs", params={"limit": len(created)}).json()]
    assert first == created[::-1]  # the jobs made while walking are the newest: before page 1


def test_list_filters(client):
    sid = service_id(client, "api-box")
    failed = client.post(f"/services/{sid}/jobs", json={"startCommand": "exit 4"}).json()
    wait_for_job(client, sid, failed["id"], lambda j: j["status"] == "failed")
    listed = client.get(f"/services/{sid}/jobs", params={"status": "failed,canceled"}).json()
    assert [i["job"]["id"] for i in listed] == [failed["id"]]
    assert listed[0]["job"]["failureReason"]["type"] == "nonZeroExit"
    after = client.get(f"/services/{sid}/jobs", params={"createdAfter": failed["createdAt"]}).json()
    assert failed["id"] not in [i["job"]["id"] for i in after]
    upto = client.get(f"/services/{sid}/jobs", params={"createdBefore": "2000-01-01T00:00:00Z"}).json()
    assert upto == []


def test_cancel(client):
    sid = service_id(client, "api-box")
    job = client.post(f"/services/{sid}/jobs", json={"startCommand": "sleep 60"}).json()
    wait_for_job(client, sid, job["id"], lambda j: j["status"] == "running")
    response = client.post(f"/services/{sid}/jobs/{job['id']}/cancel")
    assert response.status_code == 200
    done = wait_for_job(client, sid, job["id"], lambda j: "finishedAt" in j)
    assert done["status"] == "canceled"
    again = client.post(f"/services/{sid}/jobs/{job['id']}/cancel")
    assert again.status_code == 400 and "already ended" in again.json()["message"]


def test_get_job_waiting_for_finished_answers_when_the_job_ends_before_the_timeout(client):
    """render-local's long-poll: one GET instead of polling, woken by the job's end."""
    sid = service_id(client, "api-box")
    job = client.post(f"/services/{sid}/jobs", json={"startCommand": "sleep 1; echo done"}).json()
    began = time.monotonic()
    ended = client.get(f"/services/{sid}/jobs/{job['id']}", params={"waitFor": "finished", "timeout": 30}).json()
    took = time.monotonic() - began
    assert ended["status"] == "succeeded" and "finishedAt" in ended
    assert 0.5 < took < 20  # it waited for the end, and no longer than that
    assert ended == client.get(f"/services/{sid}/jobs/{job['id']}").json()  # the Render-shaped object, as a GET has it
    began = time.monotonic()
    again = client.get(f"/services/{sid}/jobs/{job['id']}", params={"waitFor": "finished", "timeout": 30}).json()
    assert again == ended and time.monotonic() - began < 5  # already ended: at once


def test_get_job_waiting_for_finished_answers_at_the_timeout_with_the_job_as_it_is(client):
    sid = service_id(client, "api-box")
    job = client.post(f"/services/{sid}/jobs", json={"startCommand": "sleep 60"}).json()
    running = wait_for_job(client, sid, job["id"], lambda j: j["status"] == "running")
    began = time.monotonic()
    answer = client.get(f"/services/{sid}/jobs/{job['id']}", params={"waitFor": "finished", "timeout": 1})
    assert answer.status_code == 200 and time.monotonic() - began >= 0.9
    unchanged = {k: v for k, v in answer.json().items() if k != "costUSD"}  # a running job's cost grows
    assert unchanged == {k: v for k, v in running.items() if k != "costUSD"} and running["status"] == "running"
    for query, word in (({"waitFor": "started"}, "waitFor"), ({"waitFor": "finished", "timeout": "soon"}, "timeout")):
        refused = client.get(f"/services/{sid}/jobs/{job['id']}", params=query)
        assert refused.status_code == 400 and word in refused.json()["message"]
    client.post(f"/services/{sid}/jobs/{job['id']}/cancel")


def test_an_empty_plan_id_is_the_services_plan_as_renders_cli_sends_it(client):
    job = client.post(f"/services/{service_id(client, 'api-box')}/jobs", json={"startCommand": "true", "planId": ""})
    assert job.status_code == 201 and job.json()["planId"] == "plan-srv-006"


def test_a_json_body_without_content_type_is_read_as_json(client):
    job = client.post(f"/services/{service_id(client, 'api-box')}/jobs", content=b'{"startCommand": "true"}',
                      headers={"Content-Type": ""})
    assert job.status_code == 201 and job.json()["startCommand"] == "true"


@pytest.mark.parametrize("body,words", [
    ({}, "startCommand is required"),
    ({"startCommand": ""}, "must not be empty"),
    ({"startCommand": 5}, "startCommand must be a string"),
    ({"startCommand": "true", "planId": "plan-srv-999"}, "unknown planId"),
    ({"startCommand": "true", "planId": "plan-crn-003"}, "needs a service plan"),
    ({"startCommand": "true", "planId": 7}, "planId must be a string"),
    ({"startCommand": "   "}, "must not be empty"),
    ({"startCommand": ["echo", "hi"]}, "startCommand must be a string"),
    ({"startCommand": "true", "envVars": [{"key": "A"}]}, "each envVars entry"),
    ({"startCommand": "true", "envVars": [{"key": "A", "value": 1}]}, "each envVars entry"),
    ({"startCommand": "true", "envVars": {"A": "b"}}, "envVars must be a list"),
    ({"startCommand": "true", "envVars": [{"key": "1A", "value": "b"}]}, "is invalid"),
    ([1, 2], "must be a JSON object"),
    (None, "must be a JSON object"),
    ("echo hi", "must be a JSON object"),
])
def test_bad_bodies_are_400_with_the_error_shape(client, body, words):
    raw = json.dumps(body).encode()  # also for None: the JSON null
    response = client.post(f"/services/{service_id(client, 'api-box')}/jobs", content=raw,
                           headers={"Content-Type": "application/json; charset=utf-8"})
    assert response.status_code == 400
    answer = response.json()
    assert {"id", "message"} <= set(answer) <= {"id", "message", "field"} and words in answer["message"]
    if isinstance(body, dict) and words != "is invalid" and "planId" not in str(body) and "envVars" not in str(body):
        assert answer["field"] == "startCommand"  # the field it is about, for a form to mark (an extension)


def test_bad_requests(client):
    sid = service_id(client, "api-box")
    other_job = client.post(f"/services/{service_id(client, 'api-cron')}/jobs", json={"startCommand": "true"}).json()["id"]
    cases = [
        (client.post(f"/services/{sid}/jobs", content=b"{not json", headers={"Content-Type": "application/json"}), 400, "not valid JSON"),
        (client.post(f"/services/{sid}/jobs", content=b"startCommand=x", headers={"Content-Type": "text/plain"}), 400, "not valid JSON"),
        (client.get(f"/services/{sid}/jobs", params={"limit": 0}), 400, "limit"),
        (client.get(f"/services/{sid}/jobs", params={"limit": 101}), 400, "limit"),
        (client.get(f"/services/{sid}/jobs", params={"limit": "x"}), 400, "limit"),
        (client.get(f"/services/{sid}/jobs", params={"createdAfter": "yesterday"}), 400, "createdAfter"),
        (client.get(f"/services/{sid}/jobs", params={"status": "done"}), 400, "unknown status"),
        (client.get(f"/services/{sid}/jobs", params={"cursor": "job-nope"}), 400, "unknown cursor"),
        (client.get("/services/srv-00000000000000000000"), 404, "unknown service"),
        (client.get(f"/services/{sid}/jobs/job-00000000000000000000"), 404, "unknown job"),
        (client.get("/logs"), 400, "ownerId is required"),
        (client.get("/logs", params={"ownerId": "tea-someone-else"}), 404, "unknown owner"),
        (client.get("/logs", params={"ownerId": OWNER_ID}), 400, "resource is required"),
        (client.get("/logs", params={"ownerId": OWNER_ID, "resource": "job-00000000000000000000"}), 404, "unknown job"),
        (client.get("/logs", params={"ownerId": OWNER_ID, "resource": "bld-x"}), 404, "unknown build"),
        (client.get("/logs", params={"ownerId": OWNER_ID, "resource": "bld-x", "direction": "sideways"}), 400, "direction"),
        (client.get("/logs", params={"ownerId": OWNER_ID, "resource": "bld-x", "startTime": "soon"}), 400, "startTime"),
        (client.post(f"/services/{sid}/jobs", content=b""), 400, "must be a JSON object"),
        (client.post(f"/services/{sid}/jobs", content=b"", headers={"Content-Type": "application/json"}), 400, "JSON object"),
        (client.post("/services/srv-00000000000000000000/jobs", json={"startCommand": "true"}), 404, "unknown service"),
        (client.get(f"/services/{sid}/jobs", params=[("limit", "1"), ("limit", "2")]), 400, "once"),
        (client.get(f"/services/{sid}/jobs", params={"limit": "-1"}), 400, "limit"),
        (client.get(f"/services/{sid}/jobs", params={"status": "running,Succeeded"}), 400, "unknown status"),
        (client.get(f"/services/{sid}/jobs", params={"cursor": other_job}), 400, "another service"),
        (client.get(f"/services/{sid}/jobs/{other_job}"), 404, "unknown job"),
        (client.post(f"/services/{sid}/jobs/{other_job}/cancel"), 404, "unknown job"),
        (client.post(f"/services/{sid}/jobs/job-00000000000000000000/cancel"), 404, "unknown job"),
        (client.get("/services/srv-00000000000000000000/jobs"), 404, "unknown service"),
        (client.get("/services", params={"cursor": "srv-nope"}), 400, "unknown cursor"),
        (client.get("/services", params={"limit": 1000}), 400, "limit"),
        *[(client.get(f"/services/{sid}/jobs", params={name: "2026-13-45"}), 400, name) for name in (
            "createdBefore", "createdAfter", "startedBefore", "startedAfter", "finishedBefore", "finishedAfter")],
        (client.get("/logs", params={"ownerId": OWNER_ID, "resource": other_job, "limit": 0}), 400, "limit"),
        (client.get("/logs", params={"ownerId": OWNER_ID, "resource": other_job, "endTime": "never"}), 400, "endTime"),
        (client.get("/logs", params={"ownerId": OWNER_ID, "resource": other_job, "startTime": "2026-01-02T00:00:00Z",
                                     "endTime": "2026-01-01T00:00:00Z"}), 400, "startTime must not be after endTime"),
        (client.get("/logs", params={"ownerId": OWNER_ID, "resource": other_job, "text": "/(unclosed/"}), 400, "regular expression"),
        (client.delete(f"/services/{sid}"), 404, "no route"),
        (client.post("/services", json={}), 404, "no route"),
        (client.put(f"/services/{sid}/jobs/{other_job}", json={}), 404, "no route"),
        (client.get(f"/services/{sid}/jobs/{other_job}/cancel"), 404, "no route"),
        (client.get(f"/services/{sid}/jobs/job-..%2Fx"), 404, ""),
        (client.get(f"/services/{sid}/jobs/job-/x"), 404, ""),
        (client.get(f"/services/{sid}/jobs/job-..x"), 404, "unknown job"),
        (client.get("/logs", params={"ownerId": OWNER_ID, "resource": "job-/etc/passwd"}), 404, "unknown job"),
        (client.get("/logs", params={"ownerId": OWNER_ID, "resource": "srv-00000000000000000000"}), 404, "unknown service"),
        (client.get("/logs", params={"ownerId": OWNER_ID, "resource": "web.log"}), 404, "unknown resource"),
        (client.get("/nothing-here"), 404, ""),
    ]
    for response, status, words in cases:
        assert response.status_code == status, (response.request.url, response.text)
        answer = response.json()
        assert {"id", "message"} <= set(answer) <= {"id", "message", "field"} and words in answer["message"]


def test_a_request_without_or_with_a_wrong_token_gets_401(server):
    _plane, handle = server
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic abc"}):
        response = httpx.get(handle.url + "/services", headers=headers)
        assert response.status_code == 401 and response.json()["id"] == "unauthorized"


def test_logs_websocket_follows_a_job_to_its_end(client, server):
    plane, handle = server
    sid = service_id(client, "api-box")
    job = client.post(f"/services/{sid}/jobs", json={"startCommand": "for i in 1 2 3; do echo tick-$i; sleep 0.3; done"}).json()
    url = handle.url.replace("http://", "ws://") + f"/logs/subscribe?resource={job['id']}"
    token = load_or_create_token(plane.data_dir)
    messages = []
    with websockets.sync.client.connect(url, additional_headers={"Authorization": f"Bearer {token}"}) as ws:
        try:
            while True:
                messages.append(json.loads(ws.recv(timeout=30)))
        except websockets.exceptions.ConnectionClosedOK:
            pass
    assert [m["message"] for m in messages] == ["tick-1", "tick-2", "tick-3"]


def test_log_query_window_direction_and_text(client):
    sid = service_id(client, "api-box")
    job = client.post(f"/services/{sid}/jobs", json={
        "startCommand": "for i in 1 2 3 4 5; do echo line-$i; sleep 0.05; done; echo ERROR bad >&2"}).json()
    wait_for_job(client, sid, job["id"], lambda j: j["status"] == "succeeded")
    backward = client.get("/logs", params={"ownerId": OWNER_ID, "resource": job["id"], "limit": 2}).json()
    assert backward["hasMore"] is True and 1 <= len(backward["logs"]) <= 2
    assert backward["logs"][0]["message"] == "ERROR bad"  # newest first
    forward = client.get("/logs", params={"ownerId": OWNER_ID, "resource": job["id"], "direction": "forward", "limit": 100, "text": "line-*"}).json()
    assert [e["message"] for e in forward["logs"]] == [f"line-{i}" for i in range(1, 6)]
    assert forward["hasMore"] is False
    errors = client.get("/logs", params={"ownerId": OWNER_ID, "resource": job["id"], "level": "error"}).json()
    assert [e["message"] for e in errors["logs"]] == ["ERROR bad"]
    assert {label["name"]: label["value"] for label in errors["logs"][0]["labels"]}["level"] == "error"
    regex = client.get("/logs", params={"ownerId": OWNER_ID, "resource": job["id"], "text": "/line-[24]$/", "limit": 100}).json()
    assert sorted(e["message"] for e in regex["logs"]) == ["line-2", "line-4"]
    either = client.get("/logs", params=[("ownerId", OWNER_ID), ("resource", job["id"]), ("text", "LINE-1"), ("text", "/^ERROR/")]).json()
    assert sorted(e["message"] for e in either["logs"]) == ["ERROR bad", "line-1"]
    old = client.get("/logs", params={"ownerId": OWNER_ID, "resource": job["id"], "startTime": "2000-01-01T00:00:00Z", "endTime": "2000-01-02T00:00:00Z"}).json()
    assert old["logs"] == [] and old["hasMore"] is False


def walk_logs(client, resource, direction, limit, **extra):
    """Every page of a log query, following nextEndTime/nextStartTime as handed back."""
    params, pages = {"ownerId": OWNER_ID, "resource": resource, "direction": direction, "limit": limit} | extra, []
    for _ in range(100):
        page = client.get("/logs", params=params).json()
        pages.append(page["logs"])
        if not page["hasMore"]:
            return pages
        bound = "endTime" if direction == "backward" else "startTime"
        params[bound] = page["nextEndTime" if direction == "backward" else "nextStartTime"]
        other = "startTime" if direction == "backward" else "endTime"
        params[other] = page["nextStartTime" if direction == "backward" else "nextEndTime"]
    raise AssertionError("log paging never ended")


def test_log_paging_splits_bursts_and_neither_repeats_nor_skips_lines(client):
    sid = service_id(client, "api-box")
    # single lines apart in time, and bursts whose lines are captured in one read (each its own time)
    command = "echo a; sleep 0.1; echo b; sleep 0.1; seq 1 7; sleep 0.1; echo c; sleep 0.1; seq 10 12; sleep 0.1; echo d"
    job = client.post(f"/services/{sid}/jobs", json={"startCommand": command}).json()
    wait_for_job(client, sid, job["id"], lambda j: j["status"] == "succeeded")
    every = client.get("/logs", params={"ownerId": OWNER_ID, "resource": job["id"], "direction": "forward", "limit": 100}).json()["logs"]
    expected = ["a", "b"] + [str(n) for n in range(1, 8)] + ["c", "10", "11", "12", "d"]
    assert [e["message"] for e in every] == expected
    stamps = [e["timestamp"] for e in every]
    assert all(a < b for a, b in zip(stamps, stamps[1:])) and all(len(t) == 30 and t.endswith("Z") for t in stamps)
    for direction in ("forward", "backward"):
        for limit in (1, 2, 3, 5):
            pages = walk_logs(client, job["id"], direction, limit)
            seen = [e["id"] for page in pages for e in page]
            assert len(seen) == len(set(seen)), (direction, limit)
            order = [e["message"] for page in pages for e in page]
            assert order == (expected if direction == "forward" else expected[::-1]), (direction, limit)
            assert [len(page) for page in pages[:-1]] == [limit] * (len(pages) - 1), (direction, limit)


def test_a_page_of_a_1000_line_job_holds_limit_lines_and_pages_walk_every_line_once(client):
    sid = service_id(client, "api-box")
    job = client.post(f"/services/{sid}/jobs", json={"startCommand": "seq 1 1000"}).json()
    wait_for_job(client, sid, job["id"], lambda j: j["status"] == "succeeded")
    expected = [str(n) for n in range(1, 1001)]
    first = client.get("/logs", params={"ownerId": OWNER_ID, "resource": job["id"], "limit": 100}).json()
    assert [e["message"] for e in first["logs"]] == expected[:-101:-1] and first["hasMore"] is True
    assert first["nextEndTime"] < first["logs"][-1]["timestamp"]
    for direction in ("forward", "backward"):
        pages = walk_logs(client, job["id"], direction, 100)
        assert [len(page) for page in pages] == [100] * 10, direction
        assert [e["message"] for page in pages for e in page] == (expected if direction == "forward" else expected[::-1])
    stamps = [e["timestamp"] for page in walk_logs(client, job["id"], "forward", 100) for e in page]
    middle = {"ownerId": OWNER_ID, "resource": job["id"], "startTime": stamps[400], "endTime": stamps[549], "limit": 100}
    ahead = client.get("/logs", params=middle | {"direction": "forward"}).json()
    assert [e["message"] for e in ahead["logs"]] == expected[400:500]
    assert ahead["hasMore"] is True and ahead["nextStartTime"] == stamps[500] and ahead["nextEndTime"] == stamps[549]
    rest = client.get("/logs", params=middle | {"direction": "forward", "startTime": ahead["nextStartTime"]}).json()
    assert [e["message"] for e in rest["logs"]] == expected[500:550] and rest["hasMore"] is False
    back = client.get("/logs", params=middle | {"direction": "backward"}).json()
    assert [e["message"] for e in back["logs"]] == expected[549:449:-1]
    assert back["hasMore"] is True and back["nextEndTime"] == stamps[449] and back["nextStartTime"] == stamps[400]


def test_log_bounds_keep_nanoseconds(client):
    sid = service_id(client, "api-box")
    job = client.post(f"/services/{sid}/jobs", json={"startCommand": "echo one; sleep 0.1; echo two"}).json()
    wait_for_job(client, sid, job["id"], lambda j: j["status"] == "succeeded")
    one, two = client.get("/logs", params={"ownerId": OWNER_ID, "resource": job["id"], "direction": "forward"}).json()["logs"]
    exactly = client.get("/logs", params={"ownerId": OWNER_ID, "resource": job["id"], "startTime": two["timestamp"], "endTime": two["timestamp"]}).json()
    assert [e["message"] for e in exactly["logs"]] == ["two"]
    offset = client.get("/logs", params={"ownerId": OWNER_ID, "resource": job["id"], "endTime": one["timestamp"].replace("Z", "+00:00")}).json()
    assert [e["message"] for e in offset["logs"]] == ["one"]


def served_routes(app) -> set[tuple[str, str]]:
    served = set()
    for route in app.routes:
        path = route.path.replace("{service_id}", "{serviceId}").replace("{job_id}", "{jobId}").replace("{build_id}", "{buildId}").replace("{deploy_id}", "{deployId}").replace("{postgres_id}", "{postgresId}").replace("{key_value_id}", "{keyValueId}").replace("{owner_id}", "{ownerId}").replace("{resource_id}", "{resourceId}")
        for method in getattr(route, "methods", None) or {"GET"}:  # a WebSocket route: its GET handshake
            if method != "HEAD":
                served.add((path, method))
    return served


def test_openapi_lists_exactly_the_served_routes(server):
    _plane, handle = server
    response = httpx.get(handle.url.removesuffix("/v1") + "/openapi.json")  # no token needed
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.")
    documented = {(path, method.upper()) for path, ops in document["paths"].items() for method in ops
                  if method != "parameters"}
    assert documented == served_routes(handle.app)
    def resolved(parameter: dict) -> dict:
        ref = parameter.get("$ref")
        return document["components"]["parameters"][ref.rsplit("/", 1)[1]] if ref else parameter

    for path, item in document["paths"].items():  # every path parameter is declared (on the path or the operation)
        shared = item.get("parameters", [])
        for method, op in item.items():
            if method == "parameters":
                continue
            declared = {p["name"] for p in map(resolved, shared + op.get("parameters", [])) if p["in"] == "path"}
            assert declared == set(re.findall(r"{(\w+)}", path)), (path, declared)
    assert document["components"]["schemas"]["job"]["properties"]["costUSD"]  # an extension, on Render's schema
    try:
        from openapi_spec_validator import validate
    except ImportError:
        return
    validate(document)


def test_every_api_route_needs_the_token(server):
    _plane, handle = server
    base = handle.url.removesuffix("/v1")
    for path, method in served_routes(handle.app):
        if path == "/openapi.json" or path.endswith("/subscribe"):
            continue
        url = base + path.replace("{serviceId}", "api-box").replace("{jobId}", "job-00000000000000000000")
        response = httpx.request(method, url, json={"startCommand": "true"})
        assert response.status_code == 401, (method, path)
        assert response.json()["id"] == "unauthorized"


def test_logs_websocket_refuses_bad_handshakes_with_the_error_shape(client, server):
    plane, handle = server
    ws_url = handle.url.replace("http://", "ws://") + "/logs/subscribe"
    token = load_or_create_token(plane.data_dir)
    cases = [
        ("?resource=job-00000000000000000000", {}, 401, "unauthorized"),
        ("?resource=job-00000000000000000000", {"Authorization": "Bearer nope"}, 401, "unauthorized"),
        ("", {"Authorization": f"Bearer {token}"}, 400, "bad_request"),
        ("?resource=job-00000000000000000000", {"Authorization": f"Bearer {token}"}, 404, "not_found"),
    ]
    for query, headers, status, code in cases:
        with pytest.raises(websockets.exceptions.InvalidStatus) as refused:
            websockets.sync.client.connect(ws_url + query, additional_headers=headers, open_timeout=10)
        assert refused.value.response.status_code == status
        assert json.loads(refused.value.response.body)["id"] == code
    plain = client.get("/logs/subscribe", params={"resource": "job-00000000000000000000"})
    assert plain.status_code == 426 and set(plain.json()) == {"id", "message"}


def test_logs_websocket_client_may_leave_early(client, server):
    plane, handle = server
    sid = service_id(client, "api-box")
    job = client.post(f"/services/{sid}/jobs", json={"startCommand": "echo first; sleep 30"}).json()
    url = handle.url.replace("http://", "ws://") + f"/logs/subscribe?resource={job['id']}"
    token = load_or_create_token(plane.data_dir)
    with websockets.sync.client.connect(url, additional_headers={"Authorization": f"Bearer {token}"}) as ws:
        assert json.loads(ws.recv(timeout=30))["message"] == "first"
    # the server is still fine, and the job runs on until canceled
    assert client.get(f"/services/{sid}/jobs/{job['id']}").json()["status"] == "running"
    assert client.post(f"/services/{sid}/jobs/{job['id']}/cancel").status_code == 200
    assert wait_for_job(client, sid, job["id"], lambda j: "finishedAt" in j)["status"] == "canceled"


def test_services_list_pages_with_cursor_and_limit(client):
    every = client.get("/services").json()
    assert [i["cursor"] for i in every] == [i["service"]["id"] for i in every] and len(every) == 2
    first = client.get("/services", params={"limit": 1}).json()
    second = client.get("/services", params={"limit": 1, "cursor": first[0]["cursor"]}).json()
    assert [i["service"]["id"] for i in first + second] == [i["service"]["id"] for i in every]
    assert client.get("/services", params={"cursor": every[-1]["cursor"]}).json() == []
    by_name = client.get("/services/api-box").json()
    assert by_name["name"] == "api-box" and by_name["type"] == "background_worker" and by_name["id"].startswith("srv-")
    assert client.get("/services/api-cron").json()["type"] == "cron_job"


def test_the_token_file(tmp_path):
    import threading

    first = load_or_create_token(tmp_path)
    path = tmp_path / "api-token"
    assert first.startswith("rnd_") and len(first) > 30 and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_token(tmp_path) == first
    path.chmod(0o644)
    assert load_or_create_token(tmp_path) == first and stat.S_IMODE(path.stat().st_mode) == 0o600
    for round_ in range(40):  # eight at once agree on one token (a set-aside check once took a fresh one: 28 in 300)
        racing = tmp_path / f"race-{round_}"
        racing.mkdir()
        tokens = []
        threads = [threading.Thread(target=lambda: tokens.append(load_or_create_token(racing))) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(set(tokens)) == 1 and tokens[0] == (racing / "api-token").read_text().strip()
        assert sorted(p.name for p in racing.iterdir()) == ["api-token"]  # nothing set aside, no temporary files


def test_urls_and_exposure_warning(capsys):
    from renderlocal.api.server import base_url, is_loopback, warn_if_exposed

    assert base_url("127.0.0.1", 8000) == "http://127.0.0.1:8000/v1"
    assert base_url("::1", 8000) == "http://[::1]:8000/v1"
    assert [is_loopback(h) for h in ("127.0.0.1", "localhost", "::1", "0.0.0.0", "192.168.1.5", "example")] == [
        True, True, True, False, False, False]
    warn_if_exposed("127.0.0.1")
    assert capsys.readouterr().err == ""
    warn_if_exposed("0.0.0.0")
    assert "warning" in capsys.readouterr().err


def test_start_in_thread_on_a_busy_port_is_one_clear_error(server):
    from renderlocal.core.errors import RenderLocalError

    plane, handle = server
    for kind in (RenderLocalError, RuntimeError):  # RuntimeError: what callers caught before
        with pytest.raises(kind, match="cannot listen on 127.0.0.1"):
            start_in_thread(plane, "127.0.0.1", handle.port)


def test_serve_in_the_foreground_prints_its_url_and_stops_cleanly_on_ctrl_c(data_dir):
    import signal
    import subprocess
    import sys

    from tests.conftest import SAMPLES

    base = [sys.executable, "-m", "renderlocal", "--data-dir", str(data_dir), "--blueprint", str(SAMPLES)]
    token = subprocess.run(base + ["token"], capture_output=True, text=True, timeout=60).stdout.strip()
    assert token.startswith("rnd_") and (data_dir / "api-token").stat().st_mode & 0o777 == 0o600
    proc = subprocess.Popen(base + ["serve", "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = proc.stdout.readline().strip()  # the real port, although --port 0
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/v1", url) and not url.endswith(":0/v1"), url
        deadline = time.monotonic() + 30
        response = None
        while time.monotonic() < deadline:
            try:
                response = httpx.get(url + "/services", headers={"Authorization": f"Bearer {token}"})
                break
            except httpx.ConnectError:
                time.sleep(0.1)
        assert response is not None and response.status_code == 200
        assert {i["service"]["name"] for i in response.json()} >= {"shop-web", "nightly"}
        other = [sys.executable, "-m", "renderlocal", "--data-dir", str(data_dir.parent / "other"), "--blueprint", str(SAMPLES)]
        busy = subprocess.run(other + ["serve", "--port", url.rsplit(":", 1)[1].removesuffix("/v1")],
                              capture_output=True, text=True, timeout=60)
        assert busy.returncode != 0 and "cannot listen on 127.0.0.1" in busy.stderr and "Traceback" not in busy.stderr
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=15) == 0
        errors = proc.stderr.read()
        assert "Traceback" not in errors and "stopped" in errors
    finally:
        proc.kill()
        proc.wait()


def test_stopping_the_thread_server_closes_open_log_followers(client, server):
    plane, _handle = server
    sid = service_id(client, "api-box")
    job = client.post(f"/services/{sid}/jobs", json={"startCommand": "echo waiting; sleep 30"}).json()
    second = start_in_thread(plane, "127.0.0.1", 0)
    url = second.url.replace("http://", "ws://") + f"/logs/subscribe?resource={job['id']}"
    with websockets.sync.client.connect(url, additional_headers={"Authorization": f"Bearer {second.token}"}) as ws:
        assert json.loads(ws.recv(timeout=30))["message"] == "waiting"
        began = time.monotonic()
        second.stop()
        assert time.monotonic() - began < 8 and not second.thread.is_alive()
        with pytest.raises(websockets.exceptions.ConnectionClosed):
            ws.recv(timeout=10)
    client.post(f"/services/{sid}/jobs/{job['id']}/cancel")


def test_render_locals_own_routes(client, server):
    """What the CLI and a second app use: status, long-polled change events, builds, watch mode, stop."""
    import os

    plane, handle = server
    local = handle.url.removesuffix("/v1") + "/local"
    status = client.get(f"{local}/status").json()
    assert status["pid"] == os.getpid() and status["dataDir"] == str(plane.data_dir)
    assert status["blueprint"] == str(plane.blueprint_path) and status["engine"] == plane.engine.id
    sid = service_id(client, "api-box")
    began = time.monotonic()
    job = client.post(f"/services/{sid}/jobs", json={"startCommand": "echo hi"}).json()
    woke = client.get(f"{local}/events", params={"after": status["seq"], "epoch": status["epoch"], "timeout": 20}).json()
    assert time.monotonic() - began < 10 and not woke["reset"]
    assert {"kind": "job", "id": job["id"], "status": "pending"} in [{k: c[k] for k in ("kind", "id", "status")}
                                                                       for c in woke["changes"]]
    wait_for_job(client, sid, job["id"], lambda j: j["status"] == "succeeded")
    time.sleep(0.5)  # its log completes after the status: let that last write land
    now = client.get(f"{local}/status").json()
    began = time.monotonic()
    quiet = client.get(f"{local}/events", params={"after": now["seq"], "epoch": now["epoch"], "timeout": 0.6}).json()
    assert quiet["changes"] == [] and time.monotonic() - began >= 0.5  # nothing happened: it waited
    assert client.get(f"{local}/events", params={"after": 1, "epoch": "another"}).json()["reset"] is True
    assert client.get(f"{local}/jobs/{job['id']}").json()["status"] == "succeeded"
    assert job["id"] in [item["job"]["id"] for item in client.get(f"{local}/jobs", params={"limit": 100}).json()]
    builds = client.get(f"{local}/services/{sid}/builds").json()
    assert builds[0]["status"] == "succeeded" and client.get(f"{local}/builds/{builds[0]['id']}").json() == builds[0]
    refused = client.post(f"{local}/builds/{builds[0]['id']}/cancel")
    assert refused.status_code == 400 and "already ended (succeeded)" in refused.json()["message"]
    assert client.get(f"{local}/builds/bld-00000000000000000000").status_code == 404
    assert client.put(f"{local}/services/{sid}/watch", json={"watch": True}).json()["watch"] is True
    assert plane.watchers and client.put(f"{local}/services/{sid}/watch", json={"watch": False}).json()["watch"] is False
    assert not plane.watchers
    bad = client.put(f"{local}/services/{sid}/watch", json={"watch": "yes"})
    assert bad.status_code == 400 and bad.json()["field"] == "watch"
    kept = client.post(f"{local}/stop")  # started by hand: only its owner stops it
    assert kept.status_code == 409 and "started by hand" in kept.json()["message"]


def test_a_request_after_the_server_closed_an_idle_connection_still_goes_through(server, monkeypatch):
    """A cancel (a POST without a body) after the server dropped the kept-alive connection must not be lost."""
    import os

    import renderlocal.api.server as api_server
    import renderlocal.client.remote as remote_module
    from renderlocal.client.discovery import Endpoint
    from renderlocal.client.remote import RemoteControlPlane

    plane, _handle = server
    monkeypatch.setattr(api_server, "KEEP_ALIVE_SECONDS", 1)
    monkeypatch.setattr(remote_module, "REUSE_SECONDS", 0.5)
    handle = start_in_thread(plane, "127.0.0.1", 0)
    try:
        remote = RemoteControlPlane(Endpoint(handle.url, os.getpid(), str(plane.blueprint_path)), handle.token)
        remote.status()
        time.sleep(1.6)  # the server has closed the idle connection by now
        assert remote.clear_log_stream() == {"endpoint": None}  # a DELETE without a body
    finally:
        handle.stop()
