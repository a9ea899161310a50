"""What spans files: identities, owners, references, cycles, templates, budgets and policies."""

from __future__ import annotations

from bot.adapters.catalogue_index import SQLiteCatalogueIndex
from bot.adapters.repo import FolderTree
from bot.model import Finding
from bot.plan import validate_tree
from tests.conftest import DATABASE, SERVICE, TEAM, PlatformRepo


def findings(repo: PlatformRepo) -> list[Finding]:
    return validate_tree(FolderTree(repo.root), store=SQLiteCatalogueIndex()).findings


def by_rule(repo: PlatformRepo, rule: str) -> list[Finding]:
    return [f for f in findings(repo) if f.rule == rule]


def test_the_starting_catalogue_is_clean(platform_repo: PlatformRepo) -> None:
    assert findings(platform_repo) == []


def test_the_same_identity_in_two_files_is_an_error_on_the_second(platform_repo: PlatformRepo) -> None:
    platform_repo.write("catalog/teams/payments2.yaml", TEAM.format(name="payments", budget=10))
    [finding] = by_rule(platform_repo, "catalog.unique-identity")
    assert finding.path == "catalog/teams/payments2.yaml"
    assert (finding.line, finding.column) == (4, 9)
    assert "already defined in catalog/teams/payments.yaml" in finding.message


def test_an_owner_that_is_not_a_team_is_an_error_with_a_suggestion(platform_repo: PlatformRepo) -> None:
    platform_repo.write("catalog/services/search.yaml",
                        SERVICE.format(name="search", owner="paymnts", tier="experimental"))
    [finding] = by_rule(platform_repo, "catalog.owner")
    assert (finding.path, finding.line, finding.column) == ("catalog/services/search.yaml", 5, 10)
    assert finding.hint == "did you mean `payments`?"


def test_a_database_for_a_service_that_does_not_exist_is_an_error(platform_repo: PlatformRepo) -> None:
    platform_repo.write("catalog/services/orphan.yaml",
                        DATABASE.format(name="orphan-db", owner="payments", service="chekout", size="small"))
    [finding] = by_rule(platform_repo, "catalog.reference")
    assert finding.pointer == "/spec/service"
    assert finding.hint == "did you mean `checkout`?"


def test_a_dependency_cycle_is_reported_once_with_its_path(platform_repo: PlatformRepo) -> None:
    for name, other in (("a", "b"), ("b", "a")):
        platform_repo.write(f"catalog/services/{name}.yaml",
                            SERVICE.format(name=name, owner="data", tier="experimental")
                            + f"  dependsOn:\n    - Service/{other}\n")
    [finding] = by_rule(platform_repo, "catalog.cycle")
    assert "Service/a → Service/b → Service/a" in finding.message
    assert finding.pointer == "/spec/dependsOn/0"


def test_a_template_that_does_not_exist_is_an_error_with_a_suggestion(platform_repo: PlatformRepo) -> None:
    platform_repo.write("catalog/services/search.yaml",
                        SERVICE.format(name="search", owner="data", tier="experimental")
                        .replace("fastapi-service", "fastapi-servce"))
    [finding] = by_rule(platform_repo, "catalog.template")
    assert finding.hint == "did you mean `fastapi-service`?"
    assert finding.line == 9


def test_template_parameters_are_checked_against_cookiecutter_json(platform_repo: PlatformRepo) -> None:
    platform_repo.write("catalog/services/search.yaml",
                        SERVICE.format(name="search", owner="data", tier="experimental").replace(
                            "    name: fastapi-service\n",
                            "    name: fastapi-service\n    parameters:\n      python_versoin: '3.12'\n"
                            "      port: 8000\n"))
    found = by_rule(platform_repo, "catalog.template-parameter")
    assert [f.pointer for f in found] == ["/spec/template/parameters/python_versoin",
                                          "/spec/template/parameters/port"]
    assert found[0].hint == "did you mean `python_version`?"
    assert "must be a string" in found[1].message


def test_a_parameter_outside_the_template_choices_is_an_error(platform_repo: PlatformRepo) -> None:
    platform_repo.write("catalog/services/search.yaml",
                        SERVICE.format(name="search", owner="data", tier="experimental").replace(
                            "    name: fastapi-service\n",
                            "    name: fastapi-service\n    parameters:\n      python_version: '2.7'\n"))
    [finding] = by_rule(platform_repo, "catalog.template-parameter")
    assert "must be one of 3.12, 3.11, 3.13" in finding.message


def test_a_team_over_its_monthly_budget_is_an_error_on_the_budget(platform_repo: PlatformRepo) -> None:
    platform_repo.write("catalog/services/big.yaml",
                        SERVICE.format(name="big", owner="data", tier="critical")
                        + "---" + DATABASE.format(name="big-db", owner="data", service="big", size="large"))
    [finding] = by_rule(platform_repo, "catalog.budget")
    assert finding.path == "catalog/teams/data.yaml"
    assert finding.pointer == "/spec/budget/monthly"
    assert "USD 500.00/month, over its budget of USD 300.00" in finding.message
    assert finding.hint and "Database/big-db (380)" in finding.hint


def test_policies_see_the_owning_services_tier(platform_repo: PlatformRepo) -> None:
    risky = DATABASE.format(name="loose-db", owner="payments", service="checkout", size="small").replace(
        "deletionProtection: true", "deletionProtection: false")
    platform_repo.write("catalog/services/loose.yaml", risky)
    assert [f.rule for f in findings(platform_repo)] == ["database-deletion-protection"]
    platform_repo.write("catalog/services/checkout.yaml",
                        SERVICE.format(name="checkout", owner="payments", tier="experimental")
                        + "---" + DATABASE.format(name="checkout-db", owner="payments", service="checkout",
                                                  size="small"))
    assert findings(platform_repo) == []


def test_a_secret_anywhere_in_a_request_is_an_error(platform_repo: PlatformRepo) -> None:
    platform_repo.write("catalog/services/leaky.yaml",
                        SERVICE.format(name="leaky", owner="data", tier="experimental").replace(
                            "  description: The leaky service.",
                            "  description: The leaky service.\n  labels:\n"
                            "    token: ghp_abcdefghijklmnopqrstuvwxyz0123456789"))
    [finding] = by_rule(platform_repo, "no-secrets-in-requests")
    assert finding.path == "catalog/services/leaky.yaml"
    assert finding.line > 0


def test_a_revision_judged_before_by_the_same_rule_files_is_answered_from_the_index(
        platform_repo: PlatformRepo) -> None:
    platform_repo.write("catalog/teams/payments2.yaml", TEAM.format(name="payments", budget=10))
    index = SQLiteCatalogueIndex()
    first = validate_tree(FolderTree(platform_repo.root), store=index)
    again = validate_tree(FolderTree(platform_repo.root), store=index)
    assert first.rules is not None and again.rules is None  # the rules were not read the second time
    assert (again.findings, again.files_checked, again.resources) == (first.findings, first.files_checked,
                                                                       first.resources)
    assert [f.rule for f in again.findings] == ["catalog.unique-identity"]
