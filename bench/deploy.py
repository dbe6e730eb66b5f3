"""Deploy of a web service until its health check passes, against `docker run` of the same image
until the same check passes.

- render-local: `deploys create bench-web --wait` (a new CLI process asking the data dir's control
  plane; it returns once the new instance answers `healthCheckPath` 2xx and the deploy is live);
- baseline: `docker run -d` of the service's built image with the same command, the plan's memory
  and CPU and a localhost port, then `GET /` on that port every 20 ms until it answers 200.

Alternating pairs, so drift in the machine's load hits both sides alike. Target: <= 1.2x.
"""

import json
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

from _common import CLI, data_dir, medians_interleaved, report, stop_control_plane

RUNS = 9
BLUEPRINT = """\
services:
  - type: web
    name: bench-web
    runtime: docker
    rootDir: app
    plan: starter
    healthCheckPath: /
    dockerCommand: python -m http.server 10000
"""


def docker(*args: str) -> str:
    return subprocess.run(["docker", *args], check=True, capture_output=True, text=True).stdout.strip()


def answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def main() -> int:
    project = Path(tempfile.mkdtemp(prefix="rl-bench-deploy-"))
    (project / "app").mkdir()
    (project / "app" / "Dockerfile").write_text("FROM python:3.11-slim\n")
    (project / "render.yaml").write_text(BLUEPRINT)
    data = Path(data_dir())
    base = CLI + ["--data-dir", str(data), "--blueprint", str(project / "render.yaml")]
    build = json.loads(subprocess.run(base + ["builds", "create", "bench-web", "--wait", "-o", "json"], check=True,
                                      capture_output=True, text=True).stdout)
    image = build.get("image") or docker("images", "-q", "--filter", "label=render-local.data-dir=" + str(data))
    containers: list[str] = []

    def ours() -> float:
        start = time.perf_counter()
        result = subprocess.run(base + ["deploys", "create", "bench-web", "--wait"], capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"deploy failed: {result.stderr.strip()}")
        return time.perf_counter() - start

    def baseline() -> float:
        name = f"rl-bench-web-{uuid.uuid4().hex[:8]}"
        start = time.perf_counter()
        docker("run", "-d", "--name", name, "-m", "512m", "--cpus", "0.5", "-p", "127.0.0.1::10000", image,
               "python", "-m", "http.server", "10000")
        containers.append(name)
        port = int(docker("port", name, "10000/tcp").splitlines()[0].rsplit(":", 1)[1])
        deadline = time.monotonic() + 120
        while not answers(port):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} never answered")
            time.sleep(0.02)
        elapsed = time.perf_counter() - start
        subprocess.run(["docker", "rm", "-f", name], capture_output=True)
        return elapsed

    try:
        ours()  # the first deploy starts the private network and the URL's proxy
        mine, theirs = medians_interleaved(RUNS, ours, baseline)
        ok = report("deploy: a web service until its health check passes", mine, theirs, 1.2)
    finally:
        subprocess.run(base + ["down"], capture_output=True)
        stop_control_plane(data)
        for name in containers:
            subprocess.run(["docker", "rm", "-f", name], capture_output=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
