"""The worker's own start command: takes orders off its Key Value queue forever."""

import os
import time

from keyvalue import KeyValue

QUEUE = "orders"

queue = KeyValue(os.environ["QUEUE_URL"])
print(f"waiting for {QUEUE} on {os.environ['QUEUE_URL']}", flush=True)
while True:
    item = queue.command("BRPOP", QUEUE, 5)  # [queue, value], or None after 5 s
    if item is None:
        print("queue empty", flush=True)
        continue
    print(f"processed order {item[1]}", flush=True)
    queue.command("INCR", "orders:processed")
    time.sleep(0.1)
