"""Overhead: a job of `true` end to end, against `docker run --rm IMAGE sh -c true`.

- CLI: `render-local jobs create --wait` (a new process each time), asking
  the data dir's control plane, which the first call starts in the background
  and which then runs and supervises every job: target <= 1.25x (issue 19; it was 1.5x);
- API: POST /v1/services/{id}/jobs to that control plane, then GET the job
  until it has succeeded, as a script would: target <= 1.2x;
- for the record, no target: the first call (it starts the control plane).
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from _common import CLI, Api, busybox_project, data_dir, median_of, medians_interleaved, report, stop_control_plane, timed

from renderlocal.client import discovery

POLL_SECONDS = 0.01
RUNS = 11  # each side, alternating


def api_job(api: Api, service_id: str) -> float:
    start = time.perf_counter()
    job = api.call("POST", f"/services/{service_id}/jobs", {"startCommand": "true"})
    while job["status"] not in ("succeeded", "failed", "canceled"):
        time.sleep(POLL_SECONDS)
        job = api.call("GET", f"/services/{service_id}/jobs/{job['id']}")
    if job["status"] != "succeeded":
        raise RuntimeError(f"job {job['id']} {job['status']}")
    return time.perf_counter() - start


def main() -> int:
    project = busybox_project()
    data = Path(data_dir())
    base = CLI + ["--data-dir", str(data), "--blueprint", str(project / "render.yaml")]
    subprocess.run(base + ["builds", "create", "bench", "--wait"], check=True, capture_output=True)
    raw = ["docker", "run", "--rm", "busybox:1.36", "sh", "-c", "true"]
    cli = base + ["jobs", "create", "bench", "--start-command", "true", "--wait"]
    timed(raw)  # warm the engine

    stop_control_plane(data)  # the build's: the first job call starts one, for the record
    report("for the record (first CLI call, starts the control plane)", timed(cli), median_of(3, lambda: timed(raw)))
    plane = discovery.read_live(data)
    try:
        ours, baseline = medians_interleaved(RUNS, lambda: timed(cli), lambda: timed(raw))
        ok = report("overhead (CLI jobs create --wait true)", ours, baseline, 1.25)
        api = Api(plane.url, (data / "api-token").read_text().strip())
        service_id = next(s["service"]["id"] for s in api.call("GET", "/services") if s["service"]["name"] == "bench")
        ours, baseline = medians_interleaved(RUNS, lambda: api_job(api, service_id), lambda: timed(raw))
        ok &= report("overhead (API create until succeeded, true)", ours, baseline, 1.2)
    finally:
        os.kill(plane.pid, signal.SIGTERM)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
