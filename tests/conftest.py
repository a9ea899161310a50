"""Fixtures shared by the whole suite: an isolated home and data folder, real platform repos in git, a web app
served for real, and the sandbox forge held to GitHub's descriptions.

Every test is also watched: whatever the sandbox forge answers or delivers while it runs is checked
against GitHub's descriptions (`tests/conformance.py`) when it ends, so a new test is covered without
doing anything and a non-conforming answer fails the test that caused it.
"""

from __future__ import annotations

import io
import logging
import os
import shutil
import socket
import subprocess
import textwrap
import threading
import time
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NoReturn

import pytest
import uvicorn
import yaml
from github import Auth, Github

from bot.adapters.catalogue_index import SQLiteCatalogueIndex
from bot.adapters.github import GitHubForge, installation_client, installation_of
from bot.adapters.mirror import GitMirror
from bot.handlers import Context
from bot.handlers.pull_request import CHECK_NAME
from bot.provider import Target
from bot.render.markdown import MARKER
from bot.sandbox import Sandbox
from bot.sandbox.recording import Exchange, SentDelivery, watch
from bot.settings import Settings
from bot.web.logs import configure_logging

if TYPE_CHECKING:
    from tests.conformance import RestConformance, WebhookConformance

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


# -- the sandbox held to GitHub's descriptions, test by test ------------------------------------------


@dataclass
class ConformanceWatch:
    """What the sandbox answers and delivers, each with the test that was running; checked as each test ends.

    Exchanges are named by the test running when they were recorded (from its setup, which starts shared
    fixtures too, to the end of its teardown, which stops them), and every one not yet checked is checked
    at the next teardown, so an answer that arrives late is still checked and still named rightly.
    """

    current: str = ""
    expects_server_error: set[str] = field(default_factory=set)
    pending_exchanges: list[tuple[str, Exchange]] = field(default_factory=list)
    pending_deliveries: list[tuple[str, SentDelivery]] = field(default_factory=list)
    exchanges: int = 0
    routes: set[tuple[str, str]] = field(default_factory=set)
    deliveries: int = 0
    events: set[str] = field(default_factory=set)
    seconds: float = 0.0  # spent checking, said in the summary so that a slow check shows
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Built on first use: loading GitHub's REST description takes most of a second, which a run that
    # never starts a sandbox should not pay.
    _rest: RestConformance | None = None
    _webhooks: WebhookConformance | None = None

    def on_exchange(self, exchange: Exchange) -> None:
        with self.lock:
            self.pending_exchanges.append((self.current, exchange))

    def on_delivery(self, delivery: SentDelivery) -> None:
        with self.lock:
            self.pending_deliveries.append((self.current, delivery))

    def begin(self, item: pytest.Item) -> None:
        with self.lock:
            self.current = item.nodeid
        if item.get_closest_marker("sandbox_expects_server_error"):
            self.expects_server_error.add(item.nodeid)

    def problems(self) -> list[str]:
        """Each problem with what was recorded since the last call, naming its test and the request."""
        with self.lock:
            exchanges, self.pending_exchanges = self.pending_exchanges, []
            deliveries, self.pending_deliveries = self.pending_deliveries, []
        if not exchanges and not deliveries:
            return []
        started = time.perf_counter()
        found: list[str] = []
        if exchanges:
            if self._rest is None:
                from tests.conformance import RestConformance

                self._rest = RestConformance()
            for test, exchange in exchanges:
                self.exchanges += 1
                if exchange.route:
                    self.routes.add((exchange.method, exchange.route))
                found += [f"{test or '(outside any test)'}: {exchange.method} {exchange.path} -> {exchange.status}: "
                          f"{problem}" for problem in self._rest.check(
                              exchange, allow_server_error=test in self.expects_server_error)]
        if deliveries:
            if self._webhooks is None:
                from tests.conformance import WebhookConformance

                self._webhooks = WebhookConformance()
            for test, delivery in deliveries:
                self.deliveries += 1
                self.events.add(f"{delivery.event}.{delivery.action}" if delivery.action else delivery.event)
                found += [f"{test or '(outside any test)'}: webhook to {delivery.url}: {problem}"
                          for problem in self._webhooks.check(delivery)]
        self.seconds += time.perf_counter() - started
        return list(dict.fromkeys(found))


def _unlike_github(problems: list[str]) -> str:
    shown = "\n".join(problems[:50]) + (f"\n... and {len(problems) - 50} more" if len(problems) > 50 else "")
    return f"the sandbox answered unlike GitHub's descriptions (tests/conformance.py):\n{shown}"


_WATCH = ConformanceWatch()
# What fails the run outside any test, and what was not checked, said in the terminal summary.
_SESSION_PROBLEMS = pytest.StashKey[list[str]]()
_SESSION_NOTES = pytest.StashKey[list[str]]()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "sandbox_expects_server_error: the test provokes a 500 on purpose; "
                                       "the conformance check accepts it (still GitHub-shaped)")
    config.stash[_SESSION_PROBLEMS] = []
    config.stash[_SESSION_NOTES] = []
    config.add_cleanup(watch(_WATCH.on_exchange, _WATCH.on_delivery))


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Name the test before its fixtures start: a module's shared sandbox is started by its first test."""
    _WATCH.begin(item)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None, None, None]:
    """Once the test's fixtures are stopped (its sandbox with them), what it made the sandbox say must conform;
    an answer that does not is an error in this test's teardown, naming the request."""
    try:
        yield
    finally:
        problems = _WATCH.problems()
        if problems:
            pytest.fail(_unlike_github(problems), pytrace=False)


# -- no git process outlives the run -----------------------------------------------------------------


def git_readers_left() -> list[str] | None:
    """The `git cat-file` processes this process started that are still running, each as its id and command
    line (the repository's path in it names the test's temporary folder); None where there is no /proc to
    look in."""
    proc = Path("/proc")
    if not (proc / "self" / "stat").is_file():
        return None
    found = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            # The command name (in parentheses) may hold spaces or parentheses: the fields after its last
            # `)` are the state and the parent's id.
            state, parent = (entry / "stat").read_text().rsplit(")", 1)[1].split()[:2]
            if int(parent) != os.getpid() or state == "Z":  # a zombie has ended; only its exit status is left
                continue
            argv = [arg.decode(errors="replace") for arg in (entry / "cmdline").read_bytes().split(b"\0") if arg]
        except (OSError, ValueError, IndexError):
            continue  # it ended while being read
        if argv and Path(argv[0]).name == "git" and "cat-file" in argv:
            found.append(f"{entry.name}: {' '.join(argv)}")
    return found


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    """Every test's fixtures, the shared ones too, have stopped: nothing should still be reading from git.
    Answers recorded after the last teardown (a sandbox thread finishing late) are checked here too."""
    problems = _WATCH.problems()
    if problems:
        session.config.stash[_SESSION_PROBLEMS].append(_unlike_github(problems))
    left = git_readers_left()
    if left is None:
        session.config.stash[_SESSION_NOTES].append("git cat-file check skipped: no /proc on this system")
    elif left:
        session.config.stash[_SESSION_PROBLEMS].append(
            f"{len(left)} git cat-file processes were left running (close each GitTree, best with `with`):\n"
            + "\n".join(left))
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:  # a pytest-xdist worker: its controller says it and fails the run
        workeroutput["paved"] = {
            "problems": session.config.stash[_SESSION_PROBLEMS], "notes": session.config.stash[_SESSION_NOTES],
            "exchanges": _WATCH.exchanges, "deliveries": _WATCH.deliveries, "seconds": _WATCH.seconds,
            "routes": sorted(_WATCH.routes), "events": sorted(_WATCH.events)}
    if session.config.stash[_SESSION_PROBLEMS]:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """A pytest-xdist worker has finished (`make test` runs the suite on every core): what fails its part of the
    run outside any test, and what its conformance check covered, become the whole run's."""
    found = getattr(node, "workeroutput", {}).get("paved")
    if found is None:
        return
    node.config.stash[_SESSION_PROBLEMS].extend(found["problems"])
    node.config.stash[_SESSION_NOTES].extend(note for note in found["notes"]
                                             if note not in node.config.stash[_SESSION_NOTES])
    with _WATCH.lock:
        _WATCH.exchanges += found["exchanges"]
        _WATCH.deliveries += found["deliveries"]
        _WATCH.seconds += found["seconds"]
        _WATCH.routes.update((method, route) for method, route in found["routes"])
        _WATCH.events.update(found["events"])


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """What the conformance check covered in this run, in one line; and what fails the run outside any test."""
    for note in config.stash.get(_SESSION_NOTES, []):
        terminalreporter.write_line(note, yellow=True)
    for problem in config.stash.get(_SESSION_PROBLEMS, []):
        terminalreporter.write_line(problem, red=True)
    if not _WATCH.exchanges and not _WATCH.deliveries:
        return
    terminalreporter.write_line(
        f"sandbox conformance: {_WATCH.exchanges} REST answers over {len(_WATCH.routes)} operations and "
        f"{_WATCH.deliveries} webhook payloads over {len(_WATCH.events)} event kinds checked against GitHub's "
        f"descriptions in {_WATCH.seconds:.1f} s ({', '.join(sorted(_WATCH.events))})")
    from bot.sandbox.endpoints import all_routes

    served = {(r.method, r.template) for r in all_routes().routes}
    idle = sorted(f"{method} {route}" for method, route in served - _WATCH.routes)
    whole_suite = not (config.option.file_or_dir or config.option.keyword or config.option.markexpr)
    if idle and whole_suite:  # a part of the suite leaves most routes idle, which says nothing
        terminalreporter.write_line(f"sandbox routes no test called: {', '.join(idle)}")


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
            "metadata": "read", "deployments": "read", "actions": "read"},
            webhook_url="http://127.0.0.1:9/webhooks/github", webhook_secret="x" * 32)
        forge.install_app(app.id, "acme")
        installation = installation_of(forge.api_url, app.id, app.private_key, REPO)
        client = installation_client(forge.api_url, app.id, app.private_key, installation, polite=False)
        auth = client.requester.auth
        assert isinstance(auth, Auth.AppInstallationAuth)
        mirror = GitMirror(tmp_path / "mirrors", lambda repo: forge.clone_url(*repo.split("/")),
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


# -- a web app served for real, its log, and cookiecutter kept to itself ------------------------------


@contextmanager
def serving(app: Any, *, lifespan: Literal["on", "off"] = "on", start_seconds: float = 10) -> Iterator[str]:
    """`app` served by uvicorn in a thread on a free 127.0.0.1 port until the block ends; yields its base URL.

    The socket is bound before the server starts, so the port is known without a race and no other
    process can take it in between.
    """
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, lifespan=lifespan))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + start_seconds
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=40)
        sock.close()


@pytest.fixture
def log_output() -> Iterator[Callable[[Settings], io.StringIO]]:
    """Configure logging as `paved serve` does, into a buffer; the test's logging is restored afterwards."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level

    def configure(settings: Settings) -> io.StringIO:
        buffer = io.StringIO()
        configure_logging(settings, stream=buffer)
        return buffer

    yield configure
    root.handlers[:] = saved_handlers
    root.setLevel(saved_level)


@pytest.fixture(scope="module")
def isolated_cookiecutter(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A private HOME and cookiecutter configuration for a module's renderings, so that rendering never reads
    the user's own; module-wide, because renderings shared by a module's tests are made before any test's
    own HOME exists."""
    home = tmp_path_factory.mktemp("home")
    config = home / "cookiecutter.yaml"
    config.write_text(
        yaml.safe_dump({"cookiecutters_dir": str(home / "cookiecutters"), "replay_dir": str(home / "replay")})
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HOME", str(home))
        patch.setenv("USERPROFILE", str(home))
        patch.setenv("COOKIECUTTER_CONFIG", str(config))
        yield home


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
