"""A long line: a job printing 500 MB without a newline until its log is complete in
render-local (`jobs create --wait`), against `docker run` of the same piped to /dev/null
(target <= 2x). The log must hold lines of at most MAX_LINE_BYTES adding up to every byte.

Usage: python long_line.py [MEGABYTES]   (500 unless given)
"""

import sys
import time

from _common import job_against_docker_run, report

from renderlocal.core.logstore import TS_LEN, LogStore
from renderlocal.executor.logcapture import MAX_LINE_BYTES


def line_lengths(path: str) -> list[int]:
    """The message length of each line of a log file, read in binary (no 500 MB string)."""
    lengths = []
    with open(path, "rb") as handle:
        for raw in handle:
            lengths.append(len(raw) - (TS_LEN + 8) - 1)  # "<ts> stdout " before, "\n" after
    return lengths


def main() -> int:
    megabytes = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    printed = megabytes * 1_000_000
    script = f"head -c {printed} /dev/zero | tr '\\0' x"
    data, job_id, ours, baseline = job_against_docker_run(script)
    lengths = line_lengths(f"{data}/logs/{job_id}.log")
    print(f"lines captured: {len(lengths)}, longest {max(lengths)} bytes (cap {MAX_LINE_BYTES}), "
          f"total {sum(lengths)} of {printed} bytes")
    start = time.perf_counter()
    LogStore(f"{data}/logs").query([job_id], "0", "9", limit=1)
    print(f"for the record: the newest line of that log (what GET /v1/logs?limit=1 reads): "
          f"{time.perf_counter() - start:.2f} s")
    ok = report(f"long line ({megabytes} MB, no newline)", ours, baseline, 2.0)
    complete = sum(lengths) == printed and max(lengths) <= MAX_LINE_BYTES
    return 0 if ok and complete else 1


if __name__ == "__main__":
    sys.exit(main())
