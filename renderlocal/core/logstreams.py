"""Log stream settings: where every job and build log line is forwarded (see
``executor/forwarder.py``), what was sent and dropped. Faces read these; the
control plane changes them.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from renderlocal.core.atomic import write_atomic
from renderlocal.core.errors import InvalidInput
from renderlocal.core.models import stamp
from renderlocal.core.state import State

SETTINGS_ID = "log-stream"
DEFAULT_QUEUE_BYTES = 64 * 1024 * 1024


@dataclass
class LogStreamConfig:
    host: str
    port: int
    tls: bool = False
    insecure: bool = False
    maxQueueBytes: int = DEFAULT_QUEUE_BYTES
    optOut: list = field(default_factory=list)  # service ids that keep their logs local
    updatedAt: str = ""
    preview: str = "send"  # Render's setting for preview environments' logs: kept and shown (none run here)


def parse_endpoint(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise InvalidInput(f"log stream endpoint {text!r} must look like HOST:PORT (port 1-65535)")
    return host.strip("[]"), int(port)


class LogStreams:
    """The configuration and state of a data dir's log stream."""

    def __init__(self, state: State):
        self.state_store = state
        self.store = state.store
        self.dir = state.data_dir / "log-stream"
        self.dir.mkdir(exist_ok=True)
        self.token_path = self.dir / "token"
        self.state_path = self.dir / "state.json"

    def get(self) -> LogStreamConfig | None:
        doc = self.store.get("settings", SETTINGS_ID)
        if doc is None:
            return None
        doc = {k: v for k, v in doc.items() if k != "id"}
        return LogStreamConfig(**doc)

    def set(self, endpoint: str, tls: bool = False, token: str | None = None, insecure: bool = False,
            max_queue_bytes: int | None = None, preview: str | None = None) -> LogStreamConfig:
        host, port = parse_endpoint(endpoint)
        if insecure and not tls:
            raise InvalidInput("--insecure only applies with --tls")
        old = self.get()
        config = LogStreamConfig(host, port, tls, insecure, max_queue_bytes or DEFAULT_QUEUE_BYTES,
                                 old.optOut if old else [], stamp(), preview or (old.preview if old else "send"))
        self.store.upsert("settings", {"id": SETTINGS_ID} | asdict(config))
        if token is not None:
            write_atomic(self.token_path, token, private=True)
        return config

    def clear(self) -> None:
        with self.store.changing("settings") as table:
            table.remove(lambda doc: doc.get("id") == SETTINGS_ID)
        self.token_path.unlink(missing_ok=True)

    def set_service(self, service_ref: str, enabled: bool) -> LogStreamConfig:
        config = self.get()
        if config is None:
            raise InvalidInput("no log stream is set; use: render-local log-streams set HOST:PORT")
        service = self.state_store.get_service(service_ref)
        opt_out = [s for s in config.optOut if s != service.id] + ([] if enabled else [service.id])
        self.store.update("settings", SETTINGS_ID, lambda d: d.update(optOut=opt_out))
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

    def save_state(self, state: dict) -> None:
        write_atomic(self.state_path, json.dumps(state), durable=False)

    def view(self) -> dict:
        """What the faces show: the endpoint, the masked token, what was sent and dropped."""
        config = self.get()
        if config is None:
            return {"endpoint": None}
        state = self.state()
        return {
            "endpoint": f"{config.host}:{config.port}", "tls": config.tls, "insecure": config.insecure,
            "preview": config.preview,
            "token": self.masked_token(), "maxQueueBytes": config.maxQueueBytes,
            "optOut": [self.state_store.get_service(s).name for s in config.optOut],
            "sent": state.get("sent", 0), "dropped": state.get("dropped", 0),
            "connected": state.get("connected", False), "lastError": state.get("lastError"),
        }
