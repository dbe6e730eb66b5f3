"""Every key of every screen, in one place (``?``)."""

from __future__ import annotations

from rich.columns import Columns
from rich.console import Group
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static
from renderlocal.tui.widgets.keys_footer import KeysFooter


def section(title: str, keys: list[tuple[str, str]], here: bool) -> Group:
    lines = [Text(title + ("  ◀ you are here" if here else ""), style="bold underline")]
    width = max((len(key) for key, _ in keys), default=0)
    for key, description in keys:
        line = Text(key.rjust(max(width, 6)), style="bold #5fd7ff")
        line.append("  " + description)
        lines.append(line)
    lines.append(Text(""))
    return Group(*lines)


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,question_mark,q", "close", "Close")]

    def __init__(self, sections: list[tuple[str, list[tuple[str, str]]]], current: str | None = None) -> None:
        super().__init__()
        self.sections = sections
        self.current = current

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help", classes="dialog"):
            yield Static(Text("Keys  (esc closes · ctrl+p finds any action by name)", style="bold"), id="help-title")
            body = Columns([section(title, keys, title == self.current) for title, keys in self.sections],
                           width=46, padding=(0, 2))
            yield Static(body, id="help-keys")
        yield KeysFooter()

    def action_close(self) -> None:
        self.dismiss(None)
