"""The database provider makes `Database` requests real on this machine's PostgreSQL, and hands the
credentials to the owning service only, as Actions secrets on the sandbox forge.

Every test works in its own uniquely named databases and roles, dropped afterwards. What the tests
check is what a service team would see: the database and its owner exist with the right limits, the
`DATABASE_URL` their repository received connects, and nothing else can.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import socket
import sqlite3
import stat
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import psycopg
import pytest
from github import Auth, Github
from psycopg import sql

from bot.adapters.github import installation_client, installation_of
from bot.apply import provider_job
from bot.config import RepoConfig
from bot.model import Resource
from bot.provider import Result, Target
from bot.providers.database import EMBEDDED, DatabaseProvider
from bot.providers.github.secrets import GitHubSecrets
from bot.sandbox import recording
from bot.sandbox.recording import Exchange
from tests.conftest import REPO, World

SERVER_VARIABLE = "PAVED_TEST_SERVER"


def database(name: str, **spec: Any) -> Resource:
    data = {"apiVersion": "paved/v1", "kind": "Database",
            "metadata": {"name": name, "owner": "payments", "description": "Search data."},
            "spec": {"engine": "postgres", "version": spec.pop("version", "15"), "size": "small", "service": "search",
                     "backups": {"enabled": True, "retentionDays": 7}, "deletionProtection": False, **spec}}
    return Resource("Database", name, "payments", "catalog/search.yaml", 0, 1, data)


@dataclass
class Place:
    """Where the tests' databases go: the server, the sandbox with acme/search, and the provider."""

    world: World
    dsn: str
    provider: DatabaseProvider
    target: Target
    data_dir: Path
    names: list[str]

    def name(self) -> str:
        found = f"t-{uuid.uuid4().hex[:12]}"
        self.names.append(found)
        return found

    def query(self, text: str, *params: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            return conn.execute(text, params).fetchall()  # type: ignore[arg-type]

    def run(self, statement: sql.Composed) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute(statement)

    def secret(self, environment: str | None = None) -> str:
        return self.world.forge.secret_value("acme", "search", "DATABASE_URL", environment)

    def has_secret(self, environment: str | None = None) -> bool:
        try:
            self.secret(environment)
        except Exception:
            return False
        return True

    def with_environments(self, *names: str) -> Target:
        return replace(self.target, followed={"search": names})


def can_connect(url: str) -> str | None:
    """The user a URL connects as, or None when the server refuses it."""
    try:
        with psycopg.connect(url, connect_timeout=5) as conn:
            row = conn.execute("SELECT current_user").fetchone()
            return str(row[0]) if row else None
    except psycopg.OperationalError:
        return None


@pytest.fixture
def place(world: World, postgres_dsn: str, tmp_path: Path) -> Iterator[Place]:
    forge = world.forge
    app = forge.create_app("acme", "paved-databases", permissions={
        "administration": "write", "secrets": "write", "metadata": "read"})
    forge.install_app(app.id, "acme")
    forge.create_repo("acme", "search", private=True)
    installation = installation_of(forge.api_url, app.id, app.private_key, REPO)
    client = installation_client(forge.api_url, app.id, app.private_key, installation, polite=False)
    assert isinstance(client.requester.auth, Auth.AppInstallationAuth)
    client.get_repo("acme/search").create_environment("production")
    world.ctx.mirror.fetch(REPO, ["main"])
    merged = forge.branch_sha("acme", "platform", "main")
    assert merged is not None
    tree = world.ctx.mirror.tree(REPO, merged)
    servers = {SERVER_VARIABLE: postgres_dsn}
    provider = DatabaseProvider(servers.get, tmp_path / "data", GitHubSecrets(client))
    target = Target("acme", REPO, tree, merged, followed={"search": ("production",)},
                    config=RepoConfig(providers={"postgres": {"connectionEnv": SERVER_VARIABLE}}))
    found = Place(world, postgres_dsn, provider, target, tmp_path / "data", [])
    yield found
    tree.close()
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        for name in found.names:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))


def applied(place: Place, desired: Resource | None, target: Target | None = None,
            previous: Resource | None = None) -> Result:
    result = place.provider.apply(desired, target or place.target, previous=previous)
    assert result.status in ("applied", "unchanged"), result.message
    return result


# -- creating -----------------------------------------------------------------------------------------------

def test_apply_creates_the_database_owned_by_its_own_role_with_the_size_s_connection_limit(place: Place) -> None:
    name = place.name()
    applied(place, database(name, size="medium"))
    [(owner, db_limit)] = place.query("SELECT pg_get_userbyid(datdba), datconnlimit FROM pg_database "
                                      "WHERE datname = %s", name)
    [(login, role_limit)] = place.query("SELECT rolcanlogin, rolconnlimit FROM pg_roles WHERE rolname = %s", name)
    assert (owner, db_limit, login, role_limit) == (name, 100, True, 100)


def test_the_service_repository_and_its_environments_receive_a_database_url_that_connects(place: Place) -> None:
    name = place.name()
    applied(place, database(name))
    assert can_connect(place.secret()) == name
    assert can_connect(place.secret("production")) == name


def test_only_the_owner_may_connect_to_the_database(place: Place) -> None:
    name = place.name()
    applied(place, database(name))
    [(public_may,)] = place.query("SELECT EXISTS (SELECT 1 FROM pg_database d, aclexplode(d.datacl) a "
                                  "WHERE d.datname = %s AND a.grantee = 0 AND a.privilege_type = 'CONNECT')", name)
    assert public_may is False


def test_a_second_apply_of_the_same_state_issues_no_ddl(place: Place) -> None:
    name = place.name()
    applied(place, database(name, extensions=["pg_trgm"]))
    writes = place.provider.statements.writes
    again = applied(place, database(name, extensions=["pg_trgm"]))
    assert again.status == "unchanged" and again.steps == ()
    assert place.provider.statements.writes == writes


def test_the_plan_shows_the_exact_statements_against_the_live_server(place: Place) -> None:
    name = place.name()
    fresh = [s.description for s in place.provider.plan(database(name), None, place.target)]
    memory = json.dumps({"paved": {"delivered": [], "extensions": [], "name": name, "rotate": None}})
    assert (f'PostgreSQL at 127.0.0.1:5432: run `CREATE ROLE "{name}" LOGIN CONNECTION LIMIT 20` and '
            f"`COMMENT ON ROLE \"{name}\" IS '{memory}'` in one transaction") in fresh
    assert f'PostgreSQL at 127.0.0.1:5432: run `CREATE DATABASE "{name}" OWNER "{name}" CONNECTION LIMIT 20`' \
        in fresh
    assert "set the Actions secret DATABASE_URL on environment production of acme/search" in fresh
    applied(place, database(name))
    bigger = database(name, size="large")
    live = place.provider.observe(bigger, place.target)
    steps = [s.description.split(": run ", 1)[-1] for s in place.provider.plan(bigger, live, place.target)]
    assert steps == [f'`ALTER ROLE "{name}" LOGIN CONNECTION LIMIT 300`',
                     f'`ALTER DATABASE "{name}" CONNECTION LIMIT 300`']


def test_a_change_made_by_hand_shows_as_the_statements_that_put_it_back(place: Place) -> None:
    name = place.name()
    applied(place, database(name))
    place.run(sql.SQL("ALTER DATABASE {} CONNECTION LIMIT 5").format(sql.Identifier(name)))
    live = place.provider.observe(database(name), place.target)
    [step] = place.provider.plan(database(name), live, place.target)
    assert step.description.endswith(f'run `ALTER DATABASE "{name}" CONNECTION LIMIT 20`')


# -- extensions -------------------------------------------------------------------------------------------

def test_allowed_extensions_are_created_in_the_database(place: Place) -> None:
    name = place.name()
    applied(place, database(name, extensions=["citext", "pg_trgm"]))
    with psycopg.connect(place.secret()) as conn:
        names = {row[0] for row in conn.execute("SELECT extname FROM pg_extension")}
    assert {"citext", "pg_trgm"} <= names


def test_an_extension_taken_out_of_the_request_is_dropped_as_a_destructive_step(place: Place) -> None:
    name = place.name()
    applied(place, database(name, extensions=["citext", "pg_trgm"]))
    result = applied(place, database(name, extensions=["pg_trgm"]))
    [drop] = [s for s in result.steps if "DROP EXTENSION" in s.description]
    assert drop.destructive and '"citext"' in drop.description
    with psycopg.connect(place.secret()) as conn:
        assert "citext" not in {row[0] for row in conn.execute("SELECT extname FROM pg_extension")}


def test_an_extension_off_the_allowed_list_is_refused_before_any_sql(place: Place) -> None:
    name = place.name()
    writes = place.provider.statements.writes
    result = place.provider.apply(database(name, extensions=["plperlu"]), place.target)
    assert result.status == "failed" and "plperlu" in result.message and "allowed list" in result.message
    assert place.provider.statements.writes == writes
    assert place.query("SELECT 1 FROM pg_database WHERE datname = %s", name) == []


# -- credentials ----------------------------------------------------------------------------------------------

def password_matches(place: Place, role: str, url: str) -> bool:
    """Whether the password in `url` is the role's, checked against the server's SCRAM verifier (this
    machine's server may trust loopback connections whatever the password, so connecting proves nothing)."""
    [(verifier,)] = place.query("SELECT rolpassword FROM pg_authid WHERE rolname = %s", role)
    scheme, rest = verifier.split("$", 1)
    iterations_salt, keys = rest.split("$")
    iterations, salt = iterations_salt.split(":")
    stored_key = keys.split(":")[0]
    password = str(psycopg.conninfo.conninfo_to_dict(url)["password"])
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(salt), int(iterations))
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    return scheme == "SCRAM-SHA-256" and base64.b64encode(hashlib.sha256(client_key).digest()).decode() == stored_key


def test_the_url_carries_the_owner_role_s_own_password(place: Place) -> None:
    name = place.name()
    applied(place, database(name))
    assert password_matches(place, name, place.secret())


def test_rotating_gives_a_new_password_and_the_old_one_no_longer_matches(place: Place) -> None:
    name = place.name()
    applied(place, database(name))
    old = place.secret()
    result = applied(place, database(name, rotate="2026-11-28"))
    new = place.secret()
    assert new != old and password_matches(place, name, new) and not password_matches(place, name, old)
    assert place.secret("production") == new
    assert any("new generated password" in s.description for s in result.steps)


def test_a_new_environment_of_the_service_gets_the_credentials_too(place: Place) -> None:
    name = place.name()
    applied(place, database(name))
    client = place.provider.secrets.client  # type: ignore[attr-defined]
    client.get_repo("acme/search").create_environment("staging")
    applied(place, database(name), target=place.with_environments("production", "staging"))
    assert can_connect(place.secret("staging")) == name
    assert place.secret("production") == place.secret("staging") == place.secret()


def test_a_secret_deleted_by_hand_is_delivered_again(place: Place) -> None:
    name = place.name()
    applied(place, database(name))
    client = place.provider.secrets.client  # type: ignore[attr-defined]
    client.get_repo("acme/search").delete_secret("DATABASE_URL")
    applied(place, database(name))
    assert can_connect(place.secret()) == name


def test_credentials_never_appear_in_results_or_logs(place: Place, caplog: pytest.LogCaptureFixture) -> None:
    name = place.name()
    with caplog.at_level(logging.DEBUG):
        result = applied(place, database(name))
        rotated = applied(place, database(name, rotate="2026-12-01"))
    password = psycopg.conninfo.conninfo_to_dict(place.secret())["password"]
    shown = repr(result) + repr(rotated) + caplog.text
    assert password and str(password) not in shown
    assert "********" in " ".join(s.description for s in result.steps)


# -- deleting -----------------------------------------------------------------------------------------------

def test_deleting_dumps_first_then_revokes_and_drops(place: Place) -> None:
    name = place.name()
    applied(place, database(name))
    with psycopg.connect(place.secret(), autocommit=True) as conn:
        conn.execute("CREATE TABLE orders (id int)")
        conn.execute("INSERT INTO orders VALUES (42)")
    result = applied(place, None, previous=database(name))
    descriptions = [s.description for s in result.steps]
    assert "dump" in descriptions[0] and "DROP DATABASE" in " ".join(descriptions[1:])
    backup = Path(result.outputs["backup"])
    assert backup.parent == place.data_dir / "backups" and backup.stat().st_size > 0
    listing = subprocess.run(["pg_restore", "--list", str(backup)], capture_output=True, text=True, check=True)
    assert "TABLE public orders" in listing.stdout
    assert place.query("SELECT 1 FROM pg_database WHERE datname = %s", name) == []
    assert place.query("SELECT 1 FROM pg_roles WHERE rolname = %s", name) == []
    assert not place.has_secret() and not place.has_secret("production")


def test_nothing_is_dropped_when_the_dump_cannot_be_written(place: Place) -> None:
    name = place.name()
    applied(place, database(name))
    place.data_dir.mkdir(parents=True, exist_ok=True)
    (place.data_dir / "backups").write_text("a file where the backups folder should be")
    result = place.provider.apply(None, place.target, previous=database(name))
    assert result.status == "failed" and result.steps == ()
    assert place.query("SELECT 1 FROM pg_database WHERE datname = %s", name) == [(1,)]
    assert can_connect(place.secret()) == name


def test_a_database_still_protected_is_never_dropped(place: Place) -> None:
    name = place.name()
    applied(place, database(name))
    result = place.provider.apply(None, place.target, previous=database(name, deletionProtection=True))
    assert result.status == "failed" and "deletion protection" in result.message
    assert place.query("SELECT 1 FROM pg_database WHERE datname = %s", name) == [(1,)]


def test_renaming_keeps_the_data_and_delivers_the_new_url(place: Place) -> None:
    old, new = place.name(), place.name()
    applied(place, database(old))
    with psycopg.connect(place.secret(), autocommit=True) as conn:
        conn.execute("CREATE TABLE kept (id int)")
    applied(place, database(new), previous=database(old))
    assert can_connect(place.secret()) == new
    with psycopg.connect(place.secret()) as conn:
        assert conn.execute("SELECT count(*) FROM kept").fetchone() == (0,)


# -- refusals ---------------------------------------------------------------------------------------------

def test_a_server_variable_that_is_not_set_is_a_clear_failure(place: Place) -> None:
    target = replace(place.target, config=RepoConfig(providers={"postgres": {"connectionEnv": "PAVED_NOWHERE"}}))
    result = place.provider.apply(database(place.name()), target)
    assert result.status == "failed"
    assert result.message == ("paved.yaml puts databases on the PostgreSQL server in $PAVED_NOWHERE, "
                              "but PAVED_NOWHERE is not set where Paved runs")


def test_a_version_the_server_does_not_run_is_refused_before_any_sql(place: Place) -> None:
    name = place.name()
    result = place.provider.apply(database(name, version="17"), place.target)
    assert result.status == "failed" and "runs PostgreSQL 15" in result.message and "asks for 17" in result.message
    assert place.provider.statements.writes == 0


def test_a_name_that_is_not_a_dns_label_is_refused_before_any_sql(place: Place) -> None:
    result = place.provider.apply(database('x"; DROP ROLE postgres; --'), place.target)
    assert result.status == "failed" and "not a valid database name" in result.message
    assert place.provider.statements.writes == 0


# -- embedded -----------------------------------------------------------------------------------------------

def test_without_a_server_databases_are_sqlite_files_and_the_plan_says_so(place: Place) -> None:
    target = replace(place.target, config=RepoConfig())
    name = place.name()
    steps = place.provider.plan(database(name), None, target)
    assert steps[0].description.startswith(EMBEDDED)
    result = applied(place, database(name), target=target)
    path = place.data_dir / "databases" / f"{name}.sqlite3"
    assert path.read_bytes().startswith(b"SQLite format 3")
    assert place.secret() == f"sqlite:///{path}" and result.outputs["engine"] == EMBEDDED
    assert applied(place, database(name), target=target).status == "unchanged"


def test_deleting_an_embedded_database_keeps_a_copy_in_the_backups(place: Place) -> None:
    target = replace(place.target, config=RepoConfig())
    name = place.name()
    applied(place, database(name), target=target)
    result = applied(place, None, target=target, previous=database(name))
    assert Path(result.outputs["backup"]).read_bytes().startswith(b"SQLite format 3")
    assert not (place.data_dir / "databases" / f"{name}.sqlite3").exists()


# -- private files ------------------------------------------------------------------------------------------

@pytest.fixture
def ordinary_umask() -> Iterator[None]:
    """The umask most machines run with (0022), whatever this test runner's is: files would be 0644."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_dump_is_readable_by_paved_s_user_only_in_a_folder_only_it_may_open(
        place: Place, ordinary_umask: None) -> None:
    name = place.name()
    applied(place, database(name))
    backup = Path(applied(place, None, previous=database(name)).outputs["backup"])
    assert (mode(backup), mode(backup.parent), mode(place.data_dir)) == (0o600, 0o700, 0o700)


def test_embedded_databases_their_sidecars_and_copies_are_private_to_paved_s_user(
        place: Place, ordinary_umask: None) -> None:
    target = replace(place.target, config=RepoConfig())
    name = place.name()
    applied(place, database(name), target=target)
    folder = place.data_dir / "databases"
    path = folder / f"{name}.sqlite3"
    assert (mode(folder), mode(path), mode(folder / f"{name}.paved.json")) == (0o700, 0o600, 0o600)
    conn = sqlite3.connect(path)  # the service writes: SQLite's -wal and -shm files take the file's mode
    try:
        conn.execute("CREATE TABLE orders (id int)")
        conn.execute("INSERT INTO orders VALUES (42)")
        conn.commit()
        assert {mode(Path(f"{path}{suffix}")) for suffix in ("-wal", "-shm")} == {0o600}
    finally:
        conn.close()
    backup = Path(applied(place, None, target=target, previous=database(name)).outputs["backup"])
    assert (mode(backup), mode(backup.parent)) == (0o600, 0o700)


# -- settings -----------------------------------------------------------------------------------------------

def test_the_server_variable_paved_yaml_names_is_read_from_paved_s_environment() -> None:
    from bot.settings import Settings

    settings = Settings.from_env({"HOME": "/tmp", "DB_MAIN": "postgresql://paved:s3cret-pw@db:5432/postgres",
                                  "DB_LOCAL": "host=/run/postgresql dbname=postgres password=other-pw",
                                  "NOT_A_SERVER": "hello", "AN_API": "https://api.example.com"})
    assert settings.server("DB_MAIN") is not None
    assert settings.server("DB_LOCAL") is not None
    assert settings.server("NOT_A_SERVER") is None
    assert settings.server("AN_API") is None  # a web endpoint is not a server a provider keeps things on
    assert {"s3cret-pw", "other-pw"} <= set(settings.secret_values())
    assert "s3cret-pw" not in repr(settings)


def test_any_servers_address_reaches_the_provider_whose_paved_yaml_names_its_variable() -> None:
    from bot.settings import Settings

    settings = Settings.from_env({"HOME": "/tmp", "QUEUES": "redis://:queue-pw@cache:6379/2"})
    found = settings.server("QUEUES")
    assert found is not None and found.reveal() == "redis://:queue-pw@cache:6379/2"
    assert "queue-pw" in settings.secret_values()


def test_paveds_own_queue_is_never_a_providers_server() -> None:
    from bot.settings import Settings

    settings = Settings.from_env({"HOME": "/tmp", "PAVED_REDIS_URL": "redis://queue:6379/2"})
    assert settings.server("PAVED_REDIS_URL") is None


def test_the_plan_of_a_new_environment_shows_its_service_s_database_delivering_there(place: Place) -> None:
    from bot.handlers import Context
    from bot.handlers.pull_request import live_steps
    from bot.model import Plan
    from bot.plan import PlannedRequests

    target = replace(place.target, config=RepoConfig())
    name = place.name()
    applied(place, database(name), target=target)
    db = database(name)
    plan = Plan(base="main", head="change", changes=(), deletions=(), unchanged=1, costs=(), findings=(),
                followed=(("search", ("production", "staging")),), refresh=(db.identity,))
    ctx = Context(place.world.ctx.forge, place.world.ctx.mirror, place.world.ctx.store, (place.provider,))
    steps = live_steps(ctx, REPO, RepoConfig(), PlannedRequests(plan, {}, {db.identity: db}), target.tree,
                       target.revision)
    assert "set the Actions secret DATABASE_URL on environment staging of acme/search" in steps[db.identity]


# -- only what Paved made -------------------------------------------------------------------------------------

def made_by_hand(place: Place, name: str, role: bool = True, database: bool = True) -> None:
    """A database and its owner role as someone made them without Paved (no comment from Paved), with data."""
    if role:
        place.run(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(name)))
    if database:
        place.run(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(name),
                                                               sql.Identifier(name if role else "postgres")))
        with psycopg.connect(psycopg.conninfo.make_conninfo(place.dsn, dbname=name), autocommit=True) as conn:
            if role:
                conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(name)))
            conn.execute("CREATE TABLE precious (id int)")
            conn.execute("INSERT INTO precious VALUES (7)")


def refusal(name: str, server: str = "PostgreSQL at 127.0.0.1:5432") -> str:
    return (f"Paved will not touch database {name} on {server}: it exists and Paved did not create it "
            f"(no role {name} carrying Paved's comment)")


def test_a_database_paved_did_not_create_is_neither_dumped_nor_dropped(place: Place) -> None:
    name = place.name()
    made_by_hand(place, name)
    gone = database(name)
    steps = place.provider.plan(None, place.provider.observe(gone, place.target), place.target, previous=gone)
    assert [(s.verb, s.description, s.destructive) for s in steps] == [("delete", refusal(name), False)]
    writes = place.provider.statements.writes
    result = place.provider.apply(None, place.target, previous=gone)
    assert (result.status, result.message, result.steps) == ("failed", refusal(name), ())
    assert "backup" not in result.outputs and not (place.data_dir / "backups").exists()
    assert place.provider.statements.writes == writes
    assert place.query("SELECT rolcanlogin FROM pg_roles WHERE rolname = %s", name) == [(True,)]
    with psycopg.connect(psycopg.conninfo.make_conninfo(place.dsn, dbname=name)) as conn:
        assert conn.execute("SELECT id FROM precious").fetchall() == [(7,)]


def test_a_database_or_role_paved_did_not_create_is_not_altered_to_match_a_request(place: Place) -> None:
    lone_database, lone_role, both = place.name(), place.name(), place.name()
    made_by_hand(place, lone_database, role=False)
    made_by_hand(place, lone_role, database=False)
    made_by_hand(place, both)
    writes = place.provider.statements.writes
    for name in (lone_database, lone_role, both):
        asked = database(name, size="large")
        live = place.provider.observe(asked, place.target)
        assert [s.description for s in place.provider.plan(asked, live, place.target)] == [refusal(name)]
        result = place.provider.apply(asked, place.target)
        assert (result.status, result.message, result.steps) == ("failed", refusal(name), ())
    assert place.provider.statements.writes == writes
    assert place.query("SELECT pg_get_userbyid(datdba), datconnlimit FROM pg_database WHERE datname = %s",
                       lone_database) == [("postgres", -1)]
    assert place.query("SELECT 1 FROM pg_roles WHERE rolname = %s", lone_database) == []
    assert place.query("SELECT 1 FROM pg_database WHERE datname = %s", lone_role) == []
    assert place.query("SELECT rolconnlimit, rolpassword IS NULL FROM pg_authid WHERE rolname IN (%s, %s)",
                       lone_role, both) == [(-1, True), (-1, True)]
    assert not place.has_secret()


def test_a_renamed_request_does_not_take_over_a_database_paved_did_not_create(place: Place) -> None:
    old, new = place.name(), place.name()
    made_by_hand(place, old)
    result = place.provider.apply(database(new), place.target, previous=database(old))
    assert (result.status, result.message, result.steps) == ("failed", refusal(old), ())
    assert place.query("SELECT datname FROM pg_database WHERE datname IN (%s, %s)", old, new) == [(old,)]


def test_the_owner_role_carries_paved_s_comment_from_the_transaction_that_creates_it(place: Place) -> None:
    name = place.name()
    # earthdistance needs cube, which is not asked for: creating it fails after the role and the database.
    failed = place.provider.apply(database(name, extensions=["earthdistance"]), place.target)
    assert failed.status == "failed" and "cube" in failed.message
    [(same_transaction, comment)] = place.query(
        "SELECT a.xmin = d.xmin, d.description FROM pg_authid a JOIN pg_shdescription d ON d.objoid = a.oid "
        "AND d.classoid = 'pg_authid'::regclass WHERE a.rolname = %s", name)
    assert same_transaction and json.loads(comment)["paved"]["name"] == name
    # So the next apply knows the half-made database as Paved's, and finishes it.
    applied(place, database(name, extensions=["cube", "earthdistance"]))
    assert can_connect(place.secret()) == name


def test_an_operator_hands_a_database_to_paved_by_writing_its_comment(place: Place) -> None:
    name = place.name()
    made_by_hand(place, name)
    place.run(sql.SQL("COMMENT ON ROLE {} IS {}").format(
        sql.Identifier(name), sql.Literal(json.dumps({"paved": {"name": name}}))))
    applied(place, database(name))
    assert can_connect(place.secret()) == name
    with psycopg.connect(place.secret()) as conn:
        assert conn.execute("SELECT id FROM precious").fetchall() == [(7,)]


def test_an_embedded_database_without_paved_s_sidecar_is_left_alone(place: Place) -> None:
    target = replace(place.target, config=RepoConfig())
    name = place.name()
    folder = place.data_dir / "databases"
    folder.mkdir(parents=True)
    path = folder / f"{name}.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE precious (id int)")
    conn.close()
    expected = (f"Paved will not touch database {name} on {EMBEDDED}: it exists and Paved did not create it "
                f"(no {name}.paved.json from Paved beside {path})")
    gone = database(name)
    assert [s.description for s in place.provider.plan(None, place.provider.observe(gone, target), target,
                                                       previous=gone)] == [expected]
    for desired, previous in ((None, gone), (gone, None)):
        result = place.provider.apply(desired, target, previous=previous)
        assert (result.status, result.message, result.steps) == ("failed", expected, ())
    assert path.exists() and not (place.data_dir / "backups").exists() and not place.has_secret()


def test_paved_s_embedded_database_has_its_sidecar_from_its_creation(place: Place) -> None:
    target = replace(place.target, config=RepoConfig())
    name = place.name()
    [create, *_] = place.provider.plan(database(name), None, target)
    applied(place, database(name), target=target)
    assert json.loads((place.data_dir / "databases" / f"{name}.paved.json").read_text())["paved"]["name"] == name
    assert "create the file" in create.description


# -- a job reads its databases together, over one connection -----------------------------------------------------

def own_provider(place: Place) -> tuple[DatabaseProvider, str]:
    """A provider whose connections carry an application name of their own, so that its backends can be
    counted apart from any other Paved's on this server."""
    application = f"paved-test-{uuid.uuid4().hex[:12]}"
    dsn = psycopg.conninfo.make_conninfo(place.dsn, application_name=application)
    return DatabaseProvider({SERVER_VARIABLE: dsn}.get, place.data_dir, place.provider.secrets), application


def backends(place: Place, application: str) -> set[int]:
    return {pid for (pid,) in place.query("SELECT pid FROM pg_stat_activity WHERE application_name = %s",
                                          application)}


def in_one_job(place: Place, provider: DatabaseProvider, wanted: list[Resource], application: str,
               target: Target | None = None) -> tuple[list[Result], set[int]]:
    """Apply `wanted` as one job does, and the server backends Paved held between its databases."""
    held: set[int] = set()
    with provider_job([provider], wanted, target or place.target) as job:
        results = []
        for resource in wanted:
            results.append(job.apply(provider, resource, None))
            held |= backends(place, application)
    return results, held


@contextmanager
def github_requests() -> Iterator[list[Exchange]]:
    """Every REST request the sandbox forge answers meanwhile."""
    seen: list[Exchange] = []
    stop = recording.watch(on_exchange=seen.append)
    try:
        yield seen
    finally:
        stop()


def test_a_job_creating_many_databases_makes_them_all_over_one_connection(place: Place) -> None:
    provider, application = own_provider(place)
    wanted = [database(place.name()) for _ in range(4)]
    results, held = in_one_job(place, provider, wanted, application)
    assert [r.status for r in results] == ["applied"] * 4
    assert len(held) == 1


def test_a_no_op_re_apply_reads_every_database_in_one_catalog_query_and_writes_nothing(place: Place) -> None:
    provider, application = own_provider(place)
    wanted = [database(place.name()) for _ in range(4)]
    in_one_job(place, provider, wanted, application)
    reads, writes = provider.statements.reads, provider.statements.writes
    results, held = in_one_job(place, provider, wanted, application)
    assert [r.status for r in results] == ["unchanged"] * 4
    assert (provider.statements.reads - reads, provider.statements.writes - writes, len(held)) == (1, 0, 1)


def test_a_job_lists_each_place_s_secrets_once_and_asks_for_no_secret_alone(place: Place) -> None:
    provider, application = own_provider(place)
    wanted = [database(place.name()) for _ in range(4)]
    in_one_job(place, provider, wanted, application)
    with github_requests() as asked:
        in_one_job(place, provider, wanted, application)
    assert sorted((e.method, e.route) for e in asked) == [
        ("GET", "/repos/{owner}/{repo}/actions/secrets"),
        ("GET", "/repos/{owner}/{repo}/environments/{environment_name}/secrets")]


def test_a_job_s_connection_is_closed_when_the_job_ends(place: Place) -> None:
    provider, application = own_provider(place)
    in_one_job(place, provider, [database(place.name())], application)
    assert backends(place, application) == set()


def test_a_job_s_connection_is_closed_when_the_job_fails(place: Place) -> None:
    provider, application = own_provider(place)
    wanted = database(place.name())
    with pytest.raises(RuntimeError, match="the push failed"), \
            provider_job([provider], [wanted], place.target) as job:
        assert job.apply(provider, wanted, None).status == "applied"
        assert len(backends(place, application)) == 1
        raise RuntimeError("the push failed")
    assert backends(place, application) == set()


def test_a_connection_the_server_drops_mid_job_fails_only_the_database_it_was_serving(place: Place) -> None:
    provider, application = own_provider(place)
    first, second = database(place.name()), database(place.name())
    with provider_job([provider], [first, second], place.target) as job:
        place.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
                    application)
        dropped = job.apply(provider, first, None)
        made = job.apply(provider, second, None)
    assert dropped.status == "failed" and dropped.message.startswith("PostgreSQL refused to ")
    assert made.status == "applied" and can_connect(place.secret()) == second.name
    assert backends(place, application) == set()


@contextmanager
def server_that_never_answers() -> Iterator[int]:
    """A port on this machine that takes connections and never says a word: a PostgreSQL that hangs."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()


def test_a_server_that_never_answers_fails_every_database_of_the_job_with_a_message(place: Place) -> None:
    with server_that_never_answers() as port:
        dsn = f"postgresql://postgres@127.0.0.1:{port}/postgres?connect_timeout=1"
        provider = DatabaseProvider({SERVER_VARIABLE: dsn}.get, place.data_dir, place.provider.secrets)
        wanted = [database(place.name()), database(place.name())]
        with provider_job([provider], wanted, place.target) as job:
            results = [job.apply(provider, resource, None) for resource in wanted]
    assert [r.status for r in results] == ["failed", "failed"]
    assert all(r.message.startswith("PostgreSQL could not be reached: ") and "timeout expired" in r.message
               for r in results)
    assert provider.statements.writes == 0


def test_the_next_job_reads_again_what_an_earlier_job_read(place: Place) -> None:
    provider, application = own_provider(place)
    wanted = database(place.name())
    in_one_job(place, provider, [wanted], application)
    client = place.provider.secrets.client  # type: ignore[attr-defined]
    client.get_repo("acme/search").delete_secret("DATABASE_URL")
    [again], _ = in_one_job(place, provider, [wanted], application)
    assert again.status == "applied" and can_connect(place.secret()) == wanted.name


def test_a_name_that_is_not_a_dns_label_fails_alone_in_its_job(place: Place) -> None:
    provider, application = own_provider(place)
    good, bad = database(place.name()), database('x"; DROP ROLE postgres; --')
    [made, refused], _ = in_one_job(place, provider, [good, bad], application)
    assert made.status == "applied"
    assert refused.status == "failed" and "not a valid database name" in refused.message


def test_embedded_databases_are_read_together_too(place: Place) -> None:
    target = replace(place.target, config=RepoConfig())
    wanted = [database(place.name()) for _ in range(3)]
    first, _ = in_one_job(place, place.provider, wanted, "", target)
    again, _ = in_one_job(place, place.provider, wanted, "", target)
    assert [r.status for r in first] == ["applied"] * 3 and [r.status for r in again] == ["unchanged"] * 3
    assert all(r.outputs["engine"] == EMBEDDED for r in again)


def test_a_pull_request_s_plan_reads_its_databases_in_one_query_and_lets_go_of_the_connection(place: Place) -> None:
    from bot.handlers import Context
    from bot.handlers.pull_request import live_steps
    from bot.model import Plan
    from bot.plan import PlannedRequests

    provider, application = own_provider(place)
    wanted = [database(place.name()) for _ in range(3)]
    in_one_job(place, provider, wanted, application)
    plan = Plan(base="main", head="change", changes=(), deletions=(), unchanged=3, costs=(), findings=(),
                followed=(("search", ("production",)),), refresh=tuple(db.identity for db in wanted))
    ctx = Context(place.world.ctx.forge, place.world.ctx.mirror, place.world.ctx.store, (provider,))
    reads = provider.statements.reads
    steps = live_steps(ctx, REPO, place.target.config, PlannedRequests(plan, {}, {db.identity: db for db in wanted}),
                       place.target.tree, place.target.revision)
    assert steps == {db.identity: ["nothing: live state already matches"] for db in wanted}
    assert provider.statements.reads - reads == 1 and backends(place, application) == set()


# -- a service renamed --------------------------------------------------------------------------------------

def delivered_then_renamed(place: Place) -> tuple[str, Github]:
    """A database delivered to acme/search, whose repository is then renamed acme/finder: its name, and the
    GitHub client of the provider's job."""
    name = place.name()
    applied(place, database(name))
    client: Github = place.provider.secrets.client  # type: ignore[attr-defined]
    client.get_repo("acme/search").edit(name="finder")
    return name, client


def test_a_database_of_a_renamed_service_delivers_there_and_withdraws_nothing_through_the_old_address(
        place: Place) -> None:
    name, _ = delivered_then_renamed(place)
    moved = database(name, service="finder")

    result = applied(place, moved, target=replace(place.target, followed={"finder": ("production",)}),
                     previous=database(name))

    assert can_connect(place.world.forge.secret_value("acme", "finder", "DATABASE_URL", None)) == name
    assert can_connect(place.world.forge.secret_value("acme", "finder", "DATABASE_URL", "production")) == name
    assert not [s.description for s in result.steps if "delete" in s.description]


def test_a_database_moved_away_from_a_renamed_service_withdraws_its_secret_from_the_new_name(
        place: Place) -> None:
    name, client = delivered_then_renamed(place)
    client.get_organization("acme").create_repo("ledger", private=True)
    moved = database(name, service="ledger")

    applied(place, moved, target=replace(place.target, followed={"ledger": ()}), previous=database(name))

    assert can_connect(place.world.forge.secret_value("acme", "ledger", "DATABASE_URL", None)) == name
    held = {s.name for s in client.get_repo("acme/finder").get_secrets()}
    assert "DATABASE_URL" not in held
    assert "DATABASE_URL" not in {s.name for s in client.get_repo("acme/finder").get_environment(
        "production").get_secrets()}


def role_memory(place: Place, name: str) -> dict[str, Any]:
    [(comment,)] = place.query("SELECT shobj_description(oid, 'pg_authid') FROM pg_roles WHERE rolname = %s", name)
    memory: dict[str, Any] = json.loads(comment)["paved"]
    return memory


def test_a_database_remembers_the_repositories_its_secret_went_to_by_their_ids(place: Place) -> None:
    name = place.name()
    applied(place, database(name))
    client: Github = place.provider.secrets.client  # type: ignore[attr-defined]
    assert role_memory(place, name)["repositories"] == {"acme/search": client.get_repo("acme/search").id}


def test_a_withdrawal_finds_the_renamed_repository_by_id_and_leaves_alone_the_one_that_took_its_name(
        place: Place) -> None:
    name, client = delivered_then_renamed(place)
    newcomer = client.get_organization("acme").create_repo("search", private=True)  # ends the redirect
    newcomer.create_secret("DATABASE_URL", "postgresql://someone-else@db.example/theirs")
    client.get_organization("acme").create_repo("ledger", private=True)

    applied(place, database(name, service="ledger"), target=replace(place.target, followed={"ledger": ()}),
            previous=database(name))

    assert "DATABASE_URL" not in {s.name for s in client.get_repo("acme/finder").get_secrets()}
    assert place.world.forge.secret_value("acme", "search", "DATABASE_URL", None) == (
        "postgresql://someone-else@db.example/theirs")
    assert role_memory(place, name)["repositories"] == {"acme/ledger": client.get_repo("acme/ledger").id}


def test_a_memory_written_before_ids_were_kept_withdraws_by_name(place: Place) -> None:
    name = place.name()
    applied(place, database(name))
    place.run(sql.SQL("COMMENT ON ROLE {} IS {}").format(sql.Identifier(name), sql.Literal(json.dumps(
        {"paved": {"name": name, "rotate": None, "delivered": ["acme/search", "acme/search:production"],
                   "extensions": []}}))))
    client: Github = place.provider.secrets.client  # type: ignore[attr-defined]
    client.get_organization("acme").create_repo("ledger", private=True)

    applied(place, database(name, service="ledger"), target=replace(place.target, followed={"ledger": ()}),
            previous=database(name))

    assert not place.has_secret() and not place.has_secret("production")
    assert "repositories" in role_memory(place, name)


def test_credentials_for_a_repository_renamed_by_hand_fail_clearly_instead_of_going_nowhere(place: Place) -> None:
    name, client = delivered_then_renamed(place)

    result = place.provider.apply(database(name, rotate="2026-12"), place.target)

    assert result.status == "failed"
    assert result.message.startswith("GitHub refused to set secret DATABASE_URL on acme/search: it answered with a "
                                     "redirect (the repository was renamed")
    assert "DATABASE_URL" in {s.name for s in client.get_repo("acme/finder").get_secrets()}  # the old one, kept


def test_withdrawing_from_a_repository_and_its_environment_asks_once_where_the_repository_is(
        place: Place) -> None:
    name, client = delivered_then_renamed(place)
    ident = client.get_repo("acme/finder").id
    with github_requests() as asked:
        applied(place, database(name, service="finder"), target=replace(place.target, followed={"finder": ()}),
                previous=database(name))
    # By the id it had when the secret went there, once for the repository and its environment.
    assert [e.path for e in asked if e.method == "GET" and e.path in (f"/repositories/{ident}",
                                                                      "/repos/acme/search")] == [
        f"/repositories/{ident}"]
    assert ("DELETE", "/repos/acme/finder/environments/production/secrets/DATABASE_URL") in {
        (e.method, e.path) for e in asked}
