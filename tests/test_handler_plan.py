"""Plan on every pull request, end to end: the sandbox forge over real HTTP, real git, real mirrors."""

from __future__ import annotations

import dataclasses
from typing import Any

from bot.handlers.pull_request import MAX_ANNOTATIONS, is_planned, plan_check, plan_pull_request, planned_marker
from bot.model import Finding, Plan
from bot.providers.github.provider import GitHubProvider
from bot.render.markdown import MARKER
from tests.conftest import PROJECT, REPO, World, experimental_change


def team_file(world: World, name: str) -> str:
    return world.forge.read_file("acme", "platform", f"catalog/teams/{name}.yaml").decode()


def test_a_clean_pull_request_gets_a_green_check_and_one_plan_comment(world: World) -> None:
    number = experimental_change(world.forge, "reword", by="carol")
    outcome = plan_pull_request(world.ctx, REPO, number)
    assert outcome.status == "published" and outcome.conclusion == "success"
    assert world.check(number) == ("success", "ready to merge", 0)
    [comment] = world.plan_comments(number)
    assert "1 to update" in comment and "`Service/ab-testing`" in comment


def test_a_team_change_waits_for_the_team_as_the_base_branch_names_it(world: World) -> None:
    text = team_file(world, "growth").replace("monthly: 80", "monthly: 90")
    world.forge.push_files("acme", "platform", "budget", {"catalog/teams/growth.yaml": text}, by="carol")
    pr = world.forge.open_pull_request("acme", "platform", head="budget", title="More budget", by="carol")
    outcome = plan_pull_request(world.ctx, REPO, pr.number)
    assert (outcome.conclusion, outcome.verdict) == (None, "waiting")
    assert [(r.team, r.approvers) for r in outcome.pending] == [("growth", ("gina", "hugo"))]


def test_a_typo_fails_the_check_with_an_annotation_at_its_line(world: World) -> None:
    text = team_file(world, "growth").replace("monthly: 80", "monthly: lots")
    world.forge.push_files("acme", "platform", "typo", {"catalog/teams/growth.yaml": text}, by="carol")
    pr = world.forge.open_pull_request("acme", "platform", head="typo", title="Typo", by="carol")
    plan_pull_request(world.ctx, REPO, pr.number)
    conclusion, title, annotations = world.check(pr.number)
    assert (conclusion, title, annotations) == ("failure", "1 error to fix", 1)


def test_planning_again_edits_the_same_comment(world: World) -> None:
    text = team_file(world, "growth").replace("monthly: 80", "monthly: 90")
    world.forge.push_files("acme", "platform", "budget", {"catalog/teams/growth.yaml": text}, by="carol")
    pr = world.forge.open_pull_request("acme", "platform", head="budget", title="More budget", by="carol")
    plan_pull_request(world.ctx, REPO, pr.number)
    world.forge.push_files("acme", "platform", "budget", {"catalog/teams/growth.yaml": text.replace("90", "95")},
                           by="carol")
    plan_pull_request(world.ctx, REPO, pr.number)
    [comment] = world.plan_comments(pr.number)
    assert "80` → `95`" in comment


def test_a_job_for_an_older_head_publishes_nothing(world: World) -> None:
    text = team_file(world, "growth").replace("monthly: 80", "monthly: 90")
    world.forge.push_files("acme", "platform", "budget", {"catalog/teams/growth.yaml": text}, by="carol")
    pr = world.forge.open_pull_request("acme", "platform", head="budget", title="More budget", by="carol")
    outcome = plan_pull_request(world.ctx, REPO, pr.number, head_sha="0" * 40)
    assert outcome.status == "skipped" and "superseded" in outcome.reason
    assert world.plan_comments(pr.number) == []


def test_a_production_change_waits_for_its_owning_team_then_turns_green(world: World) -> None:
    path = "catalog/services/payments-api.yaml"
    text = world.forge.read_file("acme", "platform", path).decode().replace("retentionDays: 35", "retentionDays: 30")
    world.forge.push_files("acme", "platform", "retention", {path: text}, by="dave")
    pr = world.forge.open_pull_request("acme", "platform", head="retention", title="Shorter retention", by="dave")
    outcome = plan_pull_request(world.ctx, REPO, pr.number)
    assert outcome.verdict == "waiting"
    assert world.check(pr.number)[:2] == (None, "waiting for approval from team payments")
    approver = outcome.pending[0].approvers[0]
    world.forge.approve("acme", "platform", pr.number, by=approver)
    assert plan_pull_request(world.ctx, REPO, pr.number).conclusion == "success"


def test_the_plan_says_what_providers_will_do_against_live_state(world: World, provisioner: Any) -> None:
    ctx = dataclasses.replace(world.ctx, providers=(GitHubProvider(provisioner.client, provisioner.token),))
    path = "catalog/services/search.yaml"
    text = (PROJECT / "examples/new-search-service" / path).read_text()
    world.forge.push_files("acme", "platform", "search", {path: text}, by="carol")
    pr = world.forge.open_pull_request("acme", "platform", head="search", title="Search", by="carol")
    plan_pull_request(ctx, REPO, pr.number)
    [comment] = world.plan_comments(pr.number)
    assert "### What Paved will do after merge" in comment
    assert "- `Service/search`: create repository acme/search (private) from template fastapi-service" in comment
    assert "- `Database/search-db`: nothing: no provider makes Database resources here" in comment


def test_a_head_planned_already_against_the_same_base_is_not_planned_again(world: World) -> None:
    number = experimental_change(world.forge, "reword", by="carol")
    assert plan_pull_request(world.ctx, REPO, number, again=False).status == "published"
    comment = world.plan_comments(number)
    outcome = plan_pull_request(world.ctx, REPO, number, again=False)
    assert outcome.status == "skipped" and "planned already" in outcome.reason
    assert world.plan_comments(number) == comment


def test_a_head_is_planned_again_once_the_base_branch_moved(world: World) -> None:
    number = experimental_change(world.forge, "reword", by="carol")
    plan_pull_request(world.ctx, REPO, number, again=False)
    world.forge.push_files("acme", "platform", "main", {"docs/elsewhere.md": "Unrelated.\n"}, by="alice")
    assert plan_pull_request(world.ctx, REPO, number, again=False).status == "published"


def test_a_person_asking_for_a_plan_gets_one_even_for_a_planned_head(world: World) -> None:
    number = experimental_change(world.forge, "reword", by="carol")
    plan_pull_request(world.ctx, REPO, number)
    assert plan_pull_request(world.ctx, REPO, number).status == "published"


def test_the_plan_comment_says_which_head_and_base_it_planned(world: World) -> None:
    number = experimental_change(world.forge, "reword", by="carol")
    plan_pull_request(world.ctx, REPO, number)
    pr = world.forge.pull_request("acme", "platform", number)
    base = world.forge.branch_sha("acme", "platform", "main")
    assert base is not None
    [comment] = world.plan_comments(number)
    assert comment.rstrip("\n").endswith(planned_marker(pr.head_sha, base))
    assert is_planned(world.ctx, REPO, number, pr.head_sha, base)


def test_a_marker_quoted_inside_the_plan_does_not_make_a_head_look_planned(world: World) -> None:
    number = experimental_change(world.forge, "reword", by="carol")
    plan_pull_request(world.ctx, REPO, number)
    pr = world.forge.pull_request("acme", "platform", number)
    base = world.forge.branch_sha("acme", "platform", "main")
    assert base is not None
    other = "f" * 40
    [comment] = world.plan_comments(number)
    quoted = comment.replace("\n", f"\n{planned_marker(other, base)}\n", 1)
    world.ctx.forge.upsert_comment(REPO, number, MARKER, quoted)
    assert is_planned(world.ctx, REPO, number, pr.head_sha, base)
    assert not is_planned(world.ctx, REPO, number, other, base)
    assert not is_planned(world.ctx, REPO, number, other)


def test_a_check_run_counts_the_findings_beyond_its_annotations_in_words_that_agree_with_the_number() -> None:
    def check_text(findings: int) -> str:
        found = tuple(Finding(f"catalog/services/s{n}.yaml", 3, 1, "/spec/tier", "bad tier", "error", "schema")
                      for n in range(findings))
        plan = Plan(base="a" * 40, head="b" * 40, changes=(), deletions=(), unchanged=0, costs=(), findings=found)
        return plan_check(plan, "b" * 40, "failure", "1 error", "", None).text

    assert "1 more finding is not annotated." in check_text(MAX_ANNOTATIONS + 1)
    assert "2 more findings are not annotated." in check_text(MAX_ANNOTATIONS + 2)
