"""Serving a started control plane's API: in the foreground (``render-local serve``)
or in a thread (the terminal app), announced in ``control-plane.json`` so
faces find it.

The listening socket is bound here, before uvicorn starts: the printed URL
carries the real port (also with ``--port 0``) and a busy port is one clear
error line instead of a server that exits from inside its event loop.
"""

from __future__ import annotations

import ipaddress
import os
import signal
import socket
import sys
import threading
import time

from renderlocal.api.token import load_or_create_token
from renderlocal.client import discovery
from renderlocal.core.errors import RenderLocalError
from renderlocal.executor.election import ControlPlaneRunning


HANDOFF_GRACE_SECONDS = 0.5  # after withdrawing, before an idle control plane stops
KEEP_ALIVE_SECONDS = 30  # longer than a client reuses an idle connection (client/remote.py)


class ListenError(RenderLocalError, RuntimeError):
    """The API cannot listen (port taken, unknown host); one line for the user.
    A RuntimeError too, for callers that catch that."""

    kind = "cannot_listen"


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


def announce(plane, url: str, idle_exit: bool = False) -> None:
    """Tell the faces where this control plane listens."""
    discovery.publish(plane.data_dir, discovery.Endpoint(url, os.getpid(), str(plane.blueprint_path), plane.engine.id,
                                                         idle_exit))


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


def _server(plane, token: str, host: str):
    import uvicorn

    from renderlocal.api.app import create_app

    ws = "websockets-sansio" if "websockets-sansio" in uvicorn.config.WS_PROTOCOLS else "websockets"
    app = create_app(plane, token, host)  # requests must name this host (or a loopback name)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off", ws=ws, timeout_graceful_shutdown=5,
                                           timeout_keep_alive=KEEP_ALIVE_SECONDS))
    app.state.stopping = lambda: server.should_exit  # long-polls answer at once instead of holding the shutdown
    return server


def start_in_thread(plane, host: str = "127.0.0.1", port: int = 0) -> ServerHandle:
    """Serve the started control plane's API from a background thread, announced; returns once it listens."""
    warn_if_exposed(host)
    sock = bind(host, port)
    token = load_or_create_token(plane.data_dir)
    server = _server(plane, token, host)
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
    announce(plane, handle.url)
    return handle


def serve(plane, host: str = "127.0.0.1", port: int = 8000, idle_exit: float | None = None) -> None:
    """``render-local serve``: become the data dir's control plane and serve its API until
    Ctrl-C (or, with ``idle_exit``, until no job, build or request kept it busy for that long).

    The base URL goes to stdout (for scripts), everything else to stderr.
    """
    warn_if_exposed(host)
    running = discovery.read_live(plane.data_dir)
    if idle_exit is None and running is not None:  # said before a busy port could say something less useful
        raise ControlPlaneRunning(f"a control plane already runs for {plane.data_dir} at {running.url} (pid {running.pid})")
    sock = bind(host, port)

    def problem(error) -> None:
        if error is None:
            print("render-local: the Docker engine answers again", file=sys.stderr, flush=True)
        else:
            print(f"render-local: warning: {error}", file=sys.stderr, flush=True)

    def adopted(ids: list[str]) -> None:
        print(f"render-local: supervising {len(ids)} job(s) no control plane was watching: {', '.join(ids)}",
              file=sys.stderr, flush=True)

    try:  # an auto-started one waits for one that is stopping; a user's serve says at once who runs
        plane.start(wait=30 if idle_exit is not None else 0, on_problem=problem, on_adopted=adopted)
    except Exception as exc:
        sock.close()
        discovery.report_failure(plane.data_dir, exc)  # the CLI that started it shows this, not a log path
        raise
    except BaseException:
        sock.close()
        raise
    server = _server(plane, load_or_create_token(plane.data_dir), host)
    url = base_url(host, sock.getsockname()[1])
    if idle_exit is not None:  # uvicorn loads config.app when it runs: wrap it before
        activity = server.config.app = ActivityClock(server.config.app)

        def stop_now(why: str = "asked to make way for another blueprint") -> None:
            discovery.withdraw(plane.data_dir)  # new faces start another one from now on
            print(f"render-local: {why}, stopping", file=sys.stderr, flush=True)
            server.should_exit = True

        def stop_idle() -> bool:
            """Withdraw, then give a face that read the announcement just before time to ask; stay if one did."""
            discovery.withdraw(plane.data_dir)
            time.sleep(HANDOFF_GRACE_SECONDS)
            if plane.busy() or activity.idle_seconds() < HANDOFF_GRACE_SECONDS:
                announce(plane, url, idle_exit=True)
                return False
            stop_now(f"idle for {idle_exit:g} s")
            return True

        plane.supervisor.stop_when_idle(idle_exit, activity.idle_seconds, stop_idle, stop_now)
    # uvicorn shuts down cleanly on SIGTERM, then raises it again; ending here
    # lets the control plane drain the log stream and withdraw the announcement.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        plane.supervisor.wait_first_pass()  # what a crash left is adopted before anyone asks
        announce(plane, url, idle_exit is not None)
        print(url, flush=True)
        print("render-local API: send Authorization: Bearer $(render-local token); Ctrl-C stops",
              file=sys.stderr, flush=True)
        server.run(sockets=[sock])
        while idle_exit is not None and plane.busy():
            time.sleep(0.2)  # a job that came while it was stopping: supervised to its end
    except KeyboardInterrupt:
        pass  # Ctrl-C or SIGTERM, before uvicorn runs or after its clean shutdown: the way out
    finally:
        discovery.withdraw(plane.data_dir)
        plane.close(drain_seconds=2)
        sock.close()
    print("render-local API stopped", file=sys.stderr)


def _interrupt(_signum, _frame):
    raise KeyboardInterrupt
