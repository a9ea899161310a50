"""The GitHub adapter against the sandbox forge over real HTTP: the forge port as handlers use it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.adapters.github import ForgeError, GitHubForge, installation_client, installation_of
from bot.forge import Annotation, CheckRun, at_least
from bot.sandbox import Sandbox


@dataclass
class Story:
    forge: Sandbox
    paved: GitHubForge
    bot_login: str


@pytest.fixture
def story(tmp_path: Path) -> Iterator[Story]:
    folder = tmp_path / "platform"
    (folder / "catalog").mkdir(parents=True)
    (folder / "catalog" / "README.md").write_text("requests go here\n")
    with Sandbox.start(tmp_path / "forge") as forge:
        alice = forge.create_user("alice")
        forge.create_user("bob")
        forge.create_user("carol")
        forge.create_org("acme", owners=["alice"], members=["bob"])
        forge.create_repo_from_folder("acme", "platform", folder, owner_token=alice.token)
        forge.add_collaborator("acme", "platform", "bob", "write")
        forge.add_collaborator("acme", "platform", "carol", "read")
        forge.push_files("acme", "platform", "search", {"catalog/search.yaml": "kind: Service\n"}, by="alice")
        app = forge.create_app("acme", "paved", permissions={
            "checks": "write", "contents": "write", "issues": "write", "pull_requests": "write", "metadata": "read",
            "members": "read", "administration": "write"})
        forge.install_app(app.id, "acme")
        installation = installation_of(forge.api_url, app.id, app.private_key, "acme/platform")
        client = installation_client(forge.api_url, app.id, app.private_key, installation, polite=False)
        yield Story(forge, GitHubForge(client), app.bot_login)


def test_the_app_finds_its_installation_and_acts_as_it(story: Story) -> None:
    opened = story.forge.open_pull_request("acme", "platform", head="search", title="Search", by="alice")
    story.paved.comment("acme/platform", opened.number, "hello from Paved")
    assert story.forge.comments("acme", "platform", opened.number)[0].body == "hello from Paved"
    pr = story.paved.pull_request("acme/platform", opened.number)
    assert (pr.number, pr.author, pr.head_ref, pr.base_ref, pr.state) == (opened.number, "alice", "search",
                                                                          "main", "open")
    assert pr.head_sha == story.forge.branch_sha("acme", "platform", "search")
    assert not pr.merged and not pr.from_fork
    assert [p.number for p in story.paved.open_pull_requests("acme/platform")] == [opened.number]


def test_the_sticky_comment_is_edited_in_place_never_posted_twice(story: Story) -> None:
    opened = story.forge.open_pull_request("acme", "platform", head="search", title="Search", by="alice")
    story.forge.comment("acme", "platform", opened.number, "a human comment", by="bob")
    first = story.paved.upsert_comment("acme/platform", opened.number, "<!-- paved:plan -->", "<!-- paved:plan -->\n1")
    second = story.paved.upsert_comment("acme/platform", opened.number, "<!-- paved:plan -->", "<!-- paved:plan -->\n2")
    assert first == second
    bodies = [c.body for c in story.forge.comments("acme", "platform", opened.number)]
    assert bodies == ["a human comment", "<!-- paved:plan -->\n2"]


def test_a_check_run_carries_more_than_fifty_annotations_in_batches(story: Story) -> None:
    sha = story.forge.branch_sha("acme", "platform", "search")
    assert sha is not None
    notes = tuple(Annotation("catalog/search.yaml", line, "failure", f"problem {line}", "schema")
                  for line in range(1, 121))
    run_id = story.paved.publish_check("acme/platform", CheckRun("paved/plan", sha, "failure", "3 errors",
                                                                 "summary", annotations=notes))
    seen = story.forge.check_run_annotations("acme", "platform", run_id)
    assert len(seen) == 120


def latest_run_annotations(story: Story, sha: str) -> list[str]:
    """The messages of the annotations on the `paved/plan` run GitHub shows for `sha` (its newest)."""
    [run] = story.paved._repo("acme/platform").get_commit(sha).get_check_runs(check_name="paved/plan")
    return [a["message"] for a in story.forge.check_run_annotations("acme", "platform", run.id)]


def test_publishing_the_same_annotations_again_edits_the_run_and_adds_none(story: Story) -> None:
    sha = story.forge.branch_sha("acme", "platform", "search")
    assert sha is not None
    notes = (Annotation("catalog/search.yaml", 1, "failure", "kind is unknown", "schema"),)

    first = story.paved.publish_check("acme/platform", CheckRun("paved/plan", sha, "failure", "1 error", "s", "",
                                                                notes))
    again = story.paved.publish_check("acme/platform", CheckRun("paved/plan", sha, "failure", "1 error", "s2", "",
                                                                notes))

    assert again == first
    assert latest_run_annotations(story, sha) == ["kind is unknown"]


def test_publishing_other_annotations_starts_a_new_run_that_shows_only_them(story: Story) -> None:
    sha = story.forge.branch_sha("acme", "platform", "search")
    assert sha is not None
    old = (Annotation("catalog/search.yaml", 1, "failure", "kind is unknown", "schema"),)
    new = (Annotation("catalog/search.yaml", 1, "warning", "no description", "policy"),)

    first = story.paved.publish_check("acme/platform", CheckRun("paved/plan", sha, "failure", "1 error", "s", "",
                                                                old))
    second = story.paved.publish_check("acme/platform", CheckRun("paved/plan", sha, "success", "fine", "s", "",
                                                                 new))

    assert second != first
    assert latest_run_annotations(story, sha) == ["no description"]


def test_a_check_whose_findings_are_gone_shows_no_annotation(story: Story) -> None:
    sha = story.forge.branch_sha("acme", "platform", "search")
    assert sha is not None
    notes = (Annotation("catalog/search.yaml", 1, "failure", "kind is unknown", "schema"),)
    story.paved.publish_check("acme/platform", CheckRun("paved/plan", sha, "failure", "1 error", "s", "", notes))

    story.paved.publish_check("acme/platform", CheckRun("paved/plan", sha, "success", "fine", "ok"))

    assert latest_run_annotations(story, sha) == []


def test_permissions_are_read_per_person(story: Story) -> None:
    assert story.paved.permission_of("acme/platform", "bob") == "write"
    assert story.paved.permission_of("acme/platform", "carol") == "read"
    assert story.paved.permission_of("acme/platform", "nobody-here") == "none"
    assert at_least("write", "triage") and not at_least("read", "write")


def test_reviews_are_read_with_their_state(story: Story) -> None:
    opened = story.forge.open_pull_request("acme", "platform", head="search", title="Search", by="alice")
    story.forge.approve("acme", "platform", opened.number, by="bob")
    assert [(r.login, r.state) for r in story.paved.reviews("acme/platform", opened.number)] == [("bob", "APPROVED")]


def test_a_refusal_carries_githubs_status_and_message(story: Story) -> None:
    with pytest.raises(ForgeError) as refused:
        story.paved.pull_request("acme/platform", 999)
    assert refused.value.status == 404
    assert "GitHub refused to read pull request #999" in refused.value.message
