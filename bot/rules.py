"""The rules a catalogue is judged by, read from one revision of the platform repo.

Rules are the kind schemas (`schemas/kinds/`), the guardrail policies (`schemas/policies/`), the
standards that live resources are scored against (`schemas/standards/`, see `bot.standards`), the
prices (`schemas/prices.yaml`) and the golden-path templates (`templates/*/cookiecutter.json`). A plan
always reads them from the pull request's base, so a pull request cannot loosen what judges it.

A broken rule file is not a finding about a request: it stops Paved with a `ConfigurationError`
naming the file and line, because nothing can be judged fairly against it.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from typing import Any, Literal

from bot.errors import ConfigurationError
from bot.kinds import KindDescription, Kinds, check_kinds, describe, order_kinds
from bot.model import Tree, path_problem, shown_path
from bot.yamlio import load as load_yaml
from bot.yamlio import resolve_pointer

KINDS_DIR = "schemas/kinds/"
POLICIES_DIR = "schemas/policies/"
POLICY_SCHEMA = "schemas/policy.schema.json"
STANDARDS_DIR = "schemas/standards/"
STANDARD_SCHEMA = "schemas/standard.schema.json"
PRICES = "schemas/prices.yaml"
TEMPLATES_DIR = "templates/"
RULE_PREFIXES = ("schemas/", "templates/")
# Bumped whenever what Paved derives from a file changes, so cached results from older code are unused.
ENGINE_VERSION = "3"
# Variables Paved fills from the request's metadata; the rest of a template's variables are parameters.
FILLED_BY_PAVED = frozenset({"name", "owner", "description"})

ParameterType = Literal["string", "boolean", "number"]


@dataclass(frozen=True, slots=True)
class Parameter:
    """One variable of a golden-path template a developer may set in `spec.template.parameters`."""

    name: str
    type: ParameterType
    default: Any
    choices: tuple[Any, ...] | None = None
    description: str = ""


@dataclass(frozen=True, slots=True)
class Template:
    """A golden path under `templates/NAME/`, as its `cookiecutter.json` describes it."""

    name: str
    path: str
    parameters: dict[str, Parameter]
    description: str = ""


@dataclass(frozen=True, slots=True)
class Policy:
    """A guardrail: a JSON Schema `rule` that every request of the listed `kinds` must satisfy."""

    id: str
    title: str
    severity: Literal["error", "warning"]
    kinds: tuple[str, ...]
    message: str
    rule: dict[str, Any] = field(repr=False)
    path: str = ""
    hint: str | None = None
    pointer: str | None = None
    description: str = ""


@dataclass(frozen=True, slots=True)
class Fix:
    """How to meet a standard: a hint, a page that says how (`link`), and the JSON pointer of a link in
    the scored resource's document (`link_from`: its upgrade pull requests, its drift issue), which wins
    when the document has one there."""

    hint: str
    link: str | None = None
    link_from: str | None = None


@dataclass(frozen=True, slots=True)
class Standard:
    """What resources of the listed `kinds` (and `tiers`; empty: every tier) should be as they exist: a JSON
    Schema `rule` over each resource's document (its request and live state, see `bot.standards`).

    A failure blocks nothing: the scorecard says `message` (with the document's text at `detail`, when
    there is one) and how to `fix` it.
    """

    id: str
    title: str
    severity: Literal["error", "warning"]
    kinds: tuple[str, ...]
    message: str
    fix: Fix
    rule: dict[str, Any] = field(repr=False)
    tiers: tuple[str, ...] = ()
    path: str = ""
    detail: str | None = None
    description: str = ""

    def applies_to(self, kind: str, tier: str | None) -> bool:
        return kind in self.kinds and (not self.tiers or tier in self.tiers)


@dataclass(frozen=True, slots=True)
class Price:
    """The monthly price of one kind: a flat amount, or an amount per value of the field at `field`."""

    monthly: float | dict[str, float]
    field: str | None = None

    def of(self, data: dict[str, Any]) -> float:
        if isinstance(self.monthly, dict):
            value = resolve_pointer(data, self.field or "")
            return float(self.monthly.get(str(value), 0.0)) if value is not None else 0.0
        return float(self.monthly)


@dataclass(slots=True)
class Rules:
    """Everything needed to judge requests, with a digest that changes whenever any of it changes."""

    kinds: dict[str, dict[str, Any]]
    kind_paths: dict[str, str]
    policies: tuple[Policy, ...]
    prices: dict[str, Price]
    currency: str
    templates: dict[str, Template]
    digest: str
    described: Kinds = field(default_factory=Kinds)
    standards: tuple[Standard, ...] = ()
    _validators: dict[str, Any] = field(default_factory=dict, repr=False)
    _policies_of: dict[str, tuple[Policy, ...]] = field(default_factory=dict, repr=False)
    _context_read: dict[str, bool] = field(default_factory=dict, repr=False)

    def __getstate__(self) -> dict[str, Any]:
        # Compiled validators do not cross to another process (a judging worker): each compiles its own.
        state = {f.name: getattr(self, f.name) for f in fields(self)}
        return {**state, "_validators": {}}

    def __setstate__(self, state: dict[str, Any]) -> None:
        for name, value in state.items():
            object.__setattr__(self, name, value)

    def validator(self, key: str, schema: dict[str, Any]) -> Any:
        """A compiled validator for `schema`, built once per rules object."""
        compiled = self._validators.get(key)
        if compiled is None:
            import jsonschema_rs  # here, as a warm `paved validate` reads no rules: its start-up is a target

            compiled = jsonschema_rs.validator_for(schema)
            self._validators[key] = compiled
        return compiled

    def kind_validator(self, kind: str) -> Any:
        return self.validator(f"kind:{kind}", self.kinds[kind])

    def policy_validator(self, policy: Policy) -> Any:
        return self.validator(f"policy:{policy.id}", policy.rule)

    def standard_validator(self, standard: Standard) -> Any:
        return self.validator(f"standard:{standard.id}", standard.rule)

    def monthly_cost(self, kind: str, data: dict[str, Any]) -> float:
        price = self.prices.get(kind)
        return price.of(data) if price else 0.0

    def describe(self, kind: str) -> KindDescription:
        """What Paved knows about `kind` (`bot.kinds.KindDescription`), from its schema's `x-paved`."""
        return self.described[kind]

    def policies_for(self, kind: str) -> tuple[Policy, ...]:
        found = self._policies_of.get(kind)
        if found is None:
            found = self._policies_of[kind] = tuple(p for p in self.policies if kind in p.kinds)
        return found

    def reads_context(self, kind: str) -> bool:
        """Whether a policy of `kind` may judge a request differently by what it belongs to (`context`).

        A request whose policies never read it is judged with its file, whatever it belongs to, instead of
        waiting for the whole catalogue (and is not judged again when its service changes)."""
        found = self._context_read.get(kind)
        if found is None:
            found = self._context_read[kind] = any(reads_context(p.rule) for p in self.policies_for(kind))
        return found

    def policy_gate(self, kind: str) -> Any:
        """One validator that passes exactly when every policy of `kind` passes.

        Checking a request against it converts the request for the validator once instead of once per
        policy; only a request that fails it is checked policy by policy to say which ones.
        """
        rules = [{**p.rule, "$id": f"urn:paved:policy:{p.id}"} for p in self.policies_for(kind)]
        return self.validator(f"gate:{kind}", {"allOf": rules})


# Keywords that say nothing of the value they stand over.
_ANNOTATIONS = frozenset({
    "$schema", "$id", "$comment", "$anchor", "$dynamicAnchor", "$vocabulary", "$defs", "definitions",
    "title", "description", "examples", "default", "deprecated", "readOnly", "writeOnly",
})
# ... and those that, over a whole request, say only which keys it has or (`type`) that it is an object: a
# policy always sees a request with the key `context`, so none of these can tell one context from another.
_BLIND_TO_CONTEXT = _ANNOTATIONS | {
    "type", "required", "minProperties", "maxProperties", "propertyNames", "dependentRequired"}
# Keywords whose subschemas judge the request itself (not one of its values).
_IN_PLACE = ("allOf", "anyOf", "oneOf")
_IN_PLACE_ONE = ("not", "if", "then", "else")


def reads_context(rule: Any) -> bool:
    """Whether a policy's `rule` may give another outcome for the same request in another `context`.

    Decided from the rule's words alone and on the safe side: the rule reads the context unless every
    keyword that applies to the whole request is known to leave `context` alone (a value's subschema,
    under `properties`, sees only that value; `properties.context` must accept anything, and
    `additionalProperties` must not reach it). Any keyword not known here (`const`, `patternProperties`,
    `unevaluatedProperties`, a `$ref` outside the rule) counts as reading it."""
    return _reads_context(rule, rule, set())


def _reads_context(schema: Any, root: Any, following: set[str]) -> bool:
    if isinstance(schema, bool):
        return False
    if not isinstance(schema, dict):
        return True
    if schema is not root and "$id" in schema:
        return True  # a resource of its own, whose `$ref`s resolve against it, not against the rule
    for keyword, value in schema.items():
        if keyword in _BLIND_TO_CONTEXT:
            continue
        if keyword == "properties":
            if not isinstance(value, dict) or ("context" in value and not _accepts_anything(value["context"])):
                return True
        elif keyword == "additionalProperties":
            listed = schema.get("properties")
            if not (isinstance(listed, dict) and "context" in listed) and not _accepts_anything(value):
                return True
        elif keyword in _IN_PLACE:
            if not isinstance(value, list) or any(_reads_context(s, root, following) for s in value):
                return True
        elif keyword in _IN_PLACE_ONE or keyword == "dependentSchemas":
            parts = value.values() if keyword == "dependentSchemas" and isinstance(value, dict) else [value]
            if any(_reads_context(s, root, following) for s in parts):
                return True
        elif keyword == "$ref":
            if not isinstance(value, str) or not (value == "#" or value.startswith("#/")):
                return True  # another document, or an anchor: not followed here
            if value in following:
                continue  # a rule that refers back to itself: the first visit decides
            target = resolve_pointer(root, value[1:])
            if target is None or _reads_context(target, root, following | {value}):
                return True
        else:
            return True
    return False


def _accepts_anything(schema: Any) -> bool:
    return schema is True or (isinstance(schema, dict) and all(k in _ANNOTATIONS for k in schema))


def is_platform_repo(tree: Tree) -> bool:
    """Whether `tree` is a platform repo (it has kind schemas), as opposed to, say, a service's repo."""
    return bool(tree.files(KINDS_DIR))


def rule_files(tree: Tree) -> dict[str, str]:
    """Every file that makes up the rules at this revision, with its blob id."""
    found: dict[str, str] = {}
    for prefix in RULE_PREFIXES:
        found.update(tree.files(prefix))
    return found


# What decides how Paved judges, builds and runs for a platform repo besides the rules themselves: its
# settings, its workflows and who reviews. A pull request changing any of it is a platform change.
PLATFORM_FOLDERS = ("schemas/", "templates/", ".github/")
PLATFORM_FILES = ("paved.yaml", "CODEOWNERS", "docs/CODEOWNERS")


def platform_files(tree: Tree) -> dict[str, str]:
    """Every file of the platform's own rules and settings at this revision, with its blob id."""
    found: dict[str, str] = {}
    for prefix in PLATFORM_FOLDERS:
        found.update(tree.files(prefix))
    for path, data in tree.read_many(PLATFORM_FILES).items():
        found[path] = hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()
    return found


def rules_digest(tree: Tree) -> str:
    """The digest `load_rules` gives the rules at this revision, from their files' ids alone."""
    return digest_of(rule_files(tree))


def digest_of(files: dict[str, str]) -> str:
    """A short digest of the rule files (by blob id) and the engine version."""
    h = hashlib.sha256(ENGINE_VERSION.encode())
    for path in sorted(files):
        if path.startswith(RULE_PREFIXES[0]) or path.endswith("/cookiecutter.json"):
            h.update(f"{path}\0{files[path]}\n".encode())
    return h.hexdigest()[:16]


def _json(path: str, raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except UnicodeDecodeError as exc:
        raise ConfigurationError("the file is not valid UTF-8", path=path) from exc
    except json.JSONDecodeError as exc:
        raise ConfigurationError(f"invalid JSON: {exc.msg}", path=path, line=exc.lineno) from exc


def _check_schema(path: str, schema: Any) -> None:
    """Refuse a schema that is not valid JSON Schema or does not compile, naming where it is wrong."""
    import jsonschema_rs  # here, as a warm `paved validate` reads no rules: its start-up is a target

    if not isinstance(schema, dict):
        raise ConfigurationError("a schema must be a JSON object", path=path)
    try:
        jsonschema_rs.meta.validate(schema)
        jsonschema_rs.validator_for(schema)
    except jsonschema_rs.ValidationError as exc:
        where = "/" + "/".join(str(t) for t in exc.instance_path)
        raise ConfigurationError(f"not a valid JSON Schema at {where}: {exc.message}", path=path) from exc
    except (ValueError, jsonschema_rs.ReferencingError) as exc:
        raise ConfigurationError(f"the schema does not compile: {exc}", path=path) from exc


def _line_in(raw: bytes) -> Any:
    """`line_of(pointer)` for a JSON file: JSON is YAML 1.2, so the YAML loader positions its nodes."""

    def line_of(pointer: str) -> int:
        loaded = load_yaml("", raw)
        return loaded.documents[0].position(pointer)[0] if loaded.documents else 0
    return line_of


def _load_kinds(tree: Tree, files: dict[str, str]) -> tuple[dict[str, Any], dict[str, str], Kinds]:
    kinds: dict[str, Any] = {}
    paths: dict[str, str] = {}
    lines: dict[str, Any] = {}
    described = []
    names = sorted(p for p in files if p.startswith(KINDS_DIR) and p.endswith(".json") and p.count("/") == 2)
    for path, raw in tree.read_many(names).items():
        schema = _json(path, raw)
        _check_schema(path, schema)
        kind = resolve_pointer(schema, "/properties/kind/const")
        if not isinstance(kind, str):
            raise ConfigurationError("a kind schema must fix its kind with properties.kind.const", path=path)
        if kind in kinds:
            raise ConfigurationError(f"kind {kind} is defined twice (also in {paths[kind]})", path=path)
        kinds[kind] = schema
        paths[kind] = path
        lines[path] = _line_in(raw)
        described.append(describe(kind, path, schema, lines[path]))
    if not kinds:
        raise ConfigurationError(f"no kind schemas found under {KINDS_DIR}",
                                 hint="A platform repo needs schemas/kinds/*.json (see Paved's own repo).")
    ordered = Kinds({d.kind: d for d in order_kinds(described)})
    check_kinds(ordered, lambda path, pointer: lines[path](pointer))
    plurals: dict[str, str] = {}
    for d in ordered:
        if d.plural in plurals:
            raise ConfigurationError(f"{d.kind} and {plurals[d.plural]} share the plural {d.plural!r}", path=d.path,
                                     line=lines[d.path]("/x-paved/plural"))
        plurals[d.plural] = d.kind
    return {k: kinds[k] for k in ordered.names}, paths, ordered


def _unknown_kind(kind: str, kinds: Iterable[str], path: str, line: int, what: str) -> ConfigurationError:
    known = list(kinds)
    return ConfigurationError(f"{what} names the unknown kind {kind!r}", path=path, line=line,
                              hint=f"The kinds are {', '.join(known)} (one schema each under {KINDS_DIR}).")


def _load_policies(tree: Tree, files: dict[str, str], kinds: dict[str, Any]) -> tuple[Policy, ...]:
    names = sorted(p for p in files if p.startswith(POLICIES_DIR) and p.endswith(".json") and p.count("/") == 2)
    meta: Any = None
    if POLICY_SCHEMA in files:
        import jsonschema_rs  # here, as a warm `paved validate` reads no rules: its start-up is a target

        meta = jsonschema_rs.validator_for(_json(POLICY_SCHEMA, tree.read(POLICY_SCHEMA)))
    policies: list[Policy] = []
    for path, raw in sorted(tree.read_many(names).items()):
        doc = _json(path, raw)
        if meta is not None:
            problems = [f"{'/'.join(str(t) for t in e.instance_path) or '(root)'}: {e.message}"
                        for e in meta.iter_errors(doc)]
            if problems:
                raise ConfigurationError("not a valid policy: " + "; ".join(problems[:3]), path=path)
        if not isinstance(doc, dict) or not isinstance(doc.get("rule"), dict):
            raise ConfigurationError("a policy needs a `rule` schema", path=path)
        stem = path.rsplit("/", 1)[1].removesuffix(".json")
        if doc.get("id") != stem:
            raise ConfigurationError(f"the policy id {doc.get('id')!r} must equal the file name {stem!r}", path=path)
        for i, kind in enumerate(doc.get("kinds", [])):
            if kind not in kinds:
                raise _unknown_kind(kind, kinds, path, _line_in(raw)(f"/kinds/{i}"), "the policy")
        _check_schema(path, doc["rule"])
        policies.append(Policy(
            id=stem, title=str(doc.get("title", stem)), severity=doc.get("severity", "error"),
            kinds=tuple(doc.get("kinds", ())), message=str(doc.get("message", doc.get("title", stem))),
            rule=doc["rule"], path=path, hint=doc.get("hint"), pointer=doc.get("pointer"),
            description=str(doc.get("description", "")),
        ))
    return tuple(policies)


def _load_standards(tree: Tree, files: dict[str, str], kinds: dict[str, Any]) -> tuple[Standard, ...]:
    """The standards under `schemas/standards/`, each checked against `schemas/standard.schema.json` (when
    the repo has it) with the line of the first problem, its kinds against the loaded kinds, its rule as a
    schema that compiles."""
    names = sorted(p for p in files if p.startswith(STANDARDS_DIR) and p.endswith(".json") and p.count("/") == 2)
    if not names:
        return ()
    meta: Any = None
    if STANDARD_SCHEMA in files:
        import jsonschema_rs  # here, as a warm `paved validate` reads no rules: its start-up is a target

        meta_doc = _json(STANDARD_SCHEMA, tree.read(STANDARD_SCHEMA))
        _check_schema(STANDARD_SCHEMA, meta_doc)
        meta = jsonschema_rs.validator_for(meta_doc)
    standards: list[Standard] = []
    for path, raw in sorted(tree.read_many(names).items()):
        doc = _json(path, raw)
        line_of = _line_in(raw)
        if meta is not None:
            errors = list(meta.iter_errors(doc))
            if errors:
                first = "/" + "/".join(str(t) for t in errors[0].instance_path)
                problems = [f"{'/'.join(str(t) for t in e.instance_path) or '(root)'}: {e.message}" for e in errors[:3]]
                raise ConfigurationError("not a valid standard: " + "; ".join(problems), path=path,
                                         line=line_of(first if first != "/" else ""),
                                         hint=f"A standard follows {STANDARD_SCHEMA} (see docs/standards.md).")
        if not isinstance(doc, dict) or not isinstance(doc.get("rule"), dict):
            raise ConfigurationError("a standard needs a `rule` schema", path=path)
        stem = path.rsplit("/", 1)[1].removesuffix(".json")
        if doc.get("id") != stem:
            raise ConfigurationError(f"the standard id {doc.get('id')!r} must equal the file name {stem!r}",
                                     path=path, line=line_of("/id") if "id" in doc else 0)
        for i, kind in enumerate(doc.get("kinds") or []):
            if kind not in kinds:
                raise _unknown_kind(str(kind), kinds, path, line_of(f"/kinds/{i}"), "the standard")
        try:
            _check_schema(path, doc["rule"])
        except ConfigurationError as exc:
            raise ConfigurationError(exc.message.removeprefix(f"{path}: "), path=path, line=line_of("/rule")) from exc
        fix = doc["fix"] if isinstance(doc.get("fix"), dict) else {}
        standards.append(Standard(
            id=stem, title=str(doc.get("title", stem)), severity=doc.get("severity", "warning"),
            kinds=tuple(str(k) for k in doc.get("kinds") or ()),
            message=str(doc.get("message", doc.get("title", stem))),
            fix=Fix(str(fix.get("hint", "")), _text_or_none(fix.get("link")), _text_or_none(fix.get("linkFrom"))),
            rule=doc["rule"],
            tiers=tuple(str(t) for t in doc.get("tiers") or ()), path=path, detail=_text_or_none(doc.get("detail")),
            description=str(doc.get("description", ""))))
    return tuple(standards)


def _text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _load_prices(tree: Tree, files: dict[str, str], kinds: Iterable[str]) -> tuple[dict[str, Price], str]:
    if PRICES not in files:
        return {}, "USD"
    loaded = load_yaml(PRICES, tree.read(PRICES))
    if loaded.findings:
        first = loaded.findings[0]
        raise ConfigurationError(first.message, path=PRICES, line=first.line)
    data = loaded.documents[0].data if loaded.documents else None
    if not isinstance(data, dict) or not isinstance(data.get("prices"), dict):
        raise ConfigurationError("expected a mapping with `currency` and `prices`", path=PRICES)
    prices: dict[str, Price] = {}
    for kind, entry in data["prices"].items():
        line = loaded.documents[0].position(f"/prices/{kind}")[0]
        if kind not in kinds:
            raise _unknown_kind(str(kind), kinds, PRICES, line, "the price list")
        if not isinstance(entry, dict) or "monthly" not in entry:
            raise ConfigurationError(f"the price of {kind} needs `monthly`", path=PRICES, line=line)
        monthly = entry["monthly"]
        if isinstance(monthly, dict):
            if not isinstance(entry.get("field"), str):
                raise ConfigurationError(f"the price of {kind} varies by value, so it needs `field`",
                                         path=PRICES, line=line)
            prices[kind] = Price({str(k): float(v) for k, v in monthly.items()}, entry["field"])
        elif isinstance(monthly, int | float) and not isinstance(monthly, bool):
            prices[kind] = Price(float(monthly))
        else:
            raise ConfigurationError(f"the price of {kind} must be a number or a map of numbers",
                                     path=PRICES, line=line)
    return prices, str(data.get("currency", "USD"))


def _parameter(name: str, default: Any, description: str) -> Parameter | None:
    if isinstance(default, bool):
        return Parameter(name, "boolean", default, None, description)
    if isinstance(default, int | float):
        return Parameter(name, "number", default, None, description)
    if isinstance(default, list) and default:
        kinds = {type(v) for v in default}
        if kinds <= {str}:
            return Parameter(name, "string", default[0], tuple(default), description)
        return None
    if isinstance(default, str):
        return Parameter(name, "string", default, None, description)
    return None  # dicts are cookiecutter's structured variables; not settable from a request


_TEMPLATE_FILE = re.compile(r"templates/([^/]+)/cookiecutter\.json\Z")


def _load_templates(tree: Tree, files: dict[str, str]) -> dict[str, Template]:
    names = sorted(p for p in files if _TEMPLATE_FILE.match(p))
    templates: dict[str, Template] = {}
    for path, raw in tree.read_many(names).items():
        doc = _json(path, raw)
        if not isinstance(doc, dict):
            raise ConfigurationError("cookiecutter.json must be a JSON object", path=path)
        prompts = doc.get("__prompts__", {})
        prompts = prompts if isinstance(prompts, dict) else {}
        parameters: dict[str, Parameter] = {}
        for key, default in doc.items():
            if key.startswith("_") or key in FILLED_BY_PAVED:
                continue
            prompt = prompts.get(key, "")
            description = prompt if isinstance(prompt, str) else str(prompt.get("__prompt__", ""))
            parameter = _parameter(key, default, description)
            if parameter is not None:
                parameters[key] = parameter
        match = _TEMPLATE_FILE.match(path)
        assert match is not None
        name = match.group(1)
        readme = f"{TEMPLATES_DIR}{name}/README.md"
        description = ""
        if readme in files:
            text = tree.read(readme).decode("utf-8", "replace")
            description = next((ln.strip() for ln in text.splitlines()
                                if ln.strip() and not ln.startswith("#")), "")
        templates[name] = Template(name, f"{TEMPLATES_DIR}{name}", parameters, description)
    return templates


def load_rules(tree: Tree) -> Rules:
    """Read and check every rule at this revision; raise `ConfigurationError` on the first broken file."""
    files = rule_files(tree)
    for path in sorted(files):
        # Templates are copied whole into the repositories Paved creates, so every name counts, not only
        # the files read here.
        problem = path_problem(path)
        if problem is not None:
            raise ConfigurationError(f"the file name {problem}: Paved reads no rule file so named",
                                     path=shown_path(path),
                                     hint="Rename the file: a name may hold no line breaks, tabs or other "
                                          "control characters, and must be valid UTF-8.")
    kinds, kind_paths, described = _load_kinds(tree, files)
    policies = _load_policies(tree, files, kinds)
    standards = _load_standards(tree, files, kinds)
    prices, currency = _load_prices(tree, files, kinds)
    templates = _load_templates(tree, files)
    return Rules(kinds, kind_paths, policies, prices, currency, templates, digest_of(files), described,
                 standards=standards)
