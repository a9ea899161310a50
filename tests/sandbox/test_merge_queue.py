"""The merge queue as GitHub runs it: queued pull requests get merge groups on temporary branches, the base
moves only once a group's required checks pass, and a failed check takes its pull request out."""

from __future__ import annotations

import httpx
import pytest

from bot.sandbox import ApiError, Sandbox
from bot.sandbox.handle import MergeGroupRef

from .conftest import Cast, Receiver, github
from .test_branch_protection import protect

CHECK = "ci/tests"


@pytest.fixture
def queued_main(forge: Sandbox, cast: Cast, receiver: Receiver) -> Receiver:
    """main needs `ci/tests` to pass and takes pull requests only through a merge queue; a hook hears all."""
    protect(forge, cast.alice.token, required_status_checks={"strict": False, "contexts": [CHECK]})
    forge.require_merge_queue("acme", "platform", "main", by="alice")
    forge.register_webhook("acme", "platform", receiver.url)
    return receiver


def status(forge: Sandbox, cast: Cast, sha: str, state: str) -> None:
    github(forge, cast.bob.token).get_repo("acme/platform").get_commit(sha).create_status(state, context=CHECK)


def ready_pull_request(forge: Sandbox, cast: Cast, name: str) -> int:
    """bob's pull request adding `services/NAME.yaml`, its own check passed."""
    forge.push_files("acme", "platform", name, {f"services/{name}.yaml": f"kind: Service\nname: {name}\n"}, by="bob")
    pr = forge.open_pull_request("acme", "platform", head=name, title=f"Add {name}", by="bob")
    status(forge, cast, pr.head_sha, "success")
    return pr.number


def groups(receiver: Receiver, forge: Sandbox, action: str) -> list[dict[str, object]]:
    forge.wait_for_deliveries()
    return [r.payload for r in receiver.events("merge_group", action)]


def test_a_queued_pull_request_gets_a_merge_group_and_its_checks_are_requested(
        forge: Sandbox, cast: Cast, queued_main: Receiver) -> None:
    main = forge.branch_sha("acme", "platform", "main")
    number = ready_pull_request(forge, cast, "search")
    pr = forge.pull_request("acme", "platform", number)

    group = forge.enqueue_pull_request("acme", "platform", number, by="bob")

    assert group.head_ref == f"refs/heads/gh-readonly-queue/main/pr-{number}-{pr.head_sha}"
    assert forge.branch_sha("acme", "platform", group.head_ref.removeprefix("refs/heads/")) == group.head_sha
    commit = github(forge, cast.bob.token).get_repo("acme/platform").get_commit(group.head_sha)
    assert [p.sha for p in commit.parents] == [main, pr.head_sha] and group.base_sha == main
    assert commit.commit.message.startswith(f"Merge pull request #{number} from acme/search")
    [requested] = groups(queued_main, forge, "checks_requested")
    assert requested["merge_group"] == {
        "head_sha": group.head_sha, "head_ref": group.head_ref, "base_sha": main, "base_ref": "refs/heads/main",
        "head_commit": requested["merge_group"]["head_commit"]}  # type: ignore[index]
    assert requested["merge_group"]["head_commit"]["id"] == group.head_sha  # type: ignore[index]
    assert forge.branch_sha("acme", "platform", "main") == main
    assert forge.pull_request("acme", "platform", number).state == "open"


def test_a_group_whose_required_checks_pass_lands_and_merges_its_pull_request(
        forge: Sandbox, cast: Cast, queued_main: Receiver) -> None:
    number = ready_pull_request(forge, cast, "search")
    group = forge.enqueue_pull_request("acme", "platform", number, by="bob")

    status(forge, cast, group.head_sha, "success")

    assert forge.branch_sha("acme", "platform", "main") == group.head_sha
    pr = forge.pull_request("acme", "platform", number)
    assert (pr.state, pr.merged, pr.merge_commit_sha) == ("closed", True, group.head_sha)
    assert forge.branch_sha("acme", "platform", group.head_ref.removeprefix("refs/heads/")) is None
    assert [g["reason"] for g in groups(queued_main, forge, "destroyed")] == ["merged"]
    assert forge.merge_queue("acme", "platform") == []
    pushed = [r.payload for r in queued_main.events("push") if r.payload["ref"] == "refs/heads/main"]
    assert pushed[-1]["after"] == group.head_sha


def test_a_pull_request_queued_behind_another_is_built_on_its_group_and_lands_after_it(
        forge: Sandbox, cast: Cast, queued_main: Receiver) -> None:
    first = forge.enqueue_pull_request("acme", "platform", ready_pull_request(forge, cast, "search"), by="bob")
    second = forge.enqueue_pull_request("acme", "platform", ready_pull_request(forge, cast, "ledger"), by="bob")
    assert second.base_sha == first.head_sha
    for name in ("search", "ledger"):
        assert forge.read_file("acme", "platform", f"services/{name}.yaml", ref=second.head_sha)

    status(forge, cast, second.head_sha, "success")
    assert forge.merge_queue("acme", "platform") == [first, second]  # the group ahead has not passed yet

    status(forge, cast, first.head_sha, "success")
    assert forge.branch_sha("acme", "platform", "main") == second.head_sha
    assert forge.pull_request("acme", "platform", second.number).merge_commit_sha == second.head_sha
    assert forge.pull_request("acme", "platform", first.number).merge_commit_sha == first.head_sha


def test_a_failed_required_check_takes_its_pull_request_out_and_rebuilds_the_groups_behind(
        forge: Sandbox, cast: Cast, queued_main: Receiver) -> None:
    main = forge.branch_sha("acme", "platform", "main")
    first = forge.enqueue_pull_request("acme", "platform", ready_pull_request(forge, cast, "search"), by="bob")
    second = forge.enqueue_pull_request("acme", "platform", ready_pull_request(forge, cast, "ledger"), by="bob")

    status(forge, cast, first.head_sha, "failure")

    assert forge.branch_sha("acme", "platform", "main") == main
    pr = forge.pull_request("acme", "platform", first.number)
    assert (pr.state, pr.merged) == ("open", False)
    [rebuilt] = forge.merge_queue("acme", "platform")
    assert (rebuilt.number, rebuilt.base_sha) == (second.number, main) and rebuilt.head_sha != second.head_sha
    destroyed = {(g["merge_group"]["head_sha"], g["reason"])  # type: ignore[index]
                 for g in groups(queued_main, forge, "destroyed")}
    assert destroyed == {(first.head_sha, "dequeued"), (second.head_sha, "invalidated")}
    assert groups(queued_main, forge, "checks_requested")[-1]["merge_group"]["head_sha"] == \
        rebuilt.head_sha  # type: ignore[index]
    assert forge.branch_sha("acme", "platform", first.head_ref.removeprefix("refs/heads/")) is None


def test_a_branch_with_a_merge_queue_refuses_the_merge_button(forge: Sandbox, cast: Cast,
                                                             queued_main: Receiver) -> None:
    number = ready_pull_request(forge, cast, "search")
    with pytest.raises(ApiError) as refused:
        forge.merge("acme", "platform", number, by="alice")
    assert refused.value.status == 405 and "merge queue" in refused.value.message


def test_a_pull_request_whose_required_checks_have_not_passed_cannot_be_queued(
        forge: Sandbox, cast: Cast, queued_main: Receiver) -> None:
    forge.push_files("acme", "platform", "search", {"services/search.yaml": "kind: Service\n"}, by="bob")
    number = forge.open_pull_request("acme", "platform", head="search", title="Add search", by="bob").number
    with pytest.raises(ApiError) as refused:
        forge.enqueue_pull_request("acme", "platform", number, by="bob")
    assert refused.value.status == 405 and CHECK in refused.value.message
    assert forge.merge_queue("acme", "platform") == []


def test_only_apps_allowed_to_read_merge_queues_hear_of_merge_groups(forge: Sandbox, cast: Cast,
                                                                    queued_main: Receiver) -> None:
    hearing, deaf = Receiver(), Receiver()
    try:
        for name, receiver, permissions in (("queue-reader", hearing, {"merge_queues": "read"}), ("other", deaf, {})):
            app = forge.create_app("acme", name, permissions={"metadata": "read", **permissions},
                                   events=["merge_group"], webhook_url=receiver.url)
            forge.install_app(app.id, "acme")
        forge.enqueue_pull_request("acme", "platform", ready_pull_request(forge, cast, "search"), by="bob")
        forge.wait_for_deliveries()
        assert [r.payload["action"] for r in hearing.events("merge_group")] == ["checks_requested"]
        assert "installation" in hearing.events("merge_group")[0].payload
        assert deaf.events("merge_group") == []
    finally:
        hearing.close()
        deaf.close()


def test_the_queue_is_offered_on_the_administration_api(forge: Sandbox, cast: Cast, queued_main: Receiver) -> None:
    number = ready_pull_request(forge, cast, "search")
    answer = httpx.post(f"{forge.url}/_sandbox/call/enqueue_pull_request",
                        headers={"Authorization": f"token {forge.admin_token}"},
                        json={"owner": "acme", "repo": "platform", "number": number, "by": "bob"})
    assert answer.status_code == 200
    assert MergeGroupRef(**answer.json()["result"]) == forge.merge_queue("acme", "platform")[0]
