"""Pull requests as PyGithub and the story API see them: open, files, reviews, merge."""

from __future__ import annotations

import pytest
from github import GithubException

from bot.sandbox import ApiError, Sandbox

from .conftest import Cast, Receiver, github


def test_a_pull_request_opened_with_pygithub_shows_its_branches_and_commits(forge: Sandbox, cast: Cast) -> None:
    forge.push_files("acme", "platform", "scale-billing", {"services/billing.yaml": "kind: Service\nreplicas: 3\n"},
                     by="bob", message="Scale billing")
    repo = github(forge, cast.bob.token).get_repo("acme/platform")
    pr = repo.create_pull(title="Scale billing", body="More replicas", head="scale-billing", base="main")
    assert pr.number == 1
    assert pr.head.ref == "scale-billing"
    assert pr.head.sha == forge.branch_sha("acme", "platform", "scale-billing")
    assert pr.base.sha == forge.branch_sha("acme", "platform", "main")
    assert pr.mergeable is True
    assert [c.commit.message for c in pr.get_commits()] == ["Scale billing"]
    assert pr.user.login == "bob"


def test_the_files_of_a_large_pull_request_are_listed_across_pages(forge: Sandbox, cast: Cast) -> None:
    files: dict[str, str | bytes | None] = {f"services/svc-{i:03}.yaml": f"name: svc-{i}\n" for i in range(130)}
    forge.push_files("acme", "platform", "many", files, by="alice")
    pr = forge.open_pull_request("acme", "platform", head="many", title="Many services", by="alice")
    pull = github(forge, cast.alice.token).get_repo("acme/platform").get_pull(pr.number)
    listed = [f.filename for f in pull.get_files()]
    assert sorted(listed) == sorted(files)
    assert pull.changed_files == 130
    first = pull.get_files()[0]
    assert first.status == "added" and first.additions == 1 and first.patch.startswith("@@")


def test_a_changed_file_reports_its_patch_and_counts(forge: Sandbox, cast: Cast) -> None:
    changes: dict[str, str | bytes | None] = {"services/billing.yaml": "kind: Service\nname: billing\nreplicas: 2\n",
                                              "README.md": None}
    forge.push_files("acme", "platform", "edit", changes, by="alice")
    pr = forge.open_pull_request("acme", "platform", head="edit", title="Edit", by="alice")
    pull = github(forge, cast.alice.token).get_repo("acme/platform").get_pull(pr.number)
    by_name = {f.filename: f for f in pull.get_files()}
    assert by_name["README.md"].status == "removed"
    billing = by_name["services/billing.yaml"]
    assert (billing.status, billing.additions, billing.deletions) == ("modified", 1, 1)
    assert "+replicas: 2" in billing.patch


def test_a_reviewer_approves_and_the_author_merges(forge: Sandbox, cast: Cast, receiver: Receiver) -> None:
    forge.register_webhook("acme", "platform", receiver.url, secret="s3cret")
    forge.push_files("acme", "platform", "feature", {"services/new.yaml": "name: new\n"}, by="alice")
    pr = forge.open_pull_request("acme", "platform", head="feature", title="Add new", by="alice")
    forge.approve("acme", "platform", pr.number, by="bob")
    sha = forge.merge("acme", "platform", pr.number, by="alice")
    forge.wait_for_deliveries()
    assert forge.branch_sha("acme", "platform", "main") == sha
    closed = receiver.events("pull_request", "closed")
    assert len(closed) == 1 and closed[0].payload["pull_request"]["merged"] is True
    assert closed[0].payload["pull_request"]["merge_commit_sha"] == sha
    pushes = [r.payload for r in receiver.events("push") if r.payload["ref"] == "refs/heads/main"]
    assert pushes[-1]["after"] == sha
    assert receiver.events("pull_request_review", "submitted")[0].payload["review"]["state"] == "approved"


def test_merging_with_pygithub_makes_a_merge_commit_with_two_parents(forge: Sandbox, cast: Cast) -> None:
    forge.push_files("acme", "platform", "feature", {"a.txt": "a\n"}, by="alice")
    pr = forge.open_pull_request("acme", "platform", head="feature", title="A", by="alice")
    repo = github(forge, cast.alice.token).get_repo("acme/platform")
    status = repo.get_pull(pr.number).merge(merge_method="merge")
    assert status.merged
    assert len(repo.get_commit(status.sha).parents) == 2
    assert repo.get_pull(pr.number).is_merged()


def test_a_squash_merge_makes_one_commit_on_the_base(forge: Sandbox, cast: Cast) -> None:
    base = forge.branch_sha("acme", "platform", "main")
    forge.push_files("acme", "platform", "feature", {"a.txt": "a\n"}, by="alice")
    forge.push_files("acme", "platform", "feature", {"b.txt": "b\n"}, by="alice")
    pr = forge.open_pull_request("acme", "platform", head="feature", title="A and B", by="alice")
    sha = forge.merge("acme", "platform", pr.number, by="alice", method="squash")
    commit = github(forge, cast.alice.token).get_repo("acme/platform").get_commit(sha)
    assert [p.sha for p in commit.parents] == [base]
    assert commit.commit.message.startswith("A and B (#1)")
    assert {f.filename for f in commit.files} == {"a.txt", "b.txt"}


def test_an_author_cannot_approve_their_own_pull_request(forge: Sandbox, cast: Cast) -> None:
    forge.push_files("acme", "platform", "feature", {"a.txt": "a\n"}, by="bob")
    pr = forge.open_pull_request("acme", "platform", head="feature", title="A", by="bob")
    pull = github(forge, cast.bob.token).get_repo("acme/platform").get_pull(pr.number)
    with pytest.raises(GithubException) as refused:
        pull.create_review(event="APPROVE")
    assert refused.value.status == 422


def test_requested_changes_are_listed_with_the_reviews(forge: Sandbox, cast: Cast) -> None:
    forge.push_files("acme", "platform", "feature", {"a.txt": "a\n"}, by="bob")
    pr = forge.open_pull_request("acme", "platform", head="feature", title="A", by="bob")
    forge.request_changes("acme", "platform", pr.number, by="alice", body="Please add tests")
    reviews = list(github(forge, cast.bob.token).get_repo("acme/platform").get_pull(pr.number).get_reviews())
    assert [(r.user.login, r.state, r.body) for r in reviews] == [("alice", "CHANGES_REQUESTED", "Please add tests")]


def test_a_pull_request_needs_commits_its_base_lacks(forge: Sandbox, cast: Cast) -> None:
    forge.create_branch("acme", "platform", "same", by="alice")
    with pytest.raises(ApiError) as refused:
        forge.open_pull_request("acme", "platform", head="same", title="Nothing", by="alice")
    assert refused.value.status == 422


def test_branch_protection_blocks_a_merge_without_approval(forge: Sandbox, cast: Cast) -> None:
    repo = github(forge, cast.alice.token).get_repo("acme/platform")
    repo.get_branch("main").edit_protection(required_approving_review_count=1)
    forge.push_files("acme", "platform", "feature", {"a.txt": "a\n"}, by="bob")
    pr = forge.open_pull_request("acme", "platform", head="feature", title="A", by="bob")
    with pytest.raises(GithubException) as refused:
        github(forge, cast.bob.token).get_repo("acme/platform").get_pull(pr.number).merge()
    assert refused.value.status == 405
    forge.approve("acme", "platform", pr.number, by="alice")
    assert github(forge, cast.bob.token).get_repo("acme/platform").get_pull(pr.number).merge().merged


def test_closing_and_reopening_fire_pull_request_events(forge: Sandbox, cast: Cast, receiver: Receiver) -> None:
    forge.register_webhook("acme", "platform", receiver.url, events=["pull_request"])
    forge.push_files("acme", "platform", "feature", {"a.txt": "a\n"}, by="bob")
    pr = forge.open_pull_request("acme", "platform", head="feature", title="A", by="bob")
    pull = github(forge, cast.bob.token).get_repo("acme/platform").get_pull(pr.number)
    pull.edit(title="A better title")
    pull.edit(state="closed")
    pull.edit(state="open")
    forge.wait_for_deliveries()
    actions = [r.payload["action"] for r in receiver.events("pull_request")]
    assert actions == ["opened", "edited", "closed", "reopened"]
    edited = receiver.events("pull_request", "edited")[0].payload
    assert edited["changes"] == {"title": {"from": "A"}}
    assert receiver.events("pull_request", "closed")[0].payload["pull_request"]["merged"] is False
