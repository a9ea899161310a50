"""`paved explain` and `paved new`: what a kind's documentation promises is what Paved does, and a new
request starts from something the platform's rules accept."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from github import Github

from bot.adapters.repo import FolderTree
from bot.cli import main
from bot.model import Resource
from bot.provider import ProviderEnv, Target
from bot.providers.github import plugin as github_plugin
from tests.conftest import PROJECT


def test_explain_service_names_the_role_the_provider_gives_the_owning_team(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # What the GitHub provider plans for a new service, read offline: nothing exists yet, so no request is sent.
    example = json.loads((PROJECT / "schemas/kinds/service.json").read_text())["examples"][0]
    service = Resource("Service", example["metadata"]["name"], example["metadata"]["owner"],
                       "catalog/services/payments-api.yaml", 0, 1, example)
    provider = github_plugin.build(ProviderEnv(Github(base_url="http://127.0.0.1:9"), lambda: "", tmp_path,
                                               lambda variable: None))
    steps = provider.plan(service, None, Target("acme", "acme/platform", FolderTree(PROJECT), "HEAD"))
    [role] = [m.group(1) for s in steps if (m := re.fullmatch(r"give team payments (\w+) on acme/payments-api",
                                                               s.description))]

    assert main(["explain", "Service", "--repo", str(PROJECT)]) == 0
    lines = capsys.readouterr().out.splitlines()
    owner = lines[lines.index("  metadata.owner  (string, required)") + 1].strip()
    assert owner.startswith(f"The name of the Team that owns the service: it gets the `{role}` role on the repository")
