"""Dependabot keeps the workflows' pinned actions and Paved's dependencies current."""

from __future__ import annotations

from ruamel.yaml import YAML

from tests.conftest import PROJECT


def test_dependabot_proposes_new_releases_of_the_pinned_actions_and_of_pythons_dependencies() -> None:
    config = YAML(typ="safe").load((PROJECT / ".github" / "dependabot.yml").read_text(encoding="utf-8"))
    assert config["version"] == 2
    watched = {(u["package-ecosystem"], u["directory"]) for u in config["updates"]}
    assert watched == {("github-actions", "/"), ("pip", "/")}
