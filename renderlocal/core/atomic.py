"""Replacing a file so that no reader and no crash ever sees half of it."""

from __future__ import annotations

import os
from pathlib import Path


def write_atomic(path: Path, data: bytes | str, private: bool = False, durable: bool = True) -> None:
    """Write ``data`` to a temporary file beside ``path``, then rename it over ``path``.

    ``private``: owner-only (secrets, the token). ``durable``: fsync before the
    rename, so a power cut leaves the old version or the new one, never an empty file.
    """
    tmp = _written_beside(Path(path), data, private, durable)
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def publish_once(path: Path, data: bytes | str, private: bool = False) -> bool:
    """Create ``path`` with ``data`` only if it does not exist yet (a hard link never clobbers).

    Returns whether this call created it; two processes racing agree on one file.
    """
    tmp = _written_beside(Path(path), data, private, durable=True)
    try:
        os.link(tmp, path)
        return True
    except FileExistsError:
        return False
    finally:
        tmp.unlink(missing_ok=True)


def _written_beside(path: Path, data: bytes | str, private: bool, durable: bool) -> Path:
    """A temporary file in ``path``'s folder (so a rename or link stays on one file system) holding ``data``."""
    import tempfile  # not at import: the CLI reads files written this way, it never writes them

    fd, name = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        if private:
            os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data.encode() if isinstance(data, str) else data)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    return Path(name)
