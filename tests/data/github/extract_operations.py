"""Cut GitHub's REST or webhook description down to a few operations, keeping every component they reach.

Usage:
    python extract_operations.py FULL_DESCRIPTION.json OUT.json OPERATION_ID...
    python extract_operations.py --webhooks FULL_WEBHOOKS.json OUT.json WEBHOOK_NAME...

FULL_DESCRIPTION.json is `generated/api.github.com.json` from the npm package `@octokit/openapi`,
FULL_WEBHOOKS.json the file of the same name from `@octokit/openapi-webhooks` (see README.md).
Paths, webhooks and operations are copied unchanged; only the ones named are kept.
"""

from __future__ import annotations

import json
import sys
from typing import Any


def _refs(node: Any, found: set[str]) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/"):
            found.add(ref)
        for value in node.values():
            _refs(value, found)
    elif isinstance(node, list):
        for value in node:
            _refs(value, found)


def main(argv: list[str]) -> None:
    webhooks = argv[0] == "--webhooks"
    source, target, *wanted = argv[1:] if webhooks else argv
    with open(source, encoding="utf-8") as handle:
        full = json.load(handle)
    paths: dict[str, Any] = {}
    if webhooks:
        paths = {name: full["webhooks"][name] for name in wanted}
    else:
        for path, item in full["paths"].items():
            for method, operation in item.items():
                if isinstance(operation, dict) and operation.get("operationId") in wanted:
                    paths.setdefault(path, {})[method] = operation
        found = {op["operationId"] for item in paths.values() for op in item.values()}
        if set(wanted) - found:
            raise SystemExit(f"unknown operations: {sorted(set(wanted) - found)}")
    components: dict[str, dict[str, Any]] = {}
    pending: set[str] = set()
    _refs(paths, pending)
    done: set[str] = set()
    while pending:
        ref = pending.pop()
        done.add(ref)
        _, _, kind, name = ref.split("/", 3)
        value = full["components"][kind][name]
        components.setdefault(kind, {})[name] = value
        more: set[str] = set()
        _refs(value, more)
        pending |= more - done
    out = {
        "openapi": full["openapi"],
        "info": {**full["info"], "x-subset-operations": sorted(wanted)},
        "servers": full.get("servers", []),
        ("webhooks" if webhooks else "paths"): paths,
        "components": {kind: dict(sorted(v.items())) for kind, v in sorted(components.items())},
    }
    with open(target, "w", encoding="utf-8") as handle:
        json.dump(out, handle, indent=1, sort_keys=False)
        handle.write("\n")


if __name__ == "__main__":
    main(sys.argv[1:])
