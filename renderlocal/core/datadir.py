"""Where a render-local instance keeps its state."""

from __future__ import annotations

import os
from pathlib import Path

ENV_HOME = "RENDER_LOCAL_HOME"


def resolve_data_dir(explicit: str | os.PathLike | None = None) -> Path:
    """``--data-dir`` wins, then ``RENDER_LOCAL_HOME``, then the user data dir."""
    if explicit:
        path = Path(explicit)
    elif os.environ.get(ENV_HOME):
        path = Path(os.environ[ENV_HOME])
    else:
        import platformdirs

        path = Path(platformdirs.user_data_dir("render-local", appauthor=False))
    path = path.expanduser().resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def bundled_blueprint() -> Path:
    return Path(__file__).resolve().parents[2] / "sample_services" / "render.yaml"


def resolve_blueprint(explicit: str | os.PathLike | None = None) -> Path:
    """``--blueprint`` wins, then ``./render.yaml``, then the bundled samples."""
    if explicit:
        return Path(explicit).expanduser().resolve()
    local = Path.cwd() / "render.yaml"
    return local.resolve() if local.exists() else bundled_blueprint()
