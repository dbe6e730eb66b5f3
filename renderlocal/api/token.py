"""The local API's bearer token: made on first use, readable by the owner only."""

from __future__ import annotations

import secrets
from pathlib import Path

from renderlocal.core.logstream import write_private

TOKEN_FILE = "api-token"


def load_or_create_token(data_dir: Path) -> str:
    path = Path(data_dir) / TOKEN_FILE
    try:
        token = path.read_text().strip()
        if token:
            return token
    except FileNotFoundError:
        pass
    token = "rnd_" + secrets.token_urlsafe(24)  # Render's API keys start with rnd_
    write_private(path, token)
    return token
