"""The instance-type catalog of Render's one-off jobs page, and plan rules.

Two families: ``srv`` plans (web, private services, background workers) are
priced per month; ``crn`` plans (cron jobs) per minute. A job's plan override
must come from its base service's family.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from renderlocal.core.errors import InvalidInput

SERVICE_TYPES = ("web", "pserv", "worker", "cron")


@dataclass(frozen=True)
class Plan:
    id: str
    name: str
    slug: str
    memory_mb: int
    cpu: Decimal
    family: str  # "srv" or "crn"
    monthly_usd: Decimal | None = None  # srv plans
    cents_per_minute: Decimal | None = None  # crn plans
    runs_jobs: bool = True

    @property
    def memory_bytes(self) -> int:
        return self.memory_mb * 1024 * 1024

    @property
    def nano_cpus(self) -> int:
        """Docker's CPU quota unit: 1e9 per CPU."""
        return int(self.cpu * 1_000_000_000)

    @property
    def pids_limit(self) -> int:
        """How many processes and threads a container of this plan may run at once.

        One per MiB of memory (512 on Starter, 2048 on Standard), at most 4096: each needs
        a kernel stack and usually a thread stack, so memory runs short near that count
        anyway, it leaves room for a JVM's hundreds of threads or a pool of workers, and a
        fork bomb stops far below a host's pid_max (32768 by default).
        """
        return min(self.memory_mb, 4096)

    @property
    def memory_text(self) -> str:
        return f"{self.memory_mb // 1024} GB" if self.memory_mb >= 1024 else f"{self.memory_mb} MB"

    @property
    def price_text(self) -> str:
        if self.cents_per_minute is not None:
            return f"{self.cents_per_minute}¢/minute"
        return f"${self.monthly_usd}/month"


def _srv(plan_id, name, slug, mem, cpu, usd) -> Plan:
    return Plan(plan_id, name, slug, mem, Decimal(cpu), "srv", monthly_usd=Decimal(usd))


def _crn(plan_id, name, slug, mem, cpu, cents) -> Plan:
    return Plan(plan_id, name, slug, mem, Decimal(cpu), "crn", cents_per_minute=Decimal(cents))


CATALOG: tuple[Plan, ...] = (
    _srv("plan-srv-006", "Starter", "starter", 512, "0.5", "7"),
    _srv("plan-srv-008", "Standard", "standard", 2048, "1", "25"),
    _srv("plan-srv-010", "Pro", "pro", 4096, "2", "85"),
    _srv("plan-srv-011", "Pro Plus", "pro plus", 8192, "4", "175"),
    _srv("plan-srv-013", "Pro Max", "pro max", 16384, "4", "225"),
    _srv("plan-srv-014", "Pro Ultra", "pro ultra", 32768, "8", "450"),
    _crn("plan-crn-003", "Starter", "starter", 512, "0.5", "0.016"),
    _crn("plan-crn-005", "Standard", "standard", 2048, "1", "0.058"),
    _crn("plan-crn-007", "Pro", "pro", 4096, "2", "0.197"),
    _crn("plan-crn-008", "Pro Plus", "pro plus", 8192, "4", "0.405"),
)

# Render's free web-service instance: a service may use it, a job may not.
FREE = Plan("free", "Free", "free", 512, Decimal("0.1"), "srv", monthly_usd=Decimal("0"), runs_jobs=False)

PLANS: dict[str, Plan] = {plan.id: plan for plan in CATALOG + (FREE,)}


def family_of(service_type: str) -> str:
    return "crn" if service_type == "cron" else "srv"


def plans_for(service_type: str) -> list[Plan]:
    """The plans a job of this service type may run on, smallest first."""
    family = family_of(service_type)
    return [plan for plan in CATALOG if plan.family == family]


def default_plan(service_type: str) -> Plan:
    return plans_for(service_type)[0]


def get_plan(plan_id: str) -> Plan:
    try:
        return PLANS[plan_id]
    except KeyError:
        raise InvalidInput(f"unknown plan {plan_id!r}; valid plan ids: {_choices(None)}") from None


def plan_from_slug(service_type: str, slug: str) -> Plan:
    """A blueprint ``plan:`` value (``starter``, ``pro plus``, ...) to a plan."""
    wanted = " ".join(str(slug).lower().replace("_", " ").replace("-", " ").split())
    if wanted == "free":
        if service_type != "web":
            raise InvalidInput("plan 'free' exists only for web services")
        return FREE
    for plan in plans_for(service_type):
        if plan.slug == wanted:
            return plan
    slugs = ", ".join(plan.slug for plan in plans_for(service_type))
    raise InvalidInput(f"unknown plan {slug!r} for a {service_type} service; valid: {slugs}")


def plan_for_job(service_type: str, service_plan_id: str, override: str | None) -> Plan:
    """The plan a new job runs on: the override if valid, else the service's."""
    if override is None or override == "":
        plan = get_plan(service_plan_id)
        if not plan.runs_jobs:
            raise InvalidInput(
                f"jobs cannot run on the {plan.name} plan; pass a planId, one of: {_choices(service_type)}", field="planId"
            )
        return plan
    if not isinstance(override, str) or override not in PLANS or not PLANS[override].runs_jobs:
        raise InvalidInput(f"unknown planId {override!r}; valid for this service: {_choices(service_type)}",
                           field="planId")
    plan = PLANS[override]
    if plan.family != family_of(service_type):
        wanted = "a cron job plan (plan-crn-*)" if service_type == "cron" else "a service plan (plan-srv-*)"
        raise InvalidInput(
            f"planId {override!r} cannot run a job of a {service_type} service, which needs {wanted}; "
            f"valid: {_choices(service_type)}", field="planId"
        )
    return plan


def _choices(service_type: str | None) -> str:
    plans = CATALOG if service_type is None else plans_for(service_type)
    return ", ".join(f"{plan.id} ({plan.name})" for plan in plans)


# -- data stores (render.yaml's databases and Key Value) ---------------------------------------------
# Their plans only size the container here (its memory limit; Redis's maxmemory) and are not billed:
# the product page prices jobs and services.
LEGACY_POSTGRES_MB = {"free": 256, "starter": 256, "standard": 1024, "pro": 4096, "pro plus": 8192}
KEY_VALUE_MB = {"free": 25, "starter": 256, "standard": 1024, "pro": 5120, "pro plus": 10240}
MAX_DATA_STORE_MB = 4096  # whatever the plan says, a laptop gives a local database this much at most


def postgres_plan(slug) -> tuple[str, int]:
    """A blueprint's Postgres ``plan`` (``basic-256mb``, ``pro-4gb``, legacy ``standard``...) as Render's
    API spells it (``basic_256mb``) and the memory (MB) the container gets."""
    import re

    text = " ".join(str(slug).lower().replace("_", " ").split())
    if text in LEGACY_POSTGRES_MB:
        return text.replace(" ", "_"), min(LEGACY_POSTGRES_MB[text], MAX_DATA_STORE_MB)
    match = re.fullmatch(r"(basic|pro|accelerated) (\d+)(mb|gb)", text.replace("-", " "))
    if not match:
        raise InvalidInput(f"unknown Postgres plan {slug!r}; e.g. basic-256mb, basic-1gb, basic-4gb, pro-4gb, pro-8gb "
                           "(or the legacy free, starter, standard, pro, pro plus)")
    tier, size, unit = match.groups()
    memory = int(size) * (1024 if unit == "gb" else 1)
    return f"{tier}_{size}{unit}", min(memory, MAX_DATA_STORE_MB)


def key_value_plan(slug) -> tuple[str, int]:
    """A Key Value ``plan`` as Render's API spells it and its memory (MB, Redis's maxmemory)."""
    text = " ".join(str(slug).lower().replace("_", " ").replace("-", " ").split())
    if text not in KEY_VALUE_MB:
        raise InvalidInput(f"unknown Key Value plan {slug!r}; valid: {', '.join(KEY_VALUE_MB)}")
    return text.replace(" ", "_"), min(KEY_VALUE_MB[text], MAX_DATA_STORE_MB)
