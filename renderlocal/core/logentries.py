"""A log line as Render's log API shows it: an entry with labels (resource, instance, level, type).

The labels are what ``level`` and ``type`` filters match, so every face that
filters or prints entries (the API's GET /v1/logs, the CLI reading the files)
derives them here and agrees.
"""

from __future__ import annotations

from renderlocal.core.logstore import LogLine

LEVELS = ("debug", "info", "notice", "warning", "error", "critical", "alert", "emergency")  # Render's
TYPES = ("app", "request", "build")  # Render's


def level_of(line: LogLine) -> str:
    """Render's level of a line: render-local knows only its stream."""
    return "error" if line.stream == "stderr" else "info"


def type_of(part: str) -> str:
    """``build`` for a build's log and a deploy's (its pre-deploy output), ``app`` for the rest."""
    return "build" if part.startswith(("bld-", "dep-")) else "app"


def log_entry(resource: str, part: str, line: LogLine) -> dict:
    """The entry of ``line`` from the file ``part`` (a job, build, deploy or instance), asked as ``resource``."""
    return {
        "id": f"{part}:{line.offset}",
        "message": line.message,
        "timestamp": line.timestamp,
        "labels": [{"name": "resource", "value": resource}, {"name": "instance", "value": part},
                   {"name": "level", "value": level_of(line)}, {"name": "type", "value": type_of(part)}],
    }
