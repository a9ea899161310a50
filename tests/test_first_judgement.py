"""A working tree judged under rules the index knows nothing of (`paved validate --no-cache`, a first run,
new rules) is read once: each file is hashed as it is judged, instead of read and hashed for a listing
first and read again to be judged. What it stores, and the key it stores it under, are what a judgement
by listing stores, so the next run finds it.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from bench.generate import generate
from bot.adapters.catalogue_index import SQLiteCatalogueIndex
from bot.adapters.judging import ProcessJudging
from bot.adapters.repo import FolderTree
from bot.catalogue import JudgedFile, LocalJudging, first_judgement, judge, tree_key
from bot.model import Finding, Tree
from bot.plan import validate_tree
from bot.rules import Rules, load_rules
from bot.validate import CATALOG_DIR, FileResult, is_request_file
from tests.conftest import TEAM, PlatformRepo
from tests.test_judging import MISTAKES, stored


class CountingFolder(FolderTree):
    """A working tree that counts how often each request file is read, and each listing of `catalog/`."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.reads: dict[str, int] = {}
        self.listings = 0

    def files(self, prefix: str) -> dict[str, str]:
        self.listings += prefix.startswith(CATALOG_DIR)
        listing = super().files(prefix)
        for path in listing:
            self._count(path)
        return listing

    def read_many(self, paths: Iterable[str]) -> dict[str, bytes]:
        found = super().read_many(paths)
        for path in found:
            self._count(path)
        return found

    def _count(self, path: str) -> None:
        if path.startswith(CATALOG_DIR):
            self.reads[path] = self.reads.get(path, 0) + 1


@pytest.fixture(scope="module")
def mistaken(tmp_path_factory: pytest.TempPathFactory) -> PlatformRepo:
    """About 200 resources with every kind of mistake in them, and a file whose name Paved refuses."""
    repo = PlatformRepo(generate(200, tmp_path_factory.mktemp("generated") / "platform"))
    for path, text in {**MISTAKES, "catalog/teams/tab\there.yaml": TEAM.format(name="tabbed", budget=5)}.items():
        repo.write(path, text)
    return repo


def test_a_first_judgement_reads_each_request_file_once_and_lists_none(mistaken: PlatformRepo) -> None:
    tree = CountingFolder(mistaken.root)
    judge(tree, load_rules(tree), SQLiteCatalogueIndex(), LocalJudging())
    assert tree.listings == 0
    assert set(tree.reads.values()) == {1}
    assert len(tree.reads) == len(FolderTree(mistaken.root).files(CATALOG_DIR))


def test_a_first_judgement_stores_what_a_judgement_by_listing_stores_under_the_same_key(
        mistaken: PlatformRepo) -> None:
    tree = FolderTree(mistaken.root)
    rules = load_rules(tree)
    first = judge(tree, rules, SQLiteCatalogueIndex(), LocalJudging())
    listed = judge(tree, rules, SQLiteCatalogueIndex(), LocalJudging(), tree_key(tree))
    assert first.state.tree == listed.state.tree == tree_key(tree)[0]
    assert first.findings() == listed.findings()
    assert stored(first) == stored(listed)
    assert "catalog.path" in {f.rule for f in first.findings()}  # the refused name is judged, and hashed


def test_a_first_judgement_on_workers_stores_what_one_process_stores(mistaken: PlatformRepo) -> None:
    tree = FolderTree(mistaken.root)
    rules = load_rules(tree)
    alone = judge(tree, rules, SQLiteCatalogueIndex(), LocalJudging())
    with ProcessJudging(2, workers_from=1, per_task=7) as pool:
        shared = judge(tree, rules, SQLiteCatalogueIndex(), pool)
    assert shared.state.tree == alone.state.tree
    assert stored(shared) == stored(alone)


def test_the_next_validation_finds_the_state_a_first_one_stored(mistaken: PlatformRepo, tmp_path: Path) -> None:
    index = SQLiteCatalogueIndex(tmp_path / "index.sqlite")
    tree = CountingFolder(mistaken.root)
    first = validate_tree(tree, store=index)
    again = validate_tree(tree, store=index)
    assert first.rules is not None and again.rules is None  # answered from the index, the rules unread
    assert again.findings == first.findings
    assert (again.files_checked, again.resources) == (first.files_checked, first.resources)


def test_the_index_knows_rules_once_it_keeps_a_result_under_them(mistaken: PlatformRepo, tmp_path: Path) -> None:
    tree = FolderTree(mistaken.root)
    rules = load_rules(tree)
    index = SQLiteCatalogueIndex(tmp_path / "index.sqlite")
    assert first_judgement(tree, rules.digest, index)
    index.put_file(rules, FileResult("catalog/teams/kept.yaml", "0" * 40, [], []))
    assert not first_judgement(tree, rules.digest, index)


def test_the_index_knows_rules_once_it_keeps_a_state_under_them(mistaken: PlatformRepo) -> None:
    tree = FolderTree(mistaken.root)
    rules = load_rules(tree)
    index = SQLiteCatalogueIndex()
    judge(tree, rules, index, LocalJudging())
    assert index.knows(rules.digest)
    assert not index.knows("f" * 64)


class RacingIndex(SQLiteCatalogueIndex):
    """An index whose first question whether it knows the rules waits for the other judgement's: both decide
    that theirs is a first judgement before either takes the write lock."""

    def __init__(self, path: Path, both_asked: threading.Barrier) -> None:
        super().__init__(path)
        self.both_asked: threading.Barrier | None = both_asked

    def knows(self, rules: str) -> bool:
        known = super().knows(rules)
        if self.both_asked is not None:
            self.both_asked.wait(timeout=30)
            self.both_asked = None
        return known


def test_two_first_judgements_at_once_store_one_state_and_agree(mistaken: PlatformRepo, tmp_path: Path) -> None:
    tree = FolderTree(mistaken.root)
    rules = load_rules(tree)
    path = tmp_path / "index.sqlite"
    both_asked = threading.Barrier(2)

    def judged() -> tuple[str, list[Finding]]:
        index = RacingIndex(path, both_asked)  # one connection per thread, as two processes would have
        try:
            catalogue = judge(tree, rules, index, LocalJudging())
            return catalogue.state.tree, catalogue.findings()
        finally:
            index.close()

    with ThreadPoolExecutor(2) as runners:
        first, second = (future.result(timeout=60) for future in [runners.submit(judged), runners.submit(judged)])
    assert first == second
    index = SQLiteCatalogueIndex(path)
    assert index.find_state(rules.digest, first[0]) is not None
    assert index.latest_state(rules.digest) == index.find_state(rules.digest, first[0])
    index.close()


class FailingMidway(LocalJudging):
    """Judging that stops, as a killed process would, after handing over the first files."""

    def judge_files(self, tree: Tree, rules: Rules, files: Sequence[tuple[str, str]],
                    records: bool = True) -> Iterator[JudgedFile]:
        yield from itertools.islice(super().judge_files(tree, rules, files, records), 20)
        raise RuntimeError("judging stopped")


def test_a_first_judgement_that_stops_midway_stores_nothing_and_the_next_starts_afresh(
        mistaken: PlatformRepo, tmp_path: Path) -> None:
    tree = FolderTree(mistaken.root)
    rules = load_rules(tree)
    index = SQLiteCatalogueIndex(tmp_path / "index.sqlite")
    with pytest.raises(RuntimeError, match="judging stopped"):
        judge(tree, rules, index, FailingMidway())
    assert not index.knows(rules.digest)
    again = judge(tree, rules, index, LocalJudging())
    assert again.state.tree == tree_key(tree)[0]
    assert again.state.files == len([p for p in tree.paths(CATALOG_DIR) if is_request_file(p)])
