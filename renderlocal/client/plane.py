"""A control plane in another process, as a face in this one sees it: reads from
the data dir's files (``State``), commands over the API, changes from its event
stream. The terminal app uses it when it is not the control plane itself; it
offers what ``executor.control.ControlPlane`` offers faces, with the same errors.
"""

from __future__ import annotations

import threading
from pathlib import Path

from renderlocal.client.connect import connect
from renderlocal.client.remote import Unreachable
from renderlocal.core.errors import RenderLocalError
from renderlocal.core.models import Build, Deploy, Job, Service
from renderlocal.core.state import State
from renderlocal.executor.changes import Change


class RemotePlane:
    def __init__(self, data_dir: Path, blueprint: Path):
        self.data_dir = Path(data_dir)
        self.blueprint_path = Path(blueprint)
        self.state = State(self.data_dir)
        self.remote = connect(self.data_dir, self.blueprint_path)
        status = self.remote.status()
        self.warnings: list[str] = list(status["warnings"])
        self.pid: int = status["pid"]
        self.seen = (status["seq"], status["epoch"])  # where listen() starts: no change is missed

    def _reconnect(self) -> None:
        """The control plane went away: the next one (started now if none runs; it adopts the jobs)."""
        self.remote = connect(self.data_dir, self.blueprint_path)
        status = self.remote.status()
        self.pid, self.seen = status["pid"], (status["seq"], status["epoch"])

    def _ask(self, request):
        """``request(remote)``; if the control plane went away before it was sent, once more to the next one."""
        try:
            return request(self.remote)
        except Unreachable:
            self._reconnect()
            return request(self.remote)

    # -- commands ---------------------------------------------------------------------
    def create_job(self, service_ref: str, start_command: str | None = None, plan_id: str | None = None,
                   env=None) -> Job:
        from renderlocal.core.envvars import parse_env_overrides

        service = self._ask(lambda remote: remote.get_service(service_ref))
        command = start_command if start_command is not None else self.state.get_service(service["id"]).own_start_command
        overrides = parse_env_overrides(env)
        created = self._ask(lambda remote: remote.create_job(service, command or "", plan_id, overrides))
        return self.state.get_job(created["id"])

    def cancel_job(self, job_id: str) -> Job:
        job = self.state.get_job(job_id)
        self._ask(lambda remote: remote.cancel_job(job.serviceId, job_id))
        return self.state.get_job(job_id)

    def build(self, service_ref: str) -> Build:
        return self.state.get_build(self._ask(lambda remote: remote.create_build(service_ref))["id"])

    def cancel_build(self, build_id: str) -> Build:
        self._ask(lambda remote: remote.cancel_build(build_id))
        return self.state.get_build(build_id)

    def deploy(self, service_ref: str, trigger=None) -> Deploy:
        """Deploy the service (the API records it as Render does: trigger ``api``)."""
        return self.state.get_deploy(self._ask(lambda remote: remote.create_deploy(service_ref))["id"])

    def suspend(self, service_ref: str) -> Service:
        self._ask(lambda remote: remote.suspend(service_ref))
        return self.state.get_service(service_ref)

    def resume(self, service_ref: str) -> None:
        self._ask(lambda remote: remote.resume(service_ref))

    def up(self, service_refs: list[str] | None = None) -> tuple[list[Build], list[Deploy], list[str]]:
        started = self._ask(lambda remote: remote.up(service_refs))
        return ([self.state.get_build(b["id"]) for b in started["builds"]],
                [self.state.get_deploy(d["id"]) for d in started["deploys"]], started["dataStores"])

    def down(self, volumes: bool = False) -> None:
        self._ask(lambda remote: remote.down(volumes))

    def set_watch(self, service_ref: str, on: bool) -> Service:
        return self.state.get_service(self._ask(lambda remote: remote.set_watch(service_ref, on))["id"])

    def set_log_stream(self, endpoint: str, tls: bool = False, token: str | None = None, insecure: bool = False,
                       max_queue_bytes: int | None = None) -> dict:
        return self._ask(lambda remote: remote.set_log_stream(endpoint, tls, token, insecure, max_queue_bytes))

    def clear_log_stream(self) -> None:
        self._ask(lambda remote: remote.clear_log_stream())

    def set_log_stream_service(self, service_ref: str, enabled: bool) -> dict:
        return self._ask(lambda remote: remote.set_log_stream_service(service_ref, enabled))

    def rehearse(self, service_ref: str, start_command: str, plan_id: str | None = None,
                 database_ref: str | None = None) -> dict:
        return self._ask(lambda remote: remote.rehearse(service_ref, start_command, plan_id, database_ref))

    def decide_rehearsal(self, rehearsal_id: str, keep: bool) -> dict:
        return self._ask(lambda remote: remote.decide_rehearsal(rehearsal_id, keep))

    def compare_plans(self, service_ref: str, start_command: str, plan_ids: list[str] | None = None,
                      sequential: bool = True, env=None) -> dict:
        from renderlocal.core.envvars import parse_env_overrides

        overrides = parse_env_overrides(env)
        return self._ask(lambda remote: remote.compare_plans(service_ref, start_command, plan_ids, sequential, overrides))

    # -- live figures and shells (as the in-process ControlPlane offers them) ------------------
    def running_container(self, ref: str) -> dict:
        return self._ask(lambda remote: remote.running_container(ref))

    def resource_figures(self, ref: str | None = None):
        return self._ask(lambda remote: remote.resource_figures(ref))

    # -- changes ------------------------------------------------------------------------
    def listen(self, callback):
        """``callback(change)`` (None: reload everything) from a thread that long-polls the
        control plane's events; returns the way to stop."""
        stop = threading.Event()

        def run() -> None:
            after, epoch = self.seen
            while not stop.is_set():
                try:
                    answer = self.remote.events(after, epoch, timeout=10)
                except Unreachable:
                    if stop.wait(1.0):
                        return
                    try:
                        self._reconnect()
                    except RenderLocalError:  # none could be started: try again in a second
                        continue
                    after, epoch = self.seen
                    callback(None)
                    continue
                if stop.is_set():
                    return
                if answer["reset"]:
                    callback(None)
                for item in answer["changes"]:
                    callback(Change(item["seq"], item["kind"], item.get("id"), item.get("status")))
                after, epoch = answer["seq"], answer["epoch"]

        threading.Thread(target=run, name="control-plane-events", daemon=True).start()
        return stop.set
