"""Live resource figures of running jobs and service instances: memory and CPU against their
plan's, as ``docker stats`` computes them, with a short history for a sparkline.

One thread samples every running container each SAMPLE_SECONDS, but only while a face asked
for figures in the last WANTED_SECONDS: nobody watching costs the engine nothing. The engine's
one-shot stats answer at once (a streamed one waits a second for a second reading), so the CPU
figure is the difference between two of our own samples.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from decimal import Decimal

from renderlocal.core.models import stamp
from renderlocal.core.plans import get_plan
from renderlocal.core.statuses import JobStatus

SAMPLE_SECONDS = 2.0
KEEP_SAMPLES = 60  # two minutes of history
WANTED_SECONDS = 60.0


class ResourceMeters:
    def __init__(self, engine, state, container_of=lambda job: job.containerId):
        self.engine = engine
        self.state = state
        self.container_of = container_of  # a running job's container here (swarm: None on another node)
        self._history: dict[str, deque] = {}  # job or instance id -> its samples, oldest first
        self._last_cpu: dict[str, tuple[int, float]] = {}  # id -> (CPU ns used, monotonic time) of its last sample
        self._lock = threading.Lock()
        self._wanted_until = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="resource-meters", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def view(self, target: dict) -> dict:
        """``target`` (ControlPlane.running_container): its latest sample and its history. The
        first ask samples it at once (memory; CPU needs a second sample) and wakes the sampler."""
        self._wanted_until = time.monotonic() + WANTED_SECONDS
        if not self._fresh(target["id"]):
            self._sample(target)
        with self._lock:
            history = list(self._history.get(target["id"], ()))
        return {"id": target["id"], "kind": target["kind"], "planId": target["planId"],
                "latest": history[-1] if history else None, "history": history}

    def view_all(self) -> list[dict]:
        """Every running job's and instance's latest sample (a list's column)."""
        self._wanted_until = time.monotonic() + WANTED_SECONDS
        targets = self.running()
        for target in targets:
            if not self._fresh(target["id"]):
                self._sample(target)
        with self._lock:
            return [{"id": t["id"], "kind": t["kind"], "planId": t["planId"],
                     "latest": self._history[t["id"]][-1] if self._history.get(t["id"]) else None} for t in targets]

    def _fresh(self, target_id: str) -> bool:
        """Whether its last sample is from the sampler's last round (not from before nobody watched)."""
        with self._lock:
            last = self._last_cpu.get(target_id)
        return last is not None and time.monotonic() - last[1] < 2 * SAMPLE_SECONDS

    def running(self) -> list[dict]:
        """The running jobs and service instances, as ControlPlane.running_container describes one."""
        found = [{"kind": "job", "id": job.id, "serviceId": job.serviceId, "planId": job.planId,
                  "containerId": container}
                 for job in self.state.unsettled_jobs() if job.status == JobStatus.RUNNING and job.containerId
                 if (container := self.container_of(job))]
        for service in self.state.list_services():
            if not service.liveDeployId or service.suspended:
                continue
            deploy = self.state.get_deploy(service.liveDeployId)
            found += [{"kind": "instance", "id": i["id"], "serviceId": service.id, "planId": service.planId,
                       "containerId": i["containerId"]} for i in deploy.instances
                      if not i.get("stoppedAt") and i.get("containerId")]  # a swarm instance not placed yet: none
        return found

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_SECONDS):
            if time.monotonic() > self._wanted_until:
                continue
            try:
                targets = self.running()
            except Exception:  # a store being rewritten, the engine away: the next round tries again
                continue
            for target in targets:
                self._sample(target)
            alive = {t["id"] for t in targets}
            with self._lock:  # what ended is forgotten
                for gone in set(self._history) - alive:
                    del self._history[gone]
                    self._last_cpu.pop(gone, None)

    def _sample(self, target: dict) -> None:
        try:
            raw = self.engine.api.stats(target["containerId"], stream=False, one_shot=True)
        except Exception:  # it stopped between the list and now
            return
        now = time.monotonic()
        plan = get_plan(target["planId"])
        memory = _memory_in_use(raw.get("memory_stats") or {})
        used_ns = ((raw.get("cpu_stats") or {}).get("cpu_usage") or {}).get("total_usage")
        sample = {"at": stamp(), "memoryBytes": memory, "memoryLimitBytes": plan.memory_bytes,
                  "memoryFraction": round(memory / plan.memory_bytes, 4) if memory is not None else None,
                  "cpu": None, "cpuLimit": float(plan.cpu), "cpuFraction": None}
        with self._lock:
            before = self._last_cpu.get(target["id"])
            if used_ns is not None:
                self._last_cpu[target["id"]] = (used_ns, now)
            if before is not None and used_ns is not None and now > before[1]:
                cpus = max(0, used_ns - before[0]) / 1e9 / (now - before[1])
                sample["cpu"] = round(cpus, 3)
                sample["cpuFraction"] = round(cpus / float(plan.cpu), 4) if plan.cpu > Decimal(0) else None
            self._history.setdefault(target["id"], deque(maxlen=KEEP_SAMPLES)).append(sample)


def _memory_in_use(stats: dict) -> int | None:
    """Memory in use as ``docker stats`` shows it: usage less the reclaimable page cache."""
    usage = stats.get("usage")
    if usage is None:
        return None
    detail = stats.get("stats") or {}
    cache = detail.get("total_inactive_file", detail.get("inactive_file", 0))  # cgroup v1, else v2
    return usage - cache if cache < usage else usage
