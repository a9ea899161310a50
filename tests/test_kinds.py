"""A kind is a schema file: a `Queue` described only by `schemas/kinds/queue.json` and its `x-paved`
section is validated, checked for references, priced into its team's budget, named by its plural in the
CLI, listed on the catalogue pages, ordered after what it depends on and exported to Backstage as it says,
and no line of Python names it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from bot.adapters.catalogue_index import SQLiteCatalogueIndex
from bot.adapters.repo import FolderTree, GitTree
from bot.cli import main
from bot.errors import ConfigurationError
from bot.model import Plan
from bot.plan import make_plan, validate_tree
from bot.rules import load_rules
from bot.web.catalogue import PlatformSource, catalogue_router
from bot.yamlio import load
from tests.conftest import PROJECT, SERVICE, PlatformRepo

QUEUE_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://paved.dev/schemas/kinds/queue.json",
    "title": "Queue",
    "description": "A message queue that belongs to one service.",
    "x-paved": {
        "plural": "queues",
        # Ranked before every other kind: only its reference to its service can order it after the service.
        "rank": 0,
        "owner": "/metadata/owner",
        "references": [{"pointer": "/spec/service", "kind": "Service", "belongsTo": True}],
    },
    "type": "object",
    "additionalProperties": False,
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "paved/v1"},
        "kind": {"const": "Queue"},
        "metadata": {
            "type": "object",
            "additionalProperties": False,
            "required": ["name", "owner", "description"],
            "properties": {"name": {"type": "string", "examples": ["orders"]},
                           "owner": {"type": "string"}, "description": {"type": "string"}},
        },
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "required": ["service", "size"],
            "properties": {"service": {"type": "string", "examples": ["checkout"]},
                           "size": {"enum": ["small", "large"], "examples": ["small"]}},
        },
    },
}

QUEUE = """
apiVersion: paved/v1
kind: Queue
metadata:
  name: {name}
  owner: {owner}
  description: Orders waiting for {service}.
spec:
  service: {service}
  size: {size}
"""

PRICES = """
currency: USD
prices:
  Service:
    field: /spec/tier
    monthly: {experimental: 0, production: 40, critical: 120}
  Database:
    field: /spec/size
    monthly: {small: 25, medium: 95, large: 380}
  Environment:
    monthly: 5
  Queue:
    field: /spec/size
    monthly: {small: 10, large: 600}
"""


# The Queue as Backstage should see it: a Resource of type `queue` its service depends on.
EXPORTED_QUEUE_SCHEMA: dict[str, Any] = {**QUEUE_SCHEMA, "x-paved": {**QUEUE_SCHEMA["x-paved"], "backstage": {
    "entity": "Resource", "type": "queue", "annotations": {"paved/size": "/spec/size"}, "dependencyOf": True}}}


@pytest.fixture
def queues(platform_repo: PlatformRepo) -> PlatformRepo:
    """The platform repo with a Queue kind (schema and price) on `main`, and a branch to change it on."""
    platform_repo.write("schemas/kinds/queue.json", json.dumps(QUEUE_SCHEMA, indent=2))
    platform_repo.write("schemas/prices.yaml", PRICES)
    platform_repo.commit("a Queue kind")
    platform_repo.git("switch", "--quiet", "-c", "change")
    return platform_repo


def plan_of(repo: PlatformRepo) -> Plan:
    return make_plan(GitTree(repo.root, "main"), FolderTree(repo.root), store=SQLiteCatalogueIndex())


def findings_of(repo: PlatformRepo) -> list[tuple[str, int, str, str]]:
    found = validate_tree(FolderTree(repo.root), store=SQLiteCatalogueIndex()).findings
    return [(f.path, f.line, f.rule, f.message) for f in found]


def test_a_request_of_the_new_kind_is_judged_by_its_schema(queues: PlatformRepo) -> None:
    queues.write("catalog/queues/orders.yaml", QUEUE.format(name="orders", owner="payments", service="checkout",
                                                            size="huge"))
    assert [(p, line, rule) for p, line, rule, _ in findings_of(queues)] == [
        ("catalog/queues/orders.yaml", 9, "schema")]


def test_its_references_are_checked_and_a_dangling_one_is_found_at_its_line(queues: PlatformRepo) -> None:
    queues.write("catalog/queues/orders.yaml", QUEUE.format(name="orders", owner="nobody", service="nowhere",
                                                            size="small"))
    assert findings_of(queues) == [
        ("catalog/queues/orders.yaml", 5, "catalog.owner", "the owner 'nobody' is not a Team"),
        ("catalog/queues/orders.yaml", 8, "catalog.reference",
         "`spec.service` names Service 'nowhere', which does not exist"),
    ]


def test_its_cost_counts_in_its_teams_budget(queues: PlatformRepo) -> None:
    queues.write("catalog/queues/orders.yaml", QUEUE.format(name="orders", owner="data", service="checkout",
                                                            size="large"))
    plan = plan_of(queues)
    [cost] = plan.costs
    assert (cost.team, cost.before, cost.after, cost.over_budget) == ("data", 0.0, 600.0, True)
    assert [(f.rule, f.path) for f in plan.errors] == [("catalog.budget", "catalog/teams/data.yaml")]


def test_it_is_planned_after_the_service_it_belongs_to(queues: PlatformRepo) -> None:
    queues.write("catalog/services/search.yaml", SERVICE.format(name="search", owner="data", tier="experimental"))
    queues.write("catalog/queues/indexing.yaml", QUEUE.format(name="indexing", owner="data", service="search",
                                                              size="small"))
    queues.write("catalog/queues/orders.yaml", QUEUE.format(name="orders", owner="payments", service="checkout",
                                                            size="small"))
    plan = plan_of(queues)
    assert plan.ok, plan.findings
    # Ranked first, a queue whose service exists comes first; one whose service is created waits for it.
    assert [c.identity for c in plan.changes] == ["Queue/orders", "Service/search", "Queue/indexing"]
    assert "Service/search" in plan.changes[2].depends_on


def test_its_policy_context_is_the_service_it_belongs_to(queues: PlatformRepo) -> None:
    policy = {"$schema": "../policy.schema.json", "$id": "https://paved.dev/schemas/policies/small-queues.json",
              "id": "small-queues", "title": "Critical services' queues are small", "description": "A test.",
              "severity": "error", "kinds": ["Queue"], "message": "a production service's queue must be small",
              "pointer": "/spec/size",
              "rule": {"if": {"properties": {"context": {"properties": {"service": {"properties": {
                  "tier": {"const": "production"}}, "required": ["tier"]}}, "required": ["service"]}},
                  "required": ["context"]}, "then": {"properties": {"spec": {"properties": {
                      "size": {"const": "small"}}}}}}}
    queues.write("schemas/policies/small-queues.json", json.dumps(policy))
    queues.write("catalog/queues/orders.yaml", QUEUE.format(name="orders", owner="payments", service="checkout",
                                                            size="large"))
    assert ("catalog/queues/orders.yaml", 9, "small-queues", "a production service's queue must be small") \
        in findings_of(queues)


def test_its_plural_names_it_in_the_cli(queues: PlatformRepo, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["new", "queues", "orders", "--owner", "payments", "--repo", str(queues.root)]) == 0
    written = queues.root / "catalog/queues/orders.yaml"
    assert written.read_text().startswith("# yaml-language-server: $schema=../../schemas/kinds/queue.json\n")
    capsys.readouterr()
    assert main(["explain", "Queues", "--repo", str(queues.root)]) == 0
    assert "spec.size" in capsys.readouterr().out


def test_it_is_listed_on_the_catalogue_pages(queues: PlatformRepo, tmp_path: Path) -> None:
    queues.write("catalog/queues/orders.yaml", QUEUE.format(name="orders", owner="payments", service="checkout",
                                                            size="small"))
    queues.commit("a queue")
    queues.git("switch", "--quiet", "main")
    queues.git("merge", "--quiet", "change")
    app = FastAPI()
    app.include_router(catalogue_router(PlatformSource("acme/platform", queues.root, tmp_path / "index.sqlite",
                                                       web_url="https://github.com")))
    with TestClient(app) as client:
        listing = client.get("/?kind=Queue")
        page = client.get("/resources/Queue/orders")
    assert listing.status_code == 200 and "Queue/orders" in listing.text and "Service/checkout" not in listing.text
    assert page.status_code == 200 and "Service/checkout" in page.text


def test_it_is_exported_to_backstage_as_its_description_says(queues: PlatformRepo,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    queues.write("schemas/kinds/queue.json", json.dumps(EXPORTED_QUEUE_SCHEMA, indent=2))
    queues.write("catalog/queues/orders.yaml", QUEUE.format(name="orders", owner="payments", service="checkout",
                                                            size="small"))
    queues.commit("queues in Backstage")
    assert main(["export", "backstage", "--repo", str(queues.root)]) == 0
    written = capsys.readouterr()
    [queue] = [d.data for d in load("catalog-info.yaml", written.out.encode()).documents
               if d.data["spec"].get("type") == "queue"]
    assert queue["metadata"]["name"] == "orders"
    assert queue["spec"] == {"type": "queue", "owner": "group:default/payments", "system": "system:default/payments",
                             "dependencyOf": ["component:default/checkout"]}
    assert queue["metadata"]["annotations"]["paved/size"] == "small"
    assert "not exported" not in written.err


def test_without_a_backstage_description_it_is_left_out_of_the_export_and_named_once(
        queues: PlatformRepo, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("orders", "refunds"):
        queues.write(f"catalog/queues/{name}.yaml", QUEUE.format(name=name, owner="payments", service="checkout",
                                                                 size="small"))
    queues.commit("queues")
    target = tmp_path / "catalog-info.yaml"
    assert main(["export", "backstage", "--repo", str(queues.root), "--output", str(target)]) == 0
    notes = [line for line in capsys.readouterr().err.splitlines() if "not exported" in line]
    assert len(notes) == 1 and notes[0].endswith(": Queue")
    assert "queue" not in target.read_text()


# -- describing a kind wrongly --------------------------------------------------------------------------

def test_a_malformed_description_stops_the_rules_at_its_line(queues: PlatformRepo) -> None:
    broken = {**QUEUE_SCHEMA, "x-paved": {**QUEUE_SCHEMA["x-paved"], "references": [{"pointer": "spec/service"}]}}
    text = json.dumps(broken, indent=2)
    queues.write("schemas/kinds/queue.json", text)
    with pytest.raises(ConfigurationError) as raised:
        load_rules(FolderTree(queues.root))
    line = next(i for i, row in enumerate(text.splitlines(), 1) if '"pointer": "spec/service"' in row)
    assert (raised.value.path, raised.value.line) == ("schemas/kinds/queue.json", line)
    assert "/x-paved/references/0/pointer" in raised.value.message


def test_paved_validate_reports_a_malformed_description_at_its_file_and_line(
        queues: PlatformRepo, capsys: pytest.CaptureFixture[str]) -> None:
    text = json.dumps({**QUEUE_SCHEMA, "x-paved": {"plural": "Queues!"}}, indent=2)
    queues.write("schemas/kinds/queue.json", text)
    assert main(["validate", "--repo", str(queues.root)]) == 2
    line = next(i for i, row in enumerate(text.splitlines(), 1) if '"plural"' in row)
    assert f"schemas/kinds/queue.json:{line}: `/x-paved/plural` is not a valid kind description" \
        in capsys.readouterr().err


def test_a_reference_to_an_unknown_kind_names_the_known_ones(queues: PlatformRepo) -> None:
    wrong = {**QUEUE_SCHEMA, "x-paved": {**QUEUE_SCHEMA["x-paved"],
                                         "references": [{"pointer": "/spec/service", "kind": "Servise"}]}}
    queues.write("schemas/kinds/queue.json", json.dumps(wrong, indent=2))
    with pytest.raises(ConfigurationError, match="names the unknown kind Servise") as raised:
        load_rules(FolderTree(queues.root))
    assert raised.value.line > 0 and "Team, Service, Database" in (raised.value.hint or "")


def test_a_price_for_an_unknown_kind_is_refused_at_its_line_naming_the_kinds(queues: PlatformRepo) -> None:
    queues.write("schemas/prices.yaml", PRICES.replace("  Queue:", "  Topic:"))
    with pytest.raises(ConfigurationError, match="the price list names the unknown kind 'Topic'") as raised:
        load_rules(FolderTree(queues.root))
    assert (raised.value.path, raised.value.line) == ("schemas/prices.yaml", 11)
    assert "Queue" in (raised.value.hint or "")


def test_a_policy_for_an_unknown_kind_is_refused_at_its_line(queues: PlatformRepo) -> None:
    path = queues.root / "schemas/policies/database-backups-in-production.json"
    policy = json.loads(path.read_text())
    policy["kinds"] = ["Databse"]
    path.write_text(json.dumps(policy, indent=2))
    with pytest.raises(ConfigurationError, match="the policy names the unknown kind 'Databse'") as raised:
        load_rules(FolderTree(queues.root))
    assert raised.value.line > 0


def test_the_built_in_kinds_are_described_in_their_schemas() -> None:
    kinds = load_rules(FolderTree(PROJECT)).described
    assert kinds.names == ("Team", "Service", "Database", "Environment", "Access")
    assert kinds.team == "Team" and kinds.parents() == {"Database": "Service", "Environment": "Service",
                                                         "Access": "Service"}
    assert kinds.followed() == {"Environment": "/spec/name"}


def test_a_kind_schema_without_a_description_is_refused_rather_than_judged_without_references(
        queues: PlatformRepo) -> None:
    undescribed = {k: v for k, v in QUEUE_SCHEMA.items() if k != "x-paved"}
    queues.write("schemas/kinds/queue.json", json.dumps(undescribed, indent=2))
    with pytest.raises(ConfigurationError, match="the schema of Queue has no `x-paved` section") as raised:
        load_rules(FolderTree(queues.root))
    assert raised.value.path == "schemas/kinds/queue.json" and "docs/kinds.md" in (raised.value.hint or "")


def test_paved_validate_reports_a_malformed_backstage_description_at_its_line(
        queues: PlatformRepo, capsys: pytest.CaptureFixture[str]) -> None:
    backstage = {**EXPORTED_QUEUE_SCHEMA["x-paved"]["backstage"], "annotations": {"paved/size": "spec/size"}}
    text = json.dumps({**QUEUE_SCHEMA, "x-paved": {**QUEUE_SCHEMA["x-paved"], "backstage": backstage}}, indent=2)
    queues.write("schemas/kinds/queue.json", text)
    assert main(["validate", "--repo", str(queues.root)]) == 2
    line = next(i for i, row in enumerate(text.splitlines(), 1) if '"paved/size": "spec/size"' in row)
    assert (f"schemas/kinds/queue.json:{line}: `/x-paved/backstage/annotations/paved~1size` is not a valid kind "
            "description") in capsys.readouterr().err


def test_a_backstage_key_that_means_nothing_for_its_entity_is_refused_at_its_line(queues: PlatformRepo) -> None:
    backstage = {**EXPORTED_QUEUE_SCHEMA["x-paved"]["backstage"], "members": ["/metadata/owner"]}
    text = json.dumps({**QUEUE_SCHEMA, "x-paved": {**QUEUE_SCHEMA["x-paved"], "backstage": backstage}}, indent=2)
    queues.write("schemas/kinds/queue.json", text)
    with pytest.raises(ConfigurationError) as raised:
        load_rules(FolderTree(queues.root))
    line = next(i for i, row in enumerate(text.splitlines(), 1) if '"members"' in row)
    assert (raised.value.path, raised.value.line) == ("schemas/kinds/queue.json", line)
    assert "/x-paved/backstage/members" in raised.value.message


def test_a_dependency_of_what_it_belongs_to_needs_a_reference_it_belongs_to(queues: PlatformRepo) -> None:
    unattached = {**EXPORTED_QUEUE_SCHEMA["x-paved"], "references": []}
    text = json.dumps({**QUEUE_SCHEMA, "x-paved": unattached}, indent=2)
    queues.write("schemas/kinds/queue.json", text)
    with pytest.raises(ConfigurationError, match="belongs to none") as raised:
        load_rules(FolderTree(queues.root))
    line = next(i for i, row in enumerate(text.splitlines(), 1) if '"dependencyOf"' in row)
    assert (raised.value.path, raised.value.line) == ("schemas/kinds/queue.json", line)
