"""Bad input never answers 500 and never stores anything; the API answers only loopback Host names and
websocket handshakes from no page or a loopback one (DNS rebinding), against a live local server."""

import asyncio
import json
import logging
import urllib.parse
from contextlib import contextmanager, suppress

import docker.errors
import httpx
import pytest
import websockets.sync.client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from renderlocal.api.app import create_app
from renderlocal.api.server import start_in_thread
from renderlocal.executor.control import ControlPlane

pytestmark = pytest.mark.docker

OWNER_ID = "tea-local"
MIB = 1024 * 1024
BLUEPRINT = """\
services:
  - type: worker
    name: bad-input-box
    runtime: docker
    rootDir: app
    envVars:
      - key: SECRET
        sync: false
"""


@pytest.fixture(scope="module")
def server(engine, tmp_path_factory):
    root = tmp_path_factory.mktemp("bad-input")
    (root / "app").mkdir()
    (root / "app" / "Dockerfile").write_text("FROM busybox:1.36\n")
    (root / "render.yaml").write_text(BLUEPRINT)
    plane = ControlPlane(root / "data", root / "render.yaml", engine=engine).start(loop=False)
    build = plane.build("bad-input-box", wait=True)
    assert build.status == "succeeded"
    handle = start_in_thread(plane, "127.0.0.1", 0)
    yield plane, handle
    handle.stop()
    for job in plane.state.list_jobs():
        if not job.settled:
            if not job.final:
                plane.cancel_job(job.id)
            plane.jobs.wait(job.id, timeout=30)
    plane.close()
    with suppress(docker.errors.APIError):
        engine.images.remove(build.image)


@pytest.fixture
def client(server):
    _plane, handle = server
    with httpx.Client(base_url=handle.url, headers={"Authorization": f"Bearer {handle.token}"}, timeout=30) as client:
        yield client


@pytest.fixture
def sid(client):
    return next(i["service"]["id"] for i in client.get("/services").json() if i["service"]["name"] == "bad-input-box")


def job_ids(client, sid) -> list[str]:
    listed = client.get(f"/services/{sid}/jobs", params={"limit": 100})
    assert listed.status_code == 200, listed.text  # the list keeps working whatever was sent before
    return [item["job"]["id"] for item in listed.json()]


@contextmanager
def nothing_stored(client, sid):
    before = job_ids(client, sid)
    yield
    assert job_ids(client, sid) == before


def assert_refused(response, words: str, status: int = 400, field: str | None = None):
    assert response.status_code == status, (response.request.url, response.status_code, response.text)
    answer = response.json()
    assert {"id", "message"} <= set(answer) <= {"id", "message", "field"}, answer
    assert words in answer["message"], answer
    if field is not None:
        assert answer.get("field") == field, answer


def post_raw(client, sid, raw: bytes, **kwargs):
    return client.post(f"/services/{sid}/jobs", content=raw, headers={"Content-Type": "application/json"}, **kwargs)


# -- strings that cannot be stored or run -----------------------------------------------------------

BROKEN_TEXT = {"lone surrogate": "echo \ud800", "NUL byte": "echo a\x00b"}
WHERE = [  # (body with X where the bad text goes, the field the answer names, the words naming where)
    ({"startCommand": "X"}, "startCommand", "startCommand"),
    ({"startCommand": "true", "planId": "X"}, "planId", "planId"),
    ({"startCommand": "true", "envVars": [{"key": "A", "value": "X"}]}, "envVars", "envVars[0].value"),
    ({"startCommand": "true", "envVars": [{"key": "OK", "value": "1"}, {"key": "X", "value": "1"}]}, "envVars",
     "envVars[1].key"),
    ({"startCommand": "true", "syncFalseEnvVars": [{"key": "SECRET", "value": "X"}]}, "syncFalseEnvVars",
     "syncFalseEnvVars[0].value"),
]


@pytest.mark.parametrize("what", list(BROKEN_TEXT))
@pytest.mark.parametrize("body,field,words", WHERE)
def test_text_that_cannot_be_stored_or_run_is_400_naming_the_field_before_anything_is_stored(
        client, sid, what, body, field, words):
    raw = json.dumps(body).replace('"X"', json.dumps(BROKEN_TEXT[what])).encode()  # \ud800, \u0000: JSON escapes
    with nothing_stored(client, sid):
        assert_refused(post_raw(client, sid, raw), words, field=field)
        assert what in post_raw(client, sid, raw).json()["message"]


def test_a_lone_surrogate_in_a_log_stream_body_is_400(client):
    raw = b'{"endpoint": "127.0.0.1:9", "token": "\\udc00", "preview": "send"}'
    try:
        assert_refused(client.put(f"/logs/streams/owner/{OWNER_ID}", content=raw), "token", field="token")
        assert client.get(f"/logs/streams/owner/{OWNER_ID}").json() == {"ownerId": OWNER_ID, "preview": "send"}
    finally:
        client.delete(f"/logs/streams/owner/{OWNER_ID}")


# -- JSON too deep, bodies too large --------------------------------------------------------------------


@pytest.mark.parametrize("depth", [5000, 100])
def test_json_nested_too_deep_is_400(client, sid, depth):
    nested = b"[" * depth + b"]" * depth  # 5000: past the parser's recursion; 100: past any body Render takes
    raw = b'{"startCommand": "true", "extra": ' + nested + b"}"
    with nothing_stored(client, sid):
        assert_refused(post_raw(client, sid, raw), "nested")
        assert_refused(post_raw(client, sid, nested), "nested")


def padded_body(size: int) -> bytes:
    """A valid job body (``true``), padded with JSON whitespace to ``size`` bytes."""
    body = b'{"startCommand": "true"}'
    return body[:-1] + b" " * (size - len(body)) + b"}"


def test_a_body_over_1_mib_is_400_naming_the_limit(client, sid):
    with nothing_stored(client, sid):
        assert_refused(post_raw(client, sid, padded_body(MIB + 1)), "1 MiB")
        assert_refused(post_raw(client, sid, padded_body(10 * MIB)), "1 MiB")

        def chunks():  # no Content-Length: the limit holds while the body streams in
            body = padded_body(2 * MIB)
            for start in range(0, len(body), 64 * 1024):
                yield body[start:start + 64 * 1024]

        assert_refused(client.post(f"/services/{sid}/jobs", content=chunks()), "1 MiB")
    under = post_raw(client, sid, padded_body(MIB))
    assert under.status_code == 201, under.text  # the limit is 1 MiB, not less


# -- numbers and times -----------------------------------------------------------------------------------

def test_digits_of_other_scripts_are_not_numbers(client, sid):
    job = client.post(f"/services/{sid}/jobs", json={"startCommand": "echo hi"}).json()
    assert_refused(client.get(f"/services/{sid}/jobs", params={"limit": "٣"}), "limit")
    assert_refused(client.get("/services", params={"limit": "٣"}), "limit")
    assert_refused(client.get("/logs", params={"ownerId": OWNER_ID, "resource": job["id"], "limit": "٣"}), "limit")
    assert_refused(client.get(client.base_url.join("/local/events"), params={"after": "٣"}), "after")
    with nothing_stored(client, sid):
        for name in ("timeoutSeconds", "cancelGraceSeconds"):
            assert_refused(client.post(f"/services/{sid}/jobs", json={"startCommand": "true", name: "٣"}), name,
                           field=name)


def test_seconds_too_large_for_a_clock_are_400(client, sid):
    with nothing_stored(client, sid):
        for name in ("timeoutSeconds", "cancelGraceSeconds"):
            assert_refused(client.post(f"/services/{sid}/jobs", json={"startCommand": "true", name: 10**20}), name,
                           field=name)


LATEST = "9999-12-31T23:59:59-23:59"  # UTC: past year 9999
EARLIEST = "0001-01-01T00:00:00+01:00"  # UTC: before year 1


def test_times_out_of_range_are_400_naming_the_parameter(client, sid):
    job = client.post(f"/services/{sid}/jobs", json={"startCommand": "echo hi"}).json()
    logs = {"ownerId": OWNER_ID, "resource": job["id"]}
    with nothing_stored(client, sid):
        for name in ("createdBefore", "createdAfter", "startedBefore", "startedAfter", "finishedBefore",
                     "finishedAfter"):
            for value in (LATEST, EARLIEST):
                assert_refused(client.get(f"/services/{sid}/jobs", params={name: value}), name)
                assert_refused(client.get(client.base_url.join("/local/jobs"), params={name: value}), name)
        for path in ("/services", f"/services/{sid}/deploys", "/postgres", "/key-value"):
            assert_refused(client.get(path, params={"updatedAfter": LATEST}), "updatedAfter")
        assert_refused(client.get(f"/services/{sid}/events", params={"startTime": EARLIEST}), "startTime")
        assert_refused(client.get("/logs", params=logs | {"startTime": EARLIEST}), "startTime")
        assert_refused(client.get("/logs", params=logs | {"endTime": LATEST}), "endTime")
        assert_refused(client.get("/logs", params=logs | {"endTime": "0001-01-01T00:00:00Z"}), "endTime")
        assert_refused(client.get("/logs/values", params=logs | {"label": "level", "endTime": "0001-01-01T00:00:00Z"}),
                       "endTime")
    # the edges themselves are times
    assert client.get("/logs", params=logs | {"startTime": "0001-01-01T00:00:00Z",
                                              "endTime": "0001-01-01T00:00:00Z"}).status_code == 200
    assert client.get(f"/services/{sid}/jobs", params={"createdBefore": "9999-12-31T23:59:59Z"}).status_code == 200


def test_a_text_pattern_the_regex_engine_cannot_build_is_400(client, sid):
    job = client.post(f"/services/{sid}/jobs", json={"startCommand": "echo hi"}).json()
    for pattern in ("/a{99999999999}/", "/" + "(" * 1000 + ")" * 1000 + "/"):
        response = client.get("/logs", params={"ownerId": OWNER_ID, "resource": job["id"], "text": pattern})
        assert_refused(response, "regular expression", field="text")


# -- a failure of render-local's own ------------------------------------------------------------------------

class Records(logging.Handler):
    def __init__(self):
        super().__init__()
        self.records = []

    def emit(self, record):
        self.records.append(record)


def test_a_500_tells_no_exception_text_and_logs_it_once(client, server, monkeypatch):
    plane, _handle = server

    def broken():
        raise RuntimeError("secret detail /home/someone/.config")

    monkeypatch.setattr(plane.state, "list_services", broken)
    records = Records()
    logging.getLogger("uvicorn.error").addHandler(records)
    try:
        response = client.get("/services")
    finally:
        logging.getLogger("uvicorn.error").removeHandler(records)
    assert response.status_code == 500
    assert set(response.json()) == {"id", "message"} and response.json()["id"] == "internal_error"
    assert "secret" not in response.text and "RuntimeError" not in response.text
    logged = [r for r in records.records if r.exc_info and "secret detail" in str(r.exc_info[1])]
    assert len(logged) == 1  # on the server's stderr, once


# -- arbitrary input: never a 5xx, every 4xx Render's error shape ----------------------------------------------

def json_values(strings):
    scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | strings
    return st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                        | st.dictionaries(strings, inner, max_size=4), max_leaves=12)


ANY_TEXT = st.text(max_size=12)  # any code point, lone surrogates and NUL too
BAD_COMMANDS = (st.builds(lambda a, b: a + "\ud800" + b, ANY_TEXT, ANY_TEXT)
                | st.builds(lambda a, b: a + "\x00" + b, ANY_TEXT, ANY_TEXT)
                | st.sampled_from(["", "  ", "\t\n"]))
# A body that is valid runs `true` (a quick real job): every other command is one the API must refuse.
COMMANDS = st.just("true") | BAD_COMMANDS | json_values(ANY_TEXT).filter(lambda v: not isinstance(v, str))
KEY_VALUES = st.lists(st.fixed_dictionaries({}, optional={"key": ANY_TEXT | st.sampled_from(["A", "SECRET"]),
                                                          "value": ANY_TEXT | json_values(ANY_TEXT)}), max_size=3)
JOB_BODIES = st.fixed_dictionaries({}, optional={
    "startCommand": COMMANDS,
    "planId": st.sampled_from(["", "plan-srv-006", "plan-srv-999"]) | json_values(ANY_TEXT),
    "envVars": KEY_VALUES | json_values(ANY_TEXT),
    "syncFalseEnvVars": KEY_VALUES | json_values(ANY_TEXT),
    "timeoutSeconds": st.integers() | st.sampled_from(["٣", "10", "1e9", "-1"]) | json_values(ANY_TEXT),
    "cancelGraceSeconds": st.integers() | st.sampled_from(["٣", "0", "1.5"]) | json_values(ANY_TEXT),
    "extra": json_values(ANY_TEXT),
})


def body_bytes(value) -> bytes:
    return json.dumps(value).encode()  # ensure_ascii: a lone surrogate goes as its \\u escape, as a client sends it


RAW_BODIES = (JOB_BODIES.map(body_bytes) | json_values(ANY_TEXT).map(body_bytes) | st.binary(max_size=64)
              | st.integers(1, 6000).map(lambda n: b"[" * n + b"]" * n))


def assert_answer_shape(response):
    assert response.status_code < 500, (response.request.url, response.request.content[:200], response.text)
    if response.status_code >= 400:
        answer = response.json()
        assert {"id", "message"} <= set(answer) <= {"id", "message", "field"}, answer
        assert isinstance(answer["message"], str) and answer["message"]


BOUNDED = settings(max_examples=150, deadline=None, database=None,
                   suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@BOUNDED
@given(raw=RAW_BODIES)
def test_arbitrary_job_bodies_never_answer_5xx(client, sid, raw):
    response = post_raw(client, sid, raw)
    assert_answer_shape(response)
    if response.status_code == 201:
        assert response.json()["startCommand"] == "true"  # nothing but a quick job is ever accepted
    job_ids(client, sid)


def timestamps():
    offsets = st.sampled_from(["Z", "z", "+00:00", "-23:59", "+23:59", "+01:00", "", "+24:00", "-00:30"])
    fractions = st.sampled_from(["", ".5", ".123456789", ".1234567891234"])
    any_moment = st.builds(lambda y, mo, d, h: f"{y:04d}-{mo:02d}-{d:02d}T{h:02d}:00:00", st.integers(1, 9999),
                           st.integers(1, 12), st.integers(1, 31), st.integers(0, 23))
    edges = st.sampled_from(["0001-01-01T00:00:00", "0001-01-01T00:59:59", "9999-12-31T23:59:59", "9999-12-31T00:00:00"])
    return st.builds(lambda moment, fraction, offset: moment + fraction + offset, edges | any_moment, fractions, offsets)


QUERY_TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=16)  # what a URL can carry as UTF-8
QUERY_NAMES = st.sampled_from(["limit", "cursor", "status", "createdBefore", "createdAfter", "startedBefore",
                               "startedAfter", "finishedBefore", "finishedAfter", "updatedAfter", "startTime",
                               "endTime", "direction", "text", "level", "type", "label", "resource", "ownerId",
                               "name", "suspended", "region", "env"]) | QUERY_TEXT
QUERY_VALUES = (timestamps() | QUERY_TEXT | st.integers().map(str)
                | st.sampled_from(["٣", "３", "1e3", "0x10", "-0", "100", "101", "/(/", "*", "backward", "forward",
                                   "job-aaaaaaaaaaaaaaaaaaaa\n", "true"]))
# Percent-encoded bytes: also bytes that are not UTF-8 (%ED%A0%80 is a surrogate's UTF-8 form).
RAW_QUERY_PARTS = st.lists(st.tuples(QUERY_NAMES.map(lambda n: urllib.parse.quote(n, safe="")),
                                     (QUERY_VALUES.map(lambda v: urllib.parse.quote(v, safe=""))
                                      | st.binary(max_size=8).map(urllib.parse.quote_from_bytes))), max_size=5)


@pytest.fixture(scope="module")
def finished_job(server):
    plane, _handle = server
    job = plane.create_job("bad-input-box", "echo one; echo two")
    plane.jobs.wait(job.id, timeout=60)
    return job.id


@BOUNDED
@given(route=st.sampled_from(["jobs", "all-jobs", "services", "deploys", "events", "logs", "log-values"]),
       parts=RAW_QUERY_PARTS)
def test_arbitrary_queries_on_list_and_log_routes_never_answer_5xx(client, sid, finished_job, route, parts):
    base = {"jobs": f"/v1/services/{sid}/jobs", "all-jobs": "/local/jobs", "services": "/v1/services",
            "deploys": f"/v1/services/{sid}/deploys", "events": f"/v1/services/{sid}/events",
            "logs": "/v1/logs", "log-values": "/v1/logs/values"}[route]
    if route.startswith("log"):  # the required parameters first, so the others are what gets checked
        parts = [("ownerId", OWNER_ID), ("resource", finished_job), ("label", "level")] + parts
    query = "&".join(f"{name}={value}" for name, value in parts)
    url = str(client.base_url.copy_with(raw_path=(base + "?" + query).encode("ascii")))
    assert_answer_shape(client.get(url))


# -- Host and Origin: a web page cannot reach the API (DNS rebinding) ---------------------------------------------

FORGED_HOSTS = ["evil.example", "evil.example:8000", "127.0.0.1.evil.example", "localhost.evil.example:80",
                "[::2]:80", "10.0.0.1", ""]


def test_a_forged_host_is_403_on_every_route(server):
    _plane, handle = server
    token = {"Authorization": f"Bearer {handle.token}"}
    root = handle.url.removesuffix("/v1")
    for host in FORGED_HOSTS:
        for path in ("/v1/services", "/local/status", "/openapi.json", "/v1/nothing"):
            response = httpx.get(root + path, headers=token | {"Host": host})
            assert_refused(response, "Host", status=403)
        posted = httpx.post(root + "/v1/services/bad-input-box/jobs", headers=token | {"Host": host},
                            json={"startCommand": "true"})
        assert_refused(posted, "Host", status=403)


def test_loopback_hosts_with_any_port_are_answered(server):
    _plane, handle = server
    token = {"Authorization": f"Bearer {handle.token}"}
    for host in ("127.0.0.1", f"127.0.0.1:{handle.port}", "localhost:1", "LOCALHOST", "[::1]:9", "[::1]"):
        response = httpx.get(handle.url + "/owners", headers=token | {"Host": host})
        assert response.status_code == 200, (host, response.text)
    assert httpx.get(handle.url.removesuffix("/v1") + "/openapi.json").status_code == 200  # no token needed


def asgi_get(app, url: str, headers: dict) -> httpx.Response:
    async def get():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as client:
            return await client.get(url, headers=headers)

    return asyncio.run(get())


def test_the_host_serve_was_given_is_answered_too(server):
    plane, handle = server
    app = create_app(plane, handle.token, host="render.lan")  # serve --host render.lan
    token = {"Authorization": f"Bearer {handle.token}"}
    assert asgi_get(app, "http://render.lan:8000/v1/owners", token).status_code == 200
    assert asgi_get(app, "http://localhost/v1/owners", token).status_code == 200
    assert_refused(asgi_get(app, "http://evil.example/v1/owners", token), "Host", status=403)
    everywhere = create_app(plane, handle.token, host="0.0.0.0")  # every interface: reached by any of its names
    assert asgi_get(everywhere, "http://192.0.2.7:8000/v1/owners", token).status_code == 200


def ws_url(handle, job_id: str) -> str:
    return handle.url.replace("http://", "ws://") + f"/logs/subscribe?resource={job_id}"


def test_a_websocket_from_a_web_page_is_refused(server, finished_job):
    _plane, handle = server
    token = {"Authorization": f"Bearer {handle.token}"}
    for origin in ("http://evil.example", "https://127.0.0.1.evil.example", "null"):
        with pytest.raises(websockets.exceptions.InvalidStatus) as refused:
            websockets.sync.client.connect(ws_url(handle, finished_job), additional_headers=token | {"Origin": origin},
                                           open_timeout=10)
        assert refused.value.response.status_code == 403
        answer = json.loads(refused.value.response.body)
        assert set(answer) == {"id", "message"} and "Origin" in answer["message"]
    for origin in (None, f"http://127.0.0.1:{handle.port}", "http://localhost"):  # tools, or the API's own origin
        headers = token | ({"Origin": origin} if origin else {})
        with websockets.sync.client.connect(ws_url(handle, finished_job), additional_headers=headers,
                                            open_timeout=10) as ws:
            messages = []
            try:
                while True:
                    messages.append(json.loads(ws.recv(timeout=10))["message"])
            except websockets.exceptions.ConnectionClosedOK:
                pass
        assert messages == ["one", "two"], origin
