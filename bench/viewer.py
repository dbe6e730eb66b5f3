"""Viewer and TUI start-up, headless.

- start-up: from process start to the first screen of the app (target <= 1 s),
  against `python -c pass` in the same run;
- viewer: open the job detail of a 1,000,000-line job, then follow new lines
  (targets: first screen <= 1 s, resident memory <= 150 MB).

Memory is the child's own peak (VmHWM), not ru_maxrss: Linux hands a process
the high-water mark of the address space it exec'd from, so a child started
after this script built the 50 MB log would report this script's peak.
"""

import asyncio
import subprocess
import sys
import tempfile
import time

from _common import ROOT, median_of, timed

CHILD = r'''
import asyncio, sys, time
t0 = time.perf_counter()
from renderlocal.executor.control import ControlPlane
from renderlocal.core.models import Job, stamp
from renderlocal.tui.app import RenderLocalApp
from renderlocal.tui.screens.job_detail import JobDetailScreen

def peak_mb():  # this process's own peak resident memory (see the docstring)
    with open("/proc/self/status") as status:
        return next(int(row.split()[1]) for row in status if row.startswith("VmHWM:")) / 1024

data, blueprint, mode = sys.argv[1], sys.argv[2], sys.argv[3]
plane = ControlPlane(data, blueprint)
plane.refresh()

async def main():
    app = RenderLocalApp(plane, live=False)
    async with app.run_test(size=(160, 45)) as pilot:
        while app.screen.__class__.__name__ != "ServicesScreen" or not getattr(app.screen, "loaded_count", 0):
            await pilot.pause(0.01)
        first = time.perf_counter() - t0
        if mode == "startup":
            print(f"{first:.3f} {peak_mb():.1f}")
            return
        t1 = time.perf_counter()
        app.push_screen(JobDetailScreen(sys.argv[4]))
        while not (isinstance(app.screen, JobDetailScreen) and app.screen.query("#job-log")
                   and app.screen.view.line_count > 0):
            await pilot.pause(0.01)
        opened = time.perf_counter() - t1
        with open(plane.logs.path(sys.argv[4]), "ab") as log:  # then follow: 10,000 more lines
            log.write(b"".join(b"2026-01-01T00:00:00.000000000Z stdout more %d\n" % n for n in range(10000)))
        while app.screen.view.lines[-1].message != "more 9999":
            await pilot.pause(0.02)
        print(f"{opened:.3f} {peak_mb():.1f}")

asyncio.run(main())
'''


def main() -> int:
    data = tempfile.mkdtemp(prefix="rl-bench-viewer-")
    blueprint = str(ROOT / "sample_services" / "render.yaml")
    baseline = median_of(5, lambda: timed([sys.executable, "-c", "pass"]))
    runs = sorted(tuple(map(float, subprocess.run([sys.executable, "-c", CHILD, data, blueprint, "startup"], check=True,
                                                  capture_output=True, text=True).stdout.split())) for _ in range(5))
    startup, idle_rss = runs[2]
    print(f"start-up (TUI to first screen): {startup:.3f}s, python -c pass {baseline:.3f}s, target <= 1 s "
          f"{'OK' if startup <= 1 else 'MISSED'}; resident memory of the idle app {idle_rss:.0f} MB")

    from renderlocal.executor.control import ControlPlane
    from renderlocal.core.models import Job, stamp

    plane = ControlPlane(data, blueprint)
    plane.refresh()
    service = plane.list_services()[0]
    # still running: the screen stops reading a finished job's complete log, so the lines appended
    # to follow would never show if they came after its last read
    job = Job(id="job-" + "b" * 20, serviceId=service.id, startCommand="seq 1 1000000", planId=service.planId,
              createdAt=stamp(), buildId="bld-" + "b" * 20, image="x", status="running", startedAt=stamp())
    plane.state.job_store.insert(job.to_doc())
    with open(plane.logs.path(job.id), "wb") as log:
        log.write(b"".join(b"2026-01-01T00:00:00.000000000Z stdout line %d\n" % n for n in range(1_000_000)))
    out = subprocess.run([sys.executable, "-c", CHILD, data, blueprint, "viewer", job.id], check=True,
                         capture_output=True, text=True).stdout.split()
    opened, rss = float(out[0]), float(out[1])
    ok_open, ok_rss = opened <= 1, rss <= 150
    print(f"viewer (1,000,000-line job): first screen {opened:.3f}s (target <= 1 s) {'OK' if ok_open else 'MISSED'}; "
          f"resident memory {rss:.0f} MB after following 10,000 more (target <= 150 MB) {'OK' if ok_rss else 'MISSED'}")
    return 0 if startup <= 1 and ok_open and ok_rss else 1


if __name__ == "__main__":
    sys.exit(main())
