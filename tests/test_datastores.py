"""Databases and Key Value from render.yaml, on the real engine: jobs reach them through
fromDatabase and fromService, their data persists across jobs, a killed control plane and
down/up, and their connection strings work from the host."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from urllib.parse import urlsplit

import httpx
import pytest

from renderlocal.api.token import load_or_create_token
from tests.conftest import wait_until

pytestmark = pytest.mark.docker

BLUEPRINT = """\
services:
  - type: worker
    name: app
    runtime: docker
    rootDir: app
    dockerCommand: sleep 3600
    envVars:
      - key: DATABASE_URL
        fromDatabase: {name: db, property: connectionString}
      - key: PGHOST
        fromDatabase: {name: db, property: host}
      - key: PGPORT
        fromDatabase: {name: db, property: port}
      - key: PGUSER
        fromDatabase: {name: db, property: user}
      - key: PGPASSWORD
        fromDatabase: {name: db, property: password}
      - key: PGDATABASE
        fromDatabase: {name: db, property: database}
  - type: worker
    name: kv-app
    runtime: docker
    rootDir: kv-app
    dockerCommand: sleep 3600
    envVars:
      - key: KV_URL
        fromService: {type: keyvalue, name: cache, property: connectionString}
      - key: KV_HOSTPORT
        fromService: {type: keyvalue, name: cache, property: hostport}
  - type: keyvalue
    name: cache
    maxmemoryPolicy: noeviction
    ipAllowList: []
databases:
  - name: db
    databaseName: appdb
    user: app
"""
# the stand-ins' own clients: psql in postgres:15, redis-cli in redis:7
FILES = {"app/Dockerfile": "FROM postgres:15\n", "kv-app/Dockerfile": "FROM redis:7\n"}


def job_log(plane, service: str, command: str) -> tuple[str, list[str]]:
    job = plane.jobs.wait(plane.create_job(service, command).id, timeout=120)
    return job.status, [line.message for line in plane.logs.read(job.id)]


def store_containers(engine, data_dir, running_only=True):
    return engine.containers.list(all=not running_only, filters={"label": [
        "render-local.store-id", f"render-local.data-dir={data_dir}"]})


def resp(url: str, *args: str) -> str:
    """One command to a Redis-compatible server over its wire protocol: its first reply line."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(f"*{len(args)}\r\n".encode() + b"".join(
            f"${len(arg)}\r\n{arg}\r\n".encode() for arg in args))
        reader = sock.makefile("rb")
        reply = reader.readline().decode().strip()
        if reply.startswith("$") and reply != "$-1":  # a bulk string: its value is on the next line
            return reader.readline().decode().strip()
        return reply


def test_jobs_reach_the_database_and_key_value_and_their_writes_last(started, data_dir, write_blueprint, engine):
    import psycopg

    plane = started(data_dir, write_blueprint(BLUEPRINT, FILES), serve=True)
    assert plane.warnings == []
    for name in ("app", "kv-app"):
        assert plane.build(name, wait=True).status == "succeeded"
    database, cache = plane.state.get_database("db"), plane.state.get_key_value("cache")
    env = plane.get_service("app").envVars
    password = plane.state.password_of(database.id)
    assert env == env | {"PGHOST": database.id, "PGPORT": "5432", "PGUSER": "app", "PGPASSWORD": password,
                         "PGDATABASE": "appdb", "DATABASE_URL": f"postgresql://app:{password}@{database.id}/appdb"}
    assert (data_dir / "secrets" / database.id).stat().st_mode & 0o077 == 0  # the password: owner-only

    # the first job waits for the database to be ready (pg_isready), writes; the next one reads
    status, log = job_log(plane, "app", 'psql "$DATABASE_URL" -c "CREATE TABLE notes (body text)" '
                                        "-c \"INSERT INTO notes VALUES ('kept')\"")
    assert status == "succeeded" and log[-1] == "INSERT 0 1", log
    status, log = job_log(plane, "app", 'psql -tA -c "SELECT body, current_user, current_database() FROM notes"')
    assert status == "succeeded" and log == ["kept|app|appdb"], log  # the PG* properties, without the URL
    status, log = job_log(plane, "app", "pg_isready -h db")  # on the network by its name, too
    assert status == "succeeded" and log == ["db:5432 - accepting connections"], log
    assert plane.state.get_database("db").status == "available"

    # a job reaches Key Value by fromService; maxmemoryPolicy is the blueprint's
    env = plane.get_service("kv-app").envVars
    assert env["KV_URL"] == f"redis://{cache.id}:6379" and env["KV_HOSTPORT"] == f"{cache.id}:6379"
    status, log = job_log(plane, "kv-app", 'redis-cli -u "$KV_URL" SET greeting hello && '
                                           'redis-cli -u "$KV_URL" CONFIG GET maxmemory-policy')
    assert status == "succeeded" and log == ["OK", "maxmemory-policy", "noeviction"], log
    status, log = job_log(plane, "kv-app", 'redis-cli -h "${KV_HOSTPORT%:*}" GET greeting && redis-cli -h cache ping')
    assert status == "succeeded" and log == ["hello", "PONG"], log

    # the connection strings the API gives work from the host
    token = load_or_create_token(plane.data_dir)
    with httpx.Client(base_url=plane.api.url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as api:
        info = api.get(f"/postgres/{database.id}/connection-info").json()
        assert info["internalConnectionString"] == plane.get_service("app").envVars["DATABASE_URL"]
        kv_info = api.get(f"/key-value/{cache.id}/connection-info").json()
        [listed] = api.get("/postgres").json()
        assert listed["postgres"]["id"] == database.id and listed["postgres"]["status"] == "available"
    with psycopg.connect(info["externalConnectionString"], connect_timeout=10) as db:
        assert db.execute("SELECT body FROM notes").fetchall() == [("kept",)]
    assert resp(kv_info["externalConnectionString"], "GET", "greeting") == "hello"


def test_a_pass_does_not_take_a_store_being_started_for_a_lost_one(started, data_dir, write_blueprint):
    """up marks its stores creating, then starts them: a supervisor pass in between saw no container
    and said 'its container is gone' (seen once in CI: up then failed)."""
    plane = started(data_dir, write_blueprint(BLUEPRINT, FILES))
    stores = [*plane.state.list_databases(), *plane.state.list_key_values()]
    ids = [s.id for s in stores]

    def statuses() -> set[str]:
        return {s.status for s in [*plane.state.list_databases(), *plane.state.list_key_values()]}

    plane.datastores.mark_starting(ids)
    plane.datastores.reconcile()  # the pass, before the start made the containers
    assert statuses() == {"creating"}
    plane.datastores.unmark_starting(ids)  # nothing starts them after all
    plane.datastores.reconcile()
    assert statuses() == {"unavailable"}


def test_data_survives_a_killed_control_plane_and_down_up_but_not_down_volumes(engine, data_dir, write_blueprint):
    import psycopg

    from renderlocal.client import discovery

    path = write_blueprint(BLUEPRINT, FILES)
    base = [sys.executable, "-m", "renderlocal", "--data-dir", str(data_dir), "--blueprint", str(path)]

    def cli(*args, fails=False):
        result = subprocess.run(base + list(args), capture_output=True, text=True, timeout=240)
        assert (result.returncode != 0) == fails, (args, result.stdout, result.stderr)
        return result.stdout

    def job(command: str, fails=False) -> list[str]:
        made = json.loads(cli("jobs", "create", "app", "--start-command", command, "--wait", "-o", "json", fails=fails))
        logs = subprocess.run(base + ["logs", "-r", made["id"]], capture_output=True, text=True, timeout=60)
        return [made["status"], *logs.stdout.splitlines(), *logs.stderr.splitlines()]  # stderr's lines to stderr

    def external_url() -> str:
        return json.loads(cli("databases", "get", "db", "-o", "json"))["connectionInfo"]["externalConnectionString"]

    try:
        cli("up")
        assert job('psql -c "CREATE TABLE kept (n int)" -c "INSERT INTO kept VALUES (1)"')[0] == "succeeded"
        first = discovery.read_live(data_dir)
        os.kill(first.pid, signal.SIGKILL)
        wait_until(lambda: not discovery.pid_alive(first.pid))
        assert len(store_containers(engine, data_dir)) == 2  # the database and Key Value outlived it
        assert job("psql -tA -c 'SELECT n FROM kept'") == ["succeeded", "1"]  # a new control plane, same data
        with psycopg.connect(external_url(), connect_timeout=10) as db:  # the CLI's string, from the host
            db.execute("INSERT INTO kept VALUES (2)")

        cli("down")
        assert store_containers(engine, data_dir) == []  # stopped; their volumes stay
        listed = json.loads(cli("databases", "list", "-o", "json"))  # as Render's `render services` shows data stores
        assert [item["postgres"]["status"] for item in listed if "postgres" in item] == ["unavailable"]
        assert [set(item) for item in listed] == [{"postgres"}, {"keyValue"}]
        cli("up")
        assert job("psql -tA -c 'SELECT n FROM kept ORDER BY n'") == ["succeeded", "1", "2"]

        cli("down", "--volumes")
        assert store_containers(engine, data_dir, running_only=False) == []
        cli("up")
        status, *log = job("psql -tA -c 'SELECT n FROM kept'", fails=True)
        assert status == "failed" and any('relation "kept" does not exist' in line for line in log), log
    finally:
        subprocess.run(base + ["down", "--volumes"], capture_output=True, timeout=120)
