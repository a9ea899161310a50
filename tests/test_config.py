"""paved.yaml: optional, validated once, wrong settings named by line."""

from __future__ import annotations

import pytest

from bot.config import RepoConfig, load_config
from bot.errors import ConfigurationError
from bot.model import MemoryTree

# What an installed provider says its `providers.postgres` section may hold (the loader passes these in).
PROVIDERS = {"postgres": {"type": "object", "additionalProperties": False,
                          "properties": {"connectionEnv": {"type": "string", "pattern": "^[A-Z_][A-Z0-9_]*$"}}}}


def test_a_repo_without_paved_yaml_gets_the_defaults() -> None:
    assert load_config(MemoryTree({}), PROVIDERS) == RepoConfig("write", ("production", "critical"), (), None, {})


def test_every_setting_is_read() -> None:
    text = (b"commands:\n  permission: maintain\napprovals:\n  tiers: [critical]\n  platformOwners: [platform]\n"
            b"github:\n  organization: acme\nproviders:\n  postgres:\n    connectionEnv: PLATFORM_PG\n")
    assert load_config(MemoryTree({"paved.yaml": text}), PROVIDERS) == RepoConfig(
        "maintain", ("critical",), ("platform",), "acme", {"postgres": {"connectionEnv": "PLATFORM_PG"}})


def test_a_provider_reads_its_own_settings_and_nothing_for_a_provider_the_file_leaves_out() -> None:
    config = load_config(MemoryTree({"paved.yaml": b"providers:\n  postgres:\n    connectionEnv: PG\n"}), PROVIDERS)
    assert config.settings_of("postgres") == {"connectionEnv": "PG"}
    assert config.settings_of("github") == {}


def test_a_wrong_setting_names_the_file_and_line() -> None:
    with pytest.raises(ConfigurationError, match=r"paved\.yaml:3: /commands/permission"):
        load_config(MemoryTree({"paved.yaml": b"# settings\ncommands:\n  permission: everyone\n"}), PROVIDERS)


def test_an_unknown_setting_is_refused() -> None:
    with pytest.raises(ConfigurationError, match=r"paved\.yaml:1"):
        load_config(MemoryTree({"paved.yaml": b"comands: {}\n"}), PROVIDERS)
