"""What every screen of the app shares: loading its data off the UI thread, and
redrawing when the control plane says something it shows changed."""

from __future__ import annotations

from textual import work
from textual.binding import Binding
from textual.message import Message
from textual.screen import ModalScreen, Screen


class LiveScreen(Screen):
    """Loads its data in a worker thread when shown, and again when a change it cares
    about comes (``changed``); the clock's tick only redraws what moves with time.

    Subclasses implement ``load()`` (runs in a worker thread: store reads, never
    the UI), ``show(data)`` (the UI thread) and may override ``wants(change)`` and
    ``redraw()``. A change that comes while a load runs asks for one more load
    after it, never a second thread.
    """

    BINDINGS_TITLE = ""
    TICK_SECONDS = 1.0

    class Loaded(Message):
        def __init__(self, data, error: Exception | None) -> None:
            super().__init__()
            self.data = data
            self.error = error

    def __init__(self) -> None:
        super().__init__()
        self.loaded_count = 0
        self.load_running = False
        self.load_again = False
        self.stale = False  # a change came while another screen covered this one
        self.last_error: str | None = None

    def on_mount(self) -> None:
        # Textual runs this after a subclass's own on_mount (every class's handler runs): never call it
        self.app.live_screens.add(self)
        self.app.apply_blink(self)
        self.set_interval(self.TICK_SECONDS, self.tick)  # the screen's own timer: it stops with the screen
        self.reload()

    def on_unmount(self) -> None:
        self.app.live_screens.discard(self)

    def check_action(self, action: str, parameters) -> bool | None:
        return not self.app.closing  # keys typed after q must not open anything

    def on_screen_resume(self) -> None:
        if self.stale or not (self.loaded_count or self.load_running):
            self.stale = False
            self.reload()

    def changed(self, change) -> None:
        """The control plane wrote something (``change.kind``, ``.id``, ``.status``; None: reload everything)."""
        if change is not None and not self.wants(change):
            return
        if self.in_view:
            self.reload()
        else:
            self.stale = True

    def wants(self, change) -> bool:
        """Whether this screen shows what ``change`` is about."""
        return True

    def tick(self) -> None:
        """A second passed: redraw what moves with the clock (durations, running costs), when seen
        (a dialog over this screen still lets its figures move)."""
        if self.loaded_count and self.in_view:
            self.redraw()

    def redraw(self) -> None:
        """Draw the loaded data again (the clock moved)."""

    def reload(self) -> None:
        if self.load_running:
            self.load_again = True
            return
        self.load_running, self.load_again = True, False
        self._load()

    @work(thread=True, group="load", exit_on_error=False)
    def _load(self) -> None:
        try:
            data, error = self.load(), None
        except Exception as exc:  # the store is busy or unreadable: say so, keep running
            data, error = None, exc
        self.post_message(self.Loaded(data, error))

    def on_live_screen_loaded(self, message: "LiveScreen.Loaded") -> None:
        message.stop()
        self.load_running = False
        if message.error is not None:
            if str(message.error) != self.last_error:  # once, not on every change
                self.last_error = str(message.error)
                self.app.report_error(message.error)
        else:
            self.last_error = None
            self.show(message.data)
            self.loaded_count += 1
        if self.load_again:
            self.reload()

    @property
    def in_view(self) -> bool:
        """On top, or under a dialog (a dialog over this one still lets its figures move)."""
        stack = self.app.screen_stack
        return bool(stack) and (stack[-1] is self or (isinstance(stack[-1], ModalScreen) and stack[-2:-1] == [self]))

    def load(self):  # pragma: no cover - every screen has its own
        return None

    def show(self, data) -> None:  # pragma: no cover
        pass


BACK = Binding("escape", "back", "Back")
