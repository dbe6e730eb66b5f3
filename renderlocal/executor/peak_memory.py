"""The most memory a job's container used, for plan comparisons.

The engine's one-shot stats give the cgroup's high-water mark (``max_usage``, cgroup v1) or,
where there is none (cgroup v2), the usage at that moment; sampled every SAMPLE_SECONDS while the
job runs. A container's cgroup goes with it when it exits, so a job shorter than a sample may go
unmeasured (None). An OOM-killed job used its plan's whole memory: that is its peak.
"""

from __future__ import annotations

import time
from typing import Callable

from renderlocal.core.models import Job
from renderlocal.core.statuses import JobStatus

SAMPLE_SECONDS = 0.2


def peak_memory(engine, get_job: Callable[[str], Job], job_id: str, interval: float = SAMPLE_SECONDS,
                container_of: Callable[[Job], str | None] = lambda job: job.containerId) -> int | None:
    """Block until the job ends; its peak memory in bytes, or None if it was never measured.
    ``container_of``: the running job's container on this engine (swarm: None on another node)."""
    peak = None
    while True:
        job = get_job(job_id)
        if job.final:
            break
        container = container_of(job) if job.status == JobStatus.RUNNING and job.containerId else None
        if container:
            try:
                memory = engine.api.stats(container, stream=False, one_shot=True).get("memory_stats") or {}
            except Exception:  # it ended between the read and now
                memory = {}
            value = memory.get("max_usage") or memory.get("usage")
            if value:
                peak = max(peak or 0, value)
        time.sleep(interval)
    if (job.failureReason or {}).get("type") == "oomKilled":
        return job.plan.memory_bytes
    return peak
