"""Providers are plugins: every entry point of `paved.providers` names one, Paved's own included.

A third-party provider is a package with a `ProviderPlugin` and an entry point; the tests install such
packages the way pip leaves them (a module and a `*.dist-info` folder with `entry_points.txt`) into a
temporary folder on `sys.path`.
"""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Callable, Iterator
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from bot.config import load_config
from bot.errors import ConfigurationError
from bot.model import MemoryTree
from bot.provider import ProviderEnv
from bot.providers import GROUP, build, discover, losing_data, settings_schemas
from bot.providers.database import DatabaseProvider
from bot.providers.github.provider import GitHubProvider

Install = Callable[[str, str], None]

# A provider of buckets, as a third party writes it: the plugin, its settings schema and the provider.
BUCKETS = '''
from bot.provider import ProviderPlugin, Result

class Buckets:
    kinds = ("Bucket",)

    def __init__(self, data_dir):
        self.data_dir = data_dir

    def observe(self, resource, target):
        return None

    def plan(self, desired, actual, target, previous=None):
        return []

    def apply(self, desired, target, previous=None):
        return Result((desired or previous).identity, "unchanged")

plugin = ProviderPlugin(
    name="buckets", kinds=("Bucket",), build=lambda env: Buckets(env.data_dir),
    settings_schema={"type": "object", "additionalProperties": False,
                     "properties": {"region": {"enum": ["eu", "us"]}}},
)
'''


@pytest.fixture
def install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Install]:
    """Install a one-module distribution whose entry point `NAME = MODULE:plugin` names a provider plugin."""
    site = tmp_path / "site-packages"
    site.mkdir()
    modules: list[str] = []

    def installed(name: str, source: str) -> None:
        module = f"paved_{name}_plugin"
        (site / f"{module}.py").write_text(textwrap.dedent(source), encoding="utf-8")
        info = site / f"{module}-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 1.0\n", encoding="utf-8")
        (info / "entry_points.txt").write_text(f"[{GROUP}]\n{name} = {module}:plugin\n", encoding="utf-8")
        modules.append(module)

    monkeypatch.syspath_prepend(str(site))
    yield installed
    for module in modules:
        sys.modules.pop(module, None)


def env(tmp_path: Path) -> ProviderEnv:
    return ProviderEnv(github=None, token=lambda: "unused", data_dir=tmp_path, server={}.get)  # type: ignore[arg-type]


def test_paveds_own_providers_are_registered_as_entry_points() -> None:
    registered = {ep.name: ep.value for ep in entry_points(group=GROUP)}
    assert registered["github"] == "bot.providers.github:plugin"
    assert registered["postgres"] == "bot.providers.database:plugin"


def test_the_built_in_providers_are_found_and_built_through_their_entry_points(tmp_path: Path) -> None:
    plugins = {plugin.name: plugin for plugin in discover()}
    assert plugins["github"].kinds == ("Team", "Service", "Access", "Environment")
    assert plugins["postgres"].kinds == ("Database",)
    providers = build([plugins["github"], plugins["postgres"]], env(tmp_path))
    assert [type(p) for p in providers] == [GitHubProvider, DatabaseProvider]


def test_a_third_party_provider_is_found_and_builds(install: Install, tmp_path: Path) -> None:
    install("buckets", BUCKETS)
    plugins = {plugin.name: plugin for plugin in discover()}
    assert {"github", "postgres", "buckets"} <= set(plugins)
    [provider] = build([plugins["buckets"]], env(tmp_path))
    assert provider.kinds == ("Bucket",)
    assert provider.data_dir == tmp_path  # type: ignore[attr-defined]


def test_a_plugin_that_fails_to_import_is_named_with_the_reason(install: Install) -> None:
    install("broken", "import paved_no_such_dependency\n")
    with pytest.raises(ConfigurationError) as refused:
        discover()
    assert refused.value.message == ("the provider plugin broken (paved_broken_plugin:plugin, from "
                                     "paved_broken_plugin 1.0) could not be loaded: ModuleNotFoundError: No module "
                                     "named 'paved_no_such_dependency'")


def test_an_entry_point_that_names_no_plugin_is_refused(install: Install) -> None:
    install("stray", "plugin = 'a provider, honestly'\n")
    with pytest.raises(ConfigurationError, match=r"stray \(paved_stray_plugin:plugin.*names a str, not a "
                                                 r"bot\.provider\.ProviderPlugin"):
        discover()


def test_two_plugins_claiming_one_kind_are_refused_naming_both(install: Install) -> None:
    install("rival", """
        from bot.provider import ProviderPlugin
        plugin = ProviderPlugin(name="rival", kinds=("Database",), build=lambda env: None)
    """)
    with pytest.raises(ConfigurationError) as refused:
        discover()
    assert refused.value.message.startswith("two provider plugins make Database resources: postgres "
                                            "(bot.providers.database:plugin, from paved ")
    assert refused.value.message.endswith("and rival (paved_rival_plugin:plugin, from paved_rival_plugin 1.0)")


def test_a_providers_settings_are_validated_by_its_own_schema(install: Install) -> None:
    install("buckets", BUCKETS)
    schemas = settings_schemas(discover())
    text = b"providers:\n  postgres:\n    connectionEnv: PG\n  buckets:\n    region: mars\n"
    with pytest.raises(ConfigurationError) as refused:
        load_config(MemoryTree({"paved.yaml": text}), schemas)
    assert (refused.value.path, refused.value.line) == ("paved.yaml", 5)
    assert refused.value.message.startswith('paved.yaml:5: /providers/buckets/region: "mars" is not one of')


def test_valid_settings_reach_the_provider_they_are_for(install: Install) -> None:
    install("buckets", BUCKETS)
    text = b"providers:\n  buckets:\n    region: eu\n"
    config = load_config(MemoryTree({"paved.yaml": text}), settings_schemas(discover()))
    assert config.settings_of("buckets") == {"region": "eu"}


def test_the_database_providers_settings_are_checked_by_its_schema() -> None:
    text = b"providers:\n  postgres:\n    connectionEnv: lowercase-dsn\n"
    with pytest.raises(ConfigurationError, match=r"^paved\.yaml:3: /providers/postgres/connectionEnv: "):
        load_config(MemoryTree({"paved.yaml": text}), settings_schemas(discover()))


def test_databases_would_lose_their_data_with_the_machine_only_when_paved_yaml_names_no_server() -> None:
    plugins = discover()
    bare = load_config(MemoryTree({"paved.yaml": b"providers:\n  github: {}\n"}), settings_schemas(plugins))
    served = load_config(MemoryTree({"paved.yaml": b"providers:\n  postgres:\n    connectionEnv: PAVED_DSN\n"}),
                         settings_schemas(plugins))

    assert sorted(losing_data(plugins, bare)) == ["Database"]
    assert losing_data(plugins, bare)["Database"].pointer == "/spec/engine"
    assert losing_data(plugins, served) == {}


def test_a_section_for_a_provider_that_is_not_installed_names_the_installed_ones() -> None:
    text = b"# settings\nproviders:\n  buckets:\n    region: eu\n"
    with pytest.raises(ConfigurationError) as refused:
        load_config(MemoryTree({"paved.yaml": text}), settings_schemas(discover()))
    assert refused.value.message == ("paved.yaml:3: /providers/buckets: no installed provider is named 'buckets' "
                                     "(installed: github, postgres)")
