"""The catalogue as Backstage entities, so a company running Backstage sees the same catalogue there.

Pure: catalogue resources in, Backstage entity documents out (`paved export backstage` reads the
resources from git and writes the YAML). Every entity is `backstage.io/v1alpha1` in the `default`
namespace, and every reference is written in full (`group:default/payments`).

The mapping:

* **Team** -> `Group`, `spec.type: team`. `members` are the team's members and maintainers as `user:`
  references by GitHub login (the names GitHub organisation importers give users);
  `profile.displayName` from `spec.displayName`, `profile.email` when `spec.contact` is an address
  (a chat channel goes to `paved/contact`); `github.com/team-slug`.
* **Service** -> `Component`, `spec.type: service`; `lifecycle` as in the request (Paved's values are
  Backstage's own); `owner` the team's group; `system` (below); `dependsOn` from `spec.dependsOn`.
  Annotations: `github.com/project-slug` (`ORG/NAME`), `paved/tier`, `paved/template`, `paved/access`.
* **Database** -> `Resource`, `spec.type: database`, `dependencyOf` its service's component, in that
  component's system; `paved/engine`, `paved/size`.
* **Environment** -> `Resource`, `spec.type: environment`, `dependencyOf` its service's component;
  `paved/environment` names the deployment environment in the repository. Databases and
  environments are both Resources in Backstage, so when a Database has the same name the
  environment's entity is called `NAME-environment`.
* **Access** -> no entity (a grant is a relation, not a thing): the `paved/access` annotation of the
  service's component lists `team:permission` pairs.
* **System**, for grouping: one per `metadata.labels.domain` of services, or per owning team for a
  service without one; owned by the team that owns most of its components.

Every entity carries `paved/request`, the path of its request in the platform repo. Paved labels
become Backstage labels when their values are valid Backstage label values, and `paved.labels/KEY`
annotations otherwise.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from bot.model import Resource
from bot.yamlio import dump_request

API_VERSION = "backstage.io/v1alpha1"
NAMESPACE = "default"
# Backstage's rules for entity names and label values (KubernetesValidatorFunctions.isValidObjectName).
_OBJECT_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")
# The Backstage kind each Paved kind a `dependsOn` reference can name becomes.
_REFERENCE_KINDS = {"Service": "component", "Database": "resource", "Environment": "resource", "Team": "group"}


def _valid_name(value: str) -> bool:
    return len(value) <= 63 and bool(_OBJECT_NAME.match(value))


def ref(kind: str, name: str) -> str:
    """A full entity reference, `kind:namespace/name`."""
    return f"{kind.lower()}:{NAMESPACE}/{name}"


@dataclass(frozen=True, slots=True)
class Export:
    """The entities, in the order they are written: systems, groups, components, resources."""

    entities: tuple[dict[str, Any], ...]

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


def _systems(services: list[Resource]) -> dict[str, str]:
    """Service name -> its system: the `domain` label when it makes a valid name, else the owner."""
    found: dict[str, str] = {}
    for service in services:
        domain = (service.metadata.get("labels") or {}).get("domain")
        found[service.name] = domain if isinstance(domain, str) and _valid_name(domain) else service.owner
    return found


def backstage(resources: Iterable[Resource], *, organization: str | None = None) -> Export:
    """Backstage entities for `resources` (a whole catalogue); `organization` is the GitHub
    organisation the repositories and teams live in, for the `github.com/*-slug` annotations."""
    by_kind: dict[str, list[Resource]] = {}
    for resource in sorted(resources, key=lambda r: (r.kind, r.name)):
        by_kind.setdefault(resource.kind, []).append(resource)
    teams = {t.name for t in by_kind.get("Team", [])}
    services = by_kind.get("Service", [])
    service_names = {s.name for s in services}
    system_of = _systems(services)
    databases = {d.name for d in by_kind.get("Database", [])}
    environment_names = {e.name: f"{e.name}-environment" if e.name in databases else e.name
                         for e in by_kind.get("Environment", [])}

    def owner(resource: Resource) -> str:
        return ref("group", resource.owner)

    def reference(target: str) -> str | None:
        kind, _, name = target.partition("/")
        if kind == "Environment":
            name = environment_names.get(name, name)
        backstage_kind = _REFERENCE_KINDS.get(kind)
        return ref(backstage_kind, name) if backstage_kind else None

    def served(resource: Resource) -> tuple[str | None, str | None]:
        """The component and system of the service a resource belongs to (when that service exists)."""
        service = resource.spec.get("service")
        if isinstance(service, str) and service in service_names:
            return ref("component", service), ref("system", system_of[service])
        return None, None

    access: dict[str, list[str]] = {}
    for grant in by_kind.get("Access", []):
        service, team, permission = (grant.spec.get(k) for k in ("service", "team", "permission"))
        if isinstance(service, str) and service in service_names:
            access.setdefault(service, []).append(f"{team}:{permission}")

    systems: dict[str, Counter[str]] = {}
    for service in services:
        systems.setdefault(system_of[service.name], Counter())[service.owner] += 1
    entities: list[dict[str, Any]] = []
    for name, owners in sorted(systems.items()):
        team = sorted(owners.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]
        own = name in teams and owners.keys() == {name}  # a team's own services, not a shared domain
        description = f"The services of the {name} team." if own else f"The services of the {name} domain."
        entities.append(_entity("System", {"name": name, "description": description}, {"owner": ref("group", team)}))

    for team in by_kind.get("Team", []):
        spec = team.spec
        people = sorted({p for key in ("members", "maintainers") for p in spec.get(key) or [] if isinstance(p, str)})
        profile: dict[str, str] = {}
        if spec.get("displayName"):
            profile["displayName"] = str(spec["displayName"])
        contact = str(spec.get("contact") or "")
        if _EMAIL.match(contact):
            profile["email"] = contact
        group_spec: dict[str, Any] = {"type": "team"}
        if profile:
            group_spec["profile"] = profile
        group_spec["children"] = []
        group_spec["members"] = [ref("user", p) for p in people]
        annotations = {"github.com/team-slug": f"{organization}/{team.name}" if organization else "",
                       "paved/contact": contact if contact and not _EMAIL.match(contact) else ""}
        entities.append(_entity("Group", _metadata(team, team.name, annotations), group_spec))

    for service in services:
        spec = service.spec
        template = spec.get("template") or {}
        annotations = {"github.com/project-slug": f"{organization}/{service.name}" if organization else "",
                       "paved/tier": str(spec.get("tier") or ""),
                       "paved/template": str(template.get("name") or "") if isinstance(template, dict) else "",
                       "paved/access": ", ".join(sorted(access.get(service.name, [])))}
        component: dict[str, Any] = {"type": "service", "lifecycle": str(spec.get("lifecycle") or "production"),
                                     "owner": owner(service), "system": ref("system", system_of[service.name])}
        depends = [r for r in (reference(t) for t in spec.get("dependsOn") or [] if isinstance(t, str)) if r]
        if depends:
            component["dependsOn"] = depends
        entities.append(_entity("Component", _metadata(service, service.name, annotations), component))

    resources_out: list[dict[str, Any]] = []
    for database in by_kind.get("Database", []):
        spec = database.spec
        engine = " ".join(str(spec[k]) for k in ("engine", "version") if spec.get(k))
        annotations = {"paved/engine": engine, "paved/size": str(spec.get("size") or "")}
        resources_out.append(_resource(database, database.name, "database", owner(database), served(database),
                                       annotations))
    for environment in by_kind.get("Environment", []):
        spec = environment.spec
        reviewers = ", ".join(str(t) for t in spec.get("requiredReviewers") or [])
        annotations = {"paved/environment": str(spec.get("name") or ""), "paved/required-reviewers": reviewers}
        resources_out.append(_resource(environment, environment_names[environment.name], "environment",
                                       owner(environment), served(environment), annotations))
    entities += sorted(resources_out, key=lambda e: str(e["metadata"]["name"]))
    return Export(tuple(entities))


def _resource(resource: Resource, name: str, kind: str, owner: str, served: tuple[str | None, str | None],
              annotations: dict[str, str]) -> dict[str, Any]:
    component, system = served
    spec: dict[str, Any] = {"type": kind, "owner": owner}
    if system:
        spec["system"] = system
    if component:
        spec["dependencyOf"] = [component]
    return _entity("Resource", _metadata(resource, name, annotations), spec)


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
