"""What every GitHub kind shares: reading GitHub's refusals, Paved's mark on what it made, and the
base class of a kind (`Kind`), which `GitHubProvider` drives."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, TypeVar

from github import Github, GithubException

from bot.adapters.github import TRANSPORT_ERRORS
from bot.errors import PavedError
from bot.model import Resource
from bot.provider import Observed, Step, Target, Verb

if TYPE_CHECKING:
    from github.Repository import Repository
    from github.Team import Team

T = TypeVar("T")
_TOKEN_SHAPES = re.compile(r"\b(gh[opsur]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})")


class StepFailed(PavedError):
    """Raised inside `apply` when a step cannot be taken; the message becomes the failed Result's."""


# What ends an apply in a failed Result: GitHub's refusals, no answer from GitHub, and Paved's own errors.
FAILURES: tuple[type[Exception], ...] = (GithubException, PavedError, *TRANSPORT_ERRORS)


# -- small helpers ----------------------------------------------------------------------------------------

def one_line(text: str) -> str:
    return " ".join(text.split())


def reason_of(exc: GithubException) -> str:
    """GitHub's own words for a refusal: its message, the first validation error, and the status."""
    data = exc.data if isinstance(exc.data, dict) else {}
    raw = exc.data if isinstance(exc.data, str) else ""  # a proxy's or load balancer's page, not GitHub's JSON
    message = str(data.get("message") or raw[:200] or "no message")
    errors = data.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        first = errors[0]
        detail = first.get("message") or " ".join(str(first[k]) for k in ("field", "code") if first.get(k))
        if detail:
            message = f"{message}: {detail}"
    return one_line(f"{message} ({exc.status})")


def if_found(read: Callable[[], T]) -> T | None:
    """What `read` returns, or None when GitHub answers 404."""
    try:
        return read()
    except GithubException as exc:
        if exc.status == 404:
            return None
        raise


def repository_at(client: Github, full_name: str) -> Repository | None:
    """The repository at `full_name`, or None when none is there now.

    GitHub answers a name a repository had before it was renamed with a redirect to that repository, and
    PyGithub follows it: an answer for another name means nothing is at `full_name` any more (a new
    repository may take it). Paved never acts on a renamed repository by its old name.
    """
    found = if_found(lambda: client.get_repo(full_name))
    if found is None or found.full_name.lower() != full_name.lower():
        return None
    return found


def scrub(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    text = re.sub(r"(Authorization: (?:Basic|Bearer|token) )\S+", r"\1***", text, flags=re.IGNORECASE)
    return _TOKEN_SHAPES.sub("***", text)


def names_or_none(values: Iterable[str]) -> str:
    return ", ".join(values) or "none"


Outputs = dict[str, str]
Run = Callable[[Outputs], None]


@dataclass(frozen=True)
class Action:
    """A step and what takes it; `run` adds what to show (links) to the outputs as soon as it exists."""

    step: Step
    run: Run


# -- Paved's mark on what it made ----------------------------------------------------------------------------

# A repository Paved creates carries the organization custom property `paved-managed` = "true", given in
# the very request that creates it, so it never exists unmarked. The property's values are editable by
# organization actors only (`values_editable_by: org_actors`): a repository's own admins and maintainers
# can neither take the mark off a repository of Paved's nor put it on one of theirs. Teams have no
# custom properties, so a team Paved creates ends its description with TEAM_MARK; whoever may edit a
# team's description (its maintainers) may also delete the team, so that mark gives no one more power.
MARK_PROPERTY = "paved-managed"
MARK_VALUE = "true"
MARK_PURPOSE = ("Set to true on the repositories Paved creates: Paved changes and archives only those. "
                "Only organization owners may set or remove it.")
TEAM_MARK = "[paved-managed]"


def marked_description(description: str) -> str:
    """A team's description as Paved writes it: the request's, then the mark."""
    return f"{description.strip()} {TEAM_MARK}".lstrip()


def unmarked_description(description: str) -> tuple[str, bool]:
    """A team's description without Paved's mark, and whether it carried it."""
    text = description.strip()
    if text.endswith(TEAM_MARK):
        return text[:-len(TEAM_MARK)].rstrip(), True
    return text, False


def repo_marked(repo: Repository) -> bool:
    """Whether a repository carries Paved's mark (read from the repository itself; from its property
    values when GitHub leaves them out of it)."""
    values = repo.raw_data.get("custom_properties")
    if not isinstance(values, dict):
        values = repo.get_custom_properties()
    return values.get(MARK_PROPERTY) == MARK_VALUE


def not_paveds(what: str, mark: str) -> str:
    return f"Paved will not touch {what}: it exists and Paved did not create it ({mark})"


@dataclass(frozen=True, slots=True)
class Unmarked:
    """What a kind observes of an object that exists without Paved's mark: only enough to say so.

    Its own class rather than a `marked` flag on each kind's observed state, so that a kind's observed
    state always holds everything its actions read, and the only thing Paved does with an unmarked object
    is refuse to touch it.
    """

    what: str  # "team acme/payments", "repository acme/search"
    mark: str  # the mark it lacks, in words


def unmarked_repository(full_name: str) -> Unmarked:
    return Unmarked(f"repository {full_name}", f"no {MARK_PROPERTY} mark")


# -- the kinds --------------------------------------------------------------------------------------------

class Kind(ABC, Generic[Observed]):
    """One kind: where its object lives on GitHub, how to read it, and the actions to match a request.

    `Observed` is what it observes of an object Paved may touch; an object without Paved's mark is `Unmarked`.
    """

    kind = ""
    # Whether an update may point the request at another object (another repository or team), which
    # then loses what the request gave it.
    moves = False

    def __init__(self, client: Github, token: Callable[[], str]) -> None:
        self.client = client
        self.token = token

    @abstractmethod
    def address(self, resource: Resource, target: Target) -> str:
        """Where the resource lives on GitHub (`org/repo`, `org/team`, ...)."""

    @abstractmethod
    def observe(self, resource: Resource, target: Target) -> Observed | Unmarked | None:
        """The object as GitHub has it, or None.

        Repository kinds observe Paved's mark on the repository they act on: `Access` and `Environment`
        too, since granting a team or adding an environment changes that repository.
        """

    @abstractmethod
    def actions(self, desired: Resource | None, actual: Observed | None, target: Target,
                previous: Resource | None) -> list[Action]:
        """What to do to make `actual` what `desired` asks (None: remove `previous`)."""

    def outputs(self, actual: Observed | None) -> dict[str, str]:
        return {}

    def believed(self, previous: Resource, target: Target) -> Observed | None:
        """What the catalogue says `previous` made, for a plan that cannot look; kinds that `move` say it."""
        return None

    @staticmethod
    def refusal(actual: object) -> str | None:
        """Why Paved will not touch what `actual` shows (it exists without Paved's mark), or None."""
        if isinstance(actual, Unmarked):
            return not_paveds(actual.what, actual.mark)
        return None

    # -- shared reads ---------------------------------------------------------------------------------

    def step(self, resource: Resource, verb: Verb, description: str, destructive: bool = False) -> Step:
        return Step(resource.identity, verb, description, destructive)

    def repo(self, full_name: str, needed_by: str) -> Repository:
        found = repository_at(self.client, full_name)
        if found is None:
            raise StepFailed(f"GitHub has no repository {full_name} (apply {needed_by} first)")
        return found

    def team(self, organization: str, slug: str) -> Team:
        found = if_found(lambda: self.client.get_organization(organization).get_team_by_slug(slug))
        if found is None:
            raise StepFailed(f"GitHub has no team {slug} in {organization} (apply Team/{slug} first)")
        return found



def service_repo(resource: Resource, target: Target) -> str:
    return f"{target.organization}/{resource.spec.get('service', '')}"



def complete(obj: T) -> T:
    """A lazily built PyGithub object, made to fetch itself now so that a 404 surfaces here."""
    obj.complete()  # type: ignore[attr-defined]
    return obj


