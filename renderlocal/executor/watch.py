"""Rebuild on change: watch a service's build context and start builds.

A burst of saves is debounced into one build; a change while a build runs
queues exactly one more, started when the running one ends.
"""

from __future__ import annotations

import threading
from pathlib import Path

from renderlocal.core.errors import RenderLocalError

DEFAULT_IGNORED = (".git/**", "**/__pycache__/**", "**/*.pyc", "**/.DS_Store", "**/*.swp", "**/*~")


def _render_globs(patterns):
    """Compile Render ``buildFilter`` globs into one pathspec ``PathSpec``.

    The matching itself is pathspec's gitwildmatch: ``*`` and ``?`` stop at
    ``/``, ``**`` spans directories, ``[...]`` classes work, and a pattern that
    names a directory also covers what is inside it.  One gitwildmatch rule is
    not Render's: there a pattern without a slash (``*.md``) matches at any
    depth, but Render documents buildFilter globs as paths relative to the repo
    root (its own examples spell out ``src/**/*.test.js``; any depth is
    ``**/*.md``).  So every pattern is anchored: a leading ``./`` or ``/`` is
    dropped and ``/`` put in front, which also makes a leading ``!`` or ``#``
    literal rather than a negation or a comment.
    """
    import pathspec  # lazily: CLI start-up time matters

    try:  # pathspec >= 1.0 renamed the class behind "gitwildmatch" (and deprecated that name)
        from pathspec.patterns.gitignore.spec import GitIgnoreSpecPattern as Pattern
    except ImportError:  # pathspec 0.12
        from pathspec.patterns.gitwildmatch import GitWildMatchPattern as Pattern

    anchored = []
    for pattern in patterns:
        pattern = str(pattern).strip()
        while pattern.startswith("./"):
            pattern = pattern[2:]
        pattern = pattern.lstrip("/")
        if pattern in ("", "."):
            pattern = "**"
        anchored.append("/" + pattern)
    return pathspec.PathSpec.from_lines(Pattern, anchored)


class ChangeFilter:
    """Decides whether a changed path (relative to the watched root) should rebuild."""

    def __init__(self, root: Path, paths=(), ignored=(), dockerignore: bool = False, filter_root: Path | None = None):
        self.root = Path(root)
        self.filter_root = Path(filter_root or root)  # buildFilter globs are relative to the repo root
        self.paths = _render_globs(paths) if paths else None
        self.ignored = _render_globs(ignored)
        self.default_ignored = _render_globs(DEFAULT_IGNORED)
        self.docker = None
        ignore_file = self.root / ".dockerignore"
        if dockerignore and ignore_file.exists():
            from docker.utils.build import PatternMatcher

            lines = [ln.strip() for ln in ignore_file.read_text().splitlines()]
            self.docker = PatternMatcher([ln for ln in lines if ln and not ln.startswith("#")])

    def wants(self, path: str | Path) -> bool:
        resolved = Path(path).resolve()
        try:
            relative = resolved.relative_to(self.root.resolve()).as_posix()
            from_repo = resolved.relative_to(self.filter_root.resolve()).as_posix()
        except ValueError:
            return False
        if self.default_ignored.match_file(relative) or self.default_ignored.match_file(from_repo):
            return False
        if self.ignored.match_file(from_repo):  # buildFilter globs: repo-relative only
            return False
        if self.paths is not None and not self.paths.match_file(from_repo):
            return False
        if self.docker is not None and self.docker.matches(relative):
            return False
        return True


class ServiceWatcher:
    """Watches one service and calls ``start_build()`` (which returns a thread)."""

    def __init__(self, root: Path, change_filter: ChangeFilter, start_build, debounce_ms: int = 1600):
        self.root = Path(root)
        self.filter = change_filter
        self.start_build = start_build
        self.debounce_ms = debounce_ms
        self.stop_event = threading.Event()
        self._lock = threading.Lock()
        self._running: threading.Thread | None = None
        self._queued = False
        self.builds_started = 0
        self.last_error: str | None = None  # why the last build could not start (the engine was down...)
        self._thread = threading.Thread(target=self._watch, name=f"watch-{self.root.name}", daemon=True)

    def start(self) -> "ServiceWatcher":
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stop_event.set()
        self._thread.join(timeout=5)

    @property
    def alive(self) -> bool:
        """Still watching (its folder vanished, say: it ended, and the control plane starts another)."""
        return self._thread.is_alive()

    def _watch(self) -> None:
        from watchfiles import watch

        for _changes in watch(
            self.root, watch_filter=lambda _change, path: self.filter.wants(path),
            debounce=self.debounce_ms, step=200, stop_event=self.stop_event, yield_on_timeout=False,
        ):
            self.changed()

    def changed(self) -> None:
        with self._lock:
            if self._running is not None and self._running.is_alive():
                self._queued = True  # exactly one more after the running build
                return
            self._launch()

    def _launch(self) -> None:
        self.builds_started += 1
        try:
            build_thread = self.start_build()
        except RenderLocalError as exc:  # the engine is down: the next change tries again
            self.last_error = str(exc)
            return
        self.last_error = None
        self._running = threading.Thread(target=self._after, args=(build_thread,), daemon=True)
        self._running.start()

    def _after(self, build_thread: threading.Thread) -> None:
        build_thread.join()
        with self._lock:
            if self._queued and not self.stop_event.is_set():
                self._queued = False
                self._launch()


def watcher_for(service, filter_root: Path, start_build) -> ServiceWatcher:
    """A watcher of ``service``'s build context; ``start_build()`` starts a build and returns its thread.

    ``filter_root``: where buildFilter globs start (the blueprint's folder, the repo root on Render).
    """
    root = Path(service.dockerContext if service.runtime == "docker" else service.rootDir)
    change_filter = ChangeFilter(root, service.buildPaths, service.buildIgnoredPaths,
                                 dockerignore=service.runtime == "docker", filter_root=filter_root)
    return ServiceWatcher(root, change_filter, start_build)
