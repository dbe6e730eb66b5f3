"""``jobs create SERVICE --compare-plans``: the same command on each plan, compared by duration,
peak memory, outcome and cost. The control plane runs the comparison (``executor/comparisons.py``);
this face asks for it, waits, and prints the table."""

from __future__ import annotations

import sys

import click

from renderlocal.cli.output import emit, text_table
from renderlocal.core.plans import get_plan

COLUMNS = [("plan", "plan"), ("size", "size"), ("outcome", "outcome"), ("seconds", "seconds"),
           ("peak memory", "peak"), ("usd", "usd"), ("", "mark")]


def compare_plans(obj, service, start_command, plan_id, env, each_arg_from, tail, plans, parallel, wait, output):
    from renderlocal.core.envvars import parse_env_overrides

    for given, name in ((plan_id, "--plan-id"), (each_arg_from, "--each-arg-from"), (tail, "--tail")):
        if given:
            raise click.UsageError(f"{name} does not go with --compare-plans (use --plans to choose plans)")
    if not start_command:
        raise click.UsageError("--compare-plans needs --start-command: the command to time on each plan")
    plan_ids = [p.strip() for p in plans.split(",") if p.strip()] if plans else None
    plane = obj.plane
    found = plane.get_service(service)
    view = plane.compare_plans(found["id"], start_command, plan_ids, not parallel, parse_env_overrides(list(env)))
    if not wait:
        show(view, output)
        click.echo(f"render-local: comparison {view['id']} runs in the control plane; see it with "
                   f"render-local jobs comparison {view['id']}", err=True)
        return
    from renderlocal.cli.main import _wait_for

    latest = {"view": view}

    def finished(plane) -> bool:
        latest["view"] = plane.get_comparison(view["id"])
        return latest["view"]["finished"]

    try:
        _wait_for(obj, finished)
    except KeyboardInterrupt:
        click.echo(f"render-local: stopped waiting; comparison {view['id']} goes on in the control plane: "
                   f"render-local jobs comparison {view['id']}", err=True)
        sys.exit(130)
    show(latest["view"], output)
    sys.exit(0 if "cheapestPlanId" in latest["view"] else 1)


def show(view: dict, output: str) -> None:
    if output != "text":
        emit(view, output)
        return
    mode = "one after another" if view["sequential"] else "all at once"
    click.echo(f"{view['startCommand']!r} on {len(view['runs'])} plans, {mode} ({view['id']})")
    click.echo(text_table([row(run, view.get("cheapestPlanId")) for run in view["runs"]], COLUMNS))
    if view["finished"] and "cheapestPlanId" not in view:
        click.echo("no plan ran it to success")


def row(run: dict, cheapest: str | None) -> dict:
    reason = run.get("failureReason") or {}
    outcome = run["status"]
    if reason.get("type") == "oomKilled":
        outcome = "OOM-killed"
    elif reason.get("type") == "nonZeroExit":
        outcome = f"failed ({reason.get('message', 'exit')})"
    peak = run.get("peakMemoryBytes")
    return {"plan": f"{run['planName']} ({run['planId']})", "size": f"{get_plan(run['planId']).memory_text}, {run['cpu']} CPU",
            "outcome": outcome, "seconds": run.get("seconds", ""), "peak": f"{peak / 2**20:.0f} MB" if peak else "",
            "usd": run.get("costUSD", ""), "mark": "cheapest that succeeded" if run["planId"] == cheapest else ""}


@click.command("comparison")
@click.argument("comparison_id")
@click.option("-o", "--output", type=click.Choice(("interactive", "json", "yaml", "text"), case_sensitive=False),
              metavar="FORMAT", help="text, json or yaml.")
@click.pass_context
def show_comparison(ctx, comparison_id, output):
    """Show a plan comparison (jobs create --compare-plans) as it stands."""
    from renderlocal.cli.main import Context
    from renderlocal.cli.output import resolve_output

    show(ctx.find_object(Context).plane.get_comparison(comparison_id), resolve_output(ctx, output))
