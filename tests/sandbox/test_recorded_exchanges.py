"""The sandbox answers the recorded GitHub scenarios (`tests/data/github/rest-fixtures/`) alike.

Each scenario is replayed against a sandbox set up like the recording's repository; the status codes
must be the same and every field of a recorded answer must be present in the sandbox's answer with
a value of the same JSON type (null matches anything: the recording may hold a placeholder).
Octokit normalized the recordings (shas `000…1`, fixed ids); shas are mapped to real commits here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import requests

from bot.sandbox import Sandbox
from tests.conformance import DATA

SCENARIOS = sorted(path.stem for path in (DATA / "rest-fixtures").glob("*.json"))
ORG = "octokit-fixture-org"



def shape_differences(recorded: Any, ours: Any, where: str = "") -> list[str]:
    if recorded is None or ours is None:
        return []
    if isinstance(recorded, dict):
        if not isinstance(ours, dict):
            return [f"{where or '(body)'}: object expected, got {type(ours).__name__}"]
        found = []
        for key, value in recorded.items():
            if key not in ours:
                found.append(f"{where}/{key}: missing")
                continue
            found += shape_differences(value, ours[key], f"{where}/{key}")
        return found
    if isinstance(recorded, list):
        if not isinstance(ours, list):
            return [f"{where or '(body)'}: array expected, got {type(ours).__name__}"]
        if recorded and ours:
            return shape_differences(recorded[0], ours[0], f"{where}[0]")
        return []
    if isinstance(recorded, bool) != isinstance(ours, bool) or (
            isinstance(recorded, int | float) != isinstance(ours, int | float)) or (
            isinstance(recorded, str) != isinstance(ours, str)):
        return [f"{where}: {type(recorded).__name__} expected, got {type(ours).__name__}"]
    return []


def prepare(forge: Sandbox, scenario: str, tmp_path: Path) -> tuple[str, dict[str, str]]:
    """A sandbox laid out like the recording: the org, the repository, two commits; (token, sha map)."""
    owner = forge.create_user("octocat")
    forge.create_org(ORG, owners=["octocat"])
    name = "hello-world" if scenario in ("get-content", "get-repository") else scenario
    folder = tmp_path / "files"
    folder.mkdir()
    (folder / "README.md").write_text("# hello-world")
    forge.create_repo_from_folder(ORG, name, folder, owner_token=owner.token, message="initial")
    first = forge.branch_sha(ORG, name, "main")
    second = forge.push_files(ORG, name, "main", {"CHANGELOG.md": "1.0\n"}, by="octocat", message="second")
    assert first is not None
    return owner.token, {"0" * 39 + "1": second, "0" * 39 + "2": first}


def substitute(value: str, shas: dict[str, str]) -> str:
    for placeholder, sha in shas.items():
        value = value.replace(placeholder, sha)
    return value


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_a_recorded_scenario_gets_the_same_statuses_and_shapes(forge: Sandbox, scenario: str,
                                                               tmp_path: Path) -> None:
    token, shas = prepare(forge, scenario, tmp_path)
    recorded = json.loads((DATA / "rest-fixtures" / f"{scenario}.json").read_text())
    problems = []
    for exchange in recorded:
        path = substitute(exchange["path"], shas)
        body = exchange.get("body")
        headers = {"Authorization": f"token {token}"}
        accept = (exchange.get("reqheaders") or {}).get("accept")
        if accept:
            headers["Accept"] = accept
        answer = requests.request(exchange["method"].upper(), f"{forge.api_url}{path}", timeout=10, headers=headers,
                                  data=substitute(json.dumps(body), shas).encode() if body is not None else None)
        label = f"{exchange['method'].upper()} {exchange['path']}"
        if answer.status_code != exchange["status"]:
            problems.append(f"{label}: status {answer.status_code}, recorded {exchange['status']}: {answer.text[:200]}")
            continue
        response = exchange.get("response")
        if isinstance(response, dict | list):
            problems += [f"{label}: {p}" for p in shape_differences(response, answer.json())]
        elif isinstance(response, str) and response:
            assert answer.content.decode() == response, label
    assert problems == []
