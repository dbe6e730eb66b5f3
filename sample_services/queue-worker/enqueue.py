"""A job that puts orders on the worker's queue: python enqueue.py ORDER [ORDER...]."""

import os
import sys

from keyvalue import KeyValue

queue = KeyValue(os.environ["QUEUE_URL"])
for order in sys.argv[1:]:
    queue.command("LPUSH", "orders", order)
print(f"queued {len(sys.argv) - 1} order(s); {queue.command('LLEN', 'orders')} waiting, "
      f"{queue.command('GET', 'orders:processed') or 0} processed so far", flush=True)
