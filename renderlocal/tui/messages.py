"""What the app's worker threads and the control plane tell the UI thread.

Workers never touch widgets: they post one of these, and the app's handler
(on the UI thread) notifies, pushes a screen or tells the screens to reload.
"""

from __future__ import annotations

from textual.message import Message


class PlaneChanged(Message):
    """The control plane wrote something (``change``: kind, id, status; None: everything may have changed)."""

    def __init__(self, change) -> None:
        super().__init__()
        self.change = change


class PlaneTrouble(Message):
    """The control plane's loop failed (``error``: the engine is down...) or works again (None)."""

    def __init__(self, error: Exception | None) -> None:
        super().__init__()
        self.error = error


class JobsAdopted(Message):
    """Jobs that no process was watching are supervised now."""

    def __init__(self, job_ids: list[str]) -> None:
        super().__init__()
        self.job_ids = job_ids


class PlaneReady(Message):
    """The app found its control plane: this process (``serving`` its API at ``url``) or another one."""

    def __init__(self, plane, notice: str) -> None:
        super().__init__()
        self.plane = plane
        self.notice = notice


class CommandDone(Message):
    """A command the user gave finished: ``then(result)`` runs on the UI thread."""

    def __init__(self, then, result) -> None:
        super().__init__()
        self.then = then
        self.result = result


class CommandFailed(Message):
    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error
