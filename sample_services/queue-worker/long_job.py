"""A long job for cancel and live-cost demos: progress every second."""

import signal
import sys
import time


def on_term(_signum, _frame):
    print("canceled: stopping cleanly", flush=True)
    sys.exit(143)


signal.signal(signal.SIGTERM, on_term)
seconds = int(sys.argv[1]) if len(sys.argv) > 1 else 60
for n in range(1, seconds + 1):
    print(f"progress {n}/{seconds}", flush=True)
    time.sleep(1)
print("finished", flush=True)
