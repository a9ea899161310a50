"""`GitHubProvider`: the `Provider` for every GitHub kind, driving one `Kind` per kind.

`plan` only compares the observed state with the request; `apply` observes, plans and takes the steps,
so applying a state that already holds reads but writes nothing. A repository or team that exists
without Paved's mark is never touched: the plan says so in one step, and `apply` fails with that
message having taken no step. GitHub's refusals, template failures and git errors end in a failed
`Result` with a one-line message that never carries a credential.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from github import Github, GithubException

from bot.adapters.github import TRANSPORT_ERRORS, ForgeError, transport_failure
from bot.errors import PavedError
from bot.model import Resource
from bot.provider import Result, Step, Target
from bot.providers.github import KINDS
from bot.providers.github.access import Access, ObservedAccess
from bot.providers.github.environments import Environments, ObservedEnvironment
from bot.providers.github.repositories import ObservedRepository, Services
from bot.providers.github.shared import FAILURES, Action, Kind, Unmarked, one_line, reason_of, scrub
from bot.providers.github.teams import ObservedTeam, Teams

log = logging.getLogger(__name__)

# What the GitHub provider observes of a resource, whichever of its kinds that is.
GitHubObserved = ObservedTeam | ObservedRepository | ObservedAccess | ObservedEnvironment | Unmarked

# -- the provider ------------------------------------------------------------------------------------------

class GitHubProvider:
    """`Provider` for `Team`, `Service`, `Access` and `Environment` on GitHub.

    `client` acts as Paved's App installation in the organization; `token()` gives the credential git
    pushes a new repository's first commit with (an installation token, renewed by the caller).

    Paved touches only what it made. A repository it creates carries the organization custom property
    `paved-managed` set to `true` from the moment it exists (given in the call that creates it); a team
    it creates ends its description with `[paved-managed]`, which Paved keeps on every description
    change and leaves out when comparing descriptions. Before any change or deletion Paved reads the
    mark; a repository (for `Service`, and for the `Access` and `Environment` requests acting on it) or
    team that exists without it is left alone, and the plan says why. The first repository Paved
    creates in an organization defines the property there (`true_false`, `values_editable_by:
    org_actors`: only organization owners, and apps allowed to, may set or remove a value; a
    repository's maintainers and admins may not), and Paved puts that definition back if someone loosens
    it. So the App needs `organization_custom_properties: admin` (to define the property; `write`
    would do once it exists) besides `administration: write`, `members: write` and `contents: write`.

    Adoption: an organization owner hands an existing repository to Paved by setting its `paved-managed`
    property to `true` (the repository's settings, or `PATCH /repos/{owner}/{repo}/properties/values`),
    and an existing team by ending its description with `[paved-managed]`; Paved then makes them what
    the catalogue asks. Removing the mark takes them back.
    """

    kinds: tuple[str, ...] = KINDS

    def __init__(self, client: Github, token: Callable[[], str]) -> None:
        self.client = client
        self.token = token
        # Each `Kind` is typed by what it observes (`Teams` is a `Kind[ObservedTeam]`, ...); one table holds
        # them all, and Python has no type for "a Kind of some observed type", so it holds `Kind[Any]`. What
        # one kind observed only ever reaches that same kind (`observe` and `plan` dispatch on the request's
        # kind), and mypy checks each kind's module against its own observed type.
        self._kinds: dict[str, Kind[Any]] = {kind.kind: kind(client, token)
                                         for kind in (Teams, Services, Access, Environments)}

    def _kind(self, kind: str) -> Kind[Any]:
        if kind not in self._kinds:
            raise ValueError(f"the GitHub provider does not make {kind} resources")
        return self._kinds[kind]

    def observe(self, resource: Resource, target: Target) -> GitHubObserved | None:
        """The resource as it exists on GitHub, or None; raises `ForgeError` when GitHub will not tell."""
        kind = self._kind(resource.kind)
        try:
            return kind.observe(resource, target)
        except GithubException as exc:
            raise ForgeError(f"GitHub refused to show {resource.identity}: {reason_of(exc)}",
                             status=exc.status) from exc
        except TRANSPORT_ERRORS as exc:
            raise ForgeError(f"GitHub did not answer when asked for {resource.identity}: {transport_failure(exc)}") \
                from exc

    def plan(self, desired: Resource | None, actual: GitHubObserved | None, target: Target,
             previous: Resource | None = None) -> list[Step]:
        subject = desired or previous
        if subject is None:
            return []
        kind = self._kind(subject.kind)
        refused = kind.refusal(actual)
        if refused is not None:
            return [kind.step(subject, "delete" if desired is None else "update", refused)]
        steps = []
        if self._moved(kind, desired, previous, target):
            assert previous is not None
            steps += [a.step for a in kind.actions(None, kind.believed(previous, target), target, previous)]
        return steps + [a.step for a in kind.actions(desired, actual, target, previous)]

    @staticmethod
    def _moved(kind: Kind[Any], desired: Resource | None, previous: Resource | None, target: Target) -> bool:
        return kind.moves and desired is not None and previous is not None and \
            kind.address(desired, target) != kind.address(previous, target)

    def apply(self, desired: Resource | None, target: Target, previous: Resource | None = None) -> Result:
        subject = desired or previous
        if subject is None:
            raise ValueError("apply needs the request, or the previous one to delete")
        if subject.kind not in self._kinds:
            return Result(subject.identity, "skipped", f"the GitHub provider does not make {subject.kind} resources")
        kind = self._kind(subject.kind)
        taken: list[Step] = []
        outputs: dict[str, str] = {}
        current: Step | None = None
        try:
            planned: list[Action] = []
            before: GitHubObserved | None = None
            if self._moved(kind, desired, previous, target):
                assert previous is not None
                before = kind.observe(previous, target)
            actual = kind.observe(subject, target)
            refused = kind.refusal(before) or kind.refusal(actual)
            if refused is not None:
                log.warning("%s: %s", subject.identity, refused)
                return Result(subject.identity, "failed", refused)
            if before is not None:
                planned += kind.actions(None, before, target, previous)
            outputs.update(kind.outputs(actual))
            planned += kind.actions(desired, actual, target, previous)
            for action in planned:
                current = action.step
                log.info("%s: %s", subject.identity, action.step.description)
                action.run(outputs)
                taken.append(action.step)
        except FAILURES as exc:
            message = self._failure(exc, current)
            log.warning("%s: %s", subject.identity, message)
            return Result(subject.identity, "failed", message, tuple(taken), outputs)
        return Result(subject.identity, "applied" if taken else "unchanged", "", tuple(taken), outputs)

    def _failure(self, exc: Exception, step: Step | None) -> str:
        doing = f" to {step.description}" if step else " to show what exists"
        if isinstance(exc, GithubException):
            message = f"GitHub refused{doing}: {reason_of(exc)}"
        elif isinstance(exc, PavedError):
            message = exc.message
        else:  # no answer (a timeout, a dropped connection), or a local file's or git's error
            message = f"GitHub could not be reached{doing}: {transport_failure(exc)}"
        return scrub(one_line(message), [])


