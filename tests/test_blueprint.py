import pytest

from renderlocal.core.blueprint import load_blueprint
from renderlocal.core.errors import BlueprintError
from tests.conftest import SAMPLES

GOOD = """\
services:
  - type: worker
    name: jobs
    runtime: docker
    plan: pro plus
    rootDir: app
    dockerfilePath: ./docker/Dockerfile
    region: oregon
    envVars:
      - key: A
        value: 1
      - fromGroup: common
      - key: TOKEN
        generateValue: true
      - key: SECRET
        sync: false
  - type: cron
    name: nightly
    runtime: python
    schedule: "0 3 * * *"
    startCommand: python job.py
databases:
  - name: db
envVarGroups:
  - name: common
    envVars:
      - key: A
        value: from-group
      - key: B
        value: b
"""


def test_loads_services_with_paths_relative_to_the_blueprint(write_blueprint):
    path = write_blueprint(GOOD, {"app/docker/Dockerfile": "FROM busybox:1.36\n"})
    blueprint = load_blueprint(path)
    jobs, nightly = blueprint.services
    assert (jobs.type, jobs.runtime, jobs.plan_id) == ("worker", "docker", "plan-srv-011")
    assert jobs.dockerfile_path == path.parent / "app" / "docker" / "Dockerfile"
    assert jobs.docker_context == path.parent / "app"
    env = {v.key: v for v in jobs.env_vars}
    assert env["A"].value == "1"  # the service's own value beats the group's
    assert env["B"].value == "b"
    assert env["TOKEN"].generate and env["SECRET"].secret
    assert (nightly.plan_id, nightly.schedule) == ("plan-crn-003", "0 3 * * *")
    warnings = "\n".join(blueprint.warnings)
    assert "'region' is not emulated" in warnings and "render.yaml:8" in warnings
    [db] = blueprint.databases  # Render's defaults: the newest PostgreSQL, basic-256mb
    assert (db.name, db.plan, db.memory_mb, db.version, db.database_name, db.user) == (
        "db", "basic_256mb", 256, 18, None, None)


def test_malformed_yaml_names_the_line(write_blueprint):
    path = write_blueprint("services:\n  - type: web\n    name: [oops\n    runtime: docker\n")
    with pytest.raises(BlueprintError) as err:
        load_blueprint(path)
    assert err.value.path == str(path)
    assert err.value.line in (3, 4)
    assert str(err.value).startswith(f"{path}:{err.value.line}: malformed YAML")


@pytest.mark.parametrize(
    "body,line,words",
    [
        ("services:\n  - type: web\n    name: a\n    runtime: cobol\n", 4, "'runtime' must be one of"),
        ("services:\n  - type: web\n    name: a\n    runtime: docker\n    plan: gigantic\n", 5, "unknown plan 'gigantic'"),
        ("services:\n  - type: cron\n    name: a\n    runtime: docker\n    plan: pro ultra\n    schedule: '* * * * *'\n", 5, "valid: starter, standard, pro, pro plus"),
        ("services:\n  - type: queue\n    name: a\n    runtime: docker\n", 2, "'type' must be one of"),
        ("services:\n  - type: cron\n    name: a\n    runtime: docker\n", 2, "needs a 'schedule'"),
        ("services:\n  - type: web\n    name: a\n    runtime: docker\n    envVars:\n      - key: X\n", 6, "X needs 'value'"),
        ("services:\n  - type: web\n    name: a\n    runtime: docker\n  - type: web\n    name: a\n    runtime: docker\n", 5, "duplicate service name 'a'"),
        ("services: []\n", 1, "non-empty list"),
        ("services:\n  - type: web\n    name: a\n    runtime: docker\n    envVars:\n      - key: D\n"
         "        fromDatabase: {name: nope, property: connectionString}\n", 6, "database 'nope', which is not in"),
        ("services:\n  - type: web\n    name: a\n    runtime: docker\n    envVars:\n      - key: D\n"
         "        fromDatabase: {name: db, property: url}\ndatabases:\n  - name: db\n", 6,
         "fromDatabase property 'url' of D is not one of connectionString, host"),
        ("databases:\n  - name: db\n    postgresMajorVersion: 9\n", 3, "'postgresMajorVersion' must be one of 11..18"),
        ("databases:\n  - name: db\n    plan: huge\n", 3, "unknown Postgres plan 'huge'"),
        ("databases:\n  - name: db\n  - name: db\n", 3, "duplicate database name 'db' (first at line 2)"),
        ("databases:\n  - name: db\n    databaseName: Bad-Name\n", 3, "'databaseName' must be a lowercase identifier"),
        ("services:\n  - type: keyvalue\n    name: kv\n", 2, "'ipAllowList' is required for Key Value"),
        ("services:\n  - type: keyvalue\n    name: kv\n    ipAllowList: []\n    maxmemoryPolicy: lru\n", 5,
         "'maxmemoryPolicy' must be one of noeviction"),
        ("services:\n  - type: web\n    name: a\n    runtime: docker\n    envVars:\n      - key: D\n"
         "        fromService: {type: keyvalue, name: kv, property: password}\n  - type: keyvalue\n    name: kv\n"
         "    ipAllowList: []\n", 6, "'password' of D is not one of connectionString, host, port, hostport"),
    ],
)
def test_wrong_fields_name_line_and_problem(write_blueprint, body, line, words):
    path = write_blueprint(body)
    with pytest.raises(BlueprintError) as err:
        load_blueprint(path)
    assert err.value.line == line, str(err.value)
    assert words in str(err.value)


def test_missing_blueprint_is_a_clear_error(tmp_path):
    with pytest.raises(BlueprintError, match="blueprint not found"):
        load_blueprint(tmp_path / "nope.yaml")


def test_bundled_samples_load_cleanly():
    blueprint = load_blueprint(SAMPLES)
    assert {s.type for s in blueprint.services} >= {"web", "worker", "pserv", "cron"}
    assert blueprint.warnings == []
