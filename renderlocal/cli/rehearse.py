"""A database's data from the CLI (``databases restore|dump|snapshot|snapshots|rollback``) and
migration rehearsals (``rehearse``). The control plane does the work (``executor/postgres_admin.py``,
``executor/rehearsals.py``); these commands ask it and print what it found."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from renderlocal.cli.output import confirm_option, emit, output_option, text_table
from renderlocal.core.row_counts import row_change


def _context(ctx):
    from renderlocal.cli.main import Context

    return ctx.find_object(Context)


def _size(count: int) -> str:
    for unit in ("bytes", "kB", "MB", "GB"):
        if count < 1024 or unit == "GB":
            return f"{count:,} {unit}" if unit == "bytes" else f"{count:.1f} {unit}"
        count /= 1024
    return ""


def _database_id(plane, name: str) -> str:
    kind, found, _info = plane.get_data_store(name)
    if kind != "postgres":
        raise click.UsageError(f"{name} is a Key Value, not a PostgreSQL database")
    return found["id"]


def _ask_confirmation(confirm: bool, text: str) -> None:
    if not confirm and not click.confirm(text, default=False, err=True):
        click.echo("render-local: nothing changed", err=True)
        sys.exit(1)


@click.command("restore")
@click.argument("name")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@confirm_option
@output_option
@click.pass_context
def restore(ctx, name, file, confirm, output):
    """Load a pg_dump FILE (custom format or plain SQL, e.g. one made against Render's external URL)
    into database NAME, replacing what it holds."""
    plane = _context(ctx).plane
    database = _database_id(plane, name)
    source = Path(file).resolve()
    _ask_confirmation(confirm, f"replace everything in {name} with {source.name}?")
    started = time.monotonic()
    click.echo(f"render-local: restoring {source} ({_size(source.stat().st_size)}) into {name} ...", err=True)
    result = plane.database_call("POST", database, "restore", {"file": str(source)})
    if output != "text":
        emit(result, output)
        return
    click.echo(f"restored {name} from a {result['format']} dump in {time.monotonic() - started:.1f} s: "
               f"{result['tables']} tables, {result['rows']:,} rows")


@click.command("dump")
@click.argument("name")
@click.argument("file", type=click.Path(dir_okay=False))
@output_option
@click.pass_context
def dump(ctx, name, file, output):
    """Write database NAME to FILE as a custom-format pg_dump (pg_restore and databases restore read it)."""
    plane = _context(ctx).plane
    result = plane.database_call("POST", _database_id(plane, name), "dump", {"file": str(Path(file).resolve())})
    if output != "text":
        emit(result, output)
        return
    click.echo(f"wrote {name} to {result['file']} ({_size(result['bytes'])})")


SNAPSHOT_COLUMNS = [("name", "name"), ("label", "label"), ("created", "created"), ("size", "size")]


def _snapshot_row(snapshot: dict) -> dict:
    from renderlocal.core.clock import parse_stored, to_local_text

    created = parse_stored(snapshot["createdAt"])
    return snapshot | {"created": to_local_text(created) if created else "", "size": _size(snapshot["sizeBytes"])}


@click.command("snapshot")
@click.argument("name")
@click.option("--label", default="", help="A name to find it by (databases rollback NAME LABEL).")
@output_option
@click.pass_context
def snapshot(ctx, name, label, output):
    """Snapshot database NAME (a copy made with CREATE DATABASE ... TEMPLATE) to roll back to."""
    plane = _context(ctx).plane
    made = plane.database_call("POST", _database_id(plane, name), "snapshots", {"label": label})
    emit(made, output, SNAPSHOT_COLUMNS, [_snapshot_row(made)])


@click.command("snapshots")
@click.argument("name")
@output_option
@click.pass_context
def snapshots(ctx, name, output):
    """List database NAME's snapshots, newest first."""
    plane = _context(ctx).plane
    found = plane.database_call("GET", _database_id(plane, name), "snapshots")
    emit(found, output, SNAPSHOT_COLUMNS, [_snapshot_row(s) for s in found])


@click.command("rollback")
@click.argument("name")
@click.argument("snapshot_ref", required=False, metavar="[SNAPSHOT]")
@confirm_option
@output_option
@click.pass_context
def rollback(ctx, name, snapshot_ref, confirm, output):
    """Make database NAME what SNAPSHOT (a name or label; default: the latest) holds. The snapshot stays."""
    plane = _context(ctx).plane
    database = _database_id(plane, name)
    _ask_confirmation(confirm, f"replace everything in {name} with snapshot {snapshot_ref or '(the latest)'}?")
    done = plane.database_call("POST", database, "rollback", {"snapshot": snapshot_ref} if snapshot_ref else {})
    if output != "text":
        emit(done, output)
        return
    click.echo(f"rolled {name} back to {done['name']}" + (f" ({done['label']})" if done["label"] else ""))


DATABASE_COMMANDS = (restore, dump, snapshot, snapshots, rollback)


# -- rehearse ------------------------------------------------------------------------------------
@click.command("rehearse")
@click.argument("service")
@click.option("--start-command", required=True, help="The migration to rehearse, e.g. 'python migrate.py'.")
@click.option("--plan-id", help="Instance type of the job, e.g. plan-srv-008.")
@click.option("--database", help="The database to rehearse on (default: the one the service's env names).")
@click.option("--keep", "decision", flag_value="keep", help="Keep what the migration did (for scripts).")
@click.option("--rollback", "decision", flag_value="rollback", help="Roll the database back afterwards (for scripts).")
@output_option
@click.pass_context
def rehearse(ctx, service, start_command, plan_id, database, decision, output):
    """Rehearse a migration: snapshot SERVICE's database, run the command as a job, report what it
    changed (schema diff, rows per table) and the locks it held, then keep it or roll back."""
    from renderlocal.cli.main import _wait_for

    context = _context(ctx)
    plane = context.plane
    found = plane.get_service(service)
    doc = plane.rehearse(found["id"], start_command, plan_id, database)
    click.echo(f"render-local: rehearsal {doc['id']}: snapshotting, then running {start_command!r}", err=True)
    latest = {"doc": doc}

    def finished(plane) -> bool:
        latest["doc"] = plane.get_rehearsal(doc["id"])
        return latest["doc"]["status"] in ("finished", "failed")

    try:
        _wait_for(context, finished)
    except KeyboardInterrupt:
        click.echo(f"render-local: stopped waiting; rehearsal {doc['id']} goes on in the control plane", err=True)
        sys.exit(130)
    doc = latest["doc"]
    if output == "text":
        click.echo(report_text(doc))
    if doc["status"] == "failed" and not doc.get("snapshot") or (decision is None and not sys.stdin.isatty()):
        if output != "text":
            emit(doc, output)  # one document on stdout: the rehearsal as it ended
        if doc["status"] == "failed" and not doc.get("snapshot"):
            sys.exit(1)
    if decision is None:
        if not sys.stdin.isatty():
            click.echo(f"render-local: kept as it is; roll back with: render-local databases rollback "
                       f"{doc['databaseId']} {doc['snapshot']} (or pass --keep / --rollback)", err=True)
            sys.exit(_exit_code(doc))
        decision = "rollback" if click.confirm("roll the database back to before the rehearsal?", default=True,
                                               err=True) else "keep"
    decided = context.plane.decide_rehearsal(doc["id"], decision == "keep")  # the control plane now (it may have changed)
    click.echo(f"render-local: {'kept the result' if decision == 'keep' else 'rolled back to ' + doc['snapshot']}",
               err=True)
    if output != "text":
        emit(decided, output)  # the rehearsal with its report and decision
    sys.exit(_exit_code(doc))


def _exit_code(doc: dict) -> int:
    return 0 if doc["status"] == "finished" and doc["report"]["outcome"] == "succeeded" else 1


def report_text(doc: dict) -> str:
    if doc["status"] == "failed":
        return f"rehearsal {doc['id']} failed: {doc.get('problem', 'unknown')}"
    report = doc["report"]
    reason = (report.get("failureReason") or {}).get("message")
    lines = [f"outcome: {report['outcome']}" + (f" ({reason})" if reason else "")
             + f" · {report['seconds']} s · ${report['costUSD']} · job {doc.get('jobId')}"]
    lines.append("")
    lines.append("locks held (strongest first; the longest each was held without a gap):")
    if report["locks"]:
        lines += [f"  {lock['mode']} on {lock['table']} for {lock['seconds']:g} s" for lock in report["locks"]]
    else:
        lines.append("  none on user tables")
    if report.get("lockProblem"):
        lines.append(f"  ({report['lockProblem']})")
    lines.append("")
    rows = [{"table": r["table"], "before": "-" if r["before"] is None else f"{r['before']:,}",
             "after": "-" if r["after"] is None else f"{r['after']:,}",
             "change": row_change(r["before"], r["after"])} for r in report["rowCounts"]]
    lines.append(text_table(rows, [("table", "table"), ("rows before", "before"), ("rows after", "after"),
                                   ("change", "change")]))
    lines.append("")
    lines.append(report["schemaDiff"].rstrip() if report["schemaDiff"] else "schema: unchanged")
    return "\n".join(lines)

