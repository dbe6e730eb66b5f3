"""Render-shaped ids: a prefix, a dash and 20 characters of [0-9a-z] (a Postgres id ends in ``-a``,
its primary's suffix on Render)."""

import re
import secrets
import string

_ALPHABET = string.digits + string.ascii_lowercase
ID_PATTERN = re.compile(r"^((srv|crn|job|bld|dep|red|cmp|rhs)-[0-9a-z]{20}|dpg-[0-9a-z]{20}-a)$")


def new_id(prefix: str) -> str:
    return prefix + "-" + "".join(secrets.choice(_ALPHABET) for _ in range(20)) + ("-a" if prefix == "dpg" else "")


def looks_like_id(text: str, prefix: str | None = None) -> bool:
    if not ID_PATTERN.fullmatch(text):  # `$` alone would let a trailing newline through
        return False
    return prefix is None or text.startswith(prefix + "-")
