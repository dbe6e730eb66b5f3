"""The local API's bearer token: made on first use, readable by the owner only."""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

from renderlocal.core.atomic import publish_once, write_atomic

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
    fresh = "rnd_" + secrets.token_urlsafe(24) + "\n"  # Render's API keys start with rnd_
    if not publish_once(path, fresh, private=True):
        token = _read(path)
        if token:
            return token  # another process won the race: its token is the one
        write_atomic(path, fresh, private=True)  # an empty or unreadable leftover: ours replaces it
    return _read(path)


def _read(path: Path) -> str | None:
    try:
        info = path.stat()
        if stat.S_IMODE(info.st_mode) & 0o077:
            os.chmod(path, 0o600)  # a copied or restored file: keep the secret private
        return path.read_text().strip() or None
    except FileNotFoundError:
        return None
