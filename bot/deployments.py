"""A service's deployment status: where each of its environments stands, and how its default branch last ran.

Plain values and functions, no I/O. The forge reads a repository's status (`Forge.deployment_status`, which
`bot/adapters/github.py` answers from GitHub's deployments and workflow runs); this module says which
repository and environments a service of the catalogue has (`service_target`), and sums each environment up
in one word (`Summary`) for whoever shows it: `/paved status` (`bot/render/markdown.py`), the catalogue's pages.

Everything here that came from GitHub was written by whoever may push to the service's repository or run its
workflows (a workflow's name, a deployment's description, a creator's login, a URL): it is hostile text, to
be escaped wherever it is shown, and only an `http(s)` URL (`web_url`) is ever a link.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:  # only named in annotations: reading a status needs no catalogue loaded
    from bot.catalogue import Catalogue

Summary = Literal["deployed", "failed", "in progress", "inactive", "never deployed"]
SUMMARIES: tuple[Summary, ...] = ("deployed", "failed", "in progress", "inactive", "never deployed")

# GitHub's deployment status states, by what they say of the deployment.
_SUMMARY_OF_STATE: dict[str, Summary] = {
    "success": "deployed", "failure": "failed", "error": "failed", "inactive": "inactive",
    "pending": "in progress", "queued": "in progress", "in_progress": "in progress",
}


def web_url(url: str) -> str:
    """`url` when it is an `http(s)` address fit for a link, else "" (a `javascript:` link is no link)."""
    text = url.strip()
    if text.lower().startswith(("https://", "http://")) and not any(c.isspace() or ord(c) < 32 for c in text):
        return text
    return ""


@dataclass(frozen=True, slots=True)
class Deployment:
    """The latest deployment to one environment, with the latest of its statuses.

    `state` is that status's state as GitHub names it (`success`, `failure`, `error`, `inactive`, `pending`,
    `queued`, `in_progress`), None while the deployment has none. Times are GitHub's ISO 8601, in UTC.
    """

    id: int
    sha: str
    ref: str
    creator: str  # the login that created the deployment ("" when GitHub names nobody)
    created_at: str
    state: str | None = None
    description: str = ""
    log_url: str = ""  # where its output is: the run that deployed it
    environment_url: str = ""  # where the deployed service answers
    updated_at: str = ""  # when its latest status was given ("" without one)

    @property
    def summary(self) -> Summary:
        # A deployment nobody reported on yet is waiting to start.
        return _SUMMARY_OF_STATE.get(self.state or "pending", "in progress")


@dataclass(frozen=True, slots=True)
class EnvironmentStatus:
    """One of the service's environments and its latest deployment (None: never deployed to)."""

    name: str
    latest: Deployment | None = None

    @property
    def summary(self) -> Summary:
        return "never deployed" if self.latest is None else self.latest.summary


@dataclass(frozen=True, slots=True)
class LatestRun:
    """The latest workflow run started by a push to the default branch."""

    name: str  # the workflow's name
    status: str  # `queued`, `in_progress`, `completed`, ...
    conclusion: str | None  # once completed: `success`, `failure`, `cancelled`, ...
    actor: str  # the login whose push started it
    created_at: str
    html_url: str
    head_sha: str = ""

    @property
    def outcome(self) -> str:
        """Its conclusion once completed, else its status, in words (`success`, `in progress`)."""
        word = self.conclusion if self.status == "completed" and self.conclusion else self.status
        return word.replace("_", " ")


@dataclass(frozen=True, slots=True)
class ServiceStatus:
    """A service repository's deployment status, as GitHub has it now.

    `environments` are those asked about, in the order asked. `properties` are the repository's custom
    property values (where Paved's mark is), so a caller can tell a repository Paved made from one it did not.
    """

    repository: str  # owner/name
    default_branch: str
    environments: tuple[EnvironmentStatus, ...] = ()
    latest_run: LatestRun | None = None
    html_url: str = ""
    properties: Mapping[str, str] = field(default_factory=dict, compare=False)


# -- which repository and environments a service of the catalogue has ------------------------------------------

@dataclass(frozen=True, slots=True)
class ServiceTarget:
    """What to read for one service: its repository (`organization/name`) and its environments' names."""

    service: str
    repository: str
    environments: tuple[str, ...]


def services(catalogue: Catalogue) -> list[str]:
    """The names of the catalogue's services: the resources of the kind made from a golden-path template,
    which become repositories."""
    kind = catalogue.rules.described.with_template()
    return catalogue.names_of(kind) if kind is not None else []


def service_target(catalogue: Catalogue, service: str, organization: str) -> ServiceTarget | None:
    """The repository and environments of `service`, or None when the catalogue has no such service.

    Its environments are the names its followed resources hand their followers (each deployment
    environment's name inside the repository: see `Catalogue.followed`), sorted.
    """
    kind = catalogue.rules.described.with_template()
    if kind is None or not catalogue.definitions([f"{kind}/{service}"]):
        return None
    environments = catalogue.followed([service]).get(service, ())
    return ServiceTarget(service, f"{organization}/{service}", tuple(environments))


def close_services(catalogue: Catalogue, name: str, limit: int = 3) -> list[str]:
    """The catalogue's services whose names are closest to `name` (a mistyped one), best first."""
    return difflib.get_close_matches(name.lower(), services(catalogue), n=limit, cutoff=0.6)
