"""The plugin as Paved finds it, and what the provider refuses before it calls Redis."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from conftest import VARIABLE, queue, target
from paved_queue import plugin
from paved_queue.provider import QueueProvider

from bot.config import load_config
from bot.errors import ConfigurationError, PavedError
from bot.model import MemoryTree
from bot.provider import ProviderPlugin

EXAMPLE = Path(__file__).resolve().parent.parent
SCHEMA = json.loads((EXAMPLE / "schemas" / "kinds" / "queue.json").read_text(encoding="utf-8"))


def nowhere(variable: str) -> str | None:
    raise AssertionError("the provider asked for its Redis before checking what it was given")


def test_the_plugin_is_named_like_its_settings_section_and_makes_queues() -> None:
    assert isinstance(plugin, ProviderPlugin)
    assert (plugin.name, plugin.kinds) == ("queue", ("Queue",))


def test_paved_yaml_names_the_variable_holding_the_redis_url() -> None:
    text = b"providers:\n  queue:\n    connectionEnv: PAVED_QUEUE_REDIS_URL\n    keyPrefix: 'queues:'\n"
    config = load_config(MemoryTree({"paved.yaml": text}), {"queue": plugin.settings_schema})
    assert config.settings_of("queue") == {"connectionEnv": "PAVED_QUEUE_REDIS_URL", "keyPrefix": "queues:"}


@pytest.mark.parametrize("section", [
    "connectionEnv: redis://10.0.0.5:6379/0",   # the address itself, which would put it in git
    "connectionEnv: PAVED_QUEUE_REDIS_URL\n    keyPrefix: 'no-colon'",
    "keyPrefix: 'queues:'",                      # no Redis named at all
])
def test_paved_yaml_settings_that_do_not_name_a_variable_are_refused_at_their_line(section: str) -> None:
    text = f"providers:\n  queue:\n    {section}\n".encode()
    with pytest.raises(ConfigurationError, match=r"^paved\.yaml:\d+: /providers/queue"):
        load_config(MemoryTree({"paved.yaml": text}), {"queue": plugin.settings_schema})


def test_the_kinds_schema_accepts_its_own_example_and_rejects_a_name_redis_would_misread() -> None:
    jsonschema.Draft202012Validator(SCHEMA).validate(SCHEMA["examples"][0])
    hostile = json.loads(json.dumps(SCHEMA["examples"][0]))
    hostile["metadata"]["name"] = "orders*"
    assert not jsonschema.Draft202012Validator(SCHEMA).is_valid(hostile)


@pytest.mark.parametrize("name", ["orders*", "paved:queue:x", "Orders", "a" * 64, ""])
def test_a_queue_name_that_is_not_a_dns_label_is_refused_before_any_redis_call(name: str) -> None:
    provider = QueueProvider(nowhere)
    with pytest.raises(PavedError, match="is not a valid queue name"):
        provider.observe(queue(name), target("queues:"))
    result = provider.apply(queue(name), target("queues:"))
    assert result.status == "failed" and "Redis was not called" in result.message


def test_a_consumer_group_that_is_not_a_dns_label_is_refused_before_any_redis_call() -> None:
    result = QueueProvider(nowhere).apply(queue(consumerGroups=["ok", "*"]), target("queues:"))
    assert result.status == "failed"


def test_without_providers_queue_in_paved_yaml_the_plan_says_what_to_add() -> None:
    bare = target("queues:")
    bare = type(bare)(organization="acme", platform_repo="acme/platform", tree=bare.tree, revision=bare.revision)
    with pytest.raises(PavedError, match=r"paved\.yaml names no Redis for queues: add providers\.queue\.connectionEnv"):
        QueueProvider(nowhere).observe(queue(), bare)


def test_a_variable_that_is_not_set_where_paved_runs_is_named() -> None:
    with pytest.raises(PavedError) as refused:
        QueueProvider({}.get).observe(queue(), target("queues:"))
    assert refused.value.message == (f"paved.yaml puts queues on the Redis in ${VARIABLE}, but {VARIABLE} is not "
                                     "set where Paved runs")


def test_an_unreachable_redis_is_a_message_without_its_password() -> None:
    provider = QueueProvider({VARIABLE: "redis://:hunter2-secret@127.0.0.1:9/0"}.get)
    with pytest.raises(PavedError) as refused:
        provider.observe(queue(), target("queues:"))
    assert refused.value.message.startswith(f"the Redis in ${VARIABLE} could not be read: ")
    assert "hunter2" not in refused.value.message
