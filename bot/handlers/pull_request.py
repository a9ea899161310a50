"""Plan on every pull request: a `paved/plan` check run with annotations and one sticky comment.

Triggered by `pull_request` (opened, synchronize, reopened, ready_for_review), `pull_request_review`
(submitted), `check_run` (rerequested) and `/paved plan`. The plan compares the pull request's head
with its merge base, judged by the rules of the base branch as it is now, so that neither a stale
branch nor the pull request itself decides which rules apply.

Each published plan is also recorded in git, for `paved stats`: one JSON line appended to the note on
the head commit under `refs/notes/paved-plans` (see `bot.stats.PlanRecord`), pushed to the forge.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Literal

from bot.apply import provider_job
from bot.approvals import Authority, Requirement, label, parents, requirements, subjects, waiting_message
from bot.catalogue import judge
from bot.config import RepoConfig, load_config
from bot.errors import ConfigurationError, PavedError
from bot.forge import Annotation, CheckConclusion, CheckRun, PullRequest
from bot.handlers import Context
from bot.model import Plan, Tree
from bot.plan import PlannedRequests, plan_requests, proposed_rules, refuse_lost_data
from bot.provider import Target
from bot.render import markdown, text
from bot.render.wording import plural
from bot.rules import Rules, is_platform_repo, load_rules
from bot.stats import PLANS_REF, PlanRecord

log = logging.getLogger(__name__)

CHECK_NAME = "paved/plan"
# The check shows every finding as an annotation up to this many; the comment and the check's text
# say how many more there are.
MAX_ANNOTATIONS = 1000


@dataclass(frozen=True, slots=True)
class PlanOutcome:
    """What a plan job did: `published`, or `skipped` with the reason. A published plan that waits for
    approvals has no conclusion: its check stays in progress, which no required check lets through."""

    status: Literal["published", "skipped"]
    reason: str = ""
    conclusion: CheckConclusion | None = None
    plan: Plan | None = None
    pending: tuple[Requirement, ...] = ()

    @property
    def verdict(self) -> str:
        """The check's conclusion, or `waiting` while it waits for approvals."""
        return self.conclusion or ("waiting" if self.pending else "")


def _approval_section(pending: list[Requirement], satisfied: list[Requirement]) -> str:
    if not pending and not satisfied:
        return ""
    lines = ["", "### Approvals", ""]
    for r in satisfied:
        lines.append(f"- ✅ {label(r)}: approved by {', '.join(f'`{p}`' for p in r.approved_by)}")
    for r in pending:
        who = (f"an approving review of this head from one of {', '.join(f'`{p}`' for p in r.approvers)}"
               if r.approvers else "nobody can approve yet: name the platform owners in `paved.yaml` "
                                   "(`approvals.platformOwners`) or give a team admin permission on this repository")
        lines.append(f"- ⏳ {label(r)} for {', '.join(f'`{i}`' for i in r.resources)} — {who}")
        if r.note:
            lines.append(f"  - {r.note}")
    lines += ["", "Who approves comes from the catalogue on the base branch, never from this pull request; "
              "an approval counts for the head it was given on."]
    return "\n".join(lines) + "\n"


def may_approve(ctx: Context, repo: str, login: str) -> bool:
    """Whether a review by `login` can change a plan: someone who may write to the platform repo, or
    a person the catalogue on the default branch names in a team. Anyone else's review (a reader's) is
    not worth a plan."""
    from bot.forge import at_least

    if at_least(ctx.forge.permission_of(repo, login), "write"):
        return True
    branch = ctx.forge.default_branch(repo)
    ctx.mirror.fetch(repo, [branch])
    tree = ctx.mirror.tree(repo, f"refs/heads/{branch}")
    try:
        if not is_platform_repo(tree):
            return False
        catalogue = judge(tree, load_rules(tree), ctx.store)
        people = catalogue.people(catalogue.teams())
    except ConfigurationError:
        return False
    finally:
        tree.close()
    return any(login.lower() == p.lower() for team in people.values() for p in team)


def planned_marker(head_sha: str, base_sha: str) -> str:
    """The hidden line that ends a plan comment: which head it planned, judged by which base commit."""
    return f"<!-- paved:planned {head_sha} {base_sha} -->"


def is_planned(ctx: Context, repo: str, number: int, head_sha: str, base_sha: str | None = None) -> bool:
    """Whether Paved's plan comment on #`number` is for `head_sha` (and, when given, judged by `base_sha`).
    The comment is published after the check, so a comment for the head means both are there.

    Only the comment's last line counts, where Paved writes the marker: the plan above it quotes what
    requests say, and a request that spelt out a marker must not make a head look planned."""
    body = ctx.forge.own_comment(repo, number, markdown.MARKER) or ""
    last = body.rstrip("\n").rpartition("\n")[2]
    if base_sha:
        return last == planned_marker(head_sha, base_sha)
    return last.startswith(f"<!-- paved:planned {head_sha} ") and last.endswith(" -->")


def plan_pull_request(ctx: Context, repo: str, number: int, *, head_sha: str | None = None,
                      again: bool = True) -> PlanOutcome:
    """Plan pull request `number` and publish the check run and comment.

    `head_sha` is the head the triggering event saw; when the pull request has moved on since, this
    job is superseded by the one for the newer head and publishes nothing. Unless `again`, a head whose
    plan is published already, judged by the base branch as it is now, is not planned a second time
    (a storm of redelivered or replayed triggers costs one plan); a person asking (`/paved plan`, a
    re-run of the check) and a review plan again.
    """
    pr = ctx.forge.pull_request(repo, number)
    if pr.state != "open":
        return PlanOutcome("skipped", "the pull request is closed")
    if head_sha is not None and pr.head_sha != head_sha:
        return PlanOutcome("skipped", f"superseded: the head is now {pr.head_sha[:12]}")
    ctx.mirror.fetch(repo, [pr.base_ref, f"refs/pull/{number}/head"])
    base_sha = ctx.mirror.resolve(repo, f"refs/heads/{pr.base_ref}") or ""
    if not again and is_planned(ctx, repo, number, pr.head_sha, base_sha):
        return PlanOutcome("skipped", f"{pr.head_sha[:12]} is planned already against {base_sha[:12]}")
    try:
        judged = judge_change(ctx, repo, pr.base_ref, ctx.mirror.merge_base(repo, f"refs/heads/{pr.base_ref}",
                                                                           pr.head_sha), pr.head_sha,
                              reviewed_at=pr.base_sha)
    except ConfigurationError as exc:
        return publish_unjudged(ctx, repo, pr.head_sha, pr.base_ref, "pull request", exc)
    if judged is None:
        return PlanOutcome("skipped", f"{repo} is not a platform repo")
    assert judged.authority is not None
    return publish(ctx, pr, judged.planned, judged.authority, judged.config, judged.steps, base_sha=base_sha)


@dataclass(frozen=True, slots=True)
class Judged:
    """A change judged by the rules of the branch it would land on: its plan and that branch's settings; for
    a change people review, also who must approve it and what the providers would do, read live."""

    planned: PlannedRequests
    config: RepoConfig
    authority: Authority | None = None
    steps: dict[str, list[str]] = field(default_factory=dict)


def judge_change(ctx: Context, repo: str, branch: str, base: str, head: str, *,
                 reviewed_at: str | None = None) -> Judged | None:
    """Plan the change from commit `base` to commit `head` (both fetched) by the rules and settings of
    `branch` as it is now, so that the change itself never decides which rules judge it; None when `branch`
    is not a platform repo's. `reviewed_at` (the commit a pull request was opened on) asks for who approves
    and what providers would do; a change nobody reviews (a merge group) needs neither. Raises
    `ConfigurationError` when `branch`'s own rules are broken."""
    target = ctx.mirror.tree(repo, f"refs/heads/{branch}")
    if not is_platform_repo(target):
        target.close()
        return None
    before = ctx.mirror.tree(repo, base)
    after = ctx.mirror.tree(repo, head)
    try:
        config = load_config(target, ctx.provider_schemas)
        rules = load_rules(target)
        planned = plan_requests(before, after, store=ctx.store, rules=rules)
        planned = replace(planned, plan=proposed_rules(planned.plan, target, after, rules, ctx.store))
        planned = refuse_lost_data(planned, after, ctx.losing_data(config))
        if reviewed_at is None:
            return Judged(planned, config)
        return Judged(planned, config, base_authority(ctx, repo, config, target, rules, planned),
                      live_steps(ctx, repo, config, planned, target, reviewed_at))
    finally:
        for tree in (target, before, after):
            tree.close()


def publish_unjudged(ctx: Context, repo: str, head_sha: str, branch: str, what: str,
                     exc: ConfigurationError) -> PlanOutcome:
    """The platform's own rules are broken: say so on the `paved/plan` check of `head_sha` instead of judging
    the `what` (a pull request, a merge group) unfairly."""
    ctx.lease.check()
    ctx.forge.publish_check(repo, CheckRun(
        CHECK_NAME, head_sha, "failure", f"Paved cannot judge this {what}",
        f"The rules on `{branch}` are broken: {exc.message}" + (f"\n\n{exc.hint}" if exc.hint else "")))
    return PlanOutcome("published", f"rules broken: {exc.message}", "failure")


def base_authority(ctx: Context, repo: str, config: RepoConfig, target: Tree, rules: Rules,
                   planned: PlannedRequests) -> Authority:
    """Who decides about `planned`, as the base branch (`target`, as it is now) names them."""
    catalogue = judge(target, rules, ctx.store)
    kinds = rules.described
    identities, teams = subjects(planned.plan.all_changes, planned.after, kinds)
    resources = catalogue.resources(identities)
    teams |= {r.owner for r in resources.values()} | {r.name for r in resources.values() if r.kind == kinds.team}
    above = parents(kinds, *resources.values())
    resources.update(catalogue.resources(above - set(resources)))
    teams |= {r.owner for r in resources.values()}
    people = catalogue.people(teams)
    platform_owners: dict[str, tuple[str, ...]] = {}
    # The platform owners approve rule changes and stand in for teams nobody is in: only then is GitHub
    # asked who they are.
    if planned.plan.rule_changes or not all(people.get(t) for t in teams):
        if config.platform_owners:
            owners = catalogue.people(config.platform_owners)
            platform_owners = {f"team {t}": owners.get(t, ()) for t in config.platform_owners}
        else:
            platform_owners = {f"team {t} (admin of {repo})": members
                               for t, members in ctx.forge.admin_teams(repo).items()}
    return Authority(resources=resources, tiers=catalogue.tiers(resources), people=people,
                     platform_owners=platform_owners, kinds=kinds)


# Live state is read for at most this many changes; a larger pull request says the rest are not read.
MAX_OBSERVED = 50


def live_steps(ctx: Context, repo: str, config: RepoConfig, planned: PlannedRequests, tree: Tree,
               revision: str) -> dict[str, list[str]]:
    """What the providers would do for each change, computed against live state: identity -> lines."""
    by_kind = {kind: p for p in ctx.providers for kind in p.kinds}
    if not by_kind:
        return {}
    target = Target(organization=config.organization or repo.split("/", 1)[0], platform_repo=repo, tree=tree,
                    revision=revision, followed=dict(planned.plan.followed), config=config)
    found: dict[str, list[str]] = {}
    # Unchanged resources that apply again (a database whose service gained an environment) count too.
    subjects = [(c.identity, c.kind, c.action == "delete", planned.before.get(c.previous_identity))
                for c in planned.plan.all_changes]
    subjects += [(i, i.split("/", 1)[0], False, planned.after.get(i)) for i in planned.plan.refresh]
    read = subjects[:MAX_OBSERVED]
    resources = [r for i, _, _, previous in read if (r := planned.after.get(i) or previous) is not None]
    with provider_job(ctx.providers, resources, target) as job:
        for identity, kind, deleted, previous in read:
            provider = by_kind.get(kind)
            desired = planned.after.get(identity)
            subject = desired or previous
            if subject is None:
                continue
            if provider is None:
                found[identity] = [f"nothing: no provider makes {kind} resources here"]
                continue
            try:
                steps = provider.plan(None if deleted else desired, job.observe(provider, subject), target,
                                      previous=previous)
            except PavedError as exc:
                found[identity] = [f"live state could not be read: {exc.message}"]
                continue
            found[identity] = [("⚠️ " if step.destructive else "") + step.description for step in steps] or [
                "nothing: live state already matches"]
    if len(subjects) > MAX_OBSERVED:
        found["…"] = [f"{plural(len(subjects) - MAX_OBSERVED, 'more change', 'more changes')}: live state not read"]
    return found


def _steps_section(steps: dict[str, list[str]]) -> str:
    if not steps:
        return ""
    lines = ["", "### What Paved will do after merge", "",
             "Computed against what exists now; applied in the order above when this merges.", ""]
    for identity, described in steps.items():
        lines.append(f"- `{identity}`: " + "; ".join(described))
    return "\n".join(lines) + "\n"


def publish(ctx: Context, pr: PullRequest, planned: PlannedRequests, authority: Authority, config: RepoConfig,
            steps: dict[str, list[str]] | None = None, *, base_sha: str = "") -> PlanOutcome:
    """Publish a plan on its pull request, unless the pull request moved on while it was made: the check,
    then the comment, which ends with `planned_marker` (so a comment for the head means both are there)."""
    plan = planned.plan
    reviews = ctx.forge.reviews(pr.repo, pr.number)
    needed = requirements(plan.all_changes, planned.after, authority, reviews, pr.author, pr.head_sha,
                          guarded=config.approval_tiers, rule_changes=plan.rule_changes)
    pending = [r for r in needed if not r.satisfied]
    satisfied = [r for r in needed if r.satisfied]

    current = ctx.forge.pull_request(pr.repo, pr.number)
    if current.head_sha != pr.head_sha:
        return PlanOutcome("skipped", f"superseded: the head is now {current.head_sha[:12]}")

    # Waiting is never a conclusion: GitHub lets a required check through when it is neutral or skipped,
    # so until the owners approve, the check stays in progress and the merge button stays blocked.
    conclusion: CheckConclusion | None
    if plan.errors:
        conclusion = "failure"
        title = errors_title(plan)
    elif pending:
        conclusion = None
        title = waiting_message(pending)
    else:
        conclusion = "success"
        title = "ready to merge" if plan.all_changes else "no changes"
    approvals = _steps_section(steps or {}) + _approval_section(pending, satisfied)
    # A job that lost the pull request's lease (another took it after it expired) publishes nothing.
    ctx.lease.check()
    ctx.forge.publish_check(pr.repo, plan_check(plan, pr.head_sha, conclusion, title, approvals, _web_url(pr)))
    planned_line = planned_marker(pr.head_sha, base_sha)
    comment = markdown.render(plan, repo_url=_web_url(pr), limit=65_536 - len(approvals) - len(planned_line) - 16)
    ctx.lease.check()
    ctx.forge.upsert_comment(pr.repo, pr.number, markdown.MARKER,
                             comment.rstrip("\n") + "\n" + approvals + "\n" + planned_line + "\n")
    log.info("published plan for %s#%d at %s: %s", pr.repo, pr.number, pr.head_sha[:12], title)
    record_plan(ctx, pr, plan)
    return PlanOutcome("published", conclusion=conclusion, plan=plan, pending=tuple(pending))


def plan_check(plan: Plan, head_sha: str, conclusion: CheckConclusion | None, title: str, more: str,
               repo_url: str | None) -> CheckRun:
    """The `paved/plan` check run of `plan` on `head_sha`: the plan's summary, then `more` (Markdown) in
    its summary; its text; each finding with a line as an annotation, up to `MAX_ANNOTATIONS`."""
    summary = markdown.render(plan, repo_url=repo_url, limit=60_000).split("\n", 3)[1]
    annotations = tuple(Annotation.of(f) for f in plan.findings[:MAX_ANNOTATIONS] if f.line > 0)
    body = text.render(plan)
    if len(plan.findings) > MAX_ANNOTATIONS:
        unannotated = len(plan.findings) - MAX_ANNOTATIONS
        body += f"\n{plural(unannotated, 'more finding')} {'is' if unannotated == 1 else 'are'} not annotated.\n"
    return CheckRun(CHECK_NAME, head_sha, conclusion, title, summary + "\n" + more, "```\n" + body + "```\n",
                    annotations)


def errors_title(plan: Plan) -> str:
    return f"{len(plan.errors)} error{'s' if len(plan.errors) != 1 else ''} to fix"


def record_plan(ctx: Context, pr: PullRequest, plan: Plan) -> None:
    """Append the plan's record to the head commit's note under `refs/notes/paved-plans` and push it.

    Best effort: the plan on the pull request is what people wait for, so a note that cannot be
    written or pushed is logged and left out of the statistics. The push merges the forge's notes
    into the mirror's (every record of both kept) and never forces, so plans recorded at the same
    instant by several workers all count.
    """
    record = PlanRecord.of(plan, pull_request=pr.number, head=pr.head_sha, opened_at=pr.created_at,
                           author=pr.author, planned_at=datetime.now(UTC).isoformat(timespec="seconds"))
    try:
        ctx.mirror.append_note(pr.repo, PLANS_REF, pr.head_sha, record.to_json())
        ctx.mirror.push(pr.repo, [PLANS_REF])
    except Exception as exc:  # whatever git says (or GitPython raises), the published plan stands
        log.warning("could not record the plan for %s#%d at %s in %s: %s", pr.repo, pr.number,
                    pr.head_sha[:12], PLANS_REF, exc)


def _web_url(pr: PullRequest) -> str | None:
    """The repository's web address, from the pull request's (`…/owner/name/pull/7`)."""
    marker = f"/{pr.repo}/pull/"
    return pr.url.split(marker)[0] + f"/{pr.repo}" if marker in pr.url else None
