"""A web service's URL on this machine: a port that stays the same across deploys.

Each web instance publishes its PORT on a random localhost port; the control
plane listens on the service's own port (``Service.proxyPort``) and passes
each connection to one of the live deploy's instances in turn. So a deploy
switches traffic from the old instances to the new ones without the URL
changing (Render's zero-downtime deploy), and several instances share it.
"""

from __future__ import annotations

import asyncio
import itertools
import socket
import threading

UNAVAILABLE = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nConnection: close\r\n"
               b"Content-Length: %d\r\n\r\n%s")


class ProxyPool:
    def __init__(self):
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._servers: dict[str, asyncio.base_events.Server] = {}
        self._ports: dict[str, int] = {}
        self._targets: dict[str, list[tuple[str, int]]] = {}
        self._turns: dict[str, itertools.count] = {}
        self._names: dict[str, str] = {}
        self._guard = threading.Lock()

    def _run_loop(self) -> asyncio.AbstractEventLoop:
        with self._guard:
            if self._loop is None:
                ready = threading.Event()

                def run():
                    self._loop = asyncio.new_event_loop()
                    ready.set()
                    self._loop.run_forever()

                self._thread = threading.Thread(target=run, name="service-proxies", daemon=True)
                self._thread.start()
                ready.wait()
        return self._loop

    def listen(self, service_id: str, name: str, port: int | None) -> int:
        """Listen for the service on ``port`` (a port taken by another program: any free one);
        returns the port it listens on."""
        if service_id in self._servers:
            return self._ports[service_id]
        self._names[service_id] = name
        sock = _bind(port)
        loop = self._run_loop()

        async def start():
            return await asyncio.start_server(lambda r, w: self._pass(service_id, r, w), sock=sock)

        self._servers[service_id] = asyncio.run_coroutine_threadsafe(start(), loop).result(10)
        self._ports[service_id] = sock.getsockname()[1]
        return self._ports[service_id]

    def point(self, service_id: str, targets: list[tuple[str, int]]) -> None:
        """Send the service's new connections to ``targets`` (host, port); none: answer 503."""
        self._targets[service_id] = list(targets)
        self._turns.setdefault(service_id, itertools.count())

    def close(self, service_id: str | None = None) -> None:
        """Stop listening for one service, or for all."""
        for sid in [service_id] if service_id else list(self._servers):
            server = self._servers.pop(sid, None)
            if server is not None and self._loop is not None:
                self._loop.call_soon_threadsafe(server.close)
            self._ports.pop(sid, None)
            self._targets.pop(sid, None)

    async def _pass(self, service_id: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        targets = self._targets.get(service_id) or []
        upstream = None
        for _ in range(len(targets)):  # a target that refuses: the next one
            host, port = targets[next(self._turns[service_id]) % len(targets)]
            try:
                upstream = await asyncio.open_connection(host, port)
                break
            except OSError:
                continue
        if upstream is None:
            body = f"render-local: {self._names.get(service_id, service_id)} has no live instance\n".encode()
            writer.write(UNAVAILABLE % (len(body), body))
            await _close(writer)
            return
        up_reader, up_writer = upstream
        await asyncio.gather(_copy(reader, up_writer), _copy(up_reader, writer))


async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass  # either side went away: the other is closed below
    finally:
        await _close(writer)


async def _close(writer: asyncio.StreamWriter) -> None:
    try:
        writer.close()
        await writer.wait_closed()
    except (ConnectionError, OSError):
        pass  # already closed by the other side


def _bind(port: int | None) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port or 0))
    except OSError:
        sock.bind(("127.0.0.1", 0))  # its old port is taken now: a new URL, recorded on the service
    sock.listen(128)
    sock.setblocking(False)
    return sock
