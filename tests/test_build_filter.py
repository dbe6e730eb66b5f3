"""Render buildFilter globs (render.yaml ``buildFilter: {paths, ignoredPaths}``) in ChangeFilter.

The globs are relative to the repo root (``filter_root``); the watched root may
be a subdirectory of it (a service's rootDir or dockerContext).  No Docker needed.
"""

import subprocess
import sys

from renderlocal.executor.watch import ChangeFilter


def test_dot_slash_dotdir_is_ignored(tmp_path):
    change_filter = ChangeFilter(tmp_path, ignored=["./.github/**"], filter_root=tmp_path)
    assert not change_filter.wants(tmp_path / ".github" / "workflows" / "ci.yml")
    assert change_filter.wants(tmp_path / "github" / "workflows" / "ci.yml")
    assert change_filter.wants(tmp_path / "app.py")


def test_paths_double_star_crosses_directories_single_star_does_not(tmp_path):
    change_filter = ChangeFilter(tmp_path, paths=["src/**/*.js"], filter_root=tmp_path)
    assert change_filter.wants(tmp_path / "src" / "a.js")
    assert change_filter.wants(tmp_path / "src" / "x" / "y" / "a.js")
    assert not change_filter.wants(tmp_path / "lib" / "a.js")
    assert not change_filter.wants(tmp_path / "src" / "a.py")
    assert not change_filter.wants(tmp_path / "a.js")

    one_level = ChangeFilter(tmp_path, paths=["src/*.js"], filter_root=tmp_path)
    assert one_level.wants(tmp_path / "src" / "a.js")
    assert not one_level.wants(tmp_path / "src" / "x" / "a.js")


def test_ignored_paths_render_docs_example(tmp_path):
    change_filter = ChangeFilter(tmp_path, paths=["src/**/*.js"], ignored=["src/**/*.test.js"], filter_root=tmp_path)
    assert not change_filter.wants(tmp_path / "src" / "x" / "a.test.js")
    assert not change_filter.wants(tmp_path / "src" / "a.test.js")
    assert change_filter.wants(tmp_path / "src" / "x" / "a.js")


def test_patterns_are_anchored_at_the_repo_root(tmp_path):
    # Unlike .gitignore, a pattern without a slash does not match at any depth.
    root_only = ChangeFilter(tmp_path, ignored=["*.md"], filter_root=tmp_path)
    assert not root_only.wants(tmp_path / "README.md")
    assert root_only.wants(tmp_path / "docs" / "guide.md")

    any_depth = ChangeFilter(tmp_path, ignored=["**/*.md"], filter_root=tmp_path)
    assert not any_depth.wants(tmp_path / "README.md")
    assert not any_depth.wants(tmp_path / "docs" / "guide.md")


def test_character_class_and_question_mark(tmp_path):
    change_filter = ChangeFilter(tmp_path, paths=["src/[ab].js", "lib/?.py"], filter_root=tmp_path)
    assert change_filter.wants(tmp_path / "src" / "a.js")
    assert not change_filter.wants(tmp_path / "src" / "c.js")
    assert change_filter.wants(tmp_path / "lib" / "x.py")
    assert not change_filter.wants(tmp_path / "lib" / "xy.py")
    assert not change_filter.wants(tmp_path / "lib" / "x" / "a.py")


def test_globs_match_repo_relative_paths_in_a_subdirectory_service(tmp_path):
    service = tmp_path / "backend"
    change_filter = ChangeFilter(service, paths=["backend/**"], ignored=["src/**"], filter_root=tmp_path)
    # "src/**" means the repo's src/, not backend/src/
    assert change_filter.wants(service / "src" / "main.py")
    assert change_filter.wants(service / "app.py")
    # outside the watched root: never wanted, even when a glob would match it
    assert not change_filter.wants(tmp_path / "frontend" / "index.js")
    assert not ChangeFilter(service, paths=["**"], filter_root=tmp_path).wants(tmp_path / "frontend" / "index.js")
    assert not ChangeFilter(service).wants(tmp_path / "other" / "x.py")


def test_defaults_still_ignored(tmp_path):
    change_filter = ChangeFilter(tmp_path, filter_root=tmp_path)
    assert not change_filter.wants(tmp_path / ".git" / "HEAD")
    assert not change_filter.wants(tmp_path / "pkg" / "__pycache__" / "mod.cpython-311.pyc")
    assert not change_filter.wants(tmp_path / "mod.pyc")
    assert not change_filter.wants(tmp_path / "pkg" / ".DS_Store")
    assert not change_filter.wants(tmp_path / "pkg" / "mod.py~")
    assert change_filter.wants(tmp_path / "pkg" / "mod.py")
    assert change_filter.wants(tmp_path / "pkg" / "git" / "HEAD")

    # the watched root's own .git and the repo's .git are both ignored
    service = tmp_path / "svc"
    nested = ChangeFilter(service, paths=["svc/**"], filter_root=tmp_path)
    assert not nested.wants(service / ".git" / "HEAD")
    assert not nested.wants(service / "__pycache__" / "a.pyc")
    assert nested.wants(service / "a.py")


def test_dockerignore_still_applies_with_build_filter(tmp_path):
    (tmp_path / ".dockerignore").write_text("# comment\n**/*.log\nsecret/\n")
    change_filter = ChangeFilter(tmp_path, paths=["src/**"], dockerignore=True, filter_root=tmp_path)
    assert change_filter.wants(tmp_path / "src" / "a.py")
    assert not change_filter.wants(tmp_path / "src" / "debug.log")
    assert not ChangeFilter(tmp_path, dockerignore=True).wants(tmp_path / "secret" / "key")


def test_pathspec_is_not_imported_at_module_import():
    code = "import sys, renderlocal.executor.watch; sys.exit('pathspec' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
