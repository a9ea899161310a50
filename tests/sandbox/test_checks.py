"""Check runs (only apps may write them), commit statuses and re-run requests."""

from __future__ import annotations

import pytest
from github import Github, GithubException

from bot.sandbox import InstallationRef, Sandbox

from .conftest import Cast, Receiver, github

PERMISSIONS = {"metadata": "read", "contents": "read", "checks": "write", "statuses": "write",
               "pull_requests": "write"}


@pytest.fixture
def installation(forge: Sandbox, cast: Cast, receiver: Receiver) -> InstallationRef:
    app = forge.create_app("acme", "Paved", permissions=PERMISSIONS, webhook_url=receiver.url,
                           webhook_secret="app-secret")
    return forge.install_app(app.slug, "acme")


def as_app(forge: Sandbox, installation: InstallationRef) -> Github:
    return github(forge, forge.installation_token(installation.id))


def annotations(start: int, count: int) -> list[dict[str, object]]:
    return [{"path": "services/billing.yaml", "start_line": i, "end_line": i, "annotation_level": "warning",
             "message": f"finding {i}"} for i in range(start, start + count)]


def test_a_check_run_collects_more_than_fifty_annotations_over_updates(forge: Sandbox, cast: Cast,
                                                                       installation: InstallationRef) -> None:
    repo = as_app(forge, installation).get_repo("acme/platform")
    head = forge.branch_sha("acme", "platform", "main")
    first = {"title": "Validating", "summary": "50 so far", "annotations": annotations(1, 50)}
    run = repo.create_check_run("paved/validate", head, status="in_progress", output=first)
    run.edit(output={"title": "Validated", "summary": "80 findings", "annotations": annotations(51, 30)},
             conclusion="failure")
    stored = forge.check_run_annotations("acme", "platform", run.id)
    assert [a["start_line"] for a in stored] == list(range(1, 81))
    fetched = repo.get_check_run(run.id)
    assert (fetched.status, fetched.conclusion, fetched.output.annotations_count) == ("completed", "failure", 80)
    assert len(list(fetched.get_annotations())) == 80


def test_more_than_fifty_annotations_in_one_request_are_refused(forge: Sandbox, cast: Cast,
                                                                installation: InstallationRef) -> None:
    repo = as_app(forge, installation).get_repo("acme/platform")
    head = forge.branch_sha("acme", "platform", "main")
    with pytest.raises(GithubException) as refused:
        repo.create_check_run("paved/validate", head, output={"title": "t", "summary": "s",
                                                               "annotations": annotations(1, 51)})
    assert refused.value.status == 422


def test_a_personal_token_cannot_create_check_runs(forge: Sandbox, cast: Cast) -> None:
    repo = github(forge, cast.alice.token).get_repo("acme/platform")
    with pytest.raises(GithubException) as refused:
        repo.create_check_run("paved/validate", forge.branch_sha("acme", "platform", "main") or "")
    assert refused.value.status == 403


def test_check_runs_are_listed_for_a_branch_and_announced(forge: Sandbox, cast: Cast, receiver: Receiver,
                                                          installation: InstallationRef) -> None:
    repo = as_app(forge, installation).get_repo("acme/platform")
    head = forge.branch_sha("acme", "platform", "main") or ""
    repo.create_check_run("paved/plan", head, conclusion="success", output={"title": "Plan", "summary": "ok"})
    forge.wait_for_deliveries()
    runs = list(repo.get_commit("main").get_check_runs())
    assert [(r.name, r.conclusion) for r in runs] == [("paved/plan", "success")]
    assert [r.payload["action"] for r in receiver.events("check_run")] == ["created", "completed"]


def test_a_rerequested_check_run_is_sent_to_its_app(forge: Sandbox, cast: Cast, receiver: Receiver,
                                                    installation: InstallationRef) -> None:
    repo = as_app(forge, installation).get_repo("acme/platform")
    run = repo.create_check_run("paved/plan", forge.branch_sha("acme", "platform", "main") or "", conclusion="failure",
                                output={"title": "Plan", "summary": "failed"})
    forge.rerequest_check_run("acme", "platform", run.id, by="bob")
    forge.wait_for_deliveries()
    rerequested = receiver.events("check_run", "rerequested")
    assert [r.payload["check_run"]["id"] for r in rerequested] == [run.id]
    assert rerequested[0].payload["installation"]["id"] == installation.id


def test_a_push_asks_installed_apps_for_a_check_suite(forge: Sandbox, cast: Cast, receiver: Receiver,
                                                      installation: InstallationRef) -> None:
    sha = forge.push_files("acme", "platform", "feature", {"a.txt": "a\n"}, by="bob")
    forge.wait_for_deliveries()
    requested = receiver.events("check_suite", "requested")
    assert [r.payload["check_suite"]["head_sha"] for r in requested][-1] == sha


def test_commit_statuses_combine_to_the_latest_per_context(forge: Sandbox, cast: Cast) -> None:
    repo = github(forge, cast.bob.token).get_repo("acme/platform")
    commit = repo.get_commit("main")
    commit.create_status("pending", context="paved/plan", description="Planning")
    commit.create_status("success", context="paved/plan", description="Planned")
    commit.create_status("failure", context="ci/lint", target_url="https://ci.invalid/1")
    combined = commit.get_combined_status()
    assert combined.state == "failure"
    latest = sorted((s.context, s.state) for s in combined.statuses)
    assert latest == [("ci/lint", "failure"), ("paved/plan", "success")]
    assert [s.state for s in commit.get_statuses()] == ["failure", "success", "pending"]


def test_an_unknown_status_state_is_refused(forge: Sandbox, cast: Cast) -> None:
    commit = github(forge, cast.bob.token).get_repo("acme/platform").get_commit("main")
    with pytest.raises(GithubException) as refused:
        commit.create_status("green")
    assert refused.value.status == 422


def test_a_reader_cannot_set_a_status(forge: Sandbox, cast: Cast) -> None:
    commit = github(forge, cast.carol.token).get_repo("acme/platform").get_commit("main")
    with pytest.raises(GithubException) as refused:
        commit.create_status("success")
    assert refused.value.status == 403
