"""`paved explain` and `paved new`: what a kind's documentation promises is what Paved does, and a new
request starts from something the platform's rules accept."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import yaml
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


# -- paved new ------------------------------------------------------------------------------------------

# What only the author of a new request can say, which `paved new` leaves empty for validation to name: a
# description, and the resources the request belongs to or grants (a database's service, the team an
# Access lets in). Anything Paved filled in there would validate and could be merged unnoticed.
LEFT_TO_FILL = {
    "Team": ["metadata.description"],
    "Service": ["metadata.description"],
    "Database": ["metadata.description", "spec.service"],
    "Environment": ["metadata.description", "spec.service"],
    "Access": ["metadata.description", "spec.team", "spec.service"],
}
BUNDLED_KINDS = sorted(json.loads(p.read_text())["properties"]["kind"]["const"]
                       for p in (PROJECT / "schemas/kinds").glob("*.json"))


@pytest.fixture
def repo_copy(tmp_path: Path) -> Path:
    """The bundled platform repo's catalogue and rules, in a folder of the test's own."""
    for folder in ("catalog", "schemas", "templates"):
        shutil.copytree(PROJECT / folder, tmp_path / folder)
    return tmp_path


def findings_of(root: Path, capsys: pytest.CaptureFixture[str]) -> list[dict[str, object]]:
    capsys.readouterr()
    main(["validate", "--repo", str(root), "--no-cache", "--format", "json"])
    found: list[dict[str, object]] = json.loads(capsys.readouterr().out)["findings"]
    return found


def new(root: Path, kind: str, name: str, owner: str) -> dict[str, object]:
    assert main(["new", kind, name, "--owner", owner, "--repo", str(root)]) == 0
    [written] = root.glob(f"catalog/*/{name}.yaml")
    data: dict[str, object] = yaml.safe_load(written.read_text())
    return data


@pytest.mark.parametrize("kind", BUNDLED_KINDS)
def test_a_new_request_of_every_kind_is_refused_only_where_its_author_must_fill_it_in(
        kind: str, repo_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    new(repo_copy, kind, "x", "platform")

    findings = findings_of(repo_copy, capsys)

    assert [(f["rule"], f["message"]) for f in findings] == [
        ("schema", f"`{field}` is empty: fill it in") for field in LEFT_TO_FILL[kind]]


def test_a_new_database_filled_in_with_a_service_of_its_owner_passes_every_policy(
        repo_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    new(repo_copy, "Service", "reports", "data")
    new(repo_copy, "Database", "reports-db", "data")
    for path, fill in (("services/reports.yaml", "description: ''"), ("databases/reports-db.yaml", "description: ''")):
        target = repo_copy / "catalog" / path
        target.write_text(target.read_text().replace(fill, "description: Monthly reports."))
    target = repo_copy / "catalog/databases/reports-db.yaml"
    target.write_text(target.read_text().replace("service: ''", "service: reports"))

    assert findings_of(repo_copy, capsys) == []


@pytest.mark.parametrize("owner", ["platform", "payments"])  # payments owns the schema's own example
def test_a_new_production_environment_waits_for_its_owning_teams_approval(owner: str, repo_copy: Path) -> None:
    spec = new(repo_copy, "Environment", "x", owner)["spec"]

    assert spec == {"service": "", "name": "production", "requiredReviewers": [owner], "waitTimer": 10,
                    "deploymentBranches": ["main", "release/*"]}


def test_a_new_team_says_nothing_of_the_example_team(repo_copy: Path) -> None:
    spec = new(repo_copy, "Team", "search", "platform")["spec"]

    assert spec == {"members": ["alice", "bob"], "maintainers": ["alice", "bob"], "budget": {"monthly": 500}}
