"""Which use case a webhook delivery calls: one place that maps events to handlers.

Everything not listed is acknowledged and ignored. The service's queue, `paved worker` and
`paved ci` all call `route`, so an event means the same thing wherever Paved runs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from bot.handlers import Context
from bot.handlers.drift import check_drift
from bot.handlers.issue_comment import RetryAnswer, on_comment
from bot.handlers.merge_group import plan_merge_group
from bot.handlers.pull_request import CHECK_NAME, may_approve, plan_pull_request
from bot.handlers.push import apply_default_branch, apply_summary
from bot.model import Plan
from bot.webhook import Delivery, merge_group_of

log = logging.getLogger(__name__)

PLAN_ACTIONS = frozenset({"opened", "synchronize", "reopened", "ready_for_review"})
# Apply outcomes after which nothing (more) was applied though the head asked for it.
FAILED_APPLIES = frozenset({"failed", "refused", "gave up"})


@dataclass(frozen=True, slots=True)
class Routed:
    """What a delivery led to, in one line for the delivery log; `plan` is the plan it published, if one.

    `failed` says the job did not do what it was for (an apply or a retry that failed or was refused), and
    `report` is Markdown saying what an apply did, for a page a person reads (the job's summary in Actions).
    """

    handler: str
    result: str
    plan: Plan | None = None
    failed: bool = False
    report: str = ""


def retry_apply(ctx: Context, repo: str, number: int) -> RetryAnswer:
    """`/paved retry`: apply the default branch again, for a merged pull request; the answer to post.

    It applies at once, whatever the backoff of automatic retries says, and also after Paved stopped
    retrying. When the head is applied already, it puts back whatever has drifted from the catalogue
    (as `spec.drift: heal` would), which is what the drift issues offer it for.
    """
    pr = ctx.forge.pull_request(repo, number)
    if not pr.merged:
        return RetryAnswer("`/paved retry` applies merged pull requests again; this one is not merged yet.")
    outcome = apply_default_branch(ctx, repo, ctx.providers, trigger="retry")
    if outcome.status == "up to date":
        report = check_drift(ctx, repo, heal_all=True, trigger="retry")
        if report.healed:
            names = ", ".join(f"`{r.resource}`" for r in report.healed)
            return RetryAnswer(f"`{outcome.revision[:12]}` was applied already; put back what had drifted "
                               f"from the catalogue: {names}.")
        if report.drifts:
            names = ", ".join(f"`{d.identity}`" for d in report.drifts)
            return RetryAnswer(f"Nothing to retry: `{outcome.revision[:12]}` is already applied, but these still "
                               f"differ from the catalogue (see their `paved:drift` issues): {names}.")
        return RetryAnswer(f"Nothing to retry: `{outcome.revision[:12]}` is already applied.")
    return RetryAnswer(f"Applied again: {outcome.status}{' — ' + outcome.reason if outcome.reason else ''}.",
                       failed=outcome.status in FAILED_APPLIES)


def plan_subject(delivery: Delivery) -> str | None:
    """What a delivery's job will plan (`plan owner/name#number`), when it surely plans that pull request
    and does nothing else; None otherwise. A plan job plans the pull request's head as it is when the job
    runs, so while one waits in the queue it answers every later such trigger for the same pull request.

    Only changes to the pull request itself qualify: a review or a `/paved plan` comment may turn out to
    plan nothing (a reader's), and a trigger absorbed into a job that plans nothing would go unanswered.
    """
    payload, repo = delivery.payload, delivery.repository
    if delivery.event != "pull_request" or delivery.action not in PLAN_ACTIONS:
        return None
    pr = payload.get("pull_request") or {}
    number = pr.get("number")
    return f"plan {repo}#{number}" if repo and isinstance(number, int) and not pr.get("draft") else None


def route(ctx: Context, delivery: Delivery, *, bot_login: str | None = None) -> Routed:
    payload, repo = delivery.payload, delivery.repository
    if repo is None:
        return Routed("ignored", f"{delivery.kind} names no repository")
    if delivery.event == "pull_request" and delivery.action in PLAN_ACTIONS:
        pr = payload["pull_request"]
        if pr.get("draft"):
            return Routed("ignored", "draft pull requests are planned when they are ready for review")
        # The head as it is now, not the delivery's: later triggers for this pull request may have been
        # absorbed into this job while it waited (see `plan_subject`).
        # A head planned already against the same base is not planned again: GitHub's redeliveries and
        # replays of these events otherwise cost a plan each.
        outcome = plan_pull_request(ctx, repo, int(pr["number"]), again=False)
        return Routed("plan", f"{outcome.status} {outcome.reason or outcome.verdict}".strip(), outcome.plan)
    if delivery.kind in ("pull_request_review.submitted", "pull_request_review.dismissed"):
        review = payload.get("review") or {}
        reviewer = str((review.get("user") or {}).get("login") or "")
        if str(review.get("state") or "").lower() == "commented":
            return Routed("ignored", "a review that only comments changes no approval")
        if not reviewer or not may_approve(ctx, repo, reviewer):
            return Routed("ignored", f"{reviewer or 'someone'} may neither write here nor approve for a team")
        outcome = plan_pull_request(ctx, repo, int(payload["pull_request"]["number"]))
        return Routed("plan", f"{outcome.status} {outcome.reason or outcome.verdict}".strip(), outcome.plan)
    if delivery.kind == "check_run.rerequested":
        run = payload["check_run"]
        if run.get("name") != CHECK_NAME:
            return Routed("ignored", f"check {run.get('name')} is not Paved's")
        numbers = [int(p["number"]) for p in run.get("pull_requests") or []] or [
            pr.number for pr in ctx.forge.open_pull_requests(repo) if pr.head_sha == run["head_sha"]]
        results = [plan_pull_request(ctx, repo, n, head_sha=run["head_sha"]).status for n in numbers]
        return Routed("plan", ", ".join(results) or "no open pull request has that head")
    if delivery.event == "push":
        branch = (payload.get("repository") or {}).get("default_branch")
        if payload.get("ref") != f"refs/heads/{branch}" or payload.get("deleted"):
            return Routed("ignored", f"pushes to {payload.get('ref')} are not applied")
        applied = apply_default_branch(ctx, repo, ctx.providers)
        report = apply_summary(applied.record) if applied.record is not None else applied.reason
        return Routed("apply", f"{applied.status} {applied.revision[:12]} {applied.reason}".strip(),
                      failed=applied.status in FAILED_APPLIES, report=report)
    if delivery.event == "merge_group":
        if delivery.action != "checks_requested":
            return Routed("ignored", f"a merge group {delivery.action or 'event'} needs no plan")
        group = merge_group_of(delivery)
        if group is None:
            return Routed("ignored", "the delivery names no merge group of a merge queue")
        web = (payload.get("repository") or {}).get("html_url")
        web = web if isinstance(web, str) and web.startswith(("https://", "http://")) else None
        outcome = plan_merge_group(ctx, repo, group, repo_url=web)
        return Routed("plan", f"{outcome.status} {outcome.reason or outcome.verdict}".strip(), outcome.plan)
    if delivery.event == "issue_comment":
        answered = on_comment(ctx, payload, bot_login=bot_login, retry=retry_apply)
        return Routed("comment", f"{answered.status} {answered.detail}".strip(), answered.plan,
                      failed=answered.failed)
    return Routed("ignored", f"Paved does nothing on {delivery.kind}")
