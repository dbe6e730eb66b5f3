"""Shared fixtures. Docker tests use the real engine: they skip without one,
except under CI=true, where a missing engine fails the run."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

# With no control plane running, the CLI starts one in the background; the CLIs
# that tests run do the work in-process instead, unless a test asks for it.
os.environ["RENDER_LOCAL_AUTOSTART"] = "0"

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_services" / "render.yaml"
BUSYBOX = "busybox:1.36"
PYTHON = "python:3.11-slim"


def _engine_or_reason():
    try:
        from renderlocal.core.engine import connect

        return connect(), None
    except Exception as exc:  # EngineUnavailable, or docker SDK import trouble
        return None, str(exc)


@pytest.fixture(scope="session")
def engine():
    client, reason = _engine_or_reason()
    if client is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but no Docker engine answers: {reason}")
        pytest.skip(f"needs a Docker engine: {reason}")
    for image in (BUSYBOX, PYTHON):
        try:
            client.images.get(image)
        except Exception:
            pytest.fail(f"base image {image} is missing; run .ci/base-images to make it offline")
    return client


@pytest.fixture
def data_dir(tmp_path) -> Path:
    path = tmp_path / "data"
    path.mkdir()
    return path


@pytest.fixture
def write_blueprint(tmp_path):
    """Write a render.yaml (dedented) plus extra files; returns its path."""

    def write(yaml_text: str, files: dict[str, str] | None = None) -> Path:
        root = tmp_path / "project"
        root.mkdir(exist_ok=True)
        for name, body in (files or {}).items():
            target = root / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(textwrap.dedent(body))
        path = root / "render.yaml"
        path.write_text(textwrap.dedent(yaml_text))
        return path

    return write
