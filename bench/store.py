"""Store scaling: create, get and list (first page) with 100, 10,000 and 100,000
jobs in history, against the same operations at 100 jobs (p50 at 100,000 <= 2x
p50 at 100; create p50 <= 20 ms at 10,000).

History is seeded in bulk (one write), then each operation is timed through the
control plane's job store as the faces use it.
"""

import statistics
import sys
import tempfile
import time
from pathlib import Path

from renderlocal.core.ids import new_id
from renderlocal.core.jobstore import JobStore
from renderlocal.core.models import Job, stamp
from renderlocal.core.state import State

SIZES = tuple(int(s) for s in sys.argv[1:]) or (100, 10_000, 100_000)
SAMPLES = 25


def job_doc(n: int) -> dict:
    job = Job(id=new_id("job"), serviceId="srv-benchbenchbenchbench", startCommand=f"python batch.py {n}",
              planId="plan-srv-006", createdAt=stamp(), buildId="bld-benchbenchbenchbench", image="x",
              status="succeeded", startedAt=stamp(), finishedAt=stamp(), env={"A": "1", "DATABASE_URL": "sqlite:///x"},
              logsComplete=True, exitCode=0)
    job.events = [{"at": job.createdAt, "status": s, "message": s} for s in ("pending", "running", "succeeded")]
    return job.to_doc()


def p50(action) -> float:
    times = []
    for _ in range(SAMPLES):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(size: int) -> dict[str, float]:
    state = State(Path(tempfile.mkdtemp(prefix="rl-store-")))
    state.job_store.bulk_insert([job_doc(n) for n in range(size)])
    some_id = state.list_jobs()[size // 2].id
    return {
        "create": p50(lambda: state.job_store.insert(job_doc(0) | {"status": "pending", "logsComplete": False})),
        "get": p50(lambda: state.get_job(some_id)),
        "list": p50(lambda: state.list_jobs(limit=20)),
        # a fresh reader, as a new process would be: no file cached
        "get-cold": p50(lambda: JobStore(state.job_store.root).get(some_id)),
        "list-cold": p50(lambda: JobStore(state.job_store.root).query(limit=20)),
    }


def main() -> int:
    results = {size: measure(size) for size in SIZES}
    ok = True
    for op in ("create", "get", "list", "get-cold", "list-cold"):
        base = results[100][op]
        cells = ", ".join(f"{size}: {results[size][op] * 1000:.2f} ms ({results[size][op] / base:.2f}x)" for size in SIZES)
        ratio = results[SIZES[-1]][op] / base
        ok &= ratio <= 2
        print(f"{op:9s} p50 {cells}  target largest <= 2x: {'OK' if ratio <= 2 else 'MISSED'}")
    create_10k = results.get(10_000, results[SIZES[-1]])["create"] * 1000
    ok &= create_10k <= 20
    print(f"create p50 at 10,000: {create_10k:.2f} ms (target <= 20 ms) {'OK' if create_10k <= 20 else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
