"""Use cases: what Paved does for each kind of event, given its collaborators.

Handlers never read the environment or build clients: a `Context` carries the forge, the mirrors and
the catalogue index, built once by the service, the worker or `paved ci`, and the lease the job holds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bot.adapters.catalogue_index import SQLiteCatalogueIndex
from bot.adapters.leases import ALWAYS_HELD, Held
from bot.config import RepoConfig
from bot.forge import Forge, Mirror
from bot.provider import Provider


@dataclass(frozen=True, slots=True)
class Context:
    """The collaborators every handler is given: `providers` make merged requests real.

    `lease` is what the job holds while it runs (the repository's for an apply, the pull request's for a
    plan): a handler calls `lease.check()` before each external write that another job holding the same
    lease could also make, so a job that lost its lease (`LeaseLost`) publishes nothing. Work nothing
    can race (`paved ci`) keeps the default, which is always held.

    `embedded_databases` says whether a Database may be made by the embedded default (a SQLite file in
    the data folder) when `paved.yaml` names no server: true where the data folder lasts (`paved serve`),
    false in a job whose machine is thrown away (`paved ci`), where such a request is a finding instead.

    `provider_schemas` are the installed providers' settings schemas, by name, which `paved.yaml`'s
    `providers:` section is validated against; by default those of every installed provider plugin.
    """

    forge: Forge
    mirror: Mirror
    store: SQLiteCatalogueIndex
    providers: tuple[Provider, ...] = ()
    lease: Held = ALWAYS_HELD
    embedded_databases: bool = True
    provider_schemas: Mapping[str, Mapping[str, Any]] = field(default_factory=lambda: _installed_schemas())


def names_a_server(config: RepoConfig) -> bool:
    """Whether `paved.yaml` puts databases on a server, rather than leaving the `postgres` provider
    (`bot.providers.database`, not imported here: handlers stay light) to make embedded SQLite files."""
    return config.settings_of("postgres").get("connectionEnv") is not None


def _installed_schemas() -> dict[str, Mapping[str, Any]]:
    from bot.providers import installed, settings_schemas

    return settings_schemas(installed())
