"""The CLI speaks Render's CLI where it has a habit (render-oss/cli: cmd/root.go, cmd/jobcancel.go,
cmd/joblist.go, cmd/deploylist.go, cmd/service.go, cmd/logs.go), on a real engine and control plane."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import timedelta, timezone

import pytest
import yaml

from renderlocal.core.clock import parse_rfc3339
from tests.conftest import wait_until

pytestmark = pytest.mark.docker

BLUEPRINT = """\
services:
  - type: worker
    name: box
    runtime: docker
    rootDir: app
    dockerCommand: "echo box-up; sleep 3600"
    maxShutdownDelaySeconds: 1
  - type: worker
    name: other
    runtime: docker
    rootDir: app
    dockerCommand: echo from-other
"""


def cli(base, *args, env=None, timeout=120, importtime=False):
    extra = ["-X", "importtime"] if importtime else []
    return subprocess.run([base[0], *extra, *base[1:], *args], capture_output=True, text=True, timeout=timeout,
                          env=env, stdin=subprocess.DEVNULL)


def ok(base, *args, **kwargs) -> str:
    result = cli(base, *args, **kwargs)
    assert result.returncode == 0, (args, result.stdout, result.stderr)
    return result.stdout


def one_line_error(result, *words) -> None:
    assert result.returncode == 2, (result.stdout, result.stderr)
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("render-local: error: ") and all(w in line for w in words), line


@pytest.fixture(scope="module")
def project(engine, tmp_path_factory):
    """A served data dir with box built and deployed (its instance logs box-up), other built."""
    root = tmp_path_factory.mktemp("habits")
    (root / "app").mkdir()
    (root / "app" / "Dockerfile").write_text("FROM busybox:1.36\n")
    (root / "render.yaml").write_text(BLUEPRINT)
    base = [sys.executable, "-m", "renderlocal", "--data-dir", str(root / "data"), "--blueprint", str(root / "render.yaml")]
    server = subprocess.Popen(base + ["serve", "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert server.stdout.readline().startswith("http://127.0.0.1:")
        ok(base, "up", "box", timeout=240)
        ok(base, "builds", "create", "other", "--wait", timeout=240)
        yield base
        cli(base, "down")
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)
        from tests.conftest import remove_networks

        remove_networks(root)


def job(base, command: str, service: str = "other", wait: bool = True) -> dict:
    return json.loads(ok(base, "jobs", "create", service, "--start-command", command, *(["--wait"] if wait else []), "-o", "json"))


def started_job(base, command: str) -> dict:
    made = job(base, command, wait=False)
    wait_until(lambda: json.loads(ok(base, "jobs", "get", made["id"], "-o", "json"))["status"] == "running", 60)
    return made


def test_jobs_list_of_every_service_says_whose_each_job_is(project):
    base = project
    made = job(base, "echo whose", service="other")
    lines = ok(base, "jobs", "list").splitlines()
    assert lines[0].split()[:3] == ["ID", "SERVICE", "STATUS"]
    assert next(line for line in lines if line.startswith(made["id"])).split()[1] == "other"
    assert ok(base, "jobs", "list", "other").splitlines()[0].split()[:2] == ["ID", "STATUS"]  # one service's: no column


# -- 1. jobs cancel SERVICE JOB -----------------------------------------------------------------
def test_jobs_cancel_takes_the_service_then_the_job_as_render(project):
    base = project
    by_name = started_job(base, "sleep 60")
    canceled = json.loads(ok(base, "jobs", "cancel", "other", by_name["id"], "--confirm", "-o", "json"))
    assert canceled["id"] == by_name["id"] and canceled["status"] == "canceled"

    other_id = json.loads(ok(base, "services", "get", "other", "-o", "json"))["id"]
    by_id = started_job(base, "sleep 60")
    assert json.loads(ok(base, "jobs", "cancel", other_id, by_id["id"], "--confirm", "-o", "json"))["status"] == "canceled"

    alone = started_job(base, "sleep 60")  # render-local's own form goes on working
    assert json.loads(ok(base, "jobs", "cancel", alone["id"], "--confirm", "-o", "json"))["status"] == "canceled"


def test_jobs_cancel_of_a_job_of_another_service_names_both_and_cancels_nothing(project):
    base = project
    running = started_job(base, "sleep 60")
    box_id = json.loads(ok(base, "services", "get", "box", "-o", "json"))["id"]
    wrong = cli(base, "jobs", "cancel", "box", running["id"], "--confirm")
    one_line_error(wrong, running["id"], "box", box_id, "other", running["serviceId"])
    assert json.loads(ok(base, "jobs", "get", running["id"], "-o", "json"))["status"] == "running"
    too_many = cli(base, "jobs", "cancel", "other", running["id"], "extra", "--confirm")
    assert too_many.returncode == 2 and "give JOB, or SERVICE JOB" in too_many.stderr
    ok(base, "jobs", "cancel", "other", running["id"], "--confirm")


# -- 2. -o and --confirm as global options ----------------------------------------------------
def test_confirm_before_the_command_skips_the_question(project):
    base = project
    running = started_job(base, "sleep 60")
    asked = cli(base, "jobs", "cancel", "other", running["id"])  # no terminal, no --confirm: refused
    assert asked.returncode == 2 and "--confirm" in asked.stderr
    canceled = json.loads(ok(base, "--confirm", "-o", "json", "jobs", "cancel", "other", running["id"]))
    assert canceled["status"] == "canceled"


def test_output_before_the_command_and_the_commands_own_wins(project):
    base = project
    made = job(base, "echo hi")
    listed = json.loads(ok(base, "-o", "json", "jobs", "list", "other"))
    assert made["id"] in [j["id"] for j in listed]
    assert yaml.safe_load(ok(base, "--output", "yaml", "jobs", "get", made["id"]))["id"] == made["id"]
    own = ok(base, "-o", "json", "jobs", "get", made["id"], "-o", "text")  # the command's own -o wins
    assert own.splitlines()[0].split()[:2] == ["ID", "STATUS"] and made["id"] in own
    for interactive in (["-o", "interactive"], ["-o", "INTERACTIVE"]):  # Render's default: text here
        text = ok(base, *interactive, "jobs", "get", made["id"])
        assert text.splitlines()[0].split()[:2] == ["ID", "STATUS"]
    assert json.loads(ok(base, "jobs", "get", made["id"], "-o", "JSON"))["id"] == made["id"]  # any case, as Render's
    forced = ok(base, "jobs", "get", made["id"], env=os.environ | {"RENDER_OUTPUT": "json"})  # Render's env var
    assert json.loads(forced)["id"] == made["id"]
    bad = cli(base, "-o", "xml", "jobs", "list")
    assert bad.returncode == 2 and "xml" in bad.stderr


def test_help_lists_the_global_options(project):
    shown = ok(project, "--help")
    assert "-o, --output FORMAT" in shown and "--confirm" in shown and "--data-dir" in shown


# -- 3. lists print what Render's CLI prints ----------------------------------------------------
def test_list_json_is_what_render_cli_prints(project):
    base = project
    made = job(base, "echo listed")
    jobs = json.loads(ok(base, "jobs", "list", "other", "-o", "json"))  # bare jobs (cmd/joblist.go)
    assert all(set(j) >= {"id", "serviceId", "status", "startCommand"} and "job" not in j and "cursor" not in j for j in jobs)
    assert jobs[0]["id"] == made["id"]  # newest first
    every = json.loads(ok(base, "-o", "json", "jobs", "list"))
    assert made["id"] in [j["id"] for j in every] and all(j["id"].startswith("job-") for j in every)

    [deploy] = json.loads(ok(base, "deploys", "list", "box", "-o", "json"))  # bare deploys (cmd/deploylist.go)
    assert deploy["id"].startswith("dep-") and deploy["status"] == "live" and "deploy" not in deploy

    services = json.loads(ok(base, "services", "list", "-o", "json"))  # {"service": ...} (pkg/service/model.go)
    assert [set(item) for item in services] == [{"service"}, {"service"}]
    assert sorted(item["service"]["name"] for item in services) == ["box", "other"]

    as_yaml = yaml.safe_load(ok(base, "-o", "yaml", "jobs", "list", "other"))
    assert [j["id"] for j in as_yaml] == [j["id"] for j in json.loads(ok(base, "jobs", "list", "other", "-o", "json"))]
    assert all(b["id"].startswith("bld-") for b in json.loads(ok(base, "builds", "list", "box", "-o", "json")))
    assert json.loads(ok(base, "databases", "list", "-o", "json")) == []  # none in this blueprint


# -- 5. services alone lists them ----------------------------------------------------------------
def test_services_alone_lists_the_services(project):
    base = project
    text = ok(base, "services")
    assert text.splitlines()[0].split()[:3] == ["ID", "NAME", "TYPE"] and "box" in text and "other" in text
    assert text == ok(base, "services", "list")
    for args in (["services", "-o", "json"], ["-o", "json", "services"]):
        assert json.loads(ok(base, *args)) == json.loads(ok(base, "services", "list", "-o", "json"))
    assert json.loads(ok(base, "services", "-o", "json", "get", "box"))["name"] == "box"  # a group's -o: its commands'


# -- 4. logs: several resources, Render's filters ----------------------------------------------
@pytest.fixture(scope="module")
def two_jobs(project):
    """Two jobs whose lines interleave in time (stdout and stderr)."""
    base = project
    first = job(base, "echo a1; sleep 4; echo A2-err >&2; sleep 4; echo a3", wait=False)
    second = job(base, "sleep 2; echo b1; sleep 4; echo b2-ERR >&2", wait=False)  # 2 s apart: either may start first
    for made in (first, second):
        wait_until(lambda: json.loads(ok(base, "jobs", "get", made["id"], "-o", "json"))["status"] == "succeeded", 60)
    entries = [json.loads(line) for line in ok(base, "logs", "-r", f"{first['id']},{second['id']}", "-o", "json").splitlines()]
    return first, second, entries


def label(entry: dict, name: str) -> str:
    return next(item["value"] for item in entry["labels"] if item["name"] == name)


def test_logs_of_several_resources_interleave_in_time_each_line_prefixed(project, two_jobs):
    base = project
    first, second, entries = two_jobs
    assert [e["timestamp"] for e in entries] == sorted(e["timestamp"] for e in entries)
    assert [e["message"] for e in entries] == ["a1", "b1", "A2-err", "b2-ERR", "a3"]
    assert [label(e, "resource") for e in entries] == [first["id"], second["id"], first["id"], second["id"], first["id"]]
    assert {label(e, "level") for e in entries if "err" in e["message"].lower()} == {"error"}
    expected = [f"[{label(e, 'resource')}] {e['message']}" for e in entries]
    for args in (["-r", first["id"], "-r", second["id"]], ["-r", f"{first['id']},{second['id']}"],
                 ["--resources", f"{first['id']}, {second['id']}"]):
        shown = cli(base, "logs", *args)
        assert shown.returncode == 0, shown.stderr
        assert shown.stdout.splitlines() == [line for line in expected if "err" not in line.lower()]
        assert shown.stderr.splitlines() == [line for line in expected if "err" in line.lower()]  # stderr's lines
    alone = cli(base, "logs", "-r", first["id"])  # one resource: no prefix, as before
    assert alone.stdout.splitlines() == ["a1", "a3"] and alone.stderr.splitlines() == ["A2-err"]


def test_logs_by_service_name_beside_a_job(project, two_jobs):
    base = project
    first, _second, _entries = two_jobs
    shown = cli(base, "logs", "-r", f"box,{first['id']}")  # a service by name: every instance's lines
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines()[0] == "[box] box-up" and f"[{first['id']}] a1" in shown.stdout.splitlines()


def test_logs_text_level_type_direction_limit(project, two_jobs):
    base = project
    first, second, entries = two_jobs
    both = f"{first['id']},{second['id']}"

    def messages(*args) -> list[str]:
        return [json.loads(line)["message"] for line in ok(base, "logs", "-r", both, "-o", "json", *args).splitlines()]

    assert messages("--text", "a1,B1") == ["a1", "b1"]  # comma-separated terms, any case
    assert messages("--text", "a1", "--text", "a3") == ["a1", "a3"]  # repeated too
    assert messages("--text", "*err") == ["A2-err", "b2-ERR"]  # a wildcard
    assert messages("--text", "/^[ab][13]$/") == ["a1", "b1", "a3"]  # a regular expression
    assert messages("--text", "/^a{1,2}3$/") == ["a3"]  # its commas are its own
    assert messages("--level", "error") == ["A2-err", "b2-ERR"]
    assert messages("--level", "info,ERROR") == [e["message"] for e in entries]
    assert messages("--level", "warning") == []
    assert messages("--type", "app") == [e["message"] for e in entries] and messages("--type", "build") == []
    assert messages("--limit", "2") == ["b2-ERR", "a3"]  # backward: the newest, printed oldest first
    assert messages("--limit", "2", "--direction", "forward") == ["a1", "b1"]
    assert messages("--limit", "2", "--direction", "backward", "--level", "info") == ["b1", "a3"]
    text = ok(base, "logs", "-r", first["id"], "--text", "/a[13]/", "--limit", "1")  # text output too
    assert text.splitlines() == ["a3"]

    build_id = json.loads(ok(base, "builds", "list", "other", "-o", "json"))[0]["id"]
    build_lines = ok(base, "logs", "-r", f"{build_id},{first['id']}", "--type", "build", "-o", "json").splitlines()
    assert build_lines and {label(json.loads(line), "type") for line in build_lines} == {"build"}


def test_logs_limit_100_of_a_1000_line_job_prints_100_lines(project):
    base = project
    made = job(base, "seq 1 1000")
    assert ok(base, "logs", "-r", made["id"], "--limit", "100").splitlines() == [str(n) for n in range(901, 1001)]
    forward = ok(base, "logs", "-r", made["id"], "--limit", "100", "--direction", "forward").splitlines()
    assert forward == [str(n) for n in range(1, 101)]
    assert ok(base, "logs", "-r", made["id"]).splitlines() == [str(n) for n in range(1, 1001)]


def test_logs_start_and_end_take_rfc3339_and_relative_times(project, two_jobs):
    base = project
    first, second, entries = two_jobs
    both = f"{first['id']},{second['id']}"

    def messages(*args) -> list[str]:
        return [json.loads(line)["message"] for line in ok(base, "logs", "-r", both, "-o", "json", *args).splitlines()]

    b1 = next(e["timestamp"] for e in entries if e["message"] == "b1")
    b2 = next(e["timestamp"] for e in entries if e["message"] == "b2-ERR")
    assert messages("--start", b1) == ["b1", "A2-err", "b2-ERR", "a3"]  # at or after: nanoseconds kept
    assert messages("--start", b1, "--end", b2) == ["b1", "A2-err", "b2-ERR"]
    offset = parse_rfc3339(b1).astimezone(timezone(timedelta(hours=2))).isoformat()  # the same instant, to the µs
    assert messages("--end", offset) == ["a1"] + (["b1"] if b1[26:29] == "000" else [])
    assert messages("--start", "1d") == [e["message"] for e in entries]  # relative, as Render's CLI
    assert messages("--end", "1h") == [] and messages("--start", "10m", "--end", "0s") == [e["message"] for e in entries]
    for args, words in [(["--start", "yesterday"], ["--start", "'yesterday'", "RFC 3339"]),
                        (["--start", "1m", "--end", "1h"], ["--start must not be after --end"]),
                        (["--level", "loud"], ["--level", "loud", "emergency"]),
                        (["--type", "app,nope"], ["--type", "nope"]),
                        (["--text", "/(/"], ["not a valid regular expression"])]:
        one_line_error(cli(base, "logs", "-r", both, *args), *words)
    unknown = cli(base, "logs", "-r", f"{first['id']},nosuch")
    one_line_error(unknown, "unknown service 'nosuch'")


def test_logs_tail_of_several_jobs_ends_when_they_all_end(project):
    base = project
    first = job(base, "sleep 1; echo t1; sleep 4; echo t3", wait=False)
    second = job(base, "sleep 3; echo t2", wait=False)
    tailed = cli(base, "logs", "-r", first["id"], "-r", second["id"], "--tail", "--text", "t*", timeout=90)
    assert tailed.returncode == 0, tailed.stderr
    assert tailed.stdout.splitlines() == [f"[{first['id']}] t1", f"[{second['id']}] t2", f"[{first['id']}] t3"]


def test_logs_reads_the_files_without_docker_or_the_web_framework(project, two_jobs):
    first, _second, _entries = two_jobs
    shown = cli(project, "logs", "-r", first["id"], "--start", "1d", "--text", "a*", importtime=True)
    assert shown.returncode == 0, shown.stderr
    modules = {line.rsplit("|", 1)[-1].strip() for line in shown.stderr.splitlines() if line.startswith("import time:")}
    assert not {m for m in modules if m.split(".")[0] in ("docker", "starlette", "uvicorn")}
    assert not {m for m in modules if m.startswith("renderlocal.executor")}
