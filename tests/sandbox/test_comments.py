"""Issue comments on pull requests: create, edit, delete, react; and who may."""

from __future__ import annotations

import pytest
from github import GithubException

from bot.sandbox import PullRef, Sandbox

from .conftest import Cast, Receiver, github


@pytest.fixture
def pull(forge: Sandbox, cast: Cast) -> PullRef:
    forge.push_files("acme", "platform", "feature", {"a.txt": "a\n"}, by="bob")
    return forge.open_pull_request("acme", "platform", head="feature", title="A", by="bob")


def test_a_comment_is_created_and_edited_with_pygithub(forge: Sandbox, cast: Cast, pull: PullRef,
                                                      receiver: Receiver) -> None:
    forge.register_webhook("acme", "platform", receiver.url, events=["issue_comment"])
    issue = github(forge, cast.alice.token).get_repo("acme/platform").get_issue(pull.number)
    comment = issue.create_comment("<!-- paved:plan -->\nPlan: no changes")
    comment.edit("<!-- paved:plan -->\nPlan: 1 change")
    forge.wait_for_deliveries()
    assert [c.body for c in issue.get_comments()] == ["<!-- paved:plan -->\nPlan: 1 change"]
    created, edited = receiver.events("issue_comment", "created"), receiver.events("issue_comment", "edited")
    assert created[0].payload["comment"]["body"] == "<!-- paved:plan -->\nPlan: no changes"
    assert created[0].payload["issue"]["pull_request"]["url"].endswith("/pulls/1")
    assert edited[0].payload["changes"] == {"body": {"from": "<!-- paved:plan -->\nPlan: no changes"}}


def test_a_deleted_comment_is_gone_and_announced(forge: Sandbox, cast: Cast, pull: PullRef,
                                                 receiver: Receiver) -> None:
    forge.register_webhook("acme", "platform", receiver.url, events=["issue_comment"])
    comment = forge.comment("acme", "platform", pull.number, "to be removed", by="bob")
    github(forge, cast.bob.token).get_repo("acme/platform").get_issue(pull.number).get_comment(comment.id).delete()
    forge.wait_for_deliveries()
    assert forge.comments("acme", "platform", pull.number) == []
    assert receiver.events("issue_comment", "deleted")[0].payload["comment"]["id"] == comment.id


def test_a_comment_over_65536_characters_is_refused(forge: Sandbox, cast: Cast, pull: PullRef) -> None:
    issue = github(forge, cast.alice.token).get_repo("acme/platform").get_issue(pull.number)
    with pytest.raises(GithubException) as refused:
        issue.create_comment("x" * 65537)
    assert refused.value.status == 422
    assert refused.value.data["errors"][0]["field"] == "body"


def test_a_comment_of_exactly_65536_characters_is_accepted(forge: Sandbox, cast: Cast, pull: PullRef) -> None:
    issue = github(forge, cast.alice.token).get_repo("acme/platform").get_issue(pull.number)
    assert len(issue.create_comment("x" * 65536).body) == 65536


def test_a_read_only_token_cannot_comment(forge: Sandbox, cast: Cast, pull: PullRef) -> None:
    token = forge.create_token("alice", permissions={"pull_requests": "read", "issues": "read"})
    issue = github(forge, token).get_repo("acme/platform").get_issue(pull.number)
    with pytest.raises(GithubException) as refused:
        issue.create_comment("hello")
    assert refused.value.status == 403


def test_a_reader_cannot_edit_someone_elses_comment(forge: Sandbox, cast: Cast, pull: PullRef) -> None:
    comment = forge.comment("acme", "platform", pull.number, "bob's words", by="bob")
    as_carol = github(forge, cast.carol.token).get_repo("acme/platform").get_issue(pull.number).get_comment(comment.id)
    with pytest.raises(GithubException) as refused:
        as_carol.edit("carol's words")
    assert refused.value.status == 403


def test_comments_without_a_token_are_refused(forge: Sandbox, cast: Cast, pull: PullRef) -> None:
    issue = github(forge).get_repo("acme/platform").get_issue(pull.number)
    with pytest.raises(GithubException) as refused:
        issue.create_comment("anonymous")
    assert refused.value.status == 401


def test_reactions_are_added_once_and_removed(forge: Sandbox, cast: Cast, pull: PullRef) -> None:
    comment = forge.comment("acme", "platform", pull.number, "/paved apply", by="bob")
    issue = github(forge, cast.alice.token).get_repo("acme/platform").get_issue(pull.number)
    api_comment = issue.get_comment(comment.id)
    first = api_comment.create_reaction("eyes")
    again = api_comment.create_reaction("eyes")
    assert first.id == again.id
    assert [r.content for r in api_comment.get_reactions()] == ["eyes"]
    api_comment.delete_reaction(first.id)
    assert list(api_comment.get_reactions()) == []


def test_an_unknown_reaction_is_refused(forge: Sandbox, cast: Cast, pull: PullRef) -> None:
    comment = forge.comment("acme", "platform", pull.number, "hi", by="bob")
    issue = github(forge, cast.alice.token).get_repo("acme/platform").get_issue(pull.number)
    api_comment = issue.get_comment(comment.id)
    with pytest.raises(GithubException) as refused:
        api_comment.create_reaction("thumbsup")
    assert refused.value.status == 422


def test_labels_are_added_to_a_pull_request(forge: Sandbox, cast: Cast, pull: PullRef) -> None:
    repo = github(forge, cast.alice.token).get_repo("acme/platform")
    repo.create_label("paved:planned", "0e8a16", "Paved has planned this")
    issue = repo.get_issue(pull.number)
    issue.add_to_labels("paved:planned", "needs-review")
    assert sorted(label.name for label in issue.get_labels()) == ["needs-review", "paved:planned"]
    issue.remove_from_labels("needs-review")
    assert [label.name for label in repo.get_pull(pull.number).labels] == ["paved:planned"]


def test_issues_are_filed_listed_and_closed(forge: Sandbox, cast: Cast, receiver: Receiver) -> None:
    forge.register_webhook("acme", "platform", receiver.url, events=["issues"])
    repo = github(forge, cast.alice.token).get_repo("acme/platform")
    issue = repo.create_issue("Drift in billing", "replicas differ", labels=["paved:drift"])
    assert [i.title for i in repo.get_issues(labels=["paved:drift"])] == ["Drift in billing"]
    issue.edit(state="closed")
    forge.wait_for_deliveries()
    assert [r.payload["action"] for r in receiver.events("issues")] == ["opened", "closed"]
    assert list(repo.get_issues()) == []
