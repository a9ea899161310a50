"""`paved.yaml`: a platform repo's own settings for Paved, read from its default branch.

```yaml
commands:
  permission: write          # least permission on the platform repo to run /paved plan and retry
approvals:
  tiers: [production, critical]   # changes to these tiers need their owning teams' approval
  platformOwners: [platform]      # teams that approve rule changes (default: the platform repo's admin teams)
github:
  organization: acme         # where Service repositories are created (default: the platform repo's owner)
providers:                   # each installed provider's own settings, under its name
  postgres:
    connectionEnv: PAVED_POSTGRES_DSN   # the environment variable that holds the server's address
```

Every key is optional. The file names environment variables, never credentials. It is validated once
into a `RepoConfig`; nothing past this module reads the raw mapping. A section under `providers:` is
validated by the JSON Schema of the provider it names: the caller passes the installed providers'
schemas in (`bot.providers.settings_schemas`), so this module knows no provider and loads no plugin.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn

import jsonschema_rs

from bot.errors import ConfigurationError
from bot.model import Tree
from bot.yamlio import Document, join, load

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
        # Each section is checked against its provider's own schema (`load_config`).
        "providers": {"type": "object", "description": "Each installed provider's settings, under its name."},
    },
}


@dataclass(frozen=True, slots=True)
class RepoConfig:
    """A platform repo's settings, with Paved's defaults for whatever the file leaves out."""

    command_permission: str = "write"
    approval_tiers: tuple[str, ...] = ("production", "critical")
    platform_owners: tuple[str, ...] = ()  # empty: the platform repo's admin teams, as GitHub names them
    organization: str | None = None
    # Each provider's section under `providers:`, by the provider's name, as its schema validated it.
    providers: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def settings_of(self, provider: str) -> Mapping[str, Any]:
        """The settings `paved.yaml` gives the provider named `provider`; empty when it gives none."""
        return self.providers.get(provider, {})


def load_config(tree: Tree, provider_schemas: Mapping[str, Mapping[str, Any]]) -> RepoConfig:
    """The settings at `tree`; defaults when there is no `paved.yaml`; `ConfigurationError` when it is wrong.

    `provider_schemas` gives, for each installed provider's name, the JSON Schema of its section under
    `providers:`; a section naming no installed provider is wrong too.
    """
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
        _refuse(document, "", error)
    providers = _provider_settings(document, data.get("providers") or {}, provider_schemas)
    return RepoConfig(
        command_permission=data.get("commands", {}).get("permission", "write"),
        approval_tiers=tuple(data.get("approvals", {}).get("tiers", ("production", "critical"))),
        platform_owners=tuple(data.get("approvals", {}).get("platformOwners", ())),
        organization=data.get("github", {}).get("organization"),
        providers=providers,
    )


def _provider_settings(document: Document, sections: dict[str, Any],
                       schemas: Mapping[str, Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    """Each section under `providers:`, checked against the schema of the provider it names.

    Each is validated on its own rather than as part of one assembled schema, so that a provider's
    schema may use references (`#/$defs/...`) relative to itself.
    """
    for name, section in sections.items():
        pointer = join("/providers", name)
        if name not in schemas:
            installed = ", ".join(sorted(schemas)) or "none"
            raise ConfigurationError(f"{pointer}: no installed provider is named {name!r} (installed: {installed})",
                                     path=PATH, line=document.position(pointer, prefer_key=True)[0])
        for error in jsonschema_rs.validator_for(dict(schemas[name])).iter_errors(section):
            _refuse(document, pointer, error)
    return dict(sections)


def _refuse(document: Document, prefix: str, error: jsonschema_rs.ValidationError) -> NoReturn:
    """Raise the first thing wrong with the file, at its line, named by its JSON pointer."""
    pointer = prefix + "".join(join("", t) for t in error.instance_path)
    line = document.position(pointer)[0]
    raise ConfigurationError(f"{pointer or '(file)'}: {error.message}", path=PATH, line=line)
