"""Who must approve a pull request before Paved's check turns green.

A change to a resource of a guarded tier (by default `production` and `critical`; a database,
environment or access grant has its service's tier) needs an approving review from a member or
maintainer of the resource's owning team, as the catalogue at the pull request's head names them.
The author's own approval never counts. Pure: the caller gathers tiers, teams and reviews.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from bot.forge import Review
from bot.model import Change

GUARDED_TIERS: tuple[str, ...] = ("production", "critical")


@dataclass(frozen=True, slots=True)
class Requirement:
    """One owning team whose approval the change needs, and whether it has it."""

    team: str
    resources: tuple[str, ...]
    approvers: tuple[str, ...]
    approved_by: tuple[str, ...] = ()

    @property
    def satisfied(self) -> bool:
        return bool(self.approved_by)


def approvals_in_force(reviews: Iterable[Review]) -> set[str]:
    """Logins whose latest deciding review approves (a later "changes requested" withdraws it)."""
    latest: dict[str, str] = {}
    for review in reviews:
        if review.state in ("APPROVED", "CHANGES_REQUESTED", "DISMISSED"):
            latest[review.login.lower()] = review.state
    return {login for login, state in latest.items() if state == "APPROVED"}


def requirements(changes: Sequence[Change], tiers: Mapping[str, str | None], teams: Mapping[str, Iterable[str]],
                 reviews: Iterable[Review], author: str,
                 guarded: Iterable[str] = GUARDED_TIERS) -> list[Requirement]:
    """The approvals `changes` need: `tiers` maps identity to tier, `teams` team name to its people."""
    guarded = set(guarded)
    needed: dict[str, list[str]] = {}
    for change in changes:
        if tiers.get(change.identity) in guarded:
            needed.setdefault(change.owner, []).append(change.identity)
    approved = approvals_in_force(reviews) - {author.lower()}
    found = []
    for team, resources in sorted(needed.items()):
        people = tuple(sorted({p for p in teams.get(team, ())}))
        found.append(Requirement(team, tuple(resources), people,
                                 tuple(sorted(p for p in people if p.lower() in approved))))
    return found


def waiting_message(pending: Sequence[Requirement]) -> str:
    """One line for the check's title: `waiting for approval from team-x and team-y`."""
    names = [f"team {r.team}" for r in pending]
    joined = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    return f"waiting for approval from {joined}"
