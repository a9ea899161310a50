"""Git over smart HTTP: GitPython clones, fetches and pushes, and the API sees the same repository."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from git import GitCommandError, Repo

from bot.sandbox import Sandbox

from .conftest import Cast, Receiver, github


def clone(forge: Sandbox, token: str, where: Path, repo: str = "platform") -> Repo:
    return Repo.clone_from(forge.authenticated_clone_url("acme", repo, token), where)


def commit_file(clone: Repo, path: str, text: str, message: str) -> str:
    target = Path(clone.working_dir) / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    clone.index.add([path])
    return clone.index.commit(message).hexsha


def test_a_clone_has_the_files_the_repository_was_created_from(forge: Sandbox, cast: Cast, tmp_path: Path) -> None:
    repo = clone(forge, cast.bob.token, tmp_path / "work")
    assert (tmp_path / "work" / "services" / "billing.yaml").read_text().startswith("kind: Service")
    assert repo.head.commit.hexsha == forge.branch_sha("acme", "platform", "main")


def test_a_pushed_branch_shows_up_in_the_api(forge: Sandbox, cast: Cast, tmp_path: Path) -> None:
    repo = clone(forge, cast.bob.token, tmp_path / "work")
    repo.git.checkout("-b", "feature")
    sha = commit_file(repo, "services/api.yaml", "name: api\n", "Add api")
    repo.git.push("origin", "feature")
    api = github(forge, cast.bob.token).get_repo("acme/platform")
    assert api.get_branch("feature").commit.sha == sha
    assert api.get_contents("services/api.yaml", ref="feature").decoded_content == b"name: api\n"


def test_a_commit_made_through_the_api_is_fetched_by_git(forge: Sandbox, cast: Cast, tmp_path: Path) -> None:
    repo = clone(forge, cast.alice.token, tmp_path / "work")
    api = github(forge, cast.alice.token).get_repo("acme/platform")
    created = api.create_file("docs/intro.md", "Add intro", "# Intro\n", branch="main")
    repo.remotes.origin.pull()
    assert repo.head.commit.hexsha == created["commit"].sha
    assert (tmp_path / "work" / "docs" / "intro.md").read_text() == "# Intro\n"


def test_a_push_fires_push_and_synchronizes_the_pull_request(forge: Sandbox, cast: Cast, tmp_path: Path,
                                                             receiver: Receiver) -> None:
    forge.register_webhook("acme", "platform", receiver.url, secret="topsecret")
    forge.push_files("acme", "platform", "feature", {"a.txt": "a\n"}, by="bob")
    pr = forge.open_pull_request("acme", "platform", head="feature", title="A", by="bob")
    repo = clone(forge, cast.bob.token, tmp_path / "work")
    repo.git.checkout("feature")
    sha = commit_file(repo, "b.txt", "b\n", "Add b")
    repo.git.push("origin", "feature")
    forge.wait_for_deliveries()
    push = [r.payload for r in receiver.events("push") if r.payload["after"] == sha]
    # When the receiver got nothing, what the forge recorded of its attempt says why (a timeout, a refusal).
    attempts = [(d.event, d.action, d.status) for d in forge.deliveries("push")]
    assert len(push) == 1, attempts
    assert push[0]["ref"] == "refs/heads/feature"
    assert [c["message"] for c in push[0]["commits"]] == ["Add b"]
    assert push[0]["pusher"]["name"] == "bob"
    synchronize = receiver.events("pull_request", "synchronize")
    assert [r.payload["after"] for r in synchronize] == [sha]
    assert synchronize[0].payload["pull_request"]["head"]["sha"] == sha
    assert forge.pull_request("acme", "platform", pr.number).head_sha == sha


def test_pushing_notes_or_other_refs_fires_no_push_event(forge: Sandbox, cast: Cast, tmp_path: Path,
                                                         receiver: Receiver) -> None:
    forge.register_webhook("acme", "platform", receiver.url, secret="topsecret")
    repo = clone(forge, cast.alice.token, tmp_path / "work")
    head = repo.head.commit.hexsha
    repo.git.notes("--ref=paved", "add", "-m", "applied", head)
    repo.git.update_ref("refs/paved/applied", head)
    repo.git.push("origin", "refs/notes/paved:refs/notes/paved", "refs/paved/applied:refs/paved/applied")
    forge.wait_for_deliveries()
    assert receiver.events("push") == []
    assert forge.forge.git(forge._repo("acme", "platform")).resolve("refs/paved/applied") == head


def test_a_large_push_over_chunked_http_arrives_intact(forge: Sandbox, cast: Cast, tmp_path: Path) -> None:
    repo = clone(forge, cast.bob.token, tmp_path / "work")
    blob = os.urandom(3 * 1024 * 1024)  # over git's 1 MiB post buffer: sent chunked
    (tmp_path / "work" / "blob.bin").write_bytes(blob)
    repo.index.add(["blob.bin"])
    repo.index.commit("Add a large file")
    repo.git.push("origin", "main")
    assert forge.read_file("acme", "platform", "blob.bin") == blob


def test_a_reader_may_clone_but_not_push(forge: Sandbox, cast: Cast, tmp_path: Path) -> None:
    forge.create_repo("acme", "secret", private=True, by="alice", auto_init=True)
    forge.add_collaborator("acme", "secret", "carol", "read")
    repo = clone(forge, cast.carol.token, tmp_path / "work", repo="secret")
    commit_file(repo, "x.txt", "x\n", "Try")
    with pytest.raises(GitCommandError) as refused:
        repo.git.push("origin", "main")
    assert "403" in str(refused.value) or "denied" in str(refused.value)


def test_a_private_repository_is_not_found_for_a_stranger(forge: Sandbox, cast: Cast, tmp_path: Path) -> None:
    forge.create_repo("acme", "secret", private=True, by="alice", auto_init=True)
    stranger = forge.create_user("mallory")
    with pytest.raises(GitCommandError) as refused:
        clone(forge, stranger.token, tmp_path / "work", repo="secret")
    assert "not found" in str(refused.value).lower()


def test_a_wrong_token_is_refused_by_git(forge: Sandbox, cast: Cast, tmp_path: Path) -> None:
    forge.create_repo("acme", "secret", private=True, by="alice", auto_init=True)
    with pytest.raises(GitCommandError) as refused:
        clone(forge, "ghp_" + "x" * 36, tmp_path / "work", repo="secret")
    assert "Authentication failed" in str(refused.value) or "401" in str(refused.value)


def test_anyone_may_clone_a_public_repository(forge: Sandbox, cast: Cast, tmp_path: Path) -> None:
    repo = Repo.clone_from(forge.clone_url("acme", "platform"), tmp_path / "work")
    assert repo.head.commit.hexsha == forge.branch_sha("acme", "platform", "main")


def test_a_pull_requests_head_and_merge_refs_can_be_fetched(forge: Sandbox, cast: Cast, tmp_path: Path) -> None:
    sha = forge.push_files("acme", "platform", "feature", {"a.txt": "a\n"}, by="bob")
    pr = forge.open_pull_request("acme", "platform", head="feature", title="A", by="bob")
    repo = clone(forge, cast.bob.token, tmp_path / "work")
    repo.git.fetch("origin", f"pull/{pr.number}/head:pr-head", f"pull/{pr.number}/merge:pr-merge")
    assert repo.commit("pr-head").hexsha == sha
    merge = repo.commit("pr-merge")
    assert [p.hexsha for p in merge.parents] == [forge.branch_sha("acme", "platform", "main"), sha]


def test_a_pull_request_ref_follows_pushes_and_cannot_be_pushed(forge: Sandbox, cast: Cast, tmp_path: Path) -> None:
    forge.push_files("acme", "platform", "feature", {"a.txt": "a\n"}, by="bob")
    pr = forge.open_pull_request("acme", "platform", head="feature", title="A", by="bob")
    newer = forge.push_files("acme", "platform", "feature", {"b.txt": "b\n"}, by="bob")
    repo = clone(forge, cast.bob.token, tmp_path / "work")
    repo.git.fetch("origin", f"pull/{pr.number}/head:pr-head")
    assert repo.commit("pr-head").hexsha == newer
    with pytest.raises(GitCommandError):
        repo.git.push("origin", f"main:refs/pull/{pr.number}/head")
