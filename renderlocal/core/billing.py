"""What a job costs: its plan's rate, prorated to the second, in Decimal USD.

Render does not publish the divisor for monthly prices; its cron per-minute
rates match a 30-day month, so a month is 30 x 86,400 = 2,592,000 seconds.
Run time is counted in whole seconds, rounded up, as Render prorates to the second.
"""

from __future__ import annotations

import math
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from renderlocal.core.plans import Plan

SECONDS_PER_MONTH = 30 * 86_400
PRORATION_NOTE = "prorated per second over a 30-day month"


def rate_per_second(plan: Plan) -> Decimal:
    if plan.cents_per_minute is not None:
        return plan.cents_per_minute / Decimal(100) / Decimal(60)
    assert plan.monthly_usd is not None
    return plan.monthly_usd / Decimal(SECONDS_PER_MONTH)


def rate_per_hour(plan: Plan) -> Decimal:
    return rate_per_second(plan) * 3600


def billable_seconds(started: datetime | None, finished: datetime | None, now: datetime) -> int:
    """Whole seconds between start and finish (or now, while running)."""
    if started is None:
        return 0
    end = finished or now
    return max(1, math.ceil((end - started).total_seconds()))  # a started job bills its first second


def cost(plan: Plan, seconds: int | float) -> Decimal:
    return rate_per_second(plan) * Decimal(math.ceil(seconds))


def usd_text(amount: Decimal, places: int = 6) -> str:
    """Plain decimal string for JSON (``costUSD``) and tables."""
    return format(amount.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP), "f")
