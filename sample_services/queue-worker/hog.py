"""Allocate and touch MEGABYTES of memory, reporting progress.

python hog.py 700 is killed for memory on Starter (512 MB) and succeeds with
--plan-id plan-srv-008 (Standard, 2 GB): the reason plan overrides exist.
"""

import sys

megabytes = int(sys.argv[1]) if len(sys.argv) > 1 else 700
chunks = []
for n in range(1, megabytes + 1):
    chunks.append(b"x" * (1024 * 1024))  # touched, so it really counts
    if n % 100 == 0:
        print(f"allocated {n} MB", flush=True)
print(f"done: held {megabytes} MB", flush=True)
