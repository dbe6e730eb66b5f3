"""Entry point of ``render-local``. Heavy modules are imported inside commands."""

from __future__ import annotations

import sys

import click

from renderlocal import __version__
from renderlocal.cli.output import emit, fail, output_option
from renderlocal.core.errors import RenderLocalError


class Context:
    """What every command needs: the options, and the control plane on demand."""

    def __init__(self, data_dir, blueprint):
        self.data_dir = data_dir
        self.blueprint = blueprint
        self._plane = None

    @property
    def plane(self):
        if self._plane is None:
            from renderlocal.core.control import ControlPlane

            self._plane = ControlPlane(self.data_dir, self.blueprint)
            self._plane.refresh()
            for warning in self._plane.warnings:
                click.echo(f"render-local: warning: {warning}", err=True)
        return self._plane

    def remote_plane(self, forget=None):
        """The data dir's control plane (serve, the app, or one started now), if it runs our blueprint."""
        from renderlocal.cli.remote import RemotePlane
        from renderlocal.core.datadir import resolve_blueprint, resolve_data_dir

        return RemotePlane.find_or_start(resolve_data_dir(self.data_dir), resolve_blueprint(self.blueprint),
                                         lambda text: click.echo(f"render-local: {text}", err=True), forget)

    def forward_logs(self) -> None:
        """While this command runs, forward logs to the log stream (drained at exit)."""
        if self.plane.log_streams.get() is None:
            return  # none configured: no forwarder thread to start and drain
        self.plane.start_forwarding()
        click.get_current_context().call_on_close(self.plane.close)


pass_ctx = click.make_pass_decorator(Context)


@click.group(invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--data-dir", envvar="RENDER_LOCAL_HOME", type=click.Path(file_okay=False), help="State directory (default: RENDER_LOCAL_HOME, else the user data dir).")
@click.option("--blueprint", type=click.Path(dir_okay=False), help="render.yaml to load (default: ./render.yaml, else the bundled samples).")
@click.version_option(__version__, prog_name="render-local")
@click.pass_context
def cli(ctx, data_dir, blueprint):
    """render-local: Render's one-off jobs on your machine.

    With no command, opens the terminal app.
    """
    ctx.obj = Context(data_dir, blueprint)
    if ctx.invoked_subcommand is None:
        from renderlocal.tui.app import run_tui

        run_tui(ctx.obj.plane)


@cli.group()
def services():
    """Services from the blueprint."""


@services.command("list")
@output_option
@pass_ctx
def services_list(obj: Context, output):
    """List the blueprint's services."""
    items = obj.plane.list_services()
    rows = [
        {"id": s.id, "name": s.name, "type": s.type, "runtime": s.runtime, "plan": s.planId,
         "build": s.lastSuccessfulBuildId or "-"}
        for s in items
    ]
    emit(
        [{"service": s.to_render(), "cursor": s.id} for s in items], output,
        [("id", "id"), ("name", "name"), ("type", "type"), ("runtime", "runtime"), ("plan", "plan"), ("last build", "build")],
        rows,
    )


# -- builds ------------------------------------------------------------------------
BUILD_COLUMNS = [("id", "id"), ("service", "serviceId"), ("status", "status"), ("created", "created"), ("reason", "reason")]


def _build_row(build) -> dict:
    from renderlocal.core.clock import parse_stored, to_local_text

    reason = (build.failureReason or {})
    text = reason.get("message", "")
    if reason.get("step"):
        text = f"{reason['step']}: {text}"
    return build.to_doc() | {"created": to_local_text(parse_stored(build.createdAt)), "reason": text}


@cli.group()
def builds():
    """Builds of a service (its Dockerfile or build command)."""


@builds.command("create")
@click.argument("service")
@click.option("--wait", is_flag=True, help="Stream the build log; exit 1 if the build fails.")
@output_option
@pass_ctx
def builds_create(obj: Context, service, wait, output):
    """Build SERVICE (a name or id) now."""
    plane = obj.plane
    obj.forward_logs()
    build = plane.build(service, wait=False)
    if wait:
        for line in plane.logs.follow(build.id, lambda: plane.builds.get(build.id).status != "building"):
            click.echo(line.message, err=True)
    else:
        while plane.builds.get(build.id).status == "building":
            import time

            time.sleep(0.2)
    build = plane.builds.get(build.id)
    emit(build.to_render(), output, BUILD_COLUMNS, [_build_row(build)])
    if build.status == "canceled":
        click.echo(f"render-local: build {build.id} canceled; the service keeps its last successful build", err=True)
        sys.exit(1 if wait else 0)
    if build.status != "succeeded":
        reason = build.failureReason or {}
        click.echo(f"render-local: build {build.id} failed: {reason.get('step') or ''} {reason.get('message', '')}".rstrip(), err=True)
        sys.exit(1 if wait else 0)


def _confirm_cancel(confirmed: bool, question: str) -> None:
    """Ask on a terminal; a script must say --confirm."""
    if not confirmed:
        if not sys.stdin.isatty():
            raise click.UsageError("refusing to cancel without --confirm when not on a terminal")
        click.confirm(question, abort=True)


@builds.command("cancel")
@click.argument("build_id")
@click.option("--confirm", is_flag=True, help="Do not ask.")
@output_option
@pass_ctx
def builds_cancel(obj: Context, build_id, confirm, output):
    """Cancel a running build; the service keeps its last successful build."""
    plane = obj.plane
    build = plane.builds.get(build_id)
    _confirm_cancel(confirm, f"Cancel build {build.id}?")
    plane.builds.cancel(build_id)
    build = plane.builds.wait(build_id, timeout=60)
    emit(build.to_render(), output, BUILD_COLUMNS, [_build_row(build)])
    if build.status != "canceled":
        state = "is still building after 60 s" if build.status == "building" else f"ended {build.status} before the cancel took"
        click.echo(f"render-local: build {build.id} {state}", err=True)
        sys.exit(1)


@builds.command("list")
@click.argument("service")
@output_option
@pass_ctx
def builds_list(obj: Context, service, output):
    """List SERVICE's builds, newest first."""
    items = obj.plane.builds.list(obj.plane.get_service(service).id)
    emit([b.to_render() for b in items], output, BUILD_COLUMNS, [_build_row(b) for b in items])


@builds.command("logs")
@click.argument("build_id")
@pass_ctx
def builds_logs(obj: Context, build_id):
    """Print a build's log."""
    obj.plane.builds.get(build_id)
    for line in obj.plane.logs.read(build_id):
        click.echo(line.message)


# -- jobs ----------------------------------------------------------------------------
JOB_COLUMNS = [("id", "id"), ("status", "status"), ("started", "started"), ("finished", "finished"),
               ("plan", "planId"), ("cost usd", "costUSD"), ("command", "startCommand"), ("reason", "reason")]


def _job_row(job: dict) -> dict:
    """A table row of a job as Render shows it (``Job.to_render()``, or the API's JSON)."""
    from renderlocal.core.clock import parse_stored, to_local_text

    return job | {
        "started": to_local_text(parse_stored(job["startedAt"])),
        "finished": to_local_text(parse_stored(job["finishedAt"])),
        "reason": (job["failureReason"] or {}).get("message", ""),
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
@output_option
@pass_ctx
def jobs_create(obj: Context, service, start_command, plan_id, env, each_arg_from, wait, tail, output):
    """Create a job on SERVICE's last successful build.

    With --start-command, the job is handed to the data dir's control plane
    (serve, the app, or one started now in the background), which supervises
    it; otherwise, or with RENDER_LOCAL_AUTOSTART=0 and none running, this
    process does.
    """
    import shlex

    wait = wait or tail
    args = None
    if each_arg_from is not None:
        args = [line.strip() for line in each_arg_from if line.strip()]
        if not args:
            raise click.BadParameter("the file has no arguments", param_hint="--each-arg-from")

    def commands_for(base):
        return [base] if args is None else [f"{base} {shlex.quote(arg)}" for arg in args]

    created = [None] * (1 if args is None else len(args))
    by_remote = {}  # job id -> the control plane that supervises it
    remote = obj.remote_plane() if start_command is not None else None  # the API needs the command
    handed = commands_for(start_command) if remote is not None else []
    for attempt in (1, 2):
        if remote is None:
            break
        todo = [n for n, job in enumerate(created) if job is None]
        made = _in_parallel(lambda command: remote.try_create_job(service, command, plan_id, list(env)),
                            [handed[n] for n in todo])
        for n, job in zip(todo, made):
            if job is not None:
                created[n], by_remote[job["id"]] = job, remote
        for warning in sorted(remote.warnings):
            click.echo(f"render-local: warning: {warning}", err=True)
        if remote.refusal:
            click.echo(f"render-local: {remote.refusal}", err=True)
        if not remote.unreachable or attempt == 2:
            break
        remote = obj.remote_plane(forget=remote)  # it stopped answering (stopping when idle?): another one
    missing = [n for n, job in enumerate(created) if job is None]  # no control plane, or it went away
    if missing:
        plane = obj.plane
        if wait:
            obj.forward_logs()
        commands = commands_for(start_command if start_command is not None
                                else plane.get_service(service).own_start_command or "")
        made = _in_parallel(lambda command: plane.create_job(service, command, plan_id, list(env), supervise=wait).to_render(),
                            [commands[n] for n in missing])
        for n, job in zip(missing, made):
            created[n] = job
    if not wait:
        emit(created if len(created) > 1 else created[0], output, JOB_COLUMNS, [_job_row(j) for j in created])
        return
    if tail:
        _tail_jobs(obj.plane, [j["id"] for j in created])

    def finished(job: dict) -> dict:
        if job["id"] in by_remote:
            from renderlocal.cli.remote import Unreachable

            try:
                return by_remote[job["id"]].wait(job)
            except Unreachable:
                pass  # it went away: its jobs are adopted here
        return obj.plane.jobs.wait(job["id"]).to_render()

    ended = [finished(j) for j in created]
    emit(ended if len(ended) > 1 else ended[0], output, JOB_COLUMNS, [_job_row(j) for j in ended])
    failed = [j for j in ended if j["status"] != "succeeded"]
    for job in failed:
        reason = (job["failureReason"] or {}).get("message") or job["status"]
        click.echo(f"render-local: job {job['id']} {job['status']}: {reason}", err=True)
    sys.exit(1 if failed else 0)


def _in_parallel(create, commands: list[str]) -> list:
    """One call per command, in order; a fan-out runs them at once, as the engine starts containers concurrently."""
    if len(commands) == 1:
        return [create(commands[0])]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(min(16, len(commands))) as pool:
        return list(pool.map(create, commands))


def _tail_jobs(plane, job_ids: list[str]) -> None:
    import threading

    many = len(job_ids) > 1

    def pump(job_id):
        done = lambda: (lambda j: j.final and j.logsComplete)(plane.jobs.get(job_id))  # noqa: E731
        for line in plane.logs.follow(job_id, done):
            prefix = f"[{job_id}] " if many else ""
            click.echo(prefix + line.message, err=line.stream == "stderr")

    threads = [threading.Thread(target=pump, args=(job_id,), daemon=True) for job_id in job_ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


@jobs.command("list")
@click.argument("service", required=False)
@click.option("--status", help="Comma-separated statuses, e.g. running,failed.")
@output_option
@pass_ctx
def jobs_list(obj: Context, service, status, output):
    """List jobs, newest first (all services, or SERVICE's)."""
    plane = obj.plane
    plane.recover(follow=False)
    service_id = plane.get_service(service).id if service else None
    statuses = [s.strip() for s in status.split(",") if s.strip()] if status else None
    items = plane.jobs.list(service_id, statuses)
    rendered = [j.to_render() for j in items]
    emit([{"job": j, "cursor": j["id"]} for j in rendered], output, JOB_COLUMNS, [_job_row(j) for j in rendered])


@jobs.command("get")
@click.argument("job_id")
@output_option
@pass_ctx
def jobs_get(obj: Context, job_id, output):
    """Show one job."""
    plane = obj.plane
    plane.jobs.get(job_id)
    job = plane.jobs.reconcile_one(job_id, follow=False).to_render()
    emit(job, output, JOB_COLUMNS, [_job_row(job)])


@jobs.command("cancel")
@click.argument("job_id")
@click.option("--confirm", is_flag=True, help="Do not ask.")
@output_option
@pass_ctx
def jobs_cancel(obj: Context, job_id, confirm, output):
    """Cancel a pending or running job (SIGTERM, then SIGKILL after a grace period)."""
    plane = obj.plane
    job = plane.jobs.get(job_id)
    _confirm_cancel(confirm, f"Cancel job {job.id} ({job.startCommand})?")
    job = plane.jobs.cancel(job_id, wait=True).to_render()
    emit(job, output, JOB_COLUMNS, [_job_row(job)])


# -- logs ----------------------------------------------------------------------------
@cli.command("logs")
@click.option("-r", "--resources", "resource", required=True, help="A job or build id.")
@click.option("--tail", is_flag=True, help="Keep following new lines until the job ends.")
@click.option("--text", help="Only lines matching this regular expression.")
@click.option("--limit", type=click.IntRange(1), help="Only the last N lines.")
@click.option("--timestamps", is_flag=True, help="Prefix each line with its time (local).")
@pass_ctx
def logs_command(obj: Context, resource, tail, text, limit, timestamps):
    """Print a job's (or build's) log."""
    import re
    from collections import deque

    from renderlocal.core.clock import to_local_text
    from renderlocal.core.logstore import ts_to_datetime

    plane = obj.plane
    if resource.startswith("bld-"):
        plane.builds.get(resource)
        done = lambda: plane.builds.get(resource).status != "building"  # noqa: E731
    else:
        plane.jobs.get(resource)
        done = lambda: (lambda j: j.final and j.logsComplete)(plane.jobs.reconcile_one(resource, follow=False))  # noqa: E731
    try:
        pattern = re.compile(text) if text else None
    except re.error as exc:
        raise click.BadParameter(f"not a regular expression: {exc}", param_hint="--text") from None
    lines = plane.logs.follow(resource, done) if tail else plane.logs.read(resource)
    if limit and not tail:
        lines = deque(lines, maxlen=limit) if not pattern else deque((l for l in lines if pattern.search(l.message)), maxlen=limit)  # noqa: E741
    for line in lines:
        if pattern and not pattern.search(line.message):
            continue
        prefix = to_local_text(ts_to_datetime(line.timestamp)) + " " if timestamps else ""
        click.echo(prefix + line.message, err=line.stream == "stderr")


# -- the local API ----------------------------------------------------------------------
@cli.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind (loopback unless you mean it).")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option("--idle-exit", type=click.FloatRange(min=0, min_open=True), metavar="SECONDS",
              help="Stop after SECONDS with no job to supervise and no request (as when the CLI starts one).")
@pass_ctx
def serve_command(obj: Context, host, port, idle_exit):
    """Run the control plane with the Render-compatible API in the foreground."""
    from renderlocal.api.server import serve

    serve(obj.plane, host=host, port=port, idle_exit=idle_exit)


@cli.command("token")
@pass_ctx
def token_command(obj: Context):
    """Print the local API's bearer token (created on first use)."""
    from renderlocal.api.token import load_or_create_token
    from renderlocal.core.datadir import resolve_data_dir

    click.echo(load_or_create_token(resolve_data_dir(obj.data_dir)))


# -- log streams ----------------------------------------------------------------------
@cli.group("log-streams")
def log_streams():
    """Forward job and build logs to a syslog endpoint (RFC 5424 over TCP/TLS)."""


def _stream_view(plane) -> dict:
    streams = plane.log_streams
    config = streams.get()
    state = streams.state()
    if config is None:
        return {"endpoint": None}
    return {
        "endpoint": f"{config.host}:{config.port}", "tls": config.tls, "insecure": config.insecure,
        "token": streams.masked_token(), "maxQueueBytes": config.maxQueueBytes,
        "optOut": [plane.get_service(s).name for s in config.optOut],
        "sent": state.get("sent", 0), "dropped": state.get("dropped", 0),
        "connected": state.get("connected", False), "lastError": state.get("lastError"),
    }


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
    obj.plane.log_streams.set(endpoint, tls, token, insecure, max_queue_bytes)
    view = _stream_view(obj.plane)
    emit(view, output, [(k, k) for k in view])


@log_streams.command("show")
@output_option
@pass_ctx
def log_streams_show(obj: Context, output):
    """Show the log stream, what was sent and dropped, and the last error."""
    view = _stream_view(obj.plane)
    emit(view, output, [(k, k) for k in view])


@log_streams.command("clear")
@pass_ctx
def log_streams_clear(obj: Context):
    """Stop forwarding logs."""
    obj.plane.log_streams.clear()
    click.echo("log stream cleared")


@log_streams.command("service")
@click.argument("service")
@click.option("--on/--off", "enabled", required=True, help="Forward this service's logs or keep them local.")
@pass_ctx
def log_streams_service(obj: Context, service, enabled):
    """Opt a service out of (or back into) the log stream."""
    obj.plane.log_streams.set_service(service, enabled)
    click.echo(f"{service}: log stream {'on' if enabled else 'off'}")


def main(argv=None) -> None:
    try:
        cli.main(args=argv, prog_name="render-local", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(1)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except RenderLocalError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        sys.exit(130)
