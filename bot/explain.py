"""What a kind's requests may say, read from its schema: for `paved explain`, `paved new` and editors.

The kind schemas carry a title and description on every field, so the documentation a developer
reads is the same text that validates their request.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from bot.errors import UsageError
from bot.kinds import SECTION, value_at, values_at
from bot.rules import Rules
from bot.validate import deref, suggest
from bot.yamlio import unescape


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


def _walk(schema: dict[str, Any], prefix: str, depth: int, out: list[FieldDoc], root: dict[str, Any]) -> None:
    required = set(schema.get("required") or [])
    for name, raw in (schema.get("properties") or {}).items():
        sub = deref(root, raw)
        if not isinstance(sub, dict):
            continue
        path = f"{prefix}.{name}" if prefix else name
        allowed: tuple[str, ...] = ()
        if "enum" in sub:
            allowed = tuple(str(v) for v in sub["enum"])
        elif "const" in sub:
            allowed = (str(sub["const"]),)
        items = deref(root, sub.get("items")) if isinstance(sub.get("items"), dict) else {}
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
    schema = deref(root, schema)
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


def _example_request(schema: dict[str, Any]) -> dict[str, Any] | None:
    """The kind's complete example request (the schema's first `examples` entry), which the platform keeps
    valid and within its policies, or None."""
    examples = schema.get("examples")
    first = examples[0] if isinstance(examples, list) and examples else None
    return copy.deepcopy(first) if isinstance(first, dict) else None


def _mentions(value: Any, names: set[str], owner: str) -> bool:
    """Whether `value` holds text naming one of `names` (an example's own display name, contact, ...); the
    new owner's name, which a reference was pointed at, is the new request's own."""
    if isinstance(value, str):
        return value != owner and any(name in value.casefold() for name in names)
    if isinstance(value, dict):
        return any(_mentions(v, names, owner) for v in value.values())
    if isinstance(value, list):
        return any(_mentions(v, names, owner) for v in value)
    return False


def _from_example(root: dict[str, Any], schema: Any, example: Any, names: set[str], owner: str) -> Any:
    """The example's value for a field, each object keeping its required fields (from the example, else as
    `_example` makes them) and those of the example's optional fields that say nothing of the example itself."""
    schema = deref(root, schema)
    if not isinstance(schema, dict) or not isinstance(schema.get("properties"), dict) or "const" in schema:
        return example
    if not isinstance(example, dict):
        return _example(root, schema)
    properties = schema.get("properties") or {}
    required = list(schema.get("required") or [])
    out: dict[str, Any] = {}
    for key in [*properties, *(k for k in required if k not in properties)]:
        if key in example and (key in required or not _mentions(example[key], names, owner)):
            value = _from_example(root, properties.get(key), example[key], names, owner)
            if key in required or value not in ([], {}):
                out[key] = value
        elif key in required:
            out[key] = _example(root, properties.get(key))
    return out


def _point_references(data: dict[str, Any], schema: dict[str, Any], owner: str, example_owner: str | None) -> None:
    """Make every reference of the new request name what its owner may name, or nothing.

    A reference to the example's owning team becomes one to the new owner (its reviewers, say); any other
    names another team's resource, or one only the author knows, and is left empty (`''`) for validation
    to point at; in a list it is removed, as is a list it leaves empty.
    """
    section = schema.get(SECTION) or {}
    for reference in section.get("references") or ():
        pointer = reference.get("pointer") if isinstance(reference, dict) else None
        if not isinstance(pointer, str):
            continue
        for at, value in list(values_at(data, pointer)):
            if not isinstance(value, str) or value == owner:
                continue
            parent_at, _, token = at.rpartition("/")
            holder = value_at(data, parent_at)
            if isinstance(holder, list):
                holder[int(token)] = owner if value == example_owner else None
            elif isinstance(holder, dict):
                holder[unescape(token)] = owner if value == example_owner else ""
    _drop_removed(data)


def _drop_removed(node: Any) -> None:
    """Take out the list items `_point_references` removed, and the lists they leave empty."""
    if not isinstance(node, dict):
        return
    for key in list(node):
        value = node[key]
        if isinstance(value, list) and None in value:
            value[:] = [v for v in value if v is not None]
            if not value:
                del node[key]
        else:
            _drop_removed(value)


def skeleton(schema: dict[str, Any], name: str, owner: str) -> dict[str, Any]:
    """A new request of this kind that the kind's schema and the platform's policies accept, but for what
    only its author can say, left empty for validation to name (`metadata.description is empty: fill it in`).

    Its values come from the kind's complete example where the schema has one (so a database starts with
    backups and deletion protection on, a production environment with reviewers), else from each field's
    default, example or first allowed value. A reference never names the example's resources: one to the
    example's owning team names the new owner, any other is left empty, since which service a database
    belongs to, or which team gets access, only the author knows. The example's labels, and its optional
    fields that speak of the example itself (a display name, a contact), are left out.
    """
    data = _example(schema, schema)
    assert isinstance(data, dict)
    example = _example_request(schema)
    example_owner: str | None = None
    if example is not None:
        example_meta = example.pop("metadata", None)
        example_meta = example_meta if isinstance(example_meta, dict) else {}
        owner_at = str((schema.get(SECTION) or {}).get("owner") or "/metadata/owner")
        found = value_at({"metadata": example_meta}, owner_at)
        example_owner = found if isinstance(found, str) else None
        names = {str(n).casefold() for n in (example_meta.get("name"), example_owner) if isinstance(n, str) and n}
        _point_references(example, schema, owner, example_owner)
        built = _from_example(schema, schema, {**example, "metadata": data.get("metadata", {})}, names, owner)
        if isinstance(built, dict):
            data = built
    metadata = data.setdefault("metadata", {})
    metadata["name"] = name
    metadata["owner"] = owner
    metadata["description"] = ""
    _point_references(data, schema, owner, None)  # what a field's own examples name is not the owner's either
    ordered = {k: data[k] for k in ("apiVersion", "kind", "metadata", "spec") if k in data}
    ordered.update({k: v for k, v in data.items() if k not in ordered})
    return ordered
