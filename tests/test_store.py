import json
import multiprocessing
import subprocess
import sys

import pytest

from renderlocal.executor.control import ControlPlane
from renderlocal.core.errors import StoreCorrupt
from renderlocal.core.ids import looks_like_id
from renderlocal.core.store import Store
from tests.conftest import SAMPLES


def _writer(root, worker, count):
    store = Store(root)
    for n in range(count):
        store.insert("builds", {"id": f"bld-{worker}-{n}", "n": n})
        store.update("settings", "counter", lambda d: d.update(value=d["value"] + 1))


def test_two_processes_writing_at_once_lose_nothing(tmp_path):
    root = tmp_path / "store"
    Store(root).insert("settings", {"id": "counter", "value": 0})
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(root, w, 40)) for w in range(2)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(60)
        assert proc.exitcode == 0
    store = Store(root)
    ids = {doc["id"] for doc in store.all("builds")}
    assert ids == {f"bld-{w}-{n}" for w in range(2) for n in range(40)}
    assert store.get("settings", "counter")["value"] == 80
    json.loads((root / "builds.json").read_text())  # still valid JSON


def test_truncated_store_is_set_aside_with_a_clear_error(tmp_path):
    store = Store(tmp_path / "store")
    for n in range(20):
        store.insert("builds", {"id": f"bld-{n}", "payload": "x" * 50})
    path = tmp_path / "store" / "builds.json"
    original = path.read_bytes()
    path.write_bytes(original[: len(original) // 2])
    with pytest.raises(StoreCorrupt) as err:
        store.all("builds")
    message = str(err.value)
    assert "builds.json is unreadable" in message and "moved to builds.json.corrupt-" in message
    aside = list(path.parent.glob("builds.json.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_bytes() == original[: len(original) // 2]
    assert not path.exists()
    assert store.all("builds") == []  # the next run starts empty, the bad file kept aside


def test_cli_reports_a_corrupt_store_in_one_line_and_carries_on(tmp_path):
    data = tmp_path / "data"
    (data / "store").mkdir(parents=True)
    (data / "store" / "services.json").write_text('{"services": {"1": {"id": ')
    result = subprocess.run(
        [sys.executable, "-m", "renderlocal", "--data-dir", str(data), "--blueprint", str(SAMPLES), "services", "list"],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0  # the services are synced again from render.yaml (issue 17, item 8)
    said = [line for line in result.stderr.splitlines() if "services.json is damaged" in line]
    assert len(said) == 1 and said[0].startswith("render-local: warning: store file") and "Traceback" not in result.stderr
    assert list((data / "store").glob("services.json.corrupt-*"))


def test_service_ids_are_stable_and_generated_values_kept(data_dir):
    first = {s.name: s for s in ControlPlane(data_dir, SAMPLES).services.sync()}
    second = {s.name: s for s in ControlPlane(data_dir, SAMPLES).services.sync()}
    for name, service in first.items():
        assert looks_like_id(service.id, "crn" if service.type == "cron" else "srv")
        assert second[name].id == service.id
    assert first["shop-web"].envVars["SECRET_KEY"] == second["shop-web"].envVars["SECRET_KEY"]
    assert len(first["shop-web"].envVars["SECRET_KEY"]) >= 32


def test_a_crash_mid_write_leaves_the_previous_version(tmp_path, monkeypatch):
    store = Store(tmp_path / "store")
    store.insert("builds", {"id": "bld-a"})

    def boom(*_args, **_kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("renderlocal.core.store.os.replace", boom)
    with pytest.raises(OSError):
        store.insert("builds", {"id": "bld-b"})
    monkeypatch.undo()
    assert [d["id"] for d in store.all("builds")] == ["bld-a"]
    assert not list((tmp_path / "store").glob("*.tmp"))
