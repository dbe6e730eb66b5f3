"""Validation of query parameters and bodies: every problem is a 400 naming it."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from renderlocal.core.clock import OutOfRange, parse_rfc3339, utcnow
from renderlocal.core.errors import InvalidInput

MAX_BODY_DEPTH = 32  # Render's bodies are a few levels deep; this bounds every walk over one
# The longest timeout or cancel grace a job may ask for: a deadline this far ahead is still a time.
MAX_JOB_SECONDS = 100 * 365 * 86_400

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


def whole_number(raw: str, max_digits: int = 18) -> int | None:
    """``raw`` as a whole number written in ASCII digits, else None (``int()`` also reads ``٣``,
    ``1_000`` and `` 7``, and raises past 4,300 digits)."""
    if raw.isascii() and raw.isdigit() and len(raw) <= max_digits:
        return int(raw)
    return None


def seconds_of(raw: str) -> float | None:
    """``raw`` as a number of seconds in ASCII (``1``, ``2.5``), else None (``float()`` also reads ``nan``,
    ``inf`` and ``٣``)."""
    if re.fullmatch(r"[0-9]{1,9}(\.[0-9]{1,9})?", raw):
        return float(raw)
    return None


def limit_of(query, default: int = 20, maximum: int = 100) -> int:
    raw = one(query, "limit")
    if raw is None:
        return default
    number = whole_number(raw)
    if number is None or not 1 <= number <= maximum:
        raise InvalidInput(f"limit must be a whole number from 1 to {maximum}, not {raw!r}", field="limit")
    return number


def time_of(query, name: str) -> datetime | None:
    raw = one(query, name)
    if raw is None:
        return None
    try:
        return parse_rfc3339(raw)
    except OutOfRange:
        raise InvalidInput(f"{name} {raw!r} is out of range: in UTC it falls outside years 1 to 9999",
                           field=name) from None
    except ValueError:
        raise InvalidInput(f"{name} must be an ISO 8601 timestamp such as 2026-01-02T03:04:05Z, not {raw!r}",
                           field=name) from None


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


_FRACTION = re.compile(r"T[0-9]{2}:[0-9]{2}:[0-9]{2}[.,]([0-9]+)")


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
        try:
            start = log_ts(parse_rfc3339(end[:26] + "Z") - timedelta(hours=1))[:26] + end[26:]  # same nanoseconds
        except OverflowError:
            raise InvalidInput(f"endTime {one(query, 'endTime')!r} is within an hour of year 1: the default "
                               "startTime, an hour before it, is no time; give startTime too", field="endTime") from None
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
            except (re.error, OverflowError, RecursionError) as exc:  # a{99999999999}; ((((... a thousand deep
                detail = exc if isinstance(exc, re.error) else "too large or too deeply nested"
                raise InvalidInput(f"text {raw!r} is not a valid regular expression: {detail}", field="text") from None
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
        plan_id = None  # Render's CLI sends "" when no --plan-id was given: the service's plan
    secrets = body.get("syncFalseEnvVars")
    return {"start_command": command, "plan_id": plan_id, "env": _key_values(body, "envVars"),
            "secrets": None if secrets is None else dict((item["key"], item["value"]) for item in _key_values(body, "syncFalseEnvVars")),
            "timeout_seconds": _job_seconds(body, "timeoutSeconds"),
            "cancel_grace": _job_seconds(body, "cancelGraceSeconds")}


def file_path(body, name: str):
    """An absolute file path in a body (the control plane runs on this machine, as this user)."""
    from pathlib import Path

    value = body.get(name) if isinstance(body, dict) else None
    if not isinstance(value, str) or not value.startswith("/") or "\0" in value:
        raise InvalidInput(f"{name} must be an absolute file path", field=name)
    return Path(value)


def optional_text(body, name: str) -> str | None:
    value = body.get(name) if isinstance(body, dict) else None
    if value is not None and not isinstance(value, str):
        raise InvalidInput(f"{name} must be a string", field=name)
    return value or None


def comparison_body(body) -> dict:
    """A plan comparison's body (render-local's own): a create-job body's startCommand and envVars,
    planIds (a list of plan ids; none: every plan of the service's family) and sequential (default true)."""
    fields = job_body(body)
    plan_ids = body.get("planIds")
    if plan_ids is not None and not (isinstance(plan_ids, list) and all(isinstance(p, str) for p in plan_ids)):
        raise InvalidInput("planIds must be a list of plan ids", field="planIds")
    sequential = body.get("sequential", True)
    if not isinstance(sequential, bool):
        raise InvalidInput("sequential must be true or false", field="sequential")
    return {"start_command": fields["start_command"], "env": fields["env"], "plan_ids": plan_ids or None,
            "sequential": sequential}


def _job_seconds(body: dict, name: str):
    """timeoutSeconds or cancelGraceSeconds as given (the jobs code checks the minimum), refused here
    when it is no ASCII number or too large for a deadline computed from it."""
    value = body.get(name)
    if isinstance(value, str) and value != "":
        if whole_number(value) is None:
            raise InvalidInput(f"{name} must be a whole number of seconds in ASCII digits, not {value!r}", field=name)
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and value > MAX_JOB_SECONDS:
        raise InvalidInput(f"{name} must be at most {MAX_JOB_SECONDS} (100 years), not {value}", field=name)
    return body.get(name)


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


def plain_json(body, max_depth: int = MAX_BODY_DEPTH) -> None:
    """Refuse a parsed body that storage, answers or the engine cannot take: nested deeper than
    ``max_depth``, or a string (a value or a key) holding a lone surrogate (JSON's ``\\ud800``
    escape parses, but no UTF-8 file or answer can hold it) or a NUL (which ends a C string: an env
    var or a command the engine gets would be cut or refused). Iterative: any depth is safe to walk."""
    pending = [(body, "", 1)]
    while pending:
        value, path, depth = pending.pop()
        if depth > max_depth:
            raise InvalidInput(f"the body is nested too deeply: at most {max_depth} levels of arrays and objects",
                               field=_top(path))
        if isinstance(value, str):
            _plain_text(value, path)
        elif isinstance(value, dict):
            for key, item in value.items():
                _plain_text(key, f"a key of {path or 'the body'}")
                pending.append((item, f"{path}.{key}" if path else key, depth + 1))
        elif isinstance(value, list):
            pending.extend((item, f"{path}[{index}]", depth + 1) for index, item in enumerate(value))


def _plain_text(text: str, where: str) -> None:
    if "\x00" in text:
        problem = "a NUL byte (\\u0000)"
    elif any("\ud800" <= char <= "\udfff" for char in text):  # json.loads never pairs them: each is lone
        problem = "a lone surrogate (\\ud800-\\udfff), which is not text"
    else:
        return
    raise InvalidInput(f"{where or 'the body'} holds {problem}", field=_top(where))


def _top(path: str) -> str | None:
    """The body's top-level field a path is under (``envVars[0].value``: ``envVars``)."""
    name = re.split(r"[.\[]", path.removeprefix("a key of "), maxsplit=1)[0]
    return name if name and name != "the body" else None


def bool_body(body, name: str) -> bool:
    """A body ``{name: true|false}``."""
    if not isinstance(body, dict) or not isinstance(body.get(name), bool):
        raise InvalidInput(f"the body must be a JSON object with {name}: true or false", field=name)
    return body[name]


def enum_list(query, name: str, allowed) -> set[str]:
    """A list filter whose values must be among ``allowed`` (Render's enum): a 400 names the wrong one."""
    values = list_of(query, name)
    wrong = sorted(values - set(allowed))
    if wrong:
        raise InvalidInput(f"{name} {wrong[0]!r} is not one of {', '.join(allowed)}", field=name)
    return values


def boolean(query, name: str) -> bool | None:
    raw = one(query, name)
    if raw is None:
        return None
    if raw.lower() not in ("true", "false"):
        raise InvalidInput(f"{name} must be true or false, not {raw!r}", field=name)
    return raw.lower() == "true"


SERVICE_TYPES = ("static_site", "web_service", "private_service", "background_worker", "cron_job")
RUNTIMES = ("docker", "elixir", "go", "node", "python", "ruby", "rust", "image")
REGIONS = ("frankfurt", "oregon", "ohio", "singapore", "virginia")
UPDATE_TIMES = {"createdBefore": ("createdAt", "<"), "createdAfter": ("createdAt", ">"),
                "updatedBefore": ("updatedAt", "<"), "updatedAfter": ("updatedAt", ">")}
DEPLOY_TIMES = {**UPDATE_TIMES, "finishedBefore": ("finishedAt", "<"), "finishedAfter": ("finishedAt", ">")}


def object_filter(query, lists: dict, times: dict):
    """Render's list filters as one test on an answer object. ``lists``: parameter -> (how to read
    its value from an object, the allowed values or None); each is comma-joined or repeated and
    keeps the objects whose value is among them. ``times``: parameter -> (field, "<" or ">"); an
    object without the field is left out. Wrong values are 400s; unknown parameters are ignored,
    as Render does."""
    wanted = {name: (read, enum_list(query, name, allowed) if allowed else list_of(query, name))
              for name, (read, allowed) in lists.items()}
    bounds = [(field, op, bound) for name, (field, op) in times.items() if (bound := time_of(query, name)) is not None]

    def where(item: dict) -> bool:
        if any(values and read(item) not in values for read, values in wanted.values()):
            return False
        for field, op, bound in bounds:
            if item.get(field) is None:
                return False
            moment = parse_rfc3339(item[field])
            if (op == "<" and not moment < bound) or (op == ">" and not moment > bound):
                return False
        return True

    return where


SUSPENDED = ("suspended", "not_suspended")


def service_filter(query):
    """GET /v1/services' filters as one test on a service object."""
    boolean(query, "includePreviews")  # checked; there are no preview services here
    return object_filter(query, {
        "name": (lambda s: s["name"], None), "type": (lambda s: s["type"], SERVICE_TYPES),
        "environmentId": (lambda s: s.get("environmentId"), None),
        "env": (lambda s: s["serviceDetails"].get("env"), RUNTIMES),
        "region": (lambda s: s["serviceDetails"].get("region"), REGIONS),
        "ownerId": (lambda s: s["ownerId"], None), "suspended": (lambda s: s["suspended"], SUSPENDED),
    }, UPDATE_TIMES)


def deploy_filter(query, statuses):
    """GET /v1/services/{serviceId}/deploys' filters as one test on a deploy object."""
    return object_filter(query, {"status": (lambda d: d["status"], statuses)}, DEPLOY_TIMES)


def data_store_filter(query, postgres: bool):
    """GET /v1/postgres' and /v1/key-value's filters as one test on a data store object."""
    boolean(query, "includeReplicas")  # checked; there are no read replicas here
    lists = {"name": (lambda d: d["name"], None), "region": (lambda d: d["region"], REGIONS),
             "ownerId": (lambda d: d["owner"]["id"], None), "environmentId": (lambda d: d.get("environmentId"), None)}
    if postgres:
        lists["suspended"] = (lambda d: d["suspended"], SUSPENDED)
    return object_filter(query, lists, UPDATE_TIMES)


LOG_LABELS = ("instance", "host", "statusCode", "method", "level", "type")
EVENT_TYPES = ("autoscaling_config_changed", "autoscaling_ended", "autoscaling_started", "branch_deleted",
               "build_ended", "build_started", "commit_ignored", "cron_job_run_ended", "cron_job_run_started",
               "deploy_ended", "deploy_started", "disk_created", "disk_updated", "disk_deleted", "image_pull_failed",
               "initial_deploy_hook_ended", "initial_deploy_hook_started", "instance_count_changed", "job_run_ended",
               "maintenance_mode_enabled", "maintenance_mode_uri_updated", "maintenance_ended", "maintenance_started",
               "pipeline_minutes_exhausted", "plan_changed", "pre_deploy_ended", "pre_deploy_started",
               "server_available", "server_failed", "server_hardware_failure", "server_restarted", "service_resumed",
               "service_suspended", "suspender_added", "suspender_removed", "zero_downtime_redeploy_ended",
               "zero_downtime_redeploy_started")  # Render's event types: any may be asked for


def _object(body) -> dict:
    if not isinstance(body, dict):
        raise InvalidInput("the body must be a JSON object")
    return body


def _optional_string(body: dict, name: str) -> str | None:
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise InvalidInput(f"{name} must be a string", field=name)
    return value or None


def owner_stream_body(body) -> dict:
    """PUT /v1/logs/streams/owner/{ownerId}: Render's ``{endpoint, token, preview}`` (preview
    required: send or drop); render-local's extensions ``tls`` and ``insecure``."""
    body = _object(body)
    if body.get("preview") not in ("send", "drop"):
        raise InvalidInput("preview is required: send or drop", field="preview")
    for name in ("tls", "insecure"):
        if not isinstance(body.get(name, False), bool):
            raise InvalidInput(f"{name} must be true or false", field=name)
    return {"endpoint": _optional_string(body, "endpoint"), "token": _optional_string(body, "token"),
            "preview": body["preview"], "tls": body.get("tls", False), "insecure": body.get("insecure", False)}


def resource_stream_body(body) -> dict:
    """PUT /v1/logs/streams/resource/{resourceId}: ``{setting: send|drop, endpoint?, token?}``."""
    body = _object(body)
    if body.get("setting") not in ("send", "drop"):
        raise InvalidInput("setting is required: send or drop", field="setting")
    endpoint = _optional_string(body, "endpoint")
    if body["setting"] == "drop" and endpoint:
        raise InvalidInput("endpoint cannot be given with setting drop", field="endpoint")
    return {"setting": body["setting"], "endpoint": endpoint, "token": _optional_string(body, "token")}
