"""Running the API: in the foreground (``render-local serve``) or in a thread (the TUI).

The listening socket is bound here, before uvicorn starts: the printed URL
carries the real port (also with ``--port 0``) and a busy port is one clear
error line instead of a server that exits from inside its event loop.
"""

from __future__ import annotations

import ipaddress
import signal
import socket
import sys
import threading
import time

from renderlocal.api import discovery
from renderlocal.api.token import load_or_create_token
from renderlocal.core.errors import RenderLocalError

RECOVER_SECONDS = 2.0
HANDOFF_GRACE_SECONDS = 0.5  # after withdrawing, before an idle control plane stops


class ListenError(RenderLocalError, RuntimeError):
    """The API cannot listen (port taken, unknown host); one line for the user.
    A RuntimeError too, for callers that catch that."""

    status = 503
    code = "cannot_listen"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def warn_if_exposed(host: str) -> None:
    if not is_loopback(host):
        print(f"render-local: warning: serving on {host}, reachable from other machines; "
              "anyone with the token can run jobs", file=sys.stderr, flush=True)


def base_url(host: str, port: int) -> str:
    """The API's base URL (``.../v1``), an IPv6 address in brackets."""
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/v1"


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port (0: any free port)."""
    try:
        family, kind, proto, _name, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
        sock = socket.socket(family, kind, proto)
    except (OSError, UnicodeError) as exc:
        raise ListenError(f"cannot listen on {host}:{port}: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        raise ListenError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return sock


class Supervisor:
    """The control plane's background duties while a long-running face is open:
    adopt unsupervised jobs, run watchers, forward the log stream; with
    ``idle_exit``, call ``on_idle`` once nothing happened for that long."""

    def __init__(self, plane, idle_exit: float | None = None, activity=None, on_idle=None, announce=None):
        self.plane = plane
        self.idle_exit = idle_exit
        self.activity = activity
        self.on_idle = on_idle
        self.announce = announce
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, name="control-plane", daemon=True)

    def start(self) -> "Supervisor":
        self.plane.start_forwarding()
        self.thread.start()
        return self

    def _run(self) -> None:
        busy_at = time.monotonic()
        while not self.stop_event.is_set():
            try:
                self.plane.recover(follow=True)
                if self.idle_exit is None:  # an auto-started control plane leaves watch mode to the app
                    self.plane.sync_watchers()
            except Exception as exc:  # an engine hiccup must not end the loop
                print(f"render-local: warning: {exc}", file=sys.stderr)
            if self.idle_exit is not None:
                if self.plane.jobs.supervising():
                    busy_at = time.monotonic()
                quiet = min(time.monotonic() - busy_at, self.activity.idle_seconds())
                if quiet >= self.idle_exit and self._quiet_after_withdrawing():
                    print(f"render-local: idle for {self.idle_exit:g} s, stopping", file=sys.stderr, flush=True)
                    self.on_idle()
                    return
            self.stop_event.wait(min(RECOVER_SECONDS, self.idle_exit or RECOVER_SECONDS))

    def _quiet_after_withdrawing(self) -> bool:
        """Withdraw the announcement, then give a CLI that read it just before time to post."""
        discovery.withdraw(self.plane.data_dir)
        self.stop_event.wait(HANDOFF_GRACE_SECONDS)
        if self.plane.jobs.supervising() or self.activity.idle_seconds() < HANDOFF_GRACE_SECONDS:
            self.announce(unless_announced=True)  # a job came after all: stay (announced again if nobody else is)
            return False
        return True

    def stop(self) -> None:
        self.stop_event.set()
        if self.thread.ident is not None:  # a signal may come before it started
            self.thread.join(timeout=5)
        self.plane.close(drain_seconds=2)


class ActivityClock:
    """ASGI middleware: how long the API has been without a request or open websocket."""

    def __init__(self, app):
        self.app = app
        self.active = 0
        self.last = time.monotonic()

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        self.active += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.active -= 1
            self.last = time.monotonic()

    def idle_seconds(self) -> float:
        return 0.0 if self.active else time.monotonic() - self.last


class ServerHandle:
    """A server running in a background thread: ``url`` (``http://host:port/v1``),
    ``token`` (the bearer token it accepts), ``stop()``."""

    def __init__(self, server, thread, sock, host: str, token: str, data_dir):
        self.server = server
        self.data_dir = data_dir
        self.thread = thread
        self.sock = sock
        self.host = host
        self.token = token
        self.port: int = sock.getsockname()[1]
        self.url = base_url(host, self.port)

    @property
    def app(self):
        return self.server.config.app

    def stop(self) -> None:
        discovery.withdraw(self.data_dir)
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()


def _server(plane, token: str):
    import uvicorn

    from renderlocal.api.app import create_app

    ws = "websockets-sansio" if "websockets-sansio" in uvicorn.config.WS_PROTOCOLS else "websockets"
    config = uvicorn.Config(create_app(plane, token), log_level="warning", lifespan="off", ws=ws,
                            timeout_graceful_shutdown=5)
    return uvicorn.Server(config)


def start_in_thread(plane, host: str = "127.0.0.1", port: int = 0) -> ServerHandle:
    """Serve the API from a background thread; returns once it listens.

    It does not adopt jobs or run watchers: its owner (the TUI) does that.
    """
    warn_if_exposed(host)
    sock = bind(host, port)
    token = load_or_create_token(plane.data_dir)
    server = _server(plane, token)
    server.install_signal_handlers = lambda: None  # older uvicorn: the main thread's owner handles signals
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="api-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            sock.close()
            raise ListenError(f"the API server did not start on {host}:{port}")
        time.sleep(0.02)
    handle = ServerHandle(server, thread, sock, host, token, plane.data_dir)
    discovery.publish(plane.data_dir, handle.url, plane.blueprint_path)  # CLI commands hand jobs to us
    return handle


def serve(plane, host: str = "127.0.0.1", port: int = 8000, idle_exit: float | None = None) -> None:
    """``render-local serve``: the control plane and the API until Ctrl-C (or,
    with ``idle_exit``, until no job and no request kept it busy for that long).

    The base URL goes to stdout (for scripts), everything else to stderr.
    """
    warn_if_exposed(host)
    sock = bind(host, port)
    server = _server(plane, load_or_create_token(plane.data_dir))
    activity = None
    if idle_exit is not None:  # uvicorn loads config.app when it runs: wrap it before
        activity = server.config.app = ActivityClock(server.config.app)
    # uvicorn shuts down cleanly on SIGTERM, then raises it again; ending here
    # lets the supervisor drain the log stream and withdraw the announcement.
    signal.signal(signal.SIGTERM, _interrupt)
    url = base_url(host, sock.getsockname()[1])

    def announce(unless_announced: bool = False):  # CLI commands hand their jobs to us
        discovery.publish(plane.data_dir, url, plane.blueprint_path, unless_announced)

    supervisor = Supervisor(plane, idle_exit, activity, on_idle=lambda: setattr(server, "should_exit", True),
                            announce=announce)
    try:
        supervisor.start()
        announce()
        print(url, flush=True)
        print("render-local API: send Authorization: Bearer $(render-local token); Ctrl-C stops",
              file=sys.stderr, flush=True)
        server.run(sockets=[sock])
        while idle_exit is not None and plane.jobs.supervising():
            time.sleep(0.2)  # a job that came while it was stopping: supervised to its end
    except KeyboardInterrupt:
        pass  # Ctrl-C or SIGTERM, before uvicorn runs or after its clean shutdown: the way out
    finally:
        discovery.withdraw(plane.data_dir)
        supervisor.stop()
        sock.close()
    print("render-local API stopped", file=sys.stderr)


def _interrupt(_signum, _frame):
    raise KeyboardInterrupt
