"""Judging one request file on its own: YAML, envelope and the kind's schema.

What needs other files (owners, references, budgets) or the rest of the catalogue (policies that look
at the owning service) is `catalog.py`'s. Results depend only on the file's bytes, its path and the
rules, so they are cached by blob id and rules digest: a plan on a large catalogue re-reads only what
changed.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from bot.model import API_VERSION, Finding, Resource, Tree
from bot.rules import Rules
from bot.yamlio import Document, LoadedFile, join, load, resolve_pointer

CATALOG_DIR = "catalog/"
REQUEST_SUFFIXES = (".yaml", ".yml")


@dataclass(slots=True)
class FileResult:
    """What one file holds and what is wrong with it on its own.

    `documents` is kept only when the file was parsed in this run (not taken from the cache); it lets
    later checks position their findings without parsing the file again.
    """

    path: str
    blob: str
    findings: list[Finding]
    resources: list[Resource]
    broken: bool = False
    documents: list[Document] | None = field(default=None, repr=False)


def is_request_file(path: str) -> bool:
    return path.startswith(CATALOG_DIR) and path.endswith(REQUEST_SUFFIXES)


def field_name(pointer: str) -> str:
    """A JSON pointer as a person writes the field: `/spec/dependsOn/0` -> `spec.dependsOn[0]`."""
    out = ""
    for raw in pointer.split("/")[1:]:
        token = raw.replace("~1", "/").replace("~0", "~")
        out += f"[{token}]" if token.isdigit() else (f".{token}" if out else token)
    return out or "(document)"


def suggest(word: str, choices: Iterable[str]) -> str | None:
    """`did you mean …?` for a near miss, or None when nothing is close."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"did you mean `{close[0]}`?" if close else None


def _subschema(schema: dict[str, Any], path: Iterable[Any]) -> Any:
    node: Any = schema
    for token in path:
        if isinstance(node, dict):
            node = node.get(token if isinstance(token, str) else str(token))
        elif isinstance(node, list) and isinstance(token, int) and token < len(node):
            node = node[token]
        else:
            return None
    return node


def _schema_findings(doc: Document, path: str, schema: dict[str, Any], validator: Any) -> list[Finding]:
    findings: list[Finding] = []
    if validator.is_valid(doc.data):  # the common case, several times cheaper than collecting errors
        return findings
    for error in validator.iter_errors(doc.data):
        pointer = "".join(join("", token) for token in error.instance_path)
        kind = error.kind
        name = type(kind).__name__
        where = field_name(pointer)
        hint: str | None = None
        prefer_key = False
        if name == "AdditionalProperties":
            parent = _subschema(schema, list(error.schema_path)[:-1]) or {}
            known = list((parent.get("properties") or {}).keys())
            for unexpected in kind.unexpected:
                target = join(pointer, unexpected)
                line, column = doc.position(target, prefer_key=True)
                findings.append(Finding(
                    path=path, line=line, column=column, pointer=target, severity="error", rule="schema",
                    message=f"unknown field `{field_name(target)}`",
                    hint=suggest(unexpected, known) or (f"allowed here: {', '.join(known)}" if known else None),
                    document=doc.index,
                ))
            continue
        if name == "Enum":
            options = [str(o) for o in kind.options]
            value = resolve_pointer(doc.data, pointer)
            message = f"`{where}` must be one of {', '.join(options)}; got {value!r}"
            hint = suggest(str(value), options)
        elif name == "Required":
            missing = kind.property
            field_schema = _subschema(schema, [*list(error.schema_path)[:-1], "properties", missing]) or {}
            message = f"`{field_name(join(pointer, missing))}` is required"
            description = field_schema.get("description") if isinstance(field_schema, dict) else None
            hint = f"{missing}: {description}" if description else None
            prefer_key = True
        else:
            message = f"`{where}`: {error.message}"
            field_schema = _subschema(schema, list(error.schema_path)[:-1])
            if isinstance(field_schema, dict) and field_schema.get("description") and name in {
                "Pattern", "MinLength", "MaxLength", "Format", "Type", "Const",
            }:
                hint = f"{where}: {field_schema['description']}"
        line, column = doc.position(pointer, prefer_key=prefer_key)
        findings.append(Finding(path=path, line=line, column=column, pointer=pointer, severity="error",
                                rule="schema", message=message, hint=hint, document=doc.index))
    return findings


def _envelope(doc: Document, path: str, rules: Rules) -> tuple[list[Finding], str | None]:
    """Check what every request shares before its kind's schema can apply; return the kind if usable."""
    data = doc.data

    def at(pointer: str, message: str, hint: str | None = None, severity: Any = "error",
           rule: str = "schema") -> Finding:
        line, column = doc.position(pointer)
        return Finding(path=path, line=line, column=column, pointer=pointer, message=message,
                       severity=severity, rule=rule, hint=hint, document=doc.index)

    if data is None:
        return [at("", "empty document: nothing is requested here", severity="warning", rule="yaml.empty",
                   hint="Remove the stray `---` or write the request.")], None
    if not isinstance(data, dict):
        return [at("", f"a request must be a mapping with apiVersion, kind, metadata and spec; "
                       f"got a {type(data).__name__}")], None
    found: list[Finding] = []
    if data.get("apiVersion") != API_VERSION:
        pointer = "/apiVersion" if "apiVersion" in data else ""
        got = f"; got {data['apiVersion']!r}" if "apiVersion" in data else ""
        found.append(at(pointer, f"`apiVersion` must be `{API_VERSION}`{got}",
                        hint=f"Start the request with `apiVersion: {API_VERSION}`."))
    kind = data.get("kind")
    if kind not in rules.kinds:
        if "kind" not in data:
            found.append(at("", "`kind` is required", hint=f"One of: {', '.join(rules.kinds)}."))
        else:
            found.append(at("/kind", f"unknown kind {kind!r}",
                            hint=suggest(str(kind), rules.kinds) or f"One of: {', '.join(rules.kinds)}."))
        return found, None
    return found, str(kind)


def check_document(doc: Document, path: str, rules: Rules) -> tuple[list[Finding], Resource | None]:
    findings, kind = _envelope(doc, path, rules)
    if kind is None:
        return findings, None
    findings += [f for f in _schema_findings(doc, path, rules.kinds[kind], rules.kind_validator(kind))
                 if f.pointer not in ("/apiVersion", "/kind")]
    name = resolve_pointer(doc.data, "/metadata/name")
    if not isinstance(name, str) or not name:
        return findings, None
    owner = resolve_pointer(doc.data, "/metadata/owner")
    line = doc.position("/kind")[0]
    resource = Resource(kind=kind, name=name, owner=owner if isinstance(owner, str) else "",
                        path=path, document=doc.index, line=line, data=doc.data)
    return findings, resource


def check_loaded(loaded: LoadedFile, blob: str, rules: Rules) -> FileResult:
    findings = list(loaded.findings)
    resources: list[Resource] = []
    for doc in loaded.documents:
        doc_findings, resource = check_document(doc, loaded.path, rules)
        findings += doc_findings
        if resource is not None:
            resources.append(resource)
    if not loaded.documents and not loaded.broken:
        findings.append(Finding(path=loaded.path, line=1, column=1, pointer="", severity="warning",
                                rule="yaml.empty", message="the file holds no request",
                                hint="Write a request or delete the file."))
    return FileResult(loaded.path, blob, findings, resources, loaded.broken, loaded.documents)


def check_file(path: str, raw: bytes, blob: str, rules: Rules) -> FileResult:
    """Everything that can be said about one file on its own."""
    return check_loaded(load(path, raw), blob, rules)


# -- caching ---------------------------------------------------------------------------------------
# Entries are tuples of plain values so a file-backed cache can store them with `marshal`.

def _finding_to_tuple(f: Finding) -> tuple[Any, ...]:
    return (f.path, f.line, f.column, f.pointer, f.message, f.severity, f.rule, f.hint, f.document)


def _finding_from_tuple(t: tuple[Any, ...] | list[Any]) -> Finding:
    return Finding(*t)


def to_entry(result: FileResult) -> tuple[Any, ...]:
    return (
        [_finding_to_tuple(f) for f in result.findings],
        [(r.kind, r.name, r.owner, r.document, r.line, r.data) for r in result.resources],
        result.broken,
    )


def from_entry(path: str, blob: str, entry: tuple[Any, ...] | list[Any]) -> FileResult:
    findings, resources, broken = entry
    return FileResult(
        path, blob, [_finding_from_tuple(f) for f in findings],
        [Resource(kind=k, name=n, owner=o, path=path, document=d, line=ln, data=data)
         for k, n, o, d, ln, data in resources],
        broken,
    )


def cache_key(rules: Rules, path: str, blob: str) -> str:
    return f"f:{rules.digest}:{blob}:{path}"


def check_files(tree: Tree, listing: Mapping[str, str], rules: Rules,
                cache: MutableMapping[str, Any] | None = None) -> list[FileResult]:
    """Check every request file in `listing` (path -> blob id), reading only those not in `cache`."""
    results: dict[str, FileResult] = {}
    wanted: list[str] = []
    for path in sorted(listing):
        if not is_request_file(path):
            continue
        entry = cache.get(cache_key(rules, path, listing[path])) if cache is not None else None
        if entry is not None:
            results[path] = from_entry(path, listing[path], entry)
        else:
            wanted.append(path)
    for path, raw in tree.read_many(wanted).items():
        result = check_file(path, raw, listing[path], rules)
        results[path] = result
        if cache is not None:
            cache[cache_key(rules, path, listing[path])] = to_entry(result)
    return [results[p] for p in sorted(results)]
