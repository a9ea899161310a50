"""Every service repository Paved scaffolds says where it came from, and so does the apply's note.

A new repository's first commit holds `.paved/scaffold.json` (template, platform commit, answers), and
the apply's result in the platform repo's note names the same template and commit with the answers'
digest. Over real HTTP to the sandbox forge, with the real renderer and real git.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import yaml

from bot.adapters.scaffold import answers_digest, write_record
from bot.apply import NOTES_REF, read_records
from bot.handlers.push import apply_default_branch
from bot.model import Resource
from bot.providers.github.provider import GitHubProvider
from tests.conftest import PROJECT, REPO, Provisioner, World
from tests.test_provider_github import request

TEAM = """
kind: Team
metadata: {name: payments, owner: payments, description: Takes card payments.}
spec: {members: [alice, bob], maintainers: [alice]}
"""

CATALOGUE_PEOPLE = {login for path in (PROJECT / "catalog/teams").glob("*.yaml")
                    for data in yaml.safe_load_all(path.read_text()) if data
                    for login in [*data["spec"].get("members", []), *data["spec"].get("maintainers", [])]}
HOSTILE = "{{ 7*7 }} \"quoted\" 'single'\nsecond line {% raw %} `ticks` | pipe"


def service(description: str = "Finds products.") -> Resource:
    resource = request(f"""
        kind: Service
        metadata: {{name: finder, owner: payments, description: {json.dumps(description)}}}
        spec:
          template: {{name: worker, parameters: {{}}}}
          tier: production
        """)
    return resource


def created(provisioner: Provisioner, description: str = "Finds products.") -> dict[str, Any]:
    """`finder` applied from acme's merged platform repo: its recorded `.paved/scaffold.json`, its outputs."""
    provider = GitHubProvider(provisioner.client, provisioner.token)
    assert provider.apply(request(TEAM), provisioner.target).status == "applied"
    result = provider.apply(service(description), provisioner.target)
    assert result.status == "applied", result.message
    return {"outputs": dict(result.outputs)}


def record_in(world: World, repo: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(world.forge.read_file("acme", repo, ".paved/scaffold.json"))
    return data


def test_a_new_service_records_its_template_the_platform_commit_and_its_answers(
        world: World, provisioner: Provisioner) -> None:
    created(provisioner)
    record = record_in(world, "finder")
    assert (record["version"], record["template"], record["commit"]) == (1, "worker", provisioner.target.revision)
    answers = record["answers"]
    assert (answers["name"], answers["owner"], answers["description"]) == ("finder", "payments", "Finds products.")
    assert (answers["_github_org"], answers["_tier"]) == ("acme", "production")
    assert not {"_template", "_output_dir", "_repo_dir", "_checkout"} & answers.keys()


def test_the_apply_result_names_the_template_its_commit_and_the_answers_digest(
        world: World, provisioner: Provisioner) -> None:
    outputs = created(provisioner)["outputs"]
    record = record_in(world, "finder")
    assert (outputs["template"], outputs["template_commit"]) == ("worker", provisioner.target.revision)
    assert outputs["template_answers"] == answers_digest(record["answers"])


def test_a_hostile_description_is_recorded_as_literal_data(world: World, provisioner: Provisioner) -> None:
    outputs = created(provisioner, HOSTILE)["outputs"]
    record = record_in(world, "finder")
    assert record["answers"]["description"] == HOSTILE
    assert HOSTILE not in " ".join(outputs.values())  # results show outputs: never request text


def test_the_merge_that_asks_for_a_service_notes_where_its_repository_came_from(
        world: World, provisioner: Provisioner) -> None:
    for login in CATALOGUE_PEOPLE - {"alice", "bob", "carol", "dave", "erin"}:
        world.forge.create_user(login)  # so that the catalogue's teams, and the services they own, apply
    ctx = dataclasses.replace(world.ctx, providers=(GitHubProvider(provisioner.client, provisioner.token),))
    example = PROJECT / "examples/new-search-service"
    world.forge.push_files("acme", "platform", "search", {
        path: (example / path).read_text()
        for path in ("catalog/services/search.yaml", "catalog/teams/growth.yaml")}, by="carol")
    number = world.forge.open_pull_request("acme", "platform", head="search", title="Search", by="carol").number
    world.forge.approve("acme", "platform", number, by="bob")
    merged = world.forge.merge("acme", "platform", number, by="alice")
    apply_default_branch(ctx, REPO, ctx.providers)  # other kinds have no provider here: the apply "fails"
    world.ctx.mirror.fetch_if_present(REPO, NOTES_REF)  # type: ignore[attr-defined]
    [applied] = read_records(world.ctx.mirror.note(REPO, NOTES_REF, merged))  # type: ignore[attr-defined]
    [search] = [r for r in applied.results if r.resource == "Service/search"]
    record = record_in(world, "search")
    assert (record["template"], record["commit"]) == ("fastapi-service", merged)
    assert dict(search.outputs) == {"repository": search.outputs["repository"], "template": "fastapi-service",
                                    "template_commit": merged,
                                    "template_answers": answers_digest(record["answers"])}


def test_a_templates_own_paved_folder_is_replaced_not_written_through(tmp_path: Path) -> None:
    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    project.mkdir()
    elsewhere.mkdir()
    (project / ".paved").symlink_to(elsewhere, target_is_directory=True)
    written = write_record(project, "worker", "0" * 40, {"name": "finder"})
    assert not written.parent.is_symlink() and list(elsewhere.iterdir()) == []
    assert json.loads(written.read_text())["answers"] == {"name": "finder"}
