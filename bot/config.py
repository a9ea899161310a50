"""`paved.yaml`: a platform repo's own settings for Paved, read from its default branch.

```yaml
commands:
  permission: write          # least permission on the platform repo to run /paved plan and retry
approvals:
  tiers: [production, critical]   # changes to these tiers need their owning teams' approval
  platformOwners: [platform]      # teams that approve rule changes (default: the platform repo's admin teams)
github:
  organization: acme         # where Service repositories are created (default: the platform repo's owner)
providers:
  postgres:
    connectionEnv: PAVED_POSTGRES_DSN   # the environment variable that holds the server's address
```

Every key is optional. The file names environment variables, never credentials. It is validated once
into a `RepoConfig`; nothing past this module reads the raw mapping.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jsonschema_rs

from bot.errors import ConfigurationError
from bot.model import Tree
from bot.yamlio import join, load

PATH = "paved.yaml"
PERMISSIONS = ["read", "triage", "write", "maintain", "admin"]

SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "paved.yaml",
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "commands": {
            "type": "object", "additionalProperties": False,
            "properties": {"permission": {"enum": PERMISSIONS, "description": "Least permission to run commands."}},
        },
        "approvals": {
            "type": "object", "additionalProperties": False,
            "properties": {
                "tiers": {"type": "array", "items": {"enum": ["experimental", "production", "critical"]},
                          "uniqueItems": True, "description": "Tiers whose changes need the owning teams' approval."},
                "platformOwners": {
                    "type": "array", "minItems": 1, "uniqueItems": True,
                    "items": {"type": "string", "pattern": "^[a-z][a-z0-9-]*$"},
                    "description": "Teams of the catalogue whose approval rule changes (schemas, templates, "
                                   "paved.yaml, workflows) need, and who approve new teams. Default: the teams "
                                   "with admin permission on the platform repo."},
            },
        },
        "github": {
            "type": "object", "additionalProperties": False,
            "properties": {"organization": {"type": "string", "pattern": "^[A-Za-z0-9][-A-Za-z0-9]*$",
                                            "description": "Where Service repositories are created."}},
        },
        "providers": {
            "type": "object", "additionalProperties": False,
            "properties": {"postgres": {
                "type": "object", "additionalProperties": False,
                "properties": {"connectionEnv": {"type": "string", "pattern": "^[A-Z_][A-Z0-9_]*$",
                                                 "description": "Environment variable with the server's DSN."}},
            }},
        },
    },
}


@dataclass(frozen=True, slots=True)
class RepoConfig:
    """A platform repo's settings, with Paved's defaults for whatever the file leaves out."""

    command_permission: str = "write"
    approval_tiers: tuple[str, ...] = ("production", "critical")
    platform_owners: tuple[str, ...] = ()  # empty: the platform repo's admin teams, as GitHub names them
    organization: str | None = None
    postgres_connection_env: str | None = None


def load_config(tree: Tree) -> RepoConfig:
    """The settings at `tree`; defaults when there is no `paved.yaml`; `ConfigurationError` when it is wrong."""
    try:
        raw = tree.read(PATH)
    except KeyError:
        return RepoConfig()
    loaded = load(PATH, raw)
    if loaded.findings:
        first = loaded.findings[0]
        raise ConfigurationError(first.message, path=PATH, line=first.line)
    if not loaded.documents or loaded.documents[0].data is None:
        return RepoConfig()
    document = loaded.documents[0]
    data = document.data
    validator = jsonschema_rs.validator_for(SCHEMA)
    for error in validator.iter_errors(data):
        pointer = "".join(join("", t) for t in error.instance_path)
        line = document.position(pointer)[0]
        raise ConfigurationError(f"{pointer or '(file)'}: {error.message}", path=PATH, line=line)
    return RepoConfig(
        command_permission=data.get("commands", {}).get("permission", "write"),
        approval_tiers=tuple(data.get("approvals", {}).get("tiers", ("production", "critical"))),
        platform_owners=tuple(data.get("approvals", {}).get("platformOwners", ())),
        organization=data.get("github", {}).get("organization"),
        postgres_connection_env=data.get("providers", {}).get("postgres", {}).get("connectionEnv"),
    )
