"""Standards, scored from live state: the starter set against documents of real shapes, the golden path's
decision from a project's record, the rules that load them, and the scorecard as recorded."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from bot.errors import ConfigurationError
from bot.golden_paths import Following, ScaffoldRecord
from bot.model import MemoryTree, Resource
from bot.providers.github.environments import ObservedEnvironment
from bot.providers.github.repositories import ObservedRepository, Protection, StatusChecks
from bot.rules import Rules, load_rules
from bot.standards import (
    Scorecard,
    as_json,
    belonging,
    document,
    failing_most,
    filtered,
    golden_path,
    newest,
    on_latest,
    read_scorecards,
    score,
    scorecard,
    tally,
    unscored,
)

ROOT = Path(__file__).resolve().parents[1]
STARTER = sorted((ROOT / "schemas" / "standards").glob("*.json"))
HEAD = "a" * 40
OLD = "b" * 40
PIN = "c" * 40


def rule_files(**extra: bytes) -> dict[str, bytes]:
    files = {str(p.relative_to(ROOT)): p.read_bytes() for p in (ROOT / "schemas").rglob("*") if p.is_file()}
    files.update({str(p.relative_to(ROOT)): p.read_bytes() for p in (ROOT / "templates").glob("*/cookiecutter.json")})
    files.update(extra)
    return files


@pytest.fixture(scope="module")
def rules() -> Rules:
    return load_rules(MemoryTree(rule_files()))


def service(tier: str = "production", **template: Any) -> Resource:
    data = {"apiVersion": "paved/v1", "kind": "Service",
            "metadata": {"name": "payments-api", "owner": "payments", "description": "Takes payments."},
            "spec": {"template": {"name": "fastapi-service", **template}, "tier": tier, "lifecycle": "production"}}
    return Resource("Service", "payments-api", "payments", "catalog/services/payments-api.yaml", 0, 1, data)


def environment(name: str) -> Resource:
    data = {"apiVersion": "paved/v1", "kind": "Environment",
            "metadata": {"name": f"payments-api-{name}", "owner": "payments"},
            "spec": {"service": "payments-api", "name": name}}
    return Resource("Environment", f"payments-api-{name}", "payments", "catalog/services/payments-api.yaml", 1, 20,
                    data)


def repository(**changes: Any) -> ObservedRepository:
    fields: dict[str, Any] = dict(
        full_name="acme/payments-api", url="https://github.com/acme/payments-api", visibility="private",
        description="Takes payments.", archived=False, default_branch="main", empty=False,
        teams={"payments": "maintain"},
        protection=Protection(approvals=1, code_owners=True, status_checks=StatusChecks(True, ("ci",)),
                              enforce_admins=False),
        codeowners=True, scaffold=ScaffoldRecord("fastapi-service", HEAD, {"port": "8080"}), scaffold_problem="")
    return ObservedRepository(**{**fields, **changes})


def facts(rules: Rules, resource: Resource | None = None, *, live: ObservedRepository | None = None,
          environments: tuple[tuple[str, tuple[str, ...]], ...] = (("production", ("payments",)),),
          issues: tuple[tuple[int, str], ...] = (), latest: bool = True, problem: str = "") -> dict[str, Any]:
    resource = resource or service()
    live = live or repository()
    golden = {"template": "fastapi-service", "updates": "auto", "pin": None, "latest": latest, "problem": problem,
              "record": None, "upgrades": "https://github.com/acme/payments-api/pulls?q=label"}
    owned = [belonging(environment(name), observed="found",
                       live=ObservedEnvironment("acme/payments-api", name, "", 0, reviewers, None))
             for name, reviewers in environments]
    return document(resource, rules.describe("Service"), observed="found", live=live, golden=golden,
                    belongings={"environments": owned}, drift_issues=issues)


def outcome(rules: Rules, doc: dict[str, Any], standard: str) -> Any:
    found = score(rules, doc)
    assert found is not None
    return next(o for o in found.outcomes if o.standard == standard)


# -- the starter standards ------------------------------------------------------------------------------

def test_the_starter_standards_are_scored_for_services(rules: Rules) -> None:
    assert {s.id for s in rules.standards} == {p.stem for p in STARTER}
    assert all(s.kinds == ("Service",) for s in rules.standards)


@pytest.mark.parametrize("path", STARTER, ids=lambda p: p.stem)
def test_a_starter_standard_follows_the_standard_format(path: Path) -> None:
    meta = json.loads((ROOT / "schemas" / "standard.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(meta)
    jsonschema.Draft202012Validator(meta).validate(json.loads(path.read_text()))


def test_a_repository_as_paved_makes_it_meets_every_standard(rules: Rules) -> None:
    found = score(rules, facts(rules))
    assert found is not None and not found.failed and len(found.passed) == len(rules.standards)


@pytest.mark.parametrize(("standard", "live"), [
    ("default-branch-protected", {"protection": None}),
    ("approving-review-required", {"protection": Protection(0, True, None, False)}),
    ("approving-review-required", {"protection": None}),
    ("code-owners-review-required", {"protection": Protection(1, False, None, False)}),
    ("codeowners-file-present", {"codeowners": False}),
    ("default-branch-is-main", {"default_branch": "master"}),
])
def test_a_repository_without_the_fact_fails_its_standard(rules: Rules, standard: str, live: dict[str, Any]) -> None:
    failed = outcome(rules, facts(rules, live=repository(**live)), standard)
    assert not failed.passed and failed.message == next(s.message for s in rules.standards if s.id == standard)


def test_a_repository_that_does_not_exist_fails_the_repository_standards(rules: Rules) -> None:
    doc = document(service(), rules.describe("Service"), observed="missing", live=None)
    found = score(rules, doc)
    assert found is not None
    assert {o.standard for o in found.failed} == {"default-branch-protected", "approving-review-required",
                                                  "code-owners-review-required", "codeowners-file-present",
                                                  "default-branch-is-main"}


def test_a_production_environment_without_reviewers_fails(rules: Rules) -> None:
    doc = facts(rules, environments=(("preview", ()), ("prod-eu", ())))
    assert not outcome(rules, doc, "production-environments-reviewed").passed


def test_an_environment_not_named_like_production_needs_no_reviewer(rules: Rules) -> None:
    doc = facts(rules, environments=(("preview", ()), ("staging", ())))
    assert outcome(rules, doc, "production-environments-reviewed").passed


def test_a_production_environment_that_does_not_exist_fails(rules: Rules) -> None:
    doc = facts(rules, environments=())
    doc["belongings"]["environments"] = [belonging(environment("production"), observed="missing", live=None)]
    assert not outcome(rules, doc, "production-environments-reviewed").passed


def test_an_open_drift_issue_fails_and_links_to_it(rules: Rules) -> None:
    failed = outcome(rules, facts(rules, issues=((12, "https://github.com/acme/platform/issues/12"),)),
                     "no-open-drift-issue")
    assert not failed.passed and failed.link == "https://github.com/acme/platform/issues/12"


def test_the_drift_standard_applies_only_to_the_tiers_it_names(rules: Rules) -> None:
    doc = facts(rules, service(tier="experimental"), issues=((12, "https://github.com/acme/platform/issues/12"),))
    found = score(rules, doc)
    assert found is not None and "no-open-drift-issue" not in {o.standard for o in found.outcomes}


def test_not_on_the_latest_golden_path_says_why_and_links_to_the_upgrades(rules: Rules) -> None:
    failed = outcome(rules, facts(rules, latest=False, problem="the repository has no .paved/scaffold.json"),
                     "on-latest-golden-path")
    assert not failed.passed
    assert failed.message == ("The service is not on the latest version of its golden path: the repository has no "
                              ".paved/scaffold.json")
    assert failed.link == "https://github.com/acme/payments-api/pulls?q=label"


def test_a_detail_from_a_hostile_record_is_shown_on_one_short_line(rules: Rules) -> None:
    failed = outcome(rules, facts(rules, latest=False, problem="not JSON\n" + "x" * 5000), "on-latest-golden-path")
    assert "\n" not in failed.message and len(failed.message) < 400 and failed.message.endswith("…")


def test_a_service_that_follows_no_template_passes_the_golden_path_standard(rules: Rules) -> None:
    doc = facts(rules)
    del doc["goldenPath"]
    assert outcome(rules, doc, "on-latest-golden-path").passed


def test_a_kind_no_standard_names_is_not_scored(rules: Rules) -> None:
    doc = document(environment("production"), rules.describe("Environment"), observed="found", live=None)
    assert score(rules, doc) is None


# -- observed state as JSON -----------------------------------------------------------------------------

def test_observed_state_becomes_plain_json(rules: Rules) -> None:
    live = as_json(repository())
    assert json.loads(json.dumps(live)) == live
    assert live["protection"] == {"approvals": 1, "code_owners": True, "enforce_admins": False,
                                  "status_checks": {"strict": True, "contexts": ["ci"]}}
    assert live["teams"] == {"payments": "maintain"}
    assert live["scaffold"] == {"template": "fastapi-service", "commit": HEAD, "answers": {"port": "8080"}}


# -- the golden path ------------------------------------------------------------------------------------

def trees(**at: str) -> Any:
    return lambda commit: at.get(commit)


def test_a_record_whose_template_folder_is_the_heads_is_on_the_latest() -> None:
    facts = golden_path(Following("fastapi-service"), ScaffoldRecord("fastapi-service", OLD), "", head=HEAD,
                        tree_at=trees(**{OLD: "t1", HEAD: "t1"}), merged=lambda c: True)
    assert facts["latest"] is True and facts["problem"] == ""


def test_a_record_whose_template_folder_changed_since_is_not() -> None:
    facts = golden_path(Following("fastapi-service"), ScaffoldRecord("fastapi-service", OLD), "", head=HEAD,
                        tree_at=trees(**{OLD: "t1", HEAD: "t2"}), merged=lambda c: True)
    assert facts["latest"] is False
    assert facts["problem"] == (f"it was rendered from templates/fastapi-service/ at {OLD[:12]}, which differs at "
                                "the platform repo's head")


def test_a_pinned_project_is_on_its_latest_when_its_record_matches_its_pin() -> None:
    facts = golden_path(Following("fastapi-service", pin=PIN), ScaffoldRecord("fastapi-service", PIN), "",
                        head=HEAD, tree_at=trees(**{PIN: "t1", HEAD: "t2"}), merged=lambda c: True)
    assert facts["latest"] is True


def test_a_pinned_project_behind_its_pin_is_not() -> None:
    facts = golden_path(Following("fastapi-service", pin=PIN), ScaffoldRecord("fastapi-service", OLD), "",
                        head=HEAD, tree_at=trees(**{OLD: "t0", PIN: "t1", HEAD: "t1"}), merged=lambda c: True)
    assert facts["latest"] is False and "its pin" in facts["problem"]


def test_a_missing_record_is_not_on_the_latest_and_says_so() -> None:
    facts = golden_path(Following("fastapi-service"), None, "", head=HEAD, tree_at=trees(), merged=lambda c: True)
    assert facts["latest"] is False and facts["problem"] == "the repository has no .paved/scaffold.json"


def test_a_record_naming_a_commit_the_platform_never_merged_is_not_on_the_latest() -> None:
    facts = golden_path(Following("fastapi-service"), ScaffoldRecord("fastapi-service", OLD), "", head=HEAD,
                        tree_at=trees(**{OLD: "t1", HEAD: "t1"}), merged=lambda c: c == HEAD)
    assert facts["latest"] is False and "does not hold" in facts["problem"]


def test_a_record_of_another_template_is_not_on_the_latest() -> None:
    facts = golden_path(Following("worker"), ScaffoldRecord("fastapi-service", HEAD), "", head=HEAD,
                        tree_at=trees(**{HEAD: "t1"}), merged=lambda c: True)
    assert facts["latest"] is False and "request now names worker" in facts["problem"]


def test_the_upgrades_link_is_the_repositorys_upgrade_pull_requests() -> None:
    facts = golden_path(Following("fastapi-service"), None, "", head=HEAD, tree_at=trees(), merged=lambda c: True,
                        repository_url="https://github.com/acme/payments-api")
    assert facts["upgrades"].startswith("https://github.com/acme/payments-api/pulls?q=is%3Apr%20is%3Aopen")
    assert "paved%3Aupgrade" in facts["upgrades"]


# -- loading standards ----------------------------------------------------------------------------------

def broken(name: str, change: dict[str, Any]) -> dict[str, bytes]:
    doc = json.loads((ROOT / "schemas" / "standards" / "default-branch-is-main.json").read_text())
    doc.update(change)
    doc["id"] = doc.get("id", name)
    return rule_files(**{f"schemas/standards/{name}.json": json.dumps(doc, indent=2).encode()})


def test_a_standard_that_is_not_json_stops_the_rules_at_its_line() -> None:
    with pytest.raises(ConfigurationError) as raised:
        load_rules(MemoryTree(rule_files(**{"schemas/standards/x.json": b'{\n  "id": "x",\n  oops\n}\n'})))
    assert raised.value.path == "schemas/standards/x.json" and raised.value.line == 3


def test_a_standard_missing_a_field_names_the_file_and_the_field() -> None:
    files = broken("default-branch-is-main", {})
    doc = json.loads(files["schemas/standards/default-branch-is-main.json"])
    del doc["fix"]
    files["schemas/standards/default-branch-is-main.json"] = json.dumps(doc, indent=2).encode()
    with pytest.raises(ConfigurationError, match=r"not a valid standard: .*\"fix\" is a required property") as raised:
        load_rules(MemoryTree(files))
    assert raised.value.path == "schemas/standards/default-branch-is-main.json" and raised.value.line == 1


def test_a_standard_with_a_wrong_value_names_its_line() -> None:
    with pytest.raises(ConfigurationError, match="severity") as raised:
        load_rules(MemoryTree(broken("default-branch-is-main", {"severity": "blocker"})))
    assert raised.value.line == 7


def test_a_standard_naming_an_unknown_kind_names_its_line() -> None:
    with pytest.raises(ConfigurationError, match="the standard names the unknown kind 'Servise'") as raised:
        load_rules(MemoryTree(broken("default-branch-is-main", {"kinds": ["Servise"]})))
    assert raised.value.line == 9


def test_a_standard_whose_id_is_not_its_file_name_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="must equal the file name 'other'"):
        load_rules(MemoryTree(broken("other", {"id": "default-branch-is-main"})))


def test_a_standard_whose_rule_does_not_compile_names_the_rule() -> None:
    with pytest.raises(ConfigurationError, match="not a valid standard: rule/type") as raised:
        load_rules(MemoryTree(broken("default-branch-is-main", {"rule": {"type": "nothing"}})))
    assert raised.value.path == "schemas/standards/default-branch-is-main.json" and raised.value.line > 1


def test_standards_change_the_rules_digest() -> None:
    before = load_rules(MemoryTree(rule_files())).digest
    after = load_rules(MemoryTree(broken("default-branch-is-main", {"severity": "error"}))).digest
    assert before != after


# -- the scorecard --------------------------------------------------------------------------------------

def card(rules: Rules, scored_at: str = "2026-03-02T10:00:00+00:00") -> Scorecard:
    good = score(rules, facts(rules))
    bad = score(rules, facts(rules, service(tier="critical"), live=repository(codeowners=False), latest=False,
                              problem="no record"))
    waiting = unscored(rules, service(), "it has changes not applied yet")
    assert good is not None and bad is not None and waiting is not None
    return scorecard(rules, HEAD, scored_at, [
        good, replace(bad, identity="Service/ledger", name="ledger", owner="finance"),
        replace(waiting, identity="Service/search", name="search", owner="search")])


def test_a_scorecard_reads_back_as_it_was_written(rules: Rules) -> None:
    written = card(rules)
    (read,) = read_scorecards("not ours\n" + written.to_json() + "\n")
    assert read == written


def test_the_newest_scorecard_is_the_last_scored_whatever_the_order_of_lines(rules: Rules) -> None:
    older, newer = card(rules, "2026-03-01T10:00:00+00:00"), card(rules, "2026-03-02T10:00:00+00:00")
    assert newest({HEAD: newer.to_json() + "\n" + older.to_json(), OLD: "{broken"}) == newer


def test_two_scorings_that_found_the_same_have_the_same_content(rules: Rules) -> None:
    assert card(rules, "2026-03-01T10:00:00+00:00").content() == card(rules, "2026-03-02T10:00:00+00:00").content()


def test_the_standards_failing_most_come_first(rules: Rules) -> None:
    most = failing_most(card(rules))
    assert [f.standard.id for f in most[:2]] == ["codeowners-file-present", "on-latest-golden-path"]
    assert [r.identity for r in most[0].failing] == ["Service/ledger"] and most[0].scored == 2


def test_a_tally_counts_checks_and_leaves_unscored_resources_apart(rules: Rules) -> None:
    counted = tally(card(rules).resources)
    assert (counted.resources, counted.clean, counted.unscored) == (2, 1, 1)
    assert counted.checked == 16 and counted.passed == 14


def test_the_share_on_the_latest_golden_path_counts_scored_services(rules: Rules) -> None:
    assert on_latest(card(rules)) == (1, 2)


def test_a_scorecard_filtered_by_team_keeps_its_resources(rules: Rules) -> None:
    assert [r.identity for r in filtered(card(rules), team="finance").resources] == ["Service/ledger"]
