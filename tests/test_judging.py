"""A catalogue judged by a pool of worker processes is the catalogue judged in one process: the same
findings and the same rows in the index; and a worker that dies fails the judgement instead of hanging.

The catalogue is `bench/generate.py`'s, with a mistake of every kind the judgement looks for added to it
(per file, catalogue-wide and in policies, one of them judged in the context of another file).
"""

from __future__ import annotations

import itertools
import os
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from bench.generate import generate
from bench.run import children
from bot.adapters.catalogue_index import SQLiteCatalogueIndex
from bot.adapters.judging import PIPE_BYTES, JudgingError, ProcessJudging, task_bounds
from bot.adapters.repo import FolderTree, GitTree
from bot.catalogue import Catalogue, LocalJudging, judge
from bot.model import Finding, Tree
from bot.rules import load_rules
from tests.conftest import DATABASE, SERVICE, TEAM, PlatformRepo

MISTAKES = {
    "catalog/broken.yaml": "kind: [oops\n",
    "catalog/teams/team-0000-again.yaml": TEAM.format(name="team-0000", budget=10),
    "catalog/services/unknown-field.yaml": SERVICE.format(name="odd", owner="team-0001", tier="production")
    + "  colour: blue\n",
    "catalog/databases/orphan.yaml": DATABASE.format(name="orphan-db", owner="nobody", service="nowhere",
                                                     size="small"),
    "catalog/databases/unprotected.yaml": DATABASE.format(name="loose-db", owner="team-0002", service="svc-0002-01",
                                                          size="large").replace("deletionProtection: true",
                                                                                "deletionProtection: false"),
    "catalog/teams/poor.yaml": TEAM.format(name="poor", budget=1),
    "catalog/services/poor.yaml": SERVICE.format(name="poor-svc", owner="poor", tier="critical")
    + "  dependsOn:\n    - Service/poor-svc-2\n",
    "catalog/services/poor-2.yaml": SERVICE.format(name="poor-svc-2", owner="poor", tier="critical")
    + "  dependsOn:\n    - Service/poor-svc\n",
}


@pytest.fixture(scope="module")
def catalogue_repo(tmp_path_factory: pytest.TempPathFactory) -> PlatformRepo:
    """About 400 resources with every kind of mistake in them, committed on `main`."""
    repo = PlatformRepo(generate(400, tmp_path_factory.mktemp("generated") / "platform"))
    for path, text in MISTAKES.items():
        repo.write(path, text)
    repo.commit("mistakes")
    return repo


@pytest.fixture(scope="module")
def pool() -> Iterator[ProcessJudging]:
    """Two workers, started whatever the catalogue's size, with small tasks so that many are in flight."""
    with ProcessJudging(2, workers_from=1, per_task=7) as judging:
        yield judging


def stored(catalogue: Catalogue) -> dict[str, Any]:
    """Everything the index holds for the catalogue's state, asked in the catalogue's words."""
    index, scope, state = catalogue.index, catalogue.scope, catalogue.state.id
    identities = index.identities(scope)
    targets = identities | {r.target for r in index.dangling_references(state)}
    services = {i.split("/", 1)[1] for i in identities}
    return {
        "state": (catalogue.state.files, catalogue.state.resources),
        "files": index.listing(state),
        "broken": index.broken_paths(scope),
        "file findings": sorted(index.file_findings(scope), key=Finding.sort_key),
        "entries": sorted(index.definitions(scope, identities), key=repr),
        "references": sorted(index.references_to(scope, targets), key=repr),
        "checks": sorted(index.checks(scope), key=repr),
        "policies": sorted(index.policy_findings(scope), key=Finding.sort_key),
        "contexts": sorted(((p.entry.identity, p.context, p.findings) for p in index.service_policies(scope, services)),
                           key=repr),
        "stale": list(index.stale_policies(state, catalogue.rules.described.parents())),
    }


def judged_in_one_process(tree: Tree) -> Catalogue:
    return judge(tree, load_rules(tree), SQLiteCatalogueIndex(), LocalJudging())


@pytest.mark.parametrize("reader", ["folder", "git"])
def test_a_pool_finds_what_one_process_finds_and_stores_the_same_rows(catalogue_repo: PlatformRepo,
                                                                     pool: ProcessJudging, reader: str) -> None:
    opened = FolderTree(catalogue_repo.root) if reader == "folder" else GitTree(catalogue_repo.root, "main")
    with closing(opened) as tree:
        alone = judged_in_one_process(tree)
        shared = judge(tree, load_rules(tree), SQLiteCatalogueIndex(), pool)
        assert shared.findings() == alone.findings()
        assert stored(shared) == stored(alone)
    rules = {f.rule for f in alone.findings()}
    # Every kind of mistake is in the comparison, policies in another file's context among them.
    assert {"yaml.syntax", "schema", "catalog.unique-identity", "catalog.owner", "catalog.reference",
            "catalog.budget", "catalog.cycle", "database-deletion-protection"} <= rules


def test_a_pool_stores_the_judged_files_in_the_results_cache_on_disk(catalogue_repo: PlatformRepo,
                                                                   pool: ProcessJudging, tmp_path: Path) -> None:
    with GitTree(catalogue_repo.root, "main") as tree:
        rules = load_rules(tree)
        index = SQLiteCatalogueIndex(tmp_path / "index.sqlite")
        judge(tree, rules, index, pool)
        listing = tree.files("catalog/")
        cached = index.cached_files(rules, listing.items())
        index.close()
    assert set(cached) == set(listing)
    assert all(result.blob == listing[path] for path, result in cached.items())


def _workers_of(pid: int) -> list[int]:
    """The processes forked by the fork server that `pid` started: the pools' workers."""
    below = children()
    return [worker for server in below.get(pid, []) for worker in below.get(server, [])]


def test_a_worker_that_dies_fails_the_judgement_and_stores_nothing(catalogue_repo: PlatformRepo) -> None:
    tree = FolderTree(catalogue_repo.root)
    with ProcessJudging(2, workers_from=1, per_task=7) as judging:
        rules = load_rules(tree)
        others = set(_workers_of(os.getpid()))  # other pools' workers come from the same fork server
        judge(tree, rules, SQLiteCatalogueIndex(), judging)  # starts this pool's workers
        deadline = time.monotonic() + 10
        while len(set(_workers_of(os.getpid())) - others) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        os.kill(min(set(_workers_of(os.getpid())) - others), signal.SIGKILL)

        def judged_afresh() -> tuple[str, object]:
            index = SQLiteCatalogueIndex()  # used by the thread that made it only
            try:
                judge(tree, rules, index, judging)
            except JudgingError as error:
                return error.message, index.latest_state(rules.digest)
            return "judged", index.latest_state(rules.digest)

        with ThreadPoolExecutor(1) as runner:  # a judgement that waits for the dead worker never returns
            message, state = runner.submit(judged_afresh).result(timeout=60)
    assert (message, state) == ("a process judging the catalogue stopped before it finished (killed, or out of "
                                "memory); nothing was stored", None)


@pytest.mark.parametrize(("count", "workers", "largest"), [(50_000, 2, 2_000), (5_000, 2, 2_000), (400, 2, 7),
                                                             (1, 4, 2_000), (0, 2, 2_000), (9_999, 3, 500)])
def test_tasks_cover_every_file_once_in_order_and_shrink_towards_the_end(count: int, workers: int,
                                                                         largest: int) -> None:
    bounds = list(task_bounds(count, workers, largest))
    assert [i for start, end in bounds for i in range(start, end)] == list(range(count))
    sizes = [end - start for start, end in bounds]
    assert all(0 < size <= largest for size in sizes)
    assert all(size >= following for size, following in itertools.pairwise(sizes))
    if count >= 50_000:
        assert sizes[0] == largest and sizes[-2] <= largest // 10  # few large answers, and a short tail


def test_a_pools_pipes_hold_a_large_answer_at_once(pool: ProcessJudging) -> None:
    fcntl = pytest.importorskip("fcntl")
    if not hasattr(fcntl, "F_GETPIPE_SZ"):
        pytest.skip("this system cannot size its pipes")
    started = pool._started()
    for queue in (started._result_queue, started._call_queue):  # type: ignore[attr-defined]
        assert fcntl.fcntl(queue._reader.fileno(), fcntl.F_GETPIPE_SZ) == PIPE_BYTES
