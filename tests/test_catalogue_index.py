"""The catalogue index on a real SQLite file: what it keeps, what it answers, and how it survives old files.

The judging itself is `tests/test_catalogue.py` and `tests/test_catalogue_state.py`; here the index's own
questions are asked directly, with files judged by the project's rules. These tests alone may open the
index file with `sqlite3` themselves: to write what another version of Paved, or a fault, left there.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.adapters.catalogue_index import KEEP_STATES, SCHEMA_VERSION, SQLiteCatalogueIndex
from bot.adapters.repo import FolderTree
from bot.catalogue import Check, JudgedFile, Scope, StalePolicy, State, judged_file, without_policies
from bot.catalogue_view import Filters
from bot.model import Finding
from bot.rules import Rules, load_rules
from bot.validate import FileResult, check_file
from tests.conftest import DATABASE, PROJECT, SERVICE, TEAM

RULES = "rules-digest"


@pytest.fixture(scope="module")
def rules() -> Rules:
    return load_rules(FolderTree(PROJECT))


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "catalogue.sqlite"


@pytest.fixture
def index(path: Path) -> Iterator[SQLiteCatalogueIndex]:
    opened = SQLiteCatalogueIndex(path)
    yield opened
    opened.close()


def judged(rules: Rules, path: str, text: str, blob: str | None = None) -> FileResult:
    return check_file(path, text.lstrip().encode(), blob or f"blob-of-{path}", rules)


def team(rules: Rules, name: str, budget: int = 500) -> FileResult:
    return judged(rules, f"catalog/teams/{name}.yaml", TEAM.format(name=name, budget=budget))


def service(rules: Rules, name: str, owner: str, tier: str = "standard") -> FileResult:
    return judged(rules, f"catalog/services/{name}.yaml", SERVICE.format(name=name, owner=owner, tier=tier))


def database(rules: Rules, name: str, owner: str, service: str) -> FileResult:
    return judged(rules, f"catalog/databases/{name}.yaml",
                  DATABASE.format(name=name, owner=owner, service=service, size="small"))


def catalogue(rules: Rules) -> list[JudgedFile]:
    """Two teams, a service of payments with its database, a service of data; no policy judged yet."""
    return [without_policies(r) for r in (
        team(rules, "payments"), team(rules, "data"), service(rules, "checkout", "payments"),
        database(rules, "orders", "payments", "checkout"), service(rules, "search", "data"))]


def stored(index: SQLiteCatalogueIndex, rules: Rules, tree: str = "tree-1") -> State:
    with index.transaction():
        return index.add_state(RULES, tree, None, (), catalogue(rules))


# -- states ------------------------------------------------------------------------------------------

def test_a_stored_state_is_found_again_by_rules_and_tree_after_the_index_is_reopened(
        index: SQLiteCatalogueIndex, rules: Rules, path: Path) -> None:
    state = stored(index, rules)
    index.close()
    again = SQLiteCatalogueIndex(path)
    assert again.find_state(RULES, "tree-1") == State(state.id, "tree-1", files=5, resources=5)
    assert again.find_state("other-rules", "tree-1") is None
    assert again.latest_state(RULES) == state
    again.close()


def test_a_state_built_on_another_keeps_its_unchanged_files_and_takes_the_new_ones(
        index: SQLiteCatalogueIndex, rules: Rules) -> None:
    first = stored(index, rules)
    renamed = judged(rules, "catalog/teams/data.yaml", TEAM.format(name="data", budget=900), blob="new-blob")
    with index.transaction():
        second = index.add_state(RULES, "tree-2", first, ["catalog/teams/data.yaml", "catalog/search.yaml"],
                                 [without_policies(renamed)])
    assert index.listing(second.id)["catalog/teams/data.yaml"] == "new-blob"
    assert index.listing(first.id)["catalog/teams/data.yaml"] == "blob-of-catalog/teams/data.yaml"
    assert set(index.listing(second.id)) == set(index.listing(first.id))
    assert (second.files, second.resources) == (5, 5)
    assert index.blobs(second.id, ["catalog/teams/data.yaml", "catalog/nowhere.yaml"]) == {
        "catalog/teams/data.yaml": "new-blob"}


def test_only_the_most_recently_used_states_are_kept(index: SQLiteCatalogueIndex, rules: Rules) -> None:
    first = stored(index, rules, "tree-0")
    for n in range(1, KEEP_STATES + 1):
        stored(index, rules, f"tree-{n}")
    index.prune()
    assert not index.has_state(first.id)
    assert index.find_state(RULES, "tree-0") is None
    assert index.find_state(RULES, f"tree-{KEEP_STATES}") is not None


def test_a_failed_transaction_leaves_no_state_behind(index: SQLiteCatalogueIndex, rules: Rules) -> None:
    with pytest.raises(RuntimeError), index.transaction():
        index.add_state(RULES, "tree-1", None, (), catalogue(rules))
        raise RuntimeError("judging failed half way")
    assert index.latest_state(RULES) is None


# -- resources, references and overlays ------------------------------------------------------------

def test_resources_are_found_by_identity_owner_and_service(index: SQLiteCatalogueIndex, rules: Rules) -> None:
    scope = Scope(stored(index, rules).id)
    assert [e.path for e in index.definitions(scope, ["Service/checkout", "Team/nobody"])] == [
        "catalog/services/checkout.yaml"]
    assert {e.identity for e in index.owned_by(scope, ["payments"])} == {
        "Team/payments", "Service/checkout", "Database/orders"}
    assert [e.identity for e in index.serving(scope, ["checkout"])] == ["Database/orders"]
    assert index.names_of(scope, "Team") == {"payments", "data"}
    assert len(index.identities(scope)) == 5


def test_references_are_found_from_their_source_and_to_their_target(index: SQLiteCatalogueIndex,
                                                                    rules: Rules) -> None:
    scope = Scope(stored(index, rules).id)
    assert {(r.source, r.relation) for r in index.references_to(scope, ["Service/checkout"])} == {
        ("Database/orders", "service")}
    assert set(index.references_from(scope, ["Database/orders"])) == {
        ("Database/orders", "Team/payments"), ("Database/orders", "Service/checkout")}
    assert index.dependencies(scope) == []


def test_an_overlay_hides_the_changed_files_until_it_is_released(index: SQLiteCatalogueIndex, rules: Rules) -> None:
    state = stored(index, rules)
    scope = index.hide(state.id, ["catalog/services/checkout.yaml"])
    assert index.definitions(scope, ["Service/checkout"]) == []
    assert [e.identity for e in index.hidden_entries(scope)] == ["Service/checkout"]
    assert "Service/checkout" not in index.identities(scope)
    assert index.definitions(Scope(state.id), ["Service/checkout"]) != []  # the state itself is untouched
    index.release(scope)
    with pytest.raises(sqlite3.OperationalError):  # a released overlay is gone from the connection
        index.identities(scope)


def test_a_second_overlay_of_the_same_state_hides_its_own_files(index: SQLiteCatalogueIndex, rules: Rules) -> None:
    state = stored(index, rules)
    one = index.hide(state.id, ["catalog/teams/data.yaml"])
    two = index.hide(state.id, ["catalog/teams/payments.yaml"])
    assert index.names_of(one, "Team") == {"payments"}
    assert index.names_of(two, "Team") == {"data"}


def test_team_costs_sum_what_each_owner_spends(index: SQLiteCatalogueIndex, rules: Rules) -> None:
    costs = index.team_costs(Scope(stored(index, rules).id))
    assert set(costs) == {"payments", "data"} and costs["payments"] > 0


# -- catalogue-wide checks and policies -------------------------------------------------------------

def test_duplicates_dangling_references_and_budgets_are_found_in_sql(index: SQLiteCatalogueIndex,
                                                                      rules: Rules) -> None:
    twin = judged(rules, "catalog/teams/payments-again.yaml", TEAM.format(name="payments", budget=500))
    orphan = database(rules, "lost", "ghosts", "nowhere")
    with index.transaction():
        state = index.add_state(RULES, "tree", None, (), [*catalogue(rules), *map(without_policies, [
            twin, orphan, team(rules, "poor", budget=0)])])
    poor = database(rules, "costly", "poor", "checkout")
    with index.transaction():
        state = index.add_state(RULES, "tree-2", state, (), [without_policies(poor)])
    assert index.duplicated_identities(state.id) == ["Team/payments"]
    assert {(r.target, r.relation) for r in index.dangling_references(state.id)} == {
        ("Team/ghosts", "owner"), ("Service/nowhere", "service")}
    assert index.teams_over_budget(state.id) == ["poor"]


def test_stored_checks_come_back_and_an_overlay_leaves_out_those_in_hidden_files(
        index: SQLiteCatalogueIndex, rules: Rules) -> None:
    state = stored(index, rules)
    finding = Finding(path="catalog/teams/data.yaml", line=3, column=9, pointer="/metadata/name", message="twice",
                      severity="error", rule="catalog.unique-identity")
    index.add_checks(state.id, [Check("duplicate", "Team/data", finding)])
    assert index.checks(Scope(state.id)) == [Check("duplicate", "Team/data", finding)]
    assert index.checks(index.hide(state.id, ["catalog/teams/data.yaml"])) == []


def test_policies_are_stale_until_judged_and_again_when_the_service_changes(index: SQLiteCatalogueIndex,
                                                                            rules: Rules) -> None:
    state = stored(index, rules)
    waiting = stale(index, state.id, rules)
    assert len(waiting) == 5
    context = {s.entry.identity: s.context for s in waiting}
    assert context["Team/payments"] == "-"  # not scoped to a service
    assert context["Database/orders"] == "standard|production"  # its service's tier and lifecycle
    finding = Finding(path="catalog/databases/orders.yaml", line=0, column=0, pointer="/spec", message="too big",
                      severity="warning", rule="size")
    index.set_policies((s, [finding] if s.entry.identity == "Database/orders" else []) for s in waiting)
    assert stale(index, state.id, rules) == []
    assert index.policy_findings(Scope(state.id)) == [finding]
    assert index.policy_findings(Scope(state.id), except_services={"checkout"}) == []
    [kept] = index.service_policies(Scope(state.id), ["checkout"])
    assert (kept.entry.identity, kept.context, kept.findings) == ("Database/orders", "standard|production",
                                                                   (finding,))

    critical = service(rules, "checkout", "payments", tier="critical")
    with index.transaction():
        changed = index.add_state(RULES, "tree-2", state, [critical.path], [without_policies(critical)])
    assert {s.entry.identity: s.context for s in stale(index, changed.id, rules)} == {
        "Service/checkout": "-", "Database/orders": "critical|production"}


def test_policies_judged_with_their_file_are_stored_and_not_stale(index: SQLiteCatalogueIndex, rules: Rules) -> None:
    judged = judged_file(team(rules, "payments", budget=500), rules)
    with index.transaction():
        state = index.add_state(RULES, "tree", None, (), [judged])
    assert judged.policies == {0: ()}  # a team belongs to nothing: its policies need no other file
    assert stale(index, state.id, rules) == []


def test_a_new_request_waits_in_the_index_until_its_policies_are_judged(index: SQLiteCatalogueIndex,
                                                                       rules: Rules) -> None:
    files = [judged_file(r, rules) for r in (team(rules, "payments"), service(rules, "checkout", "payments"),
                                              database(rules, "orders", "payments", "checkout"))]
    with index.transaction():
        state = index.add_state(RULES, "tree", None, (), files)
    [waiting] = stale(index, state.id, rules)
    assert (waiting.entry.identity, waiting.context, waiting.belongs_to, waiting.blob) == (
        "Database/orders", "standard|production", ("standard", "production"), files[2].blob)
    assert waiting.request == files[2].requests[0]
    index.set_policies([(waiting, [])])
    assert stale(index, state.id, rules) == []


def test_a_request_of_a_service_defined_twice_sees_the_definition_in_the_first_file(
        index: SQLiteCatalogueIndex, rules: Rules) -> None:
    later = service(rules, "checkout", "payments", tier="standard")
    first = judged(rules, "catalog/a/checkout.yaml", SERVICE.format(name="checkout", owner="payments",
                                                                    tier="critical"))
    files = [without_policies(r) for r in (later, database(rules, "orders", "payments", "checkout"), first)]
    with index.transaction():
        state = index.add_state(RULES, "tree", None, (), files)
    contexts = {s.entry.identity: (s.context, s.belongs_to) for s in stale(index, state.id, rules)}
    assert contexts["Database/orders"] == ("critical|production", ("critical", "production"))


def test_stale_policies_come_in_batches_in_the_index_order(index: SQLiteCatalogueIndex, rules: Rules) -> None:
    state = stored(index, rules)
    every = stale(index, state.id, rules)
    batches = list(index.stale_policies(state.id, rules.described.parents(), batch=2))
    assert [len(b) for b in batches] == [2, 2, 1]
    assert [s for batch in batches for s in batch] == every
    assert [s.row for s in every] == sorted(s.row for s in every)


def stale(index: SQLiteCatalogueIndex, state: int, rules: Rules) -> list[StalePolicy]:
    return [s for batch in index.stale_policies(state, rules.described.parents()) for s in batch]


# -- judged files --------------------------------------------------------------------------------------

def test_a_judged_file_is_kept_for_its_rules_path_and_blob_only(index: SQLiteCatalogueIndex, rules: Rules) -> None:
    result = team(rules, "payments")
    index.put_file(rules, result)
    kept = index.get_file(rules, result.path, result.blob)
    assert kept is not None and (kept.findings, kept.resources, kept.entries) == (
        result.findings, result.resources, result.entries)
    assert kept.documents is None  # parsed again only if a finding must be placed
    assert index.get_file(rules, "catalog/teams/other.yaml", result.blob) is None
    assert index.get_file(rules, result.path, "another-blob") is None


def test_a_row_moved_to_another_path_is_not_taken_for_it(index: SQLiteCatalogueIndex, rules: Rules,
                                                         path: Path) -> None:
    result = team(rules, "payments")
    index.put_file(rules, result)
    with sqlite3.connect(path) as tampered:  # a stale or tampered index
        tampered.execute("UPDATE results SET path='catalog/teams/other.yaml'")
    assert index.get_file(rules, "catalog/teams/other.yaml", result.blob) is None


def test_in_memory_judged_files_stay_python_objects(rules: Rules) -> None:
    index = SQLiteCatalogueIndex()
    result = team(rules, "payments")
    index.put_file(rules, result)
    assert index.get_file(rules, result.path, result.blob) is result  # parsed documents and all


# -- the web catalogue's lists ---------------------------------------------------------------------------

def test_a_page_of_resources_is_filtered_by_kind_owner_text_and_status(index: SQLiteCatalogueIndex,
                                                                      rules: Rules) -> None:
    state = stored(index, rules).id
    index.remember_statuses("head-1", {"Database/orders": "failed"})

    def page(**filters: str) -> list[str]:
        return [r.identity for r in index.resource_page(state, Filters(**filters), page=1, size=50)]

    assert page() == ["Database/orders", "Service/checkout", "Service/search", "Team/data", "Team/payments"]
    assert page(kind="Service") == ["Service/checkout", "Service/search"]
    assert page(owner="data") == ["Service/search", "Team/data"]
    assert page(status="failed") == ["Database/orders"]
    assert "Database/orders" not in page(status="applied")
    assert index.count_resources(state, Filters(kind="Team")) == 2
    [row] = index.resource_page(state, Filters(status="failed"), page=1, size=50)
    assert (row.kind, row.name, row.owner, row.status, row.tier) == ("Database", "orders", "payments", "failed", None)


def test_a_search_matches_identities_and_owners_and_escapes_wildcards(index: SQLiteCatalogueIndex,
                                                                      rules: Rules) -> None:
    state = stored(index, rules).id
    assert [r.identity for r in index.resource_page(state, Filters(q="pay"), 1, 50)] == [
        "Database/orders", "Service/checkout", "Team/payments"]
    assert index.count_resources(state, Filters(q="%")) == 0


def test_statuses_are_replaced_only_when_their_key_changes(index: SQLiteCatalogueIndex, rules: Rules) -> None:
    state = stored(index, rules).id
    index.remember_statuses("head-1", {"Team/data": "pending"})
    index.remember_statuses("head-1", {"Team/payments": "pending"})  # the same key: nothing to do
    assert index.count_resources(state, Filters(status="pending")) == 1
    assert [r.identity for r in index.resource_page(state, Filters(status="pending"), 1, 50)] == ["Team/data"]
    index.remember_statuses("head-2", {"Team/payments": "drifted"})
    assert [r.identity for r in index.resource_page(state, Filters(status="drifted"), 1, 50)] == ["Team/payments"]
    assert index.count_resources(state, Filters(status="pending")) == 0


def test_pages_of_resources_and_teams_follow_each_other(index: SQLiteCatalogueIndex, rules: Rules) -> None:
    state = stored(index, rules).id
    first, second = (index.resource_page(state, Filters(), n, size=3) for n in (1, 2))
    assert [r.identity for r in first + second] == [r.identity for r in index.resource_page(state, Filters(), 1, 9)]
    assert index.team_page(state, 1, size=1, kind="Team") == ["data"]
    assert index.team_page(state, 2, size=1, kind="Team") == ["payments"]
    assert index.count_teams(state, kind="Team") == 2


def test_identities_and_references_of_files_are_read_by_path(index: SQLiteCatalogueIndex, rules: Rules) -> None:
    state = stored(index, rules).id
    assert index.identities_in(state, ["catalog/databases/orders.yaml", "catalog/gone.yaml"]) == {
        "Database/orders": "catalog/databases/orders.yaml"}
    assert set(index.references_in(state, "catalog/databases/orders.yaml", "Database/orders")) == {
        ("Team/payments", "owner"), ("Service/checkout", "service")}


# -- the file itself ------------------------------------------------------------------------------------

def test_an_index_written_by_another_version_of_paved_is_emptied(path: Path, rules: Rules) -> None:
    path.parent.mkdir(parents=True)
    with sqlite3.connect(path) as old:
        old.execute("CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT)")
        old.execute("INSERT INTO meta VALUES ('schema', '2')")
        old.execute("CREATE TABLE states(id INTEGER PRIMARY KEY, rules TEXT, tree TEXT)")  # an older shape
        old.execute("INSERT INTO states VALUES (1, ?, 'tree-1')", (RULES,))
    index = SQLiteCatalogueIndex(path)
    assert index.find_state(RULES, "tree-1") is None
    assert stored(index, rules).files == 5  # the tables have today's shape
    index.close()
    with sqlite3.connect(path) as reopened:
        assert reopened.execute("SELECT value FROM meta WHERE key='schema'").fetchone() == (SCHEMA_VERSION,)


def test_a_file_that_is_not_sqlite_is_replaced_by_a_new_index(path: Path, rules: Rules) -> None:
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a database, whatever wrote it" * 100)
    index = SQLiteCatalogueIndex(path)
    assert stored(index, rules).resources == 5
    index.close()
    assert path.read_bytes().startswith(b"SQLite format 3\0")


def test_a_damaged_sqlite_file_is_not_deleted(path: Path) -> None:
    path.parent.mkdir(parents=True)
    path.write_bytes(b"SQLite format 3\0" + b"\xff" * 4096)
    with pytest.raises(sqlite3.DatabaseError):
        SQLiteCatalogueIndex(path)
    assert path.exists()  # it may be a newer SQLite's, or someone's to look at: not Paved's to remove
