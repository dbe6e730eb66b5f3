"""Proves the engine is real: build a one-line Dockerfile, run it under a 64 MB
limit and read the limit back from inside the container."""

import io

import pytest

from tests.conftest import BUSYBOX

pytestmark = pytest.mark.docker


def test_real_engine_applies_a_memory_limit(engine):
    dockerfile = io.BytesIO(f"FROM {BUSYBOX}\n".encode())
    image, _logs = engine.images.build(fileobj=dockerfile, tag="renderlocal-smoke:latest", rm=True)
    script = "cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes"
    output = engine.containers.run(image.id, ["sh", "-c", script], mem_limit="64m", remove=True)
    assert int(output.decode().strip()) == 64 * 1024 * 1024
