"""The footer of every screen: on a narrow terminal it packs its keys closer and leaves out
ctrl+p's (the help screen, ?, names it), so the screen's own keys stay in view."""

from __future__ import annotations

from textual.widgets import Footer

NARROW = 120  # columns: below this the footer is compact


class KeysFooter(Footer):
    def on_mount(self) -> None:
        self.fit_width()

    def on_resize(self) -> None:
        self.fit_width()

    def fit_width(self) -> None:
        narrow = self.app.size.width < NARROW
        self.compact = narrow
        self.show_command_palette = not narrow
