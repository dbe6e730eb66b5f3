"""Syncing render.yaml into the store: ids and updatedAt stay put unless something changed,
and a changed file or secret is picked up by the next refresh."""

import os

from renderlocal.executor.control import ControlPlane

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
    first = plane.services.sync()[0]
    again = ControlPlane(data_dir, path).services.sync()[0]  # another process, same file
    assert (again.id, again.updatedAt) == (first.id, first.updatedAt)
    path.write_text(BLUEPRINT.replace("value: one", "value: two"))
    changed = ControlPlane(data_dir, path).services.sync()[0]
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


def test_one_control_plane_per_data_dir(write_blueprint, data_dir):
    """Exactly one process holds a data dir's control plane; the next one may start once it closed."""
    import pytest

    from renderlocal.core.errors import Conflict
    from renderlocal.executor.election import ControlPlaneRunning

    path = write_blueprint(BLUEPRINT, {"app/Dockerfile": "FROM busybox:1.36\n"})
    first = ControlPlane(data_dir, path).start(loop=False)
    try:
        with pytest.raises(ControlPlaneRunning, match=f"a control plane already runs for {data_dir}"):
            ControlPlane(data_dir, path).start(loop=False)
        idle = ControlPlane(data_dir, path)
        with pytest.raises(Conflict, match="is not the control plane"):  # no command runs without the lock
            idle.create_job("box", "true")
    finally:
        first.close()
    second = ControlPlane(data_dir, path).start(loop=False)
    second.close()
