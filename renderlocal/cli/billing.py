"""``render-local billing``: a month's statement and a recurring job's forecast, asked of the
control plane (``/local/billing/statement``, ``/local/services/{id}/forecast``)."""

from __future__ import annotations

import csv
import io

import click

from renderlocal.cli.output import emit, resolve_output, text_table

STATEMENT_FORMATS = click.Choice(("interactive", "json", "yaml", "text", "csv"), case_sensitive=False)


@click.group()
def billing():
    """What jobs and service instances cost: a month's statement, a recurring job's forecast."""


@billing.command("statement")
@click.option("--month", metavar="YYYY-MM", help="UTC calendar month (default: this one).")
@click.option("-o", "--output", type=STATEMENT_FORMATS, metavar="FORMAT",
              help="text, json, yaml or csv. Default: the global -o, else text.")
@click.option("--html", "html_file", type=click.Path(dir_okay=False, writable=True),
              help="Also write a one-page HTML statement with a chart of spend per day to FILE.")
@click.pass_context
def billing_statement(ctx, month, output, html_file):
    """One line per service, kind (job, cron run, instance) and plan: seconds billed and amount,
    adding up to the total to the cent."""
    from renderlocal.cli.main import Context

    data = ctx.find_object(Context).plane.billing_statement(month)
    fmt = resolve_output(ctx, output)
    if fmt == "csv":
        click.echo(statement_csv(data), nl=False)
    elif fmt == "text":
        click.echo(statement_text(data))
    else:
        emit(data, fmt)
    if html_file:
        from renderlocal.cli.statement_html import statement_html

        with open(html_file, "w", encoding="utf-8") as out:
            out.write(statement_html(data))
        click.echo(f"render-local: wrote the statement to {html_file}", err=True)


def statement_rows(data: dict) -> list[dict]:
    return [{"service": line["serviceName"], "kind": line["kind"], "plan": line["planId"],
             "runs": line["runs"], "seconds": line["seconds"], "usd": line["amountUSD"], "exact": line["exactUSD"]}
            for line in data["lines"]]


STATEMENT_COLUMNS = [("service", "service"), ("kind", "kind"), ("plan", "plan"), ("runs", "runs"),
                     ("seconds", "seconds"), ("usd", "usd"), ("exact usd", "exact")]


def statement_text(data: dict) -> str:
    if not data["lines"]:
        return f"statement {data['month']} (UTC): nothing ran this month; total $0.00"
    table = text_table(statement_rows(data) + [{"service": "total", "usd": data["totalUSD"], "exact": data["exactTotalUSD"]}], STATEMENT_COLUMNS)
    notes = [f"statement {data['month']} (UTC)", table, f"{data['rates']}; {data['rounding']}"]
    if data["running"]:
        notes.append(f"{data['running']} still running: their lines grow until they end")
    return "\n".join(notes)


def statement_csv(data: dict) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["serviceId", "serviceName", "kind", "planId", "runs", "seconds", "amountUSD"])
    for line in data["lines"]:
        writer.writerow([line["serviceId"], line["serviceName"], line["kind"], line["planId"], line["runs"],
                         line["seconds"], line["amountUSD"]])
    writer.writerow(["", "total", "", "", "", "", data["totalUSD"]])
    return out.getvalue()


@billing.command("forecast")
@click.argument("service")
@click.option("--duration", type=click.IntRange(min=1), metavar="SECONDS",
              help="A run's duration (default: the median of its recent runs).")
@click.option("--per-day", type=click.IntRange(min=1), metavar="N",
              help="Runs per day, for a job run by hand (a cron service's come from its schedule).")
@click.option("--month", metavar="YYYY-MM", help="The month to count runs in (default: this one).")
@click.option("-o", "--output", type=click.Choice(("interactive", "json", "yaml", "text"), case_sensitive=False),
              metavar="FORMAT", help="text, json or yaml.")
@click.pass_context
def billing_forecast(ctx, service, duration, per_day, month, output):
    """SERVICE's monthly cost on each plan it could run on."""
    from renderlocal.cli.main import Context

    data = ctx.find_object(Context).plane.forecast(service, month, duration, per_day)
    fmt = resolve_output(ctx, output)
    if fmt != "text":
        emit(data, fmt)
        return
    how = f"schedule {data['schedule']!r} (UTC)" if "schedule" in data else f"{data['perDay']} a day"
    measured = data["runsMeasured"]
    took = f"median of its last {measured} run{'s' if measured != 1 else ''}" if measured else "as given"
    click.echo(f"{data['serviceName']}: {data['runsPerMonth']} runs in {data['month']} from {how}; "
               f"{data['medianSeconds']} s a run ({took})")
    rows = [{"plan": f"{p['planName']} ({p['planId']})", "usd": p["monthlyUSD"]} for p in data["plans"]]
    click.echo(text_table(rows, [("plan", "plan"), ("usd a month", "usd")]))
    click.echo("the same duration on every plan; a bigger plan may run it faster: "
               "jobs create SERVICE --start-command ... --compare-plans measures each")
