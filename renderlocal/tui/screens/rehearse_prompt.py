"""Ask which command to rehearse against a service's database (enter starts it, esc does not)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Footer, Input, Static


class RehearsePrompt(ModalScreen[str | None]):
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, service_name: str, database_name: str, command: str = "python migrate.py") -> None:
        super().__init__()
        self.service_name = service_name
        self.database_name = database_name
        self.command = command

    def compose(self) -> ComposeResult:
        with Vertical(id="rehearse-prompt", classes="dialog"):
            yield Static(f"Rehearse on a snapshot of {self.database_name}: the command runs as a job of "
                         f"{self.service_name}; then keep the result or roll back.", id="rehearse-question")
            yield Input(value=self.command, placeholder="start command, e.g. python migrate.py", id="rehearse-command")
        yield Footer()

    def on_mount(self) -> None:
        self.app.apply_blink(self)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        command = event.value.strip()
        if not command:
            self.notify("Give the command to rehearse", severity="warning")
            return
        self.dismiss(command)

    def action_cancel(self) -> None:
        self.dismiss(None)
