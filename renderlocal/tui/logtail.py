"""Reading a log file as it grows, in bounded bites.

A reader that falls far behind (a job printing a million lines) jumps to the
tail instead of parsing everything, and hands over only the newest ``keep``
lines: the app only ever shows a bounded window.
"""

from __future__ import annotations

from collections import deque
from itertools import islice

from renderlocal.core.logstore import LogLine, LogStore


class LogTail:
    def __init__(self, logs: LogStore, resource_id: str, keep: int = 5000, window_bytes: int = 2 << 20,
                 most_lines: int = 200_000):
        self.logs = logs
        self.resource_id = resource_id
        self.keep = keep
        self.window_bytes = window_bytes
        self.most_lines = most_lines  # per read, should the file grow while it is read
        self.offset = 0
        self.skipped_bytes = 0  # never read: they were too far behind the tail
        self.dropped_lines = 0  # read, but older than the newest ``keep``

    @property
    def partial(self) -> bool:
        """Whether older lines exist that this reader never handed over."""
        return bool(self.skipped_bytes or self.dropped_lines)

    def read(self) -> list[LogLine]:
        """The newest (at most ``keep``) complete lines written since the last read."""
        path = self.logs.path(self.resource_id)
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            return []
        if size - self.offset > self.window_bytes:
            start = self._line_start_after(path, size - self.window_bytes)
            if start is not None and start > self.offset:
                self.skipped_bytes += start - self.offset
                self.offset = start
        lines: deque[LogLine] = deque(maxlen=self.keep)
        count = 0
        for line in islice(self.logs.read(self.resource_id, self.offset), self.most_lines):
            lines.append(line)
            count += 1
        self.dropped_lines += count - len(lines)
        if lines:
            self.offset = lines[-1].end
        return list(lines)

    @staticmethod
    def _line_start_after(path, position: int) -> int | None:
        """The offset of the first line that starts at or after ``position``."""
        with open(path, "rb") as handle:
            handle.seek(max(0, position - 1))
            scanned = max(0, position - 1)
            while True:
                chunk = handle.read(1 << 16)
                if not chunk:
                    return None
                newline = chunk.find(b"\n")
                if newline >= 0:
                    return scanned + newline + 1
                scanned += len(chunk)


class MergedLogTail:
    """Several log files read as one, in time order: a service's instances (new ones appear
    with each deploy, so ``parts()`` is asked again on every read)."""

    def __init__(self, logs: LogStore, parts, keep: int = 5000):
        self.logs = logs
        self.parts = parts
        self.keep = keep
        self.tails: dict[str, LogTail] = {}

    @property
    def partial(self) -> bool:
        return any(tail.partial for tail in self.tails.values())

    def read(self) -> list[LogLine]:
        fresh: list[tuple[str, str, LogLine]] = []
        for part in self.parts():
            tail = self.tails.setdefault(part, LogTail(self.logs, part, keep=self.keep))
            fresh.extend((line.timestamp, part, line) for line in tail.read())
        fresh.sort(key=lambda item: (item[0], item[1], item[2].offset))
        return [line for _ts, _part, line in fresh[-self.keep:]]
