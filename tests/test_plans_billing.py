from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from renderlocal.core import billing
from renderlocal.core.errors import InvalidInput
from renderlocal.core.plans import CATALOG, PLANS, default_plan, plan_for_job, plan_from_slug

# Per-second rates worked out by hand: monthly / 2,592,000 s; cron cents/min / 100 / 60.
HAND_RATES = {
    "plan-srv-006": "0.000002700617283951",  # $7 / month
    "plan-srv-008": "0.000009645061728395",  # $25
    "plan-srv-010": "0.000032793209876543",  # $85
    "plan-srv-011": "0.000067515432098765",  # $175
    "plan-srv-013": "0.000086805555555556",  # $225
    "plan-srv-014": "0.000173611111111111",  # $450
    "plan-crn-003": "0.000002666666666667",  # 0.016 c/min
    "plan-crn-005": "0.000009666666666667",  # 0.058 c/min
    "plan-crn-007": "0.000032833333333333",  # 0.197 c/min
    "plan-crn-008": "0.000067500000000000",  # 0.405 c/min
}


def test_catalog_matches_product_page():
    assert [p.id for p in CATALOG] == list(HAND_RATES)
    pro_ultra = PLANS["plan-srv-014"]
    assert (pro_ultra.name, pro_ultra.memory_mb, pro_ultra.cpu, pro_ultra.monthly_usd) == ("Pro Ultra", 32768, Decimal(8), Decimal(450))
    cron_standard = PLANS["plan-crn-005"]
    assert (cron_standard.memory_mb, cron_standard.cpu, cron_standard.cents_per_minute) == (2048, Decimal(1), Decimal("0.058"))


@pytest.mark.parametrize("plan_id,expected", HAND_RATES.items())
def test_rate_per_second_matches_hand_value(plan_id, expected):
    rate = billing.rate_per_second(PLANS[plan_id])
    assert isinstance(rate, Decimal)
    assert rate.quantize(Decimal("1e-18")) == Decimal(expected)


def test_thirty_days_cost_the_monthly_price_and_a_minute_the_cron_rate():
    assert billing.cost(PLANS["plan-srv-008"], billing.SECONDS_PER_MONTH).quantize(Decimal("0.01")) == Decimal("25.00")
    assert billing.cost(PLANS["plan-crn-003"], 60) == Decimal("0.00016")


def test_running_cost_grows_and_rounds_up_to_the_second():
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    plan = PLANS["plan-srv-006"]
    assert billing.billable_seconds(None, None, start) == 0
    assert billing.billable_seconds(start, None, start + timedelta(seconds=0.2)) == 1
    assert billing.billable_seconds(start, start - timedelta(microseconds=3), start) == 1  # clocks disagree
    assert billing.usd_text(Decimal(0), 8) == "0.00000000"
    later = billing.billable_seconds(start, None, start + timedelta(seconds=90))
    assert later == 90
    assert billing.cost(plan, later) > billing.cost(plan, 1) > 0


def test_unknown_plan_lists_the_valid_choices():
    with pytest.raises(InvalidInput) as err:
        plan_for_job("worker", "plan-srv-006", "plan-srv-999")
    assert "plan-srv-999" in str(err.value) and "plan-srv-008 (Standard)" in str(err.value)


@pytest.mark.parametrize(
    "service_type,override",
    [("cron", "plan-srv-008"), ("worker", "plan-crn-005"), ("web", "plan-crn-003")],
)
def test_wrong_family_is_rejected_with_the_right_choices(service_type, override):
    with pytest.raises(InvalidInput) as err:
        plan_for_job(service_type, default_plan(service_type).id, override)
    message = str(err.value)
    assert override in message
    expected_family = "plan-crn-" if service_type == "cron" else "plan-srv-"
    valid = message.split("valid:")[1]
    assert expected_family in valid and ("plan-srv-" if expected_family == "plan-crn-" else "plan-crn-") not in valid


def test_defaults_and_slugs():
    assert plan_for_job("cron", "plan-crn-003", None).id == "plan-crn-003"
    assert plan_for_job("web", "plan-srv-006", "plan-srv-010").id == "plan-srv-010"
    assert plan_from_slug("worker", "pro plus").id == "plan-srv-011"
    assert plan_from_slug("cron", "Pro").id == "plan-crn-007"
    with pytest.raises(InvalidInput):
        plan_from_slug("cron", "pro ultra")


def test_free_plan_takes_no_jobs():
    free = plan_from_slug("web", "free")
    with pytest.raises(InvalidInput, match="cannot run on the Free plan"):
        plan_for_job("web", free.id, None)
    with pytest.raises(InvalidInput):
        plan_for_job("web", free.id, "free")


def test_instance_time_is_billed_per_second_and_shown_apart_from_jobs():
    from datetime import datetime, timedelta, timezone

    from renderlocal.core.plans import get_plan
    from renderlocal.core.spend import InstanceRun, build_report

    now = datetime(2026, 3, 14, 12, 0, tzinfo=timezone.utc)
    starter = get_plan("plan-srv-006")
    hour = InstanceRun("srv-a", starter, now - timedelta(hours=2), now - timedelta(hours=1))
    running = InstanceRun("srv-a", starter, now - timedelta(minutes=10), None)
    report = build_report([], {"srv-a": "web"}, now, [hour, running])
    [row] = report.by_service
    assert row.label == "web · instances" and row.jobs_month == 0 and report.jobs_month == 0
    assert row.month == billing.rate_per_second(starter) * (3600 + 600) == report.total_month  # Decimal, to the second
    assert report.running == 1  # still adding up
