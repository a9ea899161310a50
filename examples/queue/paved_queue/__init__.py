"""Queues for Paved: each `Queue` request becomes a Redis stream with its consumer groups.

This package is the whole of the `Queue` kind's making: Paved finds it through its entry point
(`queue = "paved_queue:plugin"` in the group `paved.providers`, see pyproject.toml) once it is installed
where Paved runs, and the platform repo describes the kind with `schemas/kinds/queue.json` (copied from
this package's `schemas/`). Paved itself names no queue anywhere.

The plugin only describes the provider here; `build` imports the provider (and redis-py) when a job
needs it, so finding plugins at start stays cheap.
"""

from __future__ import annotations

from typing import Any

from bot.provider import Provider, ProviderEnv, ProviderPlugin

# The provider's name: its key under `providers:` in paved.yaml, and its entry point's.
NAME = "queue"
KINDS = ("Queue",)

# `providers.queue` in paved.yaml. Paved validates the section against this before any job runs, so a
# typo in a platform repo's settings is an error at its line, never a Redis call to the wrong place.
SETTINGS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["connectionEnv"],
    "properties": {
        "connectionEnv": {
            "type": "string", "pattern": "^[A-Z_][A-Z0-9_]*$",
            "description": "The environment variable, where Paved runs, holding the Redis URL queues live on "
                           "(redis://, rediss:// with a password and database number). Never the URL itself: "
                           "paved.yaml is in git.",
        },
        "keyPrefix": {
            "type": "string", "pattern": "^([a-z0-9][a-z0-9._-]{0,30}:)?$", "default": "",
            "description": "Put before every key Paved makes, ending in ':' (`queues:` makes the stream "
                           "`queues:orders-placed`), to keep queues apart from other data in the same Redis.",
        },
    },
}


def _build(env: ProviderEnv) -> Provider:
    from paved_queue.provider import QueueProvider

    # The Redis address is read from Paved's environment by the variable paved.yaml names, through
    # Paved's own settings (`env.server`): the provider never reads the environment itself.
    return QueueProvider(env.server)


# Named by the entry point `queue` of `paved.providers` in this package's pyproject.toml.
plugin = ProviderPlugin(name=NAME, kinds=KINDS, settings_schema=SETTINGS_SCHEMA, build=_build)
