"""Only Paved decides what was applied: a writer who moves `refs/paved/applied` stops applies, loudly.

Paved applies what changed since `refs/paved/applied` and deletes what is gone from it. Anyone who may
push to the platform repo can push that ref too (GitHub lets writers push any ref), so a crafted commit
there could make Paved "delete" what it lists. Paved believes the ref only when it is in the default
branch's history and carries Paved's own successful `paved/apply` check.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.conftest import experimental_change
from tests.security.conftest import ORG, REPO, Platform

BYSTANDER = """\
apiVersion: paved/v1
kind: Team
metadata:
  name: secops
  owner: secops
  description: Made by hand; no request ever asked for it.
spec:
  members: [oskar]
  maintainers: [oskar]
"""


def git(folder: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "Mallory", "GIT_AUTHOR_EMAIL": "mallory@example.com",
           "GIT_COMMITTER_NAME": "Mallory", "GIT_COMMITTER_EMAIL": "mallory@example.com", "GIT_TERMINAL_PROMPT": "0"}
    return subprocess.run(["git", "-C", str(folder), *args], check=True, capture_output=True, text=True,
                          env=env).stdout.strip()


def mallory_points_applied_at(platform: Platform, tmp_path: Path, files: dict[str, str] | None, *,
                              at: str | None = None) -> str:
    """Mallory (write access) pushes a commit of her own, or an old one, to refs/paved/applied."""
    clone = tmp_path / "mallory"
    url = platform.forge.authenticated_clone_url(ORG, REPO, platform.token("mallory"))
    subprocess.run(["git", "clone", "--quiet", url, str(clone)], check=True, capture_output=True)
    if files is not None:
        for path, text in files.items():
            (clone / path).parent.mkdir(parents=True, exist_ok=True)
            (clone / path).write_text(text)
        git(clone, "add", "--all")
        git(clone, "commit", "--quiet", "-m", "What Paved applied")
    target = at or git(clone, "rev-parse", "HEAD")
    git(clone, "push", "--quiet", "--force", "origin", f"{target}:refs/paved/applied")
    return target


def hand_made_team(platform: Platform) -> None:
    platform.forge.create_team(ORG, "secops", members=["oskar"])


def team_exists(platform: Platform, slug: str) -> bool:
    return platform.api("GET", f"/orgs/{ORG}/teams/{slug}").status_code == 200


def alarm(platform: Platform) -> str:
    issues = platform.api("GET", f"/repos/{ORG}/{REPO}/issues?labels=paved:alarm&state=open").json()
    assert len(issues) == 1, issues
    return str(issues[0]["title"]) + "\n" + str(issues[0]["body"])


def test_a_crafted_applied_commit_stops_applies_instead_of_deleting_what_it_lists(platform: Platform,
                                                                                    tmp_path: Path) -> None:
    hand_made_team(platform)
    mallory_points_applied_at(platform, tmp_path, {"catalog/teams/secops.yaml": BYSTANDER})

    number = experimental_change(platform.forge, "reword", by="gina")
    assert platform.plan_of(number).conclusion == "success"
    merged = platform.merge(number, by="gina").json()["sha"]

    check = platform.applied(merged)
    assert check.conclusion == "failure" and "not Paved's" in check.title
    assert "not in the history" in check.summary
    assert team_exists(platform, "secops")  # nothing was deleted
    assert "refs/paved/applied was moved by someone other than Paved" in alarm(platform)


def test_an_old_commit_that_paved_never_applied_is_not_believed_either(platform: Platform, tmp_path: Path) -> None:
    first = platform.api("GET", f"/repos/{ORG}/{REPO}/commits?sha=main&per_page=100").json()[-1]["sha"]
    mallory_points_applied_at(platform, tmp_path, None, at=first)

    number = experimental_change(platform.forge, "reword", by="gina")
    platform.plan_of(number)
    merged = platform.merge(number, by="gina").json()["sha"]

    check = platform.applied(merged)
    assert check.conclusion == "failure"
    assert "never recorded as applied" in check.summary
    assert "never recorded as applied" in alarm(platform)


def test_retry_refuses_too_and_says_why(platform: Platform, tmp_path: Path) -> None:
    number = experimental_change(platform.forge, "reword", by="gina")
    platform.plan_of(number)
    merged = platform.merge(number, by="gina").json()["sha"]
    assert platform.applied(merged).conclusion == "success"
    hand_made_team(platform)
    mallory_points_applied_at(platform, tmp_path, {"catalog/teams/secops.yaml": BYSTANDER})

    platform.comment(number, "/paved retry", by="gina")
    platform.settle()
    assert team_exists(platform, "secops")
    assert any("refused" in body and "not in the history" in body for body in platform.comments(number))
