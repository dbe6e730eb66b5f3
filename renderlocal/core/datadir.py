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


def samples_dir() -> Path:
    """The bundled demo services.

    ``renderlocal/samples`` is a real folder in an installed wheel and, in a
    clone or an editable install, a symlink to the top-level
    ``sample_services/``, which this resolves to. A checkout without the
    symlink (``core.symlinks=false``) falls back to ``sample_services/``.
    """
    package = Path(__file__).resolve().parents[1]
    packaged = package / "samples"
    if packaged.is_dir():
        return packaged.resolve()
    return package.parent / "sample_services"


def bundled_blueprint() -> Path:
    return samples_dir() / "render.yaml"


def resolve_blueprint(explicit: str | os.PathLike | None = None) -> Path:
    """``--blueprint`` wins (it must exist: another one is never loaded instead), then
    ``./render.yaml``, then the bundled samples."""
    if explicit:
        path = Path(explicit).expanduser().resolve()
        if not path.is_file():
            from renderlocal.core.errors import InvalidInput

            raise InvalidInput(f"blueprint {path} does not exist" if not path.exists()
                               else f"blueprint {path} is not a file", field="blueprint")
        return path
    local = Path.cwd() / "render.yaml"
    return local.resolve() if local.exists() else bundled_blueprint()
