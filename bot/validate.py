"""Judging one request file on its own: YAML, envelope and the kind's schema.

What needs other files (owners, references, budgets) or the rest of the catalogue (policies that look
at the owning service) is `catalogue.py`'s. Results depend only on the file's bytes, its path and the
rules, so they are cached by blob id and rules digest: a plan on a large catalogue re-reads only what
changed.

Paths are data. Whoever pushes a commit chooses its file names, and a name holding a line break or an
escape sequence can break any line-based protocol or output it reaches. `check_files`, which every way
of judging the catalogue goes through, refuses such a file: the name is an error finding and the file
is neither read nor judged. A result is kept for the path and blob it was judged from and is never
taken for another path: the bytes read must be the blob the listing names, and a stored result must
name the path it is asked for.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import marshal
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from bot.errors import ObjectMismatchError
from bot.kinds import value_at, values_at
from bot.model import API_VERSION, Finding, Resource, Tree, path_problem, shown_path
from bot.rules import Rules
from bot.yamlio import Document, LoadedFile, join, load, resolve_plain, resolve_pointer, unescape

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
    entries: list[Entry] = field(default_factory=list)
    references: list[Reference] = field(default_factory=list)


def path_finding(path: str, rule: str = "catalog.path") -> Finding | None:
    """The error finding for a file whose name Paved refuses, or None when the name is fine.

    The finding names the file as `shown_path` shows it, so no surface it reaches (a terminal, a
    comment, an annotation) ever receives the raw name.
    """
    problem = path_problem(path)
    if problem is None:
        return None
    shown = shown_path(path)
    return Finding(path=shown, line=0, column=0, pointer="", severity="error", rule=rule,
                   message=f'the file name "{shown}" {problem}: Paved neither reads nor judges this file',
                   hint="Rename the file: a name may hold no line breaks, tabs or other control characters, "
                        "and must be valid UTF-8.")


def is_request_file(path: str) -> bool:
    """Whether Paved judges the file at `path`: YAML under `catalog/`, or any file there it must refuse."""
    return path.startswith(CATALOG_DIR) and (path.endswith(REQUEST_SUFFIXES) or path_problem(path) is not None)


def content_id(data: bytes, like: str) -> str:
    """Git's object id of a blob with these bytes, in the hash of `like` (SHA-1, or SHA-256 repositories)."""
    digest = hashlib.sha256 if len(like) == 64 else hashlib.sha1
    return digest(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


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


def deref(root: dict[str, Any], schema: Any) -> Any:
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


def _property(root: dict[str, Any], pointer: str) -> dict[str, Any]:
    """The schema of the field at `pointer` of a request, with the field's own description on top."""
    node: Any = root
    for raw in pointer.split("/")[1:]:
        node = deref(root, node)
        if not isinstance(node, dict):
            return {}
        token = raw.replace("~1", "/").replace("~0", "~")
        properties = node.get("properties") or {}
        node = properties[token] if token in properties else node.get("items") if token.isdigit() else None
    found = deref(root, node)
    return found if isinstance(found, dict) else {}


def _homes(root: dict[str, Any], parent: dict[str, Any], key: str, at: str, depth: int = 2) -> list[str]:
    """Where below the object at `at` (whose schema is `parent`) a field `key` belongs, nearest first."""
    level: list[tuple[str, dict[str, Any]]] = [(at, deref(root, parent))]
    for _ in range(depth):
        found: list[str] = []
        deeper: list[tuple[str, dict[str, Any]]] = []
        for pointer, node in level:
            for name, sub in (node.get("properties") or {}).items():
                sub = deref(root, sub)
                if isinstance(sub, dict) and isinstance(sub.get("properties"), dict):
                    if key in sub["properties"]:
                        found.append(join(pointer, name))
                    deeper.append((join(pointer, name), sub))
        if found:
            return found
        level = deeper
    return []


def _misplaced_hint(doc: Document, root: dict[str, Any], parent: dict[str, Any], pointer: str, key: str) -> str | None:
    """`key` written at `pointer`, where it is unknown, is a field of an object below: say to move it there.

    Of several such objects, the one the request has, nearest above the key, is where it was most likely
    meant to go (a field dedented out of `spec` follows `spec`'s other fields).
    """
    homes = _homes(root, parent, key, pointer)
    if not homes:
        return None
    written = doc.position(join(pointer, key), prefer_key=True)[0]
    present = [h for h in homes if h in doc.keys]
    above = [h for h in present if doc.keys[h][0] < written]
    home = max(above, key=lambda h: doc.keys[h][0]) if above else (present or homes)[0]
    name = unescape(home.rsplit("/", 1)[1])
    where = f" (line {doc.keys[home][0]})" if home in doc.keys else ""
    return f"`{key}` is a field of `{field_name(home)}`: indent it under `{name}:`{where}."


def _written_outside(doc: Document, pointer: str, missing: str) -> str | None:
    """Where a missing field stands instead, at a shallower level of the same request."""
    ancestor = pointer
    while ancestor:
        ancestor = ancestor.rsplit("/", 1)[0]
        holder = resolve_pointer(doc.data, ancestor)
        if isinstance(holder, dict) and missing in holder:
            line = doc.position(join(ancestor, missing), prefer_key=True)[0]
            name = unescape(pointer.rsplit("/", 1)[1])
            return f"`{missing}` is written on line {line}, outside `{field_name(pointer)}`: indent it under `{name}:`."
    return None


_READ_AS = {bool: "boolean", int: "number", float: "number"}


def _quote_hint(pointer: str, text: str, value: Any) -> str:
    """How to write a value YAML read as a number or boolean as the text it was meant to be."""
    key = unescape(pointer.rsplit("/", 1)[-1]) if pointer else ""
    written = f'"{text}"' if not key or key.isdigit() else f'{key}: "{text}"'
    return f"Quote it: `{written}`. Unquoted, YAML reads {text} as a {_READ_AS[type(value)]}."


def _misread(value: Any, options: Iterable[Any]) -> str | None:
    """The text option a number or boolean was meant to be (`16` for `"16"`), or None."""
    if type(value) not in _READ_AS:
        return None
    for option in options:
        if isinstance(option, str) and option:
            read = resolve_plain(option)
            if type(read) is type(value) and read == value:
                return option
    return None


# A value that is empty fails these for being empty: one finding says so instead of each rule's own words.
_EMPTY = frozenset({"MinLength", "Pattern", "Format"})


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
    errors = list(validator.iter_errors(doc.data))

    def pointer_of(error: Any) -> str:
        return "".join(join("", token) for token in error.instance_path)

    # `version: 16` breaks both the enum and the type of `"16"`: its enum finding says it all.
    misread = {pointer_of(e) for e in errors if type(e.kind).__name__ == "Enum"
               and _misread(resolve_pointer(doc.data, pointer_of(e)), e.kind.options) is not None}
    said: set[str] = set()  # pointers of empty values, which get one finding each
    for error in errors:
        pointer = pointer_of(error)
        kind = error.kind
        name = type(kind).__name__
        where = field_name(pointer)
        hint: str | None = None
        prefer_key = False
        value = resolve_pointer(doc.data, pointer)
        if name == "AdditionalProperties":
            parent = _subschema(schema, list(error.schema_path)[:-1]) or {}
            known = list((parent.get("properties") or {}).keys())
            for unexpected in kind.unexpected:
                target = join(pointer, unexpected)
                line, column = doc.position(target, prefer_key=True)
                findings.append(Finding(
                    path=path, line=line, column=column, pointer=target, severity="error", rule="schema",
                    message=f"unknown field `{field_name(target)}`",
                    hint=_misplaced_hint(doc, schema, parent, pointer, unexpected) or suggest(unexpected, known)
                    or (f"allowed here: {', '.join(known)}" if known else None),
                    document=doc.index,
                ))
            continue
        if value == "" and name in _EMPTY:
            if pointer in said:
                continue
            said.add(pointer)
            description = _property(schema, pointer).get("description")
            message = f"`{where}` is empty: fill it in"
            hint = f"{where}: {description}" if description else None
        elif name == "Type" and pointer in misread:
            continue
        elif name == "Enum":
            options = [str(o) for o in kind.options]
            meant = _misread(value, kind.options)
            if meant is not None:
                shown = ", ".join(f'"{o}"' if isinstance(o, str) else str(o) for o in kind.options)
                message = f"`{where}` must be text, one of {shown}; got the {_READ_AS[type(value)]} {meant}"
                hint = _quote_hint(pointer, meant, value)
            else:
                message = f"`{where}` must be one of {', '.join(options)}; got {value!r}"
                hint = suggest(str(value), options)
        elif name == "Required":
            missing = kind.property
            field_schema = _subschema(schema, [*list(error.schema_path)[:-1], "properties", missing]) or {}
            message = f"`{field_name(join(pointer, missing))}` is required"
            description = field_schema.get("description") if isinstance(field_schema, dict) else None
            hint = _written_outside(doc, pointer, missing) or (f"{missing}: {description}" if description else None)
            prefer_key = True
        else:
            message = f"`{where}`: {error.message}"
            field_schema = _subschema(schema, list(error.schema_path)[:-1])
            if name == "Type" and "string" in kind.types and type(value) in _READ_AS:
                hint = _quote_hint(pointer, json.dumps(value), value)
            elif isinstance(field_schema, dict) and field_schema.get("description") and name in {
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


@dataclass(frozen=True, slots=True)
class Entry:
    """A resource as the catalogue-wide checks see it: identity, cost, and where to point at it.

    Positions are taken while the file is parsed, so a catalogue-wide finding never needs the file
    parsed again.
    """

    identity: str
    kind: str
    name: str
    owner: str
    path: str
    document: int
    line: int
    name_line: int
    name_column: int
    cost: float
    service: str | None = None
    budget: float | None = None
    budget_line: int = 0
    budget_column: int = 0
    tier: str | None = None
    lifecycle: str | None = None


Relation = str  # "owner" | "service" | "team" | "reviewer" | "dependsOn"


@dataclass(frozen=True, slots=True)
class Reference:
    """One place where a request names another resource (`target` is its `Kind/name`)."""

    source: str
    path: str
    document: int
    pointer: str
    target: str
    relation: Relation
    line: int
    column: int


def _references(resource: Resource, doc: Document, rules: Rules) -> list[Reference]:
    """Every place the request names another resource, as its kind's description says where to look."""
    described = rules.describe(resource.kind)
    team = rules.described.team
    found: list[tuple[str, str, Relation]] = []
    # A team may own itself; that is no reference to check.
    if team is not None and resource.owner and not (described.is_team and resource.owner == resource.name):
        found.append((described.owner, f"{team}/{resource.owner}", "owner"))
    for field_ in described.references:
        for pointer, value in values_at(resource.data, field_.pointer):
            if isinstance(value, str) and value:  # an empty name is the schema's finding, not a missing resource
                found.append((pointer, value if field_.kind is None else f"{field_.kind}/{value}", field_.relation))
    return [Reference(resource.identity, resource.path, resource.document, pointer, target, relation,
                      *doc.position(pointer))
            for pointer, target, relation in found]


def _text(data: dict[str, Any], pointer: str | None) -> str | None:
    value = value_at(data, pointer)
    return value if isinstance(value, str) else None


def _entry(resource: Resource, doc: Document, rules: Rules) -> Entry:
    described = rules.describe(resource.kind)
    budget = value_at(resource.data, described.budget)
    has_budget = isinstance(budget, int | float) and not isinstance(budget, bool)
    budget_at = doc.position(described.budget or "") if has_budget else (0, 0)
    parent = described.parent
    name_at = doc.position("/metadata/name")
    return Entry(
        identity=resource.identity, kind=resource.kind, name=resource.name, owner=resource.owner,
        path=resource.path, document=resource.document, line=resource.line,
        name_line=name_at[0], name_column=name_at[1],
        cost=rules.monthly_cost(resource.kind, resource.data),
        service=_text(resource.data, parent.pointer) if parent is not None else None,
        budget=float(budget) if has_budget else None,
        budget_line=budget_at[0], budget_column=budget_at[1],
        tier=_text(resource.data, described.tier), lifecycle=_text(resource.data, described.lifecycle),
    )


def _template_findings(resource: Resource, doc: Document, rules: Rules) -> list[Finding]:
    """A request's golden path exists and its parameters fit the template's cookiecutter.json."""
    at_template = rules.describe(resource.kind).template
    template = value_at(resource.data, at_template)
    if at_template is None or not isinstance(template, dict) or not isinstance(template.get("name"), str):
        return []

    def at(pointer: str, message: str, hint: str | None, rule: str = "catalog.template-parameter") -> Finding:
        line, column = doc.position(pointer)
        return Finding(path=resource.path, line=line, column=column, pointer=pointer, message=message,
                       severity="error", rule=rule, hint=hint, document=resource.document)

    chosen = rules.templates.get(template["name"])
    if chosen is None:
        return [at(join(at_template, "name"), f"there is no golden-path template {template['name']!r} in templates/",
                   suggest(template["name"], rules.templates)
                   or f"Available: {', '.join(sorted(rules.templates)) or 'none'}.", "catalog.template")]
    parameters = template.get("parameters") or {}
    found: list[Finding] = []
    for key, value in parameters.items() if isinstance(parameters, dict) else ():
        pointer = join(join(at_template, "parameters"), key)
        parameter = chosen.parameters.get(key)
        if parameter is None:
            known = ", ".join(chosen.parameters) or "none"
            found.append(at(pointer, f"template {chosen.name} has no parameter `{key}`",
                            suggest(key, chosen.parameters) or f"Parameters: {known}."))
            continue
        fits = {"string": isinstance(value, str), "boolean": isinstance(value, bool),
                "number": isinstance(value, int | float) and not isinstance(value, bool)}[parameter.type]
        if not fits:
            found.append(at(pointer, f"parameter `{key}` of template {chosen.name} must be a {parameter.type}; "
                            f"got {value!r}", f"{key}: {parameter.description}" if parameter.description else None))
        elif parameter.choices is not None and value not in parameter.choices:
            choices = [str(c) for c in parameter.choices]
            found.append(at(pointer, f"parameter `{key}` of template {chosen.name} must be one of "
                            f"{', '.join(choices)}; got {value!r}", suggest(str(value), choices)))
    return found


def _self_dependency(resource: Resource, references: list[Reference]) -> list[Finding]:
    return [Finding(path=r.path, line=r.line, column=r.column, pointer=r.pointer, severity="error",
                    rule="catalog.cycle", message=f"{r.target} depends on itself", hint="Remove the entry.",
                    document=r.document)
            for r in references if r.relation == "dependsOn" and r.target == resource.identity]


def check_document(doc: Document, path: str, rules: Rules) -> tuple[list[Finding], Resource | None]:
    findings, kind = _envelope(doc, path, rules)
    if kind is None:
        return findings, None
    findings += [f for f in _schema_findings(doc, path, rules.kinds[kind], rules.kind_validator(kind))
                 if f.pointer not in ("/apiVersion", "/kind")]
    name = resolve_pointer(doc.data, "/metadata/name")
    if not isinstance(name, str) or not name:
        return findings, None
    owner = value_at(doc.data, rules.describe(kind).owner)
    line = doc.position("/kind")[0]
    resource = Resource(kind=kind, name=name, owner=owner if isinstance(owner, str) else "",
                        path=path, document=doc.index, line=line, data=doc.data)
    return findings, resource


def check_loaded(loaded: LoadedFile, blob: str, rules: Rules) -> FileResult:
    findings = list(loaded.findings)
    result = FileResult(loaded.path, blob, findings, [], loaded.broken, loaded.documents)
    for doc in loaded.documents:
        doc_findings, resource = check_document(doc, loaded.path, rules)
        findings += doc_findings
        if resource is not None:
            references = _references(resource, doc, rules)
            findings += _template_findings(resource, doc, rules) + _self_dependency(resource, references)
            result.resources.append(resource)
            result.entries.append(_entry(resource, doc, rules))
            result.references += references
    if not loaded.documents and not loaded.broken:
        findings.append(Finding(path=loaded.path, line=1, column=1, pointer="", severity="warning",
                                rule="yaml.empty", message="the file holds no request",
                                hint="Write a request or delete the file."))
    findings.sort(key=Finding.sort_key)
    return result


def check_file(path: str, raw: bytes, blob: str, rules: Rules) -> FileResult:
    """Everything that can be said about one file on its own."""
    return check_loaded(load(path, raw), blob, rules)


def refused_file(path: str, blob: str) -> FileResult | None:
    """The result for a file Paved will not read because of its name (see `path_problem`), or None."""
    finding = path_finding(path)
    if finding is None:
        return None
    return FileResult(path, blob, [finding], [], broken=True)


# -- storing results -------------------------------------------------------------------------------
# As tuples of plain values, so a store can keep them with `marshal`.

def finding_to_tuple(f: Finding) -> tuple[Any, ...]:
    return (f.path, f.line, f.column, f.pointer, f.message, f.severity, f.rule, f.hint, f.document)


def finding_from_tuple(t: tuple[Any, ...] | list[Any]) -> Finding:
    return Finding(*t)


def to_record(result: FileResult) -> tuple[Any, ...]:
    return (
        result.path,
        result.blob,
        [finding_to_tuple(f) for f in result.findings],
        [(r.kind, r.name, r.owner, r.document, r.line, r.data) for r in result.resources],
        result.broken,
        [tuple(getattr(e, f) for f in Entry.__slots__) for e in result.entries],
        [tuple(getattr(r, f) for f in Reference.__slots__) for r in result.references],
    )


def record_bytes(result: FileResult) -> bytes:
    """The record of `result` as the bytes a store keeps and a process hands another."""
    return marshal.dumps(to_record(result))


def from_record_bytes(path: str, blob: str, record: bytes) -> FileResult | None:
    """`from_record` of the bytes `record_bytes` made."""
    return from_record(path, blob, marshal.loads(record))


def from_record(path: str, blob: str, record: tuple[Any, ...] | list[Any]) -> FileResult | None:
    """The stored result for `path` at `blob`; None when the record was judged for another path or blob."""
    stored_path, stored_blob, findings, resources, broken, entries, references = record
    if stored_path != path or stored_blob != blob:
        return None
    result = FileResult(
        path, blob, [finding_from_tuple(f) for f in findings],
        [Resource(kind=k, name=n, owner=o, path=path, document=d, line=ln, data=data)
         for k, n, o, d, ln, data in resources],
        broken, None, [Entry(*e) for e in entries], [Reference(*r) for r in references],
    )
    return result if is_for(result, path, blob) else None


def is_for(result: FileResult, path: str, blob: str) -> bool:
    """Whether `result` was judged for the file at `path` with content `blob`, everything in it included."""
    return (result.path == path and result.blob == blob
            and all(f.path == path for f in result.findings)
            and all(r.path == path for r in result.resources)
            and all(e.path == path for e in result.entries)
            and all(r.path == path for r in result.references))


class FileResults(Protocol):
    """Where judged files are kept, by rules digest, path and blob id."""

    def get_file(self, rules: Rules, path: str, blob: str) -> FileResult | None: ...

    def put_file(self, rules: Rules, result: FileResult) -> None: ...


def check_read(path: str, blob: str, raw: bytes, rules: Rules, label: str) -> FileResult:
    """Judge the bytes read for `path`, which must be the blob its listing names; a file listed without
    one (`blob` "", in a first judgement that hashes as it reads) takes the id of the bytes read."""
    found = content_id(raw, blob)
    if not blob:
        return check_file(path, raw, found, rules)
    if found != blob:
        raise ObjectMismatchError(
            f"{shown_path(path)} at {label} read as blob {found}, but its listing names {blob}",
            requested=blob, answer=found)
    return check_file(path, raw, blob, rules)


def check_files(tree: Tree, listing: Mapping[str, str], rules: Rules,
                store: FileResults | None = None) -> list[FileResult]:
    """Check every request file in `listing` (path -> blob id), reading only those not in `store`.

    A file whose name Paved refuses is a finding and is not read. The bytes read for a path must be the
    blob the listing names, or `ObjectMismatchError` is raised: a result is never judged from one
    file's content and kept for another's.
    """
    results: dict[str, FileResult] = {}
    wanted: list[str] = []
    for path in sorted(listing):
        if not is_request_file(path):
            continue
        refused = refused_file(path, listing[path])
        if refused is not None:
            results[path] = refused
            continue
        known = store.get_file(rules, path, listing[path]) if store is not None else None
        if known is not None and is_for(known, path, listing[path]):
            results[path] = known
        else:
            wanted.append(path)
    contents = tree.read_many(wanted)
    for path in wanted:
        raw = contents.get(path)
        if raw is None:
            continue
        result = check_read(path, listing[path], raw, rules, tree.label)
        results[path] = result
        if store is not None:
            store.put_file(rules, result)
    return [results[p] for p in sorted(results)]
