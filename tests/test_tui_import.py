"""The terminal app must open fast: importing it does not import the Docker SDK."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_importing_the_app_does_not_import_docker():
    code = "import renderlocal.tui.app, sys; print('docker' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_composing_the_app_does_not_touch_the_engine(tmp_path):
    """Mount every screen on a plane whose engine would fail: nothing asks for it."""
    code = f"""
import asyncio, sys
from renderlocal.executor.control import ControlPlane
from renderlocal.tui.app import RenderLocalApp

touched = []

class NoEngine:
    id = "default"

    @property
    def client(self):
        touched.append(True)
        raise AssertionError("the engine was touched")

    api = client

(p := __import__("pathlib").Path({str(tmp_path)!r}) / "render.yaml").write_text(
    "services:\\n  - type: worker\\n    name: w\\n    runtime: docker\\n    dockerCommand: echo hi\\n")
plane = ControlPlane({str(tmp_path / 'data')!r}, str(p))
plane.engine = plane.jobs.engine = plane.builds.engine = NoEngine()
plane.services.sync()

async def main():
    app = RenderLocalApp(plane, live=False, cursor_blink=False)
    async with app.run_test() as pilot:
        for key in ("2", "3", "1", "n", "escape", "l", "escape", "question_mark", "escape"):
            await pilot.press(key)
            await pilot.pause(0.2)
asyncio.run(main())
print(bool(touched), 'docker' in sys.modules)
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "False False"
