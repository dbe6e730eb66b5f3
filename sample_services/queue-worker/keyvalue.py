"""Just enough of the Redis protocol (RESP) for a queue, with the standard library only."""

import socket
from urllib.parse import urlsplit


class KeyValue:
    def __init__(self, url: str, timeout: float = 30):
        parts = urlsplit(url)  # redis://host:port, as fromService's connectionString gives it
        self.sock = socket.create_connection((parts.hostname, parts.port or 6379), timeout=timeout)
        self.reader = self.sock.makefile("rb")

    def command(self, *args):
        out = b"*%d\r\n" % len(args)
        for arg in args:
            data = str(arg).encode()
            out += b"$%d\r\n%s\r\n" % (len(data), data)
        self.sock.sendall(out)
        return self._reply()

    def _reply(self):
        line = self.reader.readline().rstrip(b"\r\n")
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RuntimeError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            size = int(rest)
            return None if size < 0 else self.reader.read(size + 2)[:-2].decode()
        if kind == b"*":
            size = int(rest)
            return None if size < 0 else [self._reply() for _ in range(size)]
        raise RuntimeError(f"unexpected reply {line!r}")
