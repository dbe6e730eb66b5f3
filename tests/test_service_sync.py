"""Syncing render.yaml into the store: ids and updatedAt stay put unless something changed,
and a changed file or secret is picked up by the next refresh."""

import os

from renderlocal.core.control import ControlPlane

BLUEPRINT = """\
services:
  - type: worker
    name: box
    runtime: docker
    rootDir: app
    envVars:
      - key: MODE
        value: one
      - key: SYNC_TEST_SECRET
        sync: false
"""


def test_updated_at_moves_only_when_the_service_changed(write_blueprint, data_dir):
    path = write_blueprint(BLUEPRINT, {"app/Dockerfile": "FROM busybox:1.36\n"})
    plane = ControlPlane(data_dir, path)
    first = plane.sync_services()[0]
    again = ControlPlane(data_dir, path).sync_services()[0]  # another process, same file
    assert (again.id, again.updatedAt) == (first.id, first.updatedAt)
    path.write_text(BLUEPRINT.replace("value: one", "value: two"))
    changed = ControlPlane(data_dir, path).sync_services()[0]
    assert changed.id == first.id and changed.updatedAt > first.updatedAt
    assert changed.envVars["MODE"] == "two"


def test_refresh_picks_up_an_edited_file_and_a_changed_secret(write_blueprint, data_dir, monkeypatch):
    path = write_blueprint(BLUEPRINT, {"app/Dockerfile": "FROM busybox:1.36\n"})
    monkeypatch.delenv("SYNC_TEST_SECRET", raising=False)
    plane = ControlPlane(data_dir, path)
    plane.refresh()
    assert "SYNC_TEST_SECRET" not in plane.get_service("box").envVars
    monkeypatch.setenv("SYNC_TEST_SECRET", "s3cret")
    plane.refresh()
    assert plane.get_service("box").envVars["SYNC_TEST_SECRET"] == "s3cret"
    text = BLUEPRINT.replace("value: one", "value: three")
    path.write_text(text)
    os.utime(path, ns=(1, 1))  # even an edit that keeps an old mtime changes size or inode here
    plane.refresh()
    assert plane.get_service("box").envVars["MODE"] == "three"


def test_a_sync_by_another_process_of_another_blueprint_is_noticed(write_blueprint, data_dir, tmp_path):
    path = write_blueprint(BLUEPRINT, {"app/Dockerfile": "FROM busybox:1.36\n"})
    other = tmp_path / "other.yaml"
    other.write_text(BLUEPRINT.replace("rootDir: app", f"rootDir: {path.parent / 'app'}").replace("value: one", "value: other"))
    plane = ControlPlane(data_dir, path)
    plane.refresh()
    ControlPlane(data_dir, other).refresh()  # the same service name, synced from elsewhere
    assert plane.get_service("box").envVars["MODE"] == "other"
    plane.refresh()
    assert plane.get_service("box").envVars["MODE"] == "one"
