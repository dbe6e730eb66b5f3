"""Idle cost: a control plane with 10 finished jobs and 3 live services (a web service
and two workers, busybox), and no user action, over 60 s: CPU < 1% of one core and
resident memory < 80 MB, read from /proc (utime + stime, VmRSS sampled every second).
Run with a number to measure that many seconds instead (the target stays per 60 s).
"""

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import CLI, data_dir, proc_status_mb, stop_control_plane

from renderlocal.client import discovery

SECONDS = 60
CPU_TARGET_PERCENT = 1.0
RSS_TARGET_MB = 80
SETTLE_SECONDS = 5  # after the last command: the job supervisors finish, the request that asked is done

BLUEPRINT = """\
services:
  - type: web
    name: idle-web
    runtime: docker
    rootDir: app
    dockerCommand: httpd -f -p $PORT -h /
  - type: worker
    name: idle-worker-1
    runtime: docker
    rootDir: app
    dockerCommand: sleep 100000
  - type: worker
    name: idle-worker-2
    runtime: docker
    rootDir: app
    dockerCommand: sleep 100000
"""


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def main() -> int:
    seconds = int(sys.argv[1]) if len(sys.argv) > 1 else SECONDS
    root = Path(tempfile.mkdtemp(prefix="rl-bench-idle-"))
    (root / "app").mkdir()
    (root / "app" / "Dockerfile").write_text("FROM busybox:1.36\n")
    (root / "render.yaml").write_text(BLUEPRINT)
    data = Path(data_dir())
    base = CLI + ["--data-dir", str(data), "--blueprint", str(root / "render.yaml")]
    args = root / "args.txt"
    args.write_text("\n".join(str(n) for n in range(10)) + "\n")
    try:
        subprocess.run(base + ["up"], check=True, capture_output=True)
        subprocess.run(base + ["jobs", "create", "idle-worker-1", "--start-command", "echo", "--each-arg-from", str(args),
                               "--wait"], check=True, capture_output=True)
        plane = discovery.read_live(data)
        time.sleep(SETTLE_SECONDS)
        start_cpu, rss = cpu_seconds(plane.pid), [proc_status_mb(plane.pid, "VmRSS")]
        start = time.monotonic()
        while time.monotonic() - start < seconds:
            time.sleep(1)
            rss.append(proc_status_mb(plane.pid, "VmRSS"))
        cpu = cpu_seconds(plane.pid) - start_cpu
        elapsed = time.monotonic() - start
    finally:
        subprocess.run(base + ["down"], capture_output=True)
        stop_control_plane(data)
    percent = 100 * cpu / elapsed
    ok = percent < CPU_TARGET_PERCENT and max(rss) < RSS_TARGET_MB
    print(f"idle control plane (10 finished jobs, 3 live services, {elapsed:.0f} s): CPU {cpu:.2f} s = {percent:.2f}% "
          f"of one core (target < {CPU_TARGET_PERCENT}%), RSS {min(rss):.0f}-{max(rss):.0f} MB (target < {RSS_TARGET_MB} MB) "
          f"{'OK' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
