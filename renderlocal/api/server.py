"""Running the API: in the foreground (``render-local serve``) or in a thread (the TUI)."""

from __future__ import annotations

import ipaddress
import sys
import threading
import time

from renderlocal.api.token import load_or_create_token

RECOVER_SECONDS = 2.0


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Supervisor:
    """The control plane's background duties while a long-running face is open:
    adopt unsupervised jobs, run watchers, forward the log stream."""

    def __init__(self, plane):
        self.plane = plane
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, name="control-plane", daemon=True)

    def start(self) -> "Supervisor":
        self.plane.start_forwarding()
        self.thread.start()
        return self

    def _run(self) -> None:
        while not self.stop_event.is_set():
            try:
                self.plane.recover(follow=True)
                self.plane.sync_watchers()
            except Exception as exc:  # an engine hiccup must not end the loop
                print(f"render-local: warning: {exc}", file=sys.stderr)
            self.stop_event.wait(RECOVER_SECONDS)

    def stop(self) -> None:
        self.stop_event.set()
        self.thread.join(timeout=5)
        self.plane.close(drain_seconds=2)


class ServerHandle:
    def __init__(self, server, thread, host):
        self.server = server
        self.thread = thread
        self.host = host

    @property
    def port(self) -> int:
        return self.server.servers[0].sockets[0].getsockname()[1]

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def _server(plane, host: str, port: int):
    import uvicorn

    from renderlocal.api.app import create_app

    app = create_app(plane, load_or_create_token(plane.data_dir))
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off", ws="websockets-sansio")
    return uvicorn.Server(config)


def start_in_thread(plane, host: str = "127.0.0.1", port: int = 0) -> ServerHandle:
    """Serve the API from a background thread; returns once it listens."""
    server = _server(plane, host, port)
    server.install_signal_handlers = lambda: None  # the owner of the main thread handles signals
    thread = threading.Thread(target=server.run, name="api-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the API server could not listen on {host}:{port}")
        time.sleep(0.02)
    return ServerHandle(server, thread, host)


def serve(plane, host: str = "127.0.0.1", port: int = 8000) -> None:
    """``render-local serve``: the control plane and the API until Ctrl-C."""
    if not is_loopback(host):
        print(f"render-local: warning: serving on {host}, reachable from other machines; "
              "anyone with the token can run jobs", file=sys.stderr)
    supervisor = Supervisor(plane).start()
    server = _server(plane, host, port)
    print(f"render-local API on http://{host}:{port}/v1 (token: render-local token)", file=sys.stderr, flush=True)
    try:
        server.run()
    except KeyboardInterrupt:
        pass  # uvicorn hands Ctrl-C back after its clean shutdown: that is the way out
    finally:
        supervisor.stop()
    print("render-local API stopped", file=sys.stderr)
