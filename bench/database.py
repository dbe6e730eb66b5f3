"""Database start-up: `render-local up` until the blueprint's database answers, against
`docker run` of the same image until `pg_isready` answers.

- a new database (its cluster made by initdb): `render-local up` (a new process, asking the
  data dir's control plane, which waits until the database answers as `pg_isready` would have
  it) after `down` and the removal of the database's container and volume (a database the
  blueprint just gained: the private network exists, as the engine's default bridge does for
  the baseline), against `docker run -d` of `postgres:15` with the same user, password,
  database, memory limit and a new named volume, then `docker exec ... pg_isready` every
  0.1 s: target <= 1.2x;
- for the record, no target: a restart with the data kept (`down`, then `up`, against
  `docker stop`, then `docker start` until `pg_isready`).
"""

import json
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from _common import CLI, data_dir, medians_interleaved, report, stop_control_plane

RUNS = 7  # each side, alternating: initdb dominates, a few seconds each
IMAGE = "postgres:15"
BLUEPRINT = """\
databases:
  - name: bench-db
    databaseName: bench
    user: bench
    plan: basic-256mb
    postgresMajorVersion: "15"
"""


def docker(*args: str) -> str:
    return subprocess.run(["docker", *args], check=True, capture_output=True, text=True).stdout.strip()


class Baseline:
    """`docker run` of the image as a user would script it, then `pg_isready` until it answers."""

    def __init__(self):
        self.containers: list[str] = []

    def fresh(self) -> float:
        name = f"rl-bench-pg-{uuid.uuid4().hex[:8]}"
        start = time.perf_counter()
        docker("run", "-d", "--name", name, "-e", "POSTGRES_USER=bench", "-e", "POSTGRES_PASSWORD=bench",
               "-e", "POSTGRES_DB=bench", "-m", "256m", "-v", f"{name}-data:/var/lib/postgresql/data",
               "-p", "127.0.0.1::5432", IMAGE)
        self.containers.append(name)
        self.wait_ready(name)
        return time.perf_counter() - start

    def restart(self) -> float:
        name = self.containers[-1]
        docker("stop", name)
        start = time.perf_counter()
        docker("start", name)
        self.wait_ready(name)
        return time.perf_counter() - start

    @staticmethod
    def wait_ready(name: str) -> None:
        deadline = time.monotonic() + 120
        while subprocess.run(["docker", "exec", name, "pg_isready", "-h", "127.0.0.1", "-U", "bench", "-d", "bench"],
                             capture_output=True).returncode != 0:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} never answered pg_isready")
            time.sleep(0.1)

    def remove(self) -> None:
        for name in self.containers:
            subprocess.run(["docker", "rm", "-f", "-v", name], capture_output=True)
            subprocess.run(["docker", "volume", "rm", f"{name}-data"], capture_output=True)


def main() -> int:
    project = Path(tempfile.mkdtemp(prefix="rl-bench-db-"))
    (project / "render.yaml").write_text(BLUEPRINT)
    data = Path(data_dir())
    base = CLI + ["--data-dir", str(data), "--blueprint", str(project / "render.yaml")]
    baseline = Baseline()
    docker("image", "inspect", IMAGE)  # .ci/base-images makes it offline

    def up() -> float:
        start = time.perf_counter()
        result = subprocess.run(base + ["up"], capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"render-local up failed: {result.stderr.strip()}")
        return time.perf_counter() - start

    def ours_fresh() -> float:
        subprocess.run(base + ["down"], check=True, capture_output=True)
        store_id = json.loads(subprocess.run(base + ["databases", "get", "bench-db", "-o", "json"], check=True,
                                             capture_output=True, text=True).stdout)["id"]
        subprocess.run(["docker", "rm", "-f", f"render-local-{store_id}"], check=True, capture_output=True)
        subprocess.run(["docker", "volume", "rm", f"render-local-{store_id}-data"], check=True, capture_output=True)
        return up()

    def ours_restart() -> float:
        subprocess.run(base + ["down"], check=True, capture_output=True)
        return up()

    try:
        up()  # starts the control plane and the private network; the database's first start
        ours, theirs = medians_interleaved(RUNS, ours_fresh, baseline.fresh)
        ok = report("database: up until ready, a new database", ours, theirs, 1.2)
        ours, theirs = medians_interleaved(RUNS, ours_restart, baseline.restart)
        report("for the record: a restart with the data kept (down, up)", ours, theirs)
    finally:
        subprocess.run(base + ["down", "--volumes"], capture_output=True)
        stop_control_plane(data)
        baseline.remove()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
