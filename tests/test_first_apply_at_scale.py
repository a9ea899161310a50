"""The first apply of a large catalogue, end to end on the sandbox forge: 10,000 resources merged at once
are recorded in one note, pushed, reported and marked applied.

Every resource goes through the whole apply path (plan from nothing, one result each in the note, the
note pushed, the `paved/apply` check, `refs/paved/applied`, the comment on the merged pull request).
The catalogue and the merge are `bench/first_apply.py`'s, which measures the same job.
No provider is built into this job, so each resource's result is "no provider makes … here": creating
10,000 real repositories, teams and databases would take the sandbox forge most of an hour, and what
breaks at this size is the record and its reporting, which are the same whatever the providers did.

It takes about half a minute, so it runs in CI (CI=true) and is skipped elsewhere.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bench.first_apply import MergedCatalogue, merged_catalogue
from bot.adapters.mirror import GitMirror
from bot.apply import APPLIED_REF, NOTES_REF, read_records
from bot.handlers.push import CHECK_NAME, applied_marker
from bot.handlers.router import Routed, route
from bot.sandbox import Sandbox
from tests.conftest import REPO, in_ci

RESOURCES = 10_000

pytestmark = pytest.mark.skipif(not in_ci(), reason=f"a first apply of {RESOURCES:,} resources takes about half a "
                                                    "minute: it runs in CI (set CI=true to run it here)")


@dataclass
class FirstApply:
    """The merged catalogue of `RESOURCES` requests and what Paved's apply job for its push did."""

    catalogue: MergedCatalogue
    routed: Routed
    folder: Path

    @property
    def forge(self) -> Sandbox:
        return self.catalogue.forge

    @property
    def merged(self) -> str:
        return self.catalogue.merged


@pytest.fixture(scope="module")
def first_apply(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FirstApply]:
    root = tmp_path_factory.mktemp("first-apply")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HOME", str(root))  # git reads no configuration of the machine's user
        patch.setenv("GIT_CONFIG_NOSYSTEM", "1")
        with merged_catalogue(RESOURCES, root) as catalogue:
            yield FirstApply(catalogue, route(catalogue.ctx, catalogue.push), root)


def test_a_first_apply_of_ten_thousand_resources_succeeds(first_apply: FirstApply) -> None:
    assert first_apply.routed.handler == "apply"
    assert first_apply.routed.result == f"applied {first_apply.merged[:12]}"


def test_its_note_holds_one_result_per_resource_on_the_forge(first_apply: FirstApply) -> None:
    reader = GitMirror(first_apply.folder / "reader", first_apply.catalogue.mirror.clone_url,
                       first_apply.catalogue.mirror.token)
    assert reader.fetch_if_present(REPO, NOTES_REF)
    [record] = read_records(reader.note(REPO, NOTES_REF, first_apply.merged))
    assert record.previous is None and record.succeeded
    assert len(record.results) == RESOURCES
    assert len({r.resource for r in record.results}) == RESOURCES


def test_it_moves_the_applied_ref_on_the_forge(first_apply: FirstApply) -> None:
    ref = first_apply.catalogue.ctx.forge._repo(REPO).get_git_ref("paved/applied")  # type: ignore[attr-defined]
    assert ref.object.sha == first_apply.merged
    assert first_apply.catalogue.mirror.resolve(REPO, APPLIED_REF) == first_apply.merged


def test_it_reports_a_successful_apply_check_on_the_merged_commit(first_apply: FirstApply) -> None:
    [check] = first_apply.catalogue.ctx.forge._repo(REPO).get_commit(first_apply.merged).get_check_runs(  # type: ignore[attr-defined]
        check_name=CHECK_NAME)
    assert check.conclusion == "success"
    assert check.output.title == "0 applied, 0 unchanged"


def test_it_comments_once_on_the_merged_pull_request_cut_to_fit_githubs_limit(first_apply: FirstApply) -> None:
    comments = [c.body for c in first_apply.forge.comments("acme", "platform", first_apply.catalogue.number)
                if c.body.startswith(applied_marker(first_apply.merged))]
    assert len(comments) == 1
    [comment] = comments
    assert comment.splitlines()[1] == f"### Paved applied {first_apply.merged[:12]}: 0 applied, 0 unchanged"
    assert len(comment) <= 65536
    assert comment.endswith("Cut here to fit GitHub's size limit for a comment (65,536 characters).")
