"""Which process is a data dir's control plane: the one holding ``executor.lock``.

The lock is an OS file lock, so it is released however its holder ends
(Ctrl-C, ``kill -9``, a crash) and the next control plane to start wins it.
Every other render-local process on the data dir is a face that asks it.
"""

from __future__ import annotations

from pathlib import Path

from filelock import FileLock, Timeout

from renderlocal.core.errors import Conflict

LOCK_FILE = "executor.lock"


class ControlPlaneRunning(Conflict):
    """Another process already is this data dir's control plane."""


class ExecutorLock:
    def __init__(self, data_dir: Path):
        self.path = Path(data_dir) / LOCK_FILE
        self._lock = FileLock(str(self.path), thread_local=False)

    @property
    def held(self) -> bool:
        return self._lock.is_locked

    def acquire(self, wait: float = 0) -> None:
        """Become the control plane, waiting up to ``wait`` seconds for one that is stopping."""
        try:
            self._lock.acquire(timeout=wait)
        except Timeout:
            from renderlocal.client import discovery

            found = discovery.read_live(self.path.parent)
            where = f" at {found.url} (pid {found.pid})" if found else ""
            raise ControlPlaneRunning(f"a control plane already runs for {self.path.parent}{where}") from None

    def release(self) -> None:
        if self._lock.is_locked:
            self._lock.release(force=True)
