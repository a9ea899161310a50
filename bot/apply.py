"""Applying a plan through providers, in dependency order, and the record of what happened.

A resource whose provider fails does not stop independent ones; what depends on it is skipped and
says why. Deletions run after everything else, dependents first. The outcome is an `ApplyRecord`:
JSON that Paved keeps as a git note on the applied commit (`refs/notes/paved`), so git history plus
these notes are the audit log.

Providers that read many resources at once (`ObservesTogether`) are asked once per job, through
`provider_job`, which every job that observes (apply, a pull request's plan, a drift check) opens, and
which releases their connections when the job ends, however it ends.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

from bot.errors import PavedError
from bot.model import Plan, Resource
from bot.provider import ObservesTogether, Provider, Result, Target

log = logging.getLogger(__name__)

NOTES_REF = "refs/notes/paved"
APPLIED_REF = "refs/paved/applied"
RECORD_VERSION = 1
# Why an apply ran: a merge (a push to the default branch), `/paved retry`, reconcile catching up or
# retrying a failed apply, or reconcile putting back a resource that drifted (`spec.drift: heal`). A
# `drift` record applies nothing: it is what a drift check found (each drifted resource's result says
# `drifted`), written when that changes, so the catalogue's status can be read from git too.
Trigger = Literal["merge", "retry", "reconcile", "heal", "drift"]
TRIGGERS: tuple[Trigger, ...] = ("merge", "retry", "reconcile", "heal", "drift")
# Records that took no commit's changes: they never count as attempts to apply one.
OBSERVATIONS: tuple[Trigger, ...] = ("heal", "drift")


def plan_digest(plan: Plan) -> str:
    """A short digest of what a plan changes, to tie an apply to the plan people saw."""
    summary = [(c.action, c.identity, [(f.pointer, f.op, f.before, f.after) for f in c.fields])
               for c in plan.all_changes]
    return hashlib.sha256(json.dumps(summary, sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class ProviderJob:
    """What one job's providers read of its resources up front: by identity, what each provider that
    observes together read (`found`), or the error it raised reading them (`unread`)."""

    target: Target
    together: tuple[ObservesTogether[Any], ...] = ()
    found: Mapping[str, Any] = field(default_factory=dict)
    unread: Mapping[str, Exception] = field(default_factory=dict)

    def observe(self, provider: Provider, resource: Resource) -> Any:
        """What `provider` observes of `resource`: what was read with the job's others when its provider
        observes together, else read now; raises what reading it raised."""
        if resource.identity in self.unread:
            raise self.unread[resource.identity]
        if resource.identity in self.found:
            return self.found[resource.identity]
        return provider.observe(resource, self.target)

    def apply(self, provider: Provider, desired: Resource | None, previous: Resource | None) -> Result:
        """`provider.apply`, from what was read up front when its provider observes together."""
        subject = desired or previous
        if subject is not None and subject.identity in self.unread:
            return Result(subject.identity, "failed", failure_message(self.unread[subject.identity]))
        for together in self.together:  # by identity: a protocol's isinstance costs more than the apply
            if together is provider:
                return together.apply(desired, self.target, previous=previous, observed=self.found)
        return provider.apply(desired, self.target, previous=previous)


@contextmanager
def provider_job(providers: Iterable[Provider], resources: Iterable[Resource], target: Target) -> Iterator[ProviderJob]:
    """One job's work with `providers` on `resources`: each provider that observes together reads all of
    its resources at once on entry, and is closed on the way out, whether the job succeeded or not."""
    together = [p for p in providers if isinstance(p, ObservesTogether)]
    subjects = list({r.identity: r for r in resources}.values())
    found: dict[str, Any] = {}
    unread: dict[str, Exception] = {}
    try:
        for provider in together:
            mine = [r for r in subjects if r.kind in provider.kinds]
            if not mine:
                continue
            try:
                found.update(provider.observe_all(mine, target))
            except Exception as exc:  # a provider that cannot read its resources fails them, not the job
                log.warning("could not observe %d resources of %s", len(mine), ", ".join(provider.kinds),
                            exc_info=not isinstance(exc, PavedError))
                unread.update({r.identity: exc for r in mine})
        yield ProviderJob(target, tuple(together), found, unread)
    finally:
        for provider in together:
            try:
                provider.close()
            except Exception:  # one provider's failure to let go must not keep the others' connections
                log.exception("could not close the %s provider", ", ".join(provider.kinds))


def failure_message(exc: Exception) -> str:
    """A provider's error as one line for a result: its message for a person, else its type and text."""
    text = exc.message if isinstance(exc, PavedError) else f"{type(exc).__name__}: {exc}"
    return " ".join(text.split())[:500]


def apply_plan(plan: Plan, before: Mapping[str, Resource], after: Mapping[str, Resource],
               providers: Sequence[Provider], target: Target) -> list[Result]:
    """Apply every change of `plan` with the provider for its kind; one `Result` per change."""
    subjects = [r for r in (*(after.get(c.identity) or before.get(c.identity) for c in plan.all_changes),
                            *(after.get(i) for i in plan.refresh)) if r is not None]
    with provider_job(providers, subjects, target) as job:
        return _apply_all(plan, before, after, providers, job)


def _apply_all(plan: Plan, before: Mapping[str, Resource], after: Mapping[str, Resource],
               providers: Sequence[Provider], job: ProviderJob) -> list[Result]:
    by_kind = {kind: p for p in providers for kind in p.kinds}
    results: list[Result] = []
    broken: dict[str, str] = {}  # identity -> why it did not happen

    def run(identity: str, kind: str, depends_on: tuple[str, ...], desired: Resource | None,
            previous: Resource | None) -> Result:
        blocked = [d for d in depends_on if d in broken]
        if blocked:
            return Result(identity, "skipped", f"skipped: {blocked[0]} {broken[blocked[0]]}")
        provider = by_kind.get(kind)
        if provider is None:
            return Result(identity, "skipped", f"no provider makes {kind} resources here")
        try:
            return job.apply(provider, desired, previous)
        except Exception as exc:  # a provider's own fault must not stop independent resources
            log.exception("provider failed on %s", identity)
            return Result(identity, "failed", f"{type(exc).__name__}: {exc}".splitlines()[0])

    def note(result: Result) -> Result:
        if result.status == "failed":
            broken[result.resource] = "failed"
        elif result.status == "skipped" and result.message.startswith("skipped:"):
            broken[result.resource] = "was skipped"
        return result

    for change in plan.changes:
        results.append(note(run(change.identity, change.kind, change.depends_on, after.get(change.identity),
                                before.get(change.previous_identity))))
    for identity in plan.refresh:  # unchanged, but what it serves changed (see `Plan.refresh`)
        resource = after.get(identity)
        if resource is not None:
            results.append(note(run(identity, resource.kind, (), resource, resource)))
    for change in plan.deletions:
        results.append(run(change.identity, change.kind, change.depends_on, None, before.get(change.identity)))
    return results


@dataclass(frozen=True, slots=True)
class ApplyRecord:
    """One apply of one commit: what was asked, by whom, who approved, and each resource's result."""

    revision: str
    previous: str | None
    applied_at: str
    plan_digest: str
    results: tuple[Result, ...]
    pull_request: int | None = None
    requested_by: str | None = None
    merged_by: str | None = None
    approved_by: tuple[str, ...] = ()
    actions: Mapping[str, str] = field(default_factory=dict)  # identity -> create | update | rename | delete | heal
    trigger: Trigger = "merge"
    # Why nothing was applied (the catalogue had errors), and whether this apply made the commit applied:
    # a record says so itself, so that a Paved restarted after writing it finishes reporting it instead
    # of applying again. Records written before these fields existed read as not succeeded.
    reason: str = ""
    succeeded: bool = False
    # The golden paths (template folder names) the changed requests follow, for reports per golden path.
    templates: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return all(r.status != "failed" and not r.message.startswith("skipped:") for r in self.results)

    def to_json(self) -> str:
        data: dict[str, Any] = asdict(self)
        data["results"] = [{**asdict(r), "steps": [asdict(s) for s in r.steps], "outputs": dict(r.outputs)}
                           for r in self.results]
        data["actions"] = dict(self.actions)
        return json.dumps({"paved": RECORD_VERSION, **data}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ApplyRecord:
        """A record from its note line. Records written before a field existed read with its default
        (those without `trigger` came from merges), and fields a later Paved adds are left aside."""
        data = json.loads(text)
        data.pop("paved", None)
        results = tuple(Result(r["resource"], r["status"], r.get("message", ""), (), r.get("outputs", {}))
                        for r in data.pop("results", []))
        known = {f.name for f in fields(cls)}
        kept = {k: v for k, v in data.items() if k in known}
        if kept.get("trigger") not in TRIGGERS:
            kept["trigger"] = "merge"
        templates = kept.pop("templates", ())
        return cls(results=results, approved_by=tuple(kept.pop("approved_by", ())),
                   templates=tuple(str(t) for t in templates) if isinstance(templates, list) else (), **kept)


def read_records(note: str) -> list[ApplyRecord]:
    """Every apply recorded in one commit's note (one JSON object a line), oldest first.

    Ordered by `applied_at`, not by line: where two writers' notes were merged, the lines of the note
    are sorted as text (`bot.adapters.mirror`), which is not their order in time.
    """
    records = []
    for line in note.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                records.append(ApplyRecord.from_json(line))
            except (ValueError, TypeError, KeyError):
                continue  # a note line written by someone else is not Paved's record
    return sorted(records, key=lambda r: r.applied_at)  # stable: records of one second keep their order
