"""Copying a job container's output into its log file, live or after the fact."""

from __future__ import annotations

import threading

from renderlocal.core.logstore import TS_LEN, LogStore, normalize_ts, ts_now

class LogCapture:
    """Copies a container's stdout and stderr into the job's log file, line by line.

    A job launched here is attached before it starts: its output arrives live,
    a few frames per socket read, and each batch is stamped when received.
    A job adopted after a crash (or read once by a short-lived CLI) is caught up
    from the engine's log API instead, skipping as many lines per stream as the
    file already holds. Docker's log API splits lines over 16 KiB into partial
    frames without a newline; they are joined back into one line.
    """

    def __init__(self, api, logs: LogStore, job_id: str, container_id: str, attached=None):
        self.api = api
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
        carry = {1: b"", 2: b""}
        for frames in _frames_of(self.attached):
            stamp_now = ts_now().encode()
            out = []
            for kind, chunk in frames:
                kind = kind if kind in carry else 1
                *lines, carry[kind] = (carry[kind] + chunk).split(b"\n")
                name = _STREAM_NAMES[kind]
                out.extend(b"%s %s %s\n" % (stamp_now, name, line) for line in lines)
            if out:
                self.writer.write_raw(b"".join(out))
        stamp_now = ts_now().encode()
        for kind, rest in carry.items():
            if rest:
                self.writer.write_raw(b"%s %s %s\n" % (stamp_now, _STREAM_NAMES[kind], rest))

    def _copy_logs(self, follow: bool) -> None:
        skip = self.writer.line_counts()  # it flushes first: lines still buffered count too
        skip = {1: skip.get("stdout", 0), 2: skip.get("stderr", 0)}
        partial = {1: [], 2: []}  # per stream: pieces of a long line
        partial_ts: dict[int, bytes | None] = {1: None, 2: None}
        frames_iter = _frames_of(_log_request(self.api, self.container_id, follow))
        for frames in frames_iter:
            out = []
            for kind, frame in frames:
                kind = kind if kind in partial else 1
                ts_raw, _, message = frame.partition(b" ")
                ts = ts_raw if len(ts_raw) == TS_LEN else _normalized(ts_raw)
                if ts is None:  # not a timestamped frame: keep the bytes anyway
                    ts, message = partial_ts[kind] or b"1970-01-01T00:00:00.000000000Z", frame
                if not message.endswith(b"\n"):  # a partial frame of a long line
                    partial_ts[kind] = partial_ts[kind] or ts
                    partial[kind].append(message)
                    continue
                if partial[kind]:
                    ts, message = partial_ts[kind], b"".join(partial[kind]) + message
                    partial[kind], partial_ts[kind] = [], None
                if skip[kind] > 0:  # already in the file
                    skip[kind] -= 1
                    continue
                out.append(b"%s %s %s" % (ts, _STREAM_NAMES[kind], message))
            if out:
                self.writer.write_raw(b"".join(out))
        for kind, pieces in partial.items():
            if pieces and skip[kind] <= 0:
                self.writer.write_raw(b"%s %s %s\n" % (partial_ts[kind], _STREAM_NAMES[kind], b"".join(pieces)))


_STREAM_NAMES = {1: b"stdout", 2: b"stderr"}


def _normalized(ts_raw: bytes) -> bytes | None:
    try:
        return normalize_ts(ts_raw).encode()
    except ValueError:
        return None


def attach(api, container_id: str):
    """The container's output stream, opened before it starts (as docker run does)."""
    return _stream(api, "POST", f"/containers/{container_id}/attach", {"stdout": 1, "stderr": 1, "stream": 1, "logs": 0})


def _log_request(api, container_id: str, follow: bool):
    """The container's whole log so far (and, with follow, to its end), timestamped."""
    return _stream(api, "GET", f"/containers/{container_id}/logs",
                   {"stdout": 1, "stderr": 1, "timestamps": 1, "follow": int(follow), "tail": "all"})


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
            except (OSError, ValueError):
                break  # the engine closed the stream
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
