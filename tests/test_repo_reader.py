"""Paths are data: whatever a file is named, Paved reads each file as itself or not at all.

Whoever pushes a commit chooses its file names. A name holding a line break used to be two questions
to `git cat-file --batch`, shifting every later answer onto the wrong file, and the wrong result was
then cached by blob id. These tests hold the fix on real git repositories: such names are findings
and are never read, blobs are read by id and every answer is checked, and a judged result is only
ever used for the path and blob it was judged for.
"""

from __future__ import annotations

import gc
import os
import subprocess
from pathlib import Path

import pytest

from bot.adapters.catalogue_index import SQLiteCatalogueIndex
from bot.adapters.repo import FolderTree, GitTree, _BatchReader
from bot.catalogue import judge, overlay
from bot.errors import ConfigurationError, ObjectMismatchError
from bot.model import Finding, MemoryTree, path_problem, shown_path
from bot.plan import make_plan, plan_requests, proposed_rules, validate_tree
from bot.rules import Rules, load_rules
from bot.validate import check_file, check_files
from tests.conftest import TEAM, PlatformRepo

# A team that no request in the merged tree asks for: the attacker's blob, reachable only by its id.
ROGUE = TEAM.format(name="rogue", budget=100)


def add_file(repo: PlatformRepo, name: bytes, content: bytes) -> str:
    """Commit a file whose name is any bytes, with git's plumbing (as an attacker would); the commit."""
    blob = subprocess.run(["git", "-C", str(repo.root), "hash-object", "-w", "--stdin"], input=content,
                          capture_output=True, check=True).stdout.decode().strip()
    subprocess.run(["git", "-C", str(repo.root), "update-index", "--add", "-z", "--index-info"],
                   input=b"100644 " + blob.encode() + b"\t" + name + b"\0", check=True)
    repo.git("commit", "--quiet", "-m", "a file with an odd name")
    return repo.git("rev-parse", "HEAD")


def hash_object(repo: PlatformRepo, content: str) -> str:
    return subprocess.run(["git", "-C", str(repo.root), "hash-object", "-w", "--stdin"], input=content.encode(),
                          capture_output=True, check=True).stdout.decode().strip()


def without(findings: list[Finding], rule: str) -> list[Finding]:
    return [f for f in findings if f.rule != rule]


@pytest.fixture
def rules(platform_repo: PlatformRepo) -> Rules:
    with GitTree(platform_repo.root, "main") as tree:
        return load_rules(tree)


# -- names that are findings ------------------------------------------------------------------------

def test_a_name_crafted_to_shift_the_readers_answers_is_a_finding_and_every_other_file_reads_as_itself(
        platform_repo: PlatformRepo, rules: Rules) -> None:
    clean = platform_repo.git("rev-parse", "HEAD")
    rogue = hash_object(platform_repo, ROGUE)
    # As `<commit>:<path>` lines this was three questions: a missing path, the rogue blob by id, and
    # HEAD's payments team; every answer after it would have landed on the next file.
    name = f"catalog/teams/a\n{rogue}\nHEAD:catalog/teams/payments.yaml"
    head = add_file(platform_repo, name.encode(), b"apiVersion: paved/v1\n")

    with GitTree(platform_repo.root, clean) as tree:
        expected = validate_tree(tree, rules=rules, store=SQLiteCatalogueIndex()).findings
    with GitTree(platform_repo.root, head) as tree:
        catalogue = judge(tree, rules, SQLiteCatalogueIndex())
        found = catalogue.findings()
        identities = catalogue.identities()
        # Read by blob id, even that file is itself, and the same reader answers every later question
        # with the right file.
        data = (platform_repo.root / "catalog/teams/data.yaml").read_bytes()
        assert tree.read_many([name, "catalog/teams/data.yaml"]) == {name: b"apiVersion: paved/v1\n",
                                                                     "catalog/teams/data.yaml": data}
        assert load_rules(tree).digest == rules.digest

    [refused] = [f for f in found if f.rule == "catalog.path"]
    assert refused.path == f"catalog/teams/a\\n{rogue}\\nHEAD:catalog/teams/payments.yaml"
    assert refused.severity == "error" and "\n" not in refused.path and "\n" not in refused.message
    assert refused.path in refused.message and "neither reads nor judges" in refused.message
    assert without(found, "catalog.path") == expected  # the other files' results are their own
    assert identities == ["Database/checkout-db", "Service/checkout", "Team/data", "Team/payments"]


def test_a_refused_file_is_not_planned_even_when_merged(platform_repo: PlatformRepo, rules: Rules) -> None:
    base = platform_repo.git("rev-parse", "HEAD")
    rogue = hash_object(platform_repo, ROGUE)
    head = add_file(platform_repo, f"catalog/teams/rogue\n{rogue}\n.yaml".encode(), ROGUE.encode())
    with GitTree(platform_repo.root, base) as before, GitTree(platform_repo.root, head) as after:
        plan = make_plan(before, after, store=SQLiteCatalogueIndex(), rules=rules)
    assert plan.all_changes == ()
    assert [f.rule for f in plan.errors] == ["catalog.path"]


@pytest.mark.parametrize("odd", ["\t", "\x1b[31m", "\r", "\x7f", "\x85", "\x9b"],
                         ids=["tab", "escape", "carriage-return", "DEL", "C1 next-line", "C1 CSI"])
def test_a_name_with_any_control_character_is_a_finding_in_git_and_on_disk(platform_repo: PlatformRepo,
                                                                          odd: str) -> None:
    name = f"catalog/teams/odd{odd}name.yaml"
    platform_repo.write(name, TEAM.format(name="odd", budget=10))
    head = platform_repo.commit("an odd name")
    for tree in (GitTree(platform_repo.root, head), FolderTree(platform_repo.root)):
        with_tree = validate_tree(tree, store=SQLiteCatalogueIndex())
        tree.close()
        [refused] = with_tree.findings
        assert refused.rule == "catalog.path"
        assert refused.path == shown_path(name) and path_problem(refused.path) is None
        assert with_tree.resources == 4  # Team/odd is not judged, so it does not exist


def test_a_name_that_is_not_a_request_file_is_still_refused(platform_repo: PlatformRepo) -> None:
    head = add_file(platform_repo, b"catalog/notes\nabout.txt", b"nothing to see\n")
    with GitTree(platform_repo.root, head) as tree:
        [refused] = validate_tree(tree, store=SQLiteCatalogueIndex()).findings
    assert (refused.rule, refused.path) == ("catalog.path", "catalog/notes\\nabout.txt")


def test_a_name_that_is_not_utf8_is_a_finding_not_a_crash(platform_repo: PlatformRepo) -> None:
    head = add_file(platform_repo, b"catalog/teams/caf\xe9.yaml", TEAM.format(name="cafe", budget=1).encode())
    with GitTree(platform_repo.root, head) as tree:
        [refused] = validate_tree(tree, store=SQLiteCatalogueIndex()).findings
    assert refused.path == "catalog/teams/caf\\xe9.yaml"
    assert "is not valid UTF-8" in refused.message
    platform_repo.git("checkout", "--quiet", "--", ".")
    assert os.path.exists(os.fsencode(platform_repo.root) + b"/catalog/teams/caf\xe9.yaml")
    [on_disk] = validate_tree(FolderTree(platform_repo.root), store=SQLiteCatalogueIndex()).findings
    assert on_disk == refused


def test_shown_names_are_unambiguous() -> None:
    assert shown_path("a\nb") == "a\\nb"
    assert shown_path("a\\nb") == "a\\\\nb"  # a real backslash is not a line break
    assert shown_path("a\x1b[0m") == "a\\x1b[0m"
    assert shown_path("caf\0\xe9") == "caf\\xe9"


@pytest.mark.parametrize(("name", "shown"), [
    (b"templates/fastapi-service/hooks/a\nb.py", "templates/fastapi-service/hooks/a\\nb.py"),
    (b"schemas/kinds/x\x1b[0m.json", "schemas/kinds/x\\x1b[0m.json"),
    (b"templates/fastapi-service/caf\xe9.txt", "templates/fastapi-service/caf\\xe9.txt"),
], ids=["template", "schema", "not-utf8"])
def test_a_rule_file_with_such_a_name_makes_the_proposed_rules_unusable(platform_repo: PlatformRepo,
                                                                        name: bytes, shown: str) -> None:
    base = platform_repo.git("rev-parse", "HEAD")
    head = add_file(platform_repo, name, b"{}\n")
    with GitTree(platform_repo.root, head) as tree, pytest.raises(ConfigurationError) as raised:
        load_rules(tree)
    assert raised.value.path == shown and path_problem(shown) is None

    with GitTree(platform_repo.root, base) as target, GitTree(platform_repo.root, head) as proposal:
        store = SQLiteCatalogueIndex()
        rules = load_rules(target)
        plan = proposed_rules(plan_requests(target, proposal, store=store, rules=rules).plan, target, proposal,
                              rules, store)
    [broken] = plan.errors
    assert (broken.rule, broken.path) == ("rules.broken", shown)
    assert [c.path for c in plan.rule_changes] == [shown]  # listed, but only ever escaped


# -- the reader answers every question with exactly the object asked for ---------------------------

def test_the_reader_refuses_an_answer_for_another_object(platform_repo: PlatformRepo) -> None:
    with GitTree(platform_repo.root, "HEAD") as tree:
        blob = tree.files("catalog/")["catalog/teams/payments.yaml"]
    with _BatchReader(platform_repo.root) as reader:
        for spec, answered in [("HEAD:catalog/teams/payments.yaml", blob), (blob[:12], blob)]:
            with pytest.raises(ObjectMismatchError) as raised:
                reader.read([spec])
            assert raised.value.requested == spec and raised.value.answer.startswith(f"{answered} blob ")
        tree_id = platform_repo.git("rev-parse", "HEAD^{tree}")
        with pytest.raises(ObjectMismatchError, match="when asked for blob") as raised:
            reader.read([tree_id])
        assert raised.value.answer.startswith(f"{tree_id} tree ")
        with pytest.raises(ObjectMismatchError, match="has no object"):
            reader.read([blob, "0" * 40])
        # After a wrong answer the stream cannot be trusted, so the next read starts a fresh git.
        assert reader.read([blob]) == [(platform_repo.root / "catalog/teams/payments.yaml").read_bytes()]


def test_the_reader_never_sends_a_question_that_is_not_one_word(platform_repo: PlatformRepo) -> None:
    with _BatchReader(platform_repo.root) as reader:
        for spec in ("HEAD:catalog/a\nHEAD:catalog/teams/payments.yaml", "HEAD:catalog/teams/payments.yaml ",
                     "", "HEAD:catalog/teams/pay\tments.yaml"):
            with pytest.raises(ObjectMismatchError, match="cannot be asked of git"):
                reader.read([spec])
        assert reader.process is None  # refused before git was even started


def test_git_processes_end_when_a_tree_is_closed_or_dropped(platform_repo: PlatformRepo) -> None:
    with GitTree(platform_repo.root, "HEAD") as tree:
        tree.read("catalog/teams/payments.yaml")
        process = tree._reader.process
        assert process is not None and process.poll() is None
    assert process.returncode is not None

    dropped = GitTree(platform_repo.root, "HEAD")
    dropped.read("catalog/teams/payments.yaml")
    process = dropped._reader.process
    assert process is not None
    del dropped
    gc.collect()
    assert process.wait(timeout=5) == 0


def test_paths_outside_every_listing_are_read_by_their_own_blob(platform_repo: PlatformRepo) -> None:
    platform_repo.write("paved.yaml", "approvals:\n  tiers: [critical]\n")
    platform_repo.write("catalog/teams/[x]*.yaml", "literal: true\n")
    platform_repo.commit("settings")
    with GitTree(platform_repo.root, "HEAD") as tree:
        assert tree.read("paved.yaml") == b"approvals:\n  tiers: [critical]\n"
        assert tree.read("catalog/teams/[x]*.yaml") == b"literal: true\n"
        for missing in ("CODEOWNERS", "catalog/teams", "catalog/teams/*.yaml", ":(glob)catalog/**", "",
                        "../paved.yaml", "/etc/passwd", "catalog/../paved.yaml"):
            with pytest.raises(KeyError):
                tree.read(missing)
        assert set(tree.read_many(["paved.yaml", "CODEOWNERS", "../x", "catalog/teams/data.yaml"])) == {
            "paved.yaml", "catalog/teams/data.yaml"}


# -- a result is used only for the path and blob it was judged for ----------------------------------

def test_two_paths_sharing_one_blob_each_get_their_own_findings(platform_repo: PlatformRepo, rules: Rules,
                                                                tmp_path: Path) -> None:
    base = platform_repo.git("rev-parse", "HEAD")
    unowned = TEAM.format(name="{name}", budget=10).replace("owner: {name}", "owner: nobody")
    platform_repo.write("catalog/teams/one.yaml", unowned.format(name="same"))
    platform_repo.write("catalog/teams/two.yaml", unowned.format(name="same"))
    head = platform_repo.commit("twins")
    index = tmp_path / "index.sqlite"
    # In memory, on disk, and on disk again: the last run takes every file's result from the index.
    for store in (SQLiteCatalogueIndex(), SQLiteCatalogueIndex(index), SQLiteCatalogueIndex(index)):
        with GitTree(platform_repo.root, head) as tree:
            listing = tree.files("catalog/")
            assert listing["catalog/teams/one.yaml"] == listing["catalog/teams/two.yaml"]
            results = check_files(tree, listing, rules, store)
            found = judge(tree, rules, store).findings()
        for result in results:
            assert {f.path for f in result.findings} <= {result.path}
            assert {r.path for r in result.resources} == {result.path}
        owners = [(f.path, f.rule) for f in found if f.rule == "catalog.owner"]
        assert owners == [("catalog/teams/one.yaml", "catalog.owner"), ("catalog/teams/two.yaml", "catalog.owner")]
        [duplicate] = [f for f in found if f.rule == "catalog.unique-identity"]
        assert duplicate.path == "catalog/teams/two.yaml" and "catalog/teams/one.yaml" in duplicate.message

    # As an overlay too: the base judged one.yaml, the head adds the same bytes as three.yaml.
    platform_repo.git("checkout", "--quiet", base)
    platform_repo.write("catalog/teams/one.yaml", unowned.format(name="same"))
    first = platform_repo.commit("one")
    platform_repo.write("catalog/teams/three.yaml", unowned.format(name="same"))
    second = platform_repo.commit("three")
    store = SQLiteCatalogueIndex(tmp_path / "overlay.sqlite")
    with GitTree(platform_repo.root, first) as before_tree, GitTree(platform_repo.root, second) as after_tree:
        after = overlay(judge(before_tree, rules, store), after_tree)
        paths = sorted({f.path for f in after.findings()})
        after.close()
    assert paths == ["catalog/teams/one.yaml", "catalog/teams/three.yaml"]


def test_a_stored_result_for_another_path_is_never_used(platform_repo: PlatformRepo, rules: Rules,
                                                        tmp_path: Path) -> None:
    text = TEAM.format(name="payments", budget=500)
    blob = hash_object(platform_repo, text)
    judged = check_file("catalog/teams/payments.yaml", text.encode(), blob, rules)
    for store in (SQLiteCatalogueIndex(), SQLiteCatalogueIndex(tmp_path / "index.sqlite")):
        store.put_file(rules, judged)
        assert store.get_file(rules, "catalog/teams/payments.yaml", blob) is not None
        assert store.get_file(rules, "catalog/teams/other.yaml", blob) is None


def test_bytes_that_are_not_the_listed_blob_are_never_judged(rules: Rules) -> None:
    tree = MemoryTree({"catalog/teams/a.yaml": TEAM.format(name="a", budget=1).encode()})
    with pytest.raises(ObjectMismatchError, match=r"catalog/teams/a\.yaml") as raised:
        check_files(tree, {"catalog/teams/a.yaml": "0" * 40}, rules, SQLiteCatalogueIndex())
    assert raised.value.requested == "0" * 40
