"""What a kind's requests may say, read from its schema: for `paved explain`, `paved new` and editors.

The kind schemas carry a title and description on every field, so the documentation a developer
reads is the same text that validates their request.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.errors import UsageError
from bot.rules import Rules
from bot.validate import suggest


@dataclass(frozen=True, slots=True)
class FieldDoc:
    """One field of a kind, at a dotted path such as `spec.backups.retentionDays`."""

    path: str
    type: str
    required: bool
    description: str
    allowed: tuple[str, ...] = ()
    default: Any = None
    pattern: str | None = None
    depth: int = 0


def _type_of(schema: dict[str, Any]) -> str:
    declared = schema.get("type")
    if isinstance(declared, list):
        return " | ".join(declared)
    if declared == "array":
        items = schema.get("items")
        return f"list of {_type_of(items)}" if isinstance(items, dict) else "list"
    if declared:
        return str(declared)
    if "const" in schema:
        return "constant"
    if "enum" in schema:
        return "enum"
    return "any"


def _deref(root: dict[str, Any], schema: Any) -> Any:
    """Follow a local `$ref` (`#/$defs/...`), keeping the referring schema's own keywords on top."""
    seen = 0
    while isinstance(schema, dict) and isinstance(schema.get("$ref"), str) and schema["$ref"].startswith("#/"):
        target: Any = root
        for token in schema["$ref"][2:].split("/"):
            target = target.get(token) if isinstance(target, dict) else None
        if not isinstance(target, dict) or seen > 20:
            break
        schema = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
        seen += 1
    return schema


def _walk(schema: dict[str, Any], prefix: str, depth: int, out: list[FieldDoc], root: dict[str, Any]) -> None:
    required = set(schema.get("required") or [])
    for name, raw in (schema.get("properties") or {}).items():
        sub = _deref(root, raw)
        if not isinstance(sub, dict):
            continue
        path = f"{prefix}.{name}" if prefix else name
        allowed: tuple[str, ...] = ()
        if "enum" in sub:
            allowed = tuple(str(v) for v in sub["enum"])
        elif "const" in sub:
            allowed = (str(sub["const"]),)
        items = _deref(root, sub.get("items")) if isinstance(sub.get("items"), dict) else {}
        if not allowed and isinstance(items, dict) and "enum" in items:
            allowed = tuple(str(v) for v in items["enum"])
        out.append(FieldDoc(
            path=path, type=_type_of(sub), required=name in required,
            description=str(sub.get("description") or sub.get("title") or ""),
            allowed=allowed, default=sub.get("default"),
            pattern=sub.get("pattern") or (items.get("pattern") if isinstance(items, dict) else None),
            depth=depth,
        ))
        if sub.get("type") == "object" and sub.get("properties"):
            _walk(sub, path, depth + 1, out, root)
        elif isinstance(items, dict) and items.get("type") == "object" and items.get("properties"):
            _walk(items, f"{path}[]", depth + 1, out, root)


def kind_schema(rules: Rules, kind: str) -> dict[str, Any]:
    """The schema of `kind`, named by its name or its plural (`x-paved.plural`) in any case; `UsageError`
    with a suggestion otherwise."""
    found = rules.described.by_name(kind)
    if found is not None and found in rules.kinds:
        return rules.kinds[found]
    hint = suggest(kind, rules.kinds)
    raise UsageError(f"unknown kind {kind!r}; kinds: {', '.join(rules.kinds)}", hint=hint)


def fields(schema: dict[str, Any]) -> list[FieldDoc]:
    out: list[FieldDoc] = []
    _walk(schema, "", 0, out, schema)
    return out


def as_text(schema: dict[str, Any]) -> str:
    """The kind's documentation for a terminal."""
    title = schema.get("title") or schema.get("properties", {}).get("kind", {}).get("const", "")
    lines = [f"{title}", str(schema.get("description", "")), ""]
    for doc in fields(schema):
        indent = "  " * doc.depth
        flag = "required" if doc.required else "optional"
        lines.append(f"{indent}{doc.path}  ({doc.type}, {flag})")
        if doc.description:
            lines.append(f"{indent}    {doc.description}")
        if doc.allowed:
            lines.append(f"{indent}    allowed: {', '.join(doc.allowed)}")
        if doc.default is not None:
            lines.append(f"{indent}    default: {doc.default}")
        if doc.pattern:
            lines.append(f"{indent}    pattern: {doc.pattern}")
    return "\n".join(lines).rstrip() + "\n"


def as_markdown(schema: dict[str, Any]) -> str:
    """The kind's documentation as a Markdown table, for a PR comment."""
    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    title = schema.get("title") or ""
    lines = [f"### {title}", "", cell(str(schema.get("description", ""))), "",
             "| field | type | required | description |", "|---|---|---|---|"]
    for doc in fields(schema):
        extra = f" Allowed: {', '.join(f'`{a}`' for a in doc.allowed)}." if doc.allowed else ""
        if doc.default is not None:
            extra += f" Default: `{doc.default}`."
        lines.append(f"| `{doc.path}` | {cell(doc.type)} | {'yes' if doc.required else 'no'} | "
                     f"{cell(doc.description)}{cell(extra)} |")
    return "\n".join(lines) + "\n"


def _example(root: dict[str, Any], schema: Any) -> Any:
    """A value for a new request: defaults and single examples for leaves, required fields for objects."""
    schema = _deref(root, schema)
    if not isinstance(schema, dict):
        return ""
    if "const" in schema:
        return schema["const"]
    if "default" in schema:
        return schema["default"]
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        out: dict[str, Any] = {}
        for key in schema.get("required") or []:
            out[key] = _example(root, (schema.get("properties") or {}).get(key))
        return out
    if schema.get("examples"):
        return schema["examples"][0]
    if "enum" in schema:
        return schema["enum"][0]
    if kind == "array":
        items = schema.get("items")
        return [_example(root, items) for _ in range(int(schema.get("minItems", 0)))]
    if kind in ("integer", "number"):
        return schema.get("minimum", 0)
    if kind == "boolean":
        return False
    return ""


def skeleton(schema: dict[str, Any], name: str, owner: str) -> dict[str, Any]:
    """A new request of this kind: required fields filled from the schema's examples and defaults."""
    data = _example(schema, schema)
    assert isinstance(data, dict)
    metadata = data.setdefault("metadata", {})
    metadata["name"] = name
    metadata["owner"] = owner
    metadata.setdefault("description", "")
    ordered = {k: data[k] for k in ("apiVersion", "kind", "metadata", "spec") if k in data}
    ordered.update({k: v for k, v in data.items() if k not in ordered})
    return ordered
