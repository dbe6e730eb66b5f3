"""Validation of query parameters and bodies: every problem is a 400 naming it."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

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


def log_window(query) -> tuple[datetime, datetime]:
    end = time_of(query, "endTime") or utcnow()
    start = time_of(query, "startTime") or end - timedelta(hours=1)
    if start > end:
        raise InvalidInput("startTime must not be after endTime")
    return start, end


def text_matcher(raw: str | None):
    """Render's text filter: /regex/, or words with * wildcards (case-insensitive)."""
    if raw is None or raw == "":
        return None
    if len(raw) > 1 and raw.startswith("/") and raw.endswith("/"):
        try:
            pattern = re.compile(raw[1:-1])
        except re.error as exc:
            raise InvalidInput(f"text is not a valid regular expression: {exc}") from None
    else:
        pattern = re.compile(".*".join(re.escape(part) for part in raw.split("*")), re.IGNORECASE)
    return pattern.search


def job_body(body) -> dict:
    """A create-job body: startCommand (required), planId, envVars (local extension)."""
    if not isinstance(body, dict):
        raise InvalidInput("the body must be a JSON object")
    command = body.get("startCommand")
    if command is None:
        raise InvalidInput("startCommand is required")
    if not isinstance(command, str):
        raise InvalidInput("startCommand must be a string")
    if not command.strip():
        raise InvalidInput("startCommand must not be empty")
    plan_id = body.get("planId")
    if plan_id is not None and not isinstance(plan_id, str):
        raise InvalidInput("planId must be a string")
    env = body.get("envVars")
    if env is not None:
        if not isinstance(env, list):
            raise InvalidInput('envVars must be a list of {"key": ..., "value": ...} objects')
        for item in env:
            if not (isinstance(item, dict) and isinstance(item.get("key"), str) and isinstance(item.get("value"), str)):
                raise InvalidInput(f'each envVars entry must be {{"key": string, "value": string}}, not {item!r}')
    return {"start_command": command, "plan_id": plan_id or None, "env": env}
