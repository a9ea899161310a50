"""`paved demo`: Paved's main job on its embedded defaults, told as a story on this machine.

It starts the sandbox forge (a local GitHub), Paved's web service with its queue consumers (SQLite,
no server needed) on loopback, seeds acme's platform repo from the catalogue, schemas and templates
bundled with Paved, and installs Paved on it as a GitHub App. Then, step by step: the platform's
catalogue is applied; gina opens a pull request for the `search` service (the bundled example
change); the plan comment appears; a typo fails the check with an annotation at its line; the fix
and `/paved plan` leave it waiting (in progress, so main's required check blocks the merge) for the
approval of the teams the catalogue on main names; hugo and dana approve; alice merges;
the new repository exists, scaffolded from its golden path; its workflow's first run (recorded on the
sandbox, which runs none) deploys it to production, and `/paved status search` on the pull request and
the catalogue's page for Service/search show where it is deployed; that page's link to the request
form is answered with a request to sign in (the demo runs without GitHub sign-in, which the form needs
to open a pull request as the person); its database exists (PostgreSQL when
PAVED_POSTGRES_DSN is set, else a SQLite file) and only the service's repository and environment hold
its DATABASE_URL; alice changes things by hand and `paved reconcile` heals the database and opens a
drift issue for the rest; `paved audit` tells who asked, who approved and when it was applied; last, the
platform team changes the fastapi-service golden path, the plan says which services will get it, and
after the merge acme/search receives its upgrade pull request. It exits 0
only if every step happened. `--keep DIR` keeps everything running in DIR and prints the addresses; a later
`--keep DIR` clears what the earlier demo left there and starts afresh.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import shutil
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from bot import reconcile_report, starter
from bot.app_manifest import default_permissions
from bot.errors import ConfigurationError, PavedError
from bot.golden_paths import UPGRADE_BRANCH

# The sandbox, the web service, git and YAML are imported inside the steps that use them, to keep the
# `paved` command's start-up light; nothing is imported inside a function to break an import cycle.

# What acme's platform repo is seeded with, and the change gina proposes: Paved's starter (bot/starter).
BUNDLED = (starter.EXAMPLE_CATALOGUE, *starter.RULE_FOLDERS)
SECRET = "paved-demo-webhook-secret-0123456789"
MARKER = "<!-- paved:plan -->"
SERVER_VARIABLE = "PAVED_POSTGRES_DSN"
T = TypeVar("T")


class StoryFailed(PavedError):
    """Raised when a step of the demo did not happen as told."""


def wait_for(what: str, probe: Callable[[], T | None], seconds: float = 60) -> T:
    """Poll `probe` until it returns something, or fail the story saying what did not happen."""
    deadline = time.monotonic() + seconds
    while True:
        found = probe()
        if found:
            return found
        if time.monotonic() > deadline:
            raise StoryFailed(f"{what} did not happen within {seconds:.0f} s")
        time.sleep(0.05)


class Story:
    """The forge, Paved's service and the people, with a line of narration per step."""

    def __init__(self, folder: Path, out: Any) -> None:
        self.folder = folder
        self.out = out
        self.step = 0

    def say(self, text: str) -> None:
        self.step += 1
        print(f"\n== {self.step}. {text}", file=self.out, flush=True)

    def show(self, text: str) -> None:
        print("   " + text.rstrip("\n").replace("\n", "\n   "), file=self.out, flush=True)


def _seed(folder: Path) -> Path:
    bundled = starter.root()
    missing = [name for name in (*BUNDLED, starter.EXAMPLE_CHANGE) if not (bundled / name).is_dir()]
    if missing:
        raise ConfigurationError(f"the bundled {', '.join(missing)} cannot be found in {bundled}",
                                 hint="Reinstall Paved (pipx reinstall paved), or run it from a checkout of Paved.")
    seed = folder / "seed"
    for name in BUNDLED:
        shutil.copytree(bundled / name, seed / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return seed


def _people(seed: Path) -> list[str]:
    """Every GitHub login the catalogue's teams name, so the forge has them as users."""
    from bot.yamlio import load

    logins: set[str] = set()
    for path in sorted((seed / "catalog").rglob("*.yaml")):
        for doc in load(path.name, path.read_bytes()).documents:
            data = doc.data if isinstance(doc.data, dict) else {}
            if data.get("kind") == "Team":
                spec = data.get("spec") or {}
                logins.update(p for key in ("members", "maintainers") for p in spec.get(key) or [])
    return sorted(logins - {"alice"})


@dataclasses.dataclass
class DatabaseServer:
    """Where the story's databases go: PostgreSQL when PAVED_POSTGRES_DSN is set, else SQLite files.

    On a real server every database of the story gets a name of its own (`search-db-<random>`) and the
    server's version, so the story never touches a database someone already has there, and they are all
    dropped when the story ends.
    """

    dsn: str | None
    suffix: str = ""
    version: str = ""
    names: set[str] = dataclasses.field(default_factory=set)

    @classmethod
    def from_environment(cls, environ: Any) -> DatabaseServer:
        dsn = (environ.get(SERVER_VARIABLE) or "").strip() or None
        if dsn is None:
            return cls(None)
        import secrets

        import psycopg

        try:
            with psycopg.connect(dsn, connect_timeout=10) as conn:
                version = str(conn.info.server_version // 10000)
        except psycopg.Error as exc:
            raise ConfigurationError(f"{SERVER_VARIABLE} is set but PostgreSQL cannot be reached there: "
                                     f"{' '.join(str(exc).split())[:200]}",
                                     hint=f"Unset {SERVER_VARIABLE} to run the demo with SQLite files.") from None
        return cls(dsn, f"-{secrets.token_hex(3)}", version)

    @property
    def engine(self) -> str:
        return "PostgreSQL" if self.dsn else "SQLite (no PAVED_POSTGRES_DSN set)"

    def name(self, name: str) -> str:
        return name + self.suffix

    def fit(self, text: str) -> str:
        """Requests with their databases' names and versions fitted to this server."""
        if self.dsn is None:
            return text
        documents = text.split("\n---\n")
        for number, document in enumerate(documents):
            if re.search(r"^kind: Database$", document, re.MULTILINE):
                found = re.search(r"^  name: (\S+)$", document, re.MULTILINE)
                if found:
                    self.names.add(self.name(found.group(1)))
                    document = document.replace(found.group(0), f"  name: {self.name(found.group(1))}", 1)
                documents[number] = re.sub(r'^  version: "\d+"$', f'  version: "{self.version}"', document,
                                           flags=re.MULTILINE)
        return "\n---\n".join(documents)

    def fit_folder(self, catalog: Path) -> None:
        for path in sorted(catalog.rglob("*.yaml")):
            path.write_text(self.fit(path.read_text(encoding="utf-8")), encoding="utf-8")

    def exists(self, data_dir: Path, name: str) -> str | None:
        """Where one of the story's databases is, once it exists."""
        if self.dsn is None:
            path = data_dir / "databases" / f"{name}.sqlite3"
            return str(path) if path.exists() else None
        import psycopg

        with psycopg.connect(self.dsn) as conn:
            row = conn.execute("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s",
                               (self.name(name),)).fetchone()
        return f"PostgreSQL database {self.name(name)} owned by role {row[0]}" if row else None

    def drop(self) -> None:
        if self.dsn is None:
            return
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.dsn, autocommit=True) as conn:
            for name in sorted(self.names):
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
                conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))


def _example_change(server: DatabaseServer) -> dict[str, str | None]:
    """The bundled example pull request, as files to write (None: delete)."""
    example = starter.root() / starter.EXAMPLE_CHANGE
    files: dict[str, str | None] = {
        source.relative_to(example).as_posix(): server.fit(source.read_text(encoding="utf-8"))
        for source in sorted((example / "catalog").rglob("*.yaml"))}
    for line in (example / "DELETE").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            files[line.strip()] = None
    return files


def run_story(folder: Path, out: Any, *, keep: bool) -> int:

    from bot.sandbox import Sandbox
    from bot.settings import Secret, Settings
    from bot.web.serve import Background

    story = Story(folder, out)
    seed = _seed(folder)
    server = DatabaseServer.from_environment(os.environ)
    if server.dsn is not None:
        server.fit_folder(seed / "catalog")
        (seed / "paved.yaml").write_text(f"providers:\n  postgres:\n    connectionEnv: {SERVER_VARIABLE}\n",
                                         encoding="utf-8")
    with Sandbox.start(folder / "forge") as forge:
        story.say("A local GitHub (the sandbox forge) with acme's platform repo, seeded from Paved's catalogue")
        people = _people(seed)
        forge.create_user("alice")
        for login in people:
            forge.create_user(login)
        forge.create_org("acme", owners=["alice"], members=people)
        alice_token = forge.create_token("alice")
        forge.create_repo_from_folder("acme", "platform", seed, owner_token=alice_token)
        for login in people:
            forge.add_collaborator("acme", "platform", login, "write")
        story.show(f"forge at {forge.url}; platform repo {forge.clone_url('acme', 'platform')}")
        story.show(f"people: alice (owns the acme organization), {', '.join(people)} (as the catalogue's teams name)")

        story.say("Paved installed as a GitHub App; its service and queue consumers listen on loopback")
        app = forge.create_app("acme", "paved", permissions=default_permissions())
        forge.install_app(app.id, "acme")
        settings = dataclasses.replace(
            Settings.from_env({"PAVED_DATA_DIR": str(folder / "paved"), "PAVED_RECONCILE_MINUTES": "0"}),
            github_api_url=forge.api_url, github_app_id=str(app.id), github_private_key=Secret(app.private_key),
            webhook_secret=Secret(SECRET), catalogue_repo="acme/platform",
            servers={SERVER_VARIABLE: Secret(server.dsn)} if server.dsn else {})
        service = Background(settings)
        service_url = service.url
        forge.set_app_webhook(app.id, f"{service_url}/webhooks/github", SECRET)
        story.show(f"Paved at {service_url} (the catalogue at /, webhooks at /webhooks/github, health at /healthz, "
                   "metrics at /metrics)")
        story.show(f"databases: {server.engine}")
        try:
            _tell(story, forge, server, settings, service_url)
            if keep:
                print(f"\nStill running. Catalogue: {service_url}/ (open on loopback). Forge: {forge.url} "
                      f"(alice's token: {alice_token}); data in {folder}. Ctrl-C stops.", file=out, flush=True)
                try:
                    while True:
                        time.sleep(3600)
                except KeyboardInterrupt:
                    pass
        finally:
            service.stop()
            if not keep:
                server.drop()
    return 0


def _tell(story: Story, forge: Any, server: DatabaseServer, settings: Any, service_url: str) -> None:
    data_dir = settings.data_dir
    def plan_comment(number: int) -> str | None:
        return next((c.body for c in forge.comments("acme", "platform", number) if c.body.startswith(MARKER)), None)

    def check(sha: str, name: str) -> Any:
        # Read as a person would, through the forge's REST API.
        runs = forge_get(f"/repos/acme/platform/commits/{sha}/check-runs?check_name={name}")["check_runs"]
        if not runs:
            return None
        run = runs[0]
        return {"id": run["id"], "status": run["status"], "conclusion": run["conclusion"],
                "title": (run.get("output") or {}).get("title") or ""}

    token = forge.create_token("alice")

    def forge_call(method: str, path: str, body: Any = None) -> Any:
        request = urllib.request.Request(forge.api_url + path, method=method, headers={
            "Authorization": f"Bearer {token}", "Accept": "application/vnd.github+json"},
            data=None if body is None else json.dumps(body).encode())
        with urllib.request.urlopen(request, timeout=30) as answer:
            raw = answer.read()
            return json.loads(raw) if raw else None

    def forge_get(path: str) -> Any:
        return forge_call("GET", path)

    story.say("Paved applies the platform's existing catalogue (the first push it sees)")
    forge.push_files("acme", "platform", "main", {"catalog/README.md": "Requests live here.\n"}, by="alice")
    head = forge.branch_sha("acme", "platform", "main")
    applied = wait_for("the first apply", lambda: _finished(check(head, "paved/apply")), 180)
    story.show(f"paved/apply on {head[:12]}: {applied['conclusion']} — {applied['title']}")
    if applied["conclusion"] != "success":
        raise StoryFailed(f"the first apply ended {applied['conclusion']}: {applied['title']}")

    story.say("alice makes paved/plan, from Paved's App, the required check of main, as SECURITY.md's checklist says")
    # From the App, not from any source: a check run of that name from anyone else passes nothing.
    required = [{"context": "paved/plan", "app_id": int(settings.github_app_id)}]
    forge_call("PUT", "/repos/acme/platform/branches/main/protection", {
        "required_status_checks": {"strict": False, "checks": required}, "enforce_admins": False,
        "required_pull_request_reviews": None, "restrictions": None})
    story.show("nothing merges into main until Paved's plan passes, and it passes only with the owners' approval")

    story.say("gina opens a pull request requesting the search service, its database and environment")
    forge.push_files("acme", "platform", "new-search-service", _example_change(server), by="gina")
    pr = forge.open_pull_request("acme", "platform", head="new-search-service", title="Add the search service",
                                 by="gina")
    wait_for("the plan comment", lambda: plan_comment(pr.number))
    # The comment is Markdown for GitHub's page; a terminal gets the plan as `paved plan` prints it, which
    # the check run carries, and what the comment adds (the steps after merge, the approvals) as plain text.
    pr_head = forge.branch_sha("acme", "platform", "new-search-service")
    output = forge_get(f"/repos/acme/platform/commits/{pr_head}/check-runs?check_name=paved/plan")[
        "check_runs"][0]["output"]
    story.show(_fenced_text(output.get("text") or ""))
    story.show("\n" + _plain(output.get("summary") or "", skip_first_line=True))

    story.say("gina pushes a typo; the check fails with an annotation at its line")
    path = "catalog/services/search.yaml"
    good = forge.read_file("acme", "platform", path, ref="new-search-service").decode()
    forge.push_files("acme", "platform", "new-search-service", {path: good.replace("size: small", "size: smal")},
                     by="gina")
    typo_head = forge.branch_sha("acme", "platform", "new-search-service")
    failed = wait_for("the failing check", lambda: _finished(check(typo_head, "paved/plan")))
    notes = forge.check_run_annotations("acme", "platform", failed["id"])
    if failed["conclusion"] != "failure" or not notes:
        raise StoryFailed(f"the typo was not caught: {failed['conclusion']}, {len(notes)} annotations")
    story.show(f"paved/plan: {failed['title']}; " + "; ".join(
        f"{n['path']}:{n['start_line']}: {n['message'].splitlines()[0]}" for n in notes))

    story.say("gina fixes it and asks Paved to plan again with `/paved plan`")
    forge.push_files("acme", "platform", "new-search-service", {path: good}, by="gina")
    fixed_head = forge.branch_sha("acme", "platform", "new-search-service")
    forge.comment("acme", "platform", pr.number, "/paved plan", by="gina")
    waiting = wait_for("the re-plan", lambda: (lambda c: c if c and c["title"].startswith("waiting") else None)(
        check(fixed_head, "paved/plan")))
    story.show(f"paved/plan: {waiting['status']} — {waiting['title']}")
    if waiting["status"] == "completed":
        raise StoryFailed(f"expected the check to stay in progress until the owners approve, got "
                          f"{waiting['conclusion']}")
    try:
        forge.merge("acme", "platform", pr.number, by="gina")
    except Exception as refused:  # the forge's refusal: the required check has not passed
        story.show(f"gina tries to merge: {str(refused).splitlines()[0]} (paved/plan is required)")
    else:
        raise StoryFailed("the pull request merged before its owners approved it")

    story.say("hugo (growth) approves the new service; dana (data) approves removing data's grant; green")
    forge.approve("acme", "platform", pr.number, by="hugo")
    forge.approve("acme", "platform", pr.number, by="dana")
    green = wait_for("the green check", lambda: (lambda c: c if c and c["conclusion"] == "success" else None)(
        check(fixed_head, "paved/plan")))
    story.show(f"paved/plan: {green['conclusion']} — {green['title']}")

    from bot.handlers.push import applied_marker

    story.say("alice merges; Paved applies the change")
    merged = forge.merge("acme", "platform", pr.number, by="alice")
    result = wait_for("the apply of the merge", lambda: _finished(check(merged, "paved/apply")), 120)
    story.show(f"paved/apply on {merged[:12]}: {result['conclusion']} — {result['title']}")
    story.show(_plain(wait_for("the apply comment on the pull request", lambda: next(
        (c.body.split("\n", 1)[1] for c in forge.comments("acme", "platform", pr.number)
         if c.body.startswith(applied_marker(merged))), None))))

    story.say("The new repository exists, scaffolded from the fastapi-service golden path")
    readme = forge.read_file("acme", "search", "README.md").decode()
    story.show(readme.splitlines()[0] + " … (" + ", ".join(
        f for f in ("pyproject.toml", "catalog-entry.yaml", "CODEOWNERS") if _exists(forge, "search", f)) + ")")
    _deployed(story, forge, pr.number, service_url)

    story.say(f"The search service's database exists ({server.engine}); only its repository holds the URL")
    where = wait_for("the database", lambda: server.exists(data_dir, "search-db"))
    url = forge.secret_value("acme", "search", "DATABASE_URL")
    if not url.startswith(("postgresql://", "sqlite:///")):
        raise StoryFailed("the search repository has no DATABASE_URL secret")
    production = forge.secret_value("acme", "search", "DATABASE_URL", "production")
    if production != url:
        raise StoryFailed("the production environment did not receive the same DATABASE_URL")
    story.show(f"{where}; DATABASE_URL set on acme/search and its production environment "
               f"({url.split(':', 1)[0]}://…, sealed with each one's public key)")

    story.say("alice changes things by hand, outside git: acme/search made public, its DATABASE_URL deleted")
    forge_call("PATCH", "/repos/acme/search", {"visibility": "public"})
    forge_call("DELETE", "/repos/acme/search/actions/secrets/DATABASE_URL")
    story.show("GET /repos/acme/search: visibility " + forge_get("/repos/acme/search")["visibility"])

    story.say("`paved reconcile` finds the drift: the database (drift: heal) is put back, the rest is an issue")
    _reconcile(story, settings)
    healed = forge.secret_value("acme", "search", "DATABASE_URL")
    if not healed.startswith(("postgresql://", "sqlite:///")):
        raise StoryFailed("the deleted DATABASE_URL was not delivered again")
    issues = forge_get("/repos/acme/platform/issues?labels=paved:drift&state=open")
    drifted = next((i for i in issues if "Service/search" in i["title"]), None)
    if drifted is None or "@acme/growth" not in (drifted.get("body") or ""):
        raise StoryFailed("no drift issue names Service/search and the growth team")
    story.show(f"DATABASE_URL is back on acme/search; issue #{drifted['number']}: {drifted['title']}")

    story.say("`paved audit Service/search`: who asked, who approved, when it was applied")
    _audit(story, forge)

    story.say(f"The catalogue in a browser, served by Paved at {service_url}/")
    with urllib.request.urlopen(f"{service_url}/resources/Database/{server.name('search-db')}",
                                timeout=60) as answer:
        page = answer.read().decode()
    if "search-db" not in page or "heal" not in page:
        raise StoryFailed("the catalogue's page for the search database does not show it and its heal")
    story.show(f"{service_url}/resources/Database/{server.name('search-db')}: its request, graph and history "
               f"({len(page) // 1024} KiB of HTML, nothing loaded from the internet)")

    story.say("gina rates the apply with 👍 on Paved's comment; reconcile reads it back, `paved stats` shows it")
    _rating(story, forge, settings, pr.number, merged)

    _golden_path_upgrade(story, forge, forge_call, plan_comment, check)


def _deployed(story: Story, forge: Any, number: int, service_url: str) -> None:
    """The new service's first deployment, as its golden-path workflow records it, seen on a pull request with
    `/paved status` and on the catalogue's page; then the catalogue's request form, which needs signing in."""
    story.say("acme/search's golden-path workflow runs on main: its tests pass and it deploys to production")
    # The sandbox runs no workflow: it records what the golden path's ci.yml would (docs/deployments.md).
    run = forge.record_workflow_run("acme", "search", by="alice")
    forge.deploy("acme", "search", "production", by="alice", log_url=run.html_url)
    story.show(f"run {run.html_url}; a deployment to production, marked success")

    story.say("hugo asks `/paved status search` on the pull request; Paved answers where it is deployed")
    forge.comment("acme", "platform", number, "/paved status search", by="hugo")
    answer = wait_for("the status answer", lambda: next((c.body for c in forge.comments("acme", "platform", number)
                                                         if c.body.startswith("**Deployment status of")), None))
    if "| `production` | ✅ deployed |" not in answer:
        raise StoryFailed("`/paved status search` does not say production is deployed")
    story.show(_plain(answer))

    story.say("The catalogue's page for Service/search shows its deployments too")
    with urllib.request.urlopen(f"{service_url}/resources/Service/search", timeout=60) as got:
        page = got.read().decode()
    section = page.partition('id="deployments"')[2].partition("</section>")[0]
    if "production" not in section or "deployed" not in section or "success" not in section:
        raise StoryFailed("the catalogue's page for Service/search does not show its deployment")
    def text(markup: str) -> str:  # the words a browser shows, on one line
        words = " ".join(re.sub(r"<[^>]+>", " ", markup).split())
        return re.sub(r"\(\s+", "(", re.sub(r"\s+([,.:)])", r"\1", words))

    rows, _, run = section.partition("<tbody>")[2].partition("</tbody>")
    story.show(f"{service_url}/resources/Service/search#deployments: {text(rows)}; {text(run)}")

    story.say("Its page offers the request form, which opens a pull request as the person, so needs signing in")
    if 'href="/request/Service"' not in page:
        raise StoryFailed("the catalogue's page for Service/search does not link to the request form")
    try:
        urllib.request.urlopen(f"{service_url}/request/Service", timeout=60).close()
    except urllib.error.HTTPError as refused:
        said = refused.read().decode()
        if refused.code != 403 or "sign in" not in said:
            raise StoryFailed(f"the request form answered {refused.code} without asking to sign in") from None
        story.show(f"{service_url}/request/Service: {refused.code}, sign-in needed (this demo runs without GitHub "
                   "sign-in; docs/request-form.md sets it up, then the form lists the kinds and opens the pull "
                   "request as you)")
    else:
        raise StoryFailed("the request form opened without sign-in")


def _golden_path_upgrade(story: Story, forge: Any, forge_call: Callable[..., Any],
                         plan_comment: Callable[[int], str | None], check: Callable[[str, str], Any]) -> None:
    """The last chapter: the platform team changes a golden path, and the service made from it is offered the
    change as a pull request on its own repository."""
    story.say("alice makes the platform team the platform owners: its people approve changes to the rules")
    forge_call("PUT", "/orgs/acme/teams/platform/repos/acme/platform", {"permission": "admin"})
    story.show("team platform (maya, oskar, priya) has admin on acme/platform")

    story.say("priya changes the fastapi-service golden path; the plan says which services will get it")
    ignore = "templates/fastapi-service/{{cookiecutter.name}}/.gitignore"
    text = forge.read_file("acme", "platform", ignore).decode()
    forge.push_files("acme", "platform", "ignore-ruff-cache", {ignore: text.rstrip("\n") + "\n.ruff_cache/\n"},
                     by="priya", message="Ignore ruff's cache in every service")
    change = forge.open_pull_request("acme", "platform", head="ignore-ruff-cache", by="priya",
                                     title="Ignore ruff's cache in every service",
                                     body="Services lint with ruff now; its cache should never be committed.")
    comment = wait_for("the plan comment", lambda: plan_comment(change.number))
    reach = next((line for line in comment.splitlines() if "template fastapi-service changed" in line), "")
    if "will get an upgrade pull request" not in reach:
        raise StoryFailed("the plan of the template change does not say which services will get it")
    story.show(reach.removeprefix("- "))

    story.say("maya (platform) approves, alice merges; Paved opens an upgrade pull request on acme/search")
    forge.approve("acme", "platform", change.number, by="maya")
    head = forge.branch_sha("acme", "platform", "ignore-ruff-cache")
    wait_for("the green check", lambda: (lambda c: c if c and c["conclusion"] == "success" else None)(
        check(head, "paved/plan")))
    merged = forge.merge("acme", "platform", change.number, by="alice")
    applied = wait_for("the apply of the template change", lambda: _finished(check(merged, "paved/apply")), 120)
    if applied["conclusion"] != "success":
        raise StoryFailed(f"the apply of the template change ended {applied['conclusion']}: {applied['title']}")
    upgrade = wait_for("the upgrade pull request on acme/search", lambda: next(
        (p for p in forge_call("GET", "/repos/acme/search/pulls?state=open")
         if p["head"]["ref"] == UPGRADE_BRANCH), None), 120)
    files = forge_call("GET", f"/repos/acme/search/pulls/{upgrade['number']}/files")
    labels = ", ".join(label["name"] for label in upgrade.get("labels") or [])
    why = next((line.removeprefix("- ") for line in (upgrade.get("body") or "").splitlines()
                if line.startswith(f"- acme/platform#{change.number}:")), None)
    if why is None:
        raise StoryFailed("the upgrade pull request does not name the platform change it comes from")
    story.show(f"acme/search#{upgrade['number']}: {upgrade['title']} ({labels}); changes "
               + ", ".join(f["filename"] for f in files) + f"; why: {why}")


def _fenced_text(text: str) -> str:
    """The text of a check run's ``` block: what `bot.render.text` wrote for the terminal."""
    lines = text.strip("\n").splitlines()
    return "\n".join(line for line in lines if not line.startswith("```"))


def _plain(markdown: str, *, skip_first_line: bool = False) -> str:
    """Paved's Markdown for GitHub (headings, lists, tables, links) as a terminal shows it: `### X` as `X:`, a
    table's rows as lines of cells, `[text](address)` as `text (address)`, bold and hidden comments dropped.
    The first line of a check's summary repeats the plan's headline."""
    lines = markdown.strip("\n").splitlines()[1 if skip_first_line else 0:]
    shown: list[str] = []
    for line in lines:
        if line.startswith("<!--") or re.fullmatch(r"\|[-:| ]+\|", line):
            continue
        line = re.sub(r"\[([^\]]+)\]\(([^)\s]+)\)", r"\1 (\2)", re.sub(r"\*\*(.+?)\*\*", r"\1", line))
        if line.startswith("### "):
            line = line[4:] + ":"
        elif line.startswith("|"):
            line = "  ".join(cell.strip() for cell in line.strip("|").split("|") if cell.strip())
        shown.append(line)
    return "\n".join(shown).strip("\n")


def _reconcile(story: Story, settings: Any) -> None:
    """What `paved reconcile` does and prints, run with the demo's own settings."""
    from bot.web.jobs import reconcile_once

    story.show(reconcile_report.as_text(reconcile_once(settings)))


def _exists(forge: Any, repo: str, path: str) -> bool:
    try:
        forge.read_file("acme", repo, path)
        return True
    except Exception:  # the forge's not-found error
        return False


def _finished(run: Any) -> Any:
    return run if run is not None and run.get("status") == "completed" else None


def _audit(story: Story, forge: Any) -> None:
    from bot.adapters.mirror import clone as clone_with_token
    from bot.adapters.repo import commit_dates, notes
    from bot.apply import NOTES_REF
    from bot.audit import as_text, trail

    clone = story.folder / "platform-clone"
    # alice's token reaches git through its environment only: nothing of it is kept in the clone's .git/config.
    clone_with_token(forge.clone_url("acme", "platform"), clone, forge.create_token("alice"), refs=[NOTES_REF])
    recorded = notes(clone, NOTES_REF)
    entries = trail(recorded, commit_dates(clone, list(recorded)), "Service/search")
    created = next((e for e in entries if e.action == "create"), None)
    if created is None or "hugo" not in created.approved_by or created.requested_by != "gina":
        raise StoryFailed("the audit trail does not say that gina asked and hugo approved")
    story.show(as_text(entries))


def _rating(story: Story, forge: Any, settings: Any, number: int, merged: str) -> None:
    """gina's 👍 on the apply comment that invited her, read back by reconcile and counted by `paved stats`."""
    from bot.adapters.mirror import clone as clone_with_token
    from bot.adapters.repo import notes
    from bot.apply import NOTES_REF
    from bot.handlers.push import applied_marker
    from bot.satisfaction import FEEDBACK_REF, feedback_records
    from bot.stats import PLANS_REF, apply_records, as_text, compute, plan_records
    from bot.web.jobs import reconcile_once

    comment = next((c for c in forge.comments("acme", "platform", number) if c.body.startswith(applied_marker(merged))),
                   None)
    if comment is None or "How was asking Paved for this?" not in comment.body:
        raise StoryFailed("the apply comment does not invite gina to rate it")
    reacting = urllib.request.Request(
        f"{forge.api_url}/repos/acme/platform/issues/comments/{comment.id}/reactions", method="POST",
        headers={"Authorization": f"Bearer {forge.create_token('gina')}", "Accept": "application/vnd.github+json"},
        data=json.dumps({"content": "+1"}).encode())
    urllib.request.urlopen(reacting, timeout=30).close()
    reconcile_once(settings)
    clone = story.folder / "platform-stats"
    clone_with_token(forge.clone_url("acme", "platform"), clone, forge.create_token("alice"),
                     refs=[NOTES_REF, PLANS_REF, FEEDBACK_REF])
    stats = compute(plan_records(notes(clone, PLANS_REF)), apply_records(notes(clone, NOTES_REF)),
                    feedback=feedback_records(notes(clone, FEEDBACK_REF)))
    if stats.satisfaction is None or stats.satisfaction.satisfied != 1:
        raise StoryFailed("paved stats does not count gina's 👍")
    story.show(next(block for block in as_text(stats).split("\n\n") if block.startswith("Satisfaction")))


# What a demo kept in a folder (`--keep DIR`) leaves there, and the file naming the process that runs it.
KEPT = ("seed", "forge", "paved", "platform-clone", "platform-stats")
RUNNING = "paved-demo.pid"


def claim_folder(folder: Path, out: Any) -> None:
    """Make `folder` the demo's: a new or empty folder, or one an earlier demo kept, which is cleared of what
    that demo left (and only that) to start afresh. Refused while that demo still runs, or when the folder
    holds anything else, since the demo would mix with it."""
    if folder.exists() and not folder.is_dir():
        raise ConfigurationError(f"--keep {folder}: a file, not a folder")
    marker = folder / RUNNING
    if marker.is_file():
        pid = marker.read_text(encoding="ascii", errors="replace").strip()
        if pid.isdigit() and int(pid) != os.getpid() and _alive(int(pid)):
            raise ConfigurationError(f"a demo kept in {folder} is still running (process {pid})",
                                     hint="Stop it with Ctrl-C where it runs, or give --keep another folder.")
        print(f"{folder} holds an earlier demo: starting afresh there", file=out, flush=True)
        for name in KEPT:
            shutil.rmtree(folder / name, ignore_errors=True)
    elif folder.is_dir() and any(folder.iterdir()):
        raise ConfigurationError(f"--keep {folder}: the folder is not empty and holds no earlier demo",
                                 hint="Give --keep a new or empty folder; nothing in this one was touched.")
    folder.mkdir(parents=True, exist_ok=True)
    marker.write_text(f"{os.getpid()}\n", encoding="ascii")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive, and not ours to judge
        return True
    return True


def run_demo(args: argparse.Namespace) -> int:
    out = sys.stdout
    try:
        if args.keep:
            folder = Path(args.keep).resolve()
            claim_folder(folder, out)
            try:
                return run_story(folder, out, keep=True)
            finally:
                (folder / RUNNING).unlink(missing_ok=True)
        with tempfile.TemporaryDirectory(prefix="paved-demo-") as scratch:
            return run_story(Path(scratch), out, keep=False)
    except StoryFailed as failed:
        print(f"\nThe demo stopped: {failed.message}", file=sys.stderr)
        return 1
