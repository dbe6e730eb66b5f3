"""Log pages: GET /v1/logs limit=100 of a 1,000,000-line job log, against the same page of a
1,000-line one, in the same run (targets: p50 <= 20 ms at 1,000,000 lines, and <= 2x the p50
at 1,000 lines).

Both logs are written by real jobs (`seq 1 N` of the busybox project, run by the control
plane the CLI starts), so their lines carry the times live capture gives them. Three pages
each: the first (forward from the job's first line), one in the middle (startTime and endTime
around the log's middle line, forward) and the last (backward, the API's default). Every
answer is checked: exactly 100 lines, the right ones.
"""

import itertools
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

from _common import CLI, Api, busybox_project, data_dir, report

from renderlocal.client import discovery
from renderlocal.core.logstore import LogStore

SIZES = (1_000, 1_000_000)
SAMPLES = 25  # per page and size, alternating sizes so drift in the machine's load hits both alike
LIMIT = 100
TARGET_MS = 20.0


def run_job(base: list[str], lines: int) -> str:
    result = subprocess.run(base + ["jobs", "create", "bench", "--start-command", f"seq 1 {lines}", "--wait", "-o", "json"],
                            check=True, capture_output=True, text=True)
    return json.loads(result.stdout)["id"]


def pages_of(logs: LogStore, job_id: str, lines: int) -> dict[str, tuple[dict, list[str]]]:
    """Each page's query and the messages it must answer."""
    size = logs.path(job_id).stat().st_size
    first = next(logs.read(job_id)).timestamp
    middle = list(itertools.islice(logs.read(job_id, _line_after(logs, job_id, size // 2)), LIMIT + 50))
    start_number = int(middle[0].message)
    return {
        "first": ({"direction": "forward", "startTime": first},
                  [str(n) for n in range(1, LIMIT + 1)]),
        "middle": ({"direction": "forward", "startTime": middle[0].timestamp, "endTime": middle[-1].timestamp},
                   [str(n) for n in range(start_number, start_number + LIMIT)]),
        "last": ({}, [str(n) for n in range(lines, lines - LIMIT, -1)]),
    }


def _line_after(logs: LogStore, job_id: str, position: int) -> int:
    """The offset of the first line starting at or after byte ``position``."""
    with open(logs.path(job_id), "rb") as handle:
        handle.seek(position - 1)
        handle.readline()
        return handle.tell()


def timed_page(api: Api, job_id: str, query: dict, expected: list[str]) -> float:
    params = urlencode({"ownerId": "tea-local", "resource": job_id, "limit": LIMIT} | query)
    start = time.perf_counter()
    page = api.call("GET", f"/logs?{params}")
    elapsed = time.perf_counter() - start
    got = [entry["message"] for entry in page["logs"]]
    if got != expected or not page["hasMore"]:
        raise RuntimeError(f"wrong page of {job_id} {query}: {len(got)} lines, {got[:3]}...{got[-3:]}, hasMore {page['hasMore']}")
    return elapsed * 1000


def main() -> int:
    project = busybox_project()
    data = Path(data_dir())
    base = CLI + ["--data-dir", str(data), "--blueprint", str(project / "render.yaml")]
    subprocess.run(base + ["builds", "create", "bench", "--wait"], check=True, capture_output=True)
    jobs = {lines: run_job(base, lines) for lines in SIZES}
    logs = LogStore(data / "logs")
    for lines, job_id in jobs.items():
        with open(logs.path(job_id), "rb") as handle:
            count = sum(1 for _ in handle)
        if count != lines:
            raise RuntimeError(f"the {lines}-line job's log holds {count} lines")
    pages = {lines: pages_of(logs, job_id, lines) for lines, job_id in jobs.items()}
    plane = discovery.read_live(data)
    api = Api(plane.url, (data / "api-token").read_text().strip())
    ok = True
    for name in ("first", "middle", "last"):
        samples = {lines: [] for lines in SIZES}
        for _ in range(SAMPLES):
            for lines in SIZES:
                samples[lines].append(timed_page(api, jobs[lines], *pages[lines][name]))
        small, large = (statistics.median(samples[lines]) for lines in SIZES)
        ok &= report(f"log page {name} (p50, 1,000,000 lines vs 1,000)", large, small, 2.0, unit=" ms")
        if large > TARGET_MS:
            print(f"  MISSED: p50 {large:.1f} ms at 1,000,000 lines, target <= {TARGET_MS:.0f} ms")
            ok = False
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
