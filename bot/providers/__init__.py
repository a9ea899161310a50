"""Providers: what makes merged requests real, found as plugins (`bot/provider.py` is their port).

Every entry point of the group `paved.providers` of an installed distribution names a `ProviderPlugin`.
Paved's own, `github` (`bot/providers/github/`) and `postgres` (`bot/providers/database.py`), are
registered in its `pyproject.toml` the way a third-party package registers its own, so the composition
root (`bot.composition.context_for`) and `paved.yaml`'s validation name no concrete provider.

A plugin that cannot be loaded, or two plugins for one name or one kind, stop Paved with a
`ConfigurationError` naming the entry points: Paved never guesses which of two providers owns a kind.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from importlib.metadata import EntryPoint, entry_points
from typing import Any

import jsonschema_rs

from bot.config import RepoConfig
from bot.errors import ConfigurationError
from bot.model import Keeping
from bot.provider import Provider, ProviderEnv, ProviderPlugin

GROUP = "paved.providers"
_UNINSTALL = "Uninstall one of them, or ask their authors which one to keep."


def discover(found: Iterable[EntryPoint] | None = None) -> tuple[ProviderPlugin, ...]:
    """The plugins `found` names (by default, every entry point of `paved.providers` installed now),
    by name; raises `ConfigurationError` when one cannot be loaded, or two share a name or a kind."""
    named = sorted(found if found is not None else entry_points(group=GROUP), key=lambda ep: (ep.name, ep.value))
    loaded: list[tuple[EntryPoint, ProviderPlugin]] = []
    for entry_point in named:
        if any(seen.value == entry_point.value for seen, _ in loaded):
            continue  # one distribution found twice on the path: the same plugin, not a rival
        loaded.append((entry_point, _load(entry_point)))
    owners: dict[str, EntryPoint] = {}
    for entry_point, plugin in loaded:
        for kind in plugin.kinds:
            rival = owners.setdefault(kind, entry_point)
            if rival is not entry_point:
                raise ConfigurationError(
                    f"two provider plugins make {kind} resources: {_named(rival)} and {_named(entry_point)}",
                    hint=_UNINSTALL)
    names: dict[str, EntryPoint] = {}
    for entry_point, plugin in loaded:
        rival = names.setdefault(plugin.name, entry_point)
        if rival is not entry_point:
            raise ConfigurationError(f"two provider plugins are named {plugin.name}: {_named(rival)} and "
                                     f"{_named(entry_point)}", hint=_UNINSTALL)
    return tuple(plugin for _, plugin in loaded)


@functools.cache
def installed() -> tuple[ProviderPlugin, ...]:
    """The installed plugins, found once per process (installing a package needs a restart anyway)."""
    return discover()


def settings_schemas(plugins: Iterable[ProviderPlugin]) -> dict[str, Mapping[str, Any]]:
    """Each plugin's name and the JSON Schema of its section under `providers:` in `paved.yaml`."""
    return {plugin.name: plugin.settings_schema for plugin in plugins}


def losing_data(plugins: Iterable[ProviderPlugin], config: RepoConfig) -> dict[str, Keeping]:
    """The kinds whose provider, under `config`, would keep their data on Paved's own machine, and how
    each would: what `refuse_lost_data` refuses where that machine is thrown away after the job."""
    return {kind: plugin.keeping for plugin in plugins
            if plugin.keeping is not None and not plugin.lasting(config.settings_of(plugin.name))
            for kind in plugin.kinds}


def build(plugins: Iterable[ProviderPlugin], env: ProviderEnv) -> tuple[Provider, ...]:
    """The providers for one job: each plugin's, built with what Paved gives them."""
    built: list[Provider] = []
    for plugin in plugins:
        try:
            provider = plugin.build(env)
        except ConfigurationError:
            raise
        except Exception as exc:
            raise ConfigurationError(f"the provider plugin {plugin.name} could not build its provider: "
                                     f"{_failure(exc)}") from exc
        extra = sorted(set(provider.kinds) - set(plugin.kinds))
        if extra:
            raise ConfigurationError(f"the provider plugin {plugin.name} built a provider for {', '.join(extra)}, "
                                     f"which it does not declare (it declares {', '.join(plugin.kinds) or 'none'})")
        built.append(provider)
    return tuple(built)


def _load(entry_point: EntryPoint) -> ProviderPlugin:
    try:
        plugin = entry_point.load()
    except Exception as exc:  # whatever its import raises: the plugin's code, not Paved's
        raise ConfigurationError(f"the provider plugin {_named(entry_point)} could not be loaded: {_failure(exc)}",
                                 hint=f"Reinstall the package that provides it ({_distribution(entry_point)}), "
                                      "or uninstall it.") from exc
    if not isinstance(plugin, ProviderPlugin):
        raise ConfigurationError(f"the provider plugin {_named(entry_point)} names a {type(plugin).__name__}, "
                                 "not a bot.provider.ProviderPlugin")
    if plugin.name != entry_point.name:
        raise ConfigurationError(f"the provider plugin {_named(entry_point)} calls itself {plugin.name!r}: an "
                                 "entry point of paved.providers is named like the plugin it names")
    try:
        jsonschema_rs.validator_for(dict(plugin.settings_schema))
    except (ValueError, TypeError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigurationError(f"the provider plugin {_named(entry_point)} has a settings schema that is not "
                                 f"a JSON Schema: {first}") from exc
    return plugin


def _named(entry_point: EntryPoint) -> str:
    """An entry point as a person finds it again: its name, its target and its distribution."""
    return f"{entry_point.name} ({entry_point.value}, from {_distribution(entry_point)})"


def _distribution(entry_point: EntryPoint) -> str:
    dist = entry_point.dist
    return f"{dist.name} {dist.version}" if dist is not None else "an unknown distribution"


def _failure(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
