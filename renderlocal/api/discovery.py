"""Where a data dir's running control plane listens: ``<data dir>/control-plane.json``.

A long-running face (``serve``, the terminal app) publishes its API's URL, its
pid and the blueprint it loaded; short-lived CLI commands read it to hand their
jobs to that process instead of supervising them themselves. Stdlib only: the
CLI reads this before deciding whether to import anything heavy.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from renderlocal.core.processes import pid_alive

FILE = "control-plane.json"


@dataclass(frozen=True)
class Endpoint:
    url: str  # http://host:port/v1
    pid: int
    blueprint: str


def publish(data_dir: Path, url: str, blueprint: Path, unless_announced: bool = False) -> bool:
    """Announce this process's API (atomically: a reader never sees half a file).

    ``unless_announced``: only if no other announcement is there (a process that
    withdrew must not replace one published since); returns whether it did.
    """
    path = Path(data_dir) / FILE
    tmp = path.with_name(f"{FILE}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"url": url, "pid": os.getpid(), "blueprint": str(blueprint)}))
    if not unless_announced:
        os.replace(tmp, path)
        return True
    try:
        os.link(tmp, path)  # fails if the file exists: never clobbers
        return True
    except FileExistsError:
        return False
    finally:
        tmp.unlink(missing_ok=True)


def withdraw(data_dir: Path) -> None:
    """Remove the announcement if it is this process's (a newer one stays)."""
    forget(data_dir, os.getpid())


def forget(data_dir: Path, pid: int) -> None:
    """Remove the announcement if it is the one of ``pid``."""
    found = read(data_dir)
    if found is not None and found.pid == pid:
        (Path(data_dir) / FILE).unlink(missing_ok=True)


def read(data_dir: Path) -> Endpoint | None:
    try:
        data = json.loads((Path(data_dir) / FILE).read_text())
        return Endpoint(str(data["url"]), int(data["pid"]), str(data["blueprint"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def read_live(data_dir: Path) -> Endpoint | None:
    """The announced control plane, if its process still runs."""
    found = read(data_dir)
    return found if found is not None and pid_alive(found.pid) else None


def find(data_dir: Path, blueprint: Path) -> Endpoint | None:
    """The running control plane of this data dir, if it loaded the same blueprint."""
    found = read_live(data_dir)
    return found if found is not None and found.blueprint == str(blueprint) else None
