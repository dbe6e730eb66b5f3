"""A job's timeout and cancel grace: from the environment of the face that asks, else Render's defaults.

Stdlib only: the CLI validates and sends them with each job it asks for, so a
job gets what the asking shell says, not what the control plane's own
environment happened to hold when a CLI started it.
"""

from __future__ import annotations

import os

from renderlocal.core.errors import InvalidInput

ENV_TIMEOUT = "RENDER_LOCAL_JOB_TIMEOUT_SECONDS"
ENV_GRACE = "RENDER_LOCAL_CANCEL_GRACE_SECONDS"
DEFAULT_TIMEOUT_SECONDS = 30 * 86_400  # Render's: 30 days
DEFAULT_GRACE_SECONDS = 10  # SIGTERM to SIGKILL


def seconds_setting(name: str, value, default: int, minimum: int = 1) -> int:
    """A whole number of seconds from the environment or a request; a clear error otherwise."""
    if value is None or value == "":
        return default
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise InvalidInput(f"{name} must be a whole number of seconds, not {value!r}", field=name)
    try:
        number = int(value)
    except ValueError:
        raise InvalidInput(f"{name} must be a whole number of seconds, not {value!r}", field=name) from None
    if number < minimum:
        raise InvalidInput(f"{name} must be at least {minimum}, not {number}", field=name)
    return number


def job_timeout_seconds() -> int:
    return seconds_setting(ENV_TIMEOUT, os.environ.get(ENV_TIMEOUT), DEFAULT_TIMEOUT_SECONDS)


def cancel_grace_seconds() -> int:
    return seconds_setting(ENV_GRACE, os.environ.get(ENV_GRACE), DEFAULT_GRACE_SECONDS, minimum=0)
