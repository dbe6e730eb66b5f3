"""The control plane's one background loop, for every process that is one
(``serve``, the terminal app, the CLI's background control plane).

Every RECOVER_SECONDS it ends builds nobody runs, rebuilds job records lost
with a corrupt store, supervises every unfinished job (after a crash: all of
them), and keeps a watcher running for each service in watch mode. While
passes find nothing changed, the wait between them doubles up to
IDLE_PASS_SECONDS: an idle control plane costs next to nothing. With
``idle_exit`` it calls ``on_idle`` once no job, build or request kept it busy
for that long.
"""

from __future__ import annotations

import threading
import time
from typing import Callable

RECOVER_SECONDS = 2.0
IDLE_PASS_SECONDS = 16.0  # the longest wait between passes while nothing changes (a container stopped by hand waits that long)


class Supervisor:
    """``on_problem(error or None)`` hears when a pass fails (the engine is down) and when they
    work again; ``on_adopted(ids)`` hears of jobs it began to supervise that no process was watching."""

    def __init__(self, plane, on_problem: Callable | None = None, on_adopted: Callable | None = None):
        self.plane = plane
        self.on_problem = on_problem
        self.on_adopted = on_adopted
        self.idle_exit: float | None = None
        self.quiet_seconds: Callable[[], float] = lambda: float("inf")  # since the faces last asked
        self.on_idle: Callable[[], bool] | None = None
        self.stop_now: Callable[[], None] | None = None  # set when it stops when idle (a CLI started it)
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, name="supervisor", daemon=True)
        self._problem: str | None = None
        self._first_pass = threading.Event()

    def start(self) -> "Supervisor":
        self.thread.start()
        return self

    def stop_when_idle(self, seconds: float, quiet_seconds: Callable[[], float], on_idle: Callable[[], bool],
                       stop_now: Callable[[], None]) -> None:
        """Call ``on_idle`` once nothing ran and ``quiet_seconds()`` stayed at least ``seconds``; the
        loop ends if it says it stops (it may find a face just asked, and stay). ``stop_now``: how to
        stop at once (asked for by a CLI of another blueprint, when nothing runs)."""
        self.idle_exit, self.quiet_seconds, self.on_idle, self.stop_now = seconds, quiet_seconds, on_idle, stop_now

    def wait_first_pass(self, timeout: float = 30.0) -> bool:
        """Block until the first pass ran: what a crash left is adopted before faces are served."""
        return self._first_pass.wait(timeout)

    def pass_once(self) -> list[str]:
        """One pass of the loop's duties; returns the jobs it began to supervise."""
        adopted = self.plane.recover()
        self.plane.sync_watchers()
        self.plane.cron.tick()
        self.plane.comparisons.resume()
        self.plane.rehearsals.resume()
        return adopted

    def _run(self) -> None:
        busy_at = time.monotonic()
        between, seen = RECOVER_SECONDS, None
        while not self.stop_event.is_set():
            try:
                adopted = self.pass_once()
            except Exception as exc:  # the engine is down or a store file is busy: say so, try again
                self._report(exc)
                adopted = None
            else:
                self._report(None)
                if adopted and self.on_adopted is not None:
                    self.on_adopted(adopted)
            self._first_pass.set()
            if self.idle_exit is not None:
                if self.plane.busy():
                    busy_at = time.monotonic()
                if min(time.monotonic() - busy_at, self.quiet_seconds()) >= self.idle_exit and self.on_idle():
                    return
            # nothing written since the last pass ended (by it, a face or a job) and nothing adopted: rest longer
            quiet = adopted == [] and self.plane.changes.seq == seen
            between = min(between * 2, IDLE_PASS_SECONDS) if quiet else RECOVER_SECONDS
            seen = self.plane.changes.seq
            self._rest(min(between, self.idle_exit or between), seen)

    def _rest(self, seconds: float, seq: int) -> None:
        """Wait ``seconds``, in steps of RECOVER_SECONDS: a change made meanwhile ends it at the next step."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0 and self.plane.changes.seq == seq:
            if self.stop_event.wait(min(RECOVER_SECONDS, left)):
                return

    def _report(self, error: Exception | None) -> None:
        text = None if error is None else str(error) or type(error).__name__
        if text != self._problem:  # once per change, not once per pass
            self._problem = text
            if self.on_problem is not None:
                self.on_problem(error)

    def stop(self) -> None:
        self.stop_event.set()
        if self.thread.ident is not None and self.thread is not threading.current_thread():
            self.thread.join(timeout=5)
