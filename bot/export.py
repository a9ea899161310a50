"""The catalogue as Backstage entities, so a company running Backstage sees the same catalogue there.

Pure: catalogue resources and their kinds' descriptions in, Backstage entity documents out (`paved export
backstage` reads both from git and writes the YAML). Every entity is `backstage.io/v1alpha1` in the
`default` namespace, and every reference is written in full (`group:default/payments`).

What a kind becomes is data, the `backstage` part of its `x-paved` section (docs/kinds.md): a Group, a
Component, a Resource, or an annotation on the entity of what it belongs to (an Access grant is a
relation, not a thing); its type, annotations and relations. A kind that says nothing there is not
exported. The rest holds for every kind:

* `owner` is the owning team's group. A Component's `lifecycle` is read where its kind states one (Paved's
  values are Backstage's own), `production` when it states none.
* **System**, for grouping: one per system a Component names (at its kind's `system` pointer, such as the
  `domain` label, or else its owner), owned by the team that owns most of its components. An entity that
  is a `dependencyOf` what it belongs to is in that entity's system.
* Backstage tells entities apart by kind and name, so when resources of two Paved kinds become the same
  Backstage kind under one name (a Database and an Environment `search`), the one of the kind later in
  rank order is called `NAME-KIND` (`search-environment`), and references to it follow.

* **User**, for each person a Group lists as a member (a team's members and maintainers), named by their
  GitHub login with the `github.com/user-login` annotation Backstage's GitHub sign-in and org ingestion
  match on, and `memberOf` every group that lists them: a Group's `members` then name entities the export
  holds, as Backstage expects of one source of its org data. Logins differ only in case on GitHub, and
  Backstage compares names without case, so a person listed in two spellings is one User, named as the
  first group (in name order) spells them.

Every entity made from a request carries `paved/request`, the path of its request in the platform repo.
Paved labels become Backstage labels when their values are valid Backstage label values, and
`paved.labels/KEY` annotations otherwise.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from bot.kinds import ANNOTATION, Backstage, Kinds, value_at, values_at
from bot.model import Resource
from bot.yamlio import dump_request

API_VERSION = "backstage.io/v1alpha1"
NAMESPACE = "default"
# Backstage's rules for entity names and label values (KubernetesValidatorFunctions.isValidObjectName).
_OBJECT_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")
# The order entities are written in, after the systems.
_ENTITIES = ("Group", "User", "Component", "Resource")
# The annotation Backstage's GitHub integrations read a User's login from.
USER_LOGIN = "github.com/user-login"


def _valid_name(value: str) -> bool:
    return len(value) <= 63 and bool(_OBJECT_NAME.match(value))


def ref(kind: str, name: str) -> str:
    """A full entity reference, `kind:namespace/name`."""
    return f"{kind.lower()}:{NAMESPACE}/{name}"


@cache
def paved_kinds() -> Kinds:
    """The kinds Paved's own `schemas/kinds/` describe: those of a caller that has resources but no rules."""
    from bot.adapters.repo import FolderTree
    from bot.rules import load_rules
    from bot.starter import root

    return load_rules(FolderTree(root())).described


@dataclass(frozen=True, slots=True)
class Export:
    """The entities, in the order they are written: systems, groups, components, resources; and the kinds
    of resources left out because their schemas say nothing about Backstage."""

    entities: tuple[dict[str, Any], ...]
    left_out: tuple[str, ...] = ()

    def file_name(self, entity: Mapping[str, Any]) -> str:
        return f"{entity['kind'].lower()}-{entity['metadata']['name']}.yaml"


def _metadata(resource: Resource, name: str, annotations: dict[str, str]) -> dict[str, Any]:
    meta = resource.metadata
    labels: dict[str, str] = {}
    notes = {"paved/request": resource.path, **annotations}
    for key, value in sorted((meta.get("labels") or {}).items()):
        if isinstance(value, str) and (value == "" or _valid_name(value)):
            labels[key] = value
        else:
            notes[f"paved.labels/{key}"] = str(value)
    found: dict[str, Any] = {"name": name}
    if meta.get("description"):
        found["description"] = str(meta["description"])
    if labels:
        found["labels"] = labels
    found["annotations"] = {k: v for k, v in notes.items() if v}
    return found


def _entity(kind: str, metadata: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": API_VERSION, "kind": kind, "metadata": metadata, "spec": spec}


def _scalars(data: Any, pointer: str) -> list[str]:
    """The values at `pointer` as text: each item of a list, each match of a `*`; nothing empty."""
    found = [v for _, v in values_at(data, pointer)]
    items = [item for v in found for item in (v if isinstance(v, list) else [v])]
    return [str(i) for i in items if isinstance(i, str | int | float) and i != ""]


def _text(data: Any, pointers: Iterable[str], separator: str = " ") -> str:
    """An annotation's text: the values at each pointer (a list's items joined by `, `), joined."""
    return separator.join(t for t in (", ".join(_scalars(data, p)) for p in pointers) if t)


def _names(resources: Iterable[Resource], kinds: Kinds) -> dict[str, str]:
    """Each resource's entity name. Backstage tells entities apart by kind and name only, so of two
    resources that would share both, the one of the kind later in rank order (they come in that order)
    takes its kind as a suffix: the earlier kind keeps the plain name links to it already use."""
    holders: dict[tuple[str, str], str] = {}
    names: dict[str, str] = {}
    for resource in resources:
        entity = _described(kinds, resource.kind).entity
        holder = holders.setdefault((entity, resource.name), resource.kind)
        names[resource.identity] = resource.name if holder == resource.kind \
            else f"{resource.name}-{resource.kind.lower()}"
    return names


def _described(kinds: Kinds, kind: str) -> Backstage:
    found = kinds[kind].backstage
    assert found is not None  # only asked of exported kinds
    return found


def backstage(resources: Iterable[Resource], *, organization: str | None = None,
              kinds: Kinds | None = None) -> Export:
    """Backstage entities for `resources` (a whole catalogue) as `kinds` describe them (by default, the
    kinds of Paved's own schemas); `organization` is the GitHub organisation the repositories and teams
    live in, for the `githubSlug` annotations."""
    kinds = paved_kinds() if kinds is None else kinds
    every = sorted(resources, key=lambda r: (kinds.order(r.kind), r.kind, r.name))
    left_out = tuple(dict.fromkeys(r.kind for r in every if kinds[r.kind].backstage is None))
    exported = [r for r in every if kinds[r.kind].backstage is not None]
    things = [r for r in exported if _described(kinds, r.kind).entity != ANNOTATION]
    names = _names(things, kinds)
    by_identity = {r.identity: r for r in things}

    def entity_ref(kind: str, name: str) -> str | None:
        found = kinds[kind].backstage
        if found is None or found.entity == ANNOTATION:
            return None
        return ref(found.entity, names.get(f"{kind}/{name}", name))

    def parent(resource: Resource) -> Resource | None:
        """What `resource` belongs to, when it is in the catalogue and exported as an entity."""
        reference = kinds[resource.kind].parent
        name = value_at(resource.data, reference.pointer) if reference is not None else None
        identity = kinds.parent_of(resource.kind, name) if isinstance(name, str) else None
        return by_identity.get(identity) if identity else None

    systems_of: dict[str, str | None] = {}

    def system(resource: Resource) -> str | None:
        if resource.identity not in systems_of:
            systems_of[resource.identity] = None  # a resource that (at length) belongs to itself has none
            described = _described(kinds, resource.kind)
            if described.system is not None:
                label = value_at(resource.data, described.system)
                systems_of[resource.identity] = label if isinstance(label, str) and _valid_name(label) \
                    else resource.owner
            elif described.dependency_of and (owner := parent(resource)) is not None:
                systems_of[resource.identity] = system(owner)
        return systems_of[resource.identity]

    relations: dict[str, dict[str, list[str]]] = {}
    for resource in exported:
        described = _described(kinds, resource.kind)
        target = parent(resource) if described.entity == ANNOTATION else None
        if target is not None and described.annotation:
            entry = _text(resource.data, described.value, ":")
            relations.setdefault(target.identity, {}).setdefault(described.annotation, []).append(entry)

    entities = _systems([r for r in things if _described(kinds, r.kind).system is not None], system, kinds,
                        {r.name for r in every if r.kind == kinds.team})
    people = _people(things, kinds, names)
    written: list[tuple[int, str, dict[str, Any]]] = [
        (_ENTITIES.index("User"), login.casefold(), _user(login, groups)) for login, groups in people.values()]
    for resource in things:
        described = _described(kinds, resource.kind)
        annotations: dict[str, str] = {}
        if described.github_slug:
            annotations[described.github_slug] = f"{organization}/{resource.name}" if organization else ""
        for key, pointers in described.annotations:
            annotations[key] = _text(resource.data, pointers)
        spec: dict[str, Any] = {"type": described.type}
        if described.entity == "Group":
            spec |= _group(resource, described, annotations, people)
        else:
            if described.entity == "Component":
                lifecycle = value_at(resource.data, kinds[resource.kind].lifecycle)
                spec["lifecycle"] = str(lifecycle or "production")
            spec["owner"] = ref("group", resource.owner)
            if (named := system(resource)) is not None:
                spec["system"] = ref("system", named)
            depends = _depends_on(resource, kinds, entity_ref) if described.depends_on else []
            if depends:
                spec["dependsOn"] = depends
            owner = parent(resource) if described.dependency_of else None
            if owner is not None:
                spec["dependencyOf"] = [ref(_described(kinds, owner.kind).entity, names[owner.identity])]
        for key, entries in relations.get(resource.identity, {}).items():
            annotations[key] = ", ".join(sorted(entries))
        name = names[resource.identity]
        written.append((_ENTITIES.index(described.entity), name,
                        _entity(described.entity, _metadata(resource, name, annotations), spec)))
    # Stable: of one name, the kind earlier in rank order first.
    entities += [e for *_, e in sorted(written, key=lambda w: (w[0], w[1]))]
    return Export(tuple(entities), left_out)


def _members(resource: Resource, described: Backstage) -> list[str]:
    """The logins a Group's request lists as its members, each once, in name order; one that cannot name a
    Backstage entity (no GitHub login is such) is left out, as no User could be made for it."""
    return sorted({p for pointer in described.members for p in _scalars(resource.data, pointer) if _valid_name(p)})


def _people(groups: Iterable[Resource], kinds: Kinds, names: Mapping[str, str]) -> dict[str, tuple[str, list[str]]]:
    """Everyone the groups list, by casefolded login: the login as first spelled (groups in name order) and
    the names of the groups that list them."""
    found: dict[str, tuple[str, list[str]]] = {}
    for group in sorted(groups, key=lambda r: names[r.identity]):
        described = _described(kinds, group.kind)
        if described.entity != "Group":
            continue
        for login in _members(group, described):
            entry = found.setdefault(login.casefold(), (login, []))
            if names[group.identity] not in entry[1]:
                entry[1].append(names[group.identity])
    return found


def _user(login: str, groups: Iterable[str]) -> dict[str, Any]:
    return _entity("User", {"name": login, "annotations": {USER_LOGIN: login}},
                   {"memberOf": [ref("group", g) for g in sorted(groups)]})


def _group(resource: Resource, described: Backstage, annotations: dict[str, str],
           people: Mapping[str, tuple[str, list[str]]]) -> dict[str, Any]:
    """A Group's spec past its type; a contact that is no email address goes to its annotation."""
    spec: dict[str, Any] = {}
    profile: dict[str, str] = {}
    display = _text(resource.data, [described.display_name]) if described.display_name else ""
    if display:
        profile["displayName"] = display
    contact = _text(resource.data, [described.email]) if described.email else ""
    if _EMAIL.match(contact):
        profile["email"] = contact
    elif contact and described.contact_annotation:
        annotations[described.contact_annotation] = contact
    if profile:
        spec["profile"] = profile
    spec["children"] = []
    spec["members"] = sorted({ref("user", people[p.casefold()][0]) for p in _members(resource, described)})
    return spec


def _depends_on(resource: Resource, kinds: Kinds, entity_ref: Callable[[str, str], str | None]) -> list[str]:
    """The entities the resource's references name (what it belongs to is its `dependencyOf` instead);
    a reference to a kind not exported as an entity is left out."""
    found: list[str] = []
    for reference in kinds[resource.kind].references:
        if reference.belongs_to:
            continue
        for _, value in values_at(resource.data, reference.pointer):
            if isinstance(value, str):
                kind, _, name = (reference.kind, "/", value) if reference.kind else value.partition("/")
                if (target := entity_ref(kind, name)) is not None:
                    found.append(target)
    return found


def _systems(members: list[Resource], system: Callable[[Resource], str | None], kinds: Kinds,
             teams: set[str]) -> list[dict[str, Any]]:
    """A System for each system the components name, owned by the team that owns most of them."""
    owners: dict[str, Counter[str]] = {}
    plurals: dict[str, dict[str, None]] = {}
    for resource in members:
        name = system(resource) or resource.owner  # a component's own system rule always names one
        owners.setdefault(name, Counter())[resource.owner] += 1
        plurals.setdefault(name, {})[kinds[resource.kind].plural] = None
    found = []
    for name, counted in sorted(owners.items()):
        team = sorted(counted.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]
        own = name in teams and counted.keys() == {name}  # a team's own components, not a shared domain
        what = " and ".join(plurals[name])
        description = f"The {what} of the {name} team." if own else f"The {what} of the {name} domain."
        found.append(_entity("System", {"name": name, "description": description}, {"owner": ref("group", team)}))
    return found


def location(file_names: Iterable[str]) -> dict[str, Any]:
    """A Location entity listing the other files of a folder export, so Backstage registers one URL."""
    return _entity("Location", {"name": "paved-catalogue", "description": "Everything in Paved's catalogue."},
                   {"targets": [f"./{n}" for n in sorted(file_names)]})


def as_yaml(entities: Iterable[Mapping[str, Any]]) -> str:
    """Entities as one multi-document YAML stream, the shape of a `catalog-info.yaml`."""
    return "---\n".join(dump_request(dict(e)) for e in entities)


def as_files(export: Export) -> dict[str, str]:
    """A folder export: one file per entity, and `catalog-info.yaml`, a Location naming them all."""
    files = {export.file_name(e): dump_request(dict(e)) for e in export.entities}
    return {"catalog-info.yaml": dump_request(location(files)), **files}
