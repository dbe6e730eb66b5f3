"""Process one batch: python batch.py ARG (fan-out: one job per argument)."""

import hashlib
import sys

if len(sys.argv) != 2:
    print("usage: python batch.py ARG", file=sys.stderr)
    sys.exit(2)
item = sys.argv[1]
digest = hashlib.sha256(item.encode()).hexdigest()[:12]
print(f"processed {item} -> {digest}", flush=True)
