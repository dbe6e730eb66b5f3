"""The supervisor loop rests longer while nothing changes, and comes back at once when something does."""

import threading
import time
from types import SimpleNamespace

import renderlocal.executor.supervisor as supervisor_module
from renderlocal.executor.supervisor import Supervisor


class QuietPlane:
    """What the loop asks of a control plane; counts its passes."""

    def __init__(self):
        self.changes = SimpleNamespace(seq=0)
        self.passes: list[float] = []
        self.cron = SimpleNamespace(tick=lambda: None)
        self.comparisons = SimpleNamespace(resume=lambda: None)  # what a pass goes on with after a crash
        self.rehearsals = SimpleNamespace(resume=lambda: None)
        self.lock = threading.Lock()

    def recover(self):
        with self.lock:
            self.passes.append(time.monotonic())
        return []

    def sync_watchers(self):
        pass

    def busy(self):
        return False


def gaps(times: list[float]) -> list[float]:
    return [b - a for a, b in zip(times, times[1:])]


def test_passes_spread_out_while_quiet_and_close_up_after_a_change(monkeypatch):
    monkeypatch.setattr(supervisor_module, "RECOVER_SECONDS", 0.05)
    monkeypatch.setattr(supervisor_module, "IDLE_PASS_SECONDS", 0.4)
    plane = QuietPlane()
    loop = Supervisor(plane).start()
    try:
        time.sleep(2.0)
        quiet = gaps(plane.passes)
        assert quiet[0] < 0.2 and min(quiet[-2:]) > 0.3  # 0.1, 0.2, 0.4, 0.4...: fewer passes when nothing changes
        assert len(plane.passes) < 10  # a 0.05 s loop would have made 40
        changed_at = time.monotonic()
        plane.changes.seq += 1  # a job, a deploy, a face's command: the next pass comes within a step
        time.sleep(0.5)
        after = [t for t in plane.passes if t > changed_at]
        assert after and after[0] - changed_at < 0.15
        assert gaps(after)[:1] == [] or gaps(after)[0] < 0.2  # and the waits start short again
    finally:
        loop.stop()
