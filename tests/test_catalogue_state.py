"""A pull request's head is judged as an overlay of the base's stored state; it must find exactly
what judging the head whole finds. These tests hold the two to each other over many kinds of change."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from bot.adapters.catalogue_index import SQLiteCatalogueIndex
from bot.adapters.repo import GitTree
from bot.catalogue import judge, overlay
from bot.model import Finding
from bot.rules import load_rules
from tests.conftest import DATABASE, SERVICE, TEAM, PlatformRepo


def whole(repo: PlatformRepo, revision: str) -> list[Finding]:
    with GitTree(repo.root, "main") as main, GitTree(repo.root, revision) as tree:
        return judge(tree, load_rules(main), SQLiteCatalogueIndex()).findings()


def overlaid(repo: PlatformRepo, base: str, head: str, store: SQLiteCatalogueIndex) -> list[Finding]:
    with GitTree(repo.root, "main") as main, GitTree(repo.root, base) as before, GitTree(repo.root, head) as now:
        after = overlay(judge(before, load_rules(main), store), now)
        try:
            return after.findings()
        finally:
            after.close()


def service(name: str, owner: str, tier: str = "production", depends: list[str] | None = None) -> str:
    text = SERVICE.format(name=name, owner=owner, tier=tier)
    if depends:
        text += "  dependsOn:\n" + "".join(f"    - {d}\n" for d in depends)
    return text


def database(name: str, owner: str, service_name: str, size: str = "small", protected: bool = True) -> str:
    text = DATABASE.format(name=name, owner=owner, service=service_name, size=size)
    return text if protected else text.replace("deletionProtection: true", "deletionProtection: false")


CHANGES = {
    "a new service owned by a team that does not exist": lambda r: r.write(
        "catalog/services/search.yaml", service("search", "nobody")),
    "the team that owns everything is removed": lambda r: r.remove("catalog/teams/payments.yaml"),
    "a service named by a database in another file is removed": lambda r: r.write(
        "catalog/services/checkout.yaml", database("checkout-db", "payments", "checkout")),
    "a second definition of an existing team": lambda r: r.write(
        "catalog/teams/zz-payments.yaml", TEAM.format(name="payments", budget=1)),
    "a service tier change moves a database in another file under stricter policies": lambda r: (
        r.write("catalog/databases/loose.yaml", database("loose-db", "payments", "checkout", protected=False)),
        r.commit("base"), r.git("branch", "-f", "main"),
        r.write("catalog/services/checkout.yaml",
                service("checkout", "payments", tier="experimental")
                + "---" + database("checkout-db", "payments", "checkout"))),
    "a large database pushes a team over budget": lambda r: r.write(
        "catalog/databases/big.yaml", database("big-db", "data", "checkout", size="large")),
    "a budget raised in the team file clears an overspend": lambda r: (
        r.write("catalog/databases/big.yaml", database("big-db", "data", "checkout", size="large")),
        r.commit("base"), r.git("branch", "-f", "main"),
        r.write("catalog/teams/data.yaml", TEAM.format(name="data", budget=5000))),
    "a dependency cycle across two files": lambda r: (
        r.write("catalog/services/a.yaml", service("a", "data", "experimental", ["Service/b"])),
        r.write("catalog/services/b.yaml", service("b", "data", "experimental", ["Service/a"]))),
    "a cycle in the base broken by the change": lambda r: (
        r.write("catalog/services/a.yaml", service("a", "data", "experimental", ["Service/b"])),
        r.write("catalog/services/b.yaml", service("b", "data", "experimental", ["Service/a"])),
        r.commit("base"), r.git("branch", "-f", "main"),
        r.write("catalog/services/b.yaml", service("b", "data", "experimental"))),
    "a dangling reference in the base resolved by a new file": lambda r: (
        r.write("catalog/databases/orphan.yaml", database("orphan-db", "data", "ledger")),
        r.commit("base"), r.git("branch", "-f", "main"),
        r.write("catalog/services/ledger.yaml", service("ledger", "data", "experimental"))),
    "a file that no longer parses": lambda r: r.write("catalog/teams/data.yaml", "kind: [oops\n"),
    "a file moved without a change": lambda r: (
        r.write("catalog/teams/moved/data.yaml", (r.root / "catalog/teams/data.yaml").read_text()),
        r.remove("catalog/teams/data.yaml")),
}


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_an_overlay_finds_what_judging_the_head_whole_finds(platform_repo: PlatformRepo, change: str) -> None:
    platform_repo.git("switch", "--quiet", "-c", "change")
    CHANGES[change](platform_repo)
    head = platform_repo.commit(change)
    assert overlaid(platform_repo, "main", head, SQLiteCatalogueIndex()) == whole(platform_repo, head)


def test_an_overlay_stays_exact_over_a_long_random_history(platform_repo: PlatformRepo, tmp_path: Path) -> None:
    rng = random.Random(7)
    teams, services = ["payments", "data", "growth", "ghost"], ["checkout", "search", "ledger", "mail"]
    store = SQLiteCatalogueIndex(tmp_path / "index.sqlite")
    previous = platform_repo.git("rev-parse", "HEAD")
    for step in range(40):
        choice = rng.randrange(5)
        if choice == 0:
            name = rng.choice(teams[:3])
            platform_repo.write(f"catalog/teams/{name}.yaml", TEAM.format(name=name, budget=rng.choice([0, 50, 500])))
        elif choice == 1:
            name = rng.choice(services)
            depends = rng.sample([f"Service/{s}" for s in services if s != name], k=rng.randrange(2))
            platform_repo.write(f"catalog/services/{name}.yaml",
                                service(name, rng.choice(teams), rng.choice(["experimental", "production"]), depends))
        elif choice == 2:
            name = f"db{rng.randrange(4)}"
            platform_repo.write(f"catalog/databases/{name}.yaml",
                                database(name, rng.choice(teams), rng.choice(services),
                                         rng.choice(["small", "large"]), rng.random() < 0.7))
        else:
            existing = sorted(p.relative_to(platform_repo.root).as_posix()
                              for p in (platform_repo.root / "catalog").rglob("*.yaml"))
            if existing:
                platform_repo.remove(rng.choice(existing))
        head = platform_repo.commit(f"step {step}")
        expected = whole(platform_repo, head)
        assert overlaid(platform_repo, "main", head, store) == expected, f"step {step} against main"
        assert overlaid(platform_repo, previous, head, store) == expected, f"step {step} against the step before"
        previous = head
