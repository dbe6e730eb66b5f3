"""Overhead: `jobs create --wait` of `true`, end to end, against `docker run --rm IMAGE sh -c true`.

Target: CLI <= 1.5x the raw docker run.
"""

import subprocess
import sys
import tempfile

from _common import CLI, busybox_project, median_of, report, timed


def main() -> int:
    project = busybox_project()
    data = tempfile.mkdtemp(prefix="rl-bench-data-")
    base = CLI + ["--data-dir", data, "--blueprint", str(project / "render.yaml")]
    subprocess.run(base + ["builds", "create", "bench", "--wait"], check=True, capture_output=True)
    timed(["docker", "run", "--rm", "busybox:1.36", "sh", "-c", "true"])  # warm the engine
    baseline = median_of(7, lambda: timed(["docker", "run", "--rm", "busybox:1.36", "sh", "-c", "true"]))
    ours = median_of(7, lambda: timed(base + ["jobs", "create", "bench", "--start-command", "true", "--wait"]))
    return 0 if report("overhead (CLI jobs create --wait true)", ours, baseline, 1.5) else 1


if __name__ == "__main__":
    sys.exit(main())
