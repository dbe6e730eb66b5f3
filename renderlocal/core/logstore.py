"""Per-resource log files: one line per log line, followable by any reader.

A line on disk is ``<timestamp> <stream> <message>``: the timestamp is RFC 3339
UTC with exactly nine fractional digits (30 characters, so it sorts as text and
parses at fixed offsets) and the stream is ``stdout`` or ``stderr``.

A writer gives each line a timestamp strictly after the one before it, so a
file is sorted by time and a time is a place in it: a page of lines is found
by binary search on the file itself (``LogStore.seek``), with no index to keep.
"""

from __future__ import annotations

import calendar
import heapq
import os
import re
import weakref
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator

TS_LEN = 30
NS = 10**9
_DOCKER_TS = re.compile(rb"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?Z$")


def normalize_ts(raw: bytes | str) -> str:
    """Docker's RFC3339Nano (trailing zeros trimmed) to the fixed 30-char form."""
    if isinstance(raw, str):
        raw = raw.encode()
    match = _DOCKER_TS.match(raw)
    if not match:
        raise ValueError(f"not a docker timestamp: {raw[:40]!r}")
    return f"{match.group(1).decode()}.{(match.group(2) or b'').decode().ljust(9, '0')}Z"


def ts_now() -> str:
    now = datetime.now(timezone.utc)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond:06d}000Z"


def _stamp_prefix(seconds: int) -> bytes:
    """The first 20 characters of a timestamp (up to and with the dot) of that second."""
    return time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(seconds)).encode()


def _ns_of(ts: bytes) -> int:
    """A 30-character timestamp as nanoseconds since the epoch."""
    seconds = calendar.timegm(time.strptime(ts[:19].decode(), "%Y-%m-%dT%H:%M:%S"))
    return seconds * NS + int(ts[20:29])


def ts_to_datetime(ts: str) -> datetime:
    return datetime.strptime(ts[:26], "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=timezone.utc)


@dataclass(frozen=True)
class LogLine:
    offset: int  # byte offset in the file: a stable id
    end: int  # offset of the next line: where a reader resumes
    timestamp: str
    stream: str
    message: str

    @property
    def dated(self) -> bool:
        """See ``_dated``."""
        return self.timestamp[TS_LEN - 1 :] == "Z" and self.timestamp[:1].isdigit()

    @classmethod
    def parse(cls, offset: int, end: int, raw: str) -> "LogLine":
        return cls(offset, end, raw[:TS_LEN], raw[TS_LEN + 1 : TS_LEN + 7], raw[TS_LEN + 8 :])


READ_BLOCK = 1 << 16  # what a backward read takes at a time


def read_backward(path: Path, end: int | None = None) -> Iterator[LogLine]:
    """Every complete line of the file that ends at or before byte ``end`` (default: the
    file's end), newest first, read a block at a time from the back."""
    try:
        handle = open(path, "rb")
    except FileNotFoundError:
        return
    with handle:
        pos = os.fstat(handle.fileno()).st_size if end is None else end
        while pos > 0:  # the bytes after the last newline are a line still being written
            step = min(READ_BLOCK, pos)
            handle.seek(pos - step)
            newline = handle.read(step).rfind(b"\n")
            if newline >= 0:
                pos = pos - step + newline + 1
                break
            pos -= step
        buffer, upto = b"", 0  # bytes from ``pos`` on; the first ``upto`` not handed out yet
        while True:
            newline = buffer.rfind(b"\n", 0, upto - 1) if upto else -1  # the end of the line before
            while newline >= 0:
                yield LogLine.parse(pos + newline + 1, pos + upto, buffer[newline + 1 : upto - 1].decode("utf-8", "replace"))
                upto = newline + 1
                newline = buffer.rfind(b"\n", 0, upto - 1)
            if pos == 0:
                if upto:
                    yield LogLine.parse(0, upto, buffer[: upto - 1].decode("utf-8", "replace"))
                return
            step = min(READ_BLOCK, pos)
            pos -= step
            handle.seek(pos)
            block = handle.read(step)
            if len(block) < step:  # the file shrank under us (it never should): stop rather than misparse
                return
            buffer = block + buffer[:upto]
            upto += step


def _dated(raw: bytes) -> bool:
    """Whether a line starts with a timestamp, unlike the remnant of a crash (a torn line, a run
    of zeros): such a line is no line to a reader, and no place in time to a seek."""
    return raw[TS_LEN - 1 : TS_LEN] == b"Z" and raw[:1].isdigit()


def _next_timestamp(handle) -> bytes | None:
    """The timestamp of the first dated complete line from the handle's position, if any."""
    for raw in handle:
        if not raw.endswith(b"\n"):
            return None
        if _dated(raw):
            return raw[:TS_LEN]
    return None


FLUSH_SECONDS = 0.05
SEEK_SCAN_BYTES = 1 << 16  # a seek's binary search stops at this span, then reads it through


class LogStore:
    """The log files of a data dir: ``logs/<resource id>.log``.

    Writers buffer; one flusher thread pushes every open writer to disk each
    FLUSH_SECONDS, so a burst of a million lines costs few syscalls while a
    lone line still reaches readers within 50 ms.
    """

    def __init__(self, root: Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._writers: "weakref.WeakSet[LogWriter]" = weakref.WeakSet()
        self._flusher: threading.Thread | None = None
        self._flusher_guard = threading.Lock()

    def _flush_forever(self) -> None:
        while True:
            time.sleep(FLUSH_SECONDS)
            for writer in list(self._writers):
                writer.flush()

    def path(self, resource_id: str) -> Path:
        return self.root / f"{resource_id}.log"

    @property
    def index_path(self) -> Path:
        return self.root / ".index"

    def new_resources(self, offset: int) -> tuple[list[str], int]:
        """Resources whose log was started since ``offset`` of the index, and the new offset."""
        try:
            with open(self.index_path, "rb") as handle:
                handle.seek(offset)
                data = handle.read()
        except FileNotFoundError:
            return [], offset
        complete = data[: data.rfind(b"\n") + 1]
        ids = list(dict.fromkeys(complete.decode().split()))
        return ids, offset + len(complete)

    def writer(self, resource_id: str) -> "LogWriter":
        path = self.path(resource_id)
        if not path.exists():
            # one short O_APPEND write: atomic, so processes can share the index
            with open(self.index_path, "ab") as index:
                index.write(resource_id.encode() + b"\n")
        writer = LogWriter(path)
        with self._flusher_guard:
            self._writers.add(writer)
            if self._flusher is None:
                self._flusher = threading.Thread(target=self._flush_forever, name="log-flusher", daemon=True)
                self._flusher.start()
        return writer

    def read(self, resource_id: str, start: int = 0) -> Iterator[LogLine]:
        """Every complete line from byte ``start`` on."""
        path = self.path(resource_id)
        try:
            handle = open(path, "rb")
        except FileNotFoundError:
            return
        with handle:
            handle.seek(start)
            offset = start
            for raw in handle:
                if not raw.endswith(b"\n"):
                    break  # a line still being written
                yield LogLine.parse(offset, offset + len(raw), raw[:-1].decode("utf-8", "replace"))
                offset += len(raw)

    def read_backward(self, resource_id: str, end: int | None = None) -> Iterator[LogLine]:
        """Every complete line that ends at or before byte ``end`` (default: the file's end), newest first."""
        return read_backward(self.path(resource_id), end)

    def seek(self, resource_id: str, timestamp: str, past: bool = False) -> int:
        """Byte offset of the first line with a timestamp at or after ``timestamp`` (``past``: after
        it), or of the file's end. A binary search on the file rather than an index beside it: a
        writer keeps each file sorted by time, so the file is its own index, nothing more is
        written per line, and there is no second file for a crash to leave stale or torn. It reads
        about log2(size / SEEK_SCAN_BYTES) short probes, then at most SEEK_SCAN_BYTES and one line."""
        target = timestamp.encode()

        def beyond(ts: bytes | None) -> bool:  # None: no dated line left
            return ts is None or ts > target or (not past and ts == target)

        try:
            handle = open(self.path(resource_id), "rb")
        except FileNotFoundError:
            return 0
        with handle:
            low, high = 0, os.fstat(handle.fileno()).st_size  # the first dated line at or after ``high`` is beyond
            while high - low > SEEK_SCAN_BYTES:
                middle = (low + high) // 2
                handle.seek(middle - 1)
                handle.readline()  # to the start of the next line
                if beyond(_next_timestamp(handle)):
                    high = middle
                else:
                    low = middle + 1
            offset = low
            if low > 0:
                handle.seek(low - 1)
                offset = low - 1 + len(handle.readline())
            handle.seek(offset)
            for raw in handle:
                if not raw.endswith(b"\n") or (_dated(raw) and beyond(raw[:TS_LEN])):
                    break
                offset += len(raw)
            return offset

    def lines(self, resource_ids: list[str], start: str | None = None, end: str | None = None,
              backward: bool = False, keep: Callable[[str, LogLine], bool] | None = None,
              upto: dict[str, int] | None = None) -> Iterator[tuple[str, LogLine]]:
        """The resources' lines with start <= timestamp <= end (30-char form, either optional),
        merged in time order (newest first when ``backward``) as (resource, line) pairs, each kept
        by ``keep(resource, line)`` if given; only lines before byte ``upto[resource]`` of a file,
        if given. Lazy: a reader that stops after a page has read about a page of each file."""
        def of(resource_id: str):
            bound = (upto or {}).get(resource_id)
            if backward:
                stop = self.seek(resource_id, end, past=True) if end is not None else None
                if bound is not None:
                    stop = bound if stop is None else min(stop, bound)
                for line in self.read_backward(resource_id, stop):
                    if not line.dated:
                        continue
                    if start is not None and line.timestamp < start:
                        return
                    if keep is None or keep(resource_id, line):
                        yield (line.timestamp, resource_id, line.offset), resource_id, line
            else:
                for line in self.read(resource_id, self.seek(resource_id, start) if start is not None else 0):
                    if bound is not None and line.end > bound:
                        return
                    if not line.dated:
                        continue
                    if end is not None and line.timestamp > end:
                        return
                    if keep is None or keep(resource_id, line):
                        yield (line.timestamp, resource_id, line.offset), resource_id, line

        for _key, resource_id, line in heapq.merge(*[of(r) for r in resource_ids], reverse=backward):
            yield resource_id, line

    def end_of(self, resource_id: str) -> int:
        """Where the file's complete lines end: a follower's starting point."""
        last = next(self.read_backward(resource_id), None)
        return 0 if last is None else last.end

    def follow(self, resource_id: str, is_done, start: int = 0, poll: float = 0.1) -> Iterator[LogLine]:
        """Lines as they are written, until ``is_done()`` and the file is drained."""
        offset = start
        while True:
            done = is_done()  # read before draining, so no last line is missed
            progressed = False
            for line in self.read(resource_id, offset):
                offset = line.end
                progressed = True
                yield line
            if done and not progressed:
                return
            if not progressed:
                time.sleep(poll)


# what follows a timestamp's microseconds: its nanoseconds, the Z and the stream name
_TAILS = {stream: [b"%03dZ %s " % (nano, stream) for nano in range(1000)] for stream in (b"stdout", b"stderr")}


class LogWriter:
    """Appends lines to one log file; safe to share between a job's stream threads.

    Every line gets a timestamp strictly after the file's line before it (a line stamped
    no later is moved one nanosecond past it), so the file is sorted by time, a time-based
    page can end between any two lines, and ``LogStore.seek`` can binary-search it.
    """

    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()
        self._handle = open(path, "ab", buffering=1 << 16)
        self._last = b""  # the timestamp of the file's last line
        self._last_ns: int | None = 0
        last = next((line for line in read_backward(path) if line.dated), None)
        if last is not None:
            self._last, self._last_ns = last.timestamp.encode(), None

    def _after_last(self) -> int:
        """The first nanosecond a new line may have."""
        if self._last_ns is None:
            try:
                self._last_ns = _ns_of(self._last)
            except ValueError:  # a file whose last line is not a timestamped one: no bound
                self._last, self._last_ns = b"", 0
        return self._last_ns + 1 if self._last else 0

    def _stamped(self, ts: bytes) -> bytes:
        """``ts``, or one nanosecond after the last line's if it is not later."""
        if ts > self._last:
            self._last, self._last_ns = ts, None
            return ts
        ns = self._after_last()
        self._last, self._last_ns = _stamp_prefix(ns // NS) + b"%09dZ" % (ns % NS), ns
        return self._last

    def write(self, timestamp: str, stream: str, message: str | bytes) -> None:
        """Buffer one line; the store's flusher (or close) writes it out."""
        if isinstance(message, str):
            message = message.encode("utf-8", "replace")
        if b"\n" in message:
            message = message.replace(b"\n", b"\\n")
        with self._lock:
            self._handle.write(b"%s %s %s\n" % (self._stamped(timestamp.encode()), stream.encode(), message))

    def write_now(self, groups: list[tuple[bytes, list[bytes]]]) -> None:
        """Buffer lines received together, as (stream, lines) groups in order: stamped now, one
        nanosecond apart (Docker's own stamps are per line too), so no two lines share a time."""
        with self._lock:
            ns = max(time.time_ns(), self._after_last())
            out = []
            for stream, lines in groups:
                tails = _TAILS[stream]
                done = 0
                while done < len(lines):  # a microsecond's worth at a time: its first 26 characters are one
                    micro, nano = divmod(ns, 1000)
                    chunk = lines[done : done + 1000 - nano]
                    head = _stamp_prefix(micro // 1_000_000) + b"%06d" % (micro % 1_000_000)
                    out.extend([b"%s%s%s\n" % (head, tail, line) for tail, line in zip(tails[nano:], chunk)])
                    done += len(chunk)
                    ns += len(chunk)
            if out:
                self._last, self._last_ns = out[-1][:TS_LEN], ns - 1
                self._handle.write(b"".join(out))

    def write_timed(self, lines: list[tuple[bytes, bytes, bytes]]) -> None:
        """Buffer (timestamp, stream, line) triples stamped elsewhere (by the engine), each moved
        after the line before it if it is not later."""
        with self._lock:
            self._handle.write(b"".join(b"%s %s %s\n" % (self._stamped(ts), stream, line) for ts, stream, line in lines))

    def write_raw(self, data: bytes) -> None:
        """Buffer complete, already formatted lines (each ending in a newline), in time order
        and after the file's last line: the caller vouches for both."""
        with self._lock:
            self._handle.write(data)
            last = data[data.rfind(b"\n", 0, len(data) - 1) + 1 :]
            if _dated(last):
                self._last, self._last_ns = last[:TS_LEN], None

    def flush(self) -> None:
        with self._lock:
            if not self._handle.closed:
                self._handle.flush()

    def line_counts(self) -> dict[str, int]:
        """How many complete lines of each stream the file holds (a resume point)."""
        self.flush()
        counts = {"stdout": 0, "stderr": 0}
        with open(self.path, "rb") as handle:
            for raw in handle:
                if raw.endswith(b"\n") and len(raw) >= TS_LEN + 7:
                    stream = raw[TS_LEN + 1 : TS_LEN + 7].decode()
                    counts[stream] = counts.get(stream, 0) + 1
        return counts

    def close(self) -> None:
        with self._lock:
            if not self._handle.closed:
                self._handle.flush()
                os.fsync(self._handle.fileno())
                self._handle.close()
