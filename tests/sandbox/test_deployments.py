"""Deployments, their statuses and workflow runs, as GitHub has them: what Paved reads to tell a service's
deployment status, and what a golden path's workflow writes."""

from __future__ import annotations

import pytest
import requests
from github import GithubException

from bot.sandbox import Sandbox

from .conftest import Cast, github


def api(forge: Sandbox, method: str, path: str, token: str, **kwargs: object) -> requests.Response:
    return requests.request(method, f"{forge.api_url}{path}", headers={"Authorization": f"token {token}"},
                            timeout=10, **kwargs)  # type: ignore[arg-type]


def test_a_deployment_records_the_commit_its_ref_names_and_who_asked(forge: Sandbox, cast: Cast) -> None:
    repo = github(forge, cast.bob.token).get_repo("acme/platform")
    deployment = repo.create_deployment("main", environment="staging", required_contexts=[],
                                        description="Deployed by CI")
    again = repo.get_deployment(deployment.id)
    assert (again.sha, again.ref, again.environment, again.task, again.creator.login, again.description) == (
        forge.branch_sha("acme", "platform", "main"), "main", "staging", "deploy", "bob", "Deployed by CI")


def test_deployments_are_listed_newest_first_and_narrowed_by_environment(forge: Sandbox, cast: Cast) -> None:
    first = forge.deploy("acme", "platform", "staging", by="bob")
    forge.deploy("acme", "platform", "production", by="bob")
    latest = forge.deploy("acme", "platform", "staging", by="bob")
    listed = github(forge, cast.carol.token).get_repo("acme/platform").get_deployments(environment="staging")
    assert [d.id for d in listed] == [latest.id, first.id]


def test_deployments_are_narrowed_by_ref_sha_and_task(forge: Sandbox, cast: Cast) -> None:
    forge.create_branch("acme", "platform", "hotfix", by="bob")
    forge.push_files("acme", "platform", "hotfix", {"fix.txt": "fixed\n"}, by="bob")
    on_main = forge.deploy("acme", "platform", "staging", by="bob")
    on_hotfix = forge.deploy("acme", "platform", "staging", by="bob", ref="hotfix")
    repo = github(forge, cast.carol.token).get_repo("acme/platform")
    assert [d.id for d in repo.get_deployments(ref="hotfix")] == [on_hotfix.id]
    assert [d.id for d in repo.get_deployments(sha=on_main.sha)] == [on_main.id]
    assert [d.id for d in repo.get_deployments(task="deploy:migrations")] == []


def test_a_deployments_statuses_are_listed_newest_first(forge: Sandbox, cast: Cast) -> None:
    deployment = github(forge, cast.bob.token).get_repo("acme/platform").get_deployment(
        forge.deploy("acme", "platform", "staging", by="bob", state="in_progress").id)
    deployment.create_status("success", target_url="https://ci.example/runs/7",
                             environment_url="https://staging.example")
    states = [(s.state, s.target_url, s.environment_url) for s in deployment.get_statuses()]
    assert states == [("success", "https://ci.example/runs/7", "https://staging.example"), ("in_progress", "", "")]


def test_a_deployment_status_is_read_by_its_id_and_only_under_its_own_deployment(forge: Sandbox,
                                                                                 cast: Cast) -> None:
    repo = github(forge, cast.carol.token).get_repo("acme/platform")
    deployment = repo.get_deployment(forge.deploy("acme", "platform", "staging", by="bob", state="in_progress").id)
    other = forge.deploy("acme", "platform", "staging", by="bob", state="queued")
    status = next(iter(deployment.get_statuses()))
    again = deployment.get_status(status.id)
    assert (again.id, again.state, again.creator.login, again.environment) == (
        status.id, "in_progress", "bob", "staging")
    answer = api(forge, "GET", f"/repos/acme/platform/deployments/{other.id}/statuses/{status.id}", cast.carol.token)
    assert answer.status_code == 404


def test_a_status_given_a_log_url_has_it_as_its_target_url_too(forge: Sandbox, cast: Cast) -> None:
    deployment = forge.deploy("acme", "platform", "staging", by="bob", state=None)
    answer = api(forge, "POST", f"/repos/acme/platform/deployments/{deployment.id}/statuses", cast.bob.token,
                 json={"state": "success", "log_url": "https://ci.example/runs/7"})
    assert (answer.json()["log_url"], answer.json()["target_url"]) == ("https://ci.example/runs/7",) * 2


def test_a_success_marks_the_environments_earlier_successful_deployment_inactive(forge: Sandbox, cast: Cast) -> None:
    earlier = forge.deploy("acme", "platform", "staging", by="bob")
    forge.deploy("acme", "platform", "staging", by="bob")
    repo = github(forge, cast.carol.token).get_repo("acme/platform")
    assert [s.state for s in repo.get_deployment(earlier.id).get_statuses()] == ["inactive", "success"]


def test_a_production_deployment_stays_active_after_a_later_success(forge: Sandbox, cast: Cast) -> None:
    earlier = forge.deploy("acme", "platform", "production", by="bob")
    forge.deploy("acme", "platform", "production", by="bob")
    repo = github(forge, cast.carol.token).get_repo("acme/platform")
    assert [s.state for s in repo.get_deployment(earlier.id).get_statuses()] == ["success"]


def test_a_commit_whose_status_checks_fail_is_not_deployed_unless_no_context_is_required(forge: Sandbox,
                                                                                       cast: Cast) -> None:
    repo = github(forge, cast.bob.token).get_repo("acme/platform")
    repo.get_commit(forge.branch_sha("acme", "platform", "main") or "").create_status("failure", context="ci/test")
    with pytest.raises(GithubException) as refused:
        repo.create_deployment("main", environment="staging")
    assert refused.value.status == 409
    assert repo.create_deployment("main", environment="staging", required_contexts=[]).environment == "staging"


def test_a_deployment_to_an_environment_that_does_not_exist_creates_it(forge: Sandbox, cast: Cast) -> None:
    forge.deploy("acme", "platform", "preview", by="bob")
    assert [e.name for e in github(forge, cast.alice.token).get_repo("acme/platform").get_environments()] == [
        "preview"]


def test_a_reader_may_list_deployments_but_not_deploy(forge: Sandbox, cast: Cast) -> None:
    repo = github(forge, cast.carol.token).get_repo("acme/platform")
    with pytest.raises(GithubException) as refused:
        repo.create_deployment("main", environment="staging", required_contexts=[])
    assert (refused.value.status, list(repo.get_deployments())) == (403, [])


def test_a_job_token_needs_deployments_write_to_deploy_and_read_to_list(forge: Sandbox, cast: Cast) -> None:
    reading = forge.job_token("acme", "platform", {"contents": "read"})
    writing = forge.job_token("acme", "platform", {"contents": "read", "deployments": "write"})
    body = {"ref": "main", "environment": "staging", "required_contexts": []}
    refused = api(forge, "POST", "/repos/acme/platform/deployments", reading, json=body)
    created = api(forge, "POST", "/repos/acme/platform/deployments", writing, json=body)
    listed = api(forge, "GET", "/repos/acme/platform/deployments", reading)
    assert (refused.status_code, created.status_code, listed.status_code) == (403, 201, 403)
    assert refused.headers["X-Accepted-GitHub-Permissions"] == "deployments=write"


def test_a_deployment_of_a_ref_that_does_not_exist_is_refused(forge: Sandbox, cast: Cast) -> None:
    answer = api(forge, "POST", "/repos/acme/platform/deployments", cast.bob.token,
                 json={"ref": "no-such-branch", "required_contexts": []})
    assert (answer.status_code, answer.json()["message"]) == (422, "No ref found for: no-such-branch")


def test_an_unknown_deployment_state_is_refused(forge: Sandbox, cast: Cast) -> None:
    deployment = forge.deploy("acme", "platform", "staging", by="bob", state=None)
    answer = api(forge, "POST", f"/repos/acme/platform/deployments/{deployment.id}/statuses", cast.bob.token,
                 json={"state": "done"})
    assert answer.status_code == 422


def test_an_unchanged_list_of_deployments_read_again_with_its_etag_is_answered_304(forge: Sandbox,
                                                                                   cast: Cast) -> None:
    forge.deploy("acme", "platform", "staging", by="bob")
    first = api(forge, "GET", "/repos/acme/platform/deployments?environment=staging&per_page=1", cast.carol.token)
    again = requests.get(f"{forge.api_url}/repos/acme/platform/deployments?environment=staging&per_page=1",
                         headers={"Authorization": f"token {cast.carol.token}", "If-None-Match": first.headers["ETag"]},
                         timeout=10)
    assert (first.status_code, again.status_code) == (200, 304)


# -- workflow runs ------------------------------------------------------------------------------------------------

def test_recorded_workflow_runs_are_listed_newest_first_with_their_actor_and_conclusion(forge: Sandbox,
                                                                                       cast: Cast) -> None:
    forge.record_workflow_run("acme", "platform", conclusion="failure", by="bob")
    latest = forge.record_workflow_run("acme", "platform", by="alice")
    runs = github(forge, cast.carol.token).get_repo("acme/platform").get_workflow_runs()
    assert [(r.id, r.name, r.actor.login, r.conclusion, r.run_number) for r in runs] == [
        (latest.id, "CI", "alice", "success", 2), (latest.id - 1, "CI", "bob", "failure", 1)]


def test_workflow_runs_are_narrowed_by_branch_event_and_status(forge: Sandbox, cast: Cast) -> None:
    forge.create_branch("acme", "platform", "feature", by="bob")
    on_main = forge.record_workflow_run("acme", "platform", by="bob")
    on_feature = forge.record_workflow_run("acme", "platform", branch="feature", event="pull_request", by="bob")
    running = forge.record_workflow_run("acme", "platform", status="in_progress", by="bob")
    repo = github(forge, cast.carol.token).get_repo("acme/platform")
    assert [r.id for r in repo.get_workflow_runs(branch="main", event="push")] == [running.id, on_main.id]
    assert [r.id for r in repo.get_workflow_runs(status="success")] == [on_feature.id, on_main.id]
    assert [r.id for r in repo.get_workflow_runs(status="in_progress")] == [running.id]


def test_a_workflow_run_is_read_by_id_with_its_links(forge: Sandbox, cast: Cast) -> None:
    recorded = forge.record_workflow_run("acme", "platform", workflow="Deploy", path=".github/workflows/deploy.yml",
                                         by="bob")
    run = github(forge, cast.carol.token).get_repo("acme/platform").get_workflow_run(recorded.id)
    assert (run.name, run.path, run.head_sha, run.html_url, run.status) == (
        "Deploy", ".github/workflows/deploy.yml", recorded.head_sha, recorded.html_url, "completed")


def test_a_job_token_needs_actions_read_to_list_workflow_runs(forge: Sandbox, cast: Cast) -> None:
    forge.record_workflow_run("acme", "platform", by="bob")
    without = forge.job_token("acme", "platform", {"contents": "read"})
    allowed = forge.job_token("acme", "platform", {"actions": "read"})
    assert (api(forge, "GET", "/repos/acme/platform/actions/runs", without).status_code,
            api(forge, "GET", "/repos/acme/platform/actions/runs", allowed).json()["total_count"]) == (403, 1)


def test_a_pull_requests_completed_run_is_listed_with_its_pull_request(forge: Sandbox, cast: Cast) -> None:
    forge.create_branch("acme", "platform", "feature", by="bob")
    forge.push_files("acme", "platform", "feature", {"new.txt": "new\n"}, by="bob")
    number = forge.open_pull_request("acme", "platform", head="feature", title="New", by="bob").number
    forge.complete_workflow_run("acme", "platform", number)
    [run] = github(forge, cast.carol.token).get_repo("acme/platform").get_workflow_runs(event="pull_request")
    assert (run.head_branch, [p.number for p in run.pull_requests]) == ("feature", [number])
