"""Fan-out beyond one machine: 200 jobs of `sleep 5` launched at once, until all have
succeeded, on the swarm engine backend (each job a one-replica service) and on the
local engine (each a container), side by side in one run. Prints both and the ratio.

The swarm side needs the engine to be a swarm manager; this script makes it a one-node
swarm if it is not one, and leaves it as found. On one node the swarm runs as many jobs
at once as the node has room for by their plans' reservations (Starter: 0.5 CPU, 512 MB),
so on a small machine it is bounded by CPU, where the local engine overcommits.

    python swarm_fanout.py [COUNT]
"""

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import docker
from _common import CLI, busybox_project, data_dir, stop_control_plane

COUNT = int(sys.argv[1]) if len(sys.argv) > 1 else 200


def fan_out(backend: str, count: int) -> tuple[float, int]:
    """Seconds from one CLI call creating ``count`` jobs to all of them ended (its own data dir),
    and how many succeeded."""
    project = busybox_project()
    (project / "render.yaml").write_text((project / "render.yaml").read_text().replace("plan: pro", "plan: starter"))
    data = data_dir()
    env = os.environ | {"RENDER_LOCAL_ENGINE": backend}
    base = CLI + ["--data-dir", data, "--blueprint", str(project / "render.yaml")]
    subprocess.run(base + ["builds", "create", "bench", "--wait"], check=True, capture_output=True, env=env)
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as args:
        args.write("\n".join(str(n) for n in range(count)))
    start = time.perf_counter()
    result = subprocess.run(base + ["jobs", "create", "bench", "--start-command", "sleep 5; echo", "--each-arg-from",
                                    args.name, "--wait", "-o", "json"], check=False, capture_output=True, text=True,
                            env=env)
    seconds = time.perf_counter() - start
    stop_control_plane(Path(data))
    try:
        jobs = json.loads(result.stdout)
    except ValueError:
        raise SystemExit(f"{backend}: {result.stderr[-2000:]}") from None
    return seconds, sum(job["status"] == "succeeded" for job in jobs)


def main() -> int:
    engine = docker.from_env()
    swarm = engine.info()["Swarm"]
    made = swarm.get("LocalNodeState") == "inactive"
    had_gateway = bool(engine.networks.list(names=["docker_gwbridge"]))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # through the finally below
    if made:
        engine.swarm.init(advertise_addr="127.0.0.1")
    elif not swarm.get("ControlAvailable"):
        print("this engine is in a swarm but not a manager: run this on a manager")
        return 1
    try:
        cpus = engine.info()["NCPU"]
        local = fan_out("local", COUNT)
        on_swarm = fan_out("swarm", COUNT)
    finally:
        if made:
            engine.swarm.leave(force=True)
            if not had_gateway:
                for network in engine.networks.list(names=["docker_gwbridge"]):
                    network.remove()
    waves = -(-COUNT // max(1, int(cpus / 0.5)))
    print(f"fan-out ({COUNT} x sleep 5, Starter), one CLI call each, until every job ended:")
    print(f"  local engine (containers):            {local[0]:7.1f} s, {local[1]} of {COUNT} succeeded")
    print(f"  swarm, one node of {cpus} CPUs (services): {on_swarm[0]:7.1f} s, {on_swarm[1]} of {COUNT} succeeded "
          f"({on_swarm[0] / local[0]:.2f}x local)")
    print(f"  the swarm's floor on this node: {waves} waves of {int(cpus / 0.5)} jobs (0.5 CPU reserved each) "
          f"x 5 s = {waves * 5} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
