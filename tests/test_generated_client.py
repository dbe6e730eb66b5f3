"""A client generated from render-local's own /openapi.json drives the API, as a team's
script generated from Render's spec would: every answer is parsed into the client's
models (openapi-python-client's parsers raise on a missing required key, a wrong enum
spelling or a null where the spec allows none) and nothing the server sent is dropped.

The served document is Render's definition plus render-local's extensions, so the
extensions (a job's ``costUSD``, ``exitCode``...) are parsed by type too.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
import time

import httpx
import pytest

from renderlocal.api.server import start_in_thread
from renderlocal.api.token import load_or_create_token
from renderlocal.core.statuses import FINAL_DEPLOY_STATUSES, FINAL_JOB_STATUSES
from renderlocal.executor.control import ControlPlane
from tests.conftest import close_running_plane

pytestmark = pytest.mark.docker

BLUEPRINT = """\
services:
  - type: worker
    name: box
    runtime: docker
    dockerCommand: sleep 3600
    maxShutdownDelaySeconds: 1
"""


@pytest.fixture(scope="module")
def served(engine, tmp_path_factory):
    pytest.importorskip("openapi_python_client", reason="openapi-python-client is in the test extra: pip install -e '.[test]'")
    root = tmp_path_factory.mktemp("generated-client")
    (root / "render.yaml").write_text(BLUEPRINT)
    (root / "Dockerfile").write_text("FROM busybox:1.36\n")
    plane = ControlPlane(root / "data", root / "render.yaml", engine=engine).start(loop=False)
    assert plane.build("box", wait=True).status == "succeeded"
    handle = start_in_thread(plane, "127.0.0.1", 0)
    yield plane, handle, root
    handle.stop()
    close_running_plane(plane)


@pytest.fixture(scope="module")
def render_client(served):
    """The package openapi-python-client makes from the served /openapi.json, imported."""
    plane, handle, root = served
    document = httpx.get(handle.url.removesuffix("/v1") + "/openapi.json", timeout=30)
    assert document.status_code == 200
    (root / "openapi.json").write_text(document.text)
    (root / "config.yaml").write_text("package_name_override: render_client\npost_hooks: []\n")
    made = subprocess.run([sys.executable, "-m", "openapi_python_client", "generate", "--path", str(root / "openapi.json"),
                           "--output-path", str(root / "gen" / "render_client"), "--meta", "none",
                           "--config", str(root / "config.yaml")], capture_output=True, text=True, timeout=120)
    assert made.returncode == 0, made.stdout + made.stderr
    assert "Warning" not in made.stdout + made.stderr, made.stdout + made.stderr  # every schema understood
    sys.path.insert(0, str(root / "gen"))
    try:
        package = importlib.import_module("render_client")
        root_url = handle.url.removesuffix("/v1")  # the served document's paths are whole: /v1/..., /local/...
        client = package.AuthenticatedClient(base_url=root_url, token=load_or_create_token(plane.data_dir),
                                             raise_on_unexpected_status=True, timeout=httpx.Timeout(30.0))
        yield importlib.import_module("render_client.api"), importlib.import_module("render_client.models"), client
    finally:
        sys.path.remove(str(root / "gen"))
        for name in [m for m in sys.modules if m == "render_client" or m.startswith("render_client.")]:
            del sys.modules[name]


def parsed(response, status: int, model: str | None = None):
    """The client's parsed answer: the status expected, parsed (not None, not its Error model),
    of ``model`` when given, and every key of the raw answer kept by the model."""
    assert int(response.status_code) == status, response.content[:500]
    answer = response.parsed
    assert answer is not None and type(answer).__name__ != "Error", response.content[:500]
    items = answer if isinstance(answer, list) else [answer]
    if model is not None:
        assert {type(item).__name__ for item in items} <= {model}, (type(items[0]).__name__, model)
    raw = response.content and __import__("json").loads(response.content)
    raw_items = raw if isinstance(raw, list) else [raw]
    for item, raw_item in zip(items, raw_items):
        assert set(item.to_dict()) == set(raw_item), (set(raw_item) ^ set(item.to_dict()))
    return answer


def until(fetch, done, seconds: float = 60):
    deadline = time.monotonic() + seconds
    while True:
        answer = fetch()
        if done(answer) or time.monotonic() > deadline:
            return answer
        time.sleep(0.2)


def test_a_generated_client_lists_and_reads_services_and_owners(render_client):
    api, _models, client = render_client
    from render_client.api.services import list_services, retrieve_service  # noqa: F401 (generated)
    from render_client.api.workspaces import list_owners, retrieve_owner

    [listed] = parsed(list_services.sync_detailed(client=client, name=["box"]), 200, "ServiceWithCursor")
    assert parsed(list_services.sync_detailed(client=client, name=["nope"]), 200) == []
    service = parsed(retrieve_service.sync_detailed(listed.service.id, client=client), 200, "Service")
    assert type(service.service_details).__name__ == "BackgroundWorkerDetails"
    details = service.service_details.env_specific_details
    assert (details.docker_command, details.dockerfile_path, details.docker_context) == ("sleep 3600", "./Dockerfile", ".")
    assert service.root_dir == ""  # as render.yaml says it (none), not where it is on this machine
    [owner] = parsed(list_owners.sync_detailed(client=client), 200, "OwnerWithCursor")
    assert owner.owner.id == service.owner_id
    assert parsed(retrieve_owner.sync_detailed(owner.owner.id, client=client), 200, "Owner").id == service.owner_id


def test_a_generated_client_runs_reads_lists_and_cancels_jobs(served, render_client):
    plane, _handle, _root = served
    _api, models, client = render_client
    from render_client.api.logs import list_logs
    from render_client.api.one_off_jobs import (
        cancel_job,
        list_job,
        post_job,
        retrieve_job,
    )

    service_id = plane.get_service("box").id
    made = parsed(post_job.sync_detailed(service_id, client=client, body=models.PostJobBody(
        start_command="echo from-a-generated-client", plan_id="")), 201, "Job")  # "": Render's CLI without --plan-id
    assert made.plan_id == plane.get_service("box").planId
    done = until(lambda: parsed(retrieve_job.sync_detailed(service_id, made.id, client=client), 200, "Job"),
                 lambda job: job.status in FINAL_JOB_STATUSES)
    assert (done.status, done.exit_code) == ("succeeded", 0) and done.cost_usd.startswith("0.")  # extensions, typed
    assert made.id in [item.job.id for item in parsed(list_job.sync_detailed(service_id, client=client), 200, "JobWithCursor")]
    logs = parsed(list_logs.sync_detailed(client=client, owner_id=plane.get_service("box").to_render()["ownerId"],
                                          resource=[made.id]), 200)
    assert [entry.message for entry in logs.logs] == ["from-a-generated-client"]

    sleeper = parsed(post_job.sync_detailed(service_id, client=client, body=models.PostJobBody(start_command="sleep 60")),
                     201, "Job")
    until(lambda: parsed(retrieve_job.sync_detailed(service_id, sleeper.id, client=client), 200),
          lambda job: job.status == "running")
    parsed(cancel_job.sync_detailed(service_id, sleeper.id, client=client), 200, "Job")
    ended = until(lambda: parsed(retrieve_job.sync_detailed(service_id, sleeper.id, client=client), 200),
                  lambda job: job.status in FINAL_JOB_STATUSES)
    assert ended.status == "canceled"


def test_a_generated_client_deploys_and_reads_the_events(served, render_client):
    plane, _handle, _root = served
    _api, models, client = render_client
    from render_client.api.deploys import create_deploy, list_deploys, retrieve_deploy
    from render_client.api.services import list_events

    service_id = plane.get_service("box").id
    made = parsed(create_deploy.sync_detailed(service_id, client=client, body=models.CreateDeployBody()), 201, "Deploy")
    live = until(lambda: parsed(retrieve_deploy.sync_detailed(service_id, made.id, client=client), 200, "Deploy"),
                 lambda deploy: deploy.status in FINAL_DEPLOY_STATUSES or deploy.status == "live")
    assert live.status == "live"
    assert made.id in [item.deploy.id for item in parsed(list_deploys.sync_detailed(service_id, client=client), 200,
                                                          "DeployWithCursor")]
    events = parsed(list_events.sync_detailed(service_id, client=client), 200, "ServiceEventWithCursor")
    kinds = {event.event.type_ for event in events}
    assert {"build_started", "build_ended", "deploy_started", "deploy_ended"} <= kinds
