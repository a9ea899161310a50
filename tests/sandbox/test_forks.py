"""Pull requests from forks, and the `workflow_run` event that follows a workflow run, as GitHub has them.

A fork is a repository of its own, under its owner's account; its pull request names the fork as its head,
and its head commit is in the base repository under `refs/pull/N/head`. When a workflow run for it
completes, GitHub sends `workflow_run completed` with the fork as `head_repository` and, for a fork,
an empty `pull_requests` list. Every payload here is checked against GitHub's webhook descriptions.
"""

from __future__ import annotations

from bot.sandbox import Sandbox

from .conftest import Cast, Receiver, github


def fork_pull_request(forge: Sandbox) -> int:
    forge.create_user("mallory")
    forge.fork("acme", "platform", by="mallory")
    forge.push_files("mallory", "platform", "idea", {"services/idea.yaml": "kind: Service\n"}, by="mallory")
    return forge.open_pull_request("acme", "platform", head="mallory:idea", title="An idea", by="mallory").number


def test_a_fork_is_a_repository_of_its_owner_with_the_branches_of_its_parent(forge: Sandbox, cast: Cast) -> None:
    forge.create_user("mallory")

    fork = forge.fork("acme", "platform", by="mallory")

    assert fork.full_name == "mallory/platform"
    assert forge.branch_sha("mallory", "platform", "main") == forge.branch_sha("acme", "platform", "main")


def test_a_fork_pull_request_names_the_fork_as_its_head(forge: Sandbox, cast: Cast) -> None:
    number = fork_pull_request(forge)

    pull = github(forge, cast.alice.token).get_repo("acme/platform").get_pull(number)

    assert (pull.head.repo.full_name, pull.head.label, pull.base.repo.full_name) == (
        "mallory/platform", "mallory:idea", "acme/platform")
    assert pull.head.repo.fork is True
    assert pull.head.sha == forge.branch_sha("mallory", "platform", "idea")


def test_a_fork_pull_requests_head_can_be_fetched_from_the_base_repository(forge: Sandbox, cast: Cast) -> None:
    number = fork_pull_request(forge)

    pull = forge.pull_request("acme", "platform", number)

    assert forge.read_file("acme", "platform", "services/idea.yaml", ref=pull.head_sha) == b"kind: Service\n"


def test_a_push_to_the_forks_branch_moves_the_pull_request(forge: Sandbox, cast: Cast, receiver: Receiver) -> None:
    number = fork_pull_request(forge)
    forge.register_webhook("acme", "platform", receiver.url, events=["pull_request"])

    forge.push_files("mallory", "platform", "idea", {"services/idea.yaml": "kind: Service\nname: idea\n"},
                     by="mallory")
    forge.wait_for_deliveries()

    assert forge.pull_request("acme", "platform", number).head_sha == forge.branch_sha("mallory", "platform", "idea")
    assert [r.payload["number"] for r in receiver.events("pull_request", "synchronize")] == [number]


def test_a_workflow_run_for_a_fork_names_the_fork_and_lists_no_pull_request(forge: Sandbox, cast: Cast,
                                                                            receiver: Receiver) -> None:
    number = fork_pull_request(forge)
    forge.register_webhook("acme", "platform", receiver.url, events=["workflow_run"])

    payload = forge.complete_workflow_run("acme", "platform", number, conclusion="failure")
    forge.wait_for_deliveries()

    run = payload["workflow_run"]
    assert (run["event"], run["conclusion"], run["head_branch"]) == ("pull_request", "failure", "idea")
    assert run["head_sha"] == forge.pull_request("acme", "platform", number).head_sha
    assert (run["head_repository"]["full_name"], run["pull_requests"]) == ("mallory/platform", [])
    assert [r.payload["workflow_run"]["id"] for r in receiver.events("workflow_run", "completed")] == [run["id"]]


def test_a_workflow_run_for_a_branch_of_the_repository_lists_its_pull_request(forge: Sandbox, cast: Cast) -> None:
    forge.push_files("acme", "platform", "idea", {"services/idea.yaml": "kind: Service\n"}, by="bob")
    number = forge.open_pull_request("acme", "platform", head="idea", title="An idea", by="bob").number

    run = forge.complete_workflow_run("acme", "platform", number)["workflow_run"]

    assert [p["number"] for p in run["pull_requests"]] == [number]
    assert run["head_repository"]["full_name"] == "acme/platform"
