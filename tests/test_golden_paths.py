"""What a scaffolded project's record says, and how a request follows its golden path."""

from __future__ import annotations

import json

import pytest

from bot.golden_paths import (
    RECORD_LIMIT,
    Following,
    RecordUnreadable,
    ScaffoldRecord,
    answers_changed,
    following,
    read_record,
)
from bot.kinds import KindDescription
from bot.model import Resource

COMMIT = "a" * 40
SERVICE = KindDescription(kind="Service", path="schemas/kinds/service.json", plural="services",
                          template="/spec/template", template_answers=("/metadata/description", "/spec/tier"))


def service(name: str = "search", **spec: object) -> Resource:
    data = {"apiVersion": "paved/v1", "kind": "Service",
            "metadata": {"name": name, "owner": "search-team", "description": "Finds things"},
            "spec": {"template": {"name": "fastapi-service"}, "tier": "standard", **spec}}
    return Resource("Service", name, "search-team", f"catalog/services/{name}.yaml", 0, 1, data)


def test_a_record_reads_back_what_paved_writes() -> None:
    record = ScaffoldRecord("fastapi-service", COMMIT, {"name": "search", "port": 8080, "_tier": "critical"})
    assert read_record(record.text()) == record


@pytest.mark.parametrize(("text", "complaint"), [
    ("not json", "is not JSON"),
    ("[]", "holds a list"),
    (json.dumps({"version": 2, "template": "x", "commit": COMMIT, "answers": {}}), "has version 2"),
    (json.dumps({"version": 1, "template": "../etc", "commit": COMMIT, "answers": {}}), "no usable template"),
    (json.dumps({"version": 1, "template": "x", "commit": "HEAD", "answers": {}}), "no full commit id"),
    (json.dumps({"version": 1, "template": "x", "commit": COMMIT, "answers": []}), "not an object"),
])
def test_a_record_edited_into_something_else_is_refused_with_the_reason(text: str, complaint: str) -> None:
    with pytest.raises(RecordUnreadable, match=complaint):
        read_record(text)


def test_a_record_far_larger_than_paved_writes_is_refused_before_it_is_parsed() -> None:
    with pytest.raises(RecordUnreadable, match="more than Paved ever writes"):
        read_record(b" " * (RECORD_LIMIT + 1))


def test_a_service_follows_its_template_and_takes_upgrades_unless_it_opts_out() -> None:
    assert following(service(), SERVICE) == Following("fastapi-service", "auto", None)
    manual = service(template={"name": "fastapi-service", "updates": "manual"})
    assert following(manual, SERVICE) == Following("fastapi-service", "manual", None)
    assert not Following("fastapi-service", "manual").takes_upgrades


def test_a_pinned_service_names_the_platform_commit_it_stays_on() -> None:
    pinned = service(template={"name": "fastapi-service", "pin": COMMIT})
    assert following(pinned, SERVICE) == Following("fastapi-service", "auto", COMMIT)


def test_a_kind_without_a_template_follows_none() -> None:
    team = KindDescription(kind="Team", path="schemas/kinds/team.json", plural="teams")
    assert following(service(), team) is None


def test_changing_a_template_answer_or_a_field_the_answers_come_from_alters_the_answers() -> None:
    before = service()
    assert answers_changed(before, service(template={"name": "fastapi-service",
                                                     "parameters": {"python_version": "3.13"}}), SERVICE)
    assert answers_changed(before, service(tier="critical"), SERVICE)
    assert answers_changed(before, service(name="finder"), SERVICE)


def test_changing_a_field_no_answer_comes_from_leaves_the_answers_alone() -> None:
    assert not answers_changed(service(), service(dependsOn=["Service/billing"]), SERVICE)
