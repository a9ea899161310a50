"""File names are data: a name crafted to confuse how Paved reads git gets the file refused, not read.

mallory may write to the platform repo. With git's plumbing she commits a Team request under a name
holding line breaks; the name spells out the id of its own content, so a reader that asked git for
files by `<commit>:<path>` lines would have been handed her team for another file's path. She pushes
it over git's HTTP protocol with her own token and opens a pull request, through the real service.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.security.conftest import ORG, REPO, Platform

ROGUE = """\
apiVersion: paved/v1
kind: Team
metadata:
  name: rogue
  owner: rogue
  description: Nobody asked for this team.
spec:
  members: [mallory]
  maintainers: [mallory]
  budget:
    monthly: 100
"""


def git(clone: Path, *args: str, data: bytes | None = None) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "mallory", "GIT_AUTHOR_EMAIL": "mallory@example.com",
           "GIT_COMMITTER_NAME": "mallory", "GIT_COMMITTER_EMAIL": "mallory@example.com", "GIT_TERMINAL_PROMPT": "0"}
    done = subprocess.run(["git", "-C", str(clone), *args], input=data, capture_output=True, env=env, check=False)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    return done.stdout.decode().strip()


def push_odd_name(platform: Platform, workdir: Path, branch: str) -> str:
    """As mallory: clone, commit ROGUE under a name with line breaks, push `branch`; the file's name."""
    url = platform.forge.authenticated_clone_url(ORG, REPO, platform.token("mallory"))
    subprocess.run(["git", "clone", "--quiet", url, str(workdir)], check=True, capture_output=True)
    blob = git(workdir, "hash-object", "-w", "--stdin", data=ROGUE.encode())
    name = f"catalog/teams/a\n{blob}\nHEAD:catalog/teams/payments.yaml"
    git(workdir, "update-index", "--add", "-z", "--index-info", data=f"100644 {blob}\t{name}\0".encode())
    tree = git(workdir, "write-tree")
    commit = git(workdir, "commit-tree", tree, "-p", "HEAD", "-m", "Tidy the teams")
    git(workdir, "push", "--quiet", "origin", f"{commit}:refs/heads/{branch}")
    return name


def teams(platform: Platform) -> set[str]:
    listed = platform.api("GET", f"/orgs/{ORG}/teams?per_page=100")
    assert listed.status_code == 200, listed.text
    return {t["slug"] for t in listed.json()}


def test_a_file_named_with_line_breaks_fails_the_plan_and_creates_nothing_even_when_merged(
        platform: Platform, tmp_path: Path) -> None:
    before = teams(platform)
    name = push_odd_name(platform, tmp_path / "clone", "tidy-teams")
    shown = name.replace("\n", "\\n")
    number = platform.forge.open_pull_request(ORG, REPO, head="tidy-teams", title="Tidy the teams",
                                              by="mallory").number

    check = platform.plan_of(number)
    assert check.conclusion == "failure", check
    comment = platform.plan_comment(number) or ""
    assert shown in comment and "neither reads nor judges" in comment
    assert "Team/rogue" not in comment and "rogue" not in check.summary
    assert platform.merge(number, by="mallory").status_code == 405  # the required check holds

    # alice, an organization owner, is not held by the check (`enforce_admins` is off) and pushes the
    # branch to main herself; Paved still makes nothing of the file.
    head = platform.head(number)
    url = platform.forge.authenticated_clone_url(ORG, REPO, platform.token("alice"))
    git(tmp_path / "clone", "push", "--quiet", url, f"{head}:refs/heads/main")
    applied = platform.applied(head)
    assert applied.conclusion == "failure", applied
    assert "nothing was applied" in applied.summary and shown in applied.summary
    assert teams(platform) == before
    assert platform.api("GET", f"/orgs/{ORG}/teams/rogue").status_code == 404
