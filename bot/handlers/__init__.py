"""Use cases: what Paved does for each kind of event, given its collaborators.

Handlers never read the environment or build clients: a `Context` carries the forge, the mirrors and
the catalogue store, built once by the service, the worker or `paved ci`.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.catalog import CatalogueStore
from bot.forge import Forge, Mirror
from bot.provider import Provider


@dataclass(frozen=True, slots=True)
class Context:
    """The collaborators every handler is given: `providers` make merged requests real."""

    forge: Forge
    mirror: Mirror
    store: CatalogueStore
    providers: tuple[Provider, ...] = ()
