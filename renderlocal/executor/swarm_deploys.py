"""Services on the swarm engine backend: each deploy of a service is one Swarm service of
``numInstances`` replicas, so Swarm places its instances on nodes with room for the plan
(its memory and CPU are limits and reservations, as a swarm job's) and restarts a crashed one.

A deploy still goes as on one engine (``deploys.py``): its Swarm service starts beside the
live deploy's, traffic moves once every instance is healthy, then the old deploy's Swarm
service is removed (Swarm sends SIGTERM and, after the service's stop grace period,
``maxShutdownDelaySeconds``, SIGKILL). Instances join the data dir's overlay network under
the service's name and internal host, and a web service's port is published on each
instance's node (host mode, a free port each), where the URL's proxy sends connections.

An instance is a Swarm task slot: its record keeps the slot, the Swarm service and the
container of the slot's current task, which changes when Swarm replaces a crashed task.
The log, the shell and the live figures of an instance are read from its container, so
they exist for instances on this engine (every one, on a one-node swarm). A service with a
disk runs as a container on the manager, as on one engine: a disk is one node's volume.
"""

from __future__ import annotations

import os
import time

from renderlocal.core.job_limits import seconds_setting
from renderlocal.core.models import Deploy, Service, stamp
from renderlocal.executor.deploys import DEPLOY_TIMEOUT_SECONDS, ENV_DEPLOY_TIMEOUT, HEALTH_PROBE_SECONDS, Deployer
from renderlocal.executor.engine import LABEL, is_not_found, label
from renderlocal.executor.swarm_jobs import (ENDED, local_container_state, remove_service, service_resources,
                                             swarm_image, swarm_nano_cpus)

STOP_WAIT_EXTRA_SECONDS = 10  # past the grace, for Swarm to have killed a removed service's tasks


def swarm_instance_id(service: Service, deploy: Deploy, slot: int) -> str:
    return f"{service.id}-{deploy.id[-4:]}{slot}"


def on_swarm(instances: list[dict]) -> bool:
    return any(instance.get("swarmServiceId") for instance in instances)


class SwarmDeployer(Deployer):
    """The deploys of one data dir, as Swarm services (a service with a disk: as containers)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._node_id: str | None = None

    def _start_instances(self, deploy: Deploy, service: Service) -> list[dict]:
        if service.disk:
            return super()._start_instances(deploy, service)
        instances = [{"id": swarm_instance_id(service, deploy, slot), "slot": slot, "containerId": None,
                      "startedAt": None, "stoppedAt": None, "planId": service.plan.id, "swarmServiceId": None}
                     for slot in range(1, service.numInstances + 1)]
        created = self._create_service(deploy, service)
        for instance in instances:
            instance["swarmServiceId"] = created.id
        try:
            self._update(deploy.id, instances=instances)
        except BaseException:  # made, but unrecorded: it must not run with nothing to stop it
            remove_service(self.engine, created.id)
            raise
        return instances

    def _create_service(self, deploy: Deploy, service: Service):
        from docker.types import EndpointSpec, NetworkAttachmentConfig, RestartPolicy, ServiceMode

        plan = service.plan
        extra = {}
        command = service.own_start_command
        if command:  # else the image's own CMD, as on one engine
            extra |= {"command": ["/bin/sh", "-c"], "args": [command]}
        # its name resolves to its instances' own addresses (DNS round robin), not to a virtual IP
        # that needs the kernel's IPVS; a web service's port is published on a free port of each
        # instance's node, where the URL's proxy connects
        ports = [{"Protocol": "tcp", "TargetPort": service.port, "PublishMode": "host"}] if service.type == "web" else None
        extra["endpoint_spec"] = EndpointSpec(mode="dnsrr", ports=ports)
        labels = {LABEL: "instances", label("data-dir"): str(self.data_dir), label("service-id"): service.id,
                  label("deploy-id"): deploy.id}
        # each replica's own RENDER_INSTANCE_ID: Swarm fills in the task's slot
        env = self._env(service, swarm_instance_id(service, deploy, 0)[:-1] + "{{.Task.Slot}}")
        return self.engine.client.services.create(
            swarm_image(self.engine, deploy.image), name=f"render-local-{deploy.id}",
            env=env | {"TINI_KILL_PROCESS_GROUP": "1"}, init=True,
            mode=ServiceMode("replicated", replicas=service.numInstances),
            restart_policy=RestartPolicy(condition="any", delay=1_000_000_000),  # a crashed instance restarts
            resources=service_resources(plan, swarm_nano_cpus(self.engine, plan)),
            stop_grace_period=service.maxShutdownDelaySeconds * 1_000_000_000,
            labels=labels, container_labels=labels | {LABEL: "swarm-instance"},
            networks=[NetworkAttachmentConfig(self.network.ensure(), aliases=[service.name, service.internalHost])],
            **extra,
        )

    # -- health and traffic -------------------------------------------------------------------
    def _wait_healthy(self, deploy: Deploy, service: Service, instances: list[dict]) -> str | None:
        if not on_swarm(instances):
            return super()._wait_healthy(deploy, service, instances)
        timeout = seconds_setting(ENV_DEPLOY_TIMEOUT, os.environ.get(ENV_DEPLOY_TIMEOUT), DEPLOY_TIMEOUT_SECONDS)
        deadline = time.monotonic() + timeout
        healthy: set[str] = set()
        waiting = ""
        while time.monotonic() < deadline:
            if self._canceled(deploy.id, keep=False):
                return "canceled"
            tasks = self._current_tasks(instances[0]["swarmServiceId"])
            for instance in instances:
                task = tasks.get(instance["slot"])
                if instance["id"] in healthy or task is None:
                    continue
                state, status = task["Status"]["State"], task["Status"]
                if state in ENDED:
                    code = (status.get("ContainerStatus") or {}).get("ExitCode")
                    if code is None:
                        return f"instance {instance['id']} could not start: {status.get('Err') or state}"
                    return f"instance {instance['id']} exited with code {code} before it was healthy"
                if state == "pending" and status.get("Err"):
                    waiting = f" (Swarm: {status['Err']})"  # no node has room for its plan now
                if state == "running":
                    self._seen_running(deploy.id, instance, task)
                    if self._task_answers(task, service, instance):
                        healthy.add(instance["id"])
            if len(healthy) == len(instances):
                return None
            time.sleep(HEALTH_PROBE_SECONDS * 4)  # each pass asks the manager for the tasks
        what = f"{service.healthCheckPath} did not answer 2xx/3xx" if service.healthCheckPath else "it did not answer"
        return f"not healthy after {timeout} s: {what}{waiting}"

    def _task_answers(self, task: dict, service: Service, instance: dict) -> bool:
        if service.type != "web":
            return self._answers(None, service, instance)  # up once it ran for a moment
        address = self._published(task)
        return address is not None and self._probe(*address, service)

    def _published(self, task: dict) -> tuple[str, int] | None:
        """Where the task's port is published: its node's address (this engine: loopback)."""
        ports = (task["Status"].get("PortStatus") or {}).get("Ports") or []
        if not ports:
            return None
        return self._node_address(task["NodeID"]), int(ports[0]["PublishedPort"])

    def _node_address(self, node_id: str) -> str:
        if node_id == self._local_node():
            return "127.0.0.1"
        return self.engine.api.inspect_node(node_id)["Status"]["Addr"]

    def _local_node(self) -> str | None:
        """This engine's node id, asked once (not on every health probe and supervisor pass)."""
        if self._node_id is None:
            self._node_id = self.engine.client.info()["Swarm"].get("NodeID")
        return self._node_id

    def _endpoints(self, instances: list[dict], service: Service) -> list[tuple[str, int]]:
        if not on_swarm(instances):
            return super()._endpoints(instances, service)
        tasks = self._current_tasks(instances[0]["swarmServiceId"])
        found = [self._published(task) for task in tasks.values() if task["Status"]["State"] == "running"]
        return [address for address in found if address is not None]

    # -- instances ------------------------------------------------------------------------------
    def _current_tasks(self, swarm_service_id: str) -> dict[int, dict]:
        """The newest task of each slot of the Swarm service (none: it was removed)."""
        try:
            tasks = self.engine.api.tasks(filters={"service": swarm_service_id})
        except Exception as exc:
            if is_not_found(exc):
                return {}
            raise
        newest: dict[int, dict] = {}
        for task in tasks:
            slot = task.get("Slot")
            if slot is not None and (slot not in newest or task["CreatedAt"] > newest[slot]["CreatedAt"]):
                newest[slot] = task
        return newest

    def _seen_running(self, deploy_id: str, instance: dict, task: dict) -> None:
        """Record the slot's running task: its start (the instance's first), its container, and
        follow that container's log when it is on this engine."""
        container_id = (task["Status"].get("ContainerStatus") or {}).get("ContainerID")
        if not container_id or container_id == instance.get("containerId"):
            return
        if local_container_state(self.engine, task) is None:  # on another node
            changes = {"containerId": container_id}
        else:
            changes = {"containerId": container_id, "logBaseline": self.logs.writer(instance["id"]).line_counts()}
        changes["startedAt"] = instance.get("startedAt") or stamp()  # a replaced task's instance keeps its start
        instance.update(changes)
        self._set_instance(deploy_id, instance["id"], **changes)
        if "logBaseline" in changes:
            self._stop_following(instance["id"])  # the replaced task's container is done
            self._follow(instance["id"], container_id, instance["logBaseline"])

    def _stop_instances(self, deploy: Deploy, grace: int) -> None:
        if not on_swarm(deploy.instances):
            return super()._stop_instances(deploy, grace)
        running = [instance for instance in deploy.instances if not instance.get("stoppedAt")]
        if not running:
            return
        containers = [instance["containerId"] for instance in running if instance.get("containerId")]
        for instance in running:
            self._stop_following(instance["id"])
        api = self.engine.api
        if grace == 0:  # a failed deploy's instances go at once, not after the service's grace period
            for container_id in containers:
                try:
                    api.kill(container_id)
                except Exception:  # not here, or stopped already
                    pass
        for swarm_service_id in {instance["swarmServiceId"] for instance in running}:
            remove_service(self.engine, swarm_service_id)
        deadline = time.monotonic() + grace + STOP_WAIT_EXTRA_SECONDS
        while containers and time.monotonic() < deadline:  # stopped when their containers are (billing)
            containers = [c for c in containers if _running(api, c)]
            time.sleep(0.2)
        now = stamp()
        for instance in running:
            self._set_instance(deploy.id, instance["id"], stoppedAt=now)

    def _keep(self, service: Service, live: Deploy) -> None:
        if not on_swarm(live.instances):
            return super()._keep(service, live)
        if service.suspended or not service.inBlueprint:
            if any(not i.get("stoppedAt") for i in live.instances):
                self._stop_instances(live, service.maxShutdownDelaySeconds)
            return
        if any(i.get("stoppedAt") for i in live.instances):
            return  # stopped by down: nothing to keep
        try:
            self.engine.api.inspect_service(live.instances[0]["swarmServiceId"])
        except Exception as exc:
            if not is_not_found(exc):
                raise
            created = self._create_service(live, service)  # removed by hand (docker service rm): made again
            for instance in live.instances:
                instance["swarmServiceId"] = created.id
                self._set_instance(live.id, instance["id"], swarmServiceId=created.id)
        tasks = self._current_tasks(live.instances[0]["swarmServiceId"])
        for instance in live.instances:
            task = tasks.get(instance["slot"])
            if task is not None and task["Status"]["State"] == "running":
                self._seen_running(live.id, instance, task)
                if instance.get("logBaseline") is not None and local_container_state(self.engine, task):
                    self._follow(instance["id"], instance["containerId"], instance["logBaseline"])
        if service.type == "web":
            service = self._serve_url(service)
            self.proxies.point(service.id, self._endpoints(live.instances, service))


def _running(api, container_id: str) -> bool:
    try:
        return bool(api.inspect_container(container_id)["State"].get("Running"))
    except Exception:
        return False
