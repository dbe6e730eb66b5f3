"""Every write the control plane makes, as a numbered change.

Faces redraw on changes instead of re-reading the store on a timer: the app in
the same process listens (``listen``), remote faces long-poll the API
(``GET /local/events``), the CLI waits for its job's end the same way.
"""

from __future__ import annotations

import secrets
import threading
from collections import deque
from dataclasses import asdict, dataclass
from typing import Callable

KEEP = 4096  # changes a late long-poll can still catch up on; older: it reloads everything


@dataclass(frozen=True)
class Change:
    seq: int
    kind: str  # job, build, service or settings
    id: str | None  # None: many of that kind changed at once
    status: str | None = None

    def to_json(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}


class ChangeFeed:
    def __init__(self):
        self.epoch = secrets.token_hex(6)  # a restarted control plane counts from 0 again: clients compare this
        self._cond = threading.Condition()
        self._seq = 0
        self._recent: deque[Change] = deque(maxlen=KEEP)
        self._listeners: list[Callable[[Change], None]] = []

    @property
    def seq(self) -> int:
        return self._seq

    def publish(self, kind: str, doc: dict | None) -> Change:
        with self._cond:
            self._seq += 1
            change = Change(self._seq, kind, (doc or {}).get("id"), (doc or {}).get("status"))
            self._recent.append(change)
            self._cond.notify_all()
            listeners = list(self._listeners)
        for listener in listeners:
            listener(change)  # listeners only post a message: they never block or raise
        return change

    def listen(self, callback: Callable[[Change], None]) -> Callable[[], None]:
        """Call ``callback(change)`` (from the writing thread) for every change; returns the way to stop."""
        with self._cond:
            self._listeners.append(callback)

        def stop() -> None:
            with self._cond:
                if callback in self._listeners:
                    self._listeners.remove(callback)

        return stop

    def since(self, after: int, timeout: float = 0.0) -> tuple[int, list[Change] | None]:
        """Changes after ``after``, waiting up to ``timeout`` for one; None when some were
        already dropped (the caller reloads everything)."""
        with self._cond:
            if self._seq <= after:
                self._cond.wait_for(lambda: self._seq > after, timeout)
            if self._recent and self._recent[0].seq > after + 1:
                return self._seq, None
            return self._seq, [c for c in self._recent if c.seq > after]
