"""Copying a job container's output into its log file, live or after the fact."""

from __future__ import annotations

import threading

from renderlocal.core.logstore import TS_LEN, LogStore, normalize_ts

# The longest line a log holds: a longer one is split into several lines of exactly this many
# bytes, counted from its start, and a last shorter one; no byte is dropped. It bounds what a
# stream holds in memory and what a reader must read to reach the next line (one 148 MB line made
# capture quadratic and `GET /v1/logs` slow). Docker's log drivers cut at 16 KiB; 1 MiB keeps the
# lines programs really print (a large JSON record, a long stack trace) whole.
MAX_LINE_BYTES = 1 << 20

class LogCapture:
    """Copies a container's stdout and stderr into the job's log file, line by line.

    A job launched here is attached before it starts: its output arrives live,
    a few frames per socket read, and each batch is stamped when received, its
    lines a nanosecond apart (no two lines of a log share a time).
    A job adopted after a crash (or read once by a short-lived CLI) is caught up
    from the engine's log API instead, skipping as many lines per stream as the
    file already holds. Docker's log API splits lines over 16 KiB into partial
    frames without a newline; they are joined back. Both paths cut lines with a
    ``LineCutter``, so a line is split at the same bytes either way and the count
    of lines in the file is a resume point for the catch-up.
    """

    source = "containers"  # the engine API's collection whose /{id}/logs is read (swarm: services)

    def __init__(self, api, logs: LogStore, job_id: str, container_id: str, attached=None,
                 baseline: dict | None = None):
        self.api = api
        self.baseline = baseline or {}  # lines per stream the file held before this container's first
        self.path = logs.path(job_id)
        self.writer = logs.writer(job_id)
        self.container_id = container_id
        self.attached = attached
        self.thread: threading.Thread | None = None

    def start_following(self) -> None:
        target = self._copy_attached if self.attached is not None else self._copy_logs
        args = () if self.attached is not None else (True,)
        self.thread = threading.Thread(target=target, args=args, daemon=True)
        self.thread.start()

    def join(self) -> None:
        """Wait for the stream's end; a followed log is then caught up once more, since the
        engine may close a follow stream as the container stops with lines still unread."""
        if self.thread is not None:
            self.thread.join()
            if self.attached is None:
                self._copy_logs(False)
        self.writer.close()

    def fetch_once(self) -> None:
        self._copy_logs(False)
        self.writer.close()

    def _copy_attached(self) -> None:
        cutters = {1: LineCutter(), 2: LineCutter()}
        for frames in _frames_of(self.attached):
            groups = []
            for kind, chunk in frames:
                kind = kind if kind in cutters else 1
                lines = cutters[kind].feed(chunk)
                if lines:
                    groups.append((_STREAM_NAMES[kind], lines))
            self.writer.write_now(groups)  # stamped as received, a nanosecond apart
        self.writer.write_now([(_STREAM_NAMES[kind], [rest]) for kind, cutter in cutters.items()
                               if (rest := cutter.rest()) is not None])

    def _log_request(self, follow: bool):
        """The whole log so far (and, with follow, to its end), timestamped."""
        return _stream(self.api, "GET", f"/{self.source}/{self.container_id}/logs",
                       {"stdout": 1, "stderr": 1, "timestamps": 1, "follow": int(follow), "tail": "all"})

    def _copy_logs(self, follow: bool) -> None:
        """Copy the engine's log, skipping the lines the file holds. A line still open when the
        stream ends is written only by a final (non-follow) read: after a follow the catch-up
        reads it whole, and it must not be counted as written in two parts."""
        skip = self.writer.line_counts()  # it flushes first: lines still buffered count too
        skip = {kind: skip.get(name, 0) - self.baseline.get(name, 0) for kind, name in ((1, "stdout"), (2, "stderr"))}
        cutters = {1: LineCutter(), 2: LineCutter()}
        last_ts = {1: b"1970-01-01T00:00:00.000000000Z", 2: b"1970-01-01T00:00:00.000000000Z"}
        for frames in _frames_of(self._log_request(follow)):
            out = []
            for kind, frame in frames:
                if kind == _ENGINE_ERROR:  # the engine's word on the stream ("Error grabbing logs"), not output
                    continue
                kind = kind if kind in cutters else 1
                ts_raw, _, message = frame.partition(b" ")
                ts = ts_raw if len(ts_raw) == TS_LEN else _normalized(ts_raw)
                if ts is None:  # not a timestamped frame: keep the bytes anyway
                    ts, message = last_ts[kind], frame
                last_ts[kind] = ts
                cutter = cutters[kind]
                if cutter.between_lines and len(message) <= MAX_LINE_BYTES and message.endswith(b"\n"):
                    lines = (message[:-1],)  # the common case: one whole short line per frame
                else:  # a partial frame of a long line (no newline), or its end
                    lines = cutter.feed(message)
                for line in lines:  # a line gets the time of the frame that completes it
                    if skip[kind] > 0:  # already in the file
                        skip[kind] -= 1
                    else:
                        out.append((ts, _STREAM_NAMES[kind], line))
            if out:
                self.writer.write_timed(out)
        if follow:
            return
        for kind, cutter in cutters.items():
            rest = cutter.rest()
            if rest is not None and skip[kind] <= 0:
                self.writer.write_timed([(last_ts[kind], _STREAM_NAMES[kind], rest)])


class LineCutter:
    """One stream's bytes, in chunks of any size, as its log lines (without newlines).

    A line ends at a newline; a line longer than MAX_LINE_BYTES is cut into pieces of
    exactly MAX_LINE_BYTES from its start, each given out as soon as it is full (so a
    stream holds less than one piece), then its shorter rest at the newline. A newline
    right after a full piece ends the line without adding an empty one.
    """

    def __init__(self):
        self.pending = bytearray()  # the open line's bytes not yet given out, fewer than the cap
        self.cut = False  # the open line already gave out a full piece

    @property
    def between_lines(self) -> bool:
        return not self.pending and not self.cut

    def feed(self, data: bytes) -> list[bytes]:
        if b"\n" not in data:
            self.pending += data
            return self._full_pieces()
        first, *whole, last = data.split(b"\n")
        self.pending += first
        lines = self._full_pieces()
        if self.pending or not self.cut:
            lines.append(bytes(self.pending))
        self.pending.clear()
        self.cut = False
        if len(data) <= MAX_LINE_BYTES or all(len(line) <= MAX_LINE_BYTES for line in whole):
            lines.extend(whole)
        else:
            lines.extend(piece for line in whole for piece in _pieces(line))
        self.pending += last
        return lines + self._full_pieces()

    def rest(self) -> bytes | None:
        """The open line's last bytes when the stream ends without a newline, if any."""
        if not self.pending:
            return None
        rest = bytes(self.pending)
        self.pending.clear()
        self.cut = False
        return rest

    def _full_pieces(self) -> list[bytes]:
        pieces = []
        while len(self.pending) >= MAX_LINE_BYTES:
            pieces.append(bytes(self.pending[:MAX_LINE_BYTES]))
            del self.pending[:MAX_LINE_BYTES]
            self.cut = True
        return pieces


def _pieces(line: bytes) -> list[bytes]:
    """A whole line as LineCutter gives it out: cut every MAX_LINE_BYTES, never an empty tail."""
    if not line:
        return [line]
    return [line[start : start + MAX_LINE_BYTES] for start in range(0, len(line), MAX_LINE_BYTES)]


_STREAM_NAMES = {1: b"stdout", 2: b"stderr"}
_ENGINE_ERROR = 3  # the log API's "systemerr" stream


def _normalized(ts_raw: bytes) -> bytes | None:
    try:
        return normalize_ts(ts_raw).encode()
    except ValueError:
        return None


def attach(api, container_id: str):
    """The container's output stream, opened before it starts (as docker run does)."""
    return _stream(api, "POST", f"/containers/{container_id}/attach", {"stdout": 1, "stderr": 1, "stream": 1, "logs": 0})


def _stream(api, method: str, path: str, params: dict):
    """A streamed response of the engine's API (the SDK's client is a requests session), read
    in bulk by ``_frames_of``; an error status becomes the SDK's own error (NotFound...)."""
    import requests
    from docker.errors import create_api_error_from_http_exception

    response = api.request(method, f"{api.base_url}/v{api.api_version}{path}", params=params, stream=True)
    try:
        response.raise_for_status()
    except requests.exceptions.HTTPError as exc:
        response.close()
        raise create_api_error_from_http_exception(exc) from None
    return response


def _frames_of(response):
    """Frames of a multiplexed stream as (stream, bytes), a batch per socket read.

    The SDK reads twice per frame (header, then body); a job printing a million
    lines needs bulk reads, so the stream is parsed here: an 8-byte header
    (stream 1 or 2, three zero bytes, size) before each frame.
    """
    raw = response.raw
    read = raw.read1 if hasattr(raw, "read1") else raw.read
    buffer = bytearray()
    try:
        while True:
            try:
                chunk = read(1 << 16)
            except (OSError, ValueError, AttributeError):
                break  # the engine closed the stream, or its reader did (urllib3 drops the file then)
            if not chunk:
                break
            buffer += chunk
            frames, used = [], 0
            while len(buffer) - used >= 8:
                size = int.from_bytes(buffer[used + 4 : used + 8], "big")
                if len(buffer) - used - 8 < size:
                    break
                frames.append((buffer[used], bytes(buffer[used + 8 : used + 8 + size])))
                used += 8 + size
            del buffer[:used]
            if frames:
                yield frames
    finally:
        response.close()
