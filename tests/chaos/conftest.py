"""The chaos harness: Paved run as the real processes an operator runs, killed with SIGKILL, restarted.

Each test gets acme's platform repo on a sandbox forge in the test process (the forge plays GitHub: it
delivers webhooks over HTTP to `paved serve`, and fails on purpose where a test asks, see
`bot/sandbox/faults.py`), and starts Paved as child processes configured by environment variables only:
`python -m bot.cli serve`, `worker` and `reconcile`, each in a process group of its own so that a SIGKILL
takes the git and template-rendering children with it. What the forge holds afterwards (check runs,
comments, repositories, the notes of `refs/notes/paved`) is read straight from the forge's store and
git, never through its API, so the faults a test injects cannot blur what it sees.

The platform repo starts with the bundled teams, schemas and templates; Paved's reconcile at start
applies that first. A test then asks, in one pull request, for an experimental service of the growth
team with its database (a change nobody has to approve), merges it, and breaks things on the way.
Every wait polls with a deadline and fails saying what it saw last, with the tail of each Paved
process's log; a failing test carries those logs in its report too.
"""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import psycopg
import pytest
import redis
from psycopg import sql

from bot.adapters.deliveries import DeliveryLog, open_delivery_log
from bot.apply import NOTES_REF, OBSERVATIONS, ApplyRecord, read_records
from bot.handlers.push import applied_marker
from bot.sandbox import AppCredentials, Sandbox
from bot.sandbox.model import StoredCheckRun, StoredComment, StoredRepo
from bot.settings import Settings
from tests.conftest import PROJECT
from tests.test_service import REDIS_URL, redis_queue  # noqa: F401 - the Redis queue fixture, shared

T = TypeVar("T")

ORG, REPO = "acme", "platform"
PLATFORM = f"{ORG}/{REPO}"
SECRET = "a-webhook-secret-for-the-chaos-tests"
PLAN_CHECK, APPLY_CHECK = "paved/plan", "paved/apply"
PLAN_MARKER = "<!-- paved:plan -->"
APPLIED_REF = "refs/paved/applied"
PLANS_REF = "refs/notes/paved-plans"
# Short enough that a killed holder's lease frees its work within seconds, long enough to be renewed.
LEASE_SECONDS = 5
# Reconcile runs when a process starts (the catch-up after a crash) and on a schedule, every minute here
# (every 15 by default).
RECONCILE_MINUTES = 1
PEOPLE = {"payments": ("alice", "bob", "carol"), "data": ("dana", "erik", "farah"), "growth": ("gina", "hugo"),
          "platform": ("maya", "oskar", "priya")}
APP_PERMISSIONS = {"checks": "write", "contents": "write", "issues": "write", "pull_requests": "write",
                   "metadata": "read", "administration": "write", "members": "write", "secrets": "write",
                   "organization_custom_properties": "admin"}
POSTGRES_VARIABLE = "PAVED_CHAOS_POSTGRES_DSN"

SERVICE = """\
apiVersion: paved/v1
kind: Service
metadata:
  name: {name}
  owner: growth
  description: Tries out which sign-up page keeps visitors.
spec:
  template:
    name: fastapi-service
  repository:
    visibility: private
  tier: experimental
  lifecycle: experimental
---
apiVersion: paved/v1
kind: Database
metadata:
  name: {name}-db
  owner: growth
  description: Which visitor saw which sign-up page.
spec:
  engine: postgres
  version: "{version}"
  size: small
  service: {name}
  backups:
    enabled: true
    retentionDays: 3
  deletionProtection: false
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# -- Paved's processes ----------------------------------------------------------------------------------------


class Paved:
    """One Paved process (`serve`, `worker`), started from its environment, its output kept in a log file.

    It leads a process group of its own, so that `kill` (SIGKILL, as the kernel's OOM killer or a lost
    machine would) also ends the git and template processes it started.
    """

    def __init__(self, name: str, command: str, env: dict[str, str], log: Path) -> None:
        self.name = name
        self.command = command
        self.env = env
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None
        self._pump: threading.Thread | None = None

    def start(self) -> Paved:
        # Output goes through a pipe, drained into the log file by this process: a child whose files
        # may not grow (a full disk, see `Chaos.fill_disk`) can still say so.
        self.process = subprocess.Popen([sys.executable, "-m", "bot.cli", self.command], env=self.env, cwd=PROJECT,
                                        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        self._pump = threading.Thread(target=self._drain, args=(self.process,), daemon=True)
        self._pump.start()
        return self

    def _drain(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stdout is not None
        with self.log.open("ab") as out:
            out.write(f"--- {self.name} started (pid {process.pid}) ---\n".encode())
            for line in process.stdout:
                out.write(line)
                out.flush()

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL the process and everything it started; nothing of it runs afterwards."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        if self._pump is not None:
            self._pump.join(timeout=5)

    def stop(self) -> None:
        """SIGTERM (let running jobs finish briefly), then SIGKILL whatever is left of the group."""
        if self.process is None:
            return
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout=5)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        self.kill()

    def tail(self, lines: int = 40) -> str:
        if not self.log.exists():
            return "(no output)"
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


# -- the world ------------------------------------------------------------------------------------------------


@dataclass
class Chaos:
    """acme's platform on a sandbox forge, Paved's App installed, and the Paved processes a test started."""

    forge: Sandbox
    app: AppCredentials
    root: Path
    service: str
    seed_head: str
    postgres_dsn: str | None = None
    # The PostgreSQL major version the database asks for: the server's, when there is one.
    postgres_version: str = "16"
    processes: list[Paved] = field(default_factory=list)
    port: int = field(default_factory=free_port)

    # -- running Paved -----------------------------------------------------------------------------------

    def env(self, data: str, **settings: str) -> dict[str, str]:
        """A Paved process's environment: the App, the forge, a data folder of `data`'s, and `settings`."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("PAVED_")}
        env.update({
            "PYTHONPATH": str(PROJECT), "HOME": str(self.root / "home"), "NO_COLOR": "1",
            "PAVED_DATA_DIR": str(self.root / data), "PAVED_GITHUB_API_URL": self.forge.api_url,
            "PAVED_GITHUB_APP_ID": str(self.app.id), "PAVED_GITHUB_PRIVATE_KEY": self.app.private_key,
            "PAVED_WEBHOOK_SECRET": SECRET, "PAVED_RECONCILE_MINUTES": str(RECONCILE_MINUTES),
            "PAVED_LEASE_SECONDS": str(LEASE_SECONDS), "PAVED_LOG_LEVEL": "INFO",
        })
        if self.postgres_dsn is not None:
            env[POSTGRES_VARIABLE] = self.postgres_dsn
        env.update(settings)
        return env

    def data(self, name: str = "data") -> Path:
        return self.root / name

    def serve(self, name: str = "serve", *, data: str = "data", **settings: str) -> Paved:
        """`paved serve` on this world's port, answering `/healthz`, with the forge's webhook pointed at it."""
        process = self._start(name, "serve", data, PAVED_PORT=str(self.port), **settings)
        self.wait_for(f"{name} to answer /healthz", lambda: self._healthy(process), seconds=30)
        self.forge.set_app_webhook(self.app.id, self.url + "/webhooks/github", SECRET)
        return process

    def worker(self, name: str, *, data: str, **settings: str) -> Paved:
        return self._start(name, "worker", data, **settings)

    def _start(self, name: str, command: str, data: str, **settings: str) -> Paved:
        process = Paved(name, command, self.env(data, **settings), self.root / f"{name}.log").start()
        self.processes.append(process)
        return process

    def restart(self, process: Paved) -> Paved:
        """The same command and environment again, as a supervisor restarts a process that died."""
        again = Paved(process.name, process.command, process.env, process.log).start()
        self.processes.append(again)
        if process.command == "serve":
            self.wait_for(f"{process.name} to answer /healthz again", lambda: self._healthy(again), seconds=30)
        return again

    def reconcile(self, data: str = "data", **settings: str) -> subprocess.CompletedProcess[str]:
        """`paved reconcile`, run once to its end as a cron job would run it."""
        done = subprocess.run([sys.executable, "-m", "bot.cli", "reconcile"], env=self.env(data, **settings),
                              cwd=PROJECT, capture_output=True, text=True, timeout=120)
        with (self.root / "reconcile.log").open("a") as log:
            log.write(f"--- paved reconcile: exit {done.returncode} ---\n{done.stdout}{done.stderr}")
        return done

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _healthy(self, process: Paved) -> bool:
        if not process.alive:
            raise AssertionError(f"{process.name} exited with {process.process and process.process.returncode}\n"
                                 f"{self.logs()}")
        try:
            return httpx.get(self.url + "/healthz", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    def readyz(self) -> httpx.Response:
        return httpx.get(self.url + "/readyz", timeout=10)

    def fill_disk(self, process: Paved) -> None:
        """The disk under `process` is full: no file it (or a child it starts) writes may grow by a byte.

        RLIMIT_FSIZE set from outside with prlimit(2) needs no root and no special file system: a write
        that would make a file larger fails with EFBIG (Python ignores SIGXFSZ), as on a full disk.
        """
        _, hard = resource.prlimit(process.pid, resource.RLIMIT_FSIZE)
        resource.prlimit(process.pid, resource.RLIMIT_FSIZE, (0, hard))

    def free_disk(self, process: Paved) -> None:
        """Room on the disk again, for `process` and the children it starts from now on."""
        _, hard = resource.prlimit(process.pid, resource.RLIMIT_FSIZE)
        resource.prlimit(process.pid, resource.RLIMIT_FSIZE, (hard, hard))

    def stop_all(self) -> None:
        for process in reversed(self.processes):
            process.stop()

    def logs(self, lines: int = 40) -> str:
        """The tail of every Paved process's log, for a failure message."""
        seen: set[Path] = set()
        parts = []
        for process in self.processes:
            if process.log in seen:
                continue
            seen.add(process.log)
            parts.append(f"--- {process.name} ({process.command}), last {lines} lines ---\n{process.tail(lines)}")
        reconcile_log = self.root / "reconcile.log"
        if reconcile_log.exists():
            parts.append(f"--- paved reconcile ---\n{reconcile_log.read_text()[-4000:]}")
        return "\n".join(parts)

    # -- waiting ---------------------------------------------------------------------------------------------

    def wait_for(self, what: str, look: Callable[[], T], seconds: float, *,
                 until: Callable[[T], bool] = bool, every: float = 0.1) -> T:
        """Poll `look` every `every` seconds until `until` holds for what it returns; fail after `seconds`
        saying what it saw last."""
        deadline = time.monotonic() + seconds
        seen: Any = None
        while True:
            try:
                seen = look()
                if until(seen):
                    return seen
            except AssertionError:
                raise
            except Exception as exc:  # a store or a server between states: look again
                seen = f"{type(exc).__name__}: {exc}"
            if time.monotonic() > deadline:
                raise AssertionError(f"waited {seconds:.0f}s for {what}; last seen: {seen!r}\n{self.logs()}")
            time.sleep(every)

    def converging(self, what: str) -> Stopwatch:
        return Stopwatch(what)

    # -- acting as acme's people ------------------------------------------------------------------------------

    def open_request(self, branch: str = "experiment") -> int:
        """gina asks for this world's service and its database in a pull request; its number."""
        request = SERVICE.format(name=self.service, version=self.postgres_version)
        self.forge.push_files(ORG, REPO, branch, {f"catalog/services/{self.service}.yaml": request}, by="gina")
        return self.forge.open_pull_request(ORG, REPO, head=branch, title=f"Add {self.service}", by="gina").number

    def merge(self, number: int) -> str:
        """alice merges the pull request; the new head of main."""
        return self.forge.merge(ORG, REPO, number, by="alice")

    def head(self, number: int) -> str:
        return self.forge.pull_request(ORG, REPO, number).head_sha

    def delivery_log(self, process: Paved) -> DeliveryLog:
        """The delivery log `process` keeps (its data folder's, or Redis's), read from this process."""
        return open_delivery_log(Settings.from_env(process.env))

    def delivery_of_merge(self, head: str) -> str:
        """The id of the forge's `push` delivery that moved main to `head`."""
        self.forge.wait_for_deliveries()
        return next(d.guid for d in self.forge.deliveries("push")
                    if d.payload.get("after") == head and d.payload.get("ref") == "refs/heads/main")

    def settle(self, log: DeliveryLog, seconds: float = 60) -> None:
        """Until every delivery the forge sent and Paved took (202) has run to its end, done or failed."""
        def unfinished() -> list[tuple[str, str, str | None]]:
            self.forge.wait_for_deliveries()
            found = []
            for delivery in self.forge.deliveries():
                if delivery.status_code == 202:
                    record = log.get(delivery.guid)
                    if record is None or record.status not in ("done", "failed"):
                        found.append((delivery.guid, delivery.event, record and record.status))
            return found
        self.wait_for("every accepted delivery to run to its end", unfinished, seconds, until=lambda left: not left)

    # -- what the forge holds, read from its store ------------------------------------------------------------

    def _platform(self) -> StoredRepo:
        found = self.forge.forge.find_repo(ORG, REPO)
        assert found is not None
        return found

    def check_runs(self, sha: str, name: str) -> list[StoredCheckRun]:
        """Paved's check runs called `name` on `sha`."""
        repo_id = self._platform().id
        return self.forge.forge.store.all(StoredCheckRun, lambda r: r.repo_id == repo_id and r.head_sha == sha
                                          and r.name == name and r.app_id == self.app.id)

    def paveds_comments(self, number: int) -> list[str]:
        repo_id = self._platform().id
        return [c.body for c in self.forge.forge.store.all(
            StoredComment, lambda c: c.repo_id == repo_id and c.issue_number == number and c.app_id == self.app.id)]

    def plan_comments(self, number: int) -> list[str]:
        return [body for body in self.paveds_comments(number) if body.startswith(PLAN_MARKER)]

    def apply_comments(self, number: int, head: str) -> list[str]:
        return [body for body in self.paveds_comments(number) if body.split("\n", 1)[0] == applied_marker(head)]

    def git(self, *args: str) -> str:
        path = self.forge.forge.git(self._platform()).path
        return subprocess.run(["git", f"--git-dir={path}", *args], capture_output=True, text=True,
                              check=False).stdout.strip()

    def applied_ref(self) -> str | None:
        return self.git("rev-parse", "--verify", "--quiet", APPLIED_REF) or None

    def records(self, sha: str) -> list[ApplyRecord]:
        """The applies recorded in `sha`'s note on the forge."""
        return read_records(self.git("notes", f"--ref={NOTES_REF}", "show", sha))

    def successful_applies(self, sha: str) -> list[ApplyRecord]:
        return [r for r in self.records(sha) if r.trigger not in OBSERVATIONS and r.ok
                and not getattr(r, "reason", "")]

    def repositories(self) -> set[str]:
        """The repositories of acme besides the platform repo."""
        org = self.forge.forge.account(ORG)
        assert org is not None
        return {r.name for r in self.forge.forge.store.all(StoredRepo, lambda r: r.owner_id == org.id)} - {REPO}

    def databases(self) -> set[str]:
        """The databases Paved made: on PostgreSQL when the world has one, else SQLite files in any data folder."""
        if self.postgres_dsn is not None:
            with psycopg.connect(self.postgres_dsn, autocommit=True) as conn:
                rows = conn.execute("SELECT datname FROM pg_database WHERE datname LIKE %s",
                                    (f"{self.service}%",)).fetchall()
            return {str(row[0]) for row in rows}
        return {p.stem for p in self.root.glob("*/databases/*.sqlite3")}

    # -- convergence ---------------------------------------------------------------------------------------

    def wait_until_applied(self, sha: str, seconds: float = 60) -> None:
        """Until the forge says `sha` is applied: the applied ref on it, its check a success."""
        def look() -> tuple[str | None, list[str | None]]:
            return self.applied_ref(), [r.conclusion for r in self.check_runs(sha, APPLY_CHECK)]
        self.wait_for(f"{sha[:12]} to be applied", look, seconds, until=lambda s: s == (sha, ["success"]))

    def wait_for_plan(self, number: int, seconds: float = 60) -> None:
        """Until the pull request's head has Paved's completed plan check, its plan comment, and the plan's
        record in the forge's notes (the plan job's last write)."""
        head = self.head(number)
        self.wait_for(f"the plan of #{number}", lambda: ([r.status for r in self.check_runs(head, PLAN_CHECK)],
                                                        len(self.plan_comments(number)),
                                                        bool(self.git("notes", f"--ref={PLANS_REF}", "show", head))),
                      seconds, until=lambda s: s[0] == ["completed"] and s[1] >= 1 and s[2])

    def planned_request(self) -> int:
        """Once Paved has applied the catalogue it found, gina's pull request, planned; its number."""
        self.wait_until_applied(self.seed_head)
        number = self.open_request()
        self.wait_for_plan(number)
        return number

    def wait_until_reported(self, number: int, head: str, seconds: float = 60) -> None:
        """Until the merge `head` is applied and its pull request has heard of it."""
        self.wait_until_applied(head, seconds)
        self.wait_for(f"the apply comment of {head[:12]} on #{number}", lambda: self.apply_comments(number, head),
                      seconds)

    def assert_planned_once(self, number: int) -> None:
        head = self.head(number)
        runs = self.check_runs(head, PLAN_CHECK)
        assert [(r.status, r.conclusion) for r in runs] == [("completed", "success")], runs
        assert len(self.plan_comments(number)) == 1, self.plan_comments(number)

    def assert_applied_once(self, number: int, head: str) -> None:
        """Everything happened once: the pull request's head has one plan (check and comment); the merge
        `head` one `paved/apply` check, one apply comment and one successful record; the catalogue Paved
        found first one apply too; and the service's repository and database exist once."""
        self.assert_planned_once(number)
        seed = self.check_runs(self.seed_head, APPLY_CHECK)
        assert [(r.status, r.conclusion) for r in seed] == [("completed", "success")], seed
        assert len(self.successful_applies(self.seed_head)) == 1, self.records(self.seed_head)
        runs = self.check_runs(head, APPLY_CHECK)
        assert [(r.status, r.conclusion) for r in runs] == [("completed", "success")], runs
        assert len(self.apply_comments(number, head)) == 1, self.paveds_comments(number)
        assert len(self.successful_applies(head)) == 1, self.records(head)
        assert self.applied_ref() == head
        assert self.repositories() == {self.service}
        assert self.databases() == {f"{self.service}-db"}


class Stopwatch:
    """Times one convergence and says how long it took (printed, and kept in the test's report)."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.started = time.monotonic()
        self.seconds: float | None = None

    def stop(self, record_property: Callable[[str, object], None] | None = None) -> float:
        self.seconds = time.monotonic() - self.started
        print(f"time to converge ({self.what}): {self.seconds:.1f}s")
        if record_property is not None:
            record_property("time_to_converge_seconds", round(self.seconds, 2))
        return self.seconds


# -- fixtures -------------------------------------------------------------------------------------------------

LOGS = pytest.StashKey[Chaos]()


def _seed(folder: Path) -> Path:
    for name in ("schemas", "templates"):
        shutil.copytree(PROJECT / name, folder / name)
    shutil.copytree(PROJECT / "catalog" / "teams", folder / "catalog" / "teams")
    return folder


@pytest.fixture
def chaos(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Chaos]:
    """acme's platform on a sandbox forge with Paved's App installed; nothing of Paved runs yet.

    A test that also asks for `postgres_dsn` gets its databases on that server (`paved.yaml` names it),
    removed afterwards; the others get SQLite files in Paved's data folder.
    """
    dsn = request.getfixturevalue("postgres_dsn") if "postgres_dsn" in request.fixturenames else None
    service = f"chaos-{uuid.uuid4().hex[:8]}"
    seed = _seed(tmp_path / "seed")
    if dsn is not None:
        (seed / "paved.yaml").write_text(f"providers:\n  postgres:\n    connectionEnv: {POSTGRES_VARIABLE}\n")
    (tmp_path / "home").mkdir()
    try:
        with Sandbox.start(tmp_path / "forge") as forge:
            forge.create_user("alice")
            people = sorted({p for members in PEOPLE.values() for p in members} - {"alice"})
            for login in people:
                forge.create_user(login)
            forge.create_org(ORG, owners=["alice"], members=people)
            alice = forge.create_token("alice")
            forge.create_repo_from_folder(ORG, REPO, seed, owner_token=alice)
            for login in people:
                forge.add_collaborator(ORG, REPO, login, "write")
            app = forge.create_app(ORG, "paved", permissions=APP_PERMISSIONS)
            forge.install_app(app.id, ORG)
            seed_head = forge.branch_sha(ORG, REPO, "main")
            assert seed_head is not None
            world = Chaos(forge, app, tmp_path, service, seed_head, dsn)
            if dsn is not None:
                with psycopg.connect(dsn) as conn:
                    world.postgres_version = str(conn.info.server_version // 10000)
            request.node.stash[LOGS] = world
            try:
                yield world
            finally:
                forge.no_faults()
                world.stop_all()
    finally:
        if dsn is not None:
            with psycopg.connect(dsn, autocommit=True) as conn:
                for name in (f"{service}-db",):
                    conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
                    conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))


@pytest.fixture
def redis_client(redis_queue: str) -> Iterator[redis.Redis]:  # noqa: F811 - the fixture imported above
    client = redis.Redis.from_url(REDIS_URL)
    yield client
    client.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """A failing chaos test carries the tail of every Paved process's log in its report."""
    outcome = yield
    report = outcome.get_result()
    world = item.stash.get(LOGS, None)
    if world is not None and report.failed:
        report.sections.append(("Paved's processes", world.logs(80)))

