"""Log throughput: a job printing 1,000,000 lines until its log is complete in
render-local, against `docker run` of the same piped to /dev/null (target <= 1.5x)."""

import sys

from _common import job_against_docker_run, report

SCRIPT = "seq 1 1000000"


def main() -> int:
    data, job_id, ours, baseline = job_against_docker_run(SCRIPT)
    with open(f"{data}/logs/{job_id}.log", "rb") as handle:
        count = sum(1 for _ in handle)
    print(f"lines captured: {count}")
    ok = report("logs (1,000,000 lines)", ours, baseline, 1.5)
    return 0 if ok and count == 1_000_000 else 1


if __name__ == "__main__":
    sys.exit(main())
