"""``render-local logs``: Render CLI's ``render logs`` flags, answered from the data dir's log files.

The files are read directly, as the control plane's GET /v1/logs reads them,
with the same filters (time window, text, level, type, direction, limit) and
labels (``core/logentries.py``), so no line crosses the loopback API twice and
following stays a cheap read of growing files. Several resources are merged
in time order, as Render's CLI shows them.
"""

from __future__ import annotations

import csv
import itertools
import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from renderlocal.core.clock import parse_rfc3339, utcnow
from renderlocal.core.errors import InvalidInput
from renderlocal.core.logentries import LEVELS, TYPES, level_of, type_of
from renderlocal.core.logstore import LogLine, LogStore

# Render CLI's relative times (pkg/command/time.go): that long before now.
RELATIVE_TIME = re.compile(r"(\d+)([smhd])")
UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
_FRACTION = re.compile(r"T\d\d:\d\d:\d\d[.,](\d+)")
FOLLOW_POLL_SECONDS = 0.2


def split_values(values) -> list[str]:
    """Each value split at commas, as Render CLI's comma-separated flags (pflag's StringSlice: a
    quoted part keeps its commas), repeatable too; blanks dropped."""
    parts = []
    for value in values:
        parts.extend(part.strip() for part in next(csv.reader([value]), []))
    return [part for part in parts if part]


def text_terms(values) -> list[str]:
    """``--text`` terms: comma-separated, except that a whole ``/regex/`` stays one term (its commas are its own)."""
    terms = []
    for value in values:
        terms.extend([value] if len(value) > 1 and value.startswith("/") and value.endswith("/") else split_values([value]))
    return terms


def time_bound(raw: str, flag: str, now: datetime) -> str:
    """A ``--start``/``--end`` value (relative like 5m, 2h, 1d, or RFC 3339) in the log files'
    30-character form; RFC 3339's nanoseconds are kept."""
    from renderlocal.api.params import log_ts  # stdlib and core only: no web framework

    text = raw.strip()
    relative = RELATIVE_TIME.fullmatch(text)
    if relative:
        return log_ts(now - timedelta(**{UNITS[relative[2]]: int(relative[1])}))
    try:
        moment = parse_rfc3339(text)
    except ValueError:
        raise InvalidInput(f"{flag} {raw!r}: give a time relative to now (30s, 5m, 2h, 1d) "
                           "or RFC 3339 (2026-03-01T00:00:00Z)") from None
    fraction = _FRACTION.search(text)
    return log_ts(moment)[:20] + (fraction.group(1)[:9] if fraction else "").ljust(9, "0") + "Z"


def choices(values, allowed: tuple[str, ...], flag: str) -> set[str]:
    """Comma-separated values of a Render enum flag (``--level``, ``--type``), any case."""
    chosen = {value.lower() for value in split_values(values)}
    unknown = sorted(chosen - set(allowed))
    if unknown:
        raise InvalidInput(f"{flag}: unknown {', '.join(unknown)}; one of {', '.join(allowed)}")
    return chosen


@dataclass
class LogFilter:
    """What lines a query keeps (every bound optional: no window means the whole log)."""

    start: str | None = None
    end: str | None = None
    match: object = None  # message -> truthy, or None
    levels: set[str] = field(default_factory=set)
    types: set[str] = field(default_factory=set)

    @classmethod
    def from_flags(cls, start, end, text, level, kind) -> "LogFilter":
        from renderlocal.api.params import text_matcher  # the API's /regex/ and * wildcards

        now = utcnow()
        lower = time_bound(start, "--start", now) if start else None
        upper = time_bound(end, "--end", now) if end else None
        if lower and upper and lower > upper:
            raise InvalidInput("--start must not be after --end")
        return cls(lower, upper, text_matcher(text_terms(text)), choices(level, LEVELS, "--level"),
                   choices(kind, TYPES, "--type"))

    def keeps(self, part: str, line: LogLine) -> bool:
        return ((self.start is None or line.timestamp >= self.start)
                and (self.end is None or line.timestamp <= self.end)
                and (not self.levels or level_of(line) in self.levels)
                and (not self.types or type_of(part) in self.types)
                and (self.match is None or bool(self.match(line.message))))


def history(logs: LogStore, parts: list[str], keep: LogFilter, backward: bool, limit: int | None,
            offsets: dict[str, int]) -> list[tuple[str, LogLine]]:
    """The kept lines of the files, in time order: all of them, or the ``limit`` nearest the end
    (backward) or the start (forward), read from there (``LogStore.lines`` seeks by time).
    ``offsets`` gets where each file's complete lines end now: following starts there."""
    offsets.update({part: logs.end_of(part) for part in parts})
    lines = logs.lines(parts, keep.start, keep.end, backward and limit is not None, keep.keeps, offsets)
    if limit is None:
        return list(lines)
    page = list(itertools.islice(lines, limit))
    return page[::-1] if backward else page


def follow(logs: LogStore, parts_now, keep: LogFilter, offsets: dict[str, int], show, is_done) -> None:
    """``show(part, line)`` for every kept line written after ``offsets``, in time order per pass,
    until ``is_done()`` (asked before reading, so no last line is missed) and the files are drained.
    ``parts_now()`` lists the files again each pass: a service's new instance is a new file."""
    while True:
        done = is_done()
        fresh, progressed = [], False
        for part in parts_now():
            for line in logs.read(part, offsets.get(part, 0)):
                offsets[part] = line.end
                progressed = True
                if keep.keeps(part, line):
                    fresh.append(((line.timestamp, part, line.offset), part, line))
        for _key, part, line in sorted(fresh, key=lambda item: item[0]):
            show(part, line)
        if done and not progressed:
            return
        if not progressed:
            time.sleep(FOLLOW_POLL_SECONDS)
