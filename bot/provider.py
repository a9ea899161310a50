"""The provider port: how a request becomes real, and how Paved knows what is real.

A provider looks after some kinds (GitHub repositories for `Service`, team grants for `Access`, ...).
It can `observe` what exists, `plan` the steps from that to what a request asks (the plan on the pull
request shows them, so it reflects live state), and `apply` them, idempotently: applying a state that
already holds takes no step. Implementations live in `bot/providers/`; nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from bot.config import RepoConfig
from bot.model import Resource, Tree

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

    `teams` holds each team's people; `environments` each service's deployment environments (by the
    names the catalogue gives them), for the resources being applied.
    """

    organization: str
    platform_repo: str
    tree: Tree
    revision: str
    teams: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    environments: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    config: RepoConfig = field(default_factory=RepoConfig)


class Provider(Protocol):
    """Makes resources of some kinds real."""

    kinds: tuple[str, ...]

    def observe(self, resource: Resource, target: Target) -> dict[str, Any] | None:
        """The resource as it exists now, or None when it does not exist."""
        ...

    def plan(self, desired: Resource | None, actual: dict[str, Any] | None, target: Target,
             previous: Resource | None = None) -> list[Step]:
        """The steps from `actual` to `desired` (None: delete `previous`). No steps: nothing to do."""
        ...

    def apply(self, desired: Resource | None, target: Target, previous: Resource | None = None) -> Result:
        """Observe, plan and take the steps; safe to run again."""
        ...
