"""Render's published contract, operation by operation, against a live render-local.

Each test calls render-local as a Render client would (the paths, parameters and bodies
of Render's OpenAPI definition) and validates every answer against the schema that
definition gives for that operation and status code: renderlocal/api/render_openapi.json,
made by renderlocal/api/make_render_openapi.py from Render's published spec.

The schemas are checked with OpenAPI 3.0's rules (``OAS30Validator``): a ``null`` where
the spec does not say ``nullable`` fails, so does an enum value Render does not have, a
missing required key, or a date-time that is not RFC 3339. Keys Render does not define
(render-local's extensions, such as a job's ``costUSD``) are allowed, as the spec allows them.

A name a schema requires but never defines (``postgresDetail``'s ``project``) is not
asked for: no client generated from the spec has a field for it (see ``undefined_required``).

Two places where Render's spec cannot be satisfied as written are read as Render's
clients read them, by the object's own discriminator (see ``chosen_variant``):
``serviceDetails`` (a web service's details also match the private-service and
background-worker variants, so its ``oneOf`` fails for every web service) is checked
against the variant of the service's ``type``; ``envSpecificDetails`` against the one of
its ``runtime`` (docker: ``dockerDetails``, else ``nativeEnvironmentDetails``); an event's
``details`` (its variants without required keys match every object) against the variant
titled after the event's ``type``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from openapi_schema_validator import OAS30Validator, oas30_format_checker
from referencing import Registry
from referencing.jsonschema import DRAFT4

import renderlocal.api
from renderlocal.api.server import start_in_thread
from renderlocal.api.token import load_or_create_token
from renderlocal.executor.control import ControlPlane
from tests.conftest import close_running_plane

pytestmark = pytest.mark.docker

SPEC_PATH = Path(renderlocal.api.__file__).with_name("render_openapi.json")
SPEC = json.loads(SPEC_PATH.read_text())
SPEC_URI = "urn:render-openapi-subset"
REGISTRY = Registry().with_resource(SPEC_URI, DRAFT4.create_resource(SPEC))
ERROR_SCHEMA = {"$ref": f"{SPEC_URI}#/components/schemas/error"}

PAST = "2000-01-01T00:00:00Z"
FUTURE = "2100-01-01T00:00:00Z"

BLUEPRINT = """\
services:
  - type: web
    name: conf-web
    runtime: docker
    rootDir: web
    healthCheckPath: /healthz
    dockerCommand: httpd -f -p $PORT -h /www
  - type: pserv
    name: conf-private
    runtime: docker
    rootDir: app
    dockerCommand: sleep 3600
  - type: worker
    name: conf-worker
    runtime: docker
    rootDir: app
    dockerCommand: sleep 3600
    preDeployCommand: sleep 30
  - type: cron
    name: conf-cron
    runtime: docker
    rootDir: app
    schedule: "0 * * * *"
    dockerCommand: echo tick
  - type: keyvalue
    name: conf-kv
    ipAllowList: []
databases:
  - name: conf-db
"""
FILES = {
    "web/Dockerfile": "FROM busybox:1.36\nCOPY www /www\n",
    "web/www/index.html": "conformance\n",
    "web/www/healthz": "ok\n",
    "app/Dockerfile": "FROM busybox:1.36\n",
}
SERVICES = {"conf-web": "web_service", "conf-private": "private_service", "conf-worker": "background_worker",
            "conf-cron": "cron_job"}


# -- the contract: schemas of the fixture, and what a response must be --------------------------

def _pointer(*tokens: str) -> str:
    return "/" + "/".join(quote(t.replace("~", "~0").replace("/", "~1"), safe="~") for t in tokens)


def _walk_pointers(node, path: str, found: dict) -> None:
    if isinstance(node, dict):
        found[id(node)] = path
        for key, value in node.items():
            _walk_pointers(value, f"{path}/{quote(key.replace('~', '~0').replace('/', '~1'), safe='~')}", found)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            _walk_pointers(value, f"{path}/{index}", found)


POINTERS: dict[int, str] = {}  # id of every object of SPEC -> its JSON pointer (for oneOf variants inlined there)
_walk_pointers(SPEC, "", POINTERS)

SERVICE_DETAILS = {"static_site": "staticSiteDetails", "web_service": "webServiceDetails",
                   "private_service": "privateServiceDetails", "background_worker": "backgroundWorkerDetails",
                   "cron_job": "cronJobDetails"}
EVENT_TITLES = {"plan_changed": "Instance Type Changed"}  # the one event whose variant is not titled after it


def response_schema(method: str, path: str, status: int) -> dict | None:
    """The schema Render gives for ``status`` of the operation, as a reference into the fixture
    (None: the operation documents no body for that status, or not that status)."""
    responses = SPEC["paths"][path][method.lower()]["responses"]
    if str(status) not in responses:
        return None
    answer = responses[str(status)]
    pointer = _pointer("paths", path, method.lower(), "responses", str(status))
    if "$ref" in answer:  # a whole component: #/components/responses/NAME
        pointer = answer["$ref"][1:]
        answer = SPEC["components"]["responses"][pointer.rsplit("/", 1)[1]]
    if "application/json" not in answer.get("content", {}):
        return None
    return {"$ref": f"{SPEC_URI}#{pointer}/content/application~1json/schema"}


def _at(instance, path):
    for key in path:
        instance = instance[key]
    return instance


def chosen_variant(error, instance) -> dict | None:
    """For a failed ``oneOf`` that Render's clients resolve by a discriminator, the variant
    the object's own discriminator names (None: not such a ``oneOf``, or no discriminator)."""
    if error.validator != "oneOf" or not error.absolute_path:
        return None
    path = list(error.absolute_path)
    key, parent = path[-1], _at(instance, path[:-1])
    if not isinstance(parent, dict):
        return None
    wanted = None
    if key == "serviceDetails":
        wanted = SERVICE_DETAILS.get(parent.get("type"))
    elif key == "envSpecificDetails":
        wanted = "dockerDetails" if parent.get("runtime") in ("docker", "image") else "nativeEnvironmentDetails"
    elif key == "details" and isinstance(parent.get("type"), str):
        wanted = EVENT_TITLES.get(parent["type"], parent["type"].replace("_", " ").title().replace(" ", ""))
    if wanted is None:
        return None
    for variant in error.validator_value:
        ref = variant.get("$ref", "")
        title = str(variant.get("title", "")).replace(" ", "").lower()
        if ref.endswith(f"/{wanted}") or (title and title == wanted.replace(" ", "").lower()):
            return {"$ref": f"{SPEC_URI}{ref}"} if ref else {"$ref": f"{SPEC_URI}#{POINTERS[id(variant)]}"}
    return None


def undefined_required(error) -> bool:
    """A name Render's schema requires but never defines (``postgresDetail`` requires
    ``project`` and has no such property): no client generated from the spec reads it
    (Render's own CLI's client has no such field), so its absence is not an error."""
    if error.validator != "required" or not isinstance(error.schema, dict):
        return False
    missing = error.message.split("'")[1] if error.message.count("'") >= 2 else None
    return missing is not None and missing not in error.schema.get("properties", {})


def _dotted(path, root: str) -> str:
    text = root
    for key in path:
        text += f"[{key}]" if isinstance(key, int) else f".{key}"
    return text


def _errors(instance, schema: dict, prefix: tuple = ()) -> list[tuple[tuple, str]]:
    validator = OAS30Validator(schema, registry=REGISTRY, format_checker=oas30_format_checker)
    found = []
    for error in validator.iter_errors(instance):
        path = tuple(error.absolute_path)
        if undefined_required(error):
            continue
        variant = chosen_variant(error, instance)
        if variant is not None:
            found += _errors(_at(instance, path), variant, prefix + path)
        else:
            message = error.message if len(error.message) <= 400 else error.message[:400] + "..."
            found.append((prefix + path, message))
    return found


def problems(instance, schema: dict, root: str = "body") -> list[str]:
    """Every way ``instance`` breaks ``schema``: ``path: what is wrong``, one a line."""
    found = _errors(instance, schema)
    typed = {p for p, m in found if "is not of type" in m}  # a null: "None is not of type" says it
    lines = [f"{_dotted(p, root)}: {m}" for p, m in found if not (m.endswith("for not nullable") and p in typed)]
    return sorted(dict.fromkeys(lines))


def conforms(response: httpx.Response, method: str, path: str, status: int, root: str = "body"):
    """Assert the answer is ``status`` with a body Render's schema for it allows; return the body.

    A 4xx that the operation does not document is checked against Render's shared error
    schema (every error response of Render's spec has that body)."""
    where = f"{method} {response.request.url.path}" + (f"?{response.request.url.query.decode()}"
                                                        if response.request.url.query else "")
    assert response.status_code == status, (
        f"{response.status_code} on {where} (Render: {status}): {response.text[:500]}")
    schema = response_schema(method, path, status)
    if schema is None and status >= 400:
        schema = ERROR_SCHEMA
    if schema is None:
        return response.json() if response.content else None
    try:
        body = response.json()
    except ValueError:
        raise AssertionError(f"{where}: {status} without a JSON body: {response.text[:300]!r}") from None
    wrong = problems(body, schema, root)
    assert not wrong, f"{where}: {status} does not match Render's schema:\n  " + "\n  ".join(wrong)
    return body


def names_of(items: list, key: str = "service") -> set[str]:
    return {item[key]["name"] for item in items}


# -- a live render-local ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def server(engine, tmp_path_factory):
    root = tmp_path_factory.mktemp("conformance")
    for name, body in FILES.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(body)
    (root / "render.yaml").write_text(BLUEPRINT)
    plane = ControlPlane(root / "data", root / "render.yaml", engine=engine).start(loop=False)
    builds = [plane.build(name, wait=True) for name in ("conf-web", "conf-worker", "conf-cron")]
    assert [b.status for b in builds] == ["succeeded"] * 3, [b.failureReason for b in builds]
    handle = start_in_thread(plane, "127.0.0.1", 0)
    yield plane, handle
    handle.stop()
    close_running_plane(plane)


@pytest.fixture(scope="module")
def client(server):
    plane, handle = server
    token = load_or_create_token(plane.data_dir)
    with httpx.Client(base_url=handle.url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def ids(server):
    """Blueprint name -> id, from the control plane (not through the API under test)."""
    plane, _handle = server
    plane.refresh()
    found = {name: plane.get_service(name).id for name in SERVICES}
    found["conf-db"] = next(d.id for d in plane.state.list_databases() if d.name == "conf-db")
    found["conf-kv"] = next(k.id for k in plane.state.list_key_values() if k.name == "conf-kv")
    return found


@pytest.fixture(scope="module")
def owner_id(client, ids):
    """The workspace's id: the first of GET /owners, else the one the worker names."""
    response = client.get("/owners")
    if response.status_code == 200 and response.json():
        return response.json()[0]["owner"]["id"]
    return client.get(f"/services/{ids['conf-worker']}").json()["ownerId"]


def wait_for(client, url: str, done, seconds: float = 90):
    deadline = time.monotonic() + seconds
    body = None
    while time.monotonic() < deadline:
        body = client.get(url).json()
        if done(body):
            return body
        time.sleep(0.1)
    raise AssertionError(f"{url} never got there: {body}")


def job_url(ids, job_id: str, service: str = "conf-worker") -> str:
    return f"/services/{ids[service]}/jobs/{job_id}"


def new_job(client, ids, command: str, service: str = "conf-worker") -> httpx.Response:
    return client.post(f"/services/{ids[service]}/jobs", json={"startCommand": command})


@pytest.fixture(scope="module")
def finished_job(client, ids):
    """A job that printed to stdout and stderr and succeeded (its body from GET)."""
    job = new_job(client, ids, "echo hello-conformance; echo oops-conformance >&2").json()
    return wait_for(client, job_url(ids, job["id"]), lambda j: j.get("status") == "succeeded" and j.get("finishedAt"))


@pytest.fixture(scope="module")
def paced_job(client, ids):
    """A job whose three lines have three timestamps (pages of one line each)."""
    job = new_job(client, ids, "echo line-1; sleep 0.3; echo line-2; sleep 0.3; echo line-3").json()
    return wait_for(client, job_url(ids, job["id"]), lambda j: j.get("status") == "succeeded" and j.get("finishedAt"))


@pytest.fixture(scope="module")
def web_deploy(client, ids):
    """POST /services/{web}/deploys (its response), then the deploy once live."""
    created = client.post(f"/services/{ids['conf-web']}/deploys", json={"clearCache": "do_not_clear"})
    assert created.status_code == 201, created.text
    url = f"/services/{ids['conf-web']}/deploys/{created.json()['id']}"
    live = wait_for(client, url, lambda d: d.get("status") in ("live", "update_failed", "build_failed", "canceled",
                                                                 "pre_deploy_failed"))
    assert live["status"] == "live", live
    return created, live


@pytest.fixture(scope="module")
def suspend_cycle(client, ids, web_deploy):
    """Suspend the live web service, look at it, resume it, wait for it to be live again."""
    sid = ids["conf-web"]
    suspended = client.post(f"/services/{sid}/suspend")
    while_suspended = client.get(f"/services/{sid}")
    listed_suspended = client.get("/services", params={"suspended": "suspended"})
    resumed = client.post(f"/services/{sid}/resume")
    after = client.get(f"/services/{sid}")
    wait_for(client, f"/services/{sid}/deploys", lambda items: items and items[0]["deploy"].get("status") in (
        "live", "update_failed", "canceled", "pre_deploy_failed", "build_failed"))
    return {"suspend": suspended, "while": while_suspended, "listed": listed_suspended, "resume": resumed,
            "after": after}


# -- GET /services -----------------------------------------------------------------------------------

def test_list_services(client, ids):
    listed = conforms(client.get("/services", params={"limit": 100}), "GET", "/services", 200)
    assert names_of(listed) == set(SERVICES)
    assert {i["service"]["name"]: i["service"]["type"] for i in listed} == SERVICES
    assert all(isinstance(i["cursor"], str) and i["cursor"] for i in listed)


@pytest.mark.parametrize("name", list(SERVICES))
def test_retrieve_service(client, ids, name):
    service = conforms(client.get(f"/services/{ids[name]}"), "GET", "/services/{serviceId}", 200, root="service")
    assert (service["id"], service["name"], service["type"]) == (ids[name], name, SERVICES[name])


def test_retrieve_service_unknown_is_404(client):
    conforms(client.get("/services/srv-d0000000000000000000"), "GET", "/services/{serviceId}", 404)


# Each filter with the services it must leave (OWNER: the workspace's id).
SERVICE_FILTERS = {
    "name": ({"name": "conf-web"}, {"conf-web"}),
    "name-several": ({"name": "conf-web,conf-cron"}, {"conf-web", "conf-cron"}),
    "name-none": ({"name": "no-such-service"}, set()),
    "type": ({"type": "cron_job"}, {"conf-cron"}),
    "type-several": ({"type": "background_worker,private_service"}, {"conf-worker", "conf-private"}),
    "type-none": ({"type": "static_site"}, set()),
    "suspended-not": ({"suspended": "not_suspended"}, set(SERVICES)),
    "suspended-both": ({"suspended": "suspended,not_suspended"}, set(SERVICES)),
    "createdBefore-past": ({"createdBefore": PAST}, set()),
    "createdBefore-future": ({"createdBefore": FUTURE}, set(SERVICES)),
    "createdAfter-past": ({"createdAfter": PAST}, set(SERVICES)),
    "createdAfter-future": ({"createdAfter": FUTURE}, set()),
    "updatedBefore-past": ({"updatedBefore": PAST}, set()),
    "updatedBefore-future": ({"updatedBefore": FUTURE}, set(SERVICES)),
    "updatedAfter-past": ({"updatedAfter": PAST}, set(SERVICES)),
    "updatedAfter-future": ({"updatedAfter": FUTURE}, set()),
    "ownerId": ({"ownerId": "OWNER"}, set(SERVICES)),
    "ownerId-other": ({"ownerId": "tea-d0000000000000000000"}, set()),
    "name-and-type": ({"name": "conf-web,conf-worker", "type": "background_worker"}, {"conf-worker"}),
}


@pytest.mark.parametrize("case", list(SERVICE_FILTERS))
def test_list_services_filter(client, owner_id, case):
    params, expected = SERVICE_FILTERS[case]
    params = {k: (owner_id if v == "OWNER" else v) for k, v in params.items()} | {"limit": 100}
    listed = conforms(client.get("/services", params=params), "GET", "/services", 200)
    assert names_of(listed) == expected, f"GET /services {params}: {sorted(names_of(listed))}, not {sorted(expected)}"


def test_list_services_filter_created_at_a_services_own_time(client, ids):
    """createdAfter/createdBefore compare with createdAt itself, not only far past or future."""
    created = client.get(f"/services/{ids['conf-web']}").json()["createdAt"]
    before = conforms(client.get("/services", params={"createdBefore": created}), "GET", "/services", 200)
    after = conforms(client.get("/services", params={"createdAfter": created}), "GET", "/services", 200)
    assert all(i["service"]["createdAt"] <= created for i in before), "createdBefore kept a later service"
    assert all(i["service"]["createdAt"] >= created for i in after), "createdAfter kept an earlier service"


def test_list_services_limit_and_cursor(client):
    seen, cursor = [], None
    for _ in range(len(SERVICES) + 1):
        params = {"limit": 1} | ({"cursor": cursor} if cursor else {})
        page = conforms(client.get("/services", params=params), "GET", "/services", 200)
        if not page:
            break
        assert len(page) == 1, f"limit=1 gave {len(page)} services"
        seen.append(page[0]["service"]["name"])
        cursor = page[0]["cursor"]
    assert sorted(seen) == sorted(SERVICES), f"walking with limit=1 and cursor gave {seen}"


INVALID_SERVICE_FILTERS = {
    "type": {"type": "lambda"},
    "suspended": {"suspended": "maybe"},
    "createdBefore": {"createdBefore": "yesterday"},
    "createdAfter": {"createdAfter": "2026-13-45"},
    "updatedBefore": {"updatedBefore": "soon"},
    "updatedAfter": {"updatedAfter": "later"},
    "limit-0": {"limit": 0},
    "limit-101": {"limit": 101},
    "limit-word": {"limit": "x"},
    "cursor": {"cursor": "srv-nope"},
}


@pytest.mark.parametrize("case", list(INVALID_SERVICE_FILTERS))
def test_list_services_invalid_filter_is_400(client, case):
    conforms(client.get("/services", params=INVALID_SERVICE_FILTERS[case]), "GET", "/services", 400)


def test_request_without_token_is_401(server):
    _plane, handle = server
    conforms(httpx.get(handle.url + "/services"), "GET", "/services", 401)


# -- jobs -----------------------------------------------------------------------------------------------

JOB = "/services/{serviceId}/jobs/{jobId}"


def test_create_job_pending(client, ids):
    job = conforms(new_job(client, ids, "echo created"), "POST", "/services/{serviceId}/jobs", 201, root="job")
    assert job["status"] == "pending" and job["serviceId"] == ids["conf-worker"]
    assert job["startCommand"] == "echo created"


def test_create_job_with_plan(client, ids):
    response = client.post(f"/services/{ids['conf-worker']}/jobs",
                           json={"startCommand": "echo planned", "planId": "plan-srv-010"})
    job = conforms(response, "POST", "/services/{serviceId}/jobs", 201, root="job")
    assert job["planId"] == "plan-srv-010"


@pytest.mark.parametrize("body", [{}, {"startCommand": 5}, {"startCommand": "true", "planId": "plan-srv-999"}],
                         ids=["no-startCommand", "startCommand-not-a-string", "unknown-planId"])
def test_create_job_bad_body_is_400(client, ids, body):
    conforms(client.post(f"/services/{ids['conf-worker']}/jobs", json=body), "POST", "/services/{serviceId}/jobs", 400)


def test_create_job_unknown_service_is_404(client):
    conforms(client.post("/services/srv-d0000000000000000000/jobs", json={"startCommand": "true"}),
             "POST", "/services/{serviceId}/jobs", 404)


def test_retrieve_job_pending(client, ids):
    job = new_job(client, ids, "echo soon").json()
    body = conforms(client.get(job_url(ids, job["id"])), "GET", JOB, 200, root="job")
    assert body["id"] == job["id"] and body["status"] in ("pending", "running", "succeeded")


def test_retrieve_job_running(client, ids):
    job = new_job(client, ids, "sleep 60").json()
    try:
        wait_for(client, job_url(ids, job["id"]), lambda j: j.get("status") == "running")
        body = conforms(client.get(job_url(ids, job["id"])), "GET", JOB, 200, root="job")
        assert body["status"] == "running" and body.get("startedAt")
    finally:
        client.post(f"{job_url(ids, job['id'])}/cancel")


def test_retrieve_job_succeeded(client, ids, finished_job):
    body = conforms(client.get(job_url(ids, finished_job["id"])), "GET", JOB, 200, root="job")
    assert body["status"] == "succeeded" and body.get("startedAt") and body.get("finishedAt")


def test_retrieve_job_failed(client, ids):
    job = new_job(client, ids, "exit 3").json()
    wait_for(client, job_url(ids, job["id"]), lambda j: j.get("status") == "failed")
    body = conforms(client.get(job_url(ids, job["id"])), "GET", JOB, 200, root="job")
    assert body["status"] == "failed"


def test_retrieve_job_unknown_is_404(client, ids):
    conforms(client.get(job_url(ids, "job-d0000000000000000000")), "GET", JOB, 404)


def test_cancel_job(client, ids):
    job = new_job(client, ids, "sleep 60").json()
    wait_for(client, job_url(ids, job["id"]), lambda j: j.get("status") == "running")
    conforms(client.post(f"{job_url(ids, job['id'])}/cancel"), "POST", JOB + "/cancel", 200, root="job")
    wait_for(client, job_url(ids, job["id"]), lambda j: j.get("finishedAt"))
    body = conforms(client.get(job_url(ids, job["id"])), "GET", JOB, 200, root="job")
    assert body["status"] == "canceled"


def test_cancel_job_already_finished_is_400(client, ids, finished_job):
    conforms(client.post(f"{job_url(ids, finished_job['id'])}/cancel"), "POST", JOB + "/cancel", 400)


def test_cancel_job_unknown_is_404(client, ids):
    conforms(client.post(f"{job_url(ids, 'job-d0000000000000000000')}/cancel"), "POST", JOB + "/cancel", 404)


def test_list_jobs(client, ids, finished_job):
    listed = conforms(client.get(f"/services/{ids['conf-worker']}/jobs", params={"limit": 100}),
                      "GET", "/services/{serviceId}/jobs", 200)
    assert finished_job["id"] in [i["job"]["id"] for i in listed]
    assert {i["job"]["serviceId"] for i in listed} == {ids["conf-worker"]}


def test_list_jobs_limit_and_cursor(client, ids, finished_job):
    sid = ids["conf-worker"]
    first = conforms(client.get(f"/services/{sid}/jobs", params={"limit": 1}), "GET", "/services/{serviceId}/jobs", 200)
    assert len(first) == 1
    second = conforms(client.get(f"/services/{sid}/jobs", params={"limit": 1, "cursor": first[0]["cursor"]}),
                      "GET", "/services/{serviceId}/jobs", 200)
    assert len(second) == 1 and second[0]["job"]["id"] != first[0]["job"]["id"]
    assert second[0]["job"]["createdAt"] <= first[0]["job"]["createdAt"]  # newest first


JOB_FILTERS = {
    "status": ({"status": "succeeded"}, lambda j: j["status"] == "succeeded"),
    "status-several": ({"status": "failed,canceled"}, lambda j: j["status"] in ("failed", "canceled")),
    "createdAfter-future": ({"createdAfter": FUTURE}, None),
    "createdBefore-past": ({"createdBefore": PAST}, None),
    "startedBefore-past": ({"startedBefore": PAST}, None),
    "startedAfter-future": ({"startedAfter": FUTURE}, None),
    "finishedBefore-past": ({"finishedBefore": PAST}, None),
    "finishedAfter-future": ({"finishedAfter": FUTURE}, None),
    "finishedAfter-past": ({"finishedAfter": PAST}, lambda j: j.get("finishedAt")),
}


@pytest.mark.parametrize("case", list(JOB_FILTERS))
def test_list_jobs_filter(client, ids, finished_job, case):
    params, keep = JOB_FILTERS[case]
    listed = conforms(client.get(f"/services/{ids['conf-worker']}/jobs", params=params | {"limit": 100}),
                      "GET", "/services/{serviceId}/jobs", 200)
    if keep is None:
        assert listed == [], f"{params} kept {[i['job']['id'] for i in listed]}"
    else:
        assert listed and all(keep(i["job"]) for i in listed), [i["job"] for i in listed]


@pytest.mark.parametrize("params", [{"status": "done"}, {"limit": 0}, {"createdAfter": "yesterday"},
                                    {"cursor": "job-nope"}], ids=["status", "limit", "createdAfter", "cursor"])
def test_list_jobs_invalid_filter_is_400(client, ids, params):
    conforms(client.get(f"/services/{ids['conf-worker']}/jobs", params=params), "GET", "/services/{serviceId}/jobs", 400)


def test_list_jobs_unknown_service_is_404(client):
    conforms(client.get("/services/srv-d0000000000000000000/jobs"), "GET", "/services/{serviceId}/jobs", 404)


# -- deploys ---------------------------------------------------------------------------------------------

DEPLOY = "/services/{serviceId}/deploys/{deployId}"


def test_create_deploy(web_deploy):
    created, _live = web_deploy
    deploy = conforms(created, "POST", "/services/{serviceId}/deploys", 201, root="deploy")
    assert deploy["id"].startswith("dep-")


def test_retrieve_deploy_live(client, ids, web_deploy):
    _created, live = web_deploy
    deploy = conforms(client.get(f"/services/{ids['conf-web']}/deploys/{live['id']}"), "GET", DEPLOY, 200, root="deploy")
    assert deploy["status"] == "live"


def test_retrieve_deploy_unknown_is_404(client, ids):
    conforms(client.get(f"/services/{ids['conf-web']}/deploys/dep-d0000000000000000000"), "GET", DEPLOY, 404)


def test_list_deploys(client, ids, web_deploy):
    listed = conforms(client.get(f"/services/{ids['conf-web']}/deploys"), "GET", "/services/{serviceId}/deploys", 200)
    assert web_deploy[1]["id"] in [i["deploy"]["id"] for i in listed]
    assert all(i.get("cursor") for i in listed)


DEPLOY_FILTERS = {
    "status-live": ({"status": "live"}, lambda d: d["status"] == "live"),
    "status-other": ({"status": "build_failed"}, None),
    "createdBefore-past": ({"createdBefore": PAST}, None),
    "createdAfter-past": ({"createdAfter": PAST}, lambda d: True),
    "createdAfter-future": ({"createdAfter": FUTURE}, None),
    "updatedBefore-past": ({"updatedBefore": PAST}, None),
    "updatedAfter-future": ({"updatedAfter": FUTURE}, None),
    "finishedBefore-past": ({"finishedBefore": PAST}, None),
    "finishedAfter-future": ({"finishedAfter": FUTURE}, None),
    "limit": ({"limit": 1}, lambda d: True),
}


@pytest.mark.parametrize("case", list(DEPLOY_FILTERS))
def test_list_deploys_filter(client, ids, web_deploy, case):
    params, keep = DEPLOY_FILTERS[case]
    listed = conforms(client.get(f"/services/{ids['conf-web']}/deploys", params=params),
                      "GET", "/services/{serviceId}/deploys", 200)
    if keep is None:
        assert listed == [], f"{params} kept {[i['deploy']['id'] for i in listed]}"
    else:
        assert listed and all(keep(i["deploy"]) for i in listed), [i["deploy"] for i in listed]
        assert len(listed) <= params.get("limit", 100)


@pytest.mark.parametrize("params", [{"status": "done"}, {"limit": 0}, {"createdAfter": "yesterday"},
                                    {"cursor": "dep-nope"}], ids=["status", "limit", "createdAfter", "cursor"])
def test_list_deploys_invalid_filter_is_400(client, ids, params):
    # Render documents no 400 for list-deploys: the body is checked against its error schema
    conforms(client.get(f"/services/{ids['conf-web']}/deploys", params=params), "GET", "/services/{serviceId}/deploys",
             400)


def test_cancel_deploy(client, ids):
    """The worker's pre-deploy command sleeps 30 s: its deploy is canceled before it goes live."""
    sid = ids["conf-worker"]
    created = conforms(client.post(f"/services/{sid}/deploys", json={"clearCache": "do_not_clear"}),
                       "POST", "/services/{serviceId}/deploys", 201, root="deploy")
    canceled = conforms(client.post(f"/services/{sid}/deploys/{created['id']}/cancel"),
                        "POST", DEPLOY + "/cancel", 200, root="deploy")
    assert canceled["id"] == created["id"]
    done = wait_for(client, f"/services/{sid}/deploys/{created['id']}", lambda d: d.get("status") not in (
        "created", "queued", "build_in_progress", "update_in_progress", "pre_deploy_in_progress"))
    assert done["status"] == "canceled"
    conforms(client.get(f"/services/{sid}/deploys/{created['id']}"), "GET", DEPLOY, 200, root="deploy")


def test_cancel_deploy_unknown_is_404(client, ids):
    conforms(client.post(f"/services/{ids['conf-worker']}/deploys/dep-d0000000000000000000/cancel"),
             "POST", DEPLOY + "/cancel", 404)


# -- suspend and resume -------------------------------------------------------------------------------

def test_suspend_service(suspend_cycle, ids):
    conforms(suspend_cycle["suspend"], "POST", "/services/{serviceId}/suspend", 202)
    service = conforms(suspend_cycle["while"], "GET", "/services/{serviceId}", 200, root="service")
    assert service["suspended"] == "suspended" and "user" in service["suspenders"]
    listed = conforms(suspend_cycle["listed"], "GET", "/services", 200)
    assert names_of(listed) == {"conf-web"}, "GET /services?suspended=suspended"


def test_resume_service(suspend_cycle):
    conforms(suspend_cycle["resume"], "POST", "/services/{serviceId}/resume", 202)
    service = conforms(suspend_cycle["after"], "GET", "/services/{serviceId}", 200, root="service")
    assert service["suspended"] == "not_suspended" and service["suspenders"] == []


def test_suspend_and_resume_a_cron_job(client, ids):
    """Render suspends cron jobs too (a suspended one does not run on its schedule)."""
    sid = ids["conf-cron"]
    try:
        conforms(client.post(f"/services/{sid}/suspend"), "POST", "/services/{serviceId}/suspend", 202)
        service = conforms(client.get(f"/services/{sid}"), "GET", "/services/{serviceId}", 200, root="service")
        assert service["suspended"] == "suspended"
    finally:
        resumed = client.post(f"/services/{sid}/resume")
    conforms(resumed, "POST", "/services/{serviceId}/resume", 202)
    assert client.get(f"/services/{sid}").json()["suspended"] == "not_suspended"


def test_suspend_unknown_service_is_404(client):
    conforms(client.post("/services/srv-d0000000000000000000/suspend"), "POST", "/services/{serviceId}/suspend", 404)


# -- events ------------------------------------------------------------------------------------------------

EVENTS = "/services/{serviceId}/events"


def events_of(client, sid: str, **params) -> list:
    return conforms(client.get(f"/services/{sid}/events", params=params | {"limit": 100}), "GET", EVENTS, 200)


def test_list_events_of_a_deployed_service(client, ids, web_deploy, suspend_cycle):
    listed = events_of(client, ids["conf-web"])
    kinds = {i["event"]["type"] for i in listed}
    assert {"build_started", "build_ended", "deploy_started", "deploy_ended", "service_suspended",
            "service_resumed"} <= kinds, sorted(kinds)
    assert {i["event"]["serviceId"] for i in listed} == {ids["conf-web"]}
    ended = [i["event"] for i in listed if i["event"]["type"] == "deploy_ended"]
    assert web_deploy[1]["id"] in [e["details"].get("deployId") for e in ended]


def test_list_events_of_jobs(client, ids, finished_job):
    listed = events_of(client, ids["conf-worker"], type="job_run_ended")
    ended = {i["event"]["details"].get("jobId"): i["event"]["details"].get("status") for i in listed}
    assert ended.get(finished_job["id"]) == "succeeded", ended


def test_list_events_of_a_cron_run(client, server, ids):
    plane, handle = server
    local = handle.url.removesuffix("/v1") + "/local"
    run = client.post(f"{local}/services/{ids['conf-cron']}/cron-runs")
    assert run.status_code == 201, run.text
    wait_for(client, f"{local}/jobs/{run.json()['id']}", lambda j: j.get("finishedAt"))
    listed = events_of(client, ids["conf-cron"])
    kinds = {i["event"]["type"] for i in listed}
    assert {"cron_job_run_started", "cron_job_run_ended"} <= kinds, sorted(kinds)


@pytest.mark.parametrize("params,kinds", [
    ({"type": "deploy_ended"}, {"deploy_ended"}),
    ({"type": "service_suspended,service_resumed"}, {"service_suspended", "service_resumed"}),
], ids=["type", "type-several"])
def test_list_events_filter_type(client, ids, suspend_cycle, params, kinds):
    listed = events_of(client, ids["conf-web"], **params)
    assert {i["event"]["type"] for i in listed} == kinds


@pytest.mark.parametrize("params", [{"startTime": FUTURE}, {"endTime": PAST}], ids=["startTime", "endTime"])
def test_list_events_time_window(client, ids, web_deploy, params):
    assert events_of(client, ids["conf-web"], **params) == []


def test_list_events_limit_and_cursor(client, ids, web_deploy):
    sid = ids["conf-web"]
    first = conforms(client.get(f"/services/{sid}/events", params={"limit": 1}), "GET", EVENTS, 200)
    assert len(first) == 1
    second = conforms(client.get(f"/services/{sid}/events", params={"limit": 1, "cursor": first[0]["cursor"]}),
                      "GET", EVENTS, 200)
    assert len(second) == 1 and second[0]["event"]["id"] != first[0]["event"]["id"]


@pytest.mark.parametrize("params", [{"type": "coffee_break"}, {"startTime": "soon"}, {"limit": 0}],
                         ids=["type", "startTime", "limit"])
def test_list_events_invalid_filter_is_400(client, ids, params):
    conforms(client.get(f"/services/{ids['conf-web']}/events", params=params), "GET", EVENTS, 400)


def test_list_events_unknown_service_is_404(client):
    conforms(client.get("/services/srv-d0000000000000000000/events"), "GET", EVENTS, 404)


# -- owners ------------------------------------------------------------------------------------------------

def test_list_owners(client, ids):
    listed = conforms(client.get("/owners"), "GET", "/owners", 200)
    assert len(listed) >= 1
    service_owner = client.get(f"/services/{ids['conf-worker']}").json()["ownerId"]
    assert service_owner in [i["owner"]["id"] for i in listed], "a service's ownerId is one of GET /owners"


def test_list_owners_filter(client):
    owners = conforms(client.get("/owners"), "GET", "/owners", 200)
    owner = owners[0]["owner"]
    for params, expected in (({"name": owner["name"]}, [owner["id"]]), ({"name": "nobody-at-all"}, []),
                             ({"email": owner["email"]}, [owner["id"]]), ({"email": "nobody@example.com"}, [])):
        listed = conforms(client.get("/owners", params=params), "GET", "/owners", 200)
        assert [i["owner"]["id"] for i in listed] == expected, params


def test_retrieve_owner(client, owner_id):
    owner = conforms(client.get(f"/owners/{owner_id}"), "GET", "/owners/{ownerId}", 200, root="owner")
    assert owner["id"] == owner_id


def test_retrieve_owner_unknown_is_404(client):
    conforms(client.get("/owners/tea-d0000000000000000000"), "GET", "/owners/{ownerId}", 404)


def test_data_stores_owner_is_the_services_owner(client, ids):
    service_owner = client.get(f"/services/{ids['conf-worker']}").json()["ownerId"]
    assert client.get(f"/postgres/{ids['conf-db']}").json()["owner"]["id"] == service_owner
    assert client.get(f"/key-value/{ids['conf-kv']}").json()["owner"]["id"] == service_owner


# -- logs ----------------------------------------------------------------------------------------------------

def test_list_logs_of_a_job(client, owner_id, finished_job):
    params = {"ownerId": owner_id, "resource": finished_job["id"], "direction": "forward"}
    page = conforms(client.get("/logs", params=params), "GET", "/logs", 200)
    assert sorted(entry["message"] for entry in page["logs"]) == ["hello-conformance", "oops-conformance"]
    assert page["hasMore"] is False


@pytest.mark.parametrize("direction,order,next_key,bound", [
    ("backward", ["line-3", "line-2", "line-1"], "nextEndTime", "endTime"),
    ("forward", ["line-1", "line-2", "line-3"], "nextStartTime", "startTime"),
])
def test_list_logs_pages(client, owner_id, paced_job, direction, order, next_key, bound):
    """limit=1 pages, each resumed at the page's next time, give every line once, in order."""
    params = {"ownerId": owner_id, "resource": paced_job["id"], "limit": 1, "direction": direction}
    seen, more = [], {}
    for _ in range(len(order) + 1):
        page = conforms(client.get("/logs", params=params | more), "GET", "/logs", 200)
        assert len(page["logs"]) <= 1, f"limit=1 gave {len(page['logs'])} lines"
        seen += [entry["message"] for entry in page["logs"]]
        if not page["hasMore"]:
            break
        more = {bound: page[next_key]}
    assert seen == order


def test_list_logs_in_a_time_window(client, owner_id, finished_job):
    params = {"ownerId": owner_id, "resource": finished_job["id"], "startTime": finished_job["createdAt"],
              "endTime": FUTURE}
    page = conforms(client.get("/logs", params=params), "GET", "/logs", 200)
    assert len(page["logs"]) == 2


@pytest.mark.parametrize("params,kept", [({"level": "error"}, ["oops-conformance"]), ({"type": "app"}, None),
                                         ({"text": "hello*"}, ["hello-conformance"])], ids=["level", "type", "text"])
def test_list_logs_filter(client, owner_id, finished_job, params, kept):
    page = conforms(client.get("/logs", params={"ownerId": owner_id, "resource": finished_job["id"]} | params),
                    "GET", "/logs", 200)
    messages = sorted(entry["message"] for entry in page["logs"])
    assert messages == (kept or ["hello-conformance", "oops-conformance"])


def test_list_logs_without_resource_is_400(client, owner_id):
    conforms(client.get("/logs", params={"ownerId": owner_id}), "GET", "/logs", 400)


def test_list_logs_invalid_direction_is_400(client, owner_id, finished_job):
    conforms(client.get("/logs", params={"ownerId": owner_id, "resource": finished_job["id"], "direction": "up"}),
             "GET", "/logs", 400)


def test_list_logs_unknown_resource_is_404(client, owner_id):
    conforms(client.get("/logs", params={"ownerId": owner_id, "resource": "job-d0000000000000000000"}),
             "GET", "/logs", 404)


@pytest.mark.parametrize("label,expected", [("level", {"info", "error"}), ("type", {"app"}), ("instance", None)])
def test_list_logs_values(client, owner_id, finished_job, label, expected):
    values = conforms(client.get("/logs/values", params={"ownerId": owner_id, "resource": finished_job["id"],
                                                         "label": label}), "GET", "/logs/values", 200)
    if expected is None:  # an instance: whatever render-local names the job's one instance
        assert len(values) == 1, values
    else:
        assert set(values) == expected, values


@pytest.mark.parametrize("params", [{"label": "colour"}, {}], ids=["unknown-label", "no-label"])
def test_list_logs_values_invalid_is_400(client, owner_id, finished_job, params):
    conforms(client.get("/logs/values", params={"ownerId": owner_id, "resource": finished_job["id"]} | params),
             "GET", "/logs/values", 400)


# -- log streams -----------------------------------------------------------------------------------------------

OWNER_STREAM = "/logs/streams/owner/{ownerId}"
RESOURCE_STREAM = "/logs/streams/resource/{resourceId}"
STREAM_ENDPOINT = "127.0.0.1:6514"


def test_update_owner_log_stream(client, owner_id):
    body = {"endpoint": STREAM_ENDPOINT, "token": "conformance-token", "preview": "send"}
    try:
        stream = conforms(client.put(f"/logs/streams/owner/{owner_id}", json=body), "PUT", OWNER_STREAM, 200)
        assert (stream.get("ownerId"), stream.get("endpoint"), stream.get("preview")) == (
            owner_id, STREAM_ENDPOINT, "send")
    finally:
        client.delete(f"/logs/streams/owner/{owner_id}")


def test_retrieve_owner_log_stream(client, owner_id):
    client.put(f"/logs/streams/owner/{owner_id}", json={"endpoint": STREAM_ENDPOINT, "preview": "drop"})
    try:
        stream = conforms(client.get(f"/logs/streams/owner/{owner_id}"), "GET", OWNER_STREAM, 200)
        assert (stream.get("ownerId"), stream.get("endpoint"), stream.get("preview")) == (
            owner_id, STREAM_ENDPOINT, "drop")
    finally:
        client.delete(f"/logs/streams/owner/{owner_id}")


def test_delete_owner_log_stream(client, owner_id):
    client.put(f"/logs/streams/owner/{owner_id}", json={"endpoint": STREAM_ENDPOINT, "preview": "send"})
    conforms(client.delete(f"/logs/streams/owner/{owner_id}"), "DELETE", OWNER_STREAM, 204)
    stream = conforms(client.get(f"/logs/streams/owner/{owner_id}"), "GET", OWNER_STREAM, 200)
    assert not stream.get("endpoint"), stream


def test_update_owner_log_stream_bad_body_is_400(client, owner_id):
    conforms(client.put(f"/logs/streams/owner/{owner_id}", json={"endpoint": STREAM_ENDPOINT, "preview": "maybe"}),
             "PUT", OWNER_STREAM, 400)


@pytest.fixture
def owner_stream(client, owner_id):
    """The workspace's log stream set (Render's PUT), for the resource overrides' tests; removed after."""
    response = client.put(f"/logs/streams/owner/{owner_id}", json={"endpoint": STREAM_ENDPOINT, "preview": "send"})
    assert response.status_code == 200, f"setting the workspace's stream first: {response.status_code} {response.text}"
    yield
    client.delete(f"/logs/streams/owner/{owner_id}")


def test_update_resource_log_stream(client, ids, owner_stream):
    sid = ids["conf-worker"]
    try:
        stream = conforms(client.put(f"/logs/streams/resource/{sid}", json={"setting": "drop"}),
                          "PUT", RESOURCE_STREAM, 200)
        assert (stream.get("resourceId"), stream.get("setting")) == (sid, "drop")
    finally:
        client.delete(f"/logs/streams/resource/{sid}")


def test_retrieve_resource_log_stream(client, ids, owner_stream):
    sid = ids["conf-cron"]
    client.put(f"/logs/streams/resource/{sid}", json={"setting": "send", "endpoint": STREAM_ENDPOINT})
    try:
        stream = conforms(client.get(f"/logs/streams/resource/{sid}"), "GET", RESOURCE_STREAM, 200)
        assert (stream.get("resourceId"), stream.get("setting"), stream.get("endpoint")) == (
            sid, "send", STREAM_ENDPOINT)
    finally:
        client.delete(f"/logs/streams/resource/{sid}")


def test_list_resource_log_streams(client, ids, owner_id, owner_stream):
    sid = ids["conf-worker"]
    client.put(f"/logs/streams/resource/{sid}", json={"setting": "drop"})
    try:
        listed = conforms(client.get("/logs/streams/resource", params={"ownerId": owner_id}),
                          "GET", "/logs/streams/resource", 200)
        assert sid in [s.get("resourceId") for s in listed]
        only = conforms(client.get("/logs/streams/resource", params={"ownerId": owner_id, "resourceId": ids["conf-web"]}),
                        "GET", "/logs/streams/resource", 200)
        assert sid not in [s.get("resourceId") for s in only], "the resourceId filter"
        dropped = conforms(client.get("/logs/streams/resource", params={"ownerId": owner_id, "setting": "send"}),
                           "GET", "/logs/streams/resource", 200)
        assert sid not in [s.get("resourceId") for s in dropped], "the setting filter"
    finally:
        client.delete(f"/logs/streams/resource/{sid}")


def test_delete_resource_log_stream(client, ids, owner_id, owner_stream):
    sid = ids["conf-worker"]
    client.put(f"/logs/streams/resource/{sid}", json={"setting": "drop"})
    conforms(client.delete(f"/logs/streams/resource/{sid}"), "DELETE", RESOURCE_STREAM, 204)
    listed = conforms(client.get("/logs/streams/resource", params={"ownerId": owner_id}),
                      "GET", "/logs/streams/resource", 200)
    assert sid not in [s.get("resourceId") for s in listed]


@pytest.mark.parametrize("body", [{"setting": "maybe"}, {}], ids=["unknown-setting", "no-setting"])
def test_update_resource_log_stream_bad_body_is_400(client, ids, owner_stream, body):
    conforms(client.put(f"/logs/streams/resource/{ids['conf-worker']}", json=body), "PUT", RESOURCE_STREAM, 400)


# -- Postgres and Key Value --------------------------------------------------------------------------------------

DATA_STORES = {  # list path, item path, key of the list's items, blueprint name
    "postgres": ("/postgres", "/postgres/{postgresId}", "postgres", "conf-db"),
    "key-value": ("/key-value", "/key-value/{keyValueId}", "keyValue", "conf-kv"),
}


@pytest.mark.parametrize("kind", list(DATA_STORES))
def test_list_data_stores(client, ids, kind):
    path, _item, key, name = DATA_STORES[kind]
    listed = conforms(client.get(path), "GET", path, 200)
    assert [i[key]["id"] for i in listed] == [ids[name]] and all(i.get("cursor") for i in listed)


STORE_FILTERS = {
    "name": ({"name": "NAME"}, True),
    "name-other": ({"name": "no-such-store"}, False),
    "createdBefore-past": ({"createdBefore": PAST}, False),
    "createdAfter-past": ({"createdAfter": PAST}, True),
    "createdAfter-future": ({"createdAfter": FUTURE}, False),
    "updatedBefore-past": ({"updatedBefore": PAST}, False),
    "updatedAfter-future": ({"updatedAfter": FUTURE}, False),
    "ownerId": ({"ownerId": "OWNER"}, True),
    "ownerId-other": ({"ownerId": "tea-d0000000000000000000"}, False),
    "region": ({"region": "frankfurt"}, False),
    "region-oregon-and-ohio": ({"region": "oregon,ohio"}, True),
}


@pytest.mark.parametrize("case", list(STORE_FILTERS))
@pytest.mark.parametrize("kind", list(DATA_STORES))
def test_list_data_stores_filter(client, ids, owner_id, kind, case):
    path, _item, key, name = DATA_STORES[kind]
    params, kept = STORE_FILTERS[case]
    params = {k: {"NAME": name, "OWNER": owner_id}.get(v, v) for k, v in params.items()}
    listed = conforms(client.get(path, params=params), "GET", path, 200)
    assert [i[key]["id"] for i in listed] == ([ids[name]] if kept else []), f"GET {path} {params}"


@pytest.mark.parametrize("kind", list(DATA_STORES))
def test_list_data_stores_cursor(client, ids, kind):
    path, _item, key, name = DATA_STORES[kind]
    first = conforms(client.get(path, params={"limit": 1}), "GET", path, 200)
    assert len(first) == 1
    assert conforms(client.get(path, params={"limit": 1, "cursor": first[0]["cursor"]}), "GET", path, 200) == []


@pytest.mark.parametrize("params", [{"limit": 0}, {"createdBefore": "yesterday"}, {"cursor": "nope"}],
                         ids=["limit", "createdBefore", "cursor"])
@pytest.mark.parametrize("kind", list(DATA_STORES))
def test_list_data_stores_invalid_filter_is_400(client, kind, params):
    path = DATA_STORES[kind][0]
    conforms(client.get(path, params=params), "GET", path, 400)


@pytest.mark.parametrize("kind", list(DATA_STORES))
def test_retrieve_data_store(client, ids, kind):
    _path, item, _key, name = DATA_STORES[kind]
    body = conforms(client.get(f"{_path}/{ids[name]}"), "GET", item, 200, root=kind)
    assert body["id"] == ids[name] and body["name"] == name


@pytest.mark.parametrize("kind", list(DATA_STORES))
def test_retrieve_data_store_unknown_is_404(client, kind):
    path, item, _key, _name = DATA_STORES[kind]
    conforms(client.get(f"{path}/{'dpg' if kind == 'postgres' else 'red'}-d0000000000000000000"), "GET", item, 404)


@pytest.mark.parametrize("kind", list(DATA_STORES))
def test_retrieve_data_store_connection_info(client, ids, kind):
    path, item, _key, name = DATA_STORES[kind]
    info = conforms(client.get(f"{path}/{ids[name]}/connection-info"), "GET", item + "/connection-info", 200,
                    root="connectionInfo")
    assert info["internalConnectionString"] and info["externalConnectionString"]


@pytest.mark.parametrize("kind", list(DATA_STORES))
def test_retrieve_data_store_connection_info_unknown_is_404(client, kind):
    path, item, _key, _name = DATA_STORES[kind]
    conforms(client.get(f"{path}/{'dpg' if kind == 'postgres' else 'red'}-d0000000000000000000/connection-info"),
             "GET", item + "/connection-info", 404)
