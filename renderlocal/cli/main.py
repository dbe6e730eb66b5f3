"""Entry point of ``render-local``: the scriptable face.

Every command asks the data dir's control plane over its local API (started
in the background when none runs: ``client/connect.py``), as Render's own CLI
asks Render; its JSON output is the API's JSON. Only ``serve`` (which is a
control plane) and the terminal app import what runs jobs. Heavy modules are
imported inside commands.
"""

from __future__ import annotations

import os
import sys
import time

import click

from renderlocal import __version__
from renderlocal.cli.billing import billing
from renderlocal.cli.compare import show_comparison
from renderlocal.cli.rehearse import DATABASE_COMMANDS, rehearse
from renderlocal.cli.output import (confirm_option, emit, fail, global_confirm_option, global_output_option,
                                    output_option, resolve_output)
from renderlocal.core.engine_address import BACKENDS, ENV_BACKEND
from renderlocal.core.errors import NotFound, RenderLocalError
from renderlocal.core.statuses import FINAL_DEPLOY_STATUSES, FINAL_JOB_STATUSES, BuildStatus, DeployStatus, JobStatus


class Context:
    """What every command needs: the options, and the control plane on demand."""

    current: Context | None = None  # this call's: main() stops a control plane a failed call started

    def __init__(self, data_dir, blueprint):
        from renderlocal.core.datadir import resolve_blueprint, resolve_data_dir

        self.data_dir = resolve_data_dir(data_dir)
        self.blueprint = resolve_blueprint(blueprint)
        self._plane = None
        self.status: dict = {}
        Context.current = self

    @property
    def plane(self):
        """The data dir's control plane (serve, the app, or one started now), asked over its API."""
        if self._plane is None:
            from renderlocal.client.connect import connect

            self._plane = connect(self.data_dir, self.blueprint, lambda text: click.echo(f"render-local: {text}", err=True))
            self.status = self._plane.last_status or self._plane.status()
            for warning in _not_yet_shown(self.data_dir, self.blueprint, self.status["warnings"]):
                click.echo(f"render-local: warning: {warning}", err=True)
        return self._plane

    def leave_no_plane_started(self) -> None:
        """After a failed call: stop the control plane this call started, unless it runs something."""
        if self._plane is not None:
            from renderlocal.client.connect import stop_if_started_for_nothing

            stop_if_started_for_nothing(self._plane)

    def reconnect(self):
        """After the control plane went away mid-command: the next one (it adopts what ran)."""
        self._plane = None
        return self.plane

    @property
    def logs(self):
        """The data dir's log files (read directly: they are the durable record)."""
        from renderlocal.core.logstore import LogStore

        return LogStore(self.data_dir / "logs")


pass_ctx = click.make_pass_decorator(Context)

WARNINGS_SHOWN_FILE = "warnings-shown.json"


def _not_yet_shown(data_dir, blueprint, warnings: list[str]) -> list[str]:
    """The warnings no CLI call printed yet for this version of the blueprint file: each is said
    once per change of the file (remembered in the data dir), not on every call."""
    import hashlib
    import json

    from renderlocal.core.atomic import write_atomic

    try:
        digest = hashlib.sha256(blueprint.read_bytes()).hexdigest()
    except OSError:
        digest = ""
    record = data_dir / WARNINGS_SHOWN_FILE
    try:
        shown = json.loads(record.read_text())
        shown = shown["shown"] if shown.get("blueprint") == str(blueprint) and shown.get("sha256") == digest else []
    except (OSError, ValueError, AttributeError, KeyError):
        shown = []
    new = [w for w in warnings if w not in shown]
    if new:
        try:
            write_atomic(record, json.dumps({"blueprint": str(blueprint), "sha256": digest, "shown": shown + new}),
                         durable=False)
        except OSError:
            pass  # a read-only data dir: they are said again next time
    return new


@click.group(invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--data-dir", envvar="RENDER_LOCAL_HOME", type=click.Path(file_okay=False), help="State directory (default: RENDER_LOCAL_HOME, else the user data dir).")
@click.option("--blueprint", type=click.Path(dir_okay=False), help="render.yaml to load (default: ./render.yaml, else the bundled samples).")
@click.option("--engine", "backend", envvar=ENV_BACKEND, type=click.Choice(BACKENDS),
              help=f"How jobs and services run: local containers (default), or swarm services on a swarm manager's cluster ({ENV_BACKEND}).")
@global_output_option(envvar="RENDER_OUTPUT")
@global_confirm_option
@click.version_option(__version__, prog_name="render-local")
@click.pass_context
def cli(ctx, data_dir, blueprint, backend, output, confirm):
    """render-local: Render's one-off jobs on your machine.

    With no command, opens the terminal app. -o and --confirm apply to every
    command (as in Render's CLI); given after a command, its own value wins.
    """
    if backend:  # read where the engine is used: this process, and a control plane it starts
        os.environ[ENV_BACKEND] = backend
    ctx.obj = Context(data_dir, blueprint)
    if ctx.invoked_subcommand is None:
        from renderlocal.tui.app import run_tui

        run_tui(ctx.obj.data_dir, ctx.obj.blueprint, chosen=blueprint is not None)


cli.add_command(billing)


@cli.command("init")
@click.argument("directory", default=".", type=click.Path(file_okay=False))
def init_command(directory):
    """Write the bundled sample services (render.yaml and their code) into DIRECTORY."""
    import shutil
    from pathlib import Path

    from renderlocal.core.datadir import samples_dir

    target = Path(directory)
    source = samples_dir()
    clashes = [p.name for p in source.iterdir() if (target / p.name).exists()]
    if clashes:
        fail(f"{target} already has {', '.join(sorted(clashes))}; pick an empty folder")
    target.mkdir(parents=True, exist_ok=True)
    shutil.copytree(source, target, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    click.echo(f"wrote the sample services to {target.resolve()}; next: cd {directory} && render-local")


@cli.group(invoke_without_command=True)
@global_output_option()
@click.pass_context
def services(ctx, output):
    """Services from the blueprint; alone, lists them (as Render's `render services`)."""
    if ctx.invoked_subcommand is None:
        _list_services(ctx.find_object(Context), resolve_output(ctx, output))


@services.command("list")
@output_option
@pass_ctx
def services_list(obj: Context, output):
    """List the blueprint's services."""
    _list_services(obj, output)


def _list_services(obj: Context, output: str) -> None:
    # Render's CLI prints each as {"service": ...} (pkg/service/model.go; no project or environment here)
    items = obj.plane.list_services()
    if output == "text":  # which render.yaml these come from (a folder without one shows the samples)
        click.echo(f"blueprint: {obj.blueprint}", err=True)
    emit([{"service": s} for s in items], output, SERVICE_COLUMNS, [_service_row(s) for s in items])


@services.command("get")
@click.argument("service")
@output_option
@pass_ctx
def services_get(obj: Context, service, output):
    """Show SERVICE as Render's API does (serviceDetails.url: where a web service answers)."""
    found = obj.plane.get_service(service)
    emit(found, output, SERVICE_COLUMNS, [_service_row(found)])


@services.command("suspend")
@click.argument("service")
@pass_ctx
def services_suspend(obj: Context, service):
    """Stop SERVICE's instances (its jobs run on); resume deploys its last live build again."""
    obj.plane.suspend(service)
    if obj.plane.get_service(service)["type"] == "cron_job":
        click.echo(f"{service}: suspended; it does not run on its schedule until resumed (a run going on ends as it would)")
    else:
        click.echo(f"{service}: suspended; its running jobs go on")


@services.command("resume")
@click.argument("service")
@click.option("--wait", is_flag=True, help="Wait until it is live again; exit 1 if that deploy fails.")
@output_option
@pass_ctx
def services_resume(obj: Context, service, wait, output):
    """Deploy SERVICE's last live build again."""
    found = obj.plane.get_service(service)
    obj.plane.resume(found["id"])
    if found["type"] == "cron_job":
        click.echo(f"{found['name']}: resumed; it runs on its schedule again")
        return
    deploys = obj.plane.list_deploys(found["id"])
    if not deploys or deploys[0]["trigger"] != "service_resumed":
        click.echo(f"{found['name']}: resumed; it was never live, so nothing is deployed (render-local up)")
        return
    if _finish_deploys(obj, [deploys[0]], wait, output):
        sys.exit(1)


SERVICE_COLUMNS = [("id", "id"), ("name", "name"), ("type", "type"), ("state", "state"), ("url", "url"),
                   ("plan", "plan"), ("last build", "build")]


def _service_row(service: dict) -> dict:
    details = service["serviceDetails"]
    state = "suspended" if service["suspended"] == "suspended" else "live" if service.get("liveDeployId") else "-"
    return {"id": service["id"], "name": service["name"], "type": service["type"], "state": state,
            "url": details.get("url", ""), "plan": service["planId"], "build": service.get("lastSuccessfulBuildId") or "-"}


# -- databases and Key Value -------------------------------------------------------------
DATA_STORE_COLUMNS = [("id", "id"), ("name", "name"), ("kind", "kind"), ("plan", "plan"), ("status", "status"),
                      ("external url", "external")]


@cli.group()
def databases():
    """The blueprint's PostgreSQL databases and Key Value: state, connection strings, dumps and snapshots."""


for _command in DATABASE_COMMANDS:
    databases.add_command(_command)
cli.add_command(rehearse)


@databases.command("list")
@output_option
@pass_ctx
def databases_list(obj: Context, output):
    """List the databases and Key Value, with their state."""
    plane = obj.plane
    items = [("postgres", d) for d in plane.list_databases()] + [("keyValue", k) for k in plane.list_key_values()]
    rows = [{"id": item["id"], "name": item["name"], "plan": item["plan"], "status": item["status"],
             "kind": _store_kind(kind, item), "external": _masked_url(plane, item["id"])} for kind, item in items]
    # as Render's `render services` prints data stores: {"postgres": ...} and {"keyValue": ...}
    emit([{kind: item} for kind, item in items], output, DATA_STORE_COLUMNS, rows)


@databases.command("get")
@click.argument("name")
@output_option
@pass_ctx
def databases_get(obj: Context, name, output):
    """Show a database or Key Value and how to connect: inside the private network and from here."""
    kind, found, info = obj.plane.get_data_store(name)
    row = {"id": found["id"], "name": found["name"], "plan": found["plan"], "status": found["status"],
           "kind": _store_kind(kind, found), "external": info["externalConnectionString"]}
    emit(found | {"connectionInfo": info}, output, DATA_STORE_COLUMNS + [("internal url", "internal")],
         [row | {"internal": info["internalConnectionString"]}])


def _masked_url(plane, store_id: str) -> str:
    """The URL for this machine, password hidden (``databases get`` shows it)."""
    _kind, _found, info = plane.get_data_store(store_id)
    url = info["externalConnectionString"]
    return url.replace(info["password"], "****") if info.get("password") else url


def _store_kind(kind: str, item: dict) -> str:
    if kind != "postgres":
        return "Key Value"
    running = (item.get("image") or "").partition(":")[2]  # the nearest version, when the one asked is not here
    return f"PostgreSQL {running or item['version']}" + (f" (asked {item['version']})" if running and running != item["version"] else "")


@cli.command("psql", context_settings={"ignore_unknown_options": True})
@click.argument("name")
@click.argument("psql_args", nargs=-1, type=click.UNPROCESSED)
@pass_ctx
def psql_command(obj: Context, name, psql_args):
    """Open psql on a database, as `render psql` does (extra arguments go to psql)."""
    import os
    import shutil

    kind, found, info = obj.plane.get_data_store(name)
    if kind != "postgres":
        raise click.UsageError(f"{name} is a Key Value: {info['cliCommand']}")
    if found["status"] != "available":
        raise click.UsageError(f"{name} is {found['status']}: render-local up starts it")
    if shutil.which("psql"):
        os.execvp("psql", ["psql", info["externalConnectionString"], *psql_args])
    # no psql here: the one in its own container (a terminal only when there is one: scripts pipe SQL in)
    import sys

    flags = "-it" if sys.stdin.isatty() else "-i"
    if not shutil.which("docker"):
        raise click.ClickException(f"neither psql nor docker is on PATH; connect with: {info['externalConnectionString']}")
    os.execvp("docker", ["docker", "exec", flags, f"render-local-{found['id']}", "psql", "-U", found["databaseUser"],
                         found["databaseName"], *psql_args])


# A login shell: bash where the image has it, else sh (busybox and slim images have only sh).
LOGIN_SHELL = ["/bin/sh", "-c", "if command -v bash >/dev/null 2>&1; then exec bash; else exec sh; fi"]


@cli.command("ssh", context_settings={"ignore_unknown_options": True})
@click.argument("ref", metavar="ID")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@pass_ctx
def ssh_command(obj: Context, ref, command):
    """Open a shell in a running job or service instance, as `render ssh` does (over docker exec).

    ID: a job id, an instance id, or a service's name or id (its first running instance). After
    `--`, a command to run there instead of the shell; its exit code is this command's.
    """
    import os
    import shutil

    target = obj.plane.running_container(ref)
    argv = list(command) or LOGIN_SHELL
    terminal = sys.stdin.isatty() and sys.stdout.isatty()
    if shutil.which("docker"):  # the engine's own client: a terminal, resizing and signals done right
        os.execvp("docker", ["docker", "exec", "-it" if terminal else "-i", target["containerId"], *argv])
    if terminal and not command:
        raise click.ClickException("an interactive shell needs the docker CLI on PATH; "
                                   f"without it, give a command: render-local ssh {ref} -- COMMAND")
    from renderlocal.executor.engine import connect

    sys.exit(_exec_without_terminal(connect().api, target["containerId"], argv))


def _exec_without_terminal(api, container_id: str, argv: list[str]) -> int:
    """Run ``argv`` in the container through the engine's API, its output to ours; its exit code."""
    exec_id = api.exec_create(container_id, argv, stdout=True, stderr=True)["Id"]
    for out, err in api.exec_start(exec_id, stream=True, demux=True):
        for chunk, stream in ((out, sys.stdout), (err, sys.stderr)):
            if chunk:
                stream.buffer.write(chunk)
                stream.flush()
    return api.exec_inspect(exec_id)["ExitCode"] or 0


# -- deploys -------------------------------------------------------------------------
DEPLOY_COLUMNS = [("id", "id"), ("status", "status"), ("trigger", "trigger"), ("build", "buildId"),
                  ("created", "created"), ("reason", "reason")]


def _deploy_row(deploy: dict) -> dict:
    from renderlocal.core.clock import parse_stored, to_local_text

    return deploy | {"created": to_local_text(parse_stored(deploy["createdAt"])),
                     "reason": (deploy.get("failureReason") or {}).get("message", "")}


@cli.group()
def deploys():
    """Deploys: a service's last successful build run as its instances (Render CLI: render deploys ...)."""


@deploys.command("create")
@click.argument("service")
@click.option("--wait", is_flag=True, help="Wait until it is live (exit 0) or failed (exit 1).")
@output_option
@pass_ctx
def deploys_create(obj: Context, service, wait, output):
    """Deploy SERVICE's last successful build; the previous deploy serves until this one is healthy."""
    if _finish_deploys(obj, [obj.plane.create_deploy(service)], wait, output):
        sys.exit(1)


@deploys.command("list")
@click.argument("service")
@output_option
@pass_ctx
def deploys_list(obj: Context, service, output):
    """List SERVICE's deploys, newest first."""
    items = obj.plane.list_deploys(service)
    emit(items, output, DEPLOY_COLUMNS, [_deploy_row(d) for d in items])  # bare deploys, as Render's CLI


def _finish_deploys(obj: Context, started: list[dict], wait: bool, output) -> bool:
    """Print the deploys (once ended, with ``wait``); whether one of them did not go live."""
    ended = {d["id"]: d for d in started}
    if wait:
        def all_ended(plane) -> bool:
            for deploy_id, deploy in ended.items():
                if deploy["status"] not in FINAL_DEPLOY_STATUSES:
                    ended[deploy_id] = plane.get_deploy(deploy["serviceId"], deploy_id)
            return all(d["status"] in FINAL_DEPLOY_STATUSES for d in ended.values())

        _wait_for(obj, all_ended)
    result = list(ended.values())
    emit(result if len(result) != 1 else result[0], output, DEPLOY_COLUMNS, [_deploy_row(d) for d in result])
    failed = [d for d in result if wait and d["status"] != DeployStatus.LIVE]
    for deploy in failed:
        reason = (deploy.get("failureReason") or {}).get("message") or deploy["status"]
        click.echo(f"render-local: deploy {deploy['id']} {deploy['status']}: {reason}", err=True)
    return bool(failed)


@cli.command("up")
@click.argument("names", nargs=-1, metavar="[SERVICE]...")
@click.option("--no-wait", is_flag=True, help="Return once the builds, deploys and data stores started.")
@output_option
@pass_ctx
def up_command(obj: Context, names, no_wait, output):
    """Bring every service (or those named) up: start the databases and Key Value (those the named
    services need), build what has no successful build, then deploy what is not live yet. Exit 1 if
    a data store, a build or a deploy failed."""
    started = obj.plane.up(list(names) or None)
    builds = {b["id"]: b for b in started["builds"]}
    deploys = {d["id"]: d for d in started["deploys"]}
    stores: dict[str, dict] = {store_id: {"status": "creating"} for store_id in started.get("dataStores", [])}
    if builds:
        names = {s["id"]: s["name"] for s in obj.plane.list_services()}
        for build in builds.values():
            then = "it fires on its schedule" if build["serviceId"].startswith("crn-") else "it is deployed"
            click.echo(f"render-local: building {names.get(build['serviceId'], build['serviceId'])} ({build['id']}); "
                       f"{then} once it succeeds", err=True)
    if not builds and not deploys and not stores:
        click.echo("render-local: every service is up already (or suspended)", err=True)
        return
    if no_wait:
        emit(started, output, DEPLOY_COLUMNS, [_deploy_row(d) for d in deploys.values()])
        return

    def all_up(plane) -> bool:
        for store_id, store in stores.items():
            if store["status"] == "creating":
                stores[store_id] = plane.get_data_store(store_id)[1]
        for build_id, build in list(builds.items()):
            if build["status"] == BuildStatus.BUILDING:
                builds[build_id] = build = plane.get_build(build_id)
            if build["status"] == BuildStatus.SUCCEEDED and not build.get("_deploy"):
                found = next((d for d in plane.list_deploys(build["serviceId"]) if d["buildId"] == build_id), None)
                if found is not None:  # the control plane deploys it once built
                    build["_deploy"] = found["id"]
                    deploys[found["id"]] = found
                elif plane.get_service(build["serviceId"])["type"] != "cron_job":
                    return False
        for deploy_id, deploy in deploys.items():
            if deploy["status"] not in FINAL_DEPLOY_STATUSES:
                deploys[deploy_id] = plane.get_deploy(deploy["serviceId"], deploy_id)
        return (all(s["status"] != "creating" for s in stores.values())
                and all(b["status"] != BuildStatus.BUILDING for b in builds.values())
                and all(d["status"] in FINAL_DEPLOY_STATUSES for d in deploys.values()))

    _wait_for(obj, all_up)
    failed_stores = [s for s in stores.values() if s["status"] != "available"]
    for store in stores.values():
        if store["status"] == "available":
            click.echo(f"render-local: {store['name']} is available "
                       f"(render-local databases get {store['name']} shows how to connect)", err=True)
        else:
            click.echo(f"render-local: {store['name']} is {store['status']}: {store.get('statusMessage', '')}", err=True)
    failed_builds = [b for b in builds.values() if b["status"] != BuildStatus.SUCCEEDED]
    for build in failed_builds:
        reason = (build.get("failureReason") or {}).get("message", build["status"])
        click.echo(f"render-local: build {build['id']} of {build['serviceId']} {build['status']}: {reason}", err=True)
    failed = _finish_deploys(obj, list(deploys.values()), True, output) if deploys else False  # all ended: prints
    if failed or failed_builds or failed_stores:
        sys.exit(1)


@cli.command("down")
@click.option("--volumes", is_flag=True, help="Remove the services' disks, the databases' and Key Value's data and the private network too.")
@pass_ctx
def down_command(obj: Context, volumes):
    """Stop every service's instances and the databases and Key Value (running jobs run on); up
    starts them again, with their data."""
    obj.plane.down(volumes)
    click.echo("services, databases and Key Value stopped" +
               ("; disks, their data and the private network removed" if volumes else ""))


@cli.group()
def cron():
    """Cron services: they run on their schedule while a control plane runs."""


@cron.command("trigger")
@click.argument("service")
@click.option("--wait", is_flag=True, help="Wait for the run's end; exit 0 on success, 1 otherwise.")
@output_option
@pass_ctx
def cron_trigger(obj: Context, service, wait, output):
    """Run the cron SERVICE now (one run at a time, as on Render)."""
    job = obj.plane.trigger_cron(service)
    holder = {"job": job}
    if wait:
        def ended(plane) -> bool:
            holder["job"] = plane.get_job(job["serviceId"], job["id"])
            return holder["job"]["status"] in FINAL_JOB_STATUSES

        _wait_for(obj, ended)
    emit(holder["job"], output, JOB_COLUMNS, [_job_row(holder["job"])])
    if wait and holder["job"]["status"] != JobStatus.SUCCEEDED:
        sys.exit(1)


JOB_WAIT_FOR = "job-wait-for"  # the control plane answers GET job ?waitFor=finished (api/app.py)


# -- waiting on the control plane's change events ---------------------------------------------
def _wait_for(obj: Context, check, seconds: float | None = None) -> None:
    """Until ``check(plane)`` is true, woken by the control plane's changes (reconnecting once if it
    went away: the next one adopts what ran)."""
    from renderlocal.client.remote import Unreachable

    deadline = None if seconds is None else time.monotonic() + seconds
    for attempt in (1, 2):
        try:
            plane = obj.plane
            plane.wait_until(lambda _changes: check(plane), obj.status["seq"], obj.status["epoch"], deadline)
            return
        except Unreachable:
            if attempt == 2:
                raise
            obj.reconnect()


def _jobs_ended(plane, jobs: dict[str, dict]) -> bool:
    """Whether every job of ``jobs`` (id -> its JSON, brought up to date) has ended."""
    for job_id, job in jobs.items():
        if job["status"] not in FINAL_JOB_STATUSES:
            jobs[job_id] = plane.get_job(job["serviceId"], job_id)
    return all(job["status"] in FINAL_JOB_STATUSES for job in jobs.values())


def _wait_for_jobs(obj: Context, jobs: dict[str, dict]) -> None:
    """Until every job of ``jobs`` (id -> its JSON, kept up to date) has ended: one long-poll at a time
    that the control plane answers when the job ends (reconnecting once if it went away)."""
    from renderlocal.client.remote import Unreachable

    if JOB_WAIT_FOR not in obj.status.get("extensions", ()):  # a control plane started before it had them
        return _wait_for(obj, lambda plane: _jobs_ended(plane, jobs))
    for attempt in (1, 2):
        try:
            for job_id, job in jobs.items():
                while job["status"] not in FINAL_JOB_STATUSES:
                    job = jobs[job_id] = obj.plane.get_job(job["serviceId"], job_id, wait=True)
            return
        except Unreachable:
            if attempt == 2:
                raise
            obj.reconnect()


def _follow(obj: Context, resource_ids: list[str], check, show) -> None:
    """``show(resource, line)`` for every log line of the resources as it is written, until
    ``check(plane)`` (asked when the control plane says something changed) and the files are drained."""
    import threading

    ended = threading.Event()

    def pump(resource_id: str) -> None:
        for line in obj.logs.follow(resource_id, ended.is_set):
            show(resource_id, line)

    pumps = [threading.Thread(target=pump, args=(resource_id,), daemon=True) for resource_id in resource_ids]
    for thread in pumps:
        thread.start()
    try:
        _wait_for(obj, check)
    finally:
        ended.set()
        for thread in pumps:
            thread.join()


# -- builds ------------------------------------------------------------------------
BUILD_COLUMNS = [("id", "id"), ("service", "serviceId"), ("status", "status"), ("created", "created"), ("reason", "reason")]


def _build_row(build: dict) -> dict:
    from renderlocal.core.clock import parse_stored, to_local_text

    reason = build.get("failureReason") or {}
    text = reason.get("message", "")
    if reason.get("step"):
        text = f"{reason['step']}: {text}"
    return build | {"created": to_local_text(parse_stored(build["createdAt"])), "reason": text}


@cli.group()
def builds():
    """Builds of a service (its Dockerfile or build command)."""


@builds.command("create")
@click.argument("service")
@click.option("--wait", is_flag=True, help="Stream the build log; exit 1 if the build fails.")
@output_option
@pass_ctx
def builds_create(obj: Context, service, wait, output):
    """Build SERVICE (a name or id) now, and wait for its end."""
    build = obj.plane.create_build(service)
    holder = {"build": build}

    def ended(plane) -> bool:
        holder["build"] = plane.get_build(build["id"])
        return holder["build"]["status"] != BuildStatus.BUILDING

    if wait and sys.stderr.isatty():  # one line that says the step it is at; the log's end if it fails
        name = obj.plane.get_service(build["serviceId"])["name"]

        def ended_drawn(plane) -> bool:
            done = ended(plane)
            _draw_progress(name, holder["build"])
            return done

        _wait_for(obj, ended_drawn)
        click.echo("\r\x1b[2K", nl=False, err=True)
        if holder["build"]["status"] == BuildStatus.FAILED:
            _print_log_end(obj, build["id"])
    elif wait:
        _follow(obj, [build["id"]], ended, lambda _build, line: click.echo(line.message, err=True))
    else:
        _wait_for(obj, ended)
    build = holder["build"]
    emit(build, output, BUILD_COLUMNS, [_build_row(build)])
    if build["status"] == BuildStatus.CANCELED:
        click.echo(f"render-local: build {build['id']} canceled; the service keeps its last successful build", err=True)
        sys.exit(1 if wait else 0)
    if build["status"] != BuildStatus.SUCCEEDED:
        reason = build.get("failureReason") or {}
        click.echo(f"render-local: build {build['id']} failed: {reason.get('step') or ''} {reason.get('message', '')}".rstrip(), err=True)
        sys.exit(1 if wait else 0)


PROGRESS_BAR_CELLS = 20


def _draw_progress(name: str, build: dict) -> None:
    """Redraw the terminal's last line: the build's step, as a bar and its Dockerfile instruction."""
    import os

    progress = build.get("progress")
    if progress:
        filled = PROGRESS_BAR_CELLS * progress["step"] // max(progress["steps"], 1)
        line = (f"building {name}: [{'#' * filled}{'.' * (PROGRESS_BAR_CELLS - filled)}] "
                f"step {progress['step']}/{progress['steps']}: {progress['text']}")
    else:
        line = f"building {name}: {build['status']}"
    try:
        width = os.get_terminal_size(sys.stderr.fileno()).columns or 80  # drawn on stderr: its width
    except OSError:
        width = 80
    click.echo("\r\x1b[2K" + (line if len(line) < width else line[:width - 2] + "…"), nl=False, err=True)


def _confirm_cancel(confirmed: bool, question: str) -> None:
    """Ask on a terminal; a script must say --confirm."""
    if not confirmed:
        if not sys.stdin.isatty():
            raise click.UsageError("refusing to cancel without --confirm when not on a terminal")
        click.confirm(question, abort=True)


@builds.command("cancel")
@click.argument("build_id")
@confirm_option
@output_option
@pass_ctx
def builds_cancel(obj: Context, build_id, confirm, output):
    """Cancel a running build; the service keeps its last successful build."""
    build = obj.plane.get_build(build_id)
    _confirm_cancel(confirm, f"Cancel build {build['id']}?")
    holder = {"build": obj.plane.cancel_build(build_id)}

    def ended(plane) -> bool:
        holder["build"] = plane.get_build(build_id)
        return holder["build"]["status"] != BuildStatus.BUILDING

    _wait_for(obj, ended, seconds=60)
    build = holder["build"]
    emit(build, output, BUILD_COLUMNS, [_build_row(build)])
    if build["status"] != BuildStatus.CANCELED:
        state = "is still building after 60 s" if build["status"] == BuildStatus.BUILDING else f"ended {build['status']} before the cancel took"
        click.echo(f"render-local: build {build['id']} {state}", err=True)
        sys.exit(1)


@builds.command("list")
@click.argument("service")
@output_option
@pass_ctx
def builds_list(obj: Context, service, output):
    """List SERVICE's builds, newest first."""
    items = obj.plane.list_builds(service)
    emit(items, output, BUILD_COLUMNS, [_build_row(b) for b in items])


@builds.command("logs")
@click.argument("build_id")
@pass_ctx
def builds_logs(obj: Context, build_id):
    """Print a build's log."""
    obj.plane.get_build(build_id)
    for line in obj.logs.read(build_id):
        click.echo(line.message)


# -- jobs ----------------------------------------------------------------------------
JOB_COLUMNS = [("id", "id"), ("status", "status"), ("started", "started"), ("finished", "finished"),
               ("plan", "planId"), ("cost usd", "costUSD"), ("command", "startCommand"), ("reason", "reason")]


def _job_row(job: dict) -> dict:
    """A table row of a job as the API shows it."""
    from renderlocal.core.clock import parse_stored, to_local_text

    return job | {
        "started": to_local_text(parse_stored(job.get("startedAt"))),
        "finished": to_local_text(parse_stored(job.get("finishedAt"))),
        "reason": (job.get("failureReason") or {}).get("message", ""),
    }


@cli.group()
def jobs():
    """One-off jobs (Render CLI: render jobs ...)."""


@jobs.command("create")
@click.argument("service")
@click.option("--start-command", help="Command to run (default: the service's own).")
@click.option("--plan-id", help="Instance type override, e.g. plan-srv-008.")
@click.option("--env", "env", multiple=True, metavar="KEY=VALUE", help="Env var override (repeatable).")
@click.option("--each-arg-from", type=click.File("r"), help="Fan out: one job per line, the line appended to the command.")
@click.option("--wait", is_flag=True, help="Wait for the end; exit 0 on success, 1 otherwise.")
@click.option("--tail", is_flag=True, help="Stream the job's log while waiting (implies --wait).")
@click.option("--compare-plans", is_flag=True, help="Run the command once on each plan (or --plans) and compare.")
@click.option("--plans", metavar="PLAN,PLAN", help="With --compare-plans: the plans to run on (default: every plan).")
@click.option("--parallel", is_flag=True, help="With --compare-plans: all at once (default: one after another).")
@output_option
@pass_ctx
def jobs_create(obj: Context, service, start_command, plan_id, env, each_arg_from, wait, tail, compare_plans, plans,
                parallel, output):
    """Create a job on SERVICE's last successful build.

    The data dir's control plane (serve, the app, or one started now in the
    background) runs and supervises it, whether or not this command waits.
    The job gets this shell's values of the service's `sync: false` env vars.
    """
    import os
    import shlex

    from renderlocal.core.envvars import parse_env_overrides

    if compare_plans or plans or parallel:
        from renderlocal.cli.compare import compare_plans as run_comparison

        return run_comparison(obj, service, start_command, plan_id, env, each_arg_from, tail, plans, parallel,
                              wait, output)
    wait = wait or tail
    args = None
    if each_arg_from is not None:
        args = [line.strip() for line in each_arg_from if line.strip()]
        if not args:
            raise click.BadParameter("the file has no arguments", param_hint="--each-arg-from")
    overrides = parse_env_overrides(list(env))
    plane = obj.plane
    found = plane.get_service(service)
    if start_command is None:
        details = found["serviceDetails"]
        own = details["envSpecificDetails"].get("dockerCommand" if details["runtime"] == "docker" else "startCommand")
        if not own:
            raise click.UsageError(f"service {found['name']} has no start command of its own: give --start-command")
        start_command = own
        if wait:  # a worker's or web service's own command may never end
            click.echo(f"render-local: note: no --start-command: the job runs {found['name']}'s own start command "
                       f"({own}); Ctrl-C stops waiting, not the job", err=True)
    for key in found.get("syncFalseEnvVarKeys") or []:
        if key not in os.environ:
            click.echo(f"render-local: warning: {found['name']}: {key} is 'sync: false' and not set in this shell; "
                       "the job runs without it", err=True)
    commands = [start_command] if args is None else [f"{start_command} {shlex.quote(arg)}" for arg in args]
    created = _in_parallel(lambda command: plane.create_job(found, command, plan_id, overrides), commands)
    if not wait:
        emit(created if len(created) > 1 else created[0], output, JOB_COLUMNS, [_job_row(j) for j in created])
        return
    ended = {j["id"]: j for j in created}

    def all_ended(plane) -> bool:
        return _jobs_ended(plane, ended)

    try:
        if tail:
            many = len(created) > 1

            def show(job_id, line) -> None:
                click.echo((f"[{job_id}] " if many else "") + line.message, err=line.stream == "stderr")

            _follow(obj, list(ended), all_ended, show)
        else:
            _wait_for_jobs(obj, ended)
    except KeyboardInterrupt:
        _interrupted_wait(obj, found["name"], [j for j in ended.values() if j["status"] not in FINAL_JOB_STATUSES])
    result = list(ended.values())
    emit(result if len(result) > 1 else result[0], output, JOB_COLUMNS, [_job_row(j) for j in result])
    failed = [j for j in result if j["status"] != JobStatus.SUCCEEDED]
    for job in failed:
        if not tail:  # its last lines, as a failed migration's error is in them
            _print_log_end(obj, job["id"])
        reason = (job.get("failureReason") or {}).get("message") or job["status"]
        click.echo(f"render-local: job {job['id']} {job['status']}: {reason}", err=True)
    sys.exit(1 if failed else 0)


SECOND_CTRL_C_SECONDS = 3
CANCEL_ACCEPTED_SECONDS = 5


def _interrupted_wait(obj: Context, service_name: str, running: list[dict]) -> None:
    """Ctrl-C stops waiting, not the jobs: a second Ctrl-C soon after cancels them; else say what
    still runs (and bills) and how to cancel it. Exits 130."""
    if running:
        which = "job " + running[0]["id"] if len(running) == 1 else f"{len(running)} jobs"
        try:  # from before the message: a Ctrl-C right after it is the second one, not an abort
            click.echo(f"render-local: {which} keep{'s' if len(running) == 1 else ''} running; "
                       f"Ctrl-C again within {SECOND_CTRL_C_SECONDS} s cancels {'it' if len(running) == 1 else 'them'}",
                       err=True)
            time.sleep(SECOND_CTRL_C_SECONDS)
        except KeyboardInterrupt:
            _cancel_jobs(obj, running)
            sys.exit(130)
    plane = obj.plane
    plane.reset_connection()  # the interrupted request's answer is still unread on it
    for job in running:
        if plane.get_job(job["serviceId"], job["id"])["status"] not in FINAL_JOB_STATUSES:
            click.echo(f"render-local: stopped waiting; job {job['id']} keeps running (and billing): "
                       f"render-local jobs cancel {service_name} {job['id']} --confirm", err=True)
    sys.exit(130)


def _cancel_jobs(obj: Context, running: list[dict]) -> None:
    """Cancel the jobs, and wait briefly for them to end (SIGTERM first: a job may take its grace period)."""
    plane = obj.plane
    plane.reset_connection()
    for job in running:
        click.echo(f"render-local: canceling job {job['id']}", err=True)
        plane.cancel_job(job["serviceId"], job["id"])
    deadline = time.monotonic() + CANCEL_ACCEPTED_SECONDS
    status = {job["id"]: job["status"] for job in running}
    while time.monotonic() < deadline:
        for job in running:
            if status[job["id"]] not in FINAL_JOB_STATUSES:
                status[job["id"]] = plane.get_job(job["serviceId"], job["id"])["status"]
        if all(s in FINAL_JOB_STATUSES for s in status.values()):
            break
        time.sleep(0.2)
    for job_id, now in status.items():
        click.echo(f"render-local: job {job_id} {now}" if now in FINAL_JOB_STATUSES else
                   f"render-local: job {job_id} is being canceled (SIGTERM sent; SIGKILL after its grace period)",
                   err=True)


LOG_END_LINES = 20


def _print_log_end(obj: Context, job_id: str) -> None:
    """The last lines of a failed job's (or build's) log on stderr, and how to see the rest."""
    from collections import deque

    total = 0
    last: deque = deque(maxlen=LOG_END_LINES)
    for line in obj.logs.read(job_id):
        total += 1
        last.append(line)
    if not last:
        return
    more = f"the last {len(last)} of {total} lines" if total > len(last) else "its log"
    click.echo(f"render-local: {job_id} failed; {more} (render-local logs -r {job_id} for all of it):", err=True)
    for line in last:
        click.echo(f"  {line.message}", err=True)


def _in_parallel(create, commands: list[str]) -> list:
    """One call per command, in order; a fan-out sends them at once, as the engine starts containers concurrently."""
    if len(commands) == 1:
        return [create(commands[0])]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(min(16, len(commands))) as pool:
        return list(pool.map(create, commands))


jobs.add_command(show_comparison)


@jobs.command("list")
@click.argument("service", required=False)
@click.option("--status", help="Comma-separated statuses, e.g. running,failed.")
@output_option
@pass_ctx
def jobs_list(obj: Context, service, status, output):
    """List jobs, newest first (all services, or SERVICE's)."""
    plane = obj.plane
    service_id = plane.get_service(service)["id"] if service else None
    statuses = [s.strip() for s in status.split(",") if s.strip()] if status else None
    items = plane.list_jobs(service_id, statuses)
    if service_id is not None:
        emit(items, output, JOB_COLUMNS, [_job_row(j) for j in items])  # bare jobs, as Render's CLI
        return
    names = {s["id"]: s["name"] for s in plane.list_services()}  # every service's jobs: say whose each is
    rows = [_job_row(j) | {"service": names.get(j["serviceId"], j["serviceId"])} for j in items]
    emit(items, output, JOB_COLUMNS[:1] + [("service", "service")] + JOB_COLUMNS[1:], rows)


@jobs.command("get")
@click.argument("job_id")
@output_option
@pass_ctx
def jobs_get(obj: Context, job_id, output):
    """Show one job."""
    job = obj.plane.find_job(job_id)
    emit(job, output, JOB_COLUMNS, [_job_row(job)])


@jobs.command("cancel")
@click.argument("refs", nargs=-1, required=True, metavar="[SERVICE] JOB")
@confirm_option
@output_option
@pass_ctx
def jobs_cancel(obj: Context, refs, confirm, output):
    """Cancel a pending or running job (SIGTERM, then SIGKILL after a grace period).

    As Render's `render jobs cancel SERVICE JOB` (SERVICE: a name or id), or by the job's id alone.
    """
    if len(refs) > 2:
        raise click.UsageError(f"got {len(refs)} arguments: give JOB, or SERVICE JOB")
    job = obj.plane.find_job(refs[-1])
    service = obj.plane.get_service(refs[0] if len(refs) == 2 else job["serviceId"])
    if job["serviceId"] != service["id"]:
        owner = obj.plane.get_service(job["serviceId"])
        raise NotFound(f"job {job['id']} is not a job of service {service['name']} ({service['id']}): "
                       f"it is {owner['name']}'s ({owner['id']})")
    _confirm_cancel(confirm, f"Cancel job {job['id']} ({job['startCommand']}) of service {service['name']}?")
    holder = {"job": obj.plane.cancel_job(job["serviceId"], job["id"])}

    def ended(plane) -> bool:
        holder["job"] = plane.get_job(job["serviceId"], job["id"])
        return holder["job"]["status"] in FINAL_JOB_STATUSES

    _wait_for(obj, ended)
    emit(holder["job"], output, JOB_COLUMNS, [_job_row(holder["job"])])


# -- logs ----------------------------------------------------------------------------
@cli.command("logs")
@click.option("-r", "--resources", multiple=True, required=True, metavar="RESOURCES",
              help="Services (name or id: every instance), jobs, builds or deploys (their pre-deploy output): "
                   "comma-separated, or -r again.")
@click.option("--start", metavar="TIME", help="Lines at or after TIME: relative to now (30s, 5m, 2h, 1d) or RFC 3339.")
@click.option("--end", metavar="TIME", help="Lines at or before TIME (the same forms).")
@click.option("--text", multiple=True, metavar="QUERY_TEXT",
              help="Lines with any of these comma-separated terms (any case, * wildcards), or matching /regex/.")
@click.option("--level", multiple=True, metavar="LOG_LEVEL", help="Comma-separated levels: stderr lines are error, stdout info.")
@click.option("--type", "kind", multiple=True, metavar="LOG_TYPE",
              help="Comma-separated types: app, build (a build's log, a deploy's pre-deploy output), request.")
@click.option("--direction", type=click.Choice(("backward", "forward"), case_sensitive=False), default="backward",
              show_default=True, help="Which lines --limit keeps: the newest (backward) or the oldest (forward).")
@click.option("--limit", type=click.IntRange(1), metavar="COUNT", help="At most COUNT lines (default: all).")
@click.option("--tail", is_flag=True, help="Keep following new lines (jobs, builds, deploys: until they end; a service: Ctrl-C).")
@click.option("--timestamps", is_flag=True, help="Prefix each line with its time (local; text output).")
@output_option
@pass_ctx
def logs_command(obj: Context, resources, start, end, text, level, kind, direction, limit, tail, timestamps, output):
    """Print the logs of services, jobs, builds or deploys, oldest line first; several resources
    interleaved in time, each line prefixed by its resource. json: one log entry per line, as the API's."""
    from renderlocal.cli.logs import LogFilter, history, split_values
    from renderlocal.core.state import State

    keep = LogFilter.from_flags(start, end, text, level, kind)
    refs = list(dict.fromkeys(split_values(resources)))
    if not refs:
        raise click.UsageError("-r needs a service, job, build or deploy")
    state = State(obj.data_dir)  # which files a service's lines are in
    names, checks = _log_resources(obj, state, refs)
    owner: dict[str, str] = {}  # log file -> the resource asked for

    def parts_now() -> list[str]:
        owner.update({part: resource for resource in names for part in state.log_resources(resource)})
        return list(owner)

    parts = parts_now()
    several = {resource for resource in names if list(owner.values()).count(resource) > 1}
    show = _log_printer(output, owner, names, several, timestamps)
    offsets: dict[str, int] = {}
    for part, line in history(obj.logs, parts, keep, direction.lower() == "backward", limit, offsets):
        show(part, line)
    if tail:
        _follow_logs(obj, parts_now, keep, offsets, show, checks, endless=len(checks) < len(names))


def _log_resources(obj: Context, state, refs: list[str]) -> tuple[dict[str, str], dict]:
    """Each resource's id -> how a line of it is labelled, and for those that end (not a service)
    a check, on the control plane, that it ended."""
    names: dict[str, str] = {}
    checks = {}
    for ref in refs:
        if ref.startswith("bld-"):
            obj.plane.get_build(ref)
            checks[ref] = lambda plane, ref=ref: plane.get_build(ref)["status"] != BuildStatus.BUILDING
        elif ref.startswith("job-"):
            obj.plane.find_job(ref)
            checks[ref] = lambda plane, ref=ref: plane.find_job(ref)["status"] in FINAL_JOB_STATUSES
        elif ref.startswith("dep-"):
            state.get_deploy(ref)
            checks[ref] = lambda _plane, ref=ref: state.get_deploy(ref).final
        else:
            service = obj.plane.get_service(ref)  # by name too
            names[service["id"]] = service["name"]
            continue
        names[ref] = ref
    return names, checks


def _log_printer(output: str, owner: dict[str, str], names: dict[str, str], several: set[str], timestamps: bool):
    """``show(part, line)``: text (stderr lines to stderr), or one API log entry per line (json) or document (yaml)."""
    if output in ("json", "yaml"):
        import json

        from renderlocal.core.logentries import log_entry

        def show_entry(part, line) -> None:
            entry = log_entry(owner[part], part, line)
            if output == "json":
                click.echo(json.dumps(entry))
            else:
                import yaml

                click.echo("---\n" + yaml.safe_dump(entry, sort_keys=False).rstrip())

        return show_entry
    from renderlocal.core.clock import to_local_text
    from renderlocal.core.logstore import ts_to_datetime

    def show_text(part, line) -> None:
        resource = owner[part]
        tags = ([names[resource]] if len(names) > 1 else []) + ([part] if resource in several and part != resource else [])
        prefix = to_local_text(ts_to_datetime(line.timestamp)) + " " if timestamps else ""
        prefix += f"[{' '.join(tags)}] " if tags else ""
        click.echo(prefix + line.message, err=line.stream == "stderr")

    return show_text


def _follow_logs(obj: Context, parts_now, keep, offsets: dict[str, int], show, checks: dict, endless: bool) -> None:
    """New lines until every resource ended (asked when the control plane says something changed),
    or, with a service among them, until Ctrl-C."""
    import threading

    from renderlocal.cli.logs import follow

    if endless:
        follow(obj.logs, parts_now, keep, offsets, show, lambda: False)
        return
    ended = threading.Event()
    pump = threading.Thread(target=follow, args=(obj.logs, parts_now, keep, offsets, show, ended.is_set), daemon=True)
    pump.start()
    try:
        _wait_for(obj, lambda plane: all(check(plane) for check in checks.values()))
    finally:
        ended.set()
        pump.join()


# -- the control plane and its API -----------------------------------------------------------
@cli.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind (loopback unless you mean it).")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option("--idle-exit", type=click.FloatRange(min=0, min_open=True), metavar="SECONDS",
              help="Stop after SECONDS with no job or build running and no request (as when the CLI starts one).")
@pass_ctx
def serve_command(obj: Context, host, port, idle_exit):
    """Be the data dir's control plane, with the Render-compatible API, in the foreground."""
    from renderlocal.api.server import serve
    from renderlocal.executor.control import ControlPlane

    serve(ControlPlane(obj.data_dir, obj.blueprint), host=host, port=port, idle_exit=idle_exit)


@cli.command("token")
@pass_ctx
def token_command(obj: Context):
    """Print the local API's bearer token (created on first use)."""
    from renderlocal.api.token import load_or_create_token

    click.echo(load_or_create_token(obj.data_dir))


# -- log streams ----------------------------------------------------------------------
@cli.group("log-streams")
def log_streams():
    """Forward job and build logs to a syslog endpoint (RFC 5424 over TCP/TLS)."""


@log_streams.command("set")
@click.argument("endpoint", metavar="HOST:PORT")
@click.option("--tls", is_flag=True, help="Send over TLS.")
@click.option("--token", help="Token the receiver expects (stored owner-only, never printed in full).")
@click.option("--insecure", is_flag=True, help="With --tls: do not verify the certificate.")
@click.option("--max-queue-bytes", type=click.IntRange(1), help="Bound of the unsent backlog while the endpoint is down.")
@output_option
@pass_ctx
def log_streams_set(obj: Context, endpoint, tls, token, insecure, max_queue_bytes, output):
    """Send every job and build log line to HOST:PORT."""
    view = obj.plane.set_log_stream(endpoint, tls, token, insecure, max_queue_bytes)
    emit(view, output, [(k, k) for k in view])


@log_streams.command("show")
@output_option
@pass_ctx
def log_streams_show(obj: Context, output):
    """Show the log stream, what was sent and dropped, and the last error."""
    view = obj.plane.log_stream()
    if output == "text" and not view.get("endpoint"):
        click.echo("no log stream is set: logs stay on this machine "
                   "(render-local log-streams set HOST:PORT [--tls] [--token TOKEN])")
        return
    emit(view, output, [(k, k) for k in view])


@log_streams.command("clear")
@pass_ctx
def log_streams_clear(obj: Context):
    """Stop forwarding logs."""
    obj.plane.clear_log_stream()
    click.echo("log stream cleared")


@log_streams.command("service")
@click.argument("service")
@click.option("--on/--off", "enabled", required=True, help="Forward this service's logs or keep them local.")
@pass_ctx
def log_streams_service(obj: Context, service, enabled):
    """Opt a service out of (or back into) the log stream."""
    obj.plane.set_log_stream_service(service, enabled)
    click.echo(f"{service}: log stream {'on' if enabled else 'off'}")


def main(argv=None) -> None:
    Context.current = None
    try:
        cli.main(args=argv, prog_name="render-local", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(1)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.UsageError as exc:  # one line, as every other error (click's own is three)
        where = f" (usage: {exc.ctx.command_path} -h)" if exc.ctx is not None else ""
        _refused(exc.format_message() + where, exc.exit_code)
    except click.ClickException as exc:
        _refused(exc.format_message(), exc.exit_code)
    except RenderLocalError as exc:
        _refused(str(exc))
    except KeyboardInterrupt:
        sys.exit(130)


def _refused(message: str, code: int = 2) -> None:
    """Say why the call failed; a control plane it started for it does not stay behind."""
    click.echo(f"render-local: error: {message}", err=True)
    if Context.current is not None:
        Context.current.leave_no_plane_started()
    sys.exit(code)
