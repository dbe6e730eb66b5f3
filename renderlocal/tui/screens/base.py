"""What every screen of the app shares: loading its data off the UI thread."""

from __future__ import annotations

from textual.binding import Binding
from textual.screen import ModalScreen, Screen
from textual.worker import get_current_worker


class LiveScreen(Screen):
    """Loads its data in a thread now, when shown again and on every app tick.

    Subclasses implement ``load()`` (runs in a worker thread: store reads, never
    the UI) and ``show(data)`` (runs on the UI thread). A tick that comes while a
    load is still running asks for one more load after it, never a second thread.
    """

    BINDINGS_TITLE = ""
    loaded_count = 0

    def on_mount(self) -> None:
        self.app.apply_blink(self)
        self.reload()

    def check_action(self, action: str, parameters) -> bool | None:
        return not self.app.quitting  # keys typed after q must not open anything

    def on_screen_resume(self) -> None:
        self.reload()

    def tick(self) -> None:
        self.reload()

    def reload(self) -> None:
        if getattr(self, "_loading", False):
            self._again = True
            return
        self._loading, self._again = True, False
        self.run_worker(self._load_in_thread, thread=True, group="load", exit_on_error=False)

    def _load_in_thread(self) -> None:
        worker = get_current_worker()
        try:
            data, error = self.load(), None
        except Exception as exc:  # the store is busy or unreadable: say so, keep running
            data, error = None, exc
        if not worker.is_cancelled:
            self.app.call_from_thread_safe(self._loaded, data, error)

    def _loaded(self, data, error) -> None:
        self._loading = False
        if error is not None:
            if str(error) != getattr(self, "_last_error", None):  # once, not every second
                self._last_error = str(error)
                self.app.report_error(error)
        elif self.is_attached:
            self._last_error = None
            self.show(data)
            self.loaded_count += 1
        if self._again:
            self.reload()

    def _covered(self) -> bool:
        """Another screen is on top (a dialog over this one still lets its log move)."""
        stack = self.app.screen_stack
        return not (stack and (stack[-1] is self or (isinstance(stack[-1], ModalScreen) and stack[-2:-1] == [self])))

    def load(self):  # pragma: no cover - every screen has its own
        return None

    def show(self, data) -> None:  # pragma: no cover
        pass


BACK = Binding("escape", "back", "Back")
