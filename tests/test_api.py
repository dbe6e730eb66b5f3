"""The product page's curl flow and Render's error contract, against a live local server."""

import json
import time

import httpx
import pytest
import websockets.sync.client

from renderlocal.api.server import start_in_thread
from renderlocal.api.token import load_or_create_token
from renderlocal.core.control import ControlPlane

pytestmark = pytest.mark.docker

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
    plane = ControlPlane(root / "data", root / "render.yaml", engine=engine)
    plane.sync_services()
    assert plane.build("api-box").status == "succeeded"
    assert plane.build("api-cron").status == "succeeded"
    handle = start_in_thread(plane, "127.0.0.1", 0)
    yield plane, handle
    handle.stop()


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


def test_the_product_page_flow(client):
    sid = service_id(client, "api-box")
    created = client.post(f"/services/{sid}/jobs", json={"startCommand": "sleep 1; echo hi"})
    assert created.status_code == 201
    job = created.json()
    assert set(job) >= {"id", "serviceId", "startCommand", "planId", "createdAt", "startedAt", "finishedAt", "status"}
    assert (job["status"], job["startedAt"], job["finishedAt"]) == ("pending", None, None)
    assert job["id"].startswith("job-") and job["planId"] == "plan-srv-006"
    running = wait_for_job(client, sid, job["id"], lambda j: j["startedAt"] is not None)
    assert running["finishedAt"] is None or running["status"] == "succeeded"
    done = wait_for_job(client, sid, job["id"], lambda j: j["finishedAt"] is not None)
    assert done["status"] == "succeeded" and done["exitCode"] == 0 and float(done["costUSD"]) > 0
    logs = client.get("/logs", params={"resource": job["id"]}).json()
    assert [entry["message"] for entry in logs["logs"]] == ["hi"]
    labels = {label["name"]: label["value"] for label in logs["logs"][0]["labels"]}
    assert labels == {"resource": job["id"], "instance": job["id"], "level": "info", "type": "app"}


def test_plan_override_and_env_extension(client):
    sid = service_id(client, "api-box")
    job = client.post(f"/services/{sid}/jobs", json={
        "startCommand": "echo $FLAG", "planId": "plan-srv-010", "envVars": [{"key": "FLAG", "value": "on"}]}).json()
    done = wait_for_job(client, sid, job["id"], lambda j: j["status"] == "succeeded")
    assert done["planId"] == "plan-srv-010"
    assert [e["message"] for e in client.get("/logs", params={"resource": job["id"]}).json()["logs"]] == ["on"]


def test_paging_walks_every_job_exactly_once_while_jobs_are_created(client):
    sid = service_id(client, "api-cron")
    for n in range(5):
        assert client.post(f"/services/{sid}/jobs", json={"startCommand": f"echo {n}"}).status_code == 201
    before = {item["job"]["id"] for item in client.get(f"/services/{sid}/jobs", params={"limit": 100}).json()}
    seen, cursor = [], None
    while True:
        page = client.get(f"/services/{sid}/jobs", params={"limit": 2} | ({"cursor": cursor} if cursor else {})).json()
        if not page:
            break
        assert len(page) <= 2
        seen += [item["job"]["id"] for item in page]
        cursor = page[-1]["cursor"]
        client.post(f"/services/{sid}/jobs", json={"startCommand": "true"})  # newer: never inside later pages
    assert len(seen) == len(set(seen)) and set(seen) == before


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
    done = wait_for_job(client, sid, job["id"], lambda j: j["finishedAt"] is not None)
    assert done["status"] == "canceled"
    again = client.post(f"/services/{sid}/jobs/{job['id']}/cancel")
    assert again.status_code == 400 and "already ended" in again.json()["message"]


@pytest.mark.parametrize("body,words", [
    ({}, "startCommand is required"),
    ({"startCommand": ""}, "must not be empty"),
    ({"startCommand": 5}, "startCommand must be a string"),
    ({"startCommand": "true", "planId": "plan-srv-999"}, "unknown planId"),
    ({"startCommand": "true", "planId": "plan-crn-003"}, "needs a service plan"),
    ({"startCommand": "true", "planId": 7}, "planId must be a string"),
    ({"startCommand": "true", "envVars": {"A": "b"}}, "envVars must be a list"),
    ({"startCommand": "true", "envVars": [{"key": "1A", "value": "b"}]}, "is invalid"),
    ([1, 2], "must be a JSON object"),
])
def test_bad_bodies_are_400_with_the_error_shape(client, body, words):
    response = client.post(f"/services/{service_id(client, 'api-box')}/jobs", json=body)
    assert response.status_code == 400
    assert set(response.json()) == {"id", "message"} and words in response.json()["message"]


def test_bad_requests(client):
    sid = service_id(client, "api-box")
    cases = [
        (client.post(f"/services/{sid}/jobs", content=b"{not json", headers={"Content-Type": "application/json"}), 400, "not valid JSON"),
        (client.post(f"/services/{sid}/jobs", content=b"startCommand=x", headers={"Content-Type": "text/plain"}), 415, "Content-Type"),
        (client.get(f"/services/{sid}/jobs", params={"limit": 0}), 400, "limit"),
        (client.get(f"/services/{sid}/jobs", params={"limit": 101}), 400, "limit"),
        (client.get(f"/services/{sid}/jobs", params={"limit": "x"}), 400, "limit"),
        (client.get(f"/services/{sid}/jobs", params={"createdAfter": "yesterday"}), 400, "createdAfter"),
        (client.get(f"/services/{sid}/jobs", params={"status": "done"}), 400, "unknown status"),
        (client.get(f"/services/{sid}/jobs", params={"cursor": "job-nope"}), 400, "unknown cursor"),
        (client.get("/services/srv-00000000000000000000"), 404, "unknown service"),
        (client.get(f"/services/{sid}/jobs/job-00000000000000000000"), 404, "unknown job"),
        (client.get("/logs"), 400, "resource is required"),
        (client.get("/logs", params={"resource": "job-00000000000000000000"}), 404, "unknown job"),
        (client.get("/logs", params={"resource": "bld-x"}), 404, "unknown build"),
        (client.get("/logs", params={"resource": "bld-x", "direction": "sideways"}), 400, "direction"),
        (client.get("/logs", params={"resource": "bld-x", "startTime": "soon"}), 400, "startTime"),
        (client.delete(f"/services/{sid}"), 405, ""),
        (client.get("/nothing-here"), 404, ""),
    ]
    for response, status, words in cases:
        assert response.status_code == status, (response.request.url, response.text)
        assert set(response.json()) == {"id", "message"} and words in response.json()["message"]


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
    job = client.post(f"/services/{sid}/jobs", json={"startCommand": "for i in 1 2 3 4 5; do echo line-$i; done; echo ERROR bad >&2"}).json()
    wait_for_job(client, sid, job["id"], lambda j: j["status"] == "succeeded")
    backward = client.get("/logs", params={"resource": job["id"], "limit": 2}).json()
    assert backward["hasMore"] is True and len(backward["logs"]) == 2
    forward = client.get("/logs", params={"resource": job["id"], "direction": "forward", "limit": 100, "text": "line-*"}).json()
    assert [e["message"] for e in forward["logs"]] == [f"line-{i}" for i in range(1, 6)]
    errors = client.get("/logs", params={"resource": job["id"], "level": "error"}).json()
    assert [e["message"] for e in errors["logs"]] == ["ERROR bad"]
    regex = client.get("/logs", params={"resource": job["id"], "text": "/line-[24]$/", "limit": 100}).json()
    assert sorted(e["message"] for e in regex["logs"]) == ["line-2", "line-4"]
    old = client.get("/logs", params={"resource": job["id"], "startTime": "2000-01-01T00:00:00Z", "endTime": "2000-01-02T00:00:00Z"}).json()
    assert old["logs"] == [] and old["hasMore"] is False


def test_openapi_lists_exactly_the_served_routes(server):
    plane, handle = server
    document = httpx.get(handle.url.removesuffix("/v1") + "/openapi.json").json()
    documented = {(path, method.upper()) for path, ops in document["paths"].items() for method in ops}
    app = handle.server.config.app
    served = set()
    for route in app.routes:
        if not route.path.startswith("/v1"):
            continue
        path = route.path.removeprefix("/v1").replace("{service_id}", "{serviceId}").replace("{job_id}", "{jobId}")
        for method in getattr(route, "methods", None) or {"GET"}:
            if method != "HEAD":
                served.add((path, method))
    assert documented == served


def test_serve_in_the_foreground_stops_cleanly_on_ctrl_c(data_dir, tmp_path):
    import signal
    import socket
    import subprocess
    import sys

    from tests.conftest import SAMPLES

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    base = [sys.executable, "-m", "renderlocal", "--data-dir", str(data_dir), "--blueprint", str(SAMPLES)]
    token = subprocess.run(base + ["token"], capture_output=True, text=True, timeout=60).stdout.strip()
    assert token.startswith("rnd_") and (data_dir / "api-token").stat().st_mode & 0o777 == 0o600
    proc = subprocess.Popen(base + ["serve", "--port", str(port)], stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        response = None
        while time.monotonic() < deadline:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/v1/services", headers={"Authorization": f"Bearer {token}"})
                break
            except httpx.ConnectError:
                time.sleep(0.1)
        assert response is not None and response.status_code == 200
        assert {i["service"]["name"] for i in response.json()} >= {"shop-web", "nightly"}
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=15) == 0
        assert "Traceback" not in proc.stderr.read()
    finally:
        proc.kill()
