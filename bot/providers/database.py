"""Databases: each `Database` request becomes a PostgreSQL database with its own owner role (or, where
no server is configured, a SQLite file), and its credentials go only to the owning service.

Which server: the platform repo's `paved.yaml` names an environment variable
(`providers.postgres.connectionEnv`) holding the server's connection string where Paved runs; the string
never comes from git. Without that setting the provider runs embedded: one SQLite file per database under
the data folder, and every step says so, so the demo on a bare laptop makes real databases too. Naming
the variable but leaving it unset is an error, never a silent fall back to SQLite.

On PostgreSQL, `Database/NAME` is:
- the role "NAME": LOGIN, a generated password, CONNECTION LIMIT by size (`CONNECTION_LIMITS`);
- the database "NAME": OWNER "NAME", the same CONNECTION LIMIT, CONNECT and TEMPORARY revoked from
  PUBLIC so that only its owner (and superusers) connect, and the requested extensions, from the allowed
  list of the merged platform repo's own schema;
- the role's comment: what Paved must remember and cannot read back (the `spec.rotate` applied, where
  the current password was delivered, which extensions Paved made). Extensions Paved did not make (a
  service's own migrations) are never dropped.

The comment is also Paved's mark: the role is created with its first comment in one transaction, so
it never exists without it, and the database, made next, is owned by it. A database or role named like
a request that exists without Paved's comment (a SQLite file without Paved's sidecar) is not Paved's:
Paved never alters, dumps, drops or renames it, takes no step, and the plan says why. An operator hands
one to Paved by writing the comment by hand (`COMMENT ON ROLE "NAME" IS '{"paved": {"name": "NAME"}}'`).

The password is sent as a SCRAM verifier computed by libpq (`PGconn.encrypt_password`), so neither the
server nor its statement log ever sees it; it lives only while it is set and delivered. Credentials are
the Actions secret `DATABASE_URL` on the service's repository and on each of its deployment
environments. When a target lacks its secret (a new environment, a deleted secret, another service), when
`spec.rotate` changes, or after a rename, the role gets a new password and every target the new URL.

Deletion: first a dump (`pg_dump --format=custom` into `<data>/backups/`, written under a temporary name
and renamed only when pg_dump succeeded; the path is in the result's outputs, so the audit note keeps
it), then access is revoked (NOLOGIN, secrets withdrawn), then the database and the role are dropped. No
completed dump, no drop.

`observe` only reads, so a state that already holds plans no step and applies no DDL. Names are checked
as DNS labels before any SQL, and every identifier is quoted by psycopg's `sql.Identifier`.

A job reads all its databases at once (`observe_all`, see `ObservesTogether`): one catalog query on
one connection for every database and role, each database's extensions only where its request or Paved
asked for some (they live inside the database, so reading them takes a connection to it), and one list
of Actions secrets per place credentials go. The connection to the server then serves the whole job and
is closed when the job ends (`close`); outside a job, each `plan` and `apply` closes what it opened.
Paved's connections say `application_name=paved` (unless the server's connection string names one),
give up connecting after 10 s and cancel any statement after 60 s, so a server that hangs fails the job
with a message instead of holding it.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import shutil
import sqlite3
import subprocess
import urllib.parse
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from bot.errors import PavedError
from bot.files import private_file, private_folder, write_private
from bot.model import Keeping, Resource
from bot.provider import ObservesTogether, ProviderEnv, ProviderPlugin, Result, Step, Target, Verb

log = logging.getLogger(__name__)

SECRET = "DATABASE_URL"
CONNECTION_LIMITS = {"small": 20, "medium": 100, "large": 300}
SCHEMA_PATH = "schemas/kinds/database.json"
_NAME = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
_EXTENSION = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
_SHOWN_PASSWORD = "********"
EMBEDDED = "SQLite (embedded: paved.yaml names no PostgreSQL server)"
# How Paved's connections show in pg_stat_activity, unless the server's connection string names another.
APPLICATION_NAME = "paved"
CONNECT_TIMEOUT_SECONDS = 10
# Catalog reads take milliseconds and DDL (CREATE DATABASE copies template1) seconds at most: a statement
# still running after this is a server that hangs, and the job says so rather than waiting for it.
STATEMENT_TIMEOUT = "60s"
# Every database and owner role a job is about, with what Paved reads of them, in one query.
CATALOG = (
    "SELECT n.name, d.datname IS NOT NULL, d.datconnlimit, pg_get_userbyid(d.datdba), d.datallowconn,"
    " (d.datacl IS NULL OR EXISTS (SELECT 1 FROM aclexplode(d.datacl) a"
    "   WHERE a.grantee = 0 AND a.privilege_type = 'CONNECT')),"
    " r.rolname IS NOT NULL, r.rolcanlogin, r.rolconnlimit, shobj_description(r.oid, 'pg_authid')"
    " FROM unnest(%s::text[]) AS n(name)"
    " LEFT JOIN pg_database d ON d.datname = n.name LEFT JOIN pg_roles r ON r.rolname = n.name")
# The provider's name: its key under `providers:` in paved.yaml, and its entry point's.
NAME = "postgres"
# `providers.postgres` in paved.yaml.
SETTINGS_SCHEMA: dict[str, Any] = {
    "type": "object", "additionalProperties": False,
    "properties": {"connectionEnv": {"type": "string", "pattern": "^[A-Z_][A-Z0-9_]*$",
                                     "description": "Environment variable with the server's DSN."}},
}


class SecretStore(Protocol):
    """Where credentials go: Actions secrets of a repository or of one of its environments."""

    def names(self, repo: str, environment: str | None) -> frozenset[str]:
        """The names of the secrets the repository (or environment) holds, in one list; none when it is missing."""
        ...

    def put(self, repo: str, environment: str | None, name: str, value: str) -> None: ...

    def remove(self, repo: str, environment: str | None, name: str) -> None: ...

    def located(self, repo: str | int) -> tuple[str, int] | None:
        """The name and id of the repository named `repo` (another name when it was renamed), or with the
        id `repo`, as it is now; None when there is none."""
        ...


class _Refused(PavedError):
    """A step that cannot be taken; its message becomes the failed Result's."""


@dataclass(frozen=True, slots=True)
class Destination:
    """One place `DATABASE_URL` goes: a repository, or one of its environments."""

    repo: str
    environment: str | None = None

    @property
    def key(self) -> str:
        return self.repo if self.environment is None else f"{self.repo}:{self.environment}"

    @classmethod
    def parse(cls, key: str) -> Destination:
        repo, _, environment = key.partition(":")
        return cls(repo, environment or None)

    def __str__(self) -> str:
        return self.repo if self.environment is None else f"environment {self.environment} of {self.repo}"


@dataclass(slots=True)
class StatementCount:
    """SQL statements a provider sent, reads apart from writes (DDL and grants)."""

    reads: int = 0
    writes: int = 0


@dataclass(slots=True)
class _Scratch:
    """What steps hand to later steps during one apply; never shown, never recorded."""

    url: str = ""
    outputs: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _Action:
    step: Step
    run: Callable[[_Scratch], None]
    stops: bool = False  # a precondition that fails: nothing after it can be taken


@dataclass(frozen=True, slots=True)
class Memory:
    """What Paved writes beside a database it made (JSON in its role's comment, or in a SQLite file's
    sidecar), and so what tells a database Paved made from one it must leave alone: the request's `name`
    and `rotate` when the credentials were last made, where they were `delivered` (`Destination.key`s),
    the `repositories` they went to (name as delivered, and GitHub's id, which outlives a rename), and the
    `extensions` Paved created."""

    name: str | None = None
    rotate: Any = None
    delivered: tuple[str, ...] = ()
    extensions: tuple[str, ...] = ()
    repositories: tuple[tuple[str, int], ...] = ()

    @classmethod
    def first(cls, name: str) -> Memory:
        """A new database's: nothing delivered, no extension made."""
        return cls(name=name)

    @classmethod
    def read(cls, comment: str | None) -> Memory | None:
        """What Paved wrote in `comment`; None when it is not Paved's (no such JSON, or an empty one)."""
        try:
            data = json.loads(comment or "")
        except ValueError:
            return None
        memory = data.get("paved") if isinstance(data, dict) else None
        if not isinstance(memory, dict) or not memory:
            return None
        name = memory.get("name")
        repositories = memory.get("repositories")
        return cls(name=name if isinstance(name, str) else None, rotate=memory.get("rotate"),
                   delivered=tuple(str(k) for k in memory.get("delivered") or []),
                   extensions=tuple(str(e) for e in memory.get("extensions") or []),
                   repositories=tuple(sorted((str(repo), ident) for repo, ident in repositories.items()
                                             if isinstance(ident, int) and not isinstance(ident, bool)))
                   if isinstance(repositories, dict) else ())

    def text(self) -> str:
        """The JSON Paved writes (keys sorted, so that equal memories are equal text); a memory written
        before repositories were kept by id has none, and is written so until its credentials go out again."""
        written: dict[str, Any] = {"name": self.name, "rotate": self.rotate, "delivered": list(self.delivered),
                                   "extensions": list(self.extensions)}
        if self.repositories:
            written["repositories"] = dict(self.repositories)
        return json.dumps({"paved": written}, sort_keys=True)


def _not_paveds(name: str, where: str, mark: str) -> str:
    return f"Paved will not touch database {name} on {where}: it exists and Paved did not create it ({mark})"


def _check_name(name: str) -> str:
    if not _NAME.match(name):
        raise _Refused(f"{name!r} is not a valid database name (a DNS label); no SQL was run")
    return name


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


# -- what Paved observes --------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class LiveDatabase:
    """A PostgreSQL database as Paved reads it: its owner, connection limit, whether it takes connections,
    and whether PUBLIC may connect to it."""

    owner: str
    connection_limit: int
    allow_connections: bool
    public_connect: bool


@dataclass(frozen=True, slots=True)
class LiveRole:
    """A PostgreSQL role as Paved reads it: whether it may log in, and its connection limit."""

    login: bool
    connection_limit: int


@dataclass(frozen=True, slots=True)
class ObservedDatabase:
    """What Paved observes of a database: on PostgreSQL its `database` and owner `role` (each None while
    missing: one can exist without the other) and `version`; with SQLite the file's `path`. `memory` is
    what Paved wrote beside it when it made it (JSON in the role's comment, or in the file's sidecar;
    None when Paved did not make it); `secrets`, whether each place `DATABASE_URL` goes to (or went to)
    holds it, by `Destination.key`. `extensions` are read only where the request asks for some or Paved
    made some (otherwise Paved has nothing to compare them with, and does not connect to the database)."""

    engine: str
    server: str
    extensions: tuple[str, ...]
    memory: Memory | None
    database: LiveDatabase | None = None
    role: LiveRole | None = None
    version: str = ""
    path: str = ""
    secrets: Mapping[str, bool] = field(default_factory=dict)


# -- engines ------------------------------------------------------------------------------------------------

class _Engine(ABC):
    """A place databases live; `label` says which, in every step."""

    label: str

    @abstractmethod
    def observe_all(self, names: Sequence[str], with_extensions: Collection[str]) -> dict[str, ObservedDatabase | None]:
        """Each database as it exists, by name, with Paved's memory of it (None when it does not exist);
        extensions are read for `with_extensions` and wherever Paved made some."""

    def observe(self, name: str) -> ObservedDatabase | None:
        return self.observe_all([name], (name,))[name]

    @abstractmethod
    def ensure(self, desired: Resource, actual: ObservedDatabase | None, allowed: frozenset[str],
               managed: list[str]) -> list[_Action]:
        """Steps that make the database and its owner what `desired` asks (credentials apart)."""

    @abstractmethod
    def new_password(self, name: str) -> _Action:
        """A step that gives the owner a new password and leaves the new URL in the scratch."""

    @abstractmethod
    def remember(self, name: str, memory: Memory) -> _Action: ...

    @abstractmethod
    def rename(self, old: str, new: str) -> list[_Action]: ...

    @abstractmethod
    def remove(self, name: str, actual: ObservedDatabase) -> list[_Action]:
        """Dump, revoke and drop: each step runs only if the one before it completed."""

    @abstractmethod
    def not_paveds(self, name: str) -> str:
        """Why Paved leaves alone the database `name`, which exists without Paved's memory."""

    def close(self) -> None:  # noqa: B027 - only a server engine holds connections
        """Release connections."""

    def step(self, resource: Resource, verb: Verb, text: str, destructive: bool = False) -> Step:
        return Step(resource.identity, verb, f"{self.label}: {text}", destructive)


class _Postgres(_Engine):
    def __init__(self, dsn: str, backups: Path, counts: StatementCount) -> None:
        self.dsn = dsn
        self.backups = backups
        self.counts = counts
        params = conninfo_to_dict(dsn)
        self.secret_words = [str(params["password"])] if params.get("password") else []
        self._conn: psycopg.Connection[Any] | None = None
        host = str(params.get("host") or "localhost")
        self.label = f"PostgreSQL at {host}:{params.get('port') or 5432}"

    # -- connections and statements ----------------------------------------------------------------------

    def _connect(self, database: str | None = None) -> psycopg.Connection[Any]:
        """A connection as Paved makes them: named, timed out, and to `database` when given. What the
        server's connection string says itself (its own timeout, name or options) comes first."""
        params = conninfo_to_dict(self.dsn)
        options = f"-c statement_timeout={STATEMENT_TIMEOUT} {params.get('options') or ''}".strip()
        settings: dict[str, Any] = {"connect_timeout": params.get("connect_timeout") or CONNECT_TIMEOUT_SECONDS,
                                    "application_name": params.get("application_name") or APPLICATION_NAME,
                                    "options": options}
        if database is not None:
            settings["dbname"] = database
        return psycopg.connect(make_conninfo(self.dsn, **settings), autocommit=True)

    @property
    def conn(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = self._connect()
        return self._conn

    @contextmanager
    def inside(self, database: str) -> Iterator[psycopg.Connection[Any]]:
        """A connection to one database (extensions live in the database that uses them)."""
        with self._connect(database) as conn:
            yield conn

    def read(self, query: sql.Composed | str, params: Sequence[Any] = (),
             conn: psycopg.Connection[Any] | None = None) -> list[tuple[Any, ...]]:
        self.counts.reads += 1
        return (conn or self.conn).execute(query, params).fetchall()

    def write(self, statement: sql.Composed, conn: psycopg.Connection[Any] | None = None) -> None:
        self.counts.writes += 1
        (conn or self.conn).execute(statement)

    def show(self, statement: sql.Composable) -> str:
        return f"`{statement.as_string(self.conn)}`"

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # -- reading --------------------------------------------------------------------------------------------

    @property
    def version(self) -> str:
        return str(self.conn.info.server_version // 10000)

    def observe_all(self, names: Sequence[str], with_extensions: Collection[str]) -> dict[str, ObservedDatabase | None]:
        wanted = list(dict.fromkeys(_check_name(name) for name in names))
        found: dict[str, ObservedDatabase | None] = {}
        for row in self.read(CATALOG, (wanted,)):
            name, has_db, db_limit, owner, allow, public, has_role, login, role_limit, comment = row
            if not has_db and not has_role:
                found[name] = None
                continue
            memory = Memory.read(comment)
            extensions: tuple[str, ...] = ()
            if has_db and allow and (name in with_extensions or (memory is not None and memory.extensions)):
                with self.inside(name) as conn:
                    extensions = tuple(sorted(e for (e,) in self.read(
                        "SELECT extname FROM pg_extension WHERE extname <> 'plpgsql'", (), conn)))
            found[name] = ObservedDatabase(
                engine="postgres", server=self.label, version=self.version,
                database=LiveDatabase(owner, db_limit, allow, public) if has_db else None,
                role=LiveRole(login, role_limit) if has_role else None,
                extensions=extensions, memory=memory,
            )
        return found

    # -- making it so ----------------------------------------------------------------------------------

    def ensure(self, desired: Resource, actual: ObservedDatabase | None, allowed: frozenset[str],
               managed: list[str]) -> list[_Action]:
        name = _check_name(desired.name)
        spec = desired.spec
        found: list[_Action] = []
        wanted_version = str(spec.get("version") or "")
        if wanted_version and wanted_version != self.version:
            message = (f"the server runs PostgreSQL {self.version} but {desired.identity} asks for "
                       f"{wanted_version}: ask for {self.version}, or point paved.yaml at a {wanted_version} server")
            found.append(_stop(self.step(desired, "update", f"stop: {message}"), message))
            return found
        wanted = [str(e) for e in spec.get("extensions") or []]
        for extension in wanted:
            if extension not in allowed or not _EXTENSION.match(extension):
                message = f"extension {extension!r} is not on the platform's allowed list ({SCHEMA_PATH})"
                return [_stop(self.step(desired, "update", f"stop: {message}"), message)]
        limit = CONNECTION_LIMITS.get(str(spec.get("size")), CONNECTION_LIMITS["small"])
        role, database = (actual.role, actual.database) if actual else (None, None)
        who, db = sql.Identifier(name), sql.Identifier(name)

        def ddl(verb: Verb, statement: sql.Composed, destructive: bool = False, inside: bool = False) -> None:
            def run(scratch: _Scratch) -> None:
                if inside:
                    with self.inside(name) as conn:
                        self.write(statement, conn)
                else:
                    self.write(statement)
            found.append(_Action(self.step(desired, verb, f"run {self.show(statement)}", destructive), run))

        if role is None:
            found.append(self._create_role(desired, limit))
        elif not role.login or role.connection_limit != limit:
            ddl("update", sql.SQL("ALTER ROLE {} LOGIN CONNECTION LIMIT {}").format(who, sql.Literal(limit)))
        if database is None:
            ddl("create", sql.SQL("CREATE DATABASE {} OWNER {} CONNECTION LIMIT {}").format(
                db, who, sql.Literal(limit)))
        else:
            if database.owner != name:
                ddl("update", sql.SQL("ALTER DATABASE {} OWNER TO {}").format(db, who))
            if database.connection_limit != limit:
                ddl("update", sql.SQL("ALTER DATABASE {} CONNECTION LIMIT {}").format(db, sql.Literal(limit)))
            if not database.allow_connections:
                ddl("update", sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS true").format(db))
        if database is None or database.public_connect:
            ddl("create" if database is None else "update",
                sql.SQL("REVOKE CONNECT, TEMPORARY ON DATABASE {} FROM PUBLIC").format(db))
        present = set(actual.extensions if actual else ()) if database is not None else set()
        for extension in wanted:
            if extension not in present:
                ddl("create" if database is None else "update",
                    sql.SQL("CREATE EXTENSION IF NOT EXISTS {}").format(sql.Identifier(extension)), inside=True)
        for extension in managed:
            if extension not in wanted and extension in present and _EXTENSION.match(extension):
                ddl("update", sql.SQL("DROP EXTENSION {}").format(sql.Identifier(extension)),
                    destructive=True, inside=True)
        return found

    def _create_role(self, desired: Resource, limit: int) -> _Action:
        """The owner role and its first comment, in one transaction: it never exists without Paved's mark."""
        who = sql.Identifier(desired.name)
        create = sql.SQL("CREATE ROLE {} LOGIN CONNECTION LIMIT {}").format(who, sql.Literal(limit))
        comment = self._comment(desired.name, Memory.first(desired.name))

        def run(scratch: _Scratch) -> None:
            with self.conn.transaction():
                self.write(create)
                self.write(comment)

        return _Action(self.step(desired, "create", f"run {self.show(create)} and {self.show(comment)} in one "
                                                    "transaction"), run)

    @staticmethod
    def _comment(name: str, memory: Memory) -> sql.Composed:
        return sql.SQL("COMMENT ON ROLE {} IS {}").format(
            sql.Identifier(name), sql.Literal(memory.text()))

    def not_paveds(self, name: str) -> str:
        return _not_paveds(name, self.label, f"no role {name} carrying Paved's comment")

    def new_password(self, name: str) -> _Action:
        shown = sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(name), sql.Literal(_SHOWN_PASSWORD))

        def run(scratch: _Scratch) -> None:
            password = secrets.token_urlsafe(32)
            verifier = self.conn.pgconn.encrypt_password(password.encode(), name.encode(), b"scram-sha-256")
            self.write(sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(name),
                                                                    sql.Literal(verifier.decode())))
            scratch.url = self.url(name, password)

        return _Action(Step(f"Database/{name}", "update",
                            f"{self.label}: run {self.show(shown)} (a new generated password)"), run)

    def url(self, name: str, password: str) -> str:
        params = conninfo_to_dict(self.dsn)
        host = str(params.get("host") or "localhost")
        port = str(params.get("port") or 5432)
        user = urllib.parse.quote(name, safe="")
        if host.startswith("/"):  # a Unix socket: libpq takes its folder as the `host` parameter
            return f"postgresql://{user}:{urllib.parse.quote(password, safe='')}@/{name}?host={host}&port={port}"
        return f"postgresql://{user}:{urllib.parse.quote(password, safe='')}@{host}:{port}/{name}"

    def remember(self, name: str, memory: Memory) -> _Action:
        statement = self._comment(name, memory)
        return _Action(Step(f"Database/{name}", "update", f"{self.label}: run {self.show(statement)}"),
                       self._writing(statement))

    def rename(self, old: str, new: str) -> list[_Action]:
        _check_name(old)
        _check_name(new)
        identity = f"Database/{new}"
        kick = sql.SQL("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = {}").format(
            sql.Literal(old))
        database = sql.SQL("ALTER DATABASE {} RENAME TO {}").format(sql.Identifier(old), sql.Identifier(new))
        role = sql.SQL("ALTER ROLE {} RENAME TO {}").format(sql.Identifier(old), sql.Identifier(new))

        def rename_database(scratch: _Scratch) -> None:
            self.read(kick)  # a database in use cannot be renamed
            self.write(database)

        return [_Action(Step(identity, "update", f"{self.label}: run {self.show(database)}"), rename_database),
                _Action(Step(identity, "update", f"{self.label}: run {self.show(role)}"), self._writing(role))]

    def remove(self, name: str, actual: ObservedDatabase) -> list[_Action]:
        _check_name(name)
        identity = f"Database/{name}"
        found: list[_Action] = []
        if actual.database is not None:
            found.append(_Action(Step(identity, "delete", f"{self.label}: dump {name} with pg_dump to "
                                      f"{self.backups}/ (nothing is dropped unless it completes)"), self._dump(name)))
        statements: list[tuple[sql.Composed, bool]] = []  # (statement, whether it destroys anything)
        if actual.role is not None:
            statements.append((sql.SQL("ALTER ROLE {} NOLOGIN").format(sql.Identifier(name)), False))
        if actual.database is not None:
            statements.append((sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)), True))
        if actual.role is not None:
            statements.append((sql.SQL("DROP ROLE {}").format(sql.Identifier(name)), True))
        for statement, destroys in statements:
            found.append(_Action(Step(identity, "delete", f"{self.label}: run {self.show(statement)}", destroys),
                                 self._writing(statement)))
        return found

    def _writing(self, statement: sql.Composed) -> Callable[[_Scratch], None]:
        return lambda scratch: self.write(statement)

    def _dump(self, name: str) -> Callable[[_Scratch], None]:
        def run(scratch: _Scratch) -> None:
            program = shutil.which("pg_dump")
            if program is None:
                raise _Refused("pg_dump is not installed where Paved runs (Debian: apt-get install "
                               "postgresql-client), so nothing was dropped")
            private_folder(self.backups)
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
            final = self.backups / f"{name}-{stamp}.dump"
            partial = final.with_suffix(".dump.partial")
            params = conninfo_to_dict(self.dsn)
            password = params.pop("password", None)
            params["dbname"] = name
            env = {**os.environ, "PGCONNECT_TIMEOUT": "10"}
            if password:
                env["PGPASSWORD"] = str(password)  # not on the command line, where `ps` would show it
            done = subprocess.run([program, "--format=custom", f"--file={partial}",
                                   f"--dbname={make_conninfo('', **params)}"],
                                  env=env, capture_output=True, text=True, timeout=3600, check=False,
                                  umask=0o077)  # the dump is created readable by Paved's user only
            if done.returncode != 0 or not partial.exists() or partial.stat().st_size == 0:
                partial.unlink(missing_ok=True)
                why = _one_line(done.stderr)[:300] or f"exit status {done.returncode}"
                raise _Refused(f"pg_dump of {name} did not complete ({why}), so nothing was dropped")
            partial.rename(final)
            scratch.outputs["backup"] = str(final)

        return run


class _Sqlite(_Engine):
    label = EMBEDDED

    def __init__(self, folder: Path, backups: Path) -> None:
        self.folder = folder
        self.backups = backups

    def path(self, name: str) -> Path:
        return self.folder / f"{_check_name(name)}.sqlite3"

    def sidecar(self, name: str) -> Path:
        return self.folder / f"{_check_name(name)}.paved.json"

    def observe_all(self, names: Sequence[str], with_extensions: Collection[str]) -> dict[str, ObservedDatabase | None]:
        return {name: self._observe_file(name) for name in names}

    def _observe_file(self, name: str) -> ObservedDatabase | None:
        path = self.path(name)
        if not path.exists():
            return None
        sidecar = self.sidecar(name)
        memory = Memory.read(sidecar.read_text(encoding="utf-8")) if sidecar.exists() else None
        return ObservedDatabase(engine="sqlite", server=self.label, extensions=(), memory=memory, path=str(path))

    def ensure(self, desired: Resource, actual: ObservedDatabase | None, allowed: frozenset[str],
               managed: list[str]) -> list[_Action]:
        if actual is not None:
            return []
        path, sidecar = self.path(desired.name), self.sidecar(desired.name)

        def create(scratch: _Scratch) -> None:
            private_folder(self.folder)
            # The sidecar first: the file never exists without Paved's mark beside it.
            write_private(sidecar, Memory.first(desired.name).text())
            private_file(path)  # 0600 from the start; SQLite gives its -wal and -shm files the same mode
            with sqlite3.connect(path) as conn:
                conn.execute("PRAGMA journal_mode=WAL")  # writes the file's header now
            conn.close()

        return [_Action(self.step(desired, "create", f"create the file {path} (size, connection limit and "
                                  "extensions apply on PostgreSQL only)"), create)]

    def not_paveds(self, name: str) -> str:
        return _not_paveds(name, self.label, f"no {self.sidecar(name).name} from Paved beside {self.path(name)}")

    def new_password(self, name: str) -> _Action:
        path = self.path(name)

        def run(scratch: _Scratch) -> None:
            scratch.url = f"sqlite:///{path}"

        return _Action(Step(f"Database/{name}", "update", f"{self.label}: a file has no password; its URL is "
                            f"sqlite:///{path}"), run)

    def remember(self, name: str, memory: Memory) -> _Action:
        sidecar = self.sidecar(name)

        def run(scratch: _Scratch) -> None:
            write_private(sidecar, memory.text())

        return _Action(Step(f"Database/{name}", "update", f"{self.label}: note what was delivered in {sidecar}"),
                       run)

    def rename(self, old: str, new: str) -> list[_Action]:
        def run(scratch: _Scratch) -> None:
            self.path(old).rename(self.path(new))
            if self.sidecar(old).exists():
                self.sidecar(old).rename(self.sidecar(new))

        return [_Action(Step(f"Database/{new}", "update", f"{self.label}: rename {self.path(old)} to "
                             f"{self.path(new)}"), run)]

    def remove(self, name: str, actual: ObservedDatabase) -> list[_Action]:
        path = self.path(name)

        def backup(scratch: _Scratch) -> None:
            private_folder(self.backups)
            final = self.backups / f"{name}-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.sqlite3"
            partial = final.with_suffix(".sqlite3.partial")
            source, copy = sqlite3.connect(path), sqlite3.connect(private_file(partial))
            try:
                source.backup(copy)  # SQLite's online backup: a consistent copy even while in use
            finally:
                copy.close()
                source.close()
            partial.rename(final)
            scratch.outputs["backup"] = str(final)

        def drop(scratch: _Scratch) -> None:
            for leftover in (path, Path(f"{path}-wal"), Path(f"{path}-shm"), self.sidecar(name)):
                leftover.unlink(missing_ok=True)

        identity = f"Database/{name}"
        return [_Action(Step(identity, "delete", f"{self.label}: copy {path} to {self.backups}/ (nothing is "
                             "deleted unless it completes)"), backup),
                _Action(Step(identity, "delete", f"{self.label}: delete {path}", True), drop)]


def _stop(step: Step, message: str) -> _Action:
    def run(scratch: _Scratch) -> None:
        raise _Refused(message)
    return _Action(step, run, stops=True)


# -- the provider -------------------------------------------------------------------------------------------

class DatabaseProvider:
    """`Provider` for `Database`: PostgreSQL (or embedded SQLite) plus `DATABASE_URL` secrets; it observes
    together (`ObservesTogether`).

    `server(variable)` gives the connection string held by an environment variable of Paved's process
    (None when unset); `data_dir` holds the SQLite files and the backups; `secrets` delivers credentials.
    """

    kinds: tuple[str, ...] = ("Database",)

    def __init__(self, server: Callable[[str], str | None], data_dir: Path, secrets: SecretStore) -> None:
        self.server = server
        self.data_dir = data_dir
        self.secrets = secrets
        self.statements = StatementCount()
        self._engines: dict[str, _Engine] = {}
        self._in_job = False  # from `observe_all` to `close`: connections serve every resource of the job

    def _engine(self, target: Target) -> _Engine:
        variable = target.config.settings_of(NAME).get("connectionEnv")
        backups = self.data_dir / "backups"
        if variable is None:
            key = "sqlite"
            if key not in self._engines:
                self._engines[key] = _Sqlite(self.data_dir / "databases", backups)
            return self._engines[key]
        dsn = self.server(variable)
        if not dsn:
            raise _Refused(f"paved.yaml puts databases on the PostgreSQL server in ${variable}, but "
                           f"{variable} is not set where Paved runs")
        if variable not in self._engines:
            self._engines[variable] = _Postgres(dsn, backups, self.statements)
        return self._engines[variable]

    def close(self) -> None:
        """End the job: close every connection, and forget every server (the next job reads its own)."""
        self._in_job = False
        try:
            for engine in self._engines.values():
                engine.close()
        finally:
            self._engines.clear()

    def _done(self) -> None:
        """After one plan or apply: outside a job, hold no connection (a process may last long after)."""
        if not self._in_job:
            self.close()

    # -- the port ------------------------------------------------------------------------------------------

    @staticmethod
    def deliveries(resource: Resource, target: Target) -> list[Destination]:
        service = str(resource.spec.get("service") or "")
        repo = f"{target.organization}/{service}"
        return [Destination(repo), *(Destination(repo, env) for env in target.followed.get(service, ()))]

    def observe(self, resource: Resource, target: Target) -> ObservedDatabase | None:
        return self._observe_all([resource], target)[resource.identity]

    def observe_all(self, resources: Sequence[Resource], target: Target) -> dict[str, ObservedDatabase | None]:
        """Every database of the job as it exists, by identity: one catalog query, and one list of secrets per
        place `DATABASE_URL` goes. A request whose name is not a DNS label is left out (observing it alone
        refuses it, and it alone). Opens the job: its connection stays open until `close`."""
        self._in_job = True
        return self._observe_all([r for r in resources if _NAME.match(r.name)], target)

    def _observe_all(self, resources: Sequence[Resource], target: Target) -> dict[str, ObservedDatabase | None]:
        try:
            live = self._engine(target).observe_all([r.name for r in resources],
                                                    {r.name for r in resources if r.spec.get("extensions")})
        except psycopg.Error as exc:
            raise _Refused(self._failure(exc, None, target)) from None
        places: dict[str, list[Destination]] = {}  # database -> where its secret goes, or went
        for resource in resources:
            actual = live[resource.name]
            if actual is not None:
                recorded = [Destination.parse(k) for k in (actual.memory.delivered if actual.memory else ())]
                places[resource.name] = list(dict.fromkeys([*self.deliveries(resource, target), *recorded]))
        held = {d: self.secrets.names(d.repo, d.environment)
                for d in dict.fromkeys(d for each in places.values() for d in each)}
        found: dict[str, ObservedDatabase | None] = {}
        for resource in resources:
            actual = live[resource.name]
            found[resource.identity] = None if actual is None else replace(
                actual, secrets={d.key: SECRET in held[d] for d in places[resource.name]})
        return found

    def plan(self, desired: Resource | None, actual: ObservedDatabase | None, target: Target,
             previous: Resource | None = None) -> list[Step]:
        try:
            return self._plan(desired, actual, target, previous)
        finally:
            self._done()

    def _plan(self, desired: Resource | None, actual: ObservedDatabase | None, target: Target,
              previous: Resource | None) -> list[Step]:
        try:
            steps = []
            old = self._renamed_from(desired, actual, target, previous)
            if old is not None:
                assert desired is not None and previous is not None
                refused = self._refusal(self._engine(target), old, previous.name)
                if refused is not None:
                    return [Step(desired.identity, "update", refused)]
                steps += [a.step for a in self._engine(target).rename(previous.name, desired.name)]
                actual = self.observe(previous, target)
            return steps + [a.step for a in self._actions(desired, actual, target, previous)]
        except psycopg.Error as exc:
            raise _Refused(self._failure(exc, None, target)) from None

    def apply(self, desired: Resource | None, target: Target, previous: Resource | None = None,
              observed: Mapping[str, ObservedDatabase | None] | None = None) -> Result:
        try:
            return self._apply(desired, target, previous, observed or {})
        finally:
            self._done()

    def _apply(self, desired: Resource | None, target: Target, previous: Resource | None,
               observed: Mapping[str, ObservedDatabase | None]) -> Result:
        subject = desired or previous
        if subject is None:
            raise ValueError("apply needs the request, or the previous one to delete")
        scratch = _Scratch()
        taken: list[Step] = []
        current: Step | None = None
        try:
            engine = self._engine(target)
            scratch.outputs["engine"] = engine.label
            renamed = desired is not None and previous is not None and previous.name != desired.name
            actual = observed[subject.identity] if subject.identity in observed else self.observe(subject, target)
            old = self._renamed_from(desired, actual, target, previous) if renamed else None
            if old is not None:
                assert desired is not None and previous is not None
                refused = self._refusal(engine, old, previous.name)
                if refused is not None:
                    raise _Refused(refused)  # nothing is renamed
                for action in engine.rename(previous.name, desired.name):
                    current = action.step
                    action.run(scratch)
                    taken.append(action.step)
                actual = self.observe(subject, target)  # what the rename made
            for action in self._actions(desired, actual, target, previous):
                current = action.step
                log.info("%s: %s", subject.identity, action.step.description)
                action.run(scratch)
                taken.append(action.step)
        except (PavedError, psycopg.Error, OSError, sqlite3.Error, subprocess.SubprocessError) as exc:
            message = self._failure(exc, current, target)
            log.warning("%s: %s", subject.identity, message)
            return Result(subject.identity, "failed", message, tuple(taken), dict(scratch.outputs))
        return Result(subject.identity, "applied" if taken else "unchanged", "", tuple(taken), dict(scratch.outputs))

    def _renamed_from(self, desired: Resource | None, actual: ObservedDatabase | None, target: Target,
                      previous: Resource | None) -> ObservedDatabase | None:
        """What exists under a renamed request's old name, when nothing exists under its new one (then it
        is renamed); None otherwise."""
        if desired is None or previous is None or previous.name == desired.name or actual is not None:
            return None
        return self._engine(target).observe(previous.name)

    @staticmethod
    def _refusal(engine: _Engine, actual: ObservedDatabase | None, name: str) -> str | None:
        """Why Paved leaves `name` alone when it exists without Paved's memory (then it is not Paved's)."""
        if actual is None or actual.memory is not None:
            return None
        return engine.not_paveds(name)

    # -- what to do ----------------------------------------------------------------------------------------

    def _actions(self, desired: Resource | None, actual: ObservedDatabase | None, target: Target,
                 previous: Resource | None) -> list[_Action]:
        engine = self._engine(target)
        memory = (actual.memory if actual else None) or Memory()
        recorded = [Destination.parse(k) for k in memory.delivered]
        subject = desired or previous
        refused = self._refusal(engine, actual, subject.name) if subject is not None else None
        if refused is not None and subject is not None:
            return [_stop(Step(subject.identity, "delete" if desired is None else "update", refused), refused)]
        if desired is None:
            if actual is None or previous is None:
                return []
            if previous.spec.get("deletionProtection") is not False:
                message = f"{previous.identity} has deletion protection on; nothing was dropped"
                return [_stop(engine.step(previous, "delete", f"stop: {message}"), message)]
            found = engine.remove(previous.name, actual)
            # Access goes before the data: secrets are withdrawn right after the dump.
            return found[:1] + self._withdrawals(previous, recorded, dict(memory.repositories)) + found[1:]
        # The allowed list is read from the merged tree only for a request that asks for extensions.
        allowed = self._allowed(target) if desired.spec.get("extensions") else frozenset[str]()
        found = engine.ensure(desired, actual, allowed, list(memory.extensions))
        stops = [i for i, a in enumerate(found) if a.stops]
        if stops:
            return found[:stops[0] + 1]
        wanted = self.deliveries(desired, target)
        present = actual.secrets if actual else {}
        rotate = desired.spec.get("rotate")
        stale = (actual is None or memory.name != desired.name or memory.rotate != rotate
                 or any(d not in recorded or not present.get(d.key) for d in wanted))
        known = dict(memory.repositories)
        going = dict.fromkeys(d.repo for d in wanted)
        if stale:
            found.append(engine.new_password(desired.name))
            found += [self._deliver(desired, d) for d in wanted]
            # The credentials go out again: each repository is kept by its id as it is now.
            known.update({repo: where[1] for repo in going if (where := self.secrets.located(repo)) is not None})
        found += self._withdrawals(desired, [d for d in recorded if d not in wanted], dict(memory.repositories),
                                   keep=wanted)
        extensions = tuple(sorted(str(e) for e in desired.spec.get("extensions") or []))
        remembered = Memory(name=desired.name, rotate=rotate, delivered=tuple(sorted(d.key for d in wanted)),
                            extensions=extensions,
                            repositories=tuple(sorted((r, i) for r, i in known.items() if r in going)))
        if stale or remembered != memory:
            found.append(engine.remember(desired.name, remembered))
        return found

    def _deliver(self, resource: Resource, delivery: Destination) -> _Action:
        def run(scratch: _Scratch) -> None:
            if not scratch.url:
                raise _Refused("no new credentials to deliver")
            self.secrets.put(delivery.repo, delivery.environment, SECRET, scratch.url)

        return _Action(Step(resource.identity, "update", f"set the Actions secret {SECRET} on {delivery}"), run)

    def _withdrawals(self, resource: Resource, places: Sequence[Destination], ids: Mapping[str, int],
                     keep: Sequence[Destination] = ()) -> list[_Action]:
        """Withdraw the secret from each of `places`, where its repository is now, found by the id it had
        when the secret went there (`ids`; by its name then, for a memory written before ids were kept): a
        service renamed took its repository's secrets along, GitHub's redirect from the old name takes no
        write, and a repository that took the old name since is another one, which Paved leaves alone. A
        place whose repository now is one the credentials go to (`keep`: the service renamed, its database
        following) had its secret replaced by the delivery; a repository that is gone took its secrets with it."""
        going = {d.key.lower() for d in keep}
        # One question per repository, however many of its environments the secret went to.
        located = {repo: self.secrets.located(ids.get(repo, repo)) for repo in dict.fromkeys(p.repo for p in places)}
        actions: list[_Action] = []
        for place in places:
            now = located[place.repo]
            here = None if now is None else Destination(now[0], place.environment)
            if here is not None and here.key.lower() not in going:
                actions.append(self._withdraw(resource, here))
        return actions

    def _withdraw(self, resource: Resource, delivery: Destination) -> _Action:
        return _Action(Step(resource.identity, "update", f"delete the Actions secret {SECRET} from {delivery}"),
                       lambda scratch: self.secrets.remove(delivery.repo, delivery.environment, SECRET))

    def _allowed(self, target: Target) -> frozenset[str]:
        """The extensions the merged platform repo's own Database schema allows."""
        try:
            schema = json.loads(target.tree.read(SCHEMA_PATH))
            items = schema["properties"]["spec"]["properties"]["extensions"]["items"]
            return frozenset(str(e) for e in items.get("enum") or [])
        except (KeyError, ValueError, TypeError, AttributeError):
            return frozenset()

    def _failure(self, exc: BaseException, step: Step | None, target: Target) -> str:
        doing = f" to {step.description}" if step else ""
        if isinstance(exc, PavedError):
            message = exc.message
        elif isinstance(exc, psycopg.Error) and exc.sqlstate is None:  # the server never answered
            message = f"PostgreSQL could not be reached{doing}: {exc}"
        elif isinstance(exc, psycopg.Error):
            diag = getattr(exc, "diag", None)
            detail = (diag.message_primary if diag is not None else None) or str(exc)
            message = f"PostgreSQL refused{doing}: {detail}"
        else:
            message = f"could not{doing or ' reach the database'}: {exc}"
        message = _one_line(message)
        for engine in self._engines.values():
            for word in getattr(engine, "secret_words", []):
                message = message.replace(word, "***")
        return re.sub(r"(postgres(?:ql)?://[^:/@\s]+:)[^@\s]+@", r"\1***@", message)[:500]


# -- the plugin -------------------------------------------------------------------------------------------------

def _build(env: ProviderEnv) -> ObservesTogether[ObservedDatabase]:
    # Credentials go to the service as Actions secrets, through the job's GitHub client.
    from bot.providers.github.secrets import GitHubSecrets

    return DatabaseProvider(env.server, env.data_dir, GitHubSecrets(env.github))


# Named by the entry point `postgres` of `paved.providers` in Paved's pyproject.toml.
plugin = ProviderPlugin(
    name=NAME, kinds=DatabaseProvider.kinds, settings_schema=SETTINGS_SCHEMA, build=_build,
    # Without a server, databases are SQLite files in Paved's data folder.
    keeping=Keeping(needs="a database server", pointer="/spec/engine",
                    hint=f"Name a PostgreSQL server in paved.yaml (`providers: {NAME}: connectionEnv: "
                         f"PAVED_POSTGRES_DSN`) and give the job that variable from a repository secret."),
    lasting=lambda settings: settings.get("connectionEnv") is not None)
