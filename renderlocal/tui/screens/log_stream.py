"""The log stream: where job and build logs are forwarded, what was sent and dropped."""

from __future__ import annotations

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, Static

from renderlocal.core.errors import RenderLocalError
from renderlocal.core.logstreams import LogStreams
from renderlocal.tui.widgets.keys_footer import KeysFooter


class LogStreamScreen(ModalScreen[None]):
    """Reads the settings from the data dir; saving and clearing are the control plane's to do."""

    BINDINGS = [
        Binding("ctrl+s", "save", "Save"),
        Binding("escape", "close", "Close"),
    ]

    class Done(Message):
        """A save or clear came back: ``text`` to show, ``error`` if it was refused."""

        def __init__(self, text: str, error: bool = False) -> None:
            super().__init__()
            self.text = text
            self.error = error

    def __init__(self) -> None:
        super().__init__()
        self.streams: LogStreams | None = None

    def compose(self) -> ComposeResult:
        self.streams = LogStreams(self.app.plane.state)
        config = self.streams.get()
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
        yield KeysFooter()

    class Status(Message):
        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    def on_mount(self) -> None:
        self.app.apply_blink(self)  # a cursor that does not blink when the app's does not (snapshots)
        self.show_status()
        self.set_interval(1.0, self.show_status)  # what was sent and dropped moves without a store change

    @work(thread=True, group="log-stream-status", exclusive=True, exit_on_error=False)
    def show_status(self) -> None:
        streams = self.streams
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
        self.post_message(self.Status(text))

    def on_log_stream_screen_status(self, message: "LogStreamScreen.Status") -> None:
        message.stop()
        self.query_one("#log-stream-status", Static).update(message.text)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        actions = {"log-stream-save": self.action_save, "log-stream-clear": self.clear,
                   "log-stream-close": self.action_close}
        actions[event.button.id]()

    def action_save(self) -> None:
        endpoint = self.query_one("#log-stream-endpoint", Input).value.strip()
        token = self.query_one("#log-stream-token", Input).value or None
        tls = self.query_one("#log-stream-tls", Checkbox).value
        insecure = self.query_one("#log-stream-insecure", Checkbox).value
        self._ask(lambda plane: plane.set_log_stream(endpoint, tls=tls, token=token, insecure=insecure),
                  "[green]saved: the control plane forwards every log line[/]")

    def clear(self) -> None:
        self._ask(lambda plane: plane.clear_log_stream(), "log stream cleared")

    @work(thread=True, group="log-stream", exit_on_error=False)
    def _ask(self, change, done_text: str) -> None:
        try:
            change(self.app.plane)
        except RenderLocalError as exc:
            self.post_message(self.Done(f"[red]{exc}[/]", error=True))
            return
        self.post_message(self.Done(done_text))

    def on_log_stream_screen_done(self, message: "LogStreamScreen.Done") -> None:
        message.stop()
        self.query_one("#log-stream-error", Static).update(message.text)
        self.show_status()

    def action_close(self) -> None:
        self.dismiss(None)
