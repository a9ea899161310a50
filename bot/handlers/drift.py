"""Drift: compare what exists with the catalogue at the default branch's head, report it, heal it.

For every resource of a kind some provider makes, the provider observes what exists and plans the
steps to what the request asks; steps mean drift. Resources that changed since the last applied
commit and are not applied yet are pending, not drifted, unless their apply failed: then they are
reported with the error. A provider that cannot read one resource makes that resource's report,
not the whole check's failure. What the check observed is then scored against the platform's standards
and recorded in git (`bot.handlers.standards`), without a second round of observations.

Each drifted resource gets one issue on the platform repo (label `paved:drift`), naming its owning
team, edited in place at every check and closed with a comment when the drift is gone. A request
with `spec.drift: heal` is put back instead (`provider.apply`), and the heal is recorded in the
head commit's note like any apply. `reconcile_repo` is what reconcile runs for one repository: the
catch-up apply with its backoff, then this check, then reading the authors' ratings of recent applies
(`bot.handlers.feedback`). Callers hold the repository's lock.

Observing costs GitHub requests, out of an hourly budget that plans and applies share (5,000 for an App
installation). A check given a `Pacing` stops observing once what is left falls to its reserve, says what
it left, and the next check starts with those: see `Pacing`.
"""

from __future__ import annotations

import logging
from bisect import bisect_left
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from bot.apply import NOTES_REF, ApplyRecord, ProviderJob, Trigger, failure_message, provider_job
from bot.catalogue import judge
from bot.config import load_config
from bot.drift import LABEL, LABEL_COLOR, LABEL_DESCRIPTION, MAX_ATTEMPTS, Drift, attempts, failures, marked, mode_of
from bot.drift import title as issue_title
from bot.errors import PavedError
from bot.forge import Issue
from bot.handlers import Context
from bot.handlers.feedback import read_ratings
from bot.handlers.push import ApplyOutcome, apply_when_due, fetch_heads, head_records
from bot.handlers.standards import HEALED, LEFT, NO_PROVIDER, PENDING, record_scorecard, unread
from bot.model import MemoryTree, Resource, Tree
from bot.plan import plan_requests
from bot.provider import Provider, Result, Target
from bot.render.markdown import drift_issue, drift_resolved
from bot.rules import is_platform_repo, load_rules

if TYPE_CHECKING:
    from bot.adapters.github import RateLimit

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DriftReport:
    """What one check of one repository found and did. `skipped` says why it checked nothing."""

    repo: str
    revision: str = ""
    checked: int = 0
    drifts: tuple[Drift, ...] = ()
    healed: tuple[Result, ...] = ()
    pending: tuple[str, ...] = ()
    opened: tuple[int, ...] = ()
    updated: tuple[int, ...] = ()
    closed: tuple[int, ...] = ()
    skipped: str = ""
    issues: Mapping[str, int] = field(default_factory=dict)  # identity -> its open drift issue
    left: tuple[str, ...] = ()  # not observed, to keep the rest of the hour's requests (see `Pacing`)
    # The standards' scorecard, as (resources scored, of which failing one or more); None: not scored.
    standards: tuple[int, int] | None = None


@dataclass(slots=True)
class _Pending:
    """Where the head stands against the last applied commit: what is not applied yet, what failed."""

    identities: set[str] = field(default_factory=set)
    failed: dict[str, str] = field(default_factory=dict)  # identity -> its last apply's error
    gone: dict[str, Resource] = field(default_factory=dict)  # failed deletions: the request as it was
    record: ApplyRecord | None = None
    attempts: int = 0


# -- pacing by the forge's rate limit ------------------------------------------------------------------------

@runtime_checkable
class Metered(Protocol):
    """A forge that says what is left of its hourly budget of requests (GitHub's rate limit)."""

    def rate_limit(self) -> RateLimit: ...


# The most requests observing one resource takes (when GitHub's lists fit one page): a check stops this far
# above the reserve, so that the resource it observes as the budget runs low does not eat into it.
ONE_RESOURCE = 10


@dataclass
class Pacing:
    """How drift checks spend the forge's hourly budget of requests, which plans and applies share.

    Before each resource, a check reads what is left of the budget (from GitHub's last answer: no request),
    and stops observing once `reserve` (a share of the hourly limit) plus `ONE_RESOURCE` requests or fewer
    are left: what it did not observe is left unchecked (its drift issue, if any, stays as it was) and
    logged, and the next check of the repository starts with it (`resume_at`: the first identity left,
    by repository), going round the catalogue from there, so that no resource waits behind the same
    first ones at every check. Reconcile's search for platform repos stops at the same reserve
    (`affords`). Plans, applies and heals are never held back by it. A `Pacing` lives as long as the
    process that reconciles (see `bot.web.jobs`).
    """

    reserve: float = 0.2
    resume_at: dict[str, str] = field(default_factory=dict)

    def begin(self, repo: str, forge: object) -> PacedCheck:
        """One check of `repo`, paced by `forge`'s budget when the forge says what is left of it."""
        return PacedCheck(self, repo, forge if isinstance(forge, Metered) else None)

    def affords(self, forge: object, what: str) -> bool:
        """Whether what is left of `forge`'s budget affords one more resource's reads (`what`, for the log)
        above the reserve; a forge that does not say what is left always does."""
        if not isinstance(forge, Metered):
            return True
        try:
            budget = forge.rate_limit()
        except PavedError as exc:  # the reads themselves will say what is wrong with GitHub
            log.info("%s goes on unpaced: %s", what, exc.message)
            return True
        floor = budget.limit * self.reserve + ONE_RESOURCE
        if budget.remaining > floor:
            return True
        log.warning("%s stops with %d of %d GitHub requests left this hour, keeping %d for plans and applies "
                    "(the hour ends at %s)", what, budget.remaining, budget.limit, int(floor),
                    datetime.fromtimestamp(budget.resets_at, UTC).strftime("%H:%M:%S UTC"))
        return False


@dataclass
class PacedCheck:
    """One check's round of the catalogue under a `Pacing`: in what order, and what it left."""

    pacing: Pacing
    repo: str
    forge: Metered | None
    left: list[str] = field(default_factory=list)

    def in_turn(self, resources: Mapping[str, Resource]) -> list[tuple[str, Resource]]:
        """`resources` by identity, starting with the first that the repository's last check left."""
        ordered = sorted(resources.items())
        start = bisect_left([identity for identity, _ in ordered], self.pacing.resume_at.get(self.repo, ""))
        return ordered[start:] + ordered[:start]

    def out_of_budget(self, identity: str) -> bool:
        """Whether to leave `identity` unobserved: once one resource is, every next one is."""
        if self.left or (self.forge is not None and
                         not self.pacing.affords(self.forge, f"the drift check of {self.repo}")):
            self.left.append(identity)
            return True
        return False

    def finish(self) -> tuple[str, ...]:
        """End the check: remember where the next starts, say what was left, and return it."""
        if not self.left:
            self.pacing.resume_at.pop(self.repo, None)
            return ()
        self.pacing.resume_at[self.repo] = self.left[0]
        shown = ", ".join(self.left[:10]) + (f" and {len(self.left) - 10} more" if len(self.left) > 10 else "")
        log.warning("the drift check of %s left %d resources unchecked for the next one: %s", self.repo,
                    len(self.left), shown)
        return tuple(self.left)


def check_drift(ctx: Context, repo: str, *, now: datetime | None = None, heal_all: bool = False,
                trigger: Trigger = "heal", pacing: Pacing | None = None) -> DriftReport:
    """Check every resource of `repo`'s catalogue against what exists; heal, open, update and close issues.

    `heal_all` heals every drifted resource whatever its `spec.drift` says (`/paved retry`), and
    records it with `trigger`. With `pacing`, the check keeps its reserve of the forge's budget.
    """
    now = now or datetime.now(UTC)
    head, last, branch = fetch_heads(ctx, repo)
    if head is None:
        return DriftReport(repo, skipped=f"{repo} has no branch {branch}")
    head_tree = ctx.mirror.tree(repo, head)
    try:
        if not is_platform_repo(head_tree):
            return DriftReport(repo, head, skipped=f"{repo} is not a platform repo")
        config = load_config(head_tree, ctx.provider_schemas)
        rules = load_rules(head_tree)
        catalogue = judge(head_tree, rules, ctx.store)
        resources = catalogue.resources(catalogue.identities())
        pending = _pending(ctx, repo, head, last, head_tree)
        services = rules.described.parents_of_followers((r.kind, r.data) for r in resources.values())
        target = Target(organization=config.organization or repo.split("/", 1)[0], platform_repo=repo,
                        tree=head_tree, revision=head, followed=catalogue.followed(services), config=config,
                        history=ctx.history(repo, head))
        by_kind = {kind: p for p in ctx.providers for kind in p.kinds}
        drifts: list[Drift] = []
        unchecked: set[str] = set()
        healing: list[tuple[Drift, Resource, Provider]] = []
        observed: dict[str, Any] = {}  # identity -> what its provider read, for the standards
        skipped: dict[str, str] = {}  # identity -> why it was not observed
        checked = 0
        checking = [r for i, r in sorted(resources.items())
                    if r.kind in by_kind and i not in pending.identities]
        turn = (pacing or Pacing()).begin(repo, ctx.forge if pacing else None)
        with provider_job(ctx.providers, checking, target) as job:
            for identity, resource in turn.in_turn(resources):
                provider = by_kind.get(resource.kind)
                if provider is None or identity in pending.identities or turn.out_of_budget(identity):
                    unchecked.add(identity)
                    skipped[identity] = (NO_PROVIDER if provider is None else
                                         PENDING if identity in pending.identities else LEFT)
                    continue
                checked += 1
                drift, actual = _observe(job, provider, resource)
                if drift.unobserved:
                    skipped[identity] = unread(drift.unobserved)
                else:
                    observed[identity] = actual
                if identity in pending.failed:
                    drift = replace(drift, error=pending.failed[identity],
                                    pull_request=pending.record.pull_request if pending.record else None,
                                    attempts=pending.attempts, gave_up=pending.attempts >= MAX_ATTEMPTS)
                elif drift.steps and not drift.unobserved and (heal_all or drift.mode == "heal"):
                    healing.append((drift, resource, provider))
                    # What was read is what the heal changes: scored as it is at the next check.
                    observed.pop(identity, None)
                    skipped[identity] = HEALED
                    continue
                if drift.steps or drift.error or drift.unobserved:
                    drifts.append(drift)
            for identity, previous in sorted(pending.gone.items()):
                drifts.append(Drift(identity, previous.kind, previous.owner, mode_of(previous), path=previous.path,
                                    error=pending.failed[identity], attempts=pending.attempts,
                                    pull_request=pending.record.pull_request if pending.record else None,
                                    gave_up=pending.attempts >= MAX_ATTEMPTS))
            healed, failed_heals = _heal(ctx, repo, head, last, job, healing, now, trigger)
            drifts += failed_heals
    finally:
        head_tree.close()
    left = turn.finish()
    drifts.sort(key=lambda d: d.identity)
    _record(ctx, repo, head, last, drifts, now)
    opened, updated, closed, issues, links = _issues(ctx, repo, head, target.organization, drifts, healed,
                                                     unchecked, set(resources))
    standards = None
    try:
        card = record_scorecard(ctx, repo, head, rules, resources, observed, skipped,
                                {i: (n, links.get(i, "")) for i, n in issues.items()}, now)
        if card is not None:
            standards = (len(card.resources), sum(1 for r in card.resources if r.failed))
    except Exception:  # the standards' scorecard is a report: its failure must not fail the drift check
        log.exception("could not score the standards of %s at %s", repo, head[:12])
    log.info("drift in %s at %s: %d checked, %d drifted, %d healed, %d pending", repo, head[:12], checked,
             len(drifts), len(healed), len(pending.identities))
    return DriftReport(repo, head, checked, tuple(drifts), tuple(healed), tuple(sorted(pending.identities)),
                       opened, updated, closed, issues=issues, left=left, standards=standards)


def _pending(ctx: Context, repo: str, head: str, last: str | None, head_tree: Tree) -> _Pending:
    """What changed between the last applied commit and the head, and how the head's last attempt went."""
    found = _Pending()
    if last == head:
        return found
    base_tree: Tree = ctx.mirror.tree(repo, last) if last else MemoryTree({}, label="nothing applied yet")
    try:
        planned = plan_requests(base_tree, head_tree, store=ctx.store, rules=load_rules(head_tree))
    finally:
        base_tree.close()
    changed = {c.identity for c in planned.plan.all_changes} | set(planned.plan.refresh)
    tried = attempts(head_records(ctx, repo, head))
    done: set[str] = set()
    if tried:
        found.record, found.attempts = tried[-1], len(tried)
        found.failed = failures(tried[-1])
        done = {r.resource for r in tried[-1].results if r.status in ("applied", "unchanged")}
    found.identities = changed - done - set(found.failed)
    found.gone = {i: planned.before[i] for i in found.failed if i not in planned.after and i in planned.before}
    return found


def _observe(job: ProviderJob, provider: Provider, resource: Resource) -> tuple[Drift, Any]:
    """The resource's drift, and what its provider read of it (None when it was not read)."""
    drift = Drift(resource.identity, resource.kind, resource.owner, mode_of(resource), path=resource.path)
    try:
        actual = job.observe(provider, resource)
        steps = provider.plan(resource, actual, job.target, previous=resource)
    except Exception as exc:  # one resource a provider cannot read is that resource's report, not the run's end
        log.warning("could not observe %s", resource.identity, exc_info=not isinstance(exc, PavedError))
        return replace(drift, unobserved=failure_message(exc)), None
    return replace(drift, steps=tuple(steps)), actual


def _record(ctx: Context, repo: str, head: str, last: str | None, drifts: Sequence[Drift], now: datetime) -> None:
    """Note what the check found on the head when it differs from what was last noted there, so the
    catalogue's status (drifted or not) reads from git like everything else, without a note per check."""
    found = tuple(Result(d.identity, "drifted", "; ".join(s.description for s in d.steps) or d.error
                         or d.unobserved or "drifted") for d in drifts if d.steps or d.unobserved)
    noted = [r for r in head_records(ctx, repo, head) if r.trigger == "drift"]
    before = {(r.resource, r.message) for r in noted[-1].results} if noted else set()
    if {(r.resource, r.message) for r in found} == before:
        return
    record = ApplyRecord(revision=head, previous=last, applied_at=now.isoformat(timespec="seconds"),
                         plan_digest="", results=found, actions={r.resource: "drift" for r in found},
                         trigger="drift")
    ctx.mirror.append_note(repo, NOTES_REF, head, record.to_json())
    ctx.mirror.push(repo, [NOTES_REF])


def _heal(ctx: Context, repo: str, head: str, last: str | None, job: ProviderJob,
          healing: Sequence[tuple[Drift, Resource, Provider]], now: datetime,
          trigger: Trigger) -> tuple[list[Result], list[Drift]]:
    """Put back what drifted, record it in the head's note, and return what held and what did not."""
    results: list[Result] = []
    still: list[Drift] = []
    for drift, resource, provider in healing:
        try:
            result = job.apply(provider, resource, resource)
        except Exception as exc:  # as in `apply_plan`: a provider's fault stops only its own resource
            log.warning("could not heal %s", resource.identity, exc_info=not isinstance(exc, PavedError))
            result = Result(resource.identity, "failed", failure_message(exc))
        results.append(result)
        if result.status == "failed":
            still.append(replace(drift, error=result.message or "failed"))
    if results:
        record = ApplyRecord(revision=head, previous=last, applied_at=now.isoformat(timespec="seconds"),
                             plan_digest="", results=tuple(results), actions={r.resource: "heal" for r in results},
                             trigger=trigger)
        ctx.mirror.append_note(repo, NOTES_REF, head, record.to_json())
        ctx.mirror.push(repo, [NOTES_REF])
    return [r for r in results if r.status != "failed"], still


def _issues(ctx: Context, repo: str, head: str, organization: str, drifts: Sequence[Drift],
            healed: Sequence[Result], unchecked: set[str],
            present: set[str]) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...], dict[str, int],
                                        dict[str, str]]:
    """Open, update and close the drift issues so that exactly the drifted resources have an open one; the
    last two are each open issue's number and link, by identity."""
    existing: dict[str, Issue] = {}
    opened: list[int] = []
    updated: list[int] = []
    closed: list[int] = []
    for issue in sorted(ctx.forge.labelled_issues(repo, LABEL), key=lambda i: i.number):
        identity = marked(issue.body)
        if identity is None:
            continue  # labelled by a person, not written by Paved
        if identity in existing:  # two checks raced; the older issue is the one to keep
            ctx.forge.close_issue(repo, issue.number, f"A duplicate of #{existing[identity].number}.")
            closed.append(issue.number)
            continue
        existing[identity] = issue
    labelled = False
    numbers: dict[str, int] = {}
    links: dict[str, str] = {}
    for drift in drifts:
        title, body = issue_title(drift), drift_issue(drift, organization=organization, revision=head)
        found = existing.get(drift.identity)
        if found is None:
            if not labelled:
                ctx.forge.ensure_label(repo, LABEL, LABEL_COLOR, LABEL_DESCRIPTION)
                labelled = True
            made = ctx.forge.open_issue(repo, title, body, [LABEL])
            numbers[drift.identity], links[drift.identity] = made.number, made.url
            opened.append(made.number)
            continue
        numbers[drift.identity], links[drift.identity] = found.number, found.url
        if (found.title, found.body.replace("\r\n", "\n")) != (title, body):
            ctx.forge.update_issue(repo, found.number, title, body)
            updated.append(found.number)
    drifted = {d.identity for d in drifts}
    steps: Mapping[str, list[str]] = {r.resource: [s.description for s in r.steps] for r in healed}
    for identity, issue in existing.items():
        if identity in drifted or identity in unchecked:
            continue  # still drifted, or not looked at this time (pending, or no provider here)
        comment = drift_resolved(identity, revision=head, healed=steps.get(identity, ()),
                                 gone=identity not in present)
        ctx.forge.close_issue(repo, issue.number, comment)
        closed.append(issue.number)
    return tuple(opened), tuple(updated), tuple(closed), numbers, links


# -- reconcile, for one repository ---------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class RepoReconciled:
    """What reconcile did for one repository: the catch-up apply, then the drift check.

    `error` is set when either could not run (GitHub or git refused); the other still ran if it could.
    """

    repo: str
    applied: ApplyOutcome | None = None
    drift: DriftReport | None = None
    errors: tuple[str, ...] = ()

    @property
    def clean(self) -> bool:
        """Whether everything is as the catalogue asks (or was healed): nothing drifted, nothing failed, nothing
        left unchecked."""
        failed = self.applied is not None and self.applied.status in ("failed", "waiting", "gave up")
        return not self.errors and not failed and not (self.drift and (self.drift.drifts or self.drift.left))


def reconcile_repo(ctx: Context, repo: str, *, now: datetime | None = None, force: bool = False,
                   pacing: Pacing | None = None) -> RepoReconciled:
    """Apply a head that is not applied yet when a retry is due (`force`: now), then check for drift, paced
    by `pacing` (the apply never is)."""
    now = now or datetime.now(UTC)
    errors: list[str] = []
    applied: ApplyOutcome | None = None
    drift: DriftReport | None = None
    try:
        applied = apply_when_due(ctx, repo, ctx.providers, now=now, force=force)
    except PavedError as exc:
        errors.append(f"apply: {exc.message}")
    try:
        drift = check_drift(ctx, repo, now=now, pacing=pacing)
    except PavedError as exc:
        errors.append(f"drift check: {exc.message}")
    try:  # the authors' ratings of recent applies: cheap, and never a reason for reconcile to fail
        read_ratings(ctx, repo, now)
    except PavedError as exc:
        log.warning("could not read the ratings of %s: %s", repo, exc.message)
    return RepoReconciled(repo, applied, drift, tuple(errors))
