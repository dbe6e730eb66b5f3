"""Write renderlocal/api/render_openapi.json: the part of Render's published OpenAPI
definition that render-local serves, self-contained. The local API's /openapi.json is made
from it (renderlocal/api/openapi.py) and tests/test_render_conformance.py checks every answer
against it.

    python -m renderlocal.api.make_render_openapi PATH/TO/render-openapi.json [OUT]

The spec is github.com/api-evangelist/render's openapi/_original/render-openapi.json; e.g.
``git -C CLONE show HEAD:openapi/_original/render-openapi.json > /tmp/render-openapi.json``.

The chosen operations are copied as Render has them (parameters, requestBody, responses,
and their path's parameters). Every ``#/components/<kind>/<name>`` they reach is copied
under the same name; every other reference (Render's spec points into other paths'
operations and into components' properties, e.g.
``#/paths/~1services~1%7BserviceId%7D~1jobs~1%7BjobId%7D/parameters/1/schema``) is
replaced by a copy of what it points at. The result has no reference outside itself.
"""

from __future__ import annotations

import copy
import hashlib
import json
import sys
from pathlib import Path
from urllib.parse import unquote

SOURCE = {"repo": "github.com/api-evangelist/render", "file": "openapi/_original/render-openapi.json"}

OPERATIONS = {
    "/services": ["get"],
    "/services/{serviceId}": ["get"],
    "/services/{serviceId}/jobs": ["get", "post"],
    "/services/{serviceId}/jobs/{jobId}": ["get"],
    "/services/{serviceId}/jobs/{jobId}/cancel": ["post"],
    "/services/{serviceId}/deploys": ["get", "post"],
    "/services/{serviceId}/deploys/{deployId}": ["get"],
    "/services/{serviceId}/deploys/{deployId}/cancel": ["post"],
    "/services/{serviceId}/suspend": ["post"],
    "/services/{serviceId}/resume": ["post"],
    "/services/{serviceId}/events": ["get"],
    "/owners": ["get"],
    "/owners/{ownerId}": ["get"],
    "/logs": ["get"],
    "/logs/values": ["get"],
    "/logs/subscribe": ["get"],
    "/logs/streams/owner/{ownerId}": ["get", "put", "delete"],
    "/logs/streams/resource": ["get"],
    "/logs/streams/resource/{resourceId}": ["get", "put", "delete"],
    "/postgres": ["get"],
    "/postgres/{postgresId}": ["get"],
    "/postgres/{postgresId}/connection-info": ["get"],
    "/key-value": ["get"],
    "/key-value/{keyValueId}": ["get"],
    "/key-value/{keyValueId}/connection-info": ["get"],
}
METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


def git_blob_sha(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def pointer(spec: dict, ref: str):
    """What a local reference (``#/a/b~1c/%7Bx%7D``) points at."""
    if not ref.startswith("#/"):
        raise ValueError(f"not a local reference: {ref}")
    node = spec
    for token in ref[2:].split("/"):
        token = unquote(token).replace("~1", "/").replace("~0", "~")
        node = node[int(token)] if isinstance(node, list) else node[token]
    return node


def component_of(ref: str) -> tuple[str, str] | None:
    """(kind, name) when ``ref`` names a whole component, else None."""
    parts = ref.split("/")
    if len(parts) == 4 and parts[:2] == ["#", "components"]:
        return parts[2], unquote(parts[3])
    return None


class Subset:
    def __init__(self, spec: dict):
        self.spec = spec
        self.components: dict[str, dict] = {}

    def take(self, node, inlining: tuple[str, ...] = ()):
        """A copy of ``node`` whose references are whole components (copied too) or inlined."""
        if isinstance(node, list):
            return [self.take(item, inlining) for item in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        if isinstance(ref, str):
            named = component_of(ref)
            if named is not None:
                self.component(*named)
                return {k: self.take(v, inlining) for k, v in node.items()}
            if ref in inlining:
                raise ValueError(f"a reference cycle through {ref}: cannot inline it")
            target = self.take(copy.deepcopy(pointer(self.spec, ref)), inlining + (ref,))
            siblings = {k: self.take(v, inlining) for k, v in node.items() if k != "$ref"}
            return target | siblings if isinstance(target, dict) else target
        return {k: self.take(v, inlining) for k, v in node.items()}

    def component(self, kind: str, name: str) -> None:
        taken = self.components.setdefault(kind, {})
        if name in taken:
            return
        taken[name] = None  # a placeholder: a recursive schema stops here
        taken[name] = self.take(self.spec["components"][kind][name])


def subset(spec: dict, blob: str) -> dict:
    part = Subset(spec)
    paths = {}
    for path, methods in OPERATIONS.items():
        item = spec["paths"][path]
        missing = [m for m in methods if m not in item]
        if missing:
            raise KeyError(f"{path} has no {', '.join(missing)} in this spec")
        kept = {k: v for k, v in item.items() if k not in METHODS or k in methods}
        paths[path] = part.take(kept)
    for name in spec.get("components", {}).get("securitySchemes", {}):
        part.component("securitySchemes", name)
    tags = {tag for item in paths.values() for k, op in item.items() if k in METHODS for tag in op.get("tags", [])}
    document = {
        "x-source": SOURCE | {"blob": blob},
        "openapi": spec["openapi"],
        "info": spec["info"],
        "servers": spec.get("servers", []),
        "security": spec.get("security", []),
        "tags": [t for t in spec.get("tags", []) if t.get("name") in tags],
        "paths": paths,
        "components": {kind: dict(sorted(items.items())) for kind, items in sorted(part.components.items())},
    }
    check(document)
    return document


def check(document: dict) -> None:
    """Every reference resolves inside the document."""

    def walk(node):
        if isinstance(node, dict):
            ref = node.get("$ref")
            if ref is not None:
                if component_of(ref) is None:
                    raise ValueError(f"a reference left that is not a whole component: {ref}")
                pointer(document, ref)  # KeyError when it dangles
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(document)


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3):
        print("usage: python -m renderlocal.api.make_render_openapi RENDER_OPENAPI_JSON [OUT]", file=sys.stderr)
        return 2
    raw = Path(argv[1]).read_bytes()
    out = Path(argv[2]) if len(argv) == 3 else Path(__file__).with_name("render_openapi.json")
    document = subset(json.loads(raw), git_blob_sha(raw))
    out.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    counts = {kind: len(items) for kind, items in document["components"].items()}
    operations = sum(len(m) for m in OPERATIONS.values())
    print(f"wrote {out}: {operations} operations, components {counts}, blob {document['x-source']['blob']}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
