"""The local API's bearer token: made on first use, readable by the owner only."""

from __future__ import annotations

import os
import secrets
import stat
import tempfile
from pathlib import Path

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
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=TOKEN_FILE + ".")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write("rnd_" + secrets.token_urlsafe(24) + "\n")  # Render's API keys start with rnd_
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            token = _read(path)
            if token:
                return token  # another process won the race: its token is the one
            os.replace(tmp, path)  # an empty or unreadable leftover: ours replaces it
            tmp = None
    finally:
        if tmp is not None:
            os.unlink(tmp)
    return _read(path)


def _read(path: Path) -> str | None:
    try:
        info = path.stat()
        if stat.S_IMODE(info.st_mode) & 0o077:
            os.chmod(path, 0o600)  # a copied or restored file: keep the secret private
        return path.read_text().strip() or None
    except FileNotFoundError:
        return None
