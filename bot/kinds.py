"""What Paved knows about each kind of request, read from the `x-paved` section of the kind's schema.

A kind schema (`schemas/kinds/<kind>.json`) says what a request may hold; its `x-paved` section says
what the request *means* to the rest of the catalogue: its plural, where its owner is named, which
fields name other resources (and so what it is applied after), which resource it belongs to, how a
team's people and budget are found, what a service's tier is, what follows what, what it becomes in
Backstage. The platform repo owns these schemas, so a new kind is a schema file: no code names it.
`docs/kinds.md` documents the vocabulary.

Everything here is data. Nothing from a schema is evaluated: pointers are resolved against requests,
kind names are compared with the loaded kinds, and a malformed section stops the rules with a
`ConfigurationError` at its file and line, like any broken rule file.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from bot.errors import ConfigurationError

SECTION = "x-paved"
DEFAULT_OWNER = "/metadata/owner"
# A JSON pointer (RFC 6901) into a request, never the whole document. A `*` token stands for every item
# of the list at that place.
_POINTER = {"type": "string", "pattern": "^(/([^~/]|~[01])*)+$"}
_KIND = {"type": "string", "pattern": "^[A-Z][A-Za-z0-9]*$"}
# A Backstage annotation key (an optional DNS-subdomain prefix, then a name), as Backstage validates them.
_ANNOTATION = {"type": "string", "pattern": r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
                                            r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$", "maxLength": 316}
ANNOTATION = "annotation"
# How a kind's resources become Backstage entities (`paved export backstage`); see docs/kinds.md. A key
# that means something for some entities only is refused on the others, so a description cannot seem to
# say more than the export does.
_BACKSTAGE: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["entity"],
    "properties": {
        "entity": {"enum": ["Group", "Component", "Resource", ANNOTATION]},
        "type": {"type": "string", "pattern": "^[a-z][a-z0-9-]*$"},
        "githubSlug": _ANNOTATION,
        "annotations": {
            "type": "object",
            "propertyNames": _ANNOTATION,
            # One pointer, or several whose values make one text; said without `oneOf`, so a wrong
            # pointer is reported as a wrong pointer.
            "additionalProperties": {"type": ["string", "array"], "pattern": _POINTER["pattern"], "minItems": 1,
                                     "items": _POINTER},
        },
        "profile": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"displayName": _POINTER, "email": _POINTER, "contactAnnotation": _ANNOTATION},
        },
        "members": {"type": "array", "minItems": 1, "items": _POINTER},
        "system": _POINTER,
        "dependsOn": {"type": "boolean"},
        "dependencyOf": {"type": "boolean"},
        "annotation": _ANNOTATION,
        "value": {"type": "array", "minItems": 1, "items": _POINTER},
    },
    "allOf": [
        {"if": {"properties": {"entity": {"const": ANNOTATION}}},
         "then": {"required": ["annotation", "value"],
                  "properties": {k: False for k in ("type", "githubSlug", "annotations", "profile", "members",
                                                    "system", "dependsOn", "dependencyOf")}},
         "else": {"required": ["type"], "properties": {"annotation": False, "value": False}}},
        {"if": {"properties": {"entity": {"const": "Group"}}},
         "then": {"properties": {"system": False, "dependsOn": False, "dependencyOf": False}},
         "else": {"properties": {"profile": False, "members": False}}},
    ],
}

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
        "templateAnswers": {"type": "array", "items": _POINTER},
        "follows": {
            "type": "object",
            "additionalProperties": False,
            "required": ["kind", "name"],
            "properties": {"kind": _KIND, "name": _POINTER},
        },
        "deletionProtection": _POINTER,
        "keepsData": {"type": "boolean"},
        "backstage": _BACKSTAGE,
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
class Backstage:
    """How resources of a kind become Backstage entities (`x-paved.backstage`, docs/kinds.md).

    `entity` is the Backstage kind, or `annotation` for a kind that is a relation rather than a thing: each
    resource adds `value` (its values joined by `:`) to the annotation `annotation` of the entity of what
    it belongs to. `annotations` maps an annotation to the pointers whose values make it (joined by a
    space). `github_slug` is the annotation that holds `ORG/NAME`. Groups take `display_name`, `email`
    (a value that is no address goes to `contact_annotation`) and `members`; `system` points at the name
    of a Component's system; `depends_on` follows the kind's references, `dependency_of` what it belongs
    to (and puts the entity in that entity's system).
    """

    entity: Literal["Group", "Component", "Resource", "annotation"]
    type: str | None = None
    github_slug: str | None = None
    annotations: tuple[tuple[str, tuple[str, ...]], ...] = ()
    display_name: str | None = None
    email: str | None = None
    contact_annotation: str | None = None
    members: tuple[str, ...] = ()
    system: str | None = None
    depends_on: bool = False
    dependency_of: bool = False
    annotation: str | None = None
    value: tuple[str, ...] = ()


def _backstage(section: Mapping[str, Any] | None) -> Backstage | None:
    if section is None:
        return None
    profile = section.get("profile") or {}
    return Backstage(
        entity=section["entity"], type=section.get("type"), github_slug=section.get("githubSlug"),
        annotations=tuple((name, (p,) if isinstance(p, str) else tuple(p))
                          for name, p in (section.get("annotations") or {}).items()),
        display_name=profile.get("displayName"), email=profile.get("email"),
        contact_annotation=profile.get("contactAnnotation"), members=tuple(section.get("members", ())),
        system=section.get("system"), depends_on=bool(section.get("dependsOn")),
        dependency_of=bool(section.get("dependencyOf")), annotation=section.get("annotation"),
        value=tuple(section.get("value", ())),
    )


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
    # Fields besides the template section that a project's template answers come from (its name,
    # description, owner ...): changing one offers the project an upgrade.
    template_answers: tuple[str, ...] = ()
    follows: Follows | None = None
    deletion_protection: str | None = None
    keeps_data: bool = False
    # None: the kind is not exported to Backstage.
    backstage: Backstage | None = None

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
    exported = _backstage(section.get("backstage"))
    if exported is not None and (exported.dependency_of or exported.entity == ANNOTATION) \
            and not any(r.belongs_to for r in references):
        where = "dependencyOf" if exported.dependency_of else "entity"
        raise ConfigurationError(f"{kind} is exported to Backstage with what it belongs to, but belongs to none",
                                 path=path, line=line_of(f"/{SECTION}/backstage/{where}"),
                                 hint="Mark the reference to its parent `belongsTo: true`.")
    team = section.get("team") or {}
    follows = section.get("follows")
    return KindDescription(
        kind=kind, path=path, plural=section["plural"], rank=section.get("rank"),
        owner=section.get("owner", DEFAULT_OWNER), references=tuple(references),
        people=tuple(team.get("people", ())), budget=team.get("budget"),
        tier=section.get("tier"), lifecycle=section.get("lifecycle"), template=section.get("template"),
        template_answers=tuple(section.get("templateAnswers", ())),
        follows=Follows(follows["kind"], follows["name"]) if follows else None,
        deletion_protection=section.get("deletionProtection"), keeps_data=bool(section.get("keepsData")),
        backstage=exported,
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

    def parents_of_followers(self, resources: Iterable[tuple[str, Any]]) -> set[str]:
        """The names of the parents that the followers among `resources` ((kind, data) pairs) belong to:
        whose followed resources' names they are handed (a Database's service)."""
        found: set[str] = set()
        for kind, data in resources:
            description = self[kind]
            if description.follows is not None and description.parent is not None:
                parent = value_at(data, description.parent.pointer)
                if parent:
                    found.add(str(parent))
        return found

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
