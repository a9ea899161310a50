"""Plan every merge group of a merge queue: the `paved/plan` check run on the group's head commit.

A platform repo whose default branch uses GitHub's merge queue requires `paved/plan` on each merge group
too: the queue merges the group's temporary branch `gh-readonly-queue/{base}/pr-{number}-{sha}` only once
the base's required checks pass on its head. Triggered by `merge_group` `checks_requested`; the plan is the
change from `merge_group.base_sha` (the base branch, or the group ahead in the queue) to its head, judged by
the rules of the base branch as it is now, with the same planner a pull request gets (`judge_change`), so
requests that were each fine alone but clash together (one name twice, a budget spent twice) fail the check
and never land.

What a merge group does not get, and why:
- No sticky comment. A group is no pull request and may hold several; each pull request has its own plan
  comment already, and the check on the group's head is where the queue (and a person looking at it) reads
  the verdict. A failed group takes its pull request out of the queue, and GitHub says so on it.
- No approvals. The queue only takes a pull request whose own `paved/plan` passed, which needs every owner's
  approval of its head; the group's commit is GitHub's, made from those approved heads, and nobody reviews
  it. So the check concludes at once: success, or failure when the plan has errors.
- No record for `paved stats`, which counts the plans of pull requests.
After the group lands, its commit reaches the base branch by a push, which Paved applies as it applies any
merge (`bot.handlers.push`); the pull request is found by its merge commit, the group's head.
"""

from __future__ import annotations

import logging

from bot.errors import ConfigurationError
from bot.forge import CheckConclusion
from bot.handlers import Context
from bot.handlers.pull_request import (
    CHECK_NAME,
    PlanOutcome,
    errors_title,
    judge_change,
    plan_check,
    publish_unjudged,
)
from bot.webhook import MergeGroup

log = logging.getLogger(__name__)

# Conclusions a plan can have been published with; anything else (`in_progress`, ...) is not a verdict.
CONCLUDED = frozenset({"success", "failure", "neutral", "cancelled", "skipped", "action_required"})


def queue_refs(branch: str) -> str:
    """Every merge group branch of `branch`'s queue, for fetching (those gone since are pruned)."""
    return f"refs/heads/gh-readonly-queue/{branch}/*"


def plan_merge_group(ctx: Context, repo: str, group: MergeGroup, *, repo_url: str | None = None,
                     again: bool = False) -> PlanOutcome:
    """Plan merge group `group` and publish `paved/plan` on its head.

    A group the queue has destroyed since (its branch is gone, or holds another commit) is not planned:
    nothing would read the check. Unless `again`, a head that carries Paved's concluded check already (a
    redelivery) is not planned a second time: the head's commit, and the base it was built on, never change.
    """
    ctx.mirror.fetch(repo, [group.branch, queue_refs(group.branch)])
    if ctx.mirror.resolve(repo, group.head_ref) != group.head_sha:
        return PlanOutcome("skipped", f"the merge group {group.head_sha[:12]} has left the queue")
    if not again and ctx.forge.check_conclusion(repo, group.head_sha, CHECK_NAME) in CONCLUDED:
        return PlanOutcome("skipped", f"merge group {group.head_sha[:12]} is planned already")
    try:
        judged = judge_change(ctx, repo, group.branch, group.base_sha, group.head_sha)
    except ConfigurationError as exc:
        return publish_unjudged(ctx, repo, group.head_sha, group.branch, "merge group", exc)
    if judged is None:
        return PlanOutcome("skipped", f"{repo} is not a platform repo")
    plan = judged.planned.plan
    conclusion: CheckConclusion = "failure" if plan.errors else "success"
    if plan.errors:
        title = f"{errors_title(plan)}: these changes do not go together"
    else:
        title = "ready to merge" if plan.all_changes else "no changes"
    about = (f"Merge group `{group.head_ref.removeprefix('refs/heads/')}`: what merging it into `{group.branch}` "
             f"changes, from `{group.base_sha[:12]}` to `{group.head_sha[:12]}`, judged by the rules of "
             f"`{group.branch}` as they are now. Approvals are not asked again: the queue takes only pull "
             f"requests whose own `{CHECK_NAME}` passed.\n")
    ctx.lease.check()
    ctx.forge.publish_check(repo, plan_check(plan, group.head_sha, conclusion, title, about, repo_url))
    log.info("published plan for merge group %s of %s at %s: %s", group.head_ref, repo, group.head_sha[:12], title)
    return PlanOutcome("published", conclusion=conclusion, plan=plan)
