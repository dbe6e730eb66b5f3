"""Per-resource log files: one line per log line, followable by any reader.

A line on disk is ``<timestamp> <stream> <message>``: the timestamp is RFC 3339
UTC with exactly nine fractional digits (30 characters, so it sorts as text and
parses at fixed offsets) and the stream is ``stdout`` or ``stderr``.
"""

from __future__ import annotations

import os
import re
import weakref
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

TS_LEN = 30
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


def ts_to_datetime(ts: str) -> datetime:
    return datetime.strptime(ts[:26], "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=timezone.utc)


@dataclass(frozen=True)
class LogLine:
    offset: int  # byte offset in the file: a stable id
    end: int  # offset of the next line: where a reader resumes
    timestamp: str
    stream: str
    message: str

    @classmethod
    def parse(cls, offset: int, end: int, raw: str) -> "LogLine":
        return cls(offset, end, raw[:TS_LEN], raw[TS_LEN + 1 : TS_LEN + 7], raw[TS_LEN + 8 :])


FLUSH_SECONDS = 0.05


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

    def query(self, resource_ids: list[str], start: str, end: str, backward: bool = True,
              limit: int = 20, match=None) -> tuple[list[tuple[str, LogLine]], bool]:
        """Lines of the resources with start <= timestamp <= end (30-char form), newest
        first when ``backward``; returns (resource, line) pairs and whether more match."""
        found = []
        for resource_id in resource_ids:
            for line in self.read(resource_id):
                if start <= line.timestamp <= end and (match is None or match(line.message)):
                    found.append((resource_id, line))
        found.sort(key=lambda pair: (pair[1].timestamp, pair[0], pair[1].offset), reverse=backward)
        return found[:limit], limit is not None and len(found) > limit

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


class LogWriter:
    """Appends lines to one log file; safe to share between a job's stream threads."""

    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()
        self._handle = open(path, "ab", buffering=1 << 16)

    def write(self, timestamp: str, stream: str, message: str | bytes) -> None:
        """Buffer one line; the store's flusher (or close) writes it out."""
        if isinstance(message, str):
            message = message.encode("utf-8", "replace")
        if b"\n" in message:
            message = message.replace(b"\n", b"\\n")
        data = b"%s %s %s\n" % (timestamp.encode(), stream.encode(), message)
        with self._lock:
            self._handle.write(data)

    def write_raw(self, data: bytes) -> None:
        """Buffer complete, already formatted lines (each ending in a newline)."""
        with self._lock:
            self._handle.write(data)

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
