"""Log streams: every job and build log line to one syslog endpoint.

Like Render's log streams: RFC 5424 messages over TCP (TLS when asked) with
octet-counting framing. The job's own log file is the durable queue: the
control plane's forwarder thread reads each file from a saved cursor and
sends, so forwarding never slows a job. While the endpoint is down the unsent
backlog is bounded: past the bound the oldest lines are skipped and counted
as dropped.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time

from renderlocal.core.atomic import write_atomic
from renderlocal.core.errors import NotFound
from renderlocal.core.logstreams import LogStreamConfig, LogStreams
from renderlocal.core.models import stamp
from renderlocal.core.statuses import FINAL_JOB_STATUSES, BuildStatus
from renderlocal.core.state import State

MAX_MESSAGE_BYTES = 8192  # per syslog message; a longer line is split and marked part="i/n"
FACILITY_USER = 1
SD_ID = "render-local@32473"  # 32473: the enterprise number RFC 5612 sets aside for examples


def _ascii_token(text: str, limit: int) -> str:
    cleaned = re.sub(r"[^!-~]", "_", text)[:limit]  # RFC 5424 header fields: printable ASCII
    return cleaned or "-"


def _sd_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def syslog_frames(line, app: str, procid: str, msgid: str, hostname: str, token: str | None) -> list[bytes]:
    """One log line as octet-counted RFC 5424 frames (several if it is long)."""
    severity = 3 if line.stream == "stderr" else 6
    pri = FACILITY_USER * 8 + severity
    timestamp = line.timestamp[:26] + "Z"  # microseconds
    body = line.message.encode("utf-8", "replace")
    parts = [body[i : i + MAX_MESSAGE_BYTES] for i in range(0, len(body), MAX_MESSAGE_BYTES)] or [b""]
    frames = []
    for index, part in enumerate(parts, start=1):
        params = []
        if token:
            params.append(f'token="{_sd_escape(token)}"')
        if len(parts) > 1:
            params.append(f'part="{index}/{len(parts)}"')
        sd = f"[{SD_ID} {' '.join(params)}]" if params else "-"
        header = f"<{pri}>1 {timestamp} {hostname} {app} {procid} {msgid} {sd} ".encode()
        message = header + part
        frames.append(b"%d %s" % (len(message), message))
    return frames


class LogForwarder:
    """Sends new log lines of every job and build to the configured endpoint."""

    POLL_SECONDS = 0.1
    UNSET_WAIT_SECONDS = 5.0  # with no stream set it sleeps: setting one wakes it (``wake``)

    def __init__(self, streams: LogStreams, state: State):
        self.streams = streams
        self.state_store = state
        self.logs = state.logs
        self.cursor_path = self.streams.dir / "cursors.json"
        self.loaded = False
        self._load_lock = threading.Lock()
        self.stop_event = threading.Event()
        self.wake = threading.Event()  # a stream was set, or it stops: look now
        self.thread = threading.Thread(target=self._run, name="log-forwarder", daemon=True)
        self.sock: socket.socket | None = None  # an ssl.SSLSocket (a socket.socket) with tls
        self.hostname = _ascii_token(socket.gethostname(), 255)
        self.meta: dict[str, tuple[str, str, str | None]] = {}  # resource -> (app, msgid, service id)
        self.cursors: dict = {}
        self.state = {"sent": 0, "dropped": 0, "lastError": None, "connected": False}
        self.idle = threading.Event()

    def start(self) -> "LogForwarder":
        self.thread.start()
        return self

    def stop(self, drain_seconds: float = 0.0) -> None:
        """Stop, after giving the backlog up to ``drain_seconds`` to go out."""
        deadline = time.monotonic() + drain_seconds
        while drain_seconds and time.monotonic() < deadline and self.loaded and self.backlog_bytes() > 0:
            if not self.state["connected"] and self.state["lastError"]:
                break
            time.sleep(0.05)
        self.stop_event.set()
        self.wake.set()
        self.thread.join(timeout=5)

    # -- the loop ---------------------------------------------------------------
    def _run(self) -> None:
        try:
            while not self.stop_event.is_set():
                config = self.streams.get()
                if config is None:
                    self._disconnect()
                    self.wake.wait(self.UNSET_WAIT_SECONDS)  # an idle control plane does not read settings twice a second
                    self.wake.clear()
                    continue
                self.begin()
                self._discover()
                self._forward(config)
                self._save()
                self.stop_event.wait(self.POLL_SECONDS)
        finally:
            self._disconnect()
            self._save()

    def begin(self) -> None:
        """Load the saved cursors; on a data dir's first stream, start from now: lines written
        from here on are sent. The control plane calls it as a stream is set, so a job created
        right after is forwarded whole."""
        with self._load_lock:
            if not self.loaded:
                self._load()

    def _load(self) -> None:
        try:
            saved = json.loads(self.cursor_path.read_text())
        except (FileNotFoundError, ValueError):
            saved = {}
        self.cursors = saved.get("cursors", {})
        self.index_offset = saved.get("indexOffset", None)
        self.state.update(self.streams.state())
        if self.index_offset is None:  # first start: forward what is written from now on
            index = self.logs.index_path
            self.index_offset = index.stat().st_size if index.exists() else 0
        self.loaded = True

    def _save(self) -> None:
        if not self.loaded:
            return
        write_atomic(self.cursor_path, json.dumps({"cursors": self.cursors, "indexOffset": self.index_offset}),
                     durable=False)
        self.streams.save_state(self.state)

    def _discover(self) -> None:
        new, self.index_offset = self.logs.new_resources(self.index_offset)
        for resource_id in new:
            self.cursors.setdefault(resource_id, 0)

    def _describe(self, resource_id: str):
        if resource_id not in self.meta:
            service_id = None
            if resource_id.startswith("job-"):
                doc = self.state_store.job_store.get(resource_id)
                msgid = "job"
            else:
                doc = self.state_store.store.get("builds", resource_id)
                msgid = "build"
            service_id = doc and doc["serviceId"]
            try:
                name = self.state_store.get_service(service_id).name if service_id else "render-local"
            except NotFound:  # a record lost with a corrupt store: its id still says whose it was
                name = service_id or "render-local"
            self.meta[resource_id] = (_ascii_token(name, 48), msgid, service_id)
        return self.meta[resource_id]

    def _finished(self, resource_id: str) -> bool:
        if resource_id.startswith("job-"):
            doc = self.state_store.job_store.get(resource_id)
            return doc is None or (doc["status"] in FINAL_JOB_STATUSES and doc.get("logsComplete"))
        doc = self.state_store.store.get("builds", resource_id)
        return doc is None or doc["status"] != BuildStatus.BUILDING

    def backlog_bytes(self) -> int:
        total = 0
        for resource_id, offset in list(self.cursors.items()):
            try:
                total += max(0, self.logs.path(resource_id).stat().st_size - offset)
            except FileNotFoundError:
                pass
        return total

    def _forward(self, config: LogStreamConfig) -> None:
        token = self.streams.token()
        for resource_id in list(self.cursors):
            app, msgid, service_id = self._describe(resource_id)
            done = self._finished(resource_id)  # read before the lines, so none is missed
            if service_id in config.optOut:
                self.cursors[resource_id] = self._size(resource_id)
            elif not self._send_lines(config, resource_id, app, msgid, token):
                self._bound(config)
                return
            if done and self.cursors[resource_id] >= self._size(resource_id):
                del self.cursors[resource_id]
                self.meta.pop(resource_id, None)

    def _size(self, resource_id: str) -> int:
        try:
            return self.logs.path(resource_id).stat().st_size
        except FileNotFoundError:
            return 0

    def _send_lines(self, config, resource_id, app, msgid, token) -> bool:
        batch, end = [], self.cursors[resource_id]
        for line in self.logs.read(resource_id, self.cursors[resource_id]):
            batch.extend(syslog_frames(line, app, resource_id, msgid, self.hostname, token))
            end = line.end
            if len(batch) >= 512:
                if not self._send(config, batch, resource_id, end):
                    return False
                batch = []
        return self._send(config, batch, resource_id, end) if batch else True

    def _send(self, config, frames: list[bytes], resource_id: str, end: int) -> bool:
        try:
            if self.sock is None:
                self.sock = self._connect(config)
            self.sock.sendall(b"".join(frames))
        except OSError as exc:  # ssl.SSLError included
            self._disconnect()
            self._error(config, exc)
            return False
        self.cursors[resource_id] = end
        self.state["sent"] += len(frames)
        if not self.state["connected"]:
            self.state.update(connected=True, lastError=None)
        return True

    def _connect(self, config):
        raw = socket.create_connection((config.host, config.port), timeout=5)
        if not config.tls:
            return raw
        import ssl  # only a TLS stream needs it: the CLI starts without

        context = ssl.create_default_context()
        if config.insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context.wrap_socket(raw, server_hostname=config.host)

    def _disconnect(self) -> None:
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
            self.sock = None

    def _error(self, config, exc: Exception) -> None:
        reason = f"cannot send to {config.host}:{config.port}: {getattr(exc, 'strerror', None) or exc}"
        if self.state.get("lastError") != reason:  # shown once, not once per line
            self.state["lastError"] = reason
            self.state["lastErrorAt"] = stamp()
        self.state["connected"] = False

    def _bound(self, config: LogStreamConfig) -> None:
        """Endpoint down: past the bound, skip the oldest unsent lines and count them."""
        excess = self.backlog_bytes() - config.maxQueueBytes
        if excess <= 0:
            return
        for resource_id in list(self.cursors):  # discovery order: oldest first
            for line in self.logs.read(resource_id, self.cursors[resource_id]):
                if excess <= 0:
                    break
                excess -= line.end - line.offset
                self.cursors[resource_id] = line.end
                self.state["dropped"] += 1
            if excess <= 0:
                break
