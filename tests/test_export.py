"""`paved export backstage`: the catalogue as Backstage entities, checked against Backstage's own entity
schemas (tests/data/backstage/) and its rules for names, and written as one file or a folder."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft7Validator
from referencing import Registry
from referencing.jsonschema import DRAFT7

from bot.adapters.catalogue_index import SQLiteCatalogueIndex
from bot.adapters.repo import FolderTree
from bot.catalogue import judge
from bot.cli import main
from bot.export import as_yaml, backstage, paved_kinds, ref
from bot.kinds import Kinds, describe, order_kinds
from bot.model import Resource
from bot.rules import load_rules
from bot.yamlio import load
from tests.conftest import PROJECT, PlatformRepo

SCHEMAS = {p.name: json.loads(p.read_text()) for p in (PROJECT / "tests/data/backstage").glob("*.schema.json")}
REGISTRY: Registry[Any] = Registry().with_resources((s["$id"], DRAFT7.create_resource(s)) for s in SCHEMAS.values())
# Backstage's KubernetesValidatorFunctions.isValidObjectName, for names and label values.
OBJECT_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")


def schema_errors(entity: dict[str, Any]) -> list[str]:
    """What Backstage's envelope and kind schemas say is wrong with `entity`."""
    found = []
    for name in ("EntityEnvelope.schema.json", f"{entity['kind']}.v1alpha1.schema.json"):
        found += [f"{name}: {e.message}" for e in Draft7Validator(SCHEMAS[name], registry=REGISTRY).iter_errors(entity)]
    return found


def bundled() -> list[Resource]:
    """The resources of the bundled catalogue (catalog/ of this project)."""
    tree = FolderTree(PROJECT)
    catalogue = judge(tree, load_rules(tree), SQLiteCatalogueIndex())
    return list(catalogue.resources(catalogue.identities()).values())


def by_name(entities: tuple[dict[str, Any], ...], kind: str, name: str) -> dict[str, Any]:
    [found] = [e for e in entities if e["kind"] == kind and e["metadata"]["name"] == name]
    return found


def resource(kind: str, name: str, owner: str, spec: dict[str, Any], labels: dict[str, str] | None = None) -> Resource:
    metadata: dict[str, Any] = {"name": name, "owner": owner, "description": f"The {name} {kind}."}
    if labels:
        metadata["labels"] = labels
    return Resource(kind, name, owner, f"catalog/{name}.yaml", 0, 1,
                    {"apiVersion": "paved/v1", "kind": kind, "metadata": metadata, "spec": spec})


def test_every_entity_of_the_bundled_catalogue_is_valid_by_backstages_schemas() -> None:
    entities = backstage(bundled(), organization="acme").entities
    assert {e["kind"] for e in entities} == {"System", "Group", "User", "Component", "Resource"}
    for entity in entities:
        assert schema_errors(entity) == [], entity["metadata"]["name"]
        assert OBJECT_NAME.match(entity["metadata"]["name"])
        assert all(OBJECT_NAME.match(v) for v in entity["metadata"].get("labels", {}).values())


def test_the_schemas_catch_what_backstage_would_refuse() -> None:
    group = by_name(backstage(bundled()).entities, "Group", "payments")
    assert schema_errors({**group, "spec": {"type": "team"}}) == [
        "Group.v1alpha1.schema.json: 'children' is a required property"]


def test_a_team_becomes_a_group_of_its_members_and_maintainers() -> None:
    team = resource("Team", "search", "search", {"displayName": "Search", "members": ["gina"],
                                                 "maintainers": ["hugo"], "contact": "search@example.com",
                                                 "budget": {"monthly": 100}})
    group = by_name(backstage([team], organization="acme").entities, "Group", "search")
    assert group["spec"] == {"type": "team", "profile": {"displayName": "Search", "email": "search@example.com"},
                             "children": [], "members": ["user:default/gina", "user:default/hugo"]}
    assert group["metadata"]["annotations"]["github.com/team-slug"] == "acme/search"


def test_every_user_a_group_names_is_exported() -> None:
    entities = backstage(bundled()).entities
    exported = {ref(e["kind"], e["metadata"]["name"]) for e in entities}
    named = {member for e in entities if e["kind"] == "Group" for member in e["spec"]["members"]}
    assert named and named <= exported


def test_a_person_in_two_teams_is_one_user_member_of_both() -> None:
    payments = resource("Team", "payments", "payments", {"members": ["gina", "hugo"], "maintainers": ["hugo"]})
    search = resource("Team", "search", "search", {"members": ["hugo"], "maintainers": ["hugo"]})
    entities = backstage([search, payments]).entities
    assert [e["metadata"]["name"] for e in entities if e["kind"] == "User"] == ["gina", "hugo"]
    assert by_name(entities, "User", "hugo") == {
        "apiVersion": "backstage.io/v1alpha1", "kind": "User",
        "metadata": {"name": "hugo", "annotations": {"github.com/user-login": "hugo"}},
        "spec": {"memberOf": ["group:default/payments", "group:default/search"]}}
    assert schema_errors(by_name(entities, "User", "hugo")) == []


def test_a_login_spelled_in_two_cases_is_one_user_spelled_as_the_first_group_spells_it() -> None:
    data = resource("Team", "data", "data", {"members": ["Hugo"], "maintainers": ["Hugo"]})
    search = resource("Team", "search", "search", {"members": ["hugo"], "maintainers": ["hugo"]})
    entities = backstage([search, data]).entities
    assert [(e["metadata"]["name"], e["spec"]["memberOf"]) for e in entities if e["kind"] == "User"] == [
        ("Hugo", ["group:default/data", "group:default/search"])]
    assert by_name(entities, "Group", "search")["spec"]["members"] == ["user:default/Hugo"]


def test_a_service_becomes_a_component_owned_by_its_team_in_its_domains_system() -> None:
    entities = backstage(bundled(), organization="acme").entities
    component = by_name(entities, "Component", "payments-api")
    assert component["spec"] == {"type": "service", "lifecycle": "production", "owner": "group:default/payments",
                                 "system": "system:default/checkout"}
    annotations = component["metadata"]["annotations"]
    assert annotations["github.com/project-slug"] == "acme/payments-api"
    assert annotations["paved/request"] == "catalog/services/payments-api.yaml"
    assert annotations["paved/tier"] == "critical"
    assert by_name(entities, "System", "checkout")["spec"] == {"owner": "group:default/payments"}


def test_depends_on_becomes_references_to_components_and_resources() -> None:
    service = resource("Service", "search", "growth", {"tier": "experimental", "lifecycle": "experimental",
                                                       "dependsOn": ["Service/ledger", "Database/ledger-db"]})
    component = by_name(backstage([service]).entities, "Component", "search")
    assert component["spec"]["dependsOn"] == ["component:default/ledger", "resource:default/ledger-db"]


def test_a_database_is_a_resource_its_service_depends_on_in_the_same_system() -> None:
    database = by_name(backstage(bundled()).entities, "Resource", "payments-db")
    assert database["spec"] == {"type": "database", "owner": "group:default/payments",
                                "system": "system:default/checkout", "dependencyOf": ["component:default/payments-api"]}
    assert database["metadata"]["annotations"]["paved/engine"] == "postgres 16"


def test_an_environment_is_a_resource_renamed_when_a_database_has_its_name() -> None:
    service = resource("Service", "search", "growth", {"tier": "production", "lifecycle": "production",
                                                       "dependsOn": ["Environment/search"]})
    database = resource("Database", "search", "growth", {"service": "search", "engine": "postgres", "version": "16"})
    environment = resource("Environment", "search", "growth", {"service": "search", "name": "production"})
    entities = backstage([service, database, environment]).entities
    renamed = by_name(entities, "Resource", "search-environment")
    assert renamed["spec"]["type"] == "environment"
    assert renamed["metadata"]["annotations"]["paved/environment"] == "production"
    assert by_name(entities, "Resource", "search")["spec"]["type"] == "database"
    assert by_name(entities, "Component", "search")["spec"]["dependsOn"] == ["resource:default/search-environment"]


def test_access_grants_are_listed_on_the_component_of_the_service() -> None:
    component = by_name(backstage(bundled()).entities, "Component", "payments-api")
    assert component["metadata"]["annotations"]["paved/access"] == "data:pull, platform:triage"


def test_a_service_without_a_domain_is_in_its_teams_system() -> None:
    service = resource("Service", "search", "growth", {"tier": "experimental", "lifecycle": "experimental"})
    entities = backstage([service]).entities
    assert by_name(entities, "Component", "search")["spec"]["system"] == "system:default/growth"
    assert by_name(entities, "System", "growth")["spec"] == {"owner": "group:default/growth"}


def test_labels_backstage_cannot_hold_become_annotations() -> None:
    service = resource("Service", "search", "growth", {"tier": "experimental", "lifecycle": "experimental"},
                       labels={"pci": "true", "purpose": "find things fast"})
    metadata = by_name(backstage([service]).entities, "Component", "search")["metadata"]
    assert metadata["labels"] == {"pci": "true"}
    assert metadata["annotations"]["paved.labels/purpose"] == "find things fast"


def test_the_yaml_stream_reads_back_as_the_same_entities() -> None:
    entities = backstage(bundled()).entities
    loaded = load("catalog-info.yaml", as_yaml(entities).encode())
    assert loaded.findings == []
    assert [d.data for d in loaded.documents] == list(entities)


# -- kinds described only by their schemas --------------------------------------------------------------

# A Queue as a platform repo would describe it: what it becomes in Backstage is data in its `x-paved`
# section, and no code of the export names it.
QUEUE_DESCRIPTION: dict[str, Any] = {
    "plural": "queues", "rank": 6,
    "references": [{"pointer": "/spec/service", "kind": "Service", "belongsTo": True}],
    "backstage": {"entity": "Resource", "type": "queue", "annotations": {"paved/size": "/spec/size"},
                  "dependencyOf": True},
}


def with_queues(description: dict[str, Any]) -> Kinds:
    """Paved's own kinds and a Queue kind described by `description`."""
    queue = describe("Queue", "schemas/kinds/queue.json", {"x-paved": description}, lambda pointer: 0)
    return Kinds({d.kind: d for d in order_kinds([*paved_kinds(), queue])})


def test_a_kind_described_only_by_its_schema_is_exported_as_its_description_says() -> None:
    service = resource("Service", "search", "growth", {"tier": "production", "lifecycle": "production"},
                       labels={"domain": "discovery"})
    queue = resource("Queue", "indexing", "growth", {"service": "search", "size": "small"})
    exported = backstage([service, queue], kinds=with_queues(QUEUE_DESCRIPTION))
    entity = by_name(exported.entities, "Resource", "indexing")
    assert entity["spec"] == {"type": "queue", "owner": "group:default/growth", "system": "system:default/discovery",
                              "dependencyOf": ["component:default/search"]}
    assert entity["metadata"]["annotations"]["paved/size"] == "small"
    assert schema_errors(entity) == [] and exported.left_out == ()


def test_a_kind_whose_schema_says_nothing_about_backstage_is_left_out_and_named() -> None:
    silent = {k: v for k, v in QUEUE_DESCRIPTION.items() if k != "backstage"}
    service = resource("Service", "search", "growth", {"tier": "production", "lifecycle": "production"})
    queue = resource("Queue", "indexing", "growth", {"service": "search", "size": "small"})
    exported = backstage([service, queue], kinds=with_queues(silent))
    assert [(e["kind"], e["metadata"]["name"]) for e in exported.entities] == [
        ("System", "growth"), ("Component", "search")]
    assert exported.left_out == ("Queue",)


def test_of_two_kinds_that_become_one_backstage_kind_under_one_name_the_later_ranked_is_suffixed() -> None:
    service = resource("Service", "search", "growth", {"tier": "production", "lifecycle": "production",
                                                       "dependsOn": ["Queue/search"]})
    database = resource("Database", "search", "growth", {"service": "search", "engine": "postgres"})
    queue = resource("Queue", "search", "growth", {"service": "search", "size": "small"})
    depending = {**QUEUE_DESCRIPTION, "backstage": {**QUEUE_DESCRIPTION["backstage"], "dependsOn": True}}
    entities = backstage([service, database, queue], kinds=with_queues(depending)).entities
    assert by_name(entities, "Resource", "search")["spec"]["type"] == "database"
    assert by_name(entities, "Resource", "search-queue")["spec"]["type"] == "queue"
    assert by_name(entities, "Component", "search")["spec"]["dependsOn"] == ["resource:default/search-queue"]


def test_a_relation_kind_becomes_an_annotation_on_the_entity_of_what_it_belongs_to() -> None:
    subscription = {"plural": "subscriptions",
                    "references": [{"pointer": "/spec/queue", "kind": "Queue", "belongsTo": True},
                                   {"pointer": "/spec/service", "kind": "Service"}],
                    "backstage": {"entity": "annotation", "annotation": "paved/subscribers",
                                  "value": ["/spec/service"]}}
    kinds = with_queues(QUEUE_DESCRIPTION)
    extra = describe("Subscription", "schemas/kinds/subscription.json", {"x-paved": subscription}, lambda p: 0)
    kinds = Kinds({**kinds.by_kind, "Subscription": extra})
    service = resource("Service", "search", "growth", {"tier": "production", "lifecycle": "production"})
    queue = resource("Queue", "indexing", "growth", {"service": "search", "size": "small"})
    subscribers = [resource("Subscription", n, "growth", {"queue": "indexing", "service": n}) for n in ("b", "a")]
    entity = by_name(backstage([service, queue, *subscribers], kinds=kinds).entities, "Resource", "indexing")
    assert entity["metadata"]["annotations"]["paved/subscribers"] == "a, b"


# -- the command -----------------------------------------------------------------------------------


def test_paved_export_backstage_writes_one_multi_document_file(platform_repo: PlatformRepo, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "catalog-info.yaml"
    assert main(["export", "backstage", "--repo", str(platform_repo.root), "--organization", "acme",
                 "--output", str(target)]) == 0
    assert f"wrote 7 entities to {target}" in capsys.readouterr().out
    entities = [d.data for d in load("catalog-info.yaml", target.read_bytes()).documents]
    assert [(e["kind"], e["metadata"]["name"]) for e in entities] == [
        ("System", "payments"), ("Group", "data"), ("Group", "payments"), ("User", "alice"), ("User", "bob"),
        ("Component", "checkout"), ("Resource", "checkout-db")]
    assert all(schema_errors(e) == [] for e in entities)


def test_paved_export_to_a_folder_writes_a_file_per_entity_and_a_location_naming_them(
        platform_repo: PlatformRepo, tmp_path: Path) -> None:
    folder = tmp_path / "backstage"
    assert main(["export", "backstage", "--repo", str(platform_repo.root), "--output", f"{folder}/"]) == 0
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["catalog-info.yaml", "component-checkout.yaml", "group-data.yaml", "group-payments.yaml",
                     "resource-checkout-db.yaml", "system-payments.yaml", "user-alice.yaml", "user-bob.yaml"]
    [location] = [d.data for d in load("catalog-info.yaml", (folder / "catalog-info.yaml").read_bytes()).documents]
    assert schema_errors(location) == []
    assert location["spec"]["targets"] == [f"./{n}" for n in names if n != "catalog-info.yaml"]


def test_paved_export_into_a_folder_that_does_not_exist_says_so(platform_repo: PlatformRepo, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "missing" / "catalog-info.yaml"
    assert main(["export", "backstage", "--repo", str(platform_repo.root), "--output", str(target)]) == 2
    assert f"the folder {target.parent} does not exist" in capsys.readouterr().err
