"""Env var overrides of a job: ``KEY=VALUE`` from the CLI and app, ``{"key", "value"}`` from the API."""

from __future__ import annotations

import re

from renderlocal.core.errors import InvalidInput

_ENV_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def parse_env_overrides(pairs) -> dict[str, str]:
    """``KEY=VALUE`` strings or ``{"key", "value"}`` dicts to a dict, validated."""
    env: dict[str, str] = {}
    for item in pairs or []:
        if isinstance(item, str):
            key, sep, value = item.partition("=")
            if not sep:
                raise InvalidInput(f"env override {item!r} must look like KEY=VALUE", field="envVars")
        elif isinstance(item, dict) and isinstance(item.get("key"), str) and isinstance(item.get("value"), str):
            key, value = item["key"], item["value"]
        else:
            raise InvalidInput(f"env override {item!r} must be an object with string 'key' and 'value'", field="envVars")
        if not _ENV_KEY.fullmatch(key):  # `$` alone would let a trailing newline through
            raise InvalidInput(f"env var name {key!r} is invalid: use letters, digits and _, not starting with a digit",
                               field="envVars")
        env[key] = value
    return env
