"""What reconcile spends of GitHub's rate limit, counted by the sandbox forge: a catalogue of 30 services
(with their teams, environments and access grants) applied by Paved's App, then reconciled as `paved serve`
schedules it. Reads ask again with the ETags of the answers the process keeps, so a reconcile that finds
nothing changed is answered in free 304s; and a drift check paced by the installation's hourly budget stops
at its reserve, leaves the rest to the next check, which starts with it, and never holds back a plan."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.reconcile_requests import REPO, ServicesOnForge, services_on_forge
from bot.adapters.github import ETAGS
from bot.errors import ConfigurationError
from bot.handlers.drift import Pacing, RepoReconciled, reconcile_repo
from bot.handlers.pull_request import plan_pull_request
from bot.sandbox.recording import Exchange, watch
from bot.settings import Settings

SERVICES = 30
# What reconciling one service may cost with nothing kept: its repository, team grants, branch protection, a
# look at its root folder (is it a platform repo? which also says where its CODEOWNERS is), its golden-path
# record (`.paved/scaffold.json`, for the standards), and its share of environments, grants and teams.
FIRST_PER_SERVICE = 7
RESERVE = 0.2


@pytest.fixture
def estate(tmp_path: Path) -> Iterator[ServicesOnForge]:
    with services_on_forge(SERVICES, tmp_path) as applied:
        yield applied


def paced(estate: ServicesOnForge, pacing: Pacing) -> RepoReconciled:
    """Reconcile the platform repo once, as the scheduled reconcile does, with `pacing`."""
    ctx = estate.context()
    try:
        return reconcile_repo(ctx, REPO, pacing=pacing)
    finally:
        ctx.store.close()


def test_a_first_reconcile_costs_a_bounded_number_of_requests_per_service(estate: ServicesOnForge) -> None:
    assert estate.reconcile() <= FIRST_PER_SERVICE * SERVICES


def test_a_repeated_reconcile_is_answered_in_free_304s(estate: ServicesOnForge) -> None:
    estate.reconcile()
    answers: list[int] = []

    def record(exchange: Exchange) -> None:
        answers.append(exchange.status)

    stop = watch(on_exchange=record)
    try:
        repeated = estate.reconcile()
    finally:
        stop()
    assert answers.count(304) >= 3 * SERVICES  # every resource was read again, and had not changed
    assert repeated <= SERVICES // 10


def test_a_drift_check_stops_at_its_reserve_and_says_what_it_left(estate: ServicesOnForge) -> None:
    estate.forge.set_rate_limit(100)
    done = paced(estate, Pacing(RESERVE))
    assert done.drift is not None and done.drift.left and done.drift.checked
    assert estate.remaining() >= RESERVE * 100
    assert not done.clean  # what was left is not known to match the catalogue


def test_the_scheduled_reconcile_keeps_the_reserve_while_it_looks_for_platform_repos(estate: ServicesOnForge) -> None:
    estate.forge.set_rate_limit(150)  # the drift check stops first; every service's repository is still to look at
    estate.reconcile()
    assert estate.remaining() >= estate.settings.reconcile_reserve * 150


def test_a_plan_runs_on_the_reserve_a_paced_reconcile_kept(estate: ServicesOnForge) -> None:
    estate.forge.set_rate_limit(100)
    stopped = paced(estate, Pacing(RESERVE))
    assert stopped.drift is not None and stopped.drift.left
    path = "catalog/teams/team-0001.yaml"
    text = estate.forge.read_file("acme", "platform", path).decode()
    estate.forge.push_files("acme", "platform", "describe", {path: text.replace("builds and runs", "runs")},
                            by="alice")
    number = estate.forge.open_pull_request("acme", "platform", head="describe", title="Shorter", by="alice").number
    ctx = estate.context()
    try:
        outcome = plan_pull_request(ctx, REPO, number)
    finally:
        ctx.store.close()
    assert outcome.status == "published"
    assert "update the description of team team-0001" in estate.forge.comments("acme", "platform", number)[-1].body


def test_the_next_drift_check_starts_with_what_the_last_one_left(estate: ServicesOnForge) -> None:
    estate.forge.set_rate_limit(100)
    pacing = Pacing(RESERVE)
    first = paced(estate, pacing)
    assert first.drift is not None and first.drift.left
    # The next hour, with room for what was left and a few more, but (nothing kept either) not for all: with
    # nothing kept, each service's observation also pays for its root folder and its golden-path record.
    estate.forge.reset_rate_limits()
    estate.forge.set_rate_limit(200)
    ETAGS.clear()
    second = paced(estate, pacing)
    assert second.drift is not None and second.drift.left
    assert set(first.drift.left).isdisjoint(second.drift.left)


def test_the_reserve_is_set_as_a_percentage_of_the_hourly_limit(tmp_path: Path) -> None:
    settings = Settings.from_env({"PAVED_DATA_DIR": str(tmp_path), "PAVED_RECONCILE_RESERVE": "35"})
    assert settings.reconcile_reserve == 0.35


def test_a_reserve_that_leaves_reconcile_almost_nothing_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="PAVED_RECONCILE_RESERVE=95"):
        Settings.from_env({"PAVED_DATA_DIR": str(tmp_path), "PAVED_RECONCILE_RESERVE": "95"})
