"""Long lines in a job's log: bounded time, lines cut at the cap, no byte lost, the same cut
live and in a catch-up from the engine (which skips as many lines as the file holds)."""

from __future__ import annotations

import time

import pytest

from renderlocal.core.logstore import LogStore
from renderlocal.executor.logcapture import MAX_LINE_BYTES, LogCapture

pytestmark = pytest.mark.docker

CAP = MAX_LINE_BYTES
BLUEPRINT = """\
services:
  - type: worker
    name: box
    runtime: docker
    rootDir: box
    plan: pro
"""
FILES = {"box/Dockerfile": "FROM busybox:1.36\n"}


def repeat(char: str, count: int) -> str:
    """Shell that prints ``count`` times ``char``, no newline."""
    return f"head -c {count} /dev/zero | tr '\\0' {char}"


# Per stream: short lines around long ones, a line of exactly the cap, an empty line, and a
# last line with no newline; stdout and stderr are written at once, so their bytes interleave.
MIXED = "\n".join([
    (f"(echo a1; {repeat('x', 3 * CAP + CAP // 2)}; echo; echo a2; {repeat('y', CAP)}; echo; echo; echo a3; "
     f"{repeat('z', CAP + 5)}) &"),
    f"(echo b1 >&2; {repeat('p', 2 * CAP + 1)} >&2; echo >&2; {repeat('q', CAP - 1)} >&2; echo >&2; echo b2 >&2) &",
    "wait",
])
EXPECTED = {
    "stdout": ["a1", "x" * CAP, "x" * CAP, "x" * CAP, "x" * (CAP // 2), "a2", "y" * CAP, "", "a3",
               "z" * CAP, "zzzzz"],
    "stderr": ["b1", "p" * CAP, "p" * CAP, "p", "q" * (CAP - 1), "b2"],
}


@pytest.fixture
def plane(started, data_dir, write_blueprint):
    plane = started(data_dir, write_blueprint(BLUEPRINT, FILES))
    assert plane.build("box", wait=True).status == "succeeded"
    return plane


def by_stream(lines) -> dict[str, list[str]]:
    streams = {"stdout": [], "stderr": []}
    for line in lines:
        streams[line.stream].append(line.message)
    return streams


def test_a_40_mb_line_without_newline_is_captured_in_bounded_time_as_capped_lines(plane):
    printed = 40_000_000
    began = time.monotonic()
    job = plane.jobs.wait(plane.create_job("box", repeat("x", printed)).id, timeout=60)
    took = time.monotonic() - began
    if not job.settled:
        plane.cancel_job(job.id)
        plane.jobs.wait(job.id, timeout=60)
    assert job.settled, f"not captured within 60 s (status {job.status})"
    assert job.status == "succeeded"
    lengths = [len(line.message) for line in plane.logs.read(job.id)]
    assert max(lengths) <= CAP and sum(lengths) == printed
    assert lengths == [CAP] * (printed // CAP) + [printed % CAP]  # cut from the line's start
    print(f"40 MB without a newline: {took:.1f} s until its log was complete")


def test_mixed_long_and_short_lines_keep_order_and_content_live_and_in_catch_up(plane, engine, tmp_path):
    job = plane.jobs.wait(plane.create_job("box", MIXED).id, timeout=60)
    assert job.status == "succeeded"
    assert by_stream(plane.logs.read(job.id)) == EXPECTED

    # the same output read back from the engine's log API, as after a crash: first from
    # nothing, then with the file already holding a prefix of each stream (cut lines included)
    container = engine.containers.create("busybox:1.36", ["sh", "-c", MIXED])
    try:
        container.start()
        container.wait(timeout=60)
        logs = LogStore(tmp_path / "logs")
        LogCapture(engine.api, logs, "fresh", container.id).fetch_once()
        assert by_stream(logs.read("fresh")) == EXPECTED

        lines = list(plane.logs.read(job.id))
        held = [line for line in lines if line.stream == "stdout"][:3] + [
            line for line in lines if line.stream == "stderr"][:2]
        writer = logs.writer("resumed")
        for line in held:
            writer.write(line.timestamp, line.stream, line.message)
        writer.close()
        LogCapture(engine.api, logs, "resumed", container.id).fetch_once()
        assert by_stream(logs.read("resumed")) == EXPECTED
    finally:
        container.remove(force=True)
