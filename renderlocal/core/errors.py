"""Errors the faces show to users: each carries one clear line of text, a kind
and, where it is about one input, the field it is about.

The kind says what went wrong, not how a face shows it: the API maps kinds to
HTTP statuses (``api/errors.py``), the CLI prints the message and exits 2, the
launcher marks ``field``. A remote client rebuilds the same error from the
API's answer (``error_from``), so a face never matches words in a message.
"""

from __future__ import annotations


class RenderLocalError(Exception):
    """Base of every error meant for a user; ``str(err)`` is the message."""

    kind = "bad_request"

    def __init__(self, message: str = "", field: str | None = None):
        super().__init__(message)
        self.field = field  # the input it is about, as the API names it (``planId``, ``envVars``...)


class InvalidInput(RenderLocalError):
    kind = "bad_request"  # the id the API has always answered with


class NotFound(RenderLocalError):
    kind = "not_found"


class Conflict(RenderLocalError):
    kind = "conflict"


class EngineUnavailable(RenderLocalError):
    kind = "engine_unavailable"


class ControlPlaneUnavailable(RenderLocalError):
    """No control plane answers for the data dir, and none could be started."""

    kind = "control_plane_unavailable"


class StoreCorrupt(RenderLocalError):
    kind = "store_corrupt"


class BlueprintError(RenderLocalError):
    """A render.yaml problem, located by file and line."""

    kind = "blueprint_error"

    def __init__(self, path, line: int | None, message: str):
        self.path = str(path)
        self.line = line
        self.detail = message
        where = f"{self.path}:{line}" if line else self.path
        super().__init__(f"{where}: {message}")


KINDS: dict[str, type[RenderLocalError]] = {
    cls.kind: cls for cls in (InvalidInput, NotFound, Conflict, EngineUnavailable, ControlPlaneUnavailable,
                              StoreCorrupt)
}


def error_from(kind: str | None, message: str, field: str | None = None) -> RenderLocalError:
    """The error an API answer describes (``{"id": kind, "message", "field"}``)."""
    return KINDS.get(kind or "", RenderLocalError)(message, field=field)
