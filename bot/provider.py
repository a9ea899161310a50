"""The provider port: how a request becomes real, and how Paved knows what is real.

A provider looks after some kinds (GitHub repositories for `Service`, team grants for `Access`, ...).
It can `observe` what exists, `plan` the steps from that to what a request asks (the plan on the pull
request shows them, so it reflects live state), and `apply` them, idempotently: applying a state that
already holds takes no step. Nothing here does I/O.

Providers are plugins: a package offers one as a `ProviderPlugin` named by an entry point of the group
`paved.providers`, and `bot.providers` finds them. Paved's own (`github`, `postgres`, in
`bot/providers/`) are registered in its `pyproject.toml` exactly as a third-party package registers its:

```toml
[project.entry-points."paved.providers"]
buckets = "acme_paved:plugin"      # a ProviderPlugin named "buckets"
```
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar, runtime_checkable

from bot.config import RepoConfig
from bot.model import Keeping, Resource, Tree

if TYPE_CHECKING:
    from github import Github

Verb = Literal["create", "update", "delete"]
Status = Literal["applied", "unchanged", "failed", "skipped", "drifted"]


@dataclass(frozen=True, slots=True)
class Step:
    """One thing a provider will do, in words a developer reads on the pull request."""

    resource: str
    verb: Verb
    description: str
    destructive: bool = False


@dataclass(frozen=True, slots=True)
class Result:
    """What applying one resource did. `outputs` are links and names to show (never credentials)."""

    resource: str
    status: Status
    message: str = ""
    steps: tuple[Step, ...] = ()
    outputs: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Target:
    """Where and from what a provider builds: the organization, the merged platform repo and its settings.

    `followed` holds, for each parent of a resource being applied, the names its followed resources hand
    to their followers (the kinds' `follows`: a service's deployment environments, for its databases).
    `history` opens the platform repo at a commit in the history of `revision` (None for a commit that
    history does not hold), for what is built from an earlier commit: a golden path at its pin. Where it
    is None, only `revision` can be read.
    """

    organization: str
    platform_repo: str
    tree: Tree
    revision: str
    followed: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    config: RepoConfig = field(default_factory=RepoConfig)
    history: Callable[[str], Tree | None] | None = None


# What a provider observes of a resource: its own frozen data class (`ObservedTeam`, `ObservedDatabase`, ...).
Observed = TypeVar("Observed")


class Provider(Protocol[Observed]):
    """Makes resources of some kinds real.

    Generic over what it observes, so that mypy checks each provider's `plan` takes exactly what its
    `observe` returns, and each provider reads typed fields rather than a dict. The core never looks
    inside observed state: it only hands what one provider's `observe` gave back to that provider's
    `plan`, so it holds providers as a bare `Provider` (`Provider[Any]`), which fits every one. (A port
    typed `observe(...) -> object` would instead make every provider narrow its argument at run time,
    and mypy could not see a provider's `plan` and `observe` disagree.)
    """

    kinds: tuple[str, ...]

    def observe(self, resource: Resource, target: Target) -> Observed | None:
        """The resource as it exists now, or None when it does not exist."""
        ...

    def plan(self, desired: Resource | None, actual: Observed | None, target: Target,
             previous: Resource | None = None) -> list[Step]:
        """The steps from `actual` to `desired` (None: delete `previous`). No steps: nothing to do."""
        ...

    def apply(self, desired: Resource | None, target: Target, previous: Resource | None = None) -> Result:
        """Observe, plan and take the steps; safe to run again."""
        ...


@runtime_checkable
class ObservesTogether(Provider[Observed], Protocol[Observed]):
    """A provider that reads all of a job's resources at once, and holds its connections for the job.

    Observing resource by resource costs each resource a round trip or a connection; a provider whose
    system can answer for many in one query (a server's catalog, one list of a repository's secrets)
    offers `observe_all`. Where a provider has it, Paved calls it once per job (an apply, a pull request's
    plan, a drift check) with every resource of the provider's kinds the job is about, hands what it read
    back to `plan`, and to `apply` as `observed`. From `observe_all` on, the provider may keep its
    connections open between resources; `close()` ends the job, and Paved calls it when the job is done
    with the provider, also when the job failed. Nothing read lives past `close()`: the next job, here or
    on another replica, reads again. A provider without `observe_all` is observed resource by resource.
    """

    def observe_all(self, resources: Sequence[Resource], target: Target) -> Mapping[str, Observed | None]:
        """Each of `resources` as it exists now, by identity (None: it does not exist); raises as
        `observe` does when they cannot be read. One it leaves out is observed alone (a request it refuses
        to read, so that the refusal is that request's only)."""
        ...

    def apply(self, desired: Resource | None, target: Target, previous: Resource | None = None,
              observed: Mapping[str, Observed | None] | None = None) -> Result:
        """`Provider.apply`, starting from what `observe_all` read (`observed`) when it read the resource."""
        ...

    def close(self) -> None:
        """End the job: release every connection held since `observe_all`."""
        ...


# A provider's settings section when it has none to take: `providers.NAME: {}` and nothing else.
NO_SETTINGS: Mapping[str, Any] = {"type": "object", "additionalProperties": False, "properties": {}}


@dataclass(frozen=True, slots=True)
class ProviderEnv:
    """What Paved gives every provider it builds, whoever wrote it.

    `github` acts as Paved's App installation for the platform repo being worked on, and `token()` gives
    a credential for git over HTTPS as that installation (renewed by the caller). `data_dir` is Paved's
    data folder, which lasts between jobs where Paved runs as a service. `server(variable)` is the
    address a variable of Paved's environment holds (a database's connection string), or None when it
    is unset: `paved.yaml` names variables, never addresses or credentials.
    """

    github: Github
    token: Callable[[], str]
    data_dir: Path
    server: Callable[[str], str | None]


@dataclass(frozen=True, slots=True)
class ProviderPlugin:
    """A provider as a package offers it: what an entry point of the group `paved.providers` names.

    `name` is its key under `providers:` in `paved.yaml`, where `settings_schema` (a JSON Schema, draft
    2020-12) validates its section; the provider reads the result from `target.config.settings_of(name)`.
    `kinds` are the kinds it makes real: no two installed plugins may claim one. `build(env)` makes the
    provider for one job. Finding plugins imports each one's module: a plugin that imports its provider's
    libraries inside `build` keeps that cheap (as `bot.providers.github` does).

    A provider of kinds that keep data (`keepsData`) and can keep it on Paved's own machine sets
    `keeping`, and `lasting(settings)` says whether its section names a lasting home instead (a server):
    where Paved's machine is thrown away after the job, a request for such a kind without one is refused.
    """

    name: str
    kinds: tuple[str, ...]
    build: Callable[[ProviderEnv], Provider]
    settings_schema: Mapping[str, Any] = field(default_factory=lambda: dict(NO_SETTINGS))
    keeping: Keeping | None = None
    lasting: Callable[[Mapping[str, Any]], bool] = lambda _settings: True
