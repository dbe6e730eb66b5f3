"""Whether a process recorded in the data dir (a build's owner, an announced control plane) still runs."""

from __future__ import annotations

import os


def pid_alive(pid) -> bool:
    if not pid:
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False  # it ended without cleaning up: what it recorded is stale
    except PermissionError:
        return True  # someone else's process
    return True
