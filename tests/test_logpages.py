"""A page of a log costs a page: each line has its own time, a time is found by binary search on
the file, and paging by time (as GET /v1/logs pages) gives every line once, in order."""

from __future__ import annotations

from renderlocal.api.app import _page
from renderlocal.core.logentries import log_entry
from renderlocal.core.logstore import LogStore

EARLY, LATE = "2000-01-01T00:00:00.000000000Z", "2999-01-01T00:00:00.000000000Z"


def stamp(n: int) -> bytes:
    """A timestamp n microseconds after 2025-03-14T15:20:00."""
    return b"2025-03-14T15:20:%02d.%06d000Z" % (n // 1_000_000, n % 1_000_000)


def walk(store: LogStore, parts: list[str], backward: bool, limit: int, start=EARLY, end=LATE) -> list[list[dict]]:
    """Every page, each resumed at the bound the last one handed back, as the API's route does."""
    pages = []
    for _ in range(10_000):
        lines = store.lines(parts, start, end, backward)
        page, next_time = _page((log_entry(part, part, line) for part, line in lines), limit)
        pages.append(page)
        if next_time is None:
            return pages
        if backward:
            end = next_time
        else:
            start = next_time
    raise AssertionError("paging never ended")


def messages(pages: list[list[dict]]) -> list[str]:
    return [entry["message"] for page in pages for entry in page]


def test_lines_received_together_get_their_own_increasing_times(tmp_path):
    store = LogStore(tmp_path)
    writer = store.writer("job-a")
    writer.write_now([(b"stdout", [b"%d" % n for n in range(2500)]), (b"stderr", [b"oops"])])  # over microseconds
    writer.write_now([(b"stdout", [b"again"])])
    writer.write(LATE, "stdout", "from the future")
    writer.write_now([(b"stdout", [b"after it"])])  # not before the line before, whatever the clock says
    writer.write_timed([(b"2001-01-01T00:00:00.000000000Z", b"stdout", b"engine's early stamp")])
    writer.close()
    again = store.writer("job-a")  # a new writer (a restarted control plane) goes on after the file's last line
    again.write_now([(b"stdout", [b"restarted"])])
    again.close()
    lines = list(store.read("job-a"))
    stamps = [line.timestamp for line in lines]
    assert len(lines) == 2506 and [line.message for line in lines[-4:]] == [
        "from the future", "after it", "engine's early stamp", "restarted"]
    assert all(a < b for a, b in zip(stamps, stamps[1:])), "not strictly increasing"
    assert all(len(ts) == 30 and ts.endswith("Z") for ts in stamps)
    assert stamps[-3] == "2999-01-01T00:00:00.000000001Z"


def thousand_lines(store: LogStore, part: str = "job-a") -> list[str]:
    writer = store.writer(part)
    for n in range(1000):  # one read per line
        writer.write_now([(b"stdout", [b"%d" % n])])
    writer.close()
    return [str(n) for n in range(1000)]


def test_limit_100_pages_hold_100_lines_and_walk_every_line_once_both_ways(tmp_path):
    store = LogStore(tmp_path)
    expected = thousand_lines(store)
    for backward in (False, True):
        pages = walk(store, ["job-a"], backward, 100)
        assert [len(page) for page in pages] == [100] * 10
        assert messages(pages) == (expected[::-1] if backward else expected)


def test_a_page_in_the_middle_by_start_and_end_time(tmp_path):
    store = LogStore(tmp_path)
    thousand_lines(store)
    stamps = [line.timestamp for line in store.read("job-a")]
    forward = walk(store, ["job-a"], False, 100, start=stamps[500], end=stamps[649])
    assert [len(page) for page in forward] == [100, 50] and messages(forward) == [str(n) for n in range(500, 650)]
    backward = store.lines(["job-a"], EARLY, stamps[700], backward=True)
    page, next_end = _page((log_entry(p, p, line) for p, line in backward), 100)
    assert [e["message"] for e in page] == [str(n) for n in range(700, 600, -1)] and next_end == stamps[600]
    assert store.seek("job-a", stamps[500]) == store.seek("job-a", stamps[499], past=True)


def test_several_logs_page_merged_in_time(tmp_path):
    store = LogStore(tmp_path)
    writers = {part: store.writer(part) for part in ("job-a", "job-b")}
    order = []
    for n in range(300):
        part = "job-a" if n % 3 else "job-b"
        writers[part].write_raw(b"%s stdout %d\n" % (stamp(n), n))  # fixed, distinct times across both
        order.append(str(n))
    for writer in writers.values():
        writer.close()
    for backward in (False, True):
        for limit in (7, 100):
            pages = walk(store, ["job-a", "job-b"], backward, limit)
            assert messages(pages) == (order[::-1] if backward else order), (backward, limit)
            assert all(len(page) == limit for page in pages[:-1])


def test_a_log_with_shared_times_and_crash_remnants_still_pages(tmp_path):
    """A log written before lines had their own times (bursts of 250 sharing one), with a torn
    line, a run of zeros and garbage between its lines, as a crash may leave: every line once."""
    store = LogStore(tmp_path)
    path = store.path("job-old")
    expected = []
    with open(path, "wb") as handle:
        for n in range(1000):
            handle.write(b"%s stdout %d\n" % (stamp(n // 250 * 1000 + (n % 250 == 249)), n))
            expected.append(str(n))
            if n == 300:
                handle.write(b"\0" * 70_000 + b"\n")  # more than one seek's scan
            if n == 600:
                handle.write(b"garbage\n2025-03-14T15:20:0")  # a line cut short, then a newline from the next writer
                handle.write(b"\n")
        handle.write(b"2025-03-14T15:21:00.000000000Z stdout still being writ")  # no newline yet
    for backward in (False, True):
        pages = walk(store, ["job-old"], backward, 100)
        assert messages(pages) == (expected[::-1] if backward else expected), backward
        assert all(len(page) <= 100 or len({e["timestamp"] for e in page}) == 1 for page in pages)
    last = [line.timestamp for line in store.read("job-old")][-1]
    assert store.seek("job-old", last, past=True) == store.end_of("job-old")


def test_seek_finds_any_time_of_a_log_many_scans_long(tmp_path):
    store = LogStore(tmp_path)
    writer = store.writer("job-a")
    for first in range(0, 30_000, 3000):
        writer.write_now([(b"stdout", [b"line %d" % n for n in range(first, first + 3000)])])
    writer.close()
    lines = list(store.read("job-a"))
    assert lines[-1].end > 15 * (1 << 16)  # the binary search runs, not only the final scan
    for n in list(range(0, 30_000, 997)) + [29_999]:
        assert store.seek("job-a", lines[n].timestamp) == lines[n].offset, n
        assert store.seek("job-a", lines[n].timestamp, past=True) == lines[n].end, n
        assert next(store.read_backward("job-a", lines[n].end)) == lines[n], n
    assert store.seek("job-a", EARLY) == 0 and store.seek("job-a", LATE) == lines[-1].end
    assert list(store.read_backward("job-a")) == lines[::-1]
