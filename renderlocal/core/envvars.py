"""Env var overrides of a job (``KEY=VALUE`` from the CLI and app, ``{"key", "value"}``
from the API), and digests that compare two processes' environments without sending values."""

from __future__ import annotations

import hashlib
import hmac
import os
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
                raise InvalidInput(f"env override {item!r} must look like KEY=VALUE")
        elif isinstance(item, dict) and isinstance(item.get("key"), str) and isinstance(item.get("value"), str):
            key, value = item["key"], item["value"]
        else:
            raise InvalidInput(f"env override {item!r} must be an object with string 'key' and 'value'")
        if not _ENV_KEY.match(key):
            raise InvalidInput(f"env var name {key!r} is invalid: use letters, digits and _, not starting with a digit")
        env[key] = value
    return env


def env_digests(key: bytes, names=None) -> dict[str, str]:
    """Keyed digests of this process's env vars (all, or ``names``; unset ones left out).

    Keyed with the local API's token, so a digest says nothing to whoever lacks it.
    """
    names = os.environ.keys() if names is None else names
    return {name: env_digest(key, os.environ[name]) for name in names if name in os.environ}


def env_digest(key: bytes, value: str) -> str:
    return hmac.new(key, value.encode("utf-8", "surrogateescape"), hashlib.sha256).hexdigest()[:32]
