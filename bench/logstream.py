"""Log streams: a job's run time with streaming on against streaming off
(target: within 10%). The receiver is a local TCP syslog sink on loopback. Each
side has a data dir (and control plane) of its own; runs alternate (on, off, on,
...) and each side gives the median of its RUNS, so drift in the machine's load
hits both alike."""

import json
import socket
import subprocess
import sys
import threading

from _common import CLI, busybox_project, data_dir, medians_interleaved, report

from renderlocal.core.clock import parse_rfc3339

SCRIPT = "seq 1 1000000"
RUNS = 7  # each side, alternating


def sink() -> int:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()

    def drain(conn):
        while conn.recv(1 << 16):
            pass

    def accept():
        while True:
            conn, _ = server.accept()
            threading.Thread(target=drain, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    return server.getsockname()[1]


def run_time(base) -> float:
    """The job's own run time (startedAt to finishedAt), as billed."""
    result = subprocess.run(base + ["jobs", "create", "bench", "--start-command", SCRIPT, "--wait", "-o", "json"],
                            check=True, capture_output=True, text=True)
    job = json.loads(result.stdout)
    return (parse_rfc3339(job["finishedAt"]) - parse_rfc3339(job["startedAt"])).total_seconds()


def main() -> int:
    project = busybox_project()
    sides = []  # a data dir (and control plane) each, so no side inherits the other's backlog
    for _side in ("on", "off"):
        base = CLI + ["--data-dir", data_dir(), "--blueprint", str(project / "render.yaml")]
        subprocess.run(base + ["builds", "create", "bench", "--wait"], check=True, capture_output=True)
        sides.append(base)
    subprocess.run(sides[0] + ["log-streams", "set", f"127.0.0.1:{sink()}"], check=True, capture_output=True)
    on, off = medians_interleaved(RUNS, lambda: run_time(sides[0]), lambda: run_time(sides[1]))
    return 0 if report("log streams (1,000,000-line job, on vs off)", on, off, 1.10) else 1


if __name__ == "__main__":
    sys.exit(main())
