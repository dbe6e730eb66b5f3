"""The built wheel carries the bundled samples, and an installed render-local
finds them from any folder: build the wheel, install it into a fresh venv (no
system site-packages), run the CLI from an empty directory.

Installing pulls the dependencies from the package index: without one the
test skips, except under CI=true, where it fails."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_services"
SERVICES = {"shop-web", "queue-worker", "reports", "nightly"}
DOCKER_SAMPLES = ("shop-web", "queue-worker", "nightly")  # reports is native (runtime: python)
PIP_TIMEOUT = 300
# What pip prints when it cannot reach the index (as opposed to a broken wheel).
OFFLINE_MARKERS = (
    "No matching distribution found",
    "Could not find a version that satisfies",
    "NewConnectionError",
    "Max retries exceeded",
    "Temporary failure in name resolution",
    "Network is unreachable",
    "Name or service not known",
    "ProxyError",
    "ConnectTimeoutError",
    "ReadTimeoutError",
)
# Left out of the copy the wheel is built from: caches, earlier builds, state.
SOURCE_IGNORE = shutil.ignore_patterns(
    ".git", "__pycache__", "*.pyc", "*.egg-info", "build", "dist", ".venv", ".render-local", ".pytest_cache"
)


def _pip(args: list[str], what: str) -> subprocess.CompletedProcess:
    try:
        result = subprocess.run(args, capture_output=True, text=True, timeout=PIP_TIMEOUT)
    except subprocess.TimeoutExpired as exc:
        _offline_or_fail(f"{what} took over {PIP_TIMEOUT}s: {exc}")
    if result.returncode != 0:
        output = result.stdout + result.stderr
        reason = f"{what} failed (exit {result.returncode}):\n{output[-3000:]}"
        if any(marker in output for marker in OFFLINE_MARKERS):
            _offline_or_fail(reason)
        pytest.fail(reason)
    return result


def _offline_or_fail(reason: str):
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but the package index is out of reach: {reason}")
    pytest.skip(f"needs the package index: {reason}")


def _clean_env(**extra: str) -> dict[str, str]:
    """This environment minus whatever could point the venv at the clone."""
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "RENDER_LOCAL_HOME", "PYTHONSTARTUP"}}
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def wheel_path(tmp_path_factory) -> Path:
    """Build the wheel from a copy of the working tree, so no build/ or
    *.egg-info is left in the clone and no stale build/lib can leak in."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "src"
    shutil.copytree(ROOT, source, symlinks=True, ignore=SOURCE_IGNORE)
    out = work / "dist"
    _pip([sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "-q", "-w", str(out)], "building the wheel")
    wheels = list(out.glob("render_local-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


@pytest.fixture(scope="module")
def installed_venv(wheel_path, tmp_path_factory) -> Path:
    """A fresh venv (no system site-packages) with the wheel installed; returns the venv's folder."""
    venv = tmp_path_factory.mktemp("venv") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True, timeout=PIP_TIMEOUT)
    python = venv / "bin" / "python"
    _pip([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(wheel_path)], "installing the wheel")
    assert (venv / "bin" / "render-local").exists()
    return venv


def test_wheel_ships_the_samples_inside_the_package(wheel_path):
    names = zipfile.ZipFile(wheel_path).namelist()
    prefix = "renderlocal/samples/"
    assert f"{prefix}render.yaml" in names
    for sample in DOCKER_SAMPLES:
        assert f"{prefix}{sample}/Dockerfile" in names
    # Every sample file, nothing else: no bytecode, caches or databases.
    expected = {
        prefix + path.relative_to(SAMPLES).as_posix()
        for path in SAMPLES.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix not in {".pyc", ".pyo", ".db"}
    }
    assert expected <= set(names), sorted(expected - set(names))
    shipped = {name for name in names if name.startswith(prefix)}
    assert shipped == expected, sorted(shipped - expected)
    assert not [n for n in names if n.endswith((".pyc", ".pyo", ".db")) or "__pycache__/" in n]
    assert not [n for n in names if n.startswith("sample_services/")]  # inside the package only


def test_installed_cli_lists_the_bundled_services_from_an_empty_folder(installed_venv, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    env = _clean_env()
    python = installed_venv / "bin" / "python"

    where = subprocess.run(
        [str(python), "-c", "from renderlocal.core.datadir import bundled_blueprint; print(bundled_blueprint())"],
        capture_output=True, text=True, timeout=60, cwd=empty, env=env,
    )
    assert where.returncode == 0, where.stderr
    blueprint = Path(where.stdout.strip())
    assert blueprint.is_file() and blueprint.is_relative_to(installed_venv.resolve()), blueprint  # the installed copy, not the clone's

    result = subprocess.run(
        [str(installed_venv / "bin" / "render-local"), "--data-dir", str(tmp_path / "data"), "services", "list", "-o", "json"],
        capture_output=True, text=True, timeout=120, cwd=empty, env=env,
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    assert {item["service"]["name"] for item in json.loads(result.stdout)} == SERVICES
    assert not list(empty.iterdir())  # nothing written to the working folder


def test_installed_package_runs_a_job_on_the_bundled_samples_from_an_empty_folder(installed_venv, tmp_path, engine):
    """The control plane the installed CLI starts builds the bundled worker and runs a job on it."""
    empty = tmp_path / "empty"
    empty.mkdir()
    render_local = [str(installed_venv / "bin" / "render-local"), "--data-dir", str(tmp_path / "data")]
    env = _clean_env()
    built = subprocess.run(render_local + ["builds", "create", "queue-worker", "--wait"],
                           capture_output=True, text=True, timeout=300, cwd=empty, env=env)
    assert built.returncode == 0, built.stderr
    ran = subprocess.run(render_local + ["jobs", "create", "queue-worker", "--start-command", "python batch.py 2026-01-01",
                                         "--wait", "-o", "json"], capture_output=True, text=True, timeout=300, cwd=empty, env=env)
    assert ran.returncode == 0, ran.stderr
    job = json.loads(ran.stdout)
    assert job["status"] == "succeeded" and job["exitCode"] == 0
    logs = subprocess.run(render_local + ["logs", "-r", job["id"]], capture_output=True, text=True, timeout=60, cwd=empty, env=env)
    assert "2026-01-01" in logs.stdout, logs.stdout + logs.stderr
    assert not list(empty.iterdir())
    init = subprocess.run(render_local + ["init", "samples"], capture_output=True, text=True, timeout=60, cwd=empty, env=env)
    assert init.returncode == 0 and (empty / "samples" / "render.yaml").is_file() and (empty / "samples" / "shop-web" / "Dockerfile").is_file()
    assert not list((empty / "samples").rglob("__pycache__"))
    again = subprocess.run(render_local + ["init", "samples"], capture_output=True, text=True, timeout=60, cwd=empty, env=env)
    assert again.returncode == 2 and "already has" in again.stderr
