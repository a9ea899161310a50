"""Planning a pull request: two git revisions in, ordered changes, costs and findings out."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.adapters.catalogue_index import SQLiteCatalogueIndex
from bot.adapters.repo import FolderTree, GitTree
from bot.errors import ConfigurationError, RevisionError
from bot.model import FieldChange, Plan, Upgrade
from bot.plan import PlannedRequests, make_plan, plan_requests, refuse_lost_data
from bot.providers.database import plugin as database_plugin
from tests.conftest import DATABASE, SERVICE, TEAM, PlatformRepo


def plan_of(repo: PlatformRepo, base: str = "main", head: str | None = "HEAD", **kwargs: Any) -> Plan:
    head_tree = FolderTree(repo.root) if head is None else GitTree(repo.root, head)
    kwargs.setdefault("store", SQLiteCatalogueIndex())
    try:
        with GitTree(repo.root, base) as base_tree:
            return make_plan(base_tree, head_tree, **kwargs)
    finally:
        head_tree.close()


@pytest.fixture
def branch(platform_repo: PlatformRepo) -> PlatformRepo:
    platform_repo.git("switch", "--quiet", "-c", "change")
    return platform_repo


def test_a_new_request_is_a_create_listing_every_field(branch: PlatformRepo) -> None:
    branch.write("catalog/services/search.yaml", SERVICE.format(name="search", owner="data", tier="experimental"))
    branch.commit()
    plan = plan_of(branch)
    [change] = plan.changes
    assert (change.action, change.identity, change.path, change.line) == (
        "create", "Service/search", "catalog/services/search.yaml", 2)
    assert FieldChange("/spec/tier", "add", after="experimental") in change.fields
    assert plan.deletions == () and plan.unchanged == 4 and plan.ok


def test_an_edit_is_an_update_with_field_level_old_and_new(branch: PlatformRepo) -> None:
    text = (branch.root / "catalog/services/checkout.yaml").read_text()
    branch.write("catalog/services/checkout.yaml", text.replace("size: small", "size: medium"))
    branch.commit()
    [change] = plan_of(branch).changes
    assert change.action == "update" and change.identity == "Database/checkout-db"
    assert change.fields == (FieldChange("/spec/size", "replace", before="small", after="medium"),)
    assert (change.monthly_cost_before, change.monthly_cost_after) == (25.0, 95.0)


def test_a_change_carries_the_tier_of_its_service(branch: PlatformRepo) -> None:
    text = (branch.root / "catalog/services/checkout.yaml").read_text()
    branch.write("catalog/services/checkout.yaml", text.replace("size: small", "size: medium"))
    branch.commit()
    plan = plan_of(branch)
    [change] = plan.changes
    assert change.tier == "production"  # a database has the tier of its service


def test_a_removed_request_is_a_destructive_deletion_listed_apart(branch: PlatformRepo) -> None:
    branch.write("catalog/services/checkout.yaml",
                 SERVICE.format(name="checkout", owner="payments", tier="production"))
    branch.commit()
    plan = plan_of(branch)
    assert plan.changes == ()
    [deletion] = plan.deletions
    assert deletion.identity == "Database/checkout-db" and deletion.destructive


def test_deletions_remove_dependents_before_what_they_depend_on(branch: PlatformRepo) -> None:
    branch.remove("catalog/services/checkout.yaml")
    branch.commit()
    assert [d.identity for d in plan_of(branch).deletions] == ["Database/checkout-db", "Service/checkout"]


def test_creates_come_after_what_they_depend_on(branch: PlatformRepo) -> None:
    branch.write("catalog/services/search.yaml",
                 DATABASE.format(name="search-db", owner="growth", service="search", size="small")
                 + "---" + SERVICE.format(name="search", owner="growth", tier="experimental"))
    branch.write("catalog/teams/growth.yaml", TEAM.format(name="growth", budget=100))
    branch.commit()
    assert [c.identity for c in plan_of(branch).changes] == ["Team/growth", "Service/search", "Database/search-db"]


def test_a_renamed_request_with_the_same_content_is_a_rename(branch: PlatformRepo) -> None:
    branch.remove("catalog/teams/data.yaml")
    branch.write("catalog/teams/analytics.yaml", TEAM.format(name="analytics", budget=300)
                 .replace("The analytics team.", "The data team."))
    branch.commit()
    plan = plan_of(branch)
    [change] = plan.changes
    assert (change.action, change.previous_name, change.name) == ("rename", "data", "analytics")
    assert plan.deletions == ()


def test_moving_a_request_to_another_file_changes_nothing(branch: PlatformRepo) -> None:
    text = (branch.root / "catalog/teams/data.yaml").read_text()
    branch.remove("catalog/teams/data.yaml")
    branch.write("catalog/teams/more/data.yaml", text)
    branch.commit()
    plan = plan_of(branch)
    assert plan.all_changes == () and plan.unchanged == 4


def test_costs_are_summed_per_team_with_the_delta_and_budget(branch: PlatformRepo) -> None:
    branch.write("catalog/services/lake.yaml",
                 SERVICE.format(name="lake", owner="data", tier="production")
                 + "---" + DATABASE.format(name="lake-db", owner="data", service="lake", size="medium"))
    branch.commit()
    [cost] = plan_of(branch).costs
    assert (cost.team, cost.before, cost.after, cost.delta, cost.budget) == ("data", 0.0, 135.0, 135.0, 300.0)


def test_rules_come_from_the_base_so_a_pull_request_cannot_loosen_them(branch: PlatformRepo) -> None:
    schema_path = branch.root / "schemas/kinds/database.json"
    schema = json.loads(schema_path.read_text())
    schema["properties"]["spec"]["properties"]["size"]["enum"].append("huge")
    schema_path.write_text(json.dumps(schema, indent=2))
    text = (branch.root / "catalog/services/checkout.yaml").read_text()
    branch.write("catalog/services/checkout.yaml", text.replace("size: small", "size: huge"))
    branch.commit()
    plan = plan_of(branch)
    assert [f.pointer for f in plan.errors] == ["/spec/size"]
    assert [(r.path, r.status) for r in plan.rule_changes] == [("schemas/kinds/database.json", "modified")]


def test_a_file_that_no_longer_parses_is_a_finding_not_a_deletion(branch: PlatformRepo) -> None:
    branch.write("catalog/services/checkout.yaml", "apiVersion: paved/v1\nkind: [unclosed\n")
    branch.commit()
    plan = plan_of(branch)
    assert plan.deletions == ()
    assert [f.rule for f in plan.errors] == ["yaml.syntax"]


def test_the_working_tree_can_be_the_head(branch: PlatformRepo) -> None:
    branch.write("catalog/teams/growth.yaml", TEAM.format(name="growth", budget=100))
    plan = plan_of(branch, head=None)
    assert [c.identity for c in plan.changes] == ["Team/growth"]
    assert plan.head == "working tree"


def test_an_unknown_revision_is_a_clear_error(platform_repo: PlatformRepo) -> None:
    with pytest.raises(RevisionError, match="'nope' is not a commit"):
        plan_of(platform_repo, base="nope")


def test_a_broken_rule_file_stops_the_plan_naming_file_and_line(branch: PlatformRepo) -> None:
    branch.git("switch", "--quiet", "main")
    (branch.root / "schemas/kinds/team.json").write_text('{\n  "type": "object",\n  oops\n}\n')
    branch.commit("break the rules")
    with pytest.raises(ConfigurationError, match=r"schemas/kinds/team.json:3: invalid JSON"):
        plan_of(branch, base="main")


class CountingTree:
    """A tree that counts which files are read, to show what the cache saves."""

    def __init__(self, inner: GitTree) -> None:
        self.inner = inner
        self.label = inner.label
        self.read_paths: list[str] = []

    def files(self, prefix: str) -> dict[str, str]:
        return self.inner.files(prefix)

    def paths(self, prefix: str) -> list[str]:
        return self.inner.paths(prefix)

    def read(self, path: str) -> bytes:
        self.read_paths.append(path)
        return self.inner.read(path)

    def read_many(self, paths: Iterable[str]) -> dict[str, bytes]:
        wanted = list(paths)
        self.read_paths += [p for p in wanted if p.startswith("catalog/")]
        return self.inner.read_many(wanted)

    def tree_id(self, prefix: str) -> str | None:
        return self.inner.tree_id(prefix)

    def diff(self, since: str, prefix: str) -> dict[str, str | None] | None:
        return self.inner.diff(since, prefix)

    def close(self) -> None:
        self.inner.close()


def test_a_second_plan_reads_only_files_that_changed_since(branch: PlatformRepo, tmp_path: Path) -> None:
    index = tmp_path / "data" / "catalogue.sqlite"
    branch.write("catalog/teams/growth.yaml", TEAM.format(name="growth", budget=100))
    first = branch.commit()
    with GitTree(branch.root, "main") as main, GitTree(branch.root, first) as planned:
        make_plan(main, planned, store=SQLiteCatalogueIndex(index))
    branch.write("catalog/teams/growth.yaml", TEAM.format(name="growth", budget=200))
    second = branch.commit()
    with GitTree(branch.root, "main") as main, GitTree(branch.root, second) as changed:
        head = CountingTree(changed)
        plan = make_plan(CountingTree(main), head, store=SQLiteCatalogueIndex(index))
    assert head.read_paths == ["catalog/teams/growth.yaml"]
    assert [c.identity for c in plan.changes] == ["Team/growth"]


ENVIRONMENT = """
apiVersion: paved/v1
kind: Environment
metadata:
  name: checkout-{env}
  owner: payments
  description: Where checkout runs in {env}.
spec:
  service: checkout
  name: {env}
"""


def test_removing_a_database_that_is_still_protected_is_an_error(branch: PlatformRepo) -> None:
    branch.write("catalog/services/checkout.yaml",
                 SERVICE.format(name="checkout", owner="payments", tier="production"))
    branch.commit()
    plan = plan_of(branch)
    [error] = plan.errors
    assert (error.rule, error.path, error.line, error.pointer) == (
        "catalog.deletion-protection", "catalog/services/checkout.yaml", 29, "/spec/deletionProtection")
    assert "Database/checkout-db" in error.message and "separate pull request" in (error.hint or "")


def test_removing_a_database_whose_protection_was_turned_off_earlier_is_a_plain_deletion(
        platform_repo: PlatformRepo) -> None:
    text = (platform_repo.root / "catalog/services/checkout.yaml").read_text()
    platform_repo.write("catalog/services/checkout.yaml",
                        text.replace("deletionProtection: true", "deletionProtection: false"))
    platform_repo.commit()
    platform_repo.git("switch", "--quiet", "-c", "change")
    platform_repo.write("catalog/services/checkout.yaml",
                        SERVICE.format(name="checkout", owner="payments", tier="production"))
    platform_repo.commit()
    plan = plan_of(platform_repo)
    assert plan.ok
    assert [c.identity for c in plan.deletions] == ["Database/checkout-db"]


def test_a_new_environment_applies_its_services_databases_again(branch: PlatformRepo) -> None:
    branch.write("catalog/environments/checkout-staging.yaml", ENVIRONMENT.format(env="staging"))
    branch.commit()
    plan = plan_of(branch)
    assert [c.identity for c in plan.changes] == ["Environment/checkout-staging"]
    assert plan.refresh == ("Database/checkout-db",)
    assert plan.followed == (("checkout", ("staging",)),)


def test_a_database_applies_after_the_environments_its_credentials_go_to(branch: PlatformRepo) -> None:
    text = (branch.root / "catalog/services/checkout.yaml").read_text()
    branch.write("catalog/services/checkout.yaml", text.replace("size: small", "size: medium"))
    branch.write("catalog/environments/checkout-staging.yaml", ENVIRONMENT.format(env="staging"))
    branch.commit()
    plan = plan_of(branch)
    order = [c.identity for c in plan.changes]
    assert order.index("Environment/checkout-staging") < order.index("Database/checkout-db")
    [database] = [c for c in plan.changes if c.kind == "Database"]
    assert "Environment/checkout-staging" in database.depends_on


# -- platform changes ----------------------------------------------------------------------------------


def platform_plan(repo: PlatformRepo) -> Plan:
    from bot.plan import plan_requests, proposed_rules
    from bot.rules import load_rules

    with GitTree(repo.root, "main") as base, GitTree(repo.root, "HEAD") as head:
        store = SQLiteCatalogueIndex()
        rules = load_rules(base)
        planned = plan_requests(base, head, store=store, rules=rules)
        return proposed_rules(planned.plan, base, head, rules, store)


HOOK = "templates/fastapi-service/hooks/pre_gen_project.py"


def change_template(branch: PlatformRepo) -> None:
    branch.write(HOOK, (branch.root / HOOK).read_text() + "\n# checked by the platform team\n")


def test_a_template_change_says_how_many_services_will_get_an_upgrade_pull_request(branch: PlatformRepo) -> None:
    change_template(branch)
    branch.commit()
    plan = platform_plan(branch)
    assert [c.path for c in plan.rule_changes] == [HOOK]
    assert plan.platform_impact[0] == "template fastapi-service changed: 1 service will get an upgrade pull request"
    assert plan.upgrades == (Upgrade("Service/checkout", "fastapi-service", "template"),)


def test_services_that_opted_out_or_are_pinned_are_counted_apart(branch: PlatformRepo) -> None:
    branch.git("switch", "--quiet", "main")
    for name, choice in (("search", "updates: manual"), ("ranking", f"pin: {'c' * 40}")):
        branch.write(f"catalog/services/{name}.yaml", SERVICE.format(name=name, owner="data", tier="experimental")
                     .replace("    name: fastapi-service\n", f"    name: fastapi-service\n    {choice}\n"))
    branch.commit("two more services")
    branch.git("switch", "--quiet", "-c", "template")
    change_template(branch)
    branch.commit()
    plan = platform_plan(branch)
    assert plan.platform_impact[0] == ("template fastapi-service changed: 1 service will get an upgrade pull request "
                                       "(1 opted out, 1 pinned)")
    assert {(u.identity, u.held) for u in plan.upgrades} == {
        ("Service/checkout", ""), ("Service/search", "manual"), ("Service/ranking", "pinned")}


def test_a_service_created_with_the_template_change_gets_no_upgrade(branch: PlatformRepo) -> None:
    change_template(branch)
    branch.write("catalog/services/search.yaml", SERVICE.format(name="search", owner="data", tier="experimental"))
    branch.commit()
    assert [u.identity for u in platform_plan(branch).upgrades] == ["Service/checkout"]


def test_a_request_change_that_alters_the_template_answers_is_an_upgrade(branch: PlatformRepo) -> None:
    path = branch.root / "catalog/services/checkout.yaml"
    branch.write("catalog/services/checkout.yaml",
                 path.read_text().replace("The checkout service.", "Takes the money."))
    branch.commit()
    assert plan_of(branch).upgrades == (Upgrade("Service/checkout", "fastapi-service", "answers"),)


def test_a_request_change_the_template_never_sees_is_no_upgrade(branch: PlatformRepo) -> None:
    text = (branch.root / "catalog/services/checkout.yaml").read_text()
    branch.write("catalog/services/checkout.yaml", text.replace("size: small", "size: medium"))
    branch.commit()
    assert plan_of(branch).upgrades == ()


def test_settings_and_workflows_are_platform_changes_too(branch: PlatformRepo) -> None:
    branch.write("paved.yaml", "approvals:\n  tiers: [critical]\n")
    branch.write(".github/workflows/paved.yml", "on: pull_request\n")
    branch.commit()
    plan = platform_plan(branch)
    assert [(c.path, c.status) for c in plan.rule_changes] == [(".github/workflows/paved.yml", "added"),
                                                                ("paved.yaml", "added")]
    assert any(s.startswith("paved.yaml changed") for s in plan.platform_impact)


def test_rules_that_cannot_be_used_after_the_merge_are_an_error_now(branch: PlatformRepo) -> None:
    branch.write("schemas/kinds/team.json", "{ not json")
    branch.commit()
    plan = platform_plan(branch)
    [broken] = [f for f in plan.errors if f.rule == "rules.broken"]
    assert broken.path == "schemas/kinds/team.json" and "cannot be used" in broken.message


def test_stricter_rules_count_the_requests_that_would_fail_under_them(branch: PlatformRepo) -> None:
    path = branch.root / "schemas/kinds/team.json"
    schema = json.loads(path.read_text())
    schema["properties"]["spec"]["properties"]["budget"]["properties"]["monthly"]["maximum"] = 400
    path.write_text(json.dumps(schema, indent=2))
    branch.commit()
    plan = platform_plan(branch)
    assert plan.ok
    assert plan.platform_impact[-1].startswith("under the proposed rules, 1 error in 1 request file that passes "
                                               "today (first: catalog/teams/payments.yaml:")


# -- where the embedded database default would be lost (GitHub Actions) -----------------------------------


@pytest.fixture
def new_database(branch: PlatformRepo) -> Iterator[tuple[PlannedRequests, GitTree]]:
    """The plan of a branch that adds a database, and the branch's tree."""
    branch.write("catalog/data/orders.yaml", DATABASE.format(name="orders-db", owner="payments",
                                                             service="checkout", size="small"))
    branch.commit()
    with GitTree(branch.root, "main") as base, GitTree(branch.root, "HEAD") as head:
        yield plan_requests(base, head, store=SQLiteCatalogueIndex()), head


def test_a_new_database_without_a_server_is_an_error_at_its_engine_when_embedded_ones_would_be_lost(
        new_database: tuple[PlannedRequests, GitTree]) -> None:
    planned, head = new_database

    assert database_plugin.keeping is not None
    [error] = refuse_lost_data(planned, head, {"Database": database_plugin.keeping}).plan.errors

    assert (error.path, error.line, error.pointer, error.rule) == (
        "catalog/data/orders.yaml", 8, "/spec/engine", "paved.lasting-data")
    assert error.message.startswith("Database orders-db needs a database server: paved.yaml names none")
    assert error.hint is not None and "connectionEnv" in error.hint


def test_a_database_on_a_named_server_is_no_finding(new_database: tuple[PlannedRequests, GitTree]) -> None:
    planned, head = new_database

    assert refuse_lost_data(planned, head, {}) == planned
