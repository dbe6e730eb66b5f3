"""Errors the faces show to users: each carries one clear line of text."""


class RenderLocalError(Exception):
    """Base of every error meant for a user; ``str(err)`` is the message."""

    status = 400  # HTTP status the API maps it to
    code = "bad_request"


class InvalidInput(RenderLocalError):
    status = 400
    code = "bad_request"


class NotFound(RenderLocalError):
    status = 404
    code = "not_found"


class Conflict(RenderLocalError):
    status = 409
    code = "conflict"


class EngineUnavailable(RenderLocalError):
    status = 503
    code = "engine_unavailable"


class StoreCorrupt(RenderLocalError):
    status = 500
    code = "store_corrupt"


class BlueprintError(RenderLocalError):
    """A render.yaml problem, located by file and line."""

    def __init__(self, path, line: int | None, message: str):
        self.path = str(path)
        self.line = line
        self.detail = message
        where = f"{self.path}:{line}" if line else self.path
        super().__init__(f"{where}: {message}")
