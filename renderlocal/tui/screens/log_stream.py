"""The log stream: where job and build logs are forwarded, what was sent and dropped."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Footer, Input, Label, Static

from renderlocal.core.errors import RenderLocalError


class LogStreamScreen(ModalScreen[None]):
    BINDINGS = [
        Binding("ctrl+s", "save", "Save"),
        Binding("escape", "close", "Close"),
    ]

    def __init__(self, plane) -> None:
        super().__init__()
        self.plane = plane

    def compose(self) -> ComposeResult:
        config = self.plane.log_streams.get()
        with Vertical(id="log-stream", classes="dialog"):
            yield Label("Log stream: every job and build log line as RFC 5424 syslog over TCP")
            yield Static(id="log-stream-status")
            yield Label("Endpoint (HOST:PORT)")
            yield Input(value=f"{config.host}:{config.port}" if config else "", placeholder="logs.example.com:6514",
                        id="log-stream-endpoint")
            yield Label("Token (stored owner-only; leave empty to keep the current one)")
            yield Input(password=True, id="log-stream-token")
            yield Checkbox("TLS", value=bool(config and config.tls), id="log-stream-tls")
            yield Checkbox("Skip certificate checks (insecure)", value=bool(config and config.insecure), id="log-stream-insecure")
            yield Static(id="log-stream-error")
            with Horizontal(classes="buttons"):
                yield Button("Save (ctrl+s)", variant="primary", id="log-stream-save")
                yield Button("Stop forwarding", variant="error", id="log-stream-clear")
                yield Button("Close (esc)", id="log-stream-close")
        yield Footer()

    def on_mount(self) -> None:
        self.show_status()
        self.set_interval(1.0, self.show_status)

    def show_status(self) -> None:
        streams = self.plane.log_streams
        config, state = streams.get(), streams.state()
        if config is None:
            text = "not set: logs stay on this machine"
        else:
            link = "connected" if state.get("connected") else "not connected"
            text = (f"{config.host}:{config.port}{' (TLS)' if config.tls else ''} · {link} · "
                    f"sent {state.get('sent', 0):,} · dropped {state.get('dropped', 0):,}"
                    f" · token {streams.masked_token() or 'none'}")
            if state.get("lastError"):
                text += f"\nlast error: {state['lastError']}"
        self.query_one("#log-stream-status", Static).update(text)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        actions = {"log-stream-save": self.action_save, "log-stream-clear": self.clear,
                   "log-stream-close": self.action_close}
        actions[event.button.id]()

    def action_save(self) -> None:
        endpoint = self.query_one("#log-stream-endpoint", Input).value.strip()
        token = self.query_one("#log-stream-token", Input).value or None
        tls = self.query_one("#log-stream-tls", Checkbox).value
        insecure = self.query_one("#log-stream-insecure", Checkbox).value
        try:
            self.plane.log_streams.set(endpoint, tls=tls, token=token, insecure=insecure)
        except RenderLocalError as exc:
            self.query_one("#log-stream-error", Static).update(f"[red]{exc}[/]")
            return
        self.query_one("#log-stream-error", Static).update("[green]saved: forwarding from this app[/]")
        self.plane.start_forwarding()
        self.show_status()

    def clear(self) -> None:
        self.plane.log_streams.clear()
        self.query_one("#log-stream-error", Static).update("log stream cleared")
        self.show_status()

    def action_close(self) -> None:
        self.dismiss(None)
