"""Who must approve a pull request before Paved's check passes, as the base branch names them.

The pull request only proposes; the catalogue on the base branch as it is now decides who approves
(as Prow reads OWNERS from the base branch), so no pull request can name its own approvers:

- A change to a resource of a guarded tier (by default `production` and `critical`; the higher of its
  tier on the base branch and in the pull request, so lowering a tier does not lower the bar) needs
  an approving review from each of: the team that owns the resource on the base branch, the team
  that owns the resource it belongs to (its kind's `belongsTo` reference, such as the `spec.service` of
  an Access grant, Database or Environment, before and after the change), and the requester's team (the
  `metadata.owner` the pull request gives it).
- A change to a team (a resource of the kind whose `x-paved` describes teams) always needs approval,
  whatever the tiers: team membership is what approvals are made of. The team itself (as the base
  branch has it) and its owners approve.
- A team that the base branch does not know (a new team, or one nobody is in) cannot approve anything,
  its own creation least of all: the platform owners approve in its place.
- A change to the rules (`schemas/`, `templates/`, `paved.yaml`, `.github/`, CODEOWNERS) is a platform
  change, approved by the platform owners (`approvals.platformOwners` in `paved.yaml`, default the
  teams with admin permission on the platform repo).

A team is satisfied by an approving review from one of its people (members or maintainers, as the
base branch's catalogue names them), submitted on the pull request's current head: a later push
needs approving again, so what was approved is what merges. The author's own approval never counts.
Pure: the caller gathers the base branch's catalogue, the pull request's requests and the reviews.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from bot.forge import Review
from bot.kinds import Kinds, value_at
from bot.model import Change, Resource, RuleChange

GUARDED_TIERS: tuple[str, ...] = ("production", "critical")
TIER_ORDER: tuple[str, ...] = ("experimental", "production", "critical")
PLATFORM_OWNERS = "platform owners"


@dataclass(frozen=True, slots=True)
class Authority:
    """What the base branch says about who decides, for the resources a pull request touches.

    `resources` are the requests on the base branch (by identity) that the changes touch or refer to;
    `tiers` their tiers there; `people` each team's members and maintainers there. `platform_owners`
    names the teams (or groups, such as a repository's admins) that approve rule changes and new teams,
    with their people. `kinds` are the base branch's kind descriptions: which kind is a team, and what
    each kind belongs to.
    """

    resources: Mapping[str, Resource] = field(default_factory=dict)
    tiers: Mapping[str, str | None] = field(default_factory=dict)
    people: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    platform_owners: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    kinds: Kinds = field(default_factory=Kinds)


@dataclass(frozen=True, slots=True)
class Requirement:
    """One team whose approval the change needs, what for, who may give it, and who gave it."""

    team: str
    resources: tuple[str, ...]
    approvers: tuple[str, ...]
    approved_by: tuple[str, ...] = ()
    note: str = ""

    @property
    def satisfied(self) -> bool:
        return bool(self.approved_by)


def approvals_in_force(reviews: Iterable[Review], head_sha: str | None = None) -> set[str]:
    """Logins whose latest deciding review approves (a later "changes requested" withdraws it); with
    `head_sha`, only approvals submitted on that commit count."""
    latest: dict[str, Review] = {}
    for review in reviews:
        if review.state in ("APPROVED", "CHANGES_REQUESTED", "DISMISSED"):
            latest[review.login.lower()] = review
    return {login for login, review in latest.items() if review.state == "APPROVED"
            and (head_sha is None or review.commit_id == head_sha)}


def parents(kinds: Kinds, *resources: Resource | None) -> set[str]:
    """The identities of the resources `resources` belong to (their kinds' `belongsTo` references)."""
    found: set[str] = set()
    for r in resources:
        parent = kinds[r.kind].parent if r is not None else None
        if r is None or parent is None:
            continue
        identity = kinds.parent_of(r.kind, str(value_at(r.data, parent.pointer) or "") or None)
        if identity is not None:
            found.add(identity)
    return found


def _higher(tiers: Iterable[str | None]) -> int:
    return max((TIER_ORDER.index(t) for t in tiers if t in TIER_ORDER), default=-1)


def subjects(changes: Sequence[Change], head: Mapping[str, Resource], kinds: Kinds) -> tuple[set[str], set[str]]:
    """The identities on the base branch that `changes` touch or refer to, and the teams they name:
    what the caller must look up in the base branch's catalogue."""
    identities: set[str] = set()
    for change in changes:
        identities.add(change.previous_identity)
        identities.add(change.identity)
        identities |= parents(kinds, head.get(change.identity))
    teams = {c.owner for c in changes} | {c.name for c in changes if c.kind == kinds.team}
    return identities, teams


def requirements(changes: Sequence[Change], head: Mapping[str, Resource], authority: Authority,
                 reviews: Iterable[Review], author: str, head_sha: str | None, *,
                 guarded: Iterable[str] = GUARDED_TIERS, rule_changes: Sequence[RuleChange] = ()) -> list[Requirement]:
    """The approvals `changes` (and `rule_changes`) need; `head` holds the pull request's requests."""
    bar = min((TIER_ORDER.index(t) for t in guarded if t in TIER_ORDER), default=len(TIER_ORDER))
    needed: dict[str, list[str]] = {}
    kinds = authority.kinds
    for change in changes:
        base = authority.resources.get(change.previous_identity)
        new = head.get(change.identity) if change.action != "delete" else None
        above = parents(kinds, base, new)
        tiers = [change.tier, authority.tiers.get(change.previous_identity), *(authority.tiers.get(p) for p in above)]
        is_team = change.kind == kinds.team
        if not is_team and _higher(tiers) < bar:
            continue
        teams = {change.owner}  # the requester's team
        if base is not None:
            teams.add(base.owner)
            if is_team:
                teams.add(base.name)
        for identity in above:
            parent = authority.resources.get(identity) or head.get(identity)
            if parent is not None:
                teams.add(parent.owner)
        for team in teams:
            needed.setdefault(team, []).append(change.identity)
    if rule_changes:
        needed.setdefault(PLATFORM_OWNERS, []).extend(c.path for c in rule_changes)

    approved = approvals_in_force(reviews, head_sha) - {author.lower()}
    found: list[Requirement] = []
    orphans: dict[str, list[str]] = {}
    for team, why in sorted(needed.items()):
        people = authority.people.get(team, ()) if team != PLATFORM_OWNERS else ()
        if team == PLATFORM_OWNERS or not people:
            if team != PLATFORM_OWNERS:
                orphans[team] = why
            continue
        found.append(_requirement(team, why, people, approved))
    if PLATFORM_OWNERS in needed or orphans:
        owners = sorted({p for group in authority.platform_owners.values() for p in group})
        why = needed.get(PLATFORM_OWNERS, []) + [i for items in orphans.values() for i in items]
        groups = ", ".join(sorted(authority.platform_owners)) or "nobody is named"
        note = f"{PLATFORM_OWNERS}: {groups}"
        if orphans:
            note += f"; in place of {', '.join(f'team {t}' for t in sorted(orphans))}, which the base branch " \
                    "does not name with anyone in it"
        found.append(_requirement(PLATFORM_OWNERS, why, owners, approved, note))
    return found


def _requirement(team: str, why: Iterable[str], people: Iterable[str], approved: set[str],
                 note: str = "") -> Requirement:
    approvers = tuple(sorted(set(people)))
    return Requirement(team, tuple(dict.fromkeys(why)), approvers,
                       tuple(p for p in approvers if p.lower() in approved), note)


def label(requirement: Requirement) -> str:
    return requirement.team if requirement.team == PLATFORM_OWNERS else f"team {requirement.team}"


def waiting_message(pending: Sequence[Requirement]) -> str:
    """One line for the check's title: `waiting for approval from team x and the platform owners`."""
    names = [label(r) for r in pending]
    joined = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    return f"waiting for approval from {joined}"
