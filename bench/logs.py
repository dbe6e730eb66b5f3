"""Log throughput: a job printing 1,000,000 lines until its log is complete in
render-local, against `docker run` of the same piped to /dev/null (target <= 1.5x)."""

import subprocess
import sys
import time

from _common import CLI, busybox_project, data_dir, report

SCRIPT = "seq 1 1000000"


def main() -> int:
    project = busybox_project()
    data = data_dir()
    base = CLI + ["--data-dir", data, "--blueprint", str(project / "render.yaml")]
    subprocess.run(base + ["builds", "create", "bench", "--wait"], check=True, capture_output=True)
    start = time.perf_counter()
    subprocess.run(["docker", "run", "--rm", "busybox:1.36", "sh", "-c", SCRIPT], check=True, stdout=subprocess.DEVNULL)
    baseline = time.perf_counter() - start
    start = time.perf_counter()
    result = subprocess.run(base + ["jobs", "create", "bench", "--start-command", SCRIPT, "--wait", "-o", "json"],
                            check=True, capture_output=True, text=True)
    ours = time.perf_counter() - start
    import json

    job_id = json.loads(result.stdout)["id"]
    with open(f"{data}/logs/{job_id}.log", "rb") as handle:
        count = sum(1 for _ in handle)
    print(f"lines captured: {count}")
    ok = report("logs (1,000,000 lines)", ours, baseline, 1.5)
    return 0 if ok and count == 1_000_000 else 1


if __name__ == "__main__":
    sys.exit(main())
