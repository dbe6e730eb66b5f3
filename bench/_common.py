"""Shared helpers of the benchmark scripts: timing and a throwaway data dir."""

from __future__ import annotations

import atexit
import http.client
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "renderlocal"]


def compile_package() -> None:
    """Byte-compile render-local as pip does when it installs a wheel: under PYTHONDONTWRITEBYTECODE (set
    on some machines) an editable install would otherwise compile ~35 modules in every CLI process."""
    import compileall

    compileall.compile_dir(ROOT / "renderlocal", quiet=1)


compile_package()


def timed(command: list[str], **kwargs) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kwargs)
    return time.perf_counter() - start


def proc_status_mb(pid: int, key: str) -> float:
    """A memory figure of /proc/PID/status in MB: VmRSS (resident now), VmHWM (its peak)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {key} for pid {pid}")


def median_of(runs: int, action) -> float:
    return statistics.median(action() for _ in range(runs))


def medians_interleaved(runs: int, ours, baseline) -> tuple[float, float]:
    """Medians of ``runs`` alternating runs of each, so drift in the machine's load hits both alike."""
    pairs = [(ours(), baseline()) for _ in range(runs)]
    return statistics.median(p[0] for p in pairs), statistics.median(p[1] for p in pairs)


def data_dir() -> str:
    """A throwaway data dir; the control plane a CLI starts for it is stopped at exit."""
    path = tempfile.mkdtemp(prefix="rl-bench-data-")
    atexit.register(stop_control_plane, Path(path))
    return path


def stop_control_plane(path: Path) -> None:
    from renderlocal.client import discovery

    running = discovery.read_live(path)
    if running is not None:
        os.kill(running.pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        while discovery.pid_alive(running.pid) and time.monotonic() < deadline:
            time.sleep(0.02)


def busybox_project() -> Path:
    root = Path(tempfile.mkdtemp(prefix="rl-bench-"))
    (root / "app").mkdir()
    (root / "app" / "Dockerfile").write_text("FROM busybox:1.36\n")
    (root / "render.yaml").write_text(
        "services:\n  - type: worker\n    name: bench\n    runtime: docker\n    rootDir: app\n    plan: pro\n"
    )
    return root


def job_against_docker_run(script: str) -> tuple[str, str, float, float]:
    """``script`` as a job of the busybox project (``--wait``) and as ``docker run ... > /dev/null``:
    (data dir, job id, render-local's seconds, docker run's seconds)."""
    import json
    import subprocess
    import time

    project = busybox_project()
    data = data_dir()
    base = CLI + ["--data-dir", data, "--blueprint", str(project / "render.yaml")]
    subprocess.run(base + ["builds", "create", "bench", "--wait"], check=True, capture_output=True)
    start = time.perf_counter()
    subprocess.run(["docker", "run", "--rm", "busybox:1.36", "sh", "-c", script], check=True, stdout=subprocess.DEVNULL)
    baseline = time.perf_counter() - start
    start = time.perf_counter()
    result = subprocess.run(base + ["jobs", "create", "bench", "--start-command", script, "--wait", "-o", "json"],
                            check=True, capture_output=True, text=True)
    ours = time.perf_counter() - start
    return data, json.loads(result.stdout)["id"], ours, baseline


def report(name: str, ours: float, baseline: float, target_ratio: float | None = None, unit: str = "s") -> bool:
    ratio = ours / baseline if baseline else float("inf")
    ok = target_ratio is None or ratio <= target_ratio
    target = f" target <= {target_ratio}x" if target_ratio else ""
    verdict = "(no target)" if target_ratio is None else "OK" if ok else "MISSED"
    print(f"{name}: render-local {ours:.3f}{unit}, baseline {baseline:.3f}{unit}, ratio {ratio:.2f}x{target} {verdict}")
    return ok


class Api:
    """A keep-alive client of a running `render-local serve`."""

    def __init__(self, url: str, token: str):
        host_port = url.split("//", 1)[1].split("/", 1)[0]
        self.connection = http.client.HTTPConnection(host_port)
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def call(self, method: str, path: str, body=None) -> dict:
        try:
            self.connection.request(method, "/v1" + path, body=json.dumps(body) if body is not None else None,
                                    headers=self.headers)
        except OSError:  # the server closed an idle keep-alive connection: open a new one
            self.connection.close()
            self.connection.request(method, "/v1" + path, body=json.dumps(body) if body is not None else None,
                                    headers=self.headers)
        response = self.connection.getresponse()
        data = json.loads(response.read())
        if response.status >= 400:
            raise RuntimeError(f"{method} {path}: {response.status} {data}")
        return data
