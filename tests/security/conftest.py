"""acme's platform, run for real, as an attacker meets it.

The sandbox forge (a local GitHub, over real HTTP and git) holds acme's platform repo seeded from the
bundled catalogue, rules and templates; Paved's service (`paved serve`'s app with its queue consumers,
the real handlers and providers) receives its webhooks as Paved's GitHub App. The catalogue is applied
once, so every team and repository it names exists and was made by Paved. Then `main` is protected the
way `SECURITY.md`'s checklist says: `paved/plan` is a required status check.

People, as the bundled catalogue names them (each may write to the platform repo):
payments alice (owns the organization), bob, carol; data dana, erik, farah; growth gina, hugo; platform
maya, oskar, priya. The attackers: mallory may write to the platform repo and is in no team; rita may
only read it.
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.sandbox import Sandbox
from bot.settings import Secret, Settings
from bot.web.jobs import handle_delivery
from tests.conftest import PROJECT
from tests.test_service import Service, running

SECRET = "a-webhook-secret-for-the-security-tests"
ORG, REPO = "acme", "platform"
PLAN_CHECK, APPLY_CHECK = "paved/plan", "paved/apply"
PLAN_MARKER = "<!-- paved:plan -->"
TEAMS = {"payments": ("alice", "bob", "carol"), "data": ("dana", "erik", "farah"), "growth": ("gina", "hugo"),
         "platform": ("maya", "oskar", "priya")}
WRITERS = (*sorted({p for people in TEAMS.values() for p in people} - {"alice"}), "mallory")
READERS = ("rita",)
# What Paved's App may do in acme: plan and comment on the platform repo, and make what requests ask for.
APP_PERMISSIONS = {"checks": "write", "contents": "write", "issues": "write", "pull_requests": "write",
                   "metadata": "read", "administration": "write", "members": "write", "secrets": "write",
                   "organization_custom_properties": "admin"}


@dataclass
class Check:
    """A check run as a person reads it on GitHub."""

    id: int
    status: str
    conclusion: str | None
    title: str
    summary: str
    app: str

    @property
    def passing(self) -> bool:
        """Whether GitHub lets a required check with this outcome through (neutral and skipped pass too)."""
        return self.status == "completed" and self.conclusion in ("success", "neutral", "skipped")


@dataclass
class Platform:
    forge: Sandbox
    settings: Settings
    service: Service
    app_id: int
    bot_login: str
    tokens: dict[str, str]

    @property
    def data_dir(self) -> Path:
        return self.settings.data_dir

    # -- reading, as a person would, through the REST API ----------------------------------------------

    def api(self, method: str, path: str, *, by: str = "alice", json: Any = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token(by)}", "Accept": "application/vnd.github+json"}
        return httpx.request(method, self.forge.api_url + path, headers=headers, json=json, timeout=30)

    def token(self, login: str) -> str:
        if login not in self.tokens:
            self.tokens[login] = self.forge.create_token(login)
        return self.tokens[login]

    def check(self, sha: str, name: str = PLAN_CHECK) -> Check | None:
        runs = self.api("GET", f"/repos/{ORG}/{REPO}/commits/{sha}/check-runs?check_name={name}").json()["check_runs"]
        if not runs:
            return None
        run = runs[0]
        output = run.get("output") or {}
        return Check(run["id"], run["status"], run["conclusion"], output.get("title") or "",
                     output.get("summary") or "", (run.get("app") or {}).get("slug") or "")

    def head(self, number: int) -> str:
        return self.forge.pull_request(ORG, REPO, number).head_sha

    def comments(self, number: int) -> list[str]:
        return [c.body for c in self.forge.comments(ORG, REPO, number)]

    def plan_comment(self, number: int) -> str | None:
        return next((c.body for c in self.forge.comments(ORG, REPO, number)
                     if c.body.startswith(PLAN_MARKER) and c.user == self.bot_login), None)

    def read(self, repo: str, path: str, ref: str | None = None) -> bytes:
        return self.forge.read_file(ORG, repo, path, ref=ref)

    def catalogue_file(self, path: str, ref: str = "main") -> str:
        return self.read(REPO, path, ref).decode()

    # -- acting ----------------------------------------------------------------------------------------

    def push(self, branch: str, files: dict[str, str | None], *, by: str) -> str:
        """Commit `files` on `branch` (created from main when new) as `by`; the new head."""
        self.forge.push_files(ORG, REPO, branch, files, by=by)
        sha = self.forge.branch_sha(ORG, REPO, branch)
        assert sha is not None
        return sha

    def open_pr(self, files: dict[str, str | None], *, by: str, branch: str, title: str = "A change") -> int:
        self.push(branch, files, by=by)
        return self.forge.open_pull_request(ORG, REPO, head=branch, title=title, by=by).number

    def approve(self, number: int, by: str) -> None:
        self.forge.approve(ORG, REPO, number, by=by)

    def comment(self, number: int, body: str, by: str) -> None:
        self.forge.comment(ORG, REPO, number, body, by=by)

    def merge(self, number: int, by: str) -> httpx.Response:
        """Ask GitHub to merge as `by`, as the web page's button does; branch protection decides."""
        return self.api("PUT", f"/repos/{ORG}/{REPO}/pulls/{number}/merge", by=by, json={"merge_method": "merge"})

    # -- waiting for Paved -----------------------------------------------------------------------------

    def settle(self, seconds: float = 120) -> None:
        """Wait until every delivery the forge sent has been handled by Paved, and what that caused too."""
        deadline = time.monotonic() + seconds
        while True:
            self.forge.wait_for_deliveries(timeout=max(1.0, deadline - time.monotonic()))
            open_ = []
            for delivery in self.forge.deliveries():
                if delivery.status_code != 202:
                    continue
                record = self.service.deliveries.get(delivery.guid)
                if record is None or record.status not in ("done", "failed"):
                    open_.append(delivery.guid)
            if not open_ and self.service.queue.pending() == 0:
                self.forge.wait_for_deliveries(timeout=max(1.0, deadline - time.monotonic()))
                if all((self.service.deliveries.get(d.guid) or _Done).status in ("done", "failed")
                       for d in self.forge.deliveries() if d.status_code == 202):
                    return
            if time.monotonic() > deadline:
                raise AssertionError(f"Paved did not finish handling {len(open_)} deliveries in {seconds:.0f}s")
            time.sleep(0.05)

    def plan_of(self, number: int) -> Check:
        """The `paved/plan` check on the pull request's head, once Paved has handled everything."""
        self.settle()
        found = self.check(self.head(number))
        assert found is not None, f"#{number} has no {PLAN_CHECK} check"
        return found

    def applied(self, sha: str) -> Check:
        self.settle()
        found = self.check(sha, APPLY_CHECK)
        assert found is not None, f"{sha[:12]} has no {APPLY_CHECK} check"
        return found


class _Done:
    status = "done"


def _seed(folder: Path) -> Path:
    for name in ("catalog", "schemas", "templates"):
        shutil.copytree(PROJECT / name, folder / name)
    return folder


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[Platform]:
    seed = _seed(tmp_path / "seed")
    with Sandbox.start(tmp_path / "forge") as forge:
        forge.create_user("alice")
        for login in (*WRITERS, *READERS):
            forge.create_user(login)
        forge.create_org(ORG, owners=["alice"], members=[*WRITERS, *READERS])
        tokens = {"alice": forge.create_token("alice")}
        forge.create_repo_from_folder(ORG, REPO, seed, owner_token=tokens["alice"])
        for login in WRITERS:
            forge.add_collaborator(ORG, REPO, login, "write")
        for login in READERS:
            forge.add_collaborator(ORG, REPO, login, "read")
        app = forge.create_app(ORG, "paved", permissions=APP_PERMISSIONS)
        forge.install_app(app.id, ORG)
        settings = dataclasses.replace(
            Settings.from_env({"PAVED_DATA_DIR": str(tmp_path / "data"), "PAVED_RECONCILE_MINUTES": "0"}),
            github_api_url=forge.api_url, github_app_id=str(app.id), github_private_key=Secret(app.private_key),
            webhook_secret=Secret(SECRET))
        with running(settings, handle_delivery, consumers=2) as service:
            forge.set_app_webhook(app.id, service.url + "/webhooks/github", SECRET)
            live = Platform(forge, settings, service, app.id, app.bot_login, tokens)
            # Paved applies the catalogue it finds (its first push), so everything it names is Paved's.
            first = live.push("main", {"catalog/README.md": "Requests live here.\n"}, by="alice")
            applied = live.applied(first)
            assert applied.conclusion == "success", applied
            # The platform team owns the platform repo (admin), so it approves platform changes by default.
            forge.add_team_repo(ORG, "platform", REPO, "admin")
            # SECURITY.md's checklist: the plan is the one required check of the default branch.
            protected = live.api("PUT", f"/repos/{ORG}/{REPO}/branches/main/protection", json={
                "required_status_checks": {"strict": False, "contexts": [PLAN_CHECK]},
                "enforce_admins": False, "required_pull_request_reviews": None, "restrictions": None})
            assert protected.status_code == 200, protected.text
            yield live
