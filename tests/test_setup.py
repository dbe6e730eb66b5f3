"""The README's first step works on a stock machine: `.ci/setup` with only the system's PATH
(no pyenv, no activated environment) makes or refreshes .venv and leaves an engine answering."""

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.docker


def test_setup_runs_with_only_the_systems_path():
    if not (REPO / ".venv" / "bin" / "python").exists() and os.environ.get("CI") != "true":
        pytest.skip("makes .venv (a few minutes of installs): runs in CI, or once .ci/setup made .venv")
    done = subprocess.run(["env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", f"HOME={os.environ.get('HOME', '/root')}",
                           "bash", str(REPO / ".ci" / "setup")], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "setup: done" in done.stdout
    version = subprocess.run([str(REPO / ".venv" / "bin" / "render-local"), "--version"], capture_output=True, text=True,
                             timeout=60)
    assert version.returncode == 0 and version.stdout.startswith("render-local"), version.stdout + version.stderr
