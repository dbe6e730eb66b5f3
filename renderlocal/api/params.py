"""Validation of query parameters and bodies: every problem is a 400 naming it."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from renderlocal.core.clock import parse_rfc3339, utcnow
from renderlocal.core.errors import InvalidInput

TIME_FILTERS = {
    "createdBefore": ("createdAt", "<"), "createdAfter": ("createdAt", ">"),
    "startedBefore": ("startedAt", "<"), "startedAfter": ("startedAt", ">"),
    "finishedBefore": ("finishedAt", "<"), "finishedAfter": ("finishedAt", ">"),
}


def one(query, name: str) -> str | None:
    values = query.getlist(name)
    if len(values) > 1:
        raise InvalidInput(f"query parameter {name} is given {len(values)} times; give it once")
    return values[0] if values else None


def limit_of(query, default: int = 20, maximum: int = 100) -> int:
    raw = one(query, "limit")
    if raw is None:
        return default
    if not re.fullmatch(r"\d+", raw) or not 1 <= int(raw) <= maximum:
        raise InvalidInput(f"limit must be a whole number from 1 to {maximum}, not {raw!r}")
    return int(raw)


def time_of(query, name: str) -> datetime | None:
    raw = one(query, name)
    if raw is None:
        return None
    try:
        return parse_rfc3339(raw)
    except ValueError:
        raise InvalidInput(f"{name} must be an ISO 8601 timestamp such as 2026-01-02T03:04:05Z, not {raw!r}") from None


def job_time_filter(query):
    """The six time filters as one test on a stored job document (None if none given)."""
    checks = []
    for name, (field, op) in TIME_FILTERS.items():
        bound = time_of(query, name)
        if bound is not None:
            checks.append((field, op, bound))
    if not checks:
        return None

    def where(doc: dict) -> bool:
        for field, op, bound in checks:
            value = doc.get(field)
            if value is None:
                return False
            moment = parse_rfc3339(value)
            if (op == "<" and not moment < bound) or (op == ">" and not moment > bound):
                return False
        return True

    return where


def statuses_of(query) -> list[str] | None:
    raw = query.getlist("status")
    if not raw:
        return None
    return [s.strip() for value in raw for s in value.split(",") if s.strip()]


_FRACTION = re.compile(r"T\d\d:\d\d:\d\d[.,](\d+)")


def log_time_of(query, name: str) -> str | None:
    """A log window bound in the log files' 30-character form (UTC, nanoseconds).

    Nanoseconds are kept, so a ``nextStartTime``/``nextEndTime`` handed back as
    given selects exactly the lines it should.
    """
    raw = one(query, name)
    moment = time_of(query, name)
    if moment is None:
        return None
    fraction = _FRACTION.search(raw.strip())
    nanos = (fraction.group(1)[:9] if fraction else "").ljust(9, "0")
    return _seconds(moment) + "." + nanos + "Z"


def _seconds(moment: datetime) -> str:
    """UTC to the second, zero-padded (strftime's %Y is not, before year 1000)."""
    return moment.astimezone(timezone.utc).replace(microsecond=0, tzinfo=None).isoformat()


def log_ts(moment: datetime) -> str:
    return _seconds(moment) + f".{moment.microsecond:06d}000Z"


def log_window(query) -> tuple[str, str]:
    """startTime and endTime (defaults: an hour up to now) as 30-character bounds."""
    end = log_time_of(query, "endTime") or log_ts(utcnow())
    start = log_time_of(query, "startTime")
    if start is None:
        start = log_ts(parse_rfc3339(end[:26] + "Z") - timedelta(hours=1))[:26] + end[26:]  # same nanoseconds
    if start > end:
        raise InvalidInput("startTime must not be after endTime")
    return start, end


def text_matcher(values: list[str]):
    """Render's text filter, repeatable (a line matching any value is kept):
    ``/regex/``, or text with ``*`` wildcards matched as a case-insensitive substring."""
    patterns = []
    for raw in values:
        if raw == "":
            continue
        if len(raw) > 1 and raw.startswith("/") and raw.endswith("/"):
            try:
                patterns.append(re.compile(raw[1:-1]))
            except re.error as exc:
                raise InvalidInput(f"text {raw!r} is not a valid regular expression: {exc}") from None
        else:
            patterns.append(re.compile(".*".join(re.escape(part) for part in raw.split("*")), re.IGNORECASE))
    if not patterns:
        return None
    if len(patterns) == 1:
        return patterns[0].search
    return lambda message: any(pattern.search(message) for pattern in patterns)


def list_of(query, name: str) -> set[str]:
    """A repeatable, comma-joinable filter (``level=info,error`` or ``level=info&level=error``)."""
    return {part.strip() for value in query.getlist(name) for part in value.split(",") if part.strip()}


def job_body(body) -> dict:
    """A create-job body: startCommand (required) and planId, as on Render; render-local's
    extensions: envVars (overrides), syncFalseEnvVars (the asking face's values of the
    service's ``sync: false`` vars), timeoutSeconds and cancelGraceSeconds."""
    if not isinstance(body, dict):
        raise InvalidInput("the body must be a JSON object")
    command = body.get("startCommand")
    if command is None:
        raise InvalidInput("startCommand is required", field="startCommand")
    if not isinstance(command, str):
        raise InvalidInput("startCommand must be a string", field="startCommand")
    if not command.strip():
        raise InvalidInput("startCommand must not be empty", field="startCommand")
    plan_id = body.get("planId")
    if plan_id is not None and not isinstance(plan_id, str):
        raise InvalidInput("planId must be a string", field="planId")
    if plan_id is not None and not plan_id.strip():
        raise InvalidInput("planId must not be empty; leave it out to use the service's plan", field="planId")
    secrets = body.get("syncFalseEnvVars")
    return {"start_command": command, "plan_id": plan_id, "env": _key_values(body, "envVars"),
            "secrets": None if secrets is None else dict((item["key"], item["value"]) for item in _key_values(body, "syncFalseEnvVars")),
            "timeout_seconds": body.get("timeoutSeconds"), "cancel_grace": body.get("cancelGraceSeconds")}


def _key_values(body: dict, name: str) -> list[dict] | None:
    items = body.get(name)
    if items is None:
        return None
    if not isinstance(items, list):
        raise InvalidInput(f'{name} must be a list of {{"key": ..., "value": ...}} objects', field=name)
    for item in items:
        if not (isinstance(item, dict) and isinstance(item.get("key"), str) and isinstance(item.get("value"), str)):
            raise InvalidInput(f'each {name} entry must be {{"key": string, "value": string}}, not {item!r}', field=name)
    return items


def bool_body(body, name: str) -> bool:
    """A body ``{name: true|false}``."""
    if not isinstance(body, dict) or not isinstance(body.get(name), bool):
        raise InvalidInput(f"the body must be a JSON object with {name}: true or false", field=name)
    return body[name]
