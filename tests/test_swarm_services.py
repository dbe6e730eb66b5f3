"""Services on the swarm engine backend: each deploy one Swarm service of numInstances replicas,
on a one-node swarm made on CI's engine and left as found (the ``swarm`` fixture)."""

from __future__ import annotations

import pytest

from renderlocal.core.statuses import DeployStatus
from tests.conftest import close_running_plane, wait_until
from tests.test_services_run import BLUEPRINT, FILES, Clock, built_and_live, get, log_of
from tests.test_swarm import remove_swarm_leftovers, swarm  # noqa: F401 (swarm: a fixture)
# The service tests that matter, run here on the swarm backend (``plane`` below is a swarm one)
from tests.test_services_run import (  # noqa: F401
    test_a_failing_pre_deploy_command_blocks_its_deploy, test_a_job_cannot_see_the_disk_that_the_service_keeps_across_deploys,
    test_a_job_reaches_a_private_service_by_name_and_gets_from_service_values,
    test_a_job_runs_unharmed_across_a_deploy_and_a_suspend,
    test_a_web_service_answers_on_its_url_and_a_broken_deploy_leaves_the_old_one_live)

pytestmark = [pytest.mark.docker, pytest.mark.swarm]


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def job_steps() -> int:
    return 40  # a swarm deploy waits for Swarm to place and start its tasks


@pytest.fixture
def plane(swarm, engine, data_dir, write_blueprint, clock, monkeypatch):
    from renderlocal.executor.control import ControlPlane

    monkeypatch.setenv("RENDER_LOCAL_ENGINE", "swarm")
    path = write_blueprint(BLUEPRINT, FILES)
    plane = ControlPlane(data_dir, path, engine=engine, clock=clock).start(loop=False)
    assert plane.engine.backend == "swarm"
    yield plane
    close_running_plane(plane)
    remove_swarm_leftovers(swarm, data_dir)


def swarm_services_of(swarm, data_dir, deploy_id: str):
    return swarm.services.list(filters={"label": [f"render-local.data-dir={data_dir}",
                                                  f"render-local.deploy-id={deploy_id}"]})


def test_a_deploy_is_one_swarm_service_of_num_instances_replicas(plane, swarm, data_dir, write_blueprint):
    write_blueprint(BLUEPRINT.replace("    healthCheckPath: /healthz\n", "    healthCheckPath: /healthz\n    numInstances: 2\n"))
    plane.refresh()
    first = built_and_live(plane, "web")
    [service] = swarm_services_of(swarm, data_dir, first.id)
    spec = service.attrs["Spec"]
    assert spec["Mode"] == {"Replicated": {"Replicas": 2}} and spec["TaskTemplate"]["RestartPolicy"]["Condition"] == "any"
    resources = spec["TaskTemplate"]["Resources"]
    assert resources["Limits"]["MemoryBytes"] == resources["Reservations"]["MemoryBytes"] == 512 * 1024 * 1024
    web = plane.get_service("web")
    assert [i["slot"] for i in first.instances] == [1, 2] and all(i["startedAt"] and i["containerId"] for i in first.instances)
    assert get(web.url) == "v1\n"
    # each replica knows its own instance id, as each instance on Render does
    seen = {plane.engine.api.exec_start(plane.engine.api.exec_create(i["containerId"], ["sh", "-c", "echo $RENDER_INSTANCE_ID"]))
            .decode().strip() for i in first.instances}
    assert seen == {i["id"] for i in first.instances}
    # a redeploy goes live beside it, then the old deploy's swarm service goes
    second = plane.deploy("web", wait=True)
    assert second.status == DeployStatus.LIVE, second.failureReason
    assert get(web.url) == "v1\n"
    assert swarm_services_of(swarm, data_dir, first.id) == []
    old = plane.state.get_deploy(first.id)
    assert old.status == DeployStatus.DEACTIVATED and all(i["stoppedAt"] for i in old.instances)


def test_a_crashed_instance_is_restarted_by_swarm_in_its_slot(plane, swarm, data_dir):
    deploy = built_and_live(plane, "backend")
    [instance] = deploy.instances
    plane.engine.api.kill(instance["containerId"])  # the instance crashes: Swarm starts a new task in its slot

    def replaced():
        plane.deploys.reconcile()
        now = plane.state.get_deploy(deploy.id).instances[0]
        return now["containerId"] != instance["containerId"] and now

    now = wait_until(replaced, 60)
    assert now["id"] == instance["id"] and now["startedAt"] == instance["startedAt"]  # one instance, billed on
    job = plane.jobs.wait(plane.create_job("backend", "wget -qO- http://backend:8080/").id, timeout=60)
    assert job.status == "succeeded" and log_of(plane, job.id) == ["from the backend"]


def test_a_swarm_service_removed_by_hand_is_made_again(plane, swarm, data_dir):
    deploy = built_and_live(plane, "backend")
    [service] = swarm_services_of(swarm, data_dir, deploy.id)
    service.remove()
    plane.deploys.reconcile()
    [again] = swarm_services_of(swarm, data_dir, deploy.id)
    assert again.id != service.id and plane.state.get_deploy(deploy.id).instances[0]["swarmServiceId"] == again.id


def test_instances_outlive_a_killed_control_plane_and_the_next_one_serves_them(swarm, data_dir, write_blueprint,
                                                                               monkeypatch):
    """kill -9 of the control plane (started by a CLI, as a user's is): its Swarm service runs on,
    the next control plane serves the same URL again, down removes it."""
    import json

    from tests.test_services_run import _answers, up_web_then_kill_its_control_plane

    monkeypatch.setenv("RENDER_LOCAL_ENGINE", "swarm")
    mine = f"render-local.data-dir={data_dir}"
    try:
        cli, url = up_web_then_kill_its_control_plane(data_dir, write_blueprint(BLUEPRINT, FILES))
        [service] = swarm.services.list(filters={"label": ["render-local=instances", mine]})
        assert cli("services", "list").returncode == 0  # a CLI starts the next control plane
        assert wait_until(lambda: _answers(url), 30) == "v1\n"  # which serves the same URL again
        [deploy] = json.loads(cli("deploys", "list", "web", "-o", "json").stdout)
        assert deploy["status"] == "live" and service.attrs["Spec"]["Labels"]["render-local.deploy-id"] == deploy["id"]
        assert cli("down").returncode == 0
        assert swarm.services.list(filters={"label": ["render-local=instances", mine]}) == []
    finally:
        remove_swarm_leftovers(swarm, data_dir)
        for container in swarm.containers.list(all=True, filters={"label": mine}):
            container.remove(force=True)


def test_a_crashed_instances_log_keeps_both_lives(plane, write_blueprint):
    """The replacement task is a new container whose log starts again: the instance's log goes on
    after the first life's lines, skipping none."""
    talker = ("  - type: worker\n    name: talker\n    runtime: docker\n    rootDir: backend\n"
              "    dockerCommand: echo started; sleep 3600\n")
    write_blueprint(BLUEPRINT + talker)
    plane.refresh()
    deploy = built_and_live(plane, "talker")
    [instance] = deploy.instances
    wait_until(lambda: log_of(plane, instance["id"]) == ["started"], 30)
    plane.engine.api.kill(instance["containerId"])

    def both_lives():
        plane.deploys.reconcile()
        return log_of(plane, instance["id"]) == ["started", "started"]

    wait_until(both_lives, 60)
