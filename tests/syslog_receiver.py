"""A real syslog receiver for tests: TCP (optionally TLS) with octet-counting framing."""

from __future__ import annotations

import re
import socket
import ssl
import threading

FRAME = re.compile(
    rb"^<(?P<pri>\d+)>1 (?P<ts>\S+) (?P<host>\S+) (?P<app>\S+) (?P<procid>\S+) (?P<msgid>\S+) "
    rb"(?P<sd>-|\[.*?(?<!\\)\]) (?P<msg>.*)$", re.S)


class SyslogReceiver:
    def __init__(self, port: int = 0, certfile: str | None = None, keyfile: str | None = None):
        self.server = socket.socket()
        self.server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.server.bind(("127.0.0.1", port))
        self.server.listen()
        self.server.settimeout(0.2)
        self.port = self.server.getsockname()[1]
        self.context = None
        if certfile:
            self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            self.context.load_cert_chain(certfile, keyfile)
        self.messages: list[dict] = []
        self.raw_errors: list[bytes] = []
        self._stop = False
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.server.accept()
            except (socket.timeout, OSError):
                continue
            if self.context:
                try:
                    conn = self.context.wrap_socket(conn, server_side=True)
                except (ssl.SSLError, OSError):
                    conn.close()
                    continue
            threading.Thread(target=self._read, args=(conn,), daemon=True).start()

    def _read(self, conn) -> None:
        buffer = b""
        conn.settimeout(0.5)
        while not self._stop:
            try:
                chunk = conn.recv(65536)
            except (socket.timeout, ssl.SSLError) as exc:
                if isinstance(exc, ssl.SSLError) and "timed out" not in str(exc):
                    break
                continue
            except OSError:
                break
            if not chunk:
                break
            buffer += chunk
            while True:
                space = buffer.find(b" ")
                if space <= 0:
                    break
                length = int(buffer[:space])
                if len(buffer) < space + 1 + length:
                    break
                frame = buffer[space + 1 : space + 1 + length]
                buffer = buffer[space + 1 + length :]
                match = FRAME.match(frame)
                if match:
                    self.messages.append({k: v.decode() for k, v in match.groupdict().items()})
                else:
                    self.raw_errors.append(frame)
        conn.close()

    def close(self) -> None:
        self._stop = True
        self.server.close()
        self._thread.join(timeout=2)
