"""What a job's or a service's container may use: its plan's memory, CPU and processes,
no privilege gained, fewer capabilities, a bounded engine log, and a bounded disk where
the engine can limit one."""

from __future__ import annotations

import threading

from renderlocal.core.plans import Plan
from renderlocal.executor.engine import LABEL

# Capabilities Docker grants by default that jobs and web apps do not need: raw sockets
# (packet spoofing, ping), device nodes, chroot, setting file capabilities, changing capability
# sets, the kernel's audit log. Kept: chown, file permissions, kill, setuid and setgid (an
# entrypoint that drops to a user, su, gosu), binding ports under 1024 (a server on port 80).
DROPPED_CAPABILITIES = ("NET_RAW", "MKNOD", "SYS_CHROOT", "SETFCAP", "SETPCAP", "AUDIT_WRITE")

# The engine's own copy of a job's output, which render-local reads only to catch a log up
# after a crash: json-file rotated at 20 MB, 5 files (the sizes of Docker's `local` driver),
# about 1.3 million short lines (76 bytes each as JSON). The catch-up skips as many lines as
# the file holds, counted from the oldest line the engine kept: a job that printed more than
# that before a crash would lose, after what its file holds, as many lines as were rotated away.
BOUNDED_ENGINE_LOG = {"type": "json-file", "config": {"max-size": "20m", "max-file": "5"}}

# A container's writable layer, where the engine can bound it (overlay2 on xfs with pquota,
# btrfs, zfs, devicemapper, windowsfilter); elsewhere a job can fill the host's disk.
DISK_LIMIT = "10G"
_SIZE_DRIVERS = ("overlay2", "btrfs", "zfs", "devicemapper", "windowsfilter")


def container_limits(engine, plan: Plan, image: str, bounded_log: bool = True) -> dict:
    """Keyword arguments of ``containers.create`` for a container of ``plan``. Without
    ``bounded_log`` the engine keeps the whole log: for containers whose log render-local
    reads only from the engine, resuming by line count (service instances, pre-deploy)."""
    limits = {
        "mem_limit": plan.memory_bytes, "memswap_limit": plan.memory_bytes,
        "nano_cpus": min(plan.nano_cpus, engine_nano_cpus(engine)),  # the engine refuses more than it has
        "pids_limit": plan.pids_limit,
        "security_opt": ["no-new-privileges"],  # setuid binaries and file capabilities grant nothing
        "cap_drop": list(DROPPED_CAPABILITIES),
    }
    if bounded_log:
        limits["log_config"] = BOUNDED_ENGINE_LOG
    if disk_limit_supported(engine, image):
        limits["storage_opt"] = {"size": DISK_LIMIT}
    return limits


_cpus: dict[str, int] = {}


def engine_nano_cpus(engine) -> int:
    """The CPUs the engine's machine has, in nano CPUs (asked once per engine): a Pro Plus job
    (4 CPU) on a 2-core laptop runs with 2 rather than not at all."""
    key = engine.api.base_url
    with _support_guard:
        if key not in _cpus:
            _cpus[key] = int(engine.info().get("NCPU") or 0) * 1_000_000_000 or 2**62
        return _cpus[key]


def cpu_cap_note(engine, plan: Plan) -> str | None:
    """What a job's events say when its plan has more CPU than the engine: the cap, once (None when
    the engine cannot say how many CPUs it has: the job runs, its event says only "started")."""
    try:
        available = engine_nano_cpus(engine)
    except Exception:
        return None
    if plan.nano_cpus <= available:
        return None
    return f"{plan.name} has {plan.cpu} CPU; this engine's machine has {available // 1_000_000_000}: capped at that"


_support: dict[str, bool] = {}
_support_guard = threading.Lock()


def disk_limit_supported(engine, image: str) -> bool:
    """Whether the engine can bound a container's writable layer: asked once per engine, by
    its storage driver and, where that may support it, by creating a container with the limit."""
    key = engine.api.base_url
    with _support_guard:
        if key not in _support:
            _support[key] = _probe_disk_limit(engine, image)
        return _support[key]


def _probe_disk_limit(engine, image: str) -> bool:
    info = engine.info()
    driver = info.get("Driver")
    backing = dict(info.get("DriverStatus") or []).get("Backing Filesystem")
    if driver not in _SIZE_DRIVERS or (driver == "overlay2" and backing != "xfs"):
        return False
    from docker.errors import APIError

    try:  # overlay2 on xfs needs the pquota mount option, which only the engine sees
        probe = engine.api.create_container(image, command=["true"], labels={LABEL: "probe"},
                                            host_config=engine.api.create_host_config(storage_opt={"size": DISK_LIMIT}))
    except APIError:  # "--storage-opt is supported only for overlay over xfs with 'pquota' mount option"
        return False
    engine.api.remove_container(probe["Id"], force=True)
    return True
