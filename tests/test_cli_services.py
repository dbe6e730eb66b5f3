import json
import subprocess
import sys

from tests.conftest import SAMPLES


def run_cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "renderlocal", *args], capture_output=True, text=True, timeout=120, cwd=cwd)


def test_services_list_json_has_render_shaped_services(data_dir):
    result = run_cli("--data-dir", str(data_dir), "--blueprint", str(SAMPLES), "services", "list", "-o", "json")
    assert result.returncode == 0, result.stderr
    items = json.loads(result.stdout)
    by_name = {item["service"]["name"]: item["service"] for item in items}
    assert by_name["nightly"]["id"].startswith("crn-") and by_name["nightly"]["type"] == "cron_job"
    assert by_name["shop-web"]["type"] == "web_service"
    assert by_name["shop-web"]["serviceDetails"]["runtime"] == "docker"
    assert by_name["reports"]["serviceDetails"]["planId"] == "plan-srv-008"
    assert all(len(s["id"]) == 24 for s in by_name.values())


def test_text_output_and_version(data_dir):
    result = run_cli("--data-dir", str(data_dir), "--blueprint", str(SAMPLES), "services", "list")
    assert result.returncode == 0
    assert result.stdout.splitlines()[0].split()[:3] == ["ID", "NAME", "TYPE"]
    assert run_cli("--version").stdout.strip() == "render-local, version 0.1.0"


def test_blueprint_error_is_one_line_and_exit_2(data_dir, tmp_path):
    bad = tmp_path / "render.yaml"
    bad.write_text("services:\n  - type: web\n    name: x\n    runtime: docker\n    plan: enormous\n")
    result = run_cli("--data-dir", str(data_dir), "--blueprint", str(bad), "services", "list")
    assert result.returncode == 2
    assert result.stderr.strip() == f"render-local: error: {bad}:5: services[0] (x): unknown plan 'enormous' for a web service; valid: starter, standard, pro, pro plus, pro max, pro ultra"


def test_a_named_blueprint_that_does_not_exist_is_an_error_not_another_one(data_dir, tmp_path):
    result = run_cli("--data-dir", str(data_dir), "--blueprint", str(tmp_path / "nope.yaml"), "services")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.strip() == f"render-local: error: blueprint {tmp_path / 'nope.yaml'} does not exist"


def test_services_say_which_blueprint_they_come_from(data_dir, tmp_path):
    result = run_cli("--data-dir", str(data_dir), "services", cwd=tmp_path)  # no render.yaml here: the samples
    assert result.returncode == 0 and f"blueprint: {SAMPLES.resolve()}" in result.stderr.splitlines()


def test_a_usage_error_is_one_line_naming_the_help_to_read():
    result = run_cli("jobs", "cancel")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "render-local: error: Missing argument '[SERVICE] JOB'. (usage: render-local jobs cancel -h)"]


def test_log_streams_show_says_when_none_is_set(data_dir):
    result = run_cli("--data-dir", str(data_dir), "--blueprint", str(SAMPLES), "log-streams", "show")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("no log stream is set: logs stay on this machine")


def test_default_blueprint_is_local_render_yaml_else_samples(data_dir, tmp_path):
    result = run_cli("--data-dir", str(data_dir), "services", "list", "-o", "json", cwd=tmp_path)
    assert {i["service"]["name"] for i in json.loads(result.stdout)} >= {"shop-web", "nightly"}


def test_blueprint_warnings_are_said_once_per_change_of_the_file(data_dir, tmp_path):
    blueprint = tmp_path / "render.yaml"
    blueprint.write_text("services:\n  - type: worker\n    name: w\n    runtime: image\n"
                         "    image: {url: busybox:1.36}\n")

    def warnings() -> list[str]:
        result = run_cli("--data-dir", str(data_dir), "--blueprint", str(blueprint), "services", "list")
        assert result.returncode == 0, result.stderr
        return [line for line in result.stderr.splitlines() if line.startswith("render-local: warning:")]

    first = warnings()
    assert len(first) == 1 and "runtime 'image' is not emulated" in first[0]
    assert warnings() == []  # said already, the file unchanged
    blueprint.write_text(blueprint.read_text() + "# edited\n")
    assert warnings() == first
    assert warnings() == []
