"""Fixtures shared by the whole suite: an isolated home and data folder, and real platform repos in git."""

from __future__ import annotations

import os
import shutil
import subprocess
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import pytest
from github import Auth, Github

from bot.adapters.catalogue_index import SQLiteCatalogueIndex
from bot.adapters.github import GitHubForge, installation_client, installation_of
from bot.adapters.workspace import Workspace
from bot.handlers import Context
from bot.handlers.pull_request import CHECK_NAME
from bot.provider import Target
from bot.render.markdown import MARKER
from bot.sandbox import Sandbox

PROJECT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """No test reads or writes the machine's home, git config or Paved data folder."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("PAVED_DATA_DIR", str(home / "paved-data"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("NO_COLOR", "1")
    for name in ("GIT_DIR", "GIT_WORK_TREE", "XDG_DATA_HOME"):
        monkeypatch.delenv(name, raising=False)
    yield home


class PlatformRepo:
    """A real git repository laid out like a platform repo, with the project's schemas and templates."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def git(self, *args: str) -> str:
        env = {**os.environ, "GIT_AUTHOR_NAME": "Alice", "GIT_AUTHOR_EMAIL": "alice@example.com",
               "GIT_COMMITTER_NAME": "Alice", "GIT_COMMITTER_EMAIL": "alice@example.com"}
        done = subprocess.run(["git", "-C", str(self.root), *args], capture_output=True, text=True, env=env,
                              check=True)
        return done.stdout.strip()

    def write(self, path: str, text: str) -> Path:
        target = self.root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return target

    def remove(self, path: str) -> None:
        (self.root / path).unlink()

    def commit(self, message: str = "change") -> str:
        self.git("add", "--all")
        self.git("commit", "--quiet", "--allow-empty", "-m", message)
        return self.git("rev-parse", "HEAD")


TEAM = """
apiVersion: paved/v1
kind: Team
metadata:
  name: {name}
  owner: {name}
  description: The {name} team.
spec:
  members: [alice, bob]
  maintainers: [alice, bob]
  budget:
    monthly: {budget}
"""

SERVICE = """
apiVersion: paved/v1
kind: Service
metadata:
  name: {name}
  owner: {owner}
  description: The {name} service.
spec:
  template:
    name: fastapi-service
  repository:
    visibility: private
  tier: {tier}
  lifecycle: production
"""

DATABASE = """
apiVersion: paved/v1
kind: Database
metadata:
  name: {name}
  owner: {owner}
  description: Data of {service}.
spec:
  engine: postgres
  version: "16"
  size: {size}
  service: {service}
  backups:
    enabled: true
    retentionDays: 14
  deletionProtection: true
"""


@pytest.fixture
def platform_repo(tmp_path: Path) -> PlatformRepo:
    """A platform repo on `main` with the project's rules and a small clean catalogue, committed."""
    root = tmp_path / "platform"
    root.mkdir()
    repo = PlatformRepo(root)
    repo.git("init", "--quiet", "--initial-branch=main")
    shutil.copytree(PROJECT / "schemas", root / "schemas")
    shutil.copytree(PROJECT / "templates", root / "templates")
    repo.write("catalog/teams/payments.yaml", TEAM.format(name="payments", budget=500))
    repo.write("catalog/teams/data.yaml", TEAM.format(name="data", budget=300))
    repo.write("catalog/services/checkout.yaml",
               SERVICE.format(name="checkout", owner="payments", tier="production")
               + "---" + DATABASE.format(name="checkout-db", owner="payments", service="checkout", size="small"))
    repo.commit("initial catalogue")
    return repo


# -- a platform repo on the sandbox forge, and Paved installed on it ----------------------------------

AB_TESTING = "catalog/services/ab-testing.yaml"


def experimental_change(forge: Sandbox, branch: str, by: str, *, description: str = "Splits visitors into "
                        "experiment variants.") -> int:
    """A pull request that rewords growth's experimental ab-testing service: a change nobody has to approve."""
    text = forge.read_file("acme", "platform", AB_TESTING).decode().replace(
        "Assigns visitors to experiment variants and records which variant they saw.", description, 1)
    forge.push_files("acme", "platform", branch, {AB_TESTING: text}, by=by)
    return forge.open_pull_request("acme", "platform", head=branch, title="Reword ab-testing", by=by).number

REPO = "acme/platform"


@dataclass
class World:
    """acme's platform repo (the bundled catalogue) on a sandbox forge, with Paved installed as an app.

    alice owns the org; bob, carol and dave may write to the platform repo; erin may only read it.
    """

    forge: Sandbox
    ctx: Context
    bot_login: str

    def check(self, number: int) -> tuple[str | None, str, int]:
        pr = self.forge.pull_request("acme", "platform", number)
        runs = self.ctx.forge._repo(REPO).get_commit(pr.head_sha).get_check_runs(  # type: ignore[attr-defined]
            check_name=CHECK_NAME)
        run = next(iter(runs))
        return run.conclusion, run.output.title, len(self.forge.check_run_annotations("acme", "platform", run.id))

    def delivered(self, event: str, action: str | None = None) -> dict[str, Any]:
        """The payload of the latest delivery of `event` (and `action`)."""
        self.forge.wait_for_deliveries()
        return self.forge.deliveries(event, action)[-1].payload

    def comments(self, number: int) -> list[str]:
        return [c.body for c in self.forge.comments("acme", "platform", number)]

    def plan_comments(self, number: int) -> list[str]:
        return [c.body for c in self.forge.comments("acme", "platform", number) if c.body.startswith(MARKER)]


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    folder = tmp_path / "seed"
    for name in ("catalog", "schemas", "templates"):
        shutil.copytree(PROJECT / name, folder / name)
    with Sandbox.start(tmp_path / "forge") as forge:
        alice = forge.create_user("alice")
        for login in ("bob", "carol", "dave", "erin"):
            forge.create_user(login)
        forge.create_org("acme", owners=["alice"], members=["bob", "carol", "dave", "erin"])
        forge.create_repo_from_folder("acme", "platform", folder, owner_token=alice.token)
        for login in ("bob", "carol", "dave"):
            forge.add_collaborator("acme", "platform", login, "write")
        forge.add_collaborator("acme", "platform", "erin", "read")
        # Deliveries go nowhere (port 9 refuses); tests read their payloads from the forge's delivery log.
        app = forge.create_app("acme", "paved", permissions={
            "checks": "write", "contents": "write", "issues": "write", "pull_requests": "write",
            "metadata": "read"}, webhook_url="http://127.0.0.1:9/webhooks/github", webhook_secret="x" * 32)
        forge.install_app(app.id, "acme")
        installation = installation_of(forge.api_url, app.id, app.private_key, REPO)
        client = installation_client(forge.api_url, app.id, app.private_key, installation, polite=False)
        auth = client.requester.auth
        assert isinstance(auth, Auth.AppInstallationAuth)
        mirror = Workspace(tmp_path / "mirrors", lambda repo: forge.clone_url(*repo.split("/")),
                           lambda repo: auth.token)
        yield World(forge, Context(GitHubForge(client), mirror, SQLiteCatalogueIndex(tmp_path / "index.sqlite")),
                    app.bot_login)


@dataclass
class Provisioner:
    """What applying merged requests works with: Paved's App with the permissions that needs (it
    creates repositories and teams, so `administration` and `members` too, and marks its repositories
    with an organization custom property, so `organization_custom_properties`), installed on acme, and
    the merged platform repo's files to build from."""

    client: Github
    token: Callable[[], str]
    installation_id: int
    target: Target


@pytest.fixture
def provisioner(world: World) -> Iterator[Provisioner]:
    forge = world.forge
    app = forge.create_app("acme", "paved-provisioner", permissions={
        "administration": "write", "members": "write", "contents": "write", "metadata": "read",
        "organization_custom_properties": "admin"})
    forge.install_app(app.id, "acme")
    installation = installation_of(forge.api_url, app.id, app.private_key, REPO)
    client = installation_client(forge.api_url, app.id, app.private_key, installation, polite=False)
    auth = client.requester.auth
    assert isinstance(auth, Auth.AppInstallationAuth)
    world.ctx.mirror.fetch(REPO, ["main"])
    merged = forge.branch_sha("acme", "platform", "main")
    assert merged is not None
    tree = world.ctx.mirror.tree(REPO, merged)
    yield Provisioner(client, lambda: auth.token, installation,
                      Target(organization="acme", platform_repo=REPO, tree=tree, revision=merged))
    tree.close()


class Killed(BaseException):
    """A Paved process dying at a call: nothing after it runs, and no handler catches it."""


@dataclass
class DiesAt:
    """The forge of a Paved that is killed when it makes call `method` (the call does not happen)."""

    forge: Any
    method: str

    def __getattr__(self, name: str) -> Any:
        if name == self.method:
            def die(*args: Any, **kwargs: Any) -> Any:
                raise Killed(name)
            return die
        return getattr(self.forge, name)


def in_ci() -> bool:
    """Whether the tests run in CI (`CI` set to true, 1 or yes), where a missing server or browser fails
    the test instead of skipping it: the one place that reads the switch."""
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def missing(what: str, how: str) -> NoReturn:
    """Stop a test that needs `what`: it fails in CI, which must provide it, and is skipped elsewhere with `how`
    to get it."""
    if in_ci():
        pytest.fail(f"{what}; CI must provide it", pytrace=False)
    pytest.skip(f"{what}. {how}")


POSTGRES_DSN = os.environ.get("PAVED_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")


@pytest.fixture(scope="session")
def postgres_dsn() -> str:
    """A PostgreSQL server to make databases on: PAVED_TEST_POSTGRES_DSN, by default this machine's."""
    import psycopg

    try:
        psycopg.connect(POSTGRES_DSN, connect_timeout=5).close()
    except psycopg.Error as exc:
        why = " ".join(str(exc).split())[:200]
        missing(f"PostgreSQL is unreachable at PAVED_TEST_POSTGRES_DSN ({why})",
                "Start one (Debian: `sudo apt-get install postgresql`; or `docker run -d -p 5432:5432 "
                "-e POSTGRES_HOST_AUTH_METHOD=trust postgres:16`) or point PAVED_TEST_POSTGRES_DSN at one")
    return POSTGRES_DSN
