"""The worker's own start command: polls a (pretend) queue forever."""

import time

while True:
    print("queue empty; sleeping", flush=True)
    time.sleep(5)
