"""Log streams: every job and build log line to one syslog endpoint.

Like Render's log streams: RFC 5424 messages over TCP (TLS when asked) with
octet-counting framing. The job's own log file is the durable queue: a
forwarder thread reads each file from a saved cursor and sends, so forwarding
never slows a job. While the endpoint is down the unsent backlog is bounded:
past the bound the oldest lines are skipped and counted as dropped.
Exactly one process per data dir forwards (a lock file decides which).
"""

from __future__ import annotations

import json
import os
import re
import socket
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from filelock import FileLock, Timeout

from renderlocal.core.errors import InvalidInput
from renderlocal.core.models import stamp

SETTINGS_ID = "log-stream"
MAX_MESSAGE_BYTES = 8192  # per syslog message; a longer line is split and marked part="i/n"
DEFAULT_QUEUE_BYTES = 64 * 1024 * 1024
FACILITY_USER = 1
SD_ID = "render-local@32473"  # 32473: the enterprise number RFC 5612 sets aside for examples


@dataclass
class LogStreamConfig:
    host: str
    port: int
    tls: bool = False
    insecure: bool = False
    maxQueueBytes: int = DEFAULT_QUEUE_BYTES
    optOut: list = field(default_factory=list)  # service ids that keep their logs local
    updatedAt: str = ""


def parse_endpoint(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise InvalidInput(f"log stream endpoint {text!r} must look like HOST:PORT (port 1-65535)")
    return host.strip("[]"), int(port)


class LogStreams:
    """The configuration and state of a data dir's log stream, for every face."""

    def __init__(self, plane):
        self.plane = plane
        self.dir = plane.data_dir / "log-stream"
        self.dir.mkdir(exist_ok=True)
        self.token_path = self.dir / "token"
        self.state_path = self.dir / "state.json"

    def get(self) -> LogStreamConfig | None:
        doc = self.plane.store.get("settings", SETTINGS_ID)
        if doc is None:
            return None
        doc = {k: v for k, v in doc.items() if k != "id"}
        return LogStreamConfig(**doc)

    def set(self, endpoint: str, tls: bool = False, token: str | None = None, insecure: bool = False,
            max_queue_bytes: int | None = None) -> LogStreamConfig:
        host, port = parse_endpoint(endpoint)
        if insecure and not tls:
            raise InvalidInput("--insecure only applies with --tls")
        old = self.get()
        config = LogStreamConfig(host, port, tls, insecure, max_queue_bytes or DEFAULT_QUEUE_BYTES,
                                 old.optOut if old else [], stamp())
        self.plane.store.upsert("settings", {"id": SETTINGS_ID} | asdict(config))
        if token is not None:
            write_private(self.token_path, token)
        return config

    def clear(self) -> None:
        with self.plane.store.table("settings") as table:
            table.remove(lambda doc: doc.get("id") == SETTINGS_ID)
        self.token_path.unlink(missing_ok=True)

    def set_service(self, service_ref: str, enabled: bool) -> LogStreamConfig:
        config = self.get()
        if config is None:
            raise InvalidInput("no log stream is set; use: render-local log-streams set HOST:PORT")
        service = self.plane.get_service(service_ref)
        opt_out = [s for s in config.optOut if s != service.id] + ([] if enabled else [service.id])
        self.plane.store.update("settings", SETTINGS_ID, lambda d: d.update(optOut=opt_out))
        return self.get()

    def token(self) -> str | None:
        try:
            return self.token_path.read_text()
        except FileNotFoundError:
            return None

    def masked_token(self) -> str | None:
        token = self.token()
        if not token:
            return None
        return token[:2] + "*" * max(4, len(token) - 4) + token[-2:] if len(token) > 8 else "*" * len(token)

    def state(self) -> dict:
        try:
            return json.loads(self.state_path.read_text())
        except (FileNotFoundError, ValueError):
            return {"sent": 0, "dropped": 0, "lastError": None, "connected": False}


def write_private(path: Path, text: str) -> None:
    """Owner-only file, written atomically."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".")
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(tmp, path)


def _json_atomic(path: Path, data) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".")
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle)
    os.replace(tmp, path)


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

    def __init__(self, plane):
        self.plane = plane
        self.streams = LogStreams(plane)
        self.cursor_path = self.streams.dir / "cursors.json"
        self.lock = FileLock(str(self.streams.dir / "forwarder.lock"), thread_local=False)
        self.holding = False
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, name="log-forwarder", daemon=True)
        self.sock: socket.socket | ssl.SSLSocket | None = None
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
        while drain_seconds and time.monotonic() < deadline and self.holding and self.backlog_bytes() > 0:
            if not self.state["connected"] and self.state["lastError"]:
                break
            time.sleep(0.05)
        self.stop_event.set()
        self.thread.join(timeout=5)

    # -- the loop ---------------------------------------------------------------
    def _run(self) -> None:
        try:
            while not self.stop_event.is_set():
                config = self.streams.get()
                if config is None or not self._hold():
                    self._disconnect()
                    self.stop_event.wait(0.5)
                    continue
                self._discover()
                self._forward(config)
                self._save()
                self.stop_event.wait(self.POLL_SECONDS)
        finally:
            self._disconnect()
            self._save()
            if self.holding:
                self.lock.release()
                self.holding = False

    def _hold(self) -> bool:
        if not self.holding:
            try:
                self.lock.acquire(timeout=0)
            except Timeout:
                return False
            self.holding = True
            self._load()
        return True

    def _load(self) -> None:
        try:
            saved = json.loads(self.cursor_path.read_text())
        except (FileNotFoundError, ValueError):
            saved = {}
        self.cursors = saved.get("cursors", {})
        self.index_offset = saved.get("indexOffset", None)
        self.state.update(self.streams.state())
        if self.index_offset is None:  # first start: forward what is written from now on
            index = self.plane.logs.index_path
            self.index_offset = index.stat().st_size if index.exists() else 0

    def _save(self) -> None:
        if not self.holding:
            return
        _json_atomic(self.cursor_path, {"cursors": self.cursors, "indexOffset": self.index_offset})
        _json_atomic(self.streams.state_path, self.state)

    def _discover(self) -> None:
        new, self.index_offset = self.plane.logs.new_resources(self.index_offset)
        for resource_id in new:
            self.cursors.setdefault(resource_id, 0)

    def _describe(self, resource_id: str):
        if resource_id not in self.meta:
            service_id = None
            if resource_id.startswith("job-"):
                doc = self.plane.job_store.get(resource_id)
                service_id = doc and doc["serviceId"]
                msgid = "job"
            else:
                doc = self.plane.store.get("builds", resource_id)
                service_id = doc and doc["serviceId"]
                msgid = "build"
            try:
                name = self.plane.get_service(service_id).name if service_id else "render-local"
            except Exception:
                name = service_id or "render-local"
            self.meta[resource_id] = (_ascii_token(name, 48), msgid, service_id)
        return self.meta[resource_id]

    def _finished(self, resource_id: str) -> bool:
        if resource_id.startswith("job-"):
            doc = self.plane.job_store.get(resource_id)
            return doc is None or (doc["status"] in ("succeeded", "failed", "canceled") and doc.get("logsComplete"))
        doc = self.plane.store.get("builds", resource_id)
        return doc is None or doc["status"] != "building"

    def backlog_bytes(self) -> int:
        total = 0
        for resource_id, offset in list(self.cursors.items()):
            try:
                total += max(0, self.plane.logs.path(resource_id).stat().st_size - offset)
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
            return self.plane.logs.path(resource_id).stat().st_size
        except FileNotFoundError:
            return 0

    def _send_lines(self, config, resource_id, app, msgid, token) -> bool:
        batch, end = [], self.cursors[resource_id]
        for line in self.plane.logs.read(resource_id, self.cursors[resource_id]):
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
            for line in self.plane.logs.read(resource_id, self.cursors[resource_id]):
                if excess <= 0:
                    break
                excess -= line.end - line.offset
                self.cursors[resource_id] = line.end
                self.state["dropped"] += 1
            if excess <= 0:
                break
