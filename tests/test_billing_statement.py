"""Billing statements and forecasts (issue 21): sums to the cent in Decimal, months in UTC, runs
per month from a cron schedule, and the CLI and API on a real control plane."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal

import pytest

from renderlocal.core import billing
from renderlocal.core.errors import InvalidInput
from renderlocal.core.forecast import forecast, median_seconds, runs_in_month
from renderlocal.core.models import Job, Service, stamp
from renderlocal.core.plans import get_plan
from renderlocal.core.spend import InstanceRun
from renderlocal.core.statement import Month, build_statement

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
CENT = Decimal("0.01")


def job(n: int, service: str, plan: str, start: datetime, seconds: float | None, trigger: str = "api") -> Job:
    return Job(id=f"job-{n:020d}", serviceId=service, startCommand="true", planId=plan, createdAt=stamp(start),
               buildId="bld-00000000000000000000", image="x", status="succeeded" if seconds is not None else "running",
               startedAt=stamp(start), finishedAt=stamp(start + timedelta(seconds=seconds)) if seconds is not None else None,
               trigger=trigger)


NAMES = {"srv-a": "api", "srv-b": "billing", "crn-c": "nightly"}


def test_the_total_is_the_jobs_own_costs_to_the_cent_and_the_lines_add_up_to_it():
    start = datetime(2026, 11, 3, 9, tzinfo=timezone.utc)
    jobs = [job(n, service, plan, start + timedelta(hours=n), seconds)
            for n, (service, plan, seconds) in enumerate([
                ("srv-a", "plan-srv-006", 0.2), ("srv-a", "plan-srv-006", 61.5), ("srv-a", "plan-srv-014", 3600),
                ("srv-b", "plan-srv-008", 7), ("srv-b", "plan-srv-008", 12345.6), ("srv-b", "plan-srv-011", 1),
            ])]
    jobs += [job(10 + n, "crn-c", "plan-crn-005", start + timedelta(days=n), 95, trigger="cron") for n in range(9)]
    statement = build_statement(jobs, NAMES, Month(2026, 11), NOW)
    own = sum((j.cost(NOW) for j in jobs), Decimal(0))
    assert statement.total == own.quantize(CENT, rounding=ROUND_HALF_UP)
    assert sum((line.amount for line in statement.lines), Decimal(0)) == statement.total
    for line in statement.lines:
        assert abs(line.amount - line.exact) < CENT and line.amount == line.amount.quantize(CENT)
    kinds = {(line.serviceName, line.kind, line.plan.id): (line.runs, line.seconds) for line in statement.lines}
    assert kinds[("api", "job", "plan-srv-006")] == (2, 1 + 62)  # a started job bills at least 1 s; seconds round up
    assert kinds[("nightly", "cron run", "plan-crn-005")] == (9, 9 * 95)
    assert len(statement.lines) == 5 and all(isinstance(line.exact, Decimal) for line in statement.lines)
    assert json.loads(json.dumps(statement.to_json()))["totalUSD"] == format(statement.total, "f")


def test_cents_left_over_go_to_the_largest_remainders():
    start = datetime(2026, 11, 3, tzinfo=timezone.utc)
    plan = get_plan("plan-srv-006")
    seconds = int((Decimal("0.004") / billing.rate_per_second(plan)).to_integral_value())  # ~0.004 USD each
    jobs = [job(n, f"srv-{x}", "plan-srv-006", start, seconds) for n, x in enumerate("abz")]
    statement = build_statement(jobs, NAMES, Month(2026, 11), NOW)
    assert statement.total == CENT  # 3 x ~0.004 = ~0.012
    assert sorted(line.amount for line in statement.lines) == [0, 0, CENT]


def test_a_run_across_months_bills_each_month_its_own_seconds():
    plan = get_plan("plan-srv-008")
    instance = InstanceRun("srv-a", plan, datetime(2026, 10, 31, 23, tzinfo=timezone.utc),
                           datetime(2026, 11, 1, 1, 30, tzinfo=timezone.utc))
    october = build_statement([instance], NAMES, Month(2026, 10), NOW)
    november = build_statement([instance], NAMES, Month(2026, 11), NOW)
    assert [(l.kind, l.seconds) for l in october.lines] == [("instance", 3600)]
    assert [(l.kind, l.seconds) for l in november.lines] == [("instance", 5400)]
    assert november.days[0][1] > 0 and sum(amount for _, amount in november.days[1:]) == 0
    running = job(1, "srv-a", "plan-srv-006", NOW - timedelta(seconds=30), None)
    assert build_statement([running], NAMES, Month(2026, 11), NOW).running == 1
    assert build_statement([running], NAMES, Month(2026, 12), NOW).lines == []


def test_months_are_read_strictly():
    assert str(Month.parse("2026-02")) == "2026-02" and Month.parse("2026-02").days == 28
    assert Month(2026, 12).next() == Month(2027, 1)
    for bad in ("2026-13", "Nov", "2026/11", ""):
        with pytest.raises(InvalidInput, match="is not a month"):
            Month.parse(bad)
    for far in ("9999-12", "0001-01"):  # the month after 9999-12 does not exist; cron counting from year 1 overflows
        with pytest.raises(InvalidInput, match="out of range"):
            Month.parse(far)


def cron_service(schedule: str = "0 3 * * *") -> Service:
    return Service(id="crn-00000000000000000000", name="nightly", type="cron", runtime="docker",
                   planId="plan-crn-003", rootDir="/x", createdAt=stamp(NOW), updatedAt=stamp(NOW), schedule=schedule)


def test_a_daily_schedule_runs_30_or_31_times_and_costs_that_many_runs():
    assert runs_in_month("0 3 * * *", Month(2026, 11)) == 30
    assert runs_in_month("0 3 * * *", Month(2026, 12)) == 31
    assert runs_in_month("0 3 * * *", Month(2027, 2)) == 28
    assert runs_in_month("*/15 * * * *", Month(2026, 11)) == 30 * 24 * 4
    runs = [job(n, "crn-00000000000000000000", "plan-crn-003", NOW - timedelta(days=n), s, trigger="cron")
            for n, s in enumerate([40, 50, 300, 45, 61.2])]  # median of billed seconds 40, 50, 300, 45, 62: 50
    oom = job(9, "crn-00000000000000000000", "plan-crn-003", NOW, 1, trigger="cron")
    oom.status = "failed"  # stopped early: not a run's duration
    assert median_seconds(runs + [oom]) == (50, 5)
    result = forecast(cron_service(), runs, Month(2026, 12))
    assert (result.runs_per_month, result.seconds) == (31, 50)
    figures = {plan.id: amount for plan, amount in result.plans}
    assert set(figures) == {"plan-crn-003", "plan-crn-005", "plan-crn-007", "plan-crn-008"}
    standard = get_plan("plan-crn-005")
    assert figures["plan-crn-005"] == standard.cents_per_minute / 100 / 60 * 50 * 31
    assert result.to_json()["plans"][1]["monthlyUSD"] == billing.usd_text(figures["plan-crn-005"])


def test_a_forecast_says_what_it_lacks():
    with pytest.raises(InvalidInput, match="no successful runs"):
        forecast(cron_service(), [], Month(2026, 11))
    with pytest.raises(InvalidInput, match="not a cron expression"):
        forecast(cron_service("61 * * * *"), [], Month(2026, 11), duration=5)
    web = Service(id="srv-00000000000000000000", name="api", type="web", runtime="docker", planId="plan-srv-006",
                  rootDir="/x", createdAt=stamp(NOW), updatedAt=stamp(NOW))
    with pytest.raises(InvalidInput, match="--per-day"):
        forecast(web, [], Month(2026, 11), duration=5)
    by_hand = forecast(web, [], Month(2026, 11), duration=5, per_day=24)
    assert by_hand.runs_per_month == 720 and by_hand.plans[0][0].id == "plan-srv-006"


def test_the_cli_statement_matches_the_jobs_it_ran(engine, tmp_path):
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "Dockerfile").write_text("FROM busybox:1.36\n")
    (tmp_path / "render.yaml").write_text(
        "services:\n  - type: worker\n    name: box\n    runtime: docker\n    rootDir: app\n    dockerCommand: 'true'\n")
    base = [sys.executable, "-m", "renderlocal", "--data-dir", str(tmp_path / "data"), "--blueprint", str(tmp_path / "render.yaml")]

    def cli(*args):
        return subprocess.run(base + list(args), capture_output=True, text=True, timeout=180)

    assert cli("builds", "create", "box", "--wait").returncode == 0
    costs = []
    for command, plan in (("sleep 1", "plan-srv-006"), ("exit 2", "plan-srv-010"), ("sleep 2", "plan-srv-008")):
        done = cli("jobs", "create", "box", "--start-command", command, "--plan-id", plan, "--wait", "-o", "json")
        costs.append(Decimal(json.loads(done.stdout)["costUSD"]))
    shown = cli("billing", "statement", "-o", "json")
    assert shown.returncode == 0, shown.stderr
    data = json.loads(shown.stdout)
    assert Decimal(data["totalUSD"]) == sum(costs).quantize(CENT, rounding=ROUND_HALF_UP)
    assert sum(Decimal(line["amountUSD"]) for line in data["lines"]) == Decimal(data["totalUSD"])
    assert sorted(line["planId"] for line in data["lines"]) == ["plan-srv-006", "plan-srv-008", "plan-srv-010"]
    assert all(set(line) >= {"serviceId", "serviceName", "kind", "planId", "seconds", "amountUSD"} for line in data["lines"])
    rows = list(csv.DictReader(io.StringIO(cli("billing", "statement", "-o", "csv").stdout)))
    assert rows[-1]["serviceName"] == "total" and rows[-1]["amountUSD"] == data["totalUSD"]
    html = tmp_path / "statement.html"
    text = cli("billing", "statement", "--html", str(html))
    assert text.returncode == 0 and "box" in text.stdout and data["totalUSD"] in text.stdout
    assert "<svg" in html.read_text() and f"${data['totalUSD']}" in html.read_text()
    bad = cli("billing", "statement", "--month", "2026-13")
    assert bad.returncode == 2 and bad.stderr.strip().endswith("is not a month: write YYYY-MM, e.g. 2026-11")
    hand = json.loads(cli("billing", "forecast", "box", "--per-day", "10", "-o", "json").stdout)
    assert hand["medianSeconds"] in (1, 2, 3) and hand["runsMeasured"] == 2  # its two successful runs: sleep 1, sleep 2
