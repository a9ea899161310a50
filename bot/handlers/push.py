"""Apply after merge: what changed on the default branch since the last applied commit becomes real.

Triggered by a `push` to the default branch, by `/paved retry` and by reconcile. The plan runs from
the last applied commit (`refs/paved/applied`; nothing yet on the first run) to the branch's head,
judged by the head's rules, and providers apply it. The outcome is recorded in git: a note on the
applied commit (`refs/notes/paved`) and, when everything held, `refs/paved/applied` moves to it. A
`paved/apply` check run on the commit and one comment on the merged pull request report it. Callers
hold the repository's lease (`ctx.lease`), so applies for one repo never overlap, and an apply that lost
it stops before its next write (`LeaseLost`); the applied ref only moves from where this apply found it.

The note is written (and pushed) before anything reports it, and each reporting step (the check, the
applied ref, the comment, found again by its marker) can be taken again without harm. So a Paved killed
anywhere after the note finishes on restart what it started: an apply that finds a successful record
the applied ref has not caught up with reports it and moves the ref, without running the providers
again, and an applied head whose comment is missing gets it. A Paved killed before the note applies
again, which the providers make harmless (they observe first and change only what differs).

A head that failed to apply is retried by reconcile (`apply_when_due`) on the backoff `bot.drift`
sets, counted from the attempts recorded in its note. Those retries stay quiet on the pull request
unless they succeed; after the last one fails, one comment says that Paved stopped retrying and why.
`/paved retry` applies at once, whatever the backoff says.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Literal

from bot.apply import APPLIED_REF, NOTES_REF, ApplyRecord, Trigger, apply_plan, plan_digest, read_records
from bot.approvals import approvals_in_force
from bot.config import load_config
from bot.drift import BACKOFF, MAX_ATTEMPTS, attempts, retry_state
from bot.errors import PavedError
from bot.forge import CheckRun, PullRequest
from bot.golden_paths import following
from bot.handlers import Context, feedback
from bot.model import MemoryTree, Tree
from bot.plan import PlannedRequests, plan_requests, refuse_lost_data
from bot.provider import Provider, Result, Target
from bot.render.wording import plural
from bot.rules import KINDS_DIR, is_platform_repo, load_rules
from bot.satisfaction import invitation

log = logging.getLogger(__name__)

CHECK_NAME = "paved/apply"
ICONS = {"applied": "✅", "unchanged": "➖", "failed": "❌", "skipped": "⏭️"}
ALARM_LABEL = "paved:alarm"
ALARM_MARKER = "<!-- paved:alarm applied -->"


class AppliedRefRefused(PavedError):
    """Raised when `refs/paved/applied` points somewhere Paved did not put it (a push by someone else, or
    history rewritten under it): nothing is applied from it until a person looks."""


def applied_marker(revision: str) -> str:
    """The hidden first line of the one comment saying how applying `revision` went."""
    return f"<!-- paved:applied {revision} -->"


def gave_up_marker(revision: str) -> str:
    """The hidden first line of the one comment saying Paved stopped retrying `revision`."""
    return f"<!-- paved:gave-up {revision} -->"


@dataclass(frozen=True, slots=True)
class ApplyOutcome:
    """What became of applying the default branch's head. `waiting`: a retry is not due yet; `gave up`:
    every automatic attempt failed. `attempts` counts the failed attempts on `revision` so far."""

    status: Literal["applied", "failed", "up to date", "refused", "waiting", "gave up"]
    revision: str
    record: ApplyRecord | None = None
    reason: str = ""
    attempts: int = 0


def _results_markdown(record: ApplyRecord) -> str:
    lines = ["| | resource | result | links |", "|---|---|---|---|"]
    for r in record.results:
        links = ", ".join(f"[{k}]({v})" if v.startswith("http") else f"{k}: `{v}`" for k, v in r.outputs.items())
        result = f"{r.status}: {r.message.replace('|', '/')}" if r.message else r.status
        lines.append(f"| {ICONS.get(r.status, '')} | `{r.resource}` | {result} | {links} |")
    return "\n".join(lines) + "\n"


def fetch_heads(ctx: Context, repo: str) -> tuple[str | None, str | None, str]:
    """The default branch's head and the last applied commit, fetched into the mirror with the notes.

    Anyone who may push to the platform repo can move `refs/paved/applied`, and what it points at is
    what the next apply compares with (what is gone from it gets deleted). So it is believed only when
    it is an ancestor of the default branch and carries Paved's own successful `paved/apply` check run
    (which only Paved's App can publish); otherwise `AppliedRefRefused`.
    """
    branch = ctx.forge.default_branch(repo)
    ctx.mirror.fetch(repo, [branch])
    ctx.mirror.fetch_if_present(repo, APPLIED_REF)
    ctx.mirror.fetch_if_present(repo, NOTES_REF)
    head, last = ctx.mirror.resolve(repo, f"refs/heads/{branch}"), ctx.mirror.resolve(repo, APPLIED_REF)
    if head is not None and last is not None:
        _verify_applied(ctx, repo, branch, head, last)
    return head, last, branch


def _verify_applied(ctx: Context, repo: str, branch: str, head: str, last: str) -> None:
    try:
        on_branch = last == head or ctx.mirror.merge_base(repo, last, head) == last
    except PavedError:
        on_branch = False
    if not on_branch:
        raise AppliedRefRefused(f"{APPLIED_REF} points at {last[:12]}, which is not in the history of {branch}: "
                                "someone other than Paved moved it, or the branch's history was rewritten")
    if ctx.forge.check_conclusion(repo, last, CHECK_NAME) != "success":
        raise AppliedRefRefused(f"{APPLIED_REF} points at {last[:12]}, which Paved never recorded as applied "
                                f"(it carries no successful {CHECK_NAME} check of Paved's): someone other than "
                                "Paved moved it")


def raise_alarm(ctx: Context, repo: str, head: str, reason: str) -> None:
    """Stop applying, loudly: the `paved/apply` check on the head and one open issue on the platform repo
    say why and what a platform owner does about it."""
    ctx.forge.publish_check(repo, CheckRun(CHECK_NAME, head, "failure", "Paved stopped applying: the applied "
                                           "state is not Paved's", reason))
    body = (f"{ALARM_MARKER}\n{reason}.\n\nPaved applies what changed since `{APPLIED_REF}`, and deletes what is "
            "gone from it, so it will not apply anything while that ref is not what Paved itself recorded. "
            "Nothing was created, changed or deleted.\n\nTo resume, a platform owner checks who moved the ref "
            f"(the repository's audit log), then points it back at the last commit whose `{CHECK_NAME}` check "
            f"Paved marked successful (`git push --force origin <commit>:{APPLIED_REF}`), or deletes it so that "
            "Paved applies the whole catalogue again (creating what is missing, deleting nothing). Protect "
            "`refs/paved/*` so that only Paved may push there (see SECURITY.md).")
    title = "Paved stopped applying: refs/paved/applied was moved by someone other than Paved"
    ctx.forge.ensure_label(repo, ALARM_LABEL, "b60205", "Paved stopped acting: a person must look")
    found = next((i for i in ctx.forge.labelled_issues(repo, ALARM_LABEL) if i.body.startswith(ALARM_MARKER)), None)
    if found is None:
        ctx.forge.open_issue(repo, title, body, [ALARM_LABEL])
    elif found.body != body:
        ctx.forge.update_issue(repo, found.number, title, body)
    log.error("not applying %s: %s", repo, reason)


def _heads(ctx: Context, repo: str) -> tuple[str | None, str | None, str] | ApplyOutcome:
    """`fetch_heads`, or the refusal (with the alarm raised) when the applied ref cannot be believed."""
    try:
        return fetch_heads(ctx, repo)
    except AppliedRefRefused as refused:
        branch = ctx.forge.default_branch(repo)
        head = ctx.mirror.resolve(repo, f"refs/heads/{branch}") or ""
        if head:
            raise_alarm(ctx, repo, head, refused.message)
        return ApplyOutcome("refused", head, reason=refused.message)


def head_records(ctx: Context, repo: str, head: str) -> list[ApplyRecord]:
    """The applies recorded on `head` (fetched already), oldest first."""
    return read_records(ctx.mirror.note(repo, NOTES_REF, head))


def apply_default_branch(ctx: Context, repo: str, providers: Sequence[Provider], *, trigger: Trigger = "merge",
                         now: datetime | None = None) -> ApplyOutcome:
    """Apply the default branch's head; safe to run again (an applied head is up to date)."""
    heads = _heads(ctx, repo)
    if isinstance(heads, ApplyOutcome):
        return heads
    head, last, branch = heads
    if head is None:
        return ApplyOutcome("refused", "", reason=f"{repo} has no branch {branch}")
    if last == head:
        _report_comment(ctx, repo, head)
        return ApplyOutcome("up to date", head)
    finished = _finish_reporting(ctx, repo, last, head)
    if finished is not None and finished.revision == head:
        return finished
    last = finished.revision if finished is not None else last
    earlier = len(attempts(head_records(ctx, repo, head)))
    return _apply(ctx, repo, head, last, providers, trigger, now or datetime.now(UTC), earlier)


def apply_when_due(ctx: Context, repo: str, providers: Sequence[Provider], *, now: datetime,
                   force: bool = False) -> ApplyOutcome:
    """Reconcile's catch-up: apply a head that is not applied yet, when the backoff says a retry is due
    (`force`: now, whatever it says). A head nobody tried yet (a lost delivery) is due at once, and one
    whose apply a killed Paved left unreported is reported."""
    heads = _heads(ctx, repo)
    if isinstance(heads, ApplyOutcome):
        return heads
    head, last, branch = heads
    if head is None:
        return ApplyOutcome("refused", "", reason=f"{repo} has no branch {branch}")
    if last == head:
        _report_comment(ctx, repo, head)
        return ApplyOutcome("up to date", head)
    finished = _finish_reporting(ctx, repo, last, head)
    if finished is not None and finished.revision == head:
        return finished
    last = finished.revision if finished is not None else last
    records = head_records(ctx, repo, head)
    state = retry_state(records, now)
    tried = attempts(records)
    if not force and state.status == "waiting" and state.next_at is not None:
        return ApplyOutcome("waiting", head, tried[-1], attempts=state.attempts,
                            reason=f"attempt {state.attempts + 1} of {MAX_ATTEMPTS} is due at "
                                   f"{state.next_at.isoformat(timespec='seconds')}")
    if not force and state.status == "exhausted":
        return ApplyOutcome("gave up", head, tried[-1], attempts=state.attempts,
                            reason=f"{state.attempts} attempts failed; `/paved retry` applies again")
    return _apply(ctx, repo, head, last, providers, "reconcile", now, state.attempts)


# How far back from the head an apply looks for one a killed Paved recorded but did not finish reporting:
# merges that land while Paved is down, which the next apply then covers.
UNREPORTED_LOOKBACK = 50


def _finish_reporting(ctx: Context, repo: str, last: str | None, head: str) -> ApplyOutcome | None:
    """Finish what a Paved killed after recording an apply left undone, and say where that leaves the
    applied ref; None when there is nothing to finish.

    The recorded note is the apply's journal: once it is on the forge, the providers' work is done, and
    what follows (the check, the applied ref, the comment) can each be done again without harm. So the
    newest commit between the applied ref and the head whose note holds a successful apply from the
    applied ref is reported as that record says, and the applied ref moves to it; the providers are not
    run again.
    """
    for revision in ctx.mirror.first_parents(repo, last, head, UNREPORTED_LOOKBACK):
        done = [r for r in head_records(ctx, repo, revision) if r.succeeded and r.previous == last]
        if done:
            log.warning("finishing the report of %s at %s, which was applied but not reported", repo,
                        revision[:12])
            return _report(ctx, repo, done[-1], last, earlier=len(attempts(head_records(ctx, repo, revision))))
    return None


def _report_comment(ctx: Context, repo: str, head: str) -> None:
    """Comment on an applied head's pull request, if a killed Paved never did: the head's last successful
    record says what to write, and the comment is found by its marker, so this never adds a second."""
    records = head_records(ctx, repo, head)
    done = [r for r in records if r.succeeded]
    if done and done[-1].pull_request is not None:
        _comment_applied(ctx, repo, done[-1], _title(done[-1]), len(attempts(records)), asking=False)


def _comment_applied(ctx: Context, repo: str, record: ApplyRecord, title: str, earlier: int, *,
                     asking: bool = True) -> None:
    """The one comment on the merged pull request saying how applying it went, ending with the invitation to
    rate it when its author is asked (`bot.handlers.feedback`; `asking` False: only an invitation noted
    already is shown again, nobody is newly asked)."""
    assert record.pull_request is not None
    try:
        invite = feedback.ask(ctx, repo, record, datetime.now(UTC), keep_only=not asking)
    except PavedError as exc:  # asking how it went never holds up saying how it went
        log.warning("not inviting a rating of %s at %s: %s", repo, record.revision[:12], exc.message)
        invite = False
    ctx.lease.check()
    comment = ctx.forge.upsert_comment(repo, record.pull_request, applied_marker(record.revision),
                                       _applied_comment(record, title, earlier) + (invitation() if invite else ""))
    if invite:
        try:
            feedback.invited(ctx, repo, record, comment)
        except PavedError as exc:
            log.warning("could not note the invitation on %s at %s: %s", repo, record.revision[:12], exc.message)


def _apply(ctx: Context, repo: str, head: str, last: str | None, providers: Sequence[Provider], trigger: Trigger,
           now: datetime, earlier: int) -> ApplyOutcome:
    head_tree = ctx.mirror.tree(repo, head)
    if not is_platform_repo(head_tree):
        head_tree.close()
        return ApplyOutcome("refused", head, reason=f"{repo} is not a platform repo (no {KINDS_DIR})")
    base_tree: Tree = ctx.mirror.tree(repo, last) if last else MemoryTree({}, label="nothing applied yet")
    try:
        config = load_config(head_tree, ctx.provider_schemas)
        planned = plan_requests(base_tree, head_tree, store=ctx.store, rules=load_rules(head_tree))
        # Made here, a database would be lost with the machine; the plan's error keeps it from being made.
        planned = refuse_lost_data(planned, head_tree, ctx.losing_data(config))
        plan = planned.plan
        pr = ctx.forge.merged_pull_request(repo, head)
        approvers: tuple[str, ...] = ()
        if pr is not None:
            approvers = tuple(sorted(approvals_in_force(ctx.forge.reviews(repo, pr.number)) - {pr.author.lower()}))
        if plan.errors:
            results: list[Result] = []
            reason = (f"the catalogue at {head[:12]} has {plural(len(plan.errors), 'error')} "
                      f"(first: {plan.errors[0].location} {plan.errors[0].message}); nothing was applied")
        else:
            target = Target(organization=config.organization or repo.split("/", 1)[0], platform_repo=repo,
                            tree=head_tree, revision=head, followed=dict(plan.followed), config=config,
                            history=ctx.history(repo, head))
            ctx.lease.check()
            results = apply_plan(plan, planned.before, planned.after, providers, target)
            results = _upgrade(ctx, repo, planned, providers, target, results, pr)
            reason = ""
    finally:
        head_tree.close()
        base_tree.close()

    record = ApplyRecord(
        revision=head, previous=last, applied_at=now.isoformat(timespec="seconds"),
        plan_digest=plan_digest(plan), results=tuple(results), pull_request=pr.number if pr else None,
        requested_by=pr.author if pr else None, merged_by=pr.merged_by if pr else None, approved_by=approvers,
        actions={c.identity: c.action for c in plan.all_changes}, trigger=trigger, reason=reason,
        templates=_templates(planned))
    record = replace(record, succeeded=record.ok and not reason)
    # The note is the apply's journal, written before anything reports it: from here on a restarted Paved
    # finishes the report (`_finish_reporting`) instead of applying again.
    ctx.mirror.append_note(repo, NOTES_REF, head, record.to_json())
    ctx.lease.check()
    ctx.mirror.push(repo, [NOTES_REF])
    return _report(ctx, repo, record, last, earlier)


def _templates(planned: PlannedRequests) -> tuple[str, ...]:
    """The golden paths the plan's changed requests follow, as the merged catalogue has them."""
    rules = planned.rules
    if rules is None:
        return ()
    found = set()
    for change in planned.plan.all_changes:
        resource = planned.after.get(change.identity)
        if resource is not None:
            follows = following(resource, rules.described[resource.kind])
            if follows is not None:
                found.add(follows.template)
    return tuple(sorted(found))


def _upgrade(ctx: Context, repo: str, planned: PlannedRequests, providers: Sequence[Provider], target: Target,
             results: list[Result], pr: PullRequest | None) -> list[Result]:
    """Offer the services whose golden path moved their upgrade pull requests (`bot.adapters.upgrade`), once
    the apply has made everything else real; their outcomes join the apply's results. Only where a provider
    here makes the services (it made their repositories)."""
    plan, rules = planned.plan, planned.rules
    kinds = {kind for p in providers for kind in p.kinds}
    wanted = [u for u in plan.upgrades if u.identity.split("/", 1)[0] in kinds]
    if not wanted or rules is None:
        return results
    # Imported here: upgrading renders through the GitHub provider, which loads GitPython, and GitPython
    # reads the environment (and runs git) when imported; the service imports its handlers at start-up.
    from bot.adapters.upgrade import TemplateHistory, Upgrading, upgrade_all

    work = Upgrading(ctx.forge, ctx.mirror, TemplateHistory(ctx.forge, ctx.mirror, repo), ctx.lease.check)
    return upgrade_all(work, wanted, planned.after, rules.described, target, results, request_change=pr)


def _title(record: ApplyRecord) -> str:
    failed = [r for r in record.results if r.status == "failed"]
    return record.reason or (f"{len(failed)} of {len(record.results)} failed" if failed else
                             f"{sum(r.status == 'applied' for r in record.results)} applied, "
                             f"{sum(r.status == 'unchanged' for r in record.results)} unchanged")


def apply_summary(record: ApplyRecord) -> str:
    """How an apply went, as Markdown: its reason, then one row per resource (the check's and the job's summary)."""
    return (f"{record.reason}\n" if record.reason else "") + _results_markdown(record)


def _applied_comment(record: ApplyRecord, title: str, earlier: int) -> str:
    again = f" (attempt {earlier + 1})" if earlier and record.succeeded else ""
    retry = "" if record.succeeded else "\n\nFix what failed, then comment `/paved retry` to apply again."
    return (f"{applied_marker(record.revision)}\n### Paved applied {record.revision[:12]}{again}: {title}\n\n"
            f"{apply_summary(record)}{retry}")


def _report(ctx: Context, repo: str, record: ApplyRecord, last: str | None, earlier: int) -> ApplyOutcome:
    """Say how an apply went, in steps that can each be taken again: the check, the applied ref, the comment."""
    head, ok, title = record.revision, record.succeeded, _title(record)
    # The successful check is what makes the applied ref believable (see `fetch_heads`), so it comes first:
    # a ref moved without it would stop every later apply.
    ctx.lease.check()
    ctx.forge.publish_check(repo, CheckRun(CHECK_NAME, head, "success" if ok else "failure", title,
                                           apply_summary(record)))
    if ok:
        ctx.mirror.set_ref(repo, APPLIED_REF, head)
        ctx.lease.check()
        ctx.mirror.push(repo, [APPLIED_REF], expected={APPLIED_REF: last})
    tried = earlier + (0 if ok else 1)
    if record.pull_request is not None:
        # One comment per head, found again by its marker: a retry that succeeds turns the failure it
        # reported into the success, and a restarted Paved never posts it twice.
        if ok or record.trigger != "reconcile" or earlier == 0:
            _comment_applied(ctx, repo, record, title, earlier)
        elif tried >= MAX_ATTEMPTS:
            ctx.lease.check()
            ctx.forge.upsert_comment(repo, record.pull_request, gave_up_marker(head),
                                     _gave_up(head, tried, apply_summary(record)))
        # An automatic retry that failed again is only logged: the pull request heard of the first
        # failure, and hears of the last.
    log.info("applied %s at %s (%s): %s", repo, head[:12], record.trigger, title)
    return ApplyOutcome("applied" if ok else "failed", head, record, record.reason, attempts=tried)


def _gave_up(head: str, tried: int, summary: str) -> str:
    waits = ", ".join(f"{int(w.total_seconds() // 60)}" for w in BACKOFF)
    return (f"{gave_up_marker(head)}\n### Paved stopped retrying {head[:12]}\n\n"
            f"Applying this merge failed {tried} times (Paved waited {waits} minutes between attempts), so "
            f"Paved will not try again on its own. The last attempt:\n\n{summary}\n"
            "Fix what failed (each resource's `paved:drift` issue says what is wrong), then comment "
            "`/paved retry` here: it applies again at any time.")
