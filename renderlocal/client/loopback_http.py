"""A kept-alive HTTP/1.1 connection to the control plane's API, on a bare socket.

What ``http.client`` does for this one server, without its import: that pulls in the
``email`` package and ``ssl``, about 30 ms of every CLI call's 100 ms of imports. The
API is render-local's own server on loopback (uvicorn), so requests are small, every
answer has a Content-Length or is chunked, and nothing here is ever a proxy or TLS.
"""

from __future__ import annotations

import socket

MAX_LINE = 65536


class BadResponse(OSError):
    """The server closed the connection or answered something that is not HTTP/1.1."""


class Connection:
    def __init__(self, host: str, port: int, timeout: float):
        self.address = (host, port)
        self.host_header = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        self.timeout = timeout
        self._sock: socket.socket | None = None
        self._reader = None

    def close(self) -> None:
        if self._sock is not None:
            self._reader.close()
            self._sock.close()
        self._sock = self._reader = None

    def request(self, method: str, url: str, headers: dict[str, str], body: str | None = None) -> None:
        """Send one request (connecting first if needed); OSError if it could not be sent."""
        if self._sock is None:
            self._sock = socket.create_connection(self.address, self.timeout)
            self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._reader = self._sock.makefile("rb")
        payload = b"" if body is None else body.encode()
        lines = [f"{method} {url} HTTP/1.1", f"Host: {self.host_header}", f"Content-Length: {len(payload)}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        self._sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + payload)

    def response(self) -> tuple[int, bytes]:
        """(status, body) of the request sent last; BadResponse (an OSError) if there is none."""
        status_line = self._line()
        parts = status_line.split(None, 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
            raise BadResponse(f"not an HTTP answer: {status_line[:80]!r}")
        headers = {}
        while (line := self._line()) not in (b"\r\n", b"\n"):
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip().lower()
        if headers.get(b"transfer-encoding") == b"chunked":
            body = self._chunks()
        else:
            length = headers.get(b"content-length", b"0")
            if not length.isdigit():
                raise BadResponse(f"bad Content-Length {length[:20]!r}")
            body = self._exactly(int(length))
        if headers.get(b"connection") == b"close":
            self.close()
        return int(parts[1]), body

    def _line(self) -> bytes:
        line = self._reader.readline(MAX_LINE + 1)
        if not line:
            raise BadResponse("the server closed the connection")
        if len(line) > MAX_LINE:
            raise BadResponse("a header line is too long")
        return line

    def _exactly(self, size: int) -> bytes:
        data = self._reader.read(size)
        if len(data) < size:
            raise BadResponse("the server closed the connection mid-answer")
        return data

    def _chunks(self) -> bytes:
        body = bytearray()
        while True:
            size_text = self._line().split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise BadResponse(f"bad chunk size {size_text[:20]!r}") from None
            if size == 0:
                while self._line() not in (b"\r\n", b"\n"):  # trailers
                    pass
                return bytes(body)
            body += self._exactly(size)
            self._exactly(2)  # the chunk's CRLF
