"""What Paved knows about each kind of request, read from the `x-paved` section of the kind's schema.

A kind schema (`schemas/kinds/<kind>.json`) says what a request may hold; its `x-paved` section says
what the request *means* to the rest of the catalogue: its plural, where its owner is named, which
fields name other resources (and so what it is applied after), which resource it belongs to, how a
team's people and budget are found, what a service's tier is, what follows what. The platform repo
owns these schemas, so a new kind is a schema file: no code names it. `docs/kinds.md` documents the
vocabulary.

Everything here is data. Nothing from a schema is evaluated: pointers are resolved against requests,
kind names are compared with the loaded kinds, and a malformed section stops the rules with a
`ConfigurationError` at its file and line, like any broken rule file.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from bot.errors import ConfigurationError

SECTION = "x-paved"
DEFAULT_OWNER = "/metadata/owner"
# A JSON pointer (RFC 6901) into a request, never the whole document. A `*` token stands for every item
# of the list at that place.
_POINTER = {"type": "string", "pattern": "^(/([^~/]|~[01])*)+$"}
_KIND = {"type": "string", "pattern": "^[A-Z][A-Za-z0-9]*$"}

# The meta-schema of an `x-paved` section. Kept in code rather than read from the platform repo, since it
# is the contract between a schema and this code: a repo cannot describe a kind in words Paved lacks.
META_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "x-paved",
    "description": "What Paved knows about a kind of request besides its shape (docs/kinds.md).",
    "type": "object",
    "additionalProperties": False,
    "required": ["plural"],
    "properties": {
        "plural": {"type": "string", "pattern": "^[a-z][a-z0-9-]*$"},
        "rank": {"type": "integer", "minimum": 0},
        "owner": _POINTER,
        "references": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["pointer"],
                "properties": {
                    "pointer": _POINTER,
                    "kind": _KIND,
                    "relation": {"type": "string", "pattern": "^[a-z][A-Za-z0-9]*$"},
                    "belongsTo": {"type": "boolean"},
                },
            },
        },
        "team": {
            "type": "object",
            "additionalProperties": False,
            "required": ["people"],
            "properties": {"people": {"type": "array", "minItems": 1, "items": _POINTER}, "budget": _POINTER},
        },
        "tier": _POINTER,
        "lifecycle": _POINTER,
        "template": _POINTER,
        "follows": {
            "type": "object",
            "additionalProperties": False,
            "required": ["kind", "name"],
            "properties": {"kind": _KIND, "name": _POINTER},
        },
        "deletionProtection": _POINTER,
        "keepsData": {"type": "boolean"},
    },
}


@dataclass(frozen=True, slots=True)
class ReferenceField:
    """A field of a request that names other resources.

    With `kind`, each value is a name of that kind; without it, each value is a whole `Kind/name`
    identity (as in `dependsOn`), and the relation is `dependsOn`. `belongs_to` marks the one reference
    that makes a resource part of another (a Database of its Service): it inherits that resource's tier,
    is judged by policies in its context, and its owners approve changes to it.
    """

    pointer: str
    kind: str | None
    relation: str
    belongs_to: bool = False


@dataclass(frozen=True, slots=True)
class Follows:
    """A kind whose resources follow the resources of `kind` that belong to the same parent: they apply
    after them and again when they change, and are handed their names (read at `name`)."""

    kind: str
    name: str


@dataclass(frozen=True, slots=True)
class KindDescription:
    """One kind, as its schema's `x-paved` section describes it (defaults where it says nothing)."""

    kind: str
    path: str
    plural: str
    rank: int | None = None
    owner: str = DEFAULT_OWNER
    references: tuple[ReferenceField, ...] = ()
    people: tuple[str, ...] = ()
    budget: str | None = None
    tier: str | None = None
    lifecycle: str | None = None
    template: str | None = None
    follows: Follows | None = None
    deletion_protection: str | None = None
    keeps_data: bool = False

    @property
    def is_team(self) -> bool:
        """Whether resources of this kind are teams: they own the others, and may own themselves."""
        return bool(self.people)

    @property
    def parent(self) -> ReferenceField | None:
        """The reference naming the resource this one belongs to, if any."""
        return next((r for r in self.references if r.belongs_to), None)


def values_at(data: Any, pointer: str) -> Iterator[tuple[str, Any]]:
    """Each (pointer, value) that `pointer` finds in `data`, a `*` token standing for every list item."""
    if "*" not in pointer:
        value = value_at(data, pointer, _MISSING)
        if value is not _MISSING:
            yield pointer, value
        return
    nodes: list[tuple[str, Any]] = [("", data)]
    for raw in pointer.split("/")[1:]:
        token = raw.replace("~1", "/").replace("~0", "~")
        found: list[tuple[str, Any]] = []
        for at, node in nodes:
            if token == "*" and isinstance(node, list):
                found += [(f"{at}/{i}", item) for i, item in enumerate(node)]
            elif isinstance(node, dict) and token in node:
                found.append((f"{at}/{raw}", node[token]))
        nodes = found
    yield from nodes


_MISSING = object()


def value_at(data: Any, pointer: str | None, missing: Any = None) -> Any:
    """The value at `pointer` in `data` (`missing` when absent, or when no pointer is given); a `*`
    token takes the first item."""
    if pointer is None:
        return missing
    if "*" in pointer:
        return next((v for _, v in values_at(data, pointer)), missing)
    # Read for every request and field a description names, so walked directly.
    for raw in pointer.split("/")[1:]:
        if not isinstance(data, dict):
            return missing
        token = raw.replace("~1", "/").replace("~0", "~") if "~" in raw else raw
        if token not in data:
            return missing
        data = data[token]
    return data


_COMPILED: list[Any] = []


def _meta_validator() -> Any:
    """The meta-schema, compiled once per process (rules are loaded for every revision judged)."""
    if not _COMPILED:
        import jsonschema_rs

        _COMPILED.append(jsonschema_rs.validator_for(META_SCHEMA))
    return _COMPILED[0]


def describe(kind: str, path: str, schema: Mapping[str, Any], line_of: Any) -> KindDescription:
    """The description of `kind` from its schema (loaded from `path`); `line_of(pointer)` positions
    a problem in the file. Raises `ConfigurationError` when the section is malformed."""
    section = schema.get(SECTION)
    if section is None:
        # Without its description a kind would be judged with no references, owners or tiers: refuse it
        # rather than let its guardrails go quiet.
        raise ConfigurationError(f"the schema of {kind} has no `{SECTION}` section, so Paved cannot tell what its "
                                 "requests mean to the rest of the catalogue", path=path, line=line_of(""),
                                 hint="Describe the kind (docs/kinds.md); Paved's own schemas/kinds/ describe "
                                      "the built-in kinds.")
    errors = sorted(_meta_validator().iter_errors(section),
                    key=lambda e: [str(t) for t in e.instance_path])
    if errors:
        first = errors[0]
        pointer = "/" + "/".join([SECTION, *(str(t).replace("~", "~0").replace("/", "~1")
                                              for t in first.instance_path)])
        raise ConfigurationError(f"`{pointer}` is not a valid kind description: {first.message}", path=path,
                                 line=line_of(pointer), hint="docs/kinds.md lists what `x-paved` may say.")
    references = []
    for item in section.get("references", ()):
        target = item.get("kind")
        named = [t for t in item["pointer"].split("/") if t and t != "*"]
        relation = item.get("relation") or ("dependsOn" if target is None else named[-1] if named else "reference")
        references.append(ReferenceField(item["pointer"], target, relation, bool(item.get("belongsTo"))))
    if sum(1 for r in references if r.belongs_to) > 1:
        raise ConfigurationError(f"{kind} belongs to more than one resource: mark one reference `belongsTo`",
                                 path=path, line=line_of(f"/{SECTION}/references"))
    team = section.get("team") or {}
    follows = section.get("follows")
    return KindDescription(
        kind=kind, path=path, plural=section["plural"], rank=section.get("rank"),
        owner=section.get("owner", DEFAULT_OWNER), references=tuple(references),
        people=tuple(team.get("people", ())), budget=team.get("budget"),
        tier=section.get("tier"), lifecycle=section.get("lifecycle"), template=section.get("template"),
        follows=Follows(follows["kind"], follows["name"]) if follows else None,
        deletion_protection=section.get("deletionProtection"), keeps_data=bool(section.get("keepsData")),
    )


@dataclass(frozen=True, slots=True)
class Kinds:
    """Every loaded kind's description, in the order kinds sort when nothing else orders them; `team` is
    the kind whose resources are teams (they own every resource), if the rules have one."""

    by_kind: dict[str, KindDescription] = field(default_factory=dict)
    # Asked for every request judged, so worked out once.
    team: str | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        object.__setattr__(self, "team", next((d.kind for d in self.by_kind.values() if d.is_team), None))

    def __getitem__(self, kind: str) -> KindDescription:
        found = self.by_kind.get(kind)
        return found if found is not None else KindDescription(kind, "", kind.lower())

    def __iter__(self) -> Iterator[KindDescription]:
        return iter(self.by_kind.values())

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.by_kind)

    def order(self, kind: str) -> int:
        """Where resources of `kind` sort when nothing else orders them."""
        names = self.names
        return names.index(kind) if kind in names else len(names)

    def parent_kinds(self) -> set[str]:
        """The kinds other resources belong to."""
        return {d.parent.kind for d in self if d.parent is not None and d.parent.kind is not None}

    def parents(self) -> dict[str, str]:
        """Each kind that belongs to another, and that other kind."""
        return {d.kind: d.parent.kind for d in self if d.parent is not None and d.parent.kind is not None}

    def parent_of(self, kind: str, parent_name: str | None) -> str | None:
        """The identity of the resource a `kind` resource belongs to, given its parent's name."""
        parent = self[kind].parent
        if parent is None or parent.kind is None or not parent_name:
            return None
        return f"{parent.kind}/{parent_name}"

    def followed(self) -> dict[str, str]:
        """Each kind other resources follow, and the pointer to the name they are handed."""
        return {d.follows.kind: d.follows.name for d in self if d.follows is not None}

    def followers_of(self, kind: str) -> list[str]:
        """The kinds whose resources follow resources of `kind`."""
        return [d.kind for d in self if d.follows is not None and d.follows.kind == kind]

    def with_template(self) -> str | None:
        """The kind whose requests name a golden-path template, if any."""
        return next((d.kind for d in self if d.template), None)

    def by_name(self, text: str) -> str | None:
        """The kind `text` names, by its name or its plural, in any case."""
        wanted = text.lower()
        return next((d.kind for d in self if wanted in (d.kind.lower(), d.plural.lower())), None)


def order_kinds(descriptions: Iterable[KindDescription]) -> list[KindDescription]:
    """Ranked kinds first, by rank; then the others, by name."""
    return sorted(descriptions, key=lambda d: (d.rank is None, d.rank or 0, d.kind))


def check_kinds(kinds: Kinds, line_of: Any) -> None:
    """Refuse descriptions that name kinds the rules do not have; `line_of(path, pointer)` positions it."""
    known = kinds.names
    hint = f"The kinds are {', '.join(known)}."
    teams = [d for d in kinds if d.is_team]
    if len(teams) > 1:
        raise ConfigurationError(f"{teams[1].kind} and {teams[0].kind} both describe teams; only one kind may",
                                 path=teams[1].path, line=line_of(teams[1].path, f"/{SECTION}/team"))
    for d in kinds:
        for i, r in enumerate(d.references):
            if r.kind is not None and r.kind not in known:
                raise ConfigurationError(f"the reference at {r.pointer} names the unknown kind {r.kind}",
                                         path=d.path, line=line_of(d.path, f"/{SECTION}/references/{i}/kind"),
                                         hint=hint)
        if d.follows is not None:
            if d.follows.kind not in known:
                raise ConfigurationError(f"{d.kind} follows the unknown kind {d.follows.kind}", path=d.path,
                                         line=line_of(d.path, f"/{SECTION}/follows/kind"), hint=hint)
            if d.parent is None:
                raise ConfigurationError(f"{d.kind} follows {d.follows.kind} of the resource it belongs to, "
                                         "but belongs to none", path=d.path,
                                         line=line_of(d.path, f"/{SECTION}/follows"),
                                         hint="Mark the reference to its parent `belongsTo: true`.")
