"""The local API's bearer token: made on first use, readable by the owner only."""

from __future__ import annotations

import os
import secrets
import stat
import sys
from pathlib import Path

from renderlocal.core.atomic import publish_once, write_atomic
from renderlocal.core.clock import utcnow

TOKEN_FILE = "api-token"


def load_or_create_token(data_dir: Path) -> str:
    """The token in ``data_dir/api-token`` (mode 0600), made with ``secrets`` if absent.

    Two processes starting at once agree on one token: the file is published
    with a hard link, which fails if another process published first.
    """
    path = Path(data_dir) / TOKEN_FILE
    token = _read(path)
    if token:
        return token
    _set_aside_if_no_token(path)
    fresh = "rnd_" + secrets.token_urlsafe(24) + "\n"  # Render's API keys start with rnd_
    if not publish_once(path, fresh, private=True):
        token = _read(path)
        if token:
            return token  # another process won the race: its token is the one
        write_atomic(path, fresh, private=True)  # an empty or unreadable leftover: ours replaces it
    return _read(path)


def _read(path: Path) -> str | None:
    """The token in the file, or None if it is absent or holds no token: one word of printable ASCII."""
    try:
        info = path.stat()
        if stat.S_IMODE(info.st_mode) & 0o077:
            os.chmod(path, 0o600)  # a copied or restored file: keep the secret private
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    return _token_in(raw)


def _token_in(raw: bytes) -> str | None:
    raw = raw.strip()
    if not raw or not all(0x21 <= byte <= 0x7E for byte in raw):
        return None  # a header value must be printable ASCII: this is no token
    return raw.decode("ascii")


def _set_aside_if_no_token(path: Path) -> None:
    """A file that holds something but no token (binary, several words) is moved aside, kept to look
    at; a new token replaces it."""
    try:
        raw = path.read_bytes()  # one read decides: a token another thread publishes meanwhile is never moved
    except FileNotFoundError:
        return
    if not raw.strip() or _token_in(raw) is not None:
        return  # empty (replaced in place), or a good one another process just published
    aside = path.with_name(f"{path.name}.corrupt-{utcnow().strftime('%Y%m%dT%H%M%S%fZ')}")
    try:
        os.replace(path, aside)
    except FileNotFoundError:
        return  # another process moved it first
    print(f"render-local: warning: {path} held no token (not one word of printable ASCII): moved to {aside.name}; "
          "a new token replaces it (clients read it from the file; one given the old token by hand needs "
          "`render-local token` again)", file=sys.stderr, flush=True)
