"""Deploys: a service's last successful build run as its instances, on the private network.

A deploy runs the service's ``preDeployCommand`` (if any) in a container of its
own, without the disk; then starts ``numInstances`` new instances and waits for
them to be healthy (a web service's ``healthCheckPath`` answering 2xx/3xx, or
its port answering at all; other services still running after a moment).
Only then does traffic move to them and the old instances get SIGTERM and,
after ``maxShutdownDelaySeconds``, SIGKILL: a deploy that fails leaves the
previous one live. A service with a disk is stopped first, as on Render.

Instances are containers named and labelled after their instance id, with a
restart policy, so they outlive a killed control plane; the next one adopts
them (their logs are caught up, the URL is served again). Jobs never share
their fate: deploys and suspends touch instances only.
"""

from __future__ import annotations

import os
import secrets
import socket
import string
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from renderlocal.core.errors import Conflict, InvalidInput, RenderLocalError
from renderlocal.core.ids import new_id
from renderlocal.core.job_limits import seconds_setting
from renderlocal.core.logstore import LogStore
from renderlocal.core.models import Deploy, Service, stamp
from renderlocal.core.state import State
from renderlocal.core.statuses import ACTIVE_DEPLOY_STATUSES, DeployStatus, DeployTrigger
from renderlocal.executor.engine import LABEL, Engine, is_not_found, label
from renderlocal.executor.jobs import CANCELABLE
from renderlocal.executor.logcapture import LogCapture
from renderlocal.executor.network import PrivateNetwork
from renderlocal.executor.proxy import ProxyPool
from renderlocal.executor.services import ServiceCatalog

ENV_DEPLOY_TIMEOUT = "RENDER_LOCAL_DEPLOY_TIMEOUT_SECONDS"
HEALTH_PROBE_SECONDS = 0.05  # a check is one local HTTP request: a deploy goes live within 50 ms of answering
DEPLOY_TIMEOUT_SECONDS = 120  # for new instances to turn healthy (Render waits longer; a laptop should not)
SETTLE_SECONDS = 2.0  # a worker or private service still running this long after its start is up
_SUFFIX = string.digits + string.ascii_lowercase


def instance_name(instance_id: str) -> str:
    return f"render-local-{instance_id}"


def disk_volume(service: Service) -> str:
    return f"render-local-{service.id}-{service.disk['name']}"


class Deployer:
    """Runs the deploys of one data dir, and keeps the live ones running."""

    def __init__(self, engine: Engine, state: State, services: ServiceCatalog, network: PrivateNetwork,
                 proxies: ProxyPool, data_dir: Path, prepare=lambda _service_id: None):
        self.engine = engine
        self.state = state
        self.store = state.store
        self.logs: LogStore = state.logs
        self.services = services
        self.network = network
        self.proxies = proxies
        self.data_dir = data_dir
        self.prepare = prepare  # starts the databases the service's env needs before its deploy runs anything
        self._deploying: dict[str, threading.Thread] = {}  # deploy id -> the thread running it
        self._followers: dict[str, tuple[threading.Thread, threading.Event]] = {}  # instance id -> its log follower
        self._service_locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    # -- what the faces ask -----------------------------------------------------------
    def create(self, service: Service, trigger: DeployTrigger = DeployTrigger.API, build_id: str | None = None) -> Deploy:
        """Record a deploy of the service's last successful build (or ``build_id``) and run it in a thread."""
        if not service.runs:
            raise InvalidInput(f"{service.name} is a cron job: it runs on its schedule (render-local cron trigger "
                               f"{service.name}), it has no instances to deploy")
        if service.suspended and trigger != DeployTrigger.SERVICE_RESUMED:
            raise Conflict(f"{service.name} is suspended: resume it (render-local services resume {service.name})")
        build_id = build_id or service.lastSuccessfulBuildId
        if not build_id:
            raise InvalidInput(f"service {service.name} has no successful build yet; build it first: "
                               f"render-local builds create {service.name}", field="serviceId")
        build = self.state.get_build(build_id)
        self.engine.client  # no engine: fail before recording a deploy nobody can run
        deploy = Deploy(id=new_id("dep"), serviceId=service.id, buildId=build.id, image=build.image,
                        status=DeployStatus.CREATED, createdAt=stamp(), trigger=trigger)
        deploy.events = [{"at": deploy.createdAt, "status": DeployStatus.CREATED, "message": f"created ({trigger})"}]
        thread = threading.Thread(target=self._run, args=(deploy.id,), name=f"deploy-{deploy.id}", daemon=True)
        with self._guard:
            self._deploying[deploy.id] = thread
        try:
            self.store.insert("deploys", deploy.to_doc())
        except BaseException:
            with self._guard:
                self._deploying.pop(deploy.id, None)
            raise
        thread.start()
        return deploy

    def wait(self, deploy_id: str, timeout: float) -> Deploy:
        with self._guard:
            thread = self._deploying.get(deploy_id)
        if thread is not None:
            thread.join(timeout)
        return self.state.get_deploy(deploy_id)

    def cancel(self, deploy_id: str) -> Deploy:
        """Ask a deploy in progress to stop before it goes live; the previous deploy stays."""
        now = stamp()

        def request(doc):
            if doc["status"] not in ACTIVE_DEPLOY_STATUSES:
                raise InvalidInput(f"deploy {deploy_id} already ended ({doc['status']}); nothing to cancel")
            doc["cancelRequestedAt"] = doc.get("cancelRequestedAt") or now

        self.state.get_deploy(deploy_id)
        self.store.update("deploys", deploy_id, request)
        return self.state.get_deploy(deploy_id)

    def suspend(self, service: Service) -> Service:
        """Stop the service's instances; its jobs run on. Resuming deploys its last live build again.
        A suspended cron job does not fire on its schedule (its runs going on end as they would)."""
        with self._lock_of(service.id):
            service = self.state.get_service(service.id)
            if not service.suspended:  # suspending a suspended service changes nothing
                now = stamp()
                service = self.services.update(service.id, suspended=True, suspendedAt=now,
                                               suspensions=[*service.suspensions, {"suspendedAt": now}])
            live = self.live(service)
            self.proxies.point(service.id, [])
            if live is not None:
                self._stop_instances(live, service.maxShutdownDelaySeconds)
        return service

    def resume(self, service: Service) -> Deploy | None:
        """Not suspended any more; its last live build is deployed again (none: nothing to run yet)."""
        with self._lock_of(service.id):
            service = self.state.get_service(service.id)
            suspensions = [dict(s) for s in service.suspensions]
            if service.suspended and suspensions and "resumedAt" not in suspensions[-1]:
                suspensions[-1]["resumedAt"] = stamp()
            service = self.services.update(service.id, suspended=False, suspendedAt=None, suspensions=suspensions)
        live = self.live(service)
        if live is None:
            return None
        return self.create(service, DeployTrigger.SERVICE_RESUMED, build_id=live.buildId)

    def down(self, service: Service) -> None:
        """Stop the service: its instances go, its live deploy is deactivated (``up`` deploys again)."""
        with self._lock_of(service.id):
            live = self.live(service)
            self.proxies.point(service.id, [])
            if live is not None:
                self._stop_instances(live, service.maxShutdownDelaySeconds)
                self._set_status(live.id, DeployStatus.DEACTIVATED, "stopped (render-local down)")
            self.services.update(service.id, liveDeployId=None)
        self.proxies.close(service.id)

    def remove_disk(self, service: Service) -> None:
        if service.disk:
            self.engine.remove_volume(disk_volume(service))

    def deploying(self) -> bool:
        with self._guard:
            return any(thread.is_alive() for thread in self._deploying.values())

    # -- one deploy ---------------------------------------------------------------------------
    def _run(self, deploy_id: str) -> None:
        try:
            deploy = self.state.get_deploy(deploy_id)
            with self._lock_of(deploy.serviceId):  # one deploy, suspend or resume of a service at a time
                self._deploy(deploy)
        except Exception as exc:  # a database did not start, the engine went away: the deploy failed, nothing else did
            why = str(exc) if isinstance(exc, RenderLocalError) else f"{type(exc).__name__}: {exc}"
            self._fail(deploy_id, DeployStatus.UPDATE_FAILED, why)
        finally:
            with self._guard:
                self._deploying.pop(deploy_id, None)

    def _deploy(self, deploy: Deploy) -> None:
        service = self.state.get_service(deploy.serviceId)
        if self._canceled(deploy.id):
            return
        self._update(deploy.id, startedAt=stamp())
        self.prepare(service.id)  # its databases and Key Value answer before anything of it runs
        if service.preDeployCommand:
            self._set_status(deploy.id, DeployStatus.PRE_DEPLOY_IN_PROGRESS, f"pre-deploy: {service.preDeployCommand}")
            code = self._pre_deploy(deploy, service)
            if code != 0:
                self._fail(deploy.id, DeployStatus.PRE_DEPLOY_FAILED,
                           f"pre-deploy command exited with code {code}: {service.preDeployCommand}", exitCode=code)
                return
            if self._canceled(deploy.id):
                return
        self._set_status(deploy.id, DeployStatus.UPDATE_IN_PROGRESS, f"starting {service.numInstances} instance(s)")
        old = self.live(service)
        if service.disk and old is not None:  # one instance may hold the disk: the old one stops first
            self._stop_instances(old, service.maxShutdownDelaySeconds)
        if service.type == "web":
            service = self._serve_url(service)
        instances = self._start_instances(deploy, service)
        problem = self._wait_healthy(deploy, service, instances)
        if problem is None and self._canceled(deploy.id, keep=False):
            problem = "canceled"
        if problem is not None:
            self._stop_instances(self.state.get_deploy(deploy.id), 0)
            if service.disk and old is not None:
                self._restart(old, service)  # its instances were stopped for the new one: they come back
            if problem == "canceled":
                self._set_status(deploy.id, DeployStatus.CANCELED, "canceled before it went live", final=True)
            else:
                self._fail(deploy.id, DeployStatus.UPDATE_FAILED, problem)
            return
        if service.type == "web":
            self.proxies.point(service.id, self._endpoints(instances, service))
        now = stamp()
        self._update(deploy.id, liveAt=now)
        self._set_status(deploy.id, DeployStatus.LIVE, "live", final=True)
        self.services.update(service.id, liveDeployId=deploy.id)
        if old is not None:
            self._stop_instances(old, service.maxShutdownDelaySeconds)
            self._set_status(old.id, DeployStatus.DEACTIVATED, f"replaced by {deploy.id}")

    def _pre_deploy(self, deploy: Deploy, service: Service) -> int:
        """The pre-deploy command in a container of its own: the new build, the service's env,
        the network; never the disk. Its output is the deploy's log."""
        engine = self.engine.client
        plan = service.plan
        container = engine.containers.create(
            deploy.image, entrypoint=["/bin/sh", "-c"], command=[CANCELABLE + service.preDeployCommand],
            environment=self._env(service, f"{service.id}-predeploy") | {"TINI_KILL_PROCESS_GROUP": "1"},
            name=f"render-local-{deploy.id}-predeploy", init=True, detach=True,
            **self.engine.limits(plan, deploy.image, bounded_log=False),  # its log is read from the engine's
            labels={LABEL: "pre-deploy", label("data-dir"): str(self.data_dir), label("deploy-id"): deploy.id,
                    label("service-id"): service.id},
            **self.network.join(),
        )
        self._update(deploy.id, preDeployContainerId=container.id)
        try:
            container.start()
            capture = LogCapture(engine.api, self.logs, deploy.id, container.id)
            capture.start_following()
            code = container.wait()["StatusCode"]
            capture.join()
            return code
        finally:
            container.remove(force=True)

    def _start_instances(self, deploy: Deploy, service: Service) -> list[dict]:
        return [self._start_instance(deploy, service) for _ in range(service.numInstances)]

    def _start_instance(self, deploy: Deploy, service: Service, instance_id: str | None = None) -> dict:
        instance_id = instance_id or f"{service.id}-{''.join(secrets.choice(_SUFFIX) for _ in range(5))}"
        engine = self.engine.client
        plan = service.plan
        command = service.own_start_command
        extra = {}
        if command:  # else the image's own CMD, as Render runs a Docker service without a dockerCommand
            extra = {"entrypoint": ["/bin/sh", "-c"], "command": [command]}
        if service.type == "web":
            extra["ports"] = {f"{service.port}/tcp": ("127.0.0.1", None)}
        if service.disk:
            volume = self.engine.volume(disk_volume(service), self.data_dir, "disk")
            extra["volumes"] = {volume: {"bind": service.disk["mountPath"], "mode": "rw"}}
        container = engine.containers.create(
            deploy.image, name=instance_name(instance_id), detach=True, init=True,
            environment=self._env(service, instance_id) | {"TINI_KILL_PROCESS_GROUP": "1"},
            **self.engine.limits(plan, deploy.image, bounded_log=False),  # its log is read from the engine's
            restart_policy={"Name": "unless-stopped"},  # a crashed instance restarts, as on Render
            labels={LABEL: "instance", label("data-dir"): str(self.data_dir), label("service-id"): service.id,
                    label("deploy-id"): deploy.id, label("instance-id"): instance_id},
            **self.network.join([service.name, service.internalHost]), **extra,
        )
        instance = {"id": instance_id, "containerId": container.id, "startedAt": None, "stoppedAt": None,
                    "planId": plan.id}  # what its time is billed at, whatever the plan becomes later

        def add(doc):
            doc["instances"] = [i for i in doc["instances"] if i["id"] != instance_id] + [instance]

        self.store.update("deploys", deploy.id, add)
        container.start()
        started = stamp()
        self._set_instance(deploy.id, instance_id, startedAt=started)
        instance["startedAt"] = started
        self._follow(instance_id, container.id)
        return instance

    def _env(self, service: Service, instance_id: str) -> dict[str, str]:
        """The service's env vars and Render's own (``PORT`` unless it sets one)."""
        env = dict(service.envVars) | {
            "RENDER": "true", "RENDER_SERVICE_ID": service.id, "RENDER_SERVICE_NAME": service.name,
            "RENDER_SERVICE_TYPE": service.type, "RENDER_INSTANCE_ID": instance_id, "IS_PULL_REQUEST": "false",
            "RENDER_CPU_COUNT": str(max(1, int(float(service.plan.cpu)))),
        }
        env.setdefault("PORT", str(service.port))
        if service.url:
            env |= {"RENDER_EXTERNAL_URL": service.url, "RENDER_EXTERNAL_HOSTNAME": "localhost"}
        return env

    def _serve_url(self, service: Service) -> Service:
        port = self.proxies.listen(service.id, service.name, service.proxyPort)
        if port != service.proxyPort:
            service = self.services.update(service.id, proxyPort=port)
        return service

    def _endpoints(self, instances: list[dict], service: Service) -> list[tuple[str, int]]:
        """Where the URL's proxy sends connections: each instance's published port."""
        return [("127.0.0.1", port) for port in self._host_ports(instances, service)]

    def _host_ports(self, instances: list[dict], service: Service) -> list[int]:
        ports = []
        for instance in instances:
            container = self.engine.client.containers.get(instance["containerId"])
            bound = (container.attrs["NetworkSettings"]["Ports"] or {}).get(f"{service.port}/tcp") or []
            ports.extend(int(binding["HostPort"]) for binding in bound if binding.get("HostIp") in ("127.0.0.1", ""))
        return ports

    def _wait_healthy(self, deploy: Deploy, service: Service, instances: list[dict]) -> str | None:
        """None once every instance is up; else why not (a crash, or no answer in time)."""
        timeout = seconds_setting(ENV_DEPLOY_TIMEOUT, os.environ.get(ENV_DEPLOY_TIMEOUT), DEPLOY_TIMEOUT_SECONDS)
        deadline = time.monotonic() + timeout
        healthy: set[str] = set()
        while time.monotonic() < deadline:
            if self._canceled(deploy.id, keep=False):
                return "canceled"
            for instance in instances:
                if instance["id"] in healthy:
                    continue
                container = self.engine.client.containers.get(instance["containerId"])
                state = container.attrs["State"]
                if state.get("Restarting") or state.get("RestartCount") or not state.get("Running"):
                    code = state.get("ExitCode")
                    return f"instance {instance['id']} exited with code {code} before it was healthy"
                if self._answers(container, service, instance):
                    healthy.add(instance["id"])
            if len(healthy) == len(instances):
                return None
            time.sleep(HEALTH_PROBE_SECONDS)
        what = f"{service.healthCheckPath} did not answer 2xx/3xx" if service.healthCheckPath else "it did not answer"
        return f"not healthy after {timeout} s: {what}"

    def _answers(self, container, service: Service, instance: dict) -> bool:
        if service.type != "web":
            started = instance.get("startedAt")
            return started is not None and time.time() - _epoch(started) >= SETTLE_SECONDS
        bound = (container.attrs["NetworkSettings"]["Ports"] or {}).get(f"{service.port}/tcp") or []
        if not bound:
            return False
        return self._probe("127.0.0.1", int(bound[0]["HostPort"]), service)

    def _probe(self, host: str, port: int, service: Service) -> bool:
        """Whether a web instance published at ``host:port`` is healthy."""
        if service.healthCheckPath:
            try:
                with urllib.request.urlopen(f"http://{host}:{port}{service.healthCheckPath}", timeout=2) as response:
                    return 200 <= response.status < 400
            except urllib.error.HTTPError as exc:
                return 300 <= exc.code < 400
            except (OSError, ValueError):
                return False
        # no health check path: the port answers at all (the engine's proxy accepts connections even
        # when nothing listens inside, so a reply is what counts)
        try:
            with socket.create_connection((host, port), timeout=2) as sock:
                sock.sendall(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
                return bool(sock.recv(1))
        except OSError:
            return False

    # -- instances ------------------------------------------------------------------------------
    def _stop_instances(self, deploy: Deploy, grace: int) -> None:
        """SIGTERM, then SIGKILL after ``grace`` seconds; the containers go."""
        for instance in deploy.instances:
            if instance.get("stoppedAt"):
                continue
            self._stop_following(instance["id"])
            try:
                container = self.engine.client.containers.get(instance["containerId"])
                container.stop(timeout=grace)
                container.remove(force=True)
            except Exception as exc:
                if not is_not_found(exc):
                    raise
            self._set_instance(deploy.id, instance["id"], stoppedAt=stamp())

    def _restart(self, deploy: Deploy, service: Service) -> None:
        """Start a stopped deploy's instances again (their ids kept)."""
        for instance in deploy.instances:
            self._start_instance(deploy, service, instance["id"])

    def _follow(self, instance_id: str, container_id: str, baseline: dict | None = None) -> None:
        """Copy the instance's output into its log, across its restarts, until it is stopped here.
        ``baseline``: the log's line counts before this container's first line (a swarm task that
        replaced a crashed one is a new container whose log starts again from nothing)."""
        with self._guard:
            running = self._followers.get(instance_id)
            if running is not None and running[0].is_alive():
                return
            stop = threading.Event()
            thread = threading.Thread(target=self._copy_instance_log, args=(instance_id, container_id, stop, baseline),
                                      name=f"logs-{instance_id}", daemon=True)
            self._followers[instance_id] = (thread, stop)
        thread.start()

    def _copy_instance_log(self, instance_id: str, container_id: str, stop: threading.Event,
                           baseline: dict | None = None) -> None:
        api = self.engine.api
        while not stop.is_set():
            try:
                capture = LogCapture(api, self.logs, instance_id, container_id, baseline=baseline)
                capture.start_following()
                capture.join()
                state = api.inspect_container(container_id)["State"]
            except Exception as exc:
                if is_not_found(exc):
                    return  # removed: nothing more will come
                state = {}
            if not (state.get("Running") or state.get("Restarting")):
                stop.wait(1.0)  # exited: the restart policy brings it back, or this instance was stopped
            else:
                stop.wait(0.2)

    def _orphaned(self, deploy_id: str) -> bool:
        """Whether an active deploy has no thread here: asked per deploy under the guard and read
        again, as a deploy created (or ended) since the list was read is not a crash's leftover."""
        with self._guard:
            if deploy_id in self._deploying:
                return False
        return self.state.get_deploy(deploy_id).status in ACTIVE_DEPLOY_STATUSES

    def _stop_following(self, instance_id: str) -> None:
        with self._guard:
            running = self._followers.pop(instance_id, None)
        if running is not None:
            running[1].set()

    # -- keeping the live deploys running (the supervisor's pass) ----------------------------------
    def reconcile(self) -> None:
        """After a crash, or every pass: deploys no thread runs ended, instances' logs followed,
        web URLs served, instances of suspended or removed services stopped, lost instances started again."""
        for deploy in self.state.list_deploys():
            if deploy.status in ACTIVE_DEPLOY_STATUSES and self._orphaned(deploy.id):
                self._stop_instances(deploy, 0)  # a control plane died during it: what it started goes
                self._fail(deploy.id, DeployStatus.UPDATE_FAILED, "render-local stopped during this deploy")
        with self._guard:
            running = set(self._deploying)
        for service in self.state.list_services(include_removed=True):
            live = self.live(service)
            if live is None or live.id in running:
                continue
            lock = self._lock_of(service.id)
            if not lock.acquire(blocking=False):
                continue  # a suspend or resume runs: it decides
            try:
                self._keep(service, live)
            finally:
                lock.release()

    def _keep(self, service: Service, live: Deploy) -> None:
        if service.suspended or not service.inBlueprint:
            if any(not i.get("stoppedAt") for i in live.instances):
                self._stop_instances(live, service.maxShutdownDelaySeconds)
            return
        if any(i.get("stoppedAt") for i in live.instances) or not live.instances:
            return  # stopped by down or a failed disk deploy's rollback: nothing to keep
        for instance in live.instances:
            try:
                container = self.engine.client.containers.get(instance["containerId"])
            except Exception as exc:
                if not is_not_found(exc):
                    raise
                fresh = self._start_instance(live, service, instance["id"])  # removed by hand: started again
                instance.update(fresh)
                continue
            if container.attrs["State"].get("Running") or container.attrs["State"].get("Restarting"):
                self._follow(instance["id"], container.id)
            elif container.attrs["State"].get("Status") in ("exited", "created"):
                container.start()  # stopped by hand (docker stop): a live deploy runs
                self._follow(instance["id"], container.id)
        if service.type == "web":
            service = self._serve_url(service)
            self.proxies.point(service.id, self._endpoints(live.instances, service))

    # -- records ----------------------------------------------------------------------------------
    def live(self, service: Service) -> Deploy | None:
        if not service.liveDeployId:
            return None
        deploy = self.state.get_deploy(service.liveDeployId)
        return deploy if deploy.status == DeployStatus.LIVE else None

    def _lock_of(self, service_id: str) -> threading.Lock:
        with self._guard:
            return self._service_locks.setdefault(service_id, threading.Lock())

    def _update(self, deploy_id: str, **changes) -> Deploy:
        return Deploy.from_doc(self.store.update("deploys", deploy_id, lambda d: d.update(changes)))

    def _set_instance(self, deploy_id: str, instance_id: str, **changes) -> None:
        def change(doc):
            for instance in doc["instances"]:
                if instance["id"] == instance_id:
                    instance.update(changes)

        self.store.update("deploys", deploy_id, change)

    def _set_status(self, deploy_id: str, status: DeployStatus, message: str, final: bool = False) -> None:
        now = stamp()

        def change(doc):
            doc["status"] = status
            doc["events"].append({"at": now, "status": status, "message": message})
            if final:
                doc["finishedAt"] = now

        self.store.update("deploys", deploy_id, change)

    def _fail(self, deploy_id: str, status: DeployStatus, message: str, **details) -> None:
        self._update(deploy_id, failureReason={"message": message, **details})
        self._set_status(deploy_id, status, message, final=True)

    def _canceled(self, deploy_id: str, keep: bool = True) -> bool:
        """Whether a cancel was asked for; unless ``keep``, the caller ends the deploy itself."""
        if not self.state.get_deploy(deploy_id).cancelRequestedAt:
            return False
        if keep:
            self._set_status(deploy_id, DeployStatus.CANCELED, "canceled before it went live", final=True)
        return True


def _epoch(stamped: str) -> float:
    from renderlocal.core.clock import parse_stored

    return parse_stored(stamped).timestamp()

