"""Log streams: a job's run time with streaming on against streaming off
(target: within 10%). The receiver is a local TCP syslog sink on loopback."""

import json
import socket
import subprocess
import sys
import threading

from _common import CLI, busybox_project, data_dir, report

from renderlocal.core.clock import parse_rfc3339

SCRIPT = "seq 1 1000000"
RUNS = 5


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
    data = data_dir()
    base = CLI + ["--data-dir", data, "--blueprint", str(project / "render.yaml")]
    subprocess.run(base + ["builds", "create", "bench", "--wait"], check=True, capture_output=True)
    off = sorted(run_time(base) for _ in range(RUNS))[RUNS // 2]
    subprocess.run(base + ["log-streams", "set", f"127.0.0.1:{sink()}"], check=True, capture_output=True)
    on = sorted(run_time(base) for _ in range(RUNS))[RUNS // 2]
    return 0 if report("log streams (1,000,000-line job, on vs off)", on, off, 1.10) else 1


if __name__ == "__main__":
    sys.exit(main())
