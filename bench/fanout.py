"""Fan-out: COUNT jobs of `sleep SECONDS` from one CLI call (--each-arg-from), until
all have succeeded, against COUNT parallel `docker run --rm` of the same. Targets:
50 x sleep 2 <= 1.1x, 200 x sleep 5 <= 1.15x; the control plane's peak resident
memory (VmHWM) is reported.

    python fanout.py            # 50 x sleep 2
    python fanout.py 200 5      # 200 x sleep 5
"""

import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from _common import CLI, busybox_project, data_dir, proc_status_mb, report

from renderlocal.client import discovery

TARGETS = {(50, 2): 1.1, (200, 5): 1.15}


def main() -> int:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 50
    seconds = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    project = busybox_project()
    data = data_dir()
    base = CLI + ["--data-dir", data, "--blueprint", str(project / "render.yaml")]
    subprocess.run(base + ["builds", "create", "bench", "--wait"], check=True, capture_output=True)
    args = tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False)
    args.write("\n".join(str(n) for n in range(count)))
    args.close()

    start = time.perf_counter()
    with ThreadPoolExecutor(count) as pool:
        list(pool.map(lambda _n: subprocess.run(["docker", "run", "--rm", "busybox:1.36", "sleep", str(seconds)],
                                                check=True), range(count)))
    baseline = time.perf_counter() - start

    start = time.perf_counter()
    result = subprocess.run(base + ["jobs", "create", "bench", "--start-command", f"sleep {seconds}; echo",
                                    "--each-arg-from", args.name, "--wait"], capture_output=True, text=True)
    ours = time.perf_counter() - start
    if result.returncode != 0:
        print(result.stderr[-2000:])
        return 1
    plane = discovery.read_live(Path(data))
    ok = report(f"fan-out ({count} x sleep {seconds})", ours, baseline, TARGETS.get((count, seconds)))
    print(f"control plane peak RSS (VmHWM): {proc_status_mb(plane.pid, 'VmHWM'):.0f} MB")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
