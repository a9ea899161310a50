"""Standards scored from live state, end to end on the sandbox forge: acme's catalogue applied for real, its
repositories changed by hand (as alice, who owns acme), and the drift check scoring what it observed and
recording the scorecard in the note of the platform repo's head (`refs/notes/paved-standards`)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from github.EnvironmentProtectionRuleReviewer import ReviewerParams

from bot.handlers.drift import check_drift, reconcile_repo
from bot.handlers.push import apply_default_branch
from bot.standards import STANDARDS_REF, ResourceScore, Scorecard, Verdict, read_scorecards
from tests.test_drift import REPO, Estate, applied_estate

ALL = {"approving-review-required", "code-owners-review-required", "codeowners-file-present",
       "default-branch-is-main", "default-branch-protected", "on-latest-golden-path",
       "production-environments-reviewed"}


@pytest.fixture
def estate(tmp_path: Path) -> Iterator[Estate]:
    with applied_estate(tmp_path) as applied:
        yield applied


def scorecards(estate: Estate) -> list[Scorecard]:
    """The scorecards noted on the platform repo's head, as the forge has them."""
    assert estate.ctx.mirror.fetch_if_present(REPO, STANDARDS_REF)
    return read_scorecards(estate.ctx.mirror.note(REPO, STANDARDS_REF, estate.head()))


def checkout(estate: Estate) -> ResourceScore:
    """Check for drift, and Service/checkout's score in the newest scorecard noted."""
    check_drift(estate.ctx, REPO)
    card = max(scorecards(estate), key=lambda c: c.scored_at)
    found = card.of("Service/checkout")
    assert found is not None
    return found


def failed(score: ResourceScore) -> dict[str, Verdict]:
    return {v.standard: v for v in score.failed}


def push(estate: Estate, repo: str, files: dict[str, str | bytes | None]) -> None:
    estate.forge.push_files("acme", repo, "main", files, by="alice")


# -- passing ------------------------------------------------------------------------------------------------

def test_a_service_as_paved_made_it_meets_every_standard_that_applies(estate: Estate) -> None:
    score = checkout(estate)
    assert score.failed == () and {v.standard for v in score.passed} == ALL  # experimental: drift not counted
    assert score.latest is True


def test_the_scorecard_is_noted_on_the_head_once_however_often_reconcile_runs(estate: Estate) -> None:
    check_drift(estate.ctx, REPO)
    reconcile_repo(estate.ctx, REPO)
    [card] = scorecards(estate)
    assert card.revision == estate.head()
    assert {r.identity for r in card.resources} == {"Service/checkout"}


def test_a_changed_score_is_noted_again_on_the_same_head(estate: Estate) -> None:
    check_drift(estate.ctx, REPO)
    estate.checkout().get_branch("main").remove_protection()
    check_drift(estate.ctx, REPO)
    first, second = sorted(scorecards(estate), key=lambda c: c.scored_at)
    assert not first.resources[0].failed and second.resources[0].failed


def test_the_drift_report_counts_the_resources_that_meet_every_standard(estate: Estate) -> None:
    from bot import reconcile_report
    from bot.handlers.drift import RepoReconciled

    assert check_drift(estate.ctx, REPO).standards == (len(scorecards(estate)[0].resources), 0)
    estate.checkout().get_branch("main").remove_protection()
    report = check_drift(estate.ctx, REPO)
    scored, failing = report.standards or (0, 0)
    assert failing == 1
    text = reconcile_report.as_text([RepoReconciled(REPO, drift=report)])
    assert f"  standards: {scored - 1} of {scored} resources meet every standard (`paved standards --failing`" \
        in text
    [repository] = json.loads(reconcile_report.as_json([RepoReconciled(REPO, drift=report)]))["repositories"]
    assert repository["standards"] == {"scored": scored, "failing": 1}


# -- each standard failing on a real repository ------------------------------------------------------------

def test_removing_branch_protection_fails_the_three_protection_standards(estate: Estate) -> None:
    estate.checkout().get_branch("main").remove_protection()
    assert set(failed(checkout(estate))) == {"default-branch-protected", "approving-review-required",
                                             "code-owners-review-required"}


def test_protection_without_an_approving_review_fails_that_standard(estate: Estate) -> None:
    estate.checkout().get_branch("main").edit_protection(required_approving_review_count=0,
                                                         require_code_owner_reviews=True)
    assert set(failed(checkout(estate))) == {"approving-review-required"}


def test_protection_without_the_code_owners_review_fails_that_standard(estate: Estate) -> None:
    estate.checkout().get_branch("main").edit_protection(required_approving_review_count=1,
                                                         require_code_owner_reviews=False)
    assert set(failed(checkout(estate))) == {"code-owners-review-required"}


def test_a_repository_without_codeowners_fails_that_standard(estate: Estate) -> None:
    push(estate, "checkout", {"CODEOWNERS": None})
    verdict = failed(checkout(estate))
    assert set(verdict) == {"codeowners-file-present"}
    assert "CODEOWNERS" in verdict["codeowners-file-present"].message


def test_codeowners_in_the_github_folder_counts(estate: Estate) -> None:
    push(estate, "checkout", {"CODEOWNERS": None, ".github/CODEOWNERS": "* @acme/payments\n"})
    assert "codeowners-file-present" not in failed(checkout(estate))


def test_another_default_branch_fails_the_main_standard(estate: Estate) -> None:
    estate.forge.create_branch("acme", "checkout", "trunk", by="alice")
    estate.checkout().edit(default_branch="trunk")
    assert "default-branch-is-main" in failed(checkout(estate))


def test_a_production_environment_without_reviewers_fails_that_standard(estate: Estate) -> None:
    estate.checkout().create_environment("production", wait_timer=5, reviewers=[])
    assert set(failed(checkout(estate))) == {"production-environments-reviewed"}


def test_a_production_environment_with_a_reviewing_team_passes(estate: Estate) -> None:
    team = estate.team("payments")
    estate.checkout().create_environment("production", wait_timer=5, reviewers=[ReviewerParams("Team", team.id)])
    assert "production-environments-reviewed" not in failed(checkout(estate))


def test_a_production_service_with_an_open_drift_issue_fails_and_links_to_it(estate: Estate) -> None:
    text = estate.forge.read_file("acme", "platform", "catalog/services/checkout.yaml").decode()
    push(estate, "platform", {"catalog/services/checkout.yaml": text.replace("tier: experimental", "tier: production")})
    assert apply_default_branch(estate.ctx, REPO, estate.ctx.providers).status == "applied"
    estate.checkout().edit(description="Changed by hand.")
    verdict = failed(checkout(estate))
    [issue] = estate.drift_issues()
    assert set(verdict) == {"no-open-drift-issue"}
    assert verdict["no-open-drift-issue"].link == issue.html_url


# -- the golden path --------------------------------------------------------------------------------------

def test_a_template_changed_since_the_service_was_made_is_not_the_latest(estate: Estate) -> None:
    readme = estate.forge.read_file("acme", "platform", "templates/fastapi-service/README.md").decode()
    push(estate, "platform", {"templates/fastapi-service/README.md": readme + "\nNow with tracing.\n"})
    apply_default_branch(estate.ctx, REPO, estate.ctx.providers)
    score = checkout(estate)
    verdict = failed(score)["on-latest-golden-path"]
    assert score.latest is False
    assert "differs at the platform repo's head" in verdict.message
    assert verdict.link is not None and "/acme/checkout/pulls?q=" in verdict.link


def test_a_change_elsewhere_in_the_platform_repo_keeps_the_service_on_the_latest(estate: Estate) -> None:
    push(estate, "platform", {"templates/worker/README.md": "# worker\n\nA scheduled job.\n"})
    apply_default_branch(estate.ctx, REPO, estate.ctx.providers)
    assert checkout(estate).latest is True


@pytest.mark.parametrize(("record", "says"), [
    (None, "the default branch has no .paved/scaffold.json"),
    ("not json at all", ".paved/scaffold.json is not JSON"),
    ("[1, 2, 3]", "holds a list, not an object"),
    ("x" * (300 * 1024), "more than Paved ever writes"),
    (json.dumps({"version": 1, "template": "fastapi-service", "commit": "f" * 40, "answers": {}}),
     f"names commit {'f' * 12}, which the platform repo's default branch does not hold"),
    (json.dumps({"version": 1, "template": "fastapi-service", "commit": "HEAD~1; rm -rf /", "answers": {}}),
     "names no full commit id"),
], ids=["missing", "not-json", "not-an-object", "huge", "unknown-commit", "not-a-commit"])
def test_a_missing_or_hostile_record_is_not_on_the_latest_and_says_why(estate: Estate, record: str | None,
                                                                       says: str) -> None:
    push(estate, "checkout", {".paved/scaffold.json": record})
    report = reconcile_repo(estate.ctx, REPO)
    assert report.errors == () and report.drift is not None and report.drift.checked == 5
    assert report.drift.drifts == ()  # what standards read is never a reason to change the repository
    [card] = scorecards(estate)
    score = card.of("Service/checkout")
    assert score is not None and score.latest is False
    message = failed(score)["on-latest-golden-path"].message
    assert message.startswith("The service is not on the latest version of its golden path: ")
    assert says in message and len(message) < 400


# -- what is not scored -----------------------------------------------------------------------------------

def test_a_service_with_changes_not_applied_yet_is_listed_unscored_with_why(estate: Estate) -> None:
    text = estate.forge.read_file("acme", "platform", "catalog/services/checkout.yaml").decode()
    push(estate, "platform", {"catalog/services/checkout.yaml": text.replace("Takes orders in the web shop.",
                                                                             "Takes orders.")})
    score = checkout(estate)
    assert score.outcomes == () and score.unscored.startswith("it has changes not applied yet")
