"""Fan-out: 50 jobs of `sleep 2` launched at once, until all have succeeded,
against 50 parallel `docker run --rm` of the same (target <= 1.2x)."""

import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

from _common import CLI, busybox_project, data_dir, report

COUNT = 50


def main() -> int:
    project = busybox_project()
    data = data_dir()
    base = CLI + ["--data-dir", data, "--blueprint", str(project / "render.yaml")]
    subprocess.run(base + ["builds", "create", "bench", "--wait"], check=True, capture_output=True)
    args = tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False)
    args.write("\n".join(str(n) for n in range(COUNT)))
    args.close()

    start = time.perf_counter()
    with ThreadPoolExecutor(COUNT) as pool:
        list(pool.map(lambda _n: subprocess.run(["docker", "run", "--rm", "busybox:1.36", "sleep", "2"], check=True), range(COUNT)))
    baseline = time.perf_counter() - start

    start = time.perf_counter()
    result = subprocess.run(base + ["jobs", "create", "bench", "--start-command", "sleep 2; echo", "--each-arg-from", args.name, "--wait"],
                            capture_output=True, text=True)
    ours = time.perf_counter() - start
    if result.returncode != 0:
        print(result.stderr[-2000:])
        return 1
    return 0 if report(f"fan-out ({COUNT} x sleep 2)", ours, baseline, 1.2) else 1


if __name__ == "__main__":
    sys.exit(main())
