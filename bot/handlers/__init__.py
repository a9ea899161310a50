"""Use cases: what Paved does for each kind of event, given its collaborators.

Handlers never read the environment or build clients: a `Context` carries the forge, the mirrors and
the catalogue index, built once by the service, the worker or `paved ci`, and the lease the job holds.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bot.adapters.catalogue_index import SQLiteCatalogueIndex
from bot.adapters.leases import ALWAYS_HELD, Held
from bot.config import RepoConfig
from bot.forge import Forge, Mirror
from bot.model import Keeping, Tree
from bot.provider import Provider, ProviderPlugin
from bot.providers import installed, losing_data, settings_schemas


@dataclass(frozen=True, slots=True)
class Context:
    """The collaborators every handler is given: `providers` make merged requests real.

    `lease` is what the job holds while it runs (the repository's for an apply, the pull request's for a
    plan): a handler calls `lease.check()` before each external write that another job holding the same
    lease could also make, so a job that lost its lease (`LeaseLost`) publishes nothing. Work nothing
    can race (`paved ci`) keeps the default, which is always held.

    `data_lasts` says whether Paved's data folder outlasts the job: true for `paved serve`, false in a job
    whose machine is thrown away (`paved ci`), where a request whose data a provider would keep there (a
    database as a SQLite file, when `paved.yaml` names no server) is a finding instead.

    `plugins` are the provider plugins the providers were built from (by default every installed one):
    their settings schemas validate `paved.yaml`'s `providers:` section.
    """

    forge: Forge
    mirror: Mirror
    store: SQLiteCatalogueIndex
    providers: tuple[Provider, ...] = ()
    lease: Held = ALWAYS_HELD
    data_lasts: bool = True
    plugins: tuple[ProviderPlugin, ...] = field(default_factory=installed)

    @property
    def provider_schemas(self) -> dict[str, Mapping[str, Any]]:
        return settings_schemas(self.plugins)

    def history(self, repo: str, head: str) -> Callable[[str], Tree | None]:
        """`Target.history` for the platform repo `repo` applied at `head`: the mirror at a commit `head`'s
        history holds, or None (a commit nobody merged, or one the mirror never saw)."""

        def at(commit: str) -> Tree | None:
            return self.mirror.tree(repo, commit) if self.mirror.holds(repo, commit, head) else None

        return at

    def losing_data(self, config: RepoConfig) -> dict[str, Keeping]:
        """The kinds whose data a request would lose with this job's machine (none where it lasts)."""
        return {} if self.data_lasts else losing_data(self.plugins, config)
