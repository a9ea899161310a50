"""The catalogue index: judged files and catalogue states in one SQLite file (or a private one).

This module alone knows the index's schema, its SQL and its indexes; the rest of Paved asks it typed
questions. The core (`bot.catalogue`) judges a revision through its port, `bot.catalogue.CatalogueIndex`:
states, their files, resources (`Entry`), references and catalogue-wide findings, and overlays that hide
a state's changed files. The web catalogue's read model (`bot.catalogue_view`) lists resources and teams
through `bot.catalogue_view.ResourceListings`: pages, counts and filters, run next to the rows here.

SQLite is an in-process library, not a service: the caller chooses whether the index lives in the data
folder (shared by the jobs and the web pages of one machine, write-ahead logged) or privately (the CLI's
`--no-cache`, `paved test`, the tests): SQLite's temporary file of the connection, deleted when it
closes, whose pages beyond its small cache wait on disk, so a large catalogue is not held in memory.
The index is only a cache of what the repository says: a file written by another version of Paved is
emptied and one that is not SQLite at all is replaced, rather than stopping the developer.
"""

from __future__ import annotations

import itertools
import marshal
import sqlite3
import time
import uuid
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.catalogue import (
    ANY_CONTEXT,
    Check,
    JudgedFile,
    PolicySubject,
    Record,
    Scope,
    StalePolicy,
    State,
    StoredPolicy,
    context_key,
)
from bot.files import private_file, private_folder
from bot.model import Finding
from bot.rules import Rules
from bot.validate import (
    Entry,
    FileResult,
    Reference,
    finding_from_tuple,
    finding_to_tuple,
    from_record_bytes,
    is_for,
    record_bytes,
)

if TYPE_CHECKING:
    # The pages' read model is imported where a page is listed: `paved validate` and `paved plan` never
    # list one, and their start-up is a speed target (bench/run.py).
    from bot.catalogue_view import Filters, Row, Status

# 3: a judged file's record holds the path and blob it was judged for.
# 4: a new resource's request waits in its row (`request`) until its policies are judged.
SCHEMA_VERSION = "4"
# States kept besides the ones in use; older ones are dropped (they are rebuilt from file results).
KEEP_STATES = 12
_CHUNK = 500  # values per `IN (...)` query, well under SQLite's parameter limit

_ENTRY_FIELDS: tuple[str, ...] = Entry.__slots__
_REF_FIELDS: tuple[str, ...] = Reference.__slots__
_ENTRY_COLUMNS = ", ".join(_ENTRY_FIELDS)
_REF_COLUMNS = ", ".join(_REF_FIELDS)
_DOCUMENT, _KIND, _SERVICE = (_ENTRY_FIELDS.index(name) for name in ("document", "kind", "service"))

_DDL = f"""
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS results(rules TEXT, path TEXT, blob TEXT, record BLOB, PRIMARY KEY(rules, path, blob));
CREATE TABLE IF NOT EXISTS states(id INTEGER PRIMARY KEY, rules TEXT, tree TEXT, used REAL,
                                  files INTEGER, resources INTEGER, UNIQUE(rules, tree));
CREATE TABLE IF NOT EXISTS files(state INTEGER, path TEXT, blob TEXT, broken INTEGER, findings BLOB,
                                 PRIMARY KEY(state, path));
CREATE TABLE IF NOT EXISTS entries(state INTEGER, {_ENTRY_COLUMNS}, context TEXT, policy BLOB, request BLOB);
CREATE INDEX IF NOT EXISTS entries_by_identity ON entries(state, identity);
CREATE INDEX IF NOT EXISTS entries_by_path ON entries(state, path);
CREATE INDEX IF NOT EXISTS entries_by_service ON entries(state, service);
CREATE INDEX IF NOT EXISTS entries_by_owner ON entries(state, owner);
CREATE TABLE IF NOT EXISTS refs(state INTEGER, {_REF_COLUMNS});
CREATE INDEX IF NOT EXISTS refs_by_path ON refs(state, path);
CREATE INDEX IF NOT EXISTS refs_by_target ON refs(state, target);
CREATE INDEX IF NOT EXISTS refs_by_relation ON refs(state, relation);
CREATE TABLE IF NOT EXISTS checks(state INTEGER, category TEXT, subject TEXT, path TEXT, finding BLOB);
CREATE INDEX IF NOT EXISTS checks_by_state ON checks(state, category);
"""
_TABLES = ("meta", "results", "states", "files", "entries", "refs", "checks")
# The web pages' statuses (see `remember_statuses`): per connection, never written to the file.
_STATUS_TABLE = "temp.paved_view_status"
_STATUS_KEY_TABLE = "temp.paved_view_key"


def _dump(findings: Iterable[Finding]) -> bytes | None:
    rows = [finding_to_tuple(f) for f in findings]
    return marshal.dumps(rows) if rows else None


def _load(blob: bytes | None) -> list[Finding]:
    return [finding_from_tuple(t) for t in marshal.loads(blob)] if blob else []


def _chunks(items: Iterable[str]) -> Iterator[list[str]]:
    ordered = sorted(set(items))
    for i in range(0, len(ordered), _CHUNK):
        yield ordered[i:i + _CHUNK]


def _entry(row: Any) -> Entry:
    return Entry(*row[:len(_ENTRY_FIELDS)])


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _looks_like_sqlite(path: Path) -> bool:
    try:
        with open(path, "rb") as handle:
            return handle.read(16) == b"SQLite format 3\0"
    except OSError:
        return False


class SQLiteCatalogueIndex:
    """The catalogue index in SQLite at `path` (a private temporary one when `path` is None).

    One connection, used by one thread at a time: the web pages open one per request thread.
    """

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        try:
            self._open(path)
        except sqlite3.OperationalError:
            raise  # locked or busy: another process is using the index, which is fine and not ours to fix
        except sqlite3.DatabaseError:
            if path is None or _looks_like_sqlite(path):
                raise
            # The index is only a cache: a file that is not SQLite at all (a disk fault, something else
            # written there) is removed and rebuilt rather than stopping the developer.
            for leftover in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
                leftover.unlink(missing_ok=True)
            self._open(path)

    def _open(self, path: Path | None) -> None:
        if path is not None:
            private_file(private_folder(path.parent) / path.name)  # what was judged in private repositories
        self._db = sqlite3.connect(str(path) if path else "", isolation_level=None, timeout=30)
        self._journal("wal" if path else "memory")
        self._db.execute("PRAGMA synchronous=NORMAL")
        try:
            row = self._db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
        except sqlite3.OperationalError:
            row = None
        if row is not None and row[0] != SCHEMA_VERSION:
            # An index written by another version of Paved: it is only a cache, so start afresh.
            for table in _TABLES:
                self._db.execute(f"DROP TABLE IF EXISTS {table}")
        self._db.executescript(_DDL)
        self._db.execute("INSERT OR REPLACE INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))
        self._overlays = itertools.count(1)
        self._statuses = False  # whether this connection made its status tables
        # In memory, judged files stay Python objects: nothing outlives the process to share them with.
        self._memory: dict[tuple[str, str, str], FileResult] | None = {} if path is None else None

    def _journal(self, mode: str) -> None:
        # Changing the journal mode needs the file to itself, and SQLite answers "locked" at once instead
        # of waiting for the busy timeout; several jobs (and the web pages) open the index together.
        deadline = time.monotonic() + 30
        while True:
            try:
                (current,) = self._db.execute("PRAGMA journal_mode").fetchone()
                if str(current).lower() != mode:
                    self._db.execute(f"PRAGMA journal_mode={mode}")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Writes that land together or not at all; other writers wait for the lock (up to 30 s)."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # -- judged files, by content ------------------------------------------------------------------

    def get_file(self, rules: Rules, path: str, blob: str) -> FileResult | None:
        """The result judged for `path` at `blob` under `rules`; never one judged for another path or blob."""
        if self._memory is not None:
            known = self._memory.get((rules.digest, path, blob))  # only results passing `is_for` are put
            return known if known is not None and known.path == path and known.blob == blob else None
        row = self._db.execute("SELECT record FROM results WHERE rules=? AND path=? AND blob=?",
                               (rules.digest, path, blob)).fetchone()
        return from_record_bytes(path, blob, row[0]) if row else None

    def put_file(self, rules: Rules, result: FileResult) -> None:
        if not is_for(result, result.path, result.blob):
            return  # only a result that names its own path throughout is kept (a refused name is not)
        if self._memory is not None:
            self._memory[(rules.digest, result.path, result.blob)] = result
            return
        self._db.execute("INSERT OR REPLACE INTO results VALUES (?, ?, ?, ?)",
                         (rules.digest, result.path, result.blob, record_bytes(result)))

    # -- states ------------------------------------------------------------------------------------

    def find_state(self, rules: str, tree: str) -> State | None:
        row = self._db.execute("SELECT id, files, resources FROM states WHERE rules=? AND tree=?",
                               (rules, tree)).fetchone()
        if row is None:
            return None
        self._db.execute("UPDATE states SET used=? WHERE id=?", (time.time(), row[0]))
        return State(row[0], tree, row[1], row[2])

    def latest_state(self, rules: str) -> State | None:
        row = self._db.execute("SELECT id, tree, files, resources FROM states WHERE rules=? ORDER BY used DESC "
                               "LIMIT 1", (rules,)).fetchone()
        return State(*row) if row else None

    def has_state(self, state: int) -> bool:
        """Whether `state` is still kept (`prune` drops the least used)."""
        return self._db.execute("SELECT 1 FROM states WHERE id=?", (state,)).fetchone() is not None

    @property
    def keeps_records(self) -> bool:
        """Whether `add_state` keeps judged files' records: on disk only (see there)."""
        return self._memory is None

    def cached_files(self, rules: Rules, files: Iterable[tuple[str, str]]) -> dict[str, FileResult]:
        """The results kept for those of `files` (path, blob id) judged before under `rules`."""
        wanted = dict(files)
        found: dict[str, FileResult] = {}
        if self._memory is not None:
            for path, blob in wanted.items():
                known = self.get_file(rules, path, blob)
                if known is not None:
                    found[path] = known
            return found
        if not self._db.execute("SELECT 1 FROM results WHERE rules=? LIMIT 1", (rules.digest,)).fetchone():
            return found  # nothing judged under these rules yet: no file needs looking up
        for chunk in _chunks(wanted):
            for path, blob, record in self._db.execute(
                    f"SELECT path, blob, record FROM results WHERE rules=? AND path IN ({','.join('?' * len(chunk))})",
                    (rules.digest, *chunk)):
                if blob == wanted[path]:
                    known = from_record_bytes(path, blob, record)
                    if known is not None:
                        found[path] = known
        return found

    def knows(self, rules: str) -> bool:
        if self._memory is not None and any(key[0] == rules for key in self._memory):
            return True
        return any(self._db.execute(f"SELECT 1 FROM {table} WHERE rules=? LIMIT 1", (rules,)).fetchone()
                   for table in ("states", "results"))

    def add_state(self, rules: str, tree: str | Callable[[], str], since: State | None, changed: Collection[str],
                  files: Iterable[JudgedFile]) -> State:
        """Store a new state: `since`'s rows for the files not in `changed`, and `files` for the new ones.

        `files` is read as it comes and written a few hundred files at a time, so a catalogue of any size
        is never held whole; each judged file's record also goes to the results cache (on disk only: in
        memory a record would outlive its use, and a file asked for again is judged again). A key known only
        once the files are read is written then: the state is not seen by others before its transaction
        ends, so its placeholder key (unique, and no key a tree has) is never looked up."""
        db = self._db
        placeholder = tree if isinstance(tree, str) else f"judging:{uuid.uuid4()}"
        state = db.execute("INSERT INTO states(rules, tree, used) VALUES (?, ?, ?)",
                           (rules, placeholder, time.time())).lastrowid
        assert state is not None
        if since is not None:
            db.execute("CREATE TEMP TABLE IF NOT EXISTS carry(path TEXT PRIMARY KEY)")
            db.execute("DELETE FROM temp.carry")
            db.executemany("INSERT INTO temp.carry VALUES (?)", [(p,) for p in changed])
            keep = "WHERE state=? AND path NOT IN (SELECT path FROM temp.carry)"
            for table, columns in (("files", "path, blob, broken, findings"),
                                   ("entries", f"{_ENTRY_COLUMNS}, context, policy"), ("refs", _REF_COLUMNS)):
                db.execute(f"INSERT INTO {table}(state, {columns}) SELECT ?, {columns} FROM {table} {keep}",
                           (state, since.id))
        files = iter(files)
        while batch := list(itertools.islice(files, _CHUNK)):
            self._add_files(state, rules, batch)
        count = db.execute("SELECT COUNT(*) FROM files WHERE state=?", (state,)).fetchone()[0]
        resources = db.execute("SELECT COUNT(DISTINCT identity) FROM entries WHERE state=?", (state,)).fetchone()[0]
        key = tree if isinstance(tree, str) else tree()
        db.execute("UPDATE states SET tree=?, files=?, resources=? WHERE id=?", (key, count, resources, state))
        return State(state, key, count, resources)

    def _add_files(self, state: int, rules: str, batch: Iterable[JudgedFile]) -> None:
        files: list[tuple[Any, ...]] = []
        entries: list[tuple[Any, ...]] = []
        refs: list[Record] = []
        records: list[tuple[str, str, str, bytes]] = []
        for judged in batch:
            files.append((state, judged.path, judged.blob, int(judged.broken),
                          marshal.dumps(list(judged.findings)) if judged.findings else None))
            policies, requests = judged.policies, judged.requests
            for entry in judged.entries:
                found = policies.get(entry[_DOCUMENT])
                if found is None:  # judged with the whole catalogue, from its request if it has policies
                    entries.append((state, *entry, None, None, requests.get(entry[_DOCUMENT])))
                else:  # judged already, in any context
                    entries.append((state, *entry, ANY_CONTEXT, marshal.dumps(list(found)) if found else None, None))
            refs += judged.references
            if judged.record is not None and self.keeps_records:
                records.append((rules, judged.path, judged.blob, judged.record))
        db = self._db
        db.executemany("INSERT INTO files VALUES (?, ?, ?, ?, ?)", files)
        db.executemany(f"INSERT INTO entries VALUES (?, {', '.join('?' * len(_ENTRY_FIELDS))}, ?, ?, ?)", entries)
        # The state is written into the statement (a number from SQLite itself), so the references the
        # judging made are inserted as they are, without a copy of each to put it in front.
        db.executemany(f"INSERT INTO refs VALUES ({int(state)}, {', '.join('?' * len(_REF_FIELDS))})", refs)
        db.executemany("INSERT OR REPLACE INTO results VALUES (?, ?, ?, ?)", records)

    def prune(self) -> None:
        """Drop all but the `KEEP_STATES` most recently used states."""
        stale = [r[0] for r in self._db.execute("SELECT id FROM states ORDER BY used DESC LIMIT -1 OFFSET ?",
                                                (KEEP_STATES,))]
        for state in stale:
            for table in ("files", "entries", "refs", "checks"):
                self._db.execute(f"DELETE FROM {table} WHERE state=?", (state,))
            self._db.execute("DELETE FROM states WHERE id=?", (state,))

    # -- overlays ----------------------------------------------------------------------------------

    def hide(self, state: int, paths: Iterable[str]) -> Scope:
        """`state` without the files at `paths`, until `release`; nothing is written to the file."""
        number = next(self._overlays)
        self._db.execute(f"CREATE TEMP TABLE hidden_{number}(path TEXT PRIMARY KEY)")
        self._db.executemany(f"INSERT INTO temp.hidden_{number} VALUES (?)", [(p,) for p in paths])
        return Scope(state, number)

    def release(self, scope: Scope) -> None:
        if scope.hidden:
            self._db.execute(f"DROP TABLE IF EXISTS temp.hidden_{scope.hidden}")

    @staticmethod
    def _hidden(scope: Scope) -> str:
        return f"temp.hidden_{scope.hidden}"

    @classmethod
    def _filter(cls, scope: Scope) -> str:
        return f" AND path NOT IN (SELECT path FROM {cls._hidden(scope)})" if scope.hidden else ""

    def _rows(self, scope: Scope, sql: str, values: Iterable[str]) -> Iterator[Any]:
        """Rows of `sql` (with `{marks}` for the IN list and `{filter}` for the hidden files) in `scope`."""
        for chunk in _chunks(values):
            yield from self._db.execute(sql.format(marks=",".join("?" * len(chunk)), filter=self._filter(scope)),
                                        (scope.state, *chunk))

    # -- files of a state --------------------------------------------------------------------------

    def listing(self, state: int) -> dict[str, str]:
        """Every file of `state`: path -> blob id."""
        return dict(self._db.execute("SELECT path, blob FROM files WHERE state=?", (state,)).fetchall())

    def blobs(self, state: int, paths: Iterable[str]) -> dict[str, str]:
        """The blob id of each of `paths` that `state` has."""
        found: dict[str, str] = {}
        for chunk in _chunks(paths):
            found.update(self._db.execute(
                f"SELECT path, blob FROM files WHERE state=? AND path IN ({','.join('?' * len(chunk))})",
                (state, *chunk)).fetchall())
        return found

    def broken_paths(self, scope: Scope) -> set[str]:
        return {r[0] for r in self._db.execute(f"SELECT path FROM files WHERE state=? AND broken{self._filter(scope)}",
                                               (scope.state,))}

    def file_findings(self, scope: Scope) -> list[Finding]:
        """The findings each file has on its own."""
        found: list[Finding] = []
        for (blob,) in self._db.execute(f"SELECT findings FROM files WHERE state=? AND findings IS NOT NULL"
                                        f"{self._filter(scope)}", (scope.state,)):
            found += _load(blob)
        return found

    # -- resources ---------------------------------------------------------------------------------

    def definitions(self, scope: Scope, identities: Iterable[str]) -> list[Entry]:
        return [_entry(row) for row in self._rows(
            scope, f"SELECT {_ENTRY_COLUMNS} FROM entries WHERE state=? AND identity IN ({{marks}}){{filter}}",
            identities)]

    def owned_by(self, scope: Scope, teams: Iterable[str]) -> list[Entry]:
        return [_entry(row) for row in self._rows(
            scope, f"SELECT {_ENTRY_COLUMNS} FROM entries WHERE state=? AND owner IN ({{marks}}){{filter}}", teams)]

    def serving(self, scope: Scope, services: Iterable[str]) -> list[Entry]:
        """The resources whose `spec.service` is one of `services`, of every kind."""
        return [_entry(row) for row in self._rows(
            scope, f"SELECT {_ENTRY_COLUMNS} FROM entries WHERE state=? AND service IN ({{marks}}){{filter}}",
            services)]

    def hidden_entries(self, scope: Scope) -> list[Entry]:
        """The resources of the files `scope` hides."""
        if not scope.hidden:
            return []
        return [_entry(row) for row in self._db.execute(
            f"SELECT {_ENTRY_COLUMNS} FROM entries WHERE state=? AND path IN (SELECT path FROM {self._hidden(scope)})",
            (scope.state,))]

    def identities(self, scope: Scope) -> set[str]:
        return {i for (i,) in self._db.execute(
            f"SELECT DISTINCT identity FROM entries WHERE state=?{self._filter(scope)}", (scope.state,))}

    def names_of(self, scope: Scope, kind: str) -> set[str]:
        return {n for (n,) in self._db.execute(
            f"SELECT DISTINCT name FROM entries WHERE state=? AND kind=?{self._filter(scope)}", (scope.state, kind))}

    def team_costs(self, scope: Scope) -> dict[str, float]:
        """Monthly cost per owner, over every resource in `scope`."""
        rows = self._db.execute(f"SELECT owner, SUM(cost) FROM entries WHERE state=?{self._filter(scope)} "
                                "GROUP BY owner", (scope.state,)).fetchall()
        return {owner: float(total) for owner, total in rows}

    # -- references --------------------------------------------------------------------------------

    def references_to(self, scope: Scope, targets: Iterable[str]) -> list[Reference]:
        return [Reference(*row) for row in self._rows(
            scope, f"SELECT {_REF_COLUMNS} FROM refs WHERE state=? AND target IN ({{marks}}){{filter}}", targets)]

    def references_from(self, scope: Scope, sources: Iterable[str]) -> list[tuple[str, str]]:
        """(source, target) of every reference made by one of `sources`."""
        return [(source, target) for source, target in self._rows(
            scope, "SELECT source, target FROM refs WHERE state=? AND source IN ({marks}){filter}", sources)]

    def dependencies(self, scope: Scope) -> list[Reference]:
        return [Reference(*row) for row in self._db.execute(
            f"SELECT {_REF_COLUMNS} FROM refs WHERE state=? AND relation='dependsOn'{self._filter(scope)}",
            (scope.state,))]

    # -- catalogue-wide checks of a stored state ---------------------------------------------------

    def duplicated_identities(self, state: int) -> list[str]:
        return [i for (i,) in self._db.execute("SELECT identity FROM entries WHERE state=? GROUP BY identity "
                                               "HAVING COUNT(*) > 1", (state,))]

    def dangling_references(self, state: int) -> list[Reference]:
        """References to an identity that `state` does not define."""
        return [Reference(*row) for row in self._db.execute(
            f"SELECT {_REF_COLUMNS} FROM refs r WHERE state=? AND NOT EXISTS "
            "(SELECT 1 FROM entries e WHERE e.state=r.state AND e.identity=r.target)", (state,))]

    def teams_over_budget(self, state: int) -> list[str]:
        """Teams whose resources cost more a month than their budget (any definition of the team)."""
        return [t for (t,) in self._db.execute(
            "WITH spent AS (SELECT owner, SUM(cost) AS total FROM entries WHERE state=? GROUP BY owner) "
            "SELECT t.name FROM entries t JOIN spent ON spent.owner=t.name WHERE t.state=? AND t.kind='Team' "
            "AND t.budget IS NOT NULL AND spent.total > t.budget", (state, state))]

    def add_checks(self, state: int, checks: Iterable[Check]) -> None:
        self._db.executemany("INSERT INTO checks VALUES (?, ?, ?, ?, ?)",
                             [(state, c.category, c.subject, c.finding.path, marshal.dumps(finding_to_tuple(c.finding)))
                              for c in checks])

    def checks(self, scope: Scope) -> list[Check]:
        return [Check(category, subject, finding_from_tuple(marshal.loads(blob))) for category, subject, blob in
                self._db.execute(f"SELECT category, subject, finding FROM checks WHERE state=?{self._filter(scope)}",
                                 (scope.state,))]

    # -- policies ----------------------------------------------------------------------------------

    def stale_policies(self, state: int, parents: Mapping[str, str], batch: int = 5_000) -> Iterator[list[StalePolicy]]:
        """The resources of `state` whose policies were never judged, or judged in another context (never
        those stored as holding in any, `ANY_CONTEXT`), in the index's order, at most `batch` at a time.

        The context is computed as `bot.catalogue.policy_context` computes it, from the first definition of
        the resource each one belongs to (`parents`: kind -> the kind it belongs to). Those definitions
        (one row a service) are read once and looked up here: SQLite looking up each resource's own took
        0.12 s of 0.2 s at 30,000 resources. Each batch is read whole before it is handed out, so what the
        caller stores in between (`set_policies`) never changes rows under an open read.
        """
        belongs: dict[str, tuple[str | None, str | None]] = {}
        shared: dict[tuple[str | None, str | None], tuple[str | None, str | None]] = {}  # a few tiers
        kinds = sorted(set(parents.values()))
        if kinds:
            marks = ",".join("?" * len(kinds))
            for identity, tier, lifecycle in self._db.execute(
                    f"SELECT identity, tier, lifecycle FROM entries WHERE state=? AND kind IN ({marks}) "
                    "ORDER BY path, document", (state, *kinds)):
                if identity not in belongs:
                    belongs[identity] = shared.setdefault((tier, lifecycle), (tier, lifecycle))
        width = len(_ENTRY_FIELDS)
        after = 0
        while True:
            # Rows in rowid order from `after` on (NOT INDEXED keeps SQLite to that order, which stops at `batch`).
            rows = self._db.execute(
                f"SELECT e.rowid, {', '.join('e.' + c for c in _ENTRY_FIELDS)}, e.context, e.request, "
                "(SELECT f.blob FROM files f WHERE f.state=e.state AND f.path=e.path) FROM entries e NOT INDEXED "
                "WHERE e.rowid > ? AND e.state=? AND e.context IS NOT ? ORDER BY e.rowid LIMIT ?",
                (after, state, ANY_CONTEXT, batch)).fetchall()
            found: list[StalePolicy] = []
            for row in rows:
                fields = row[1:width + 1]
                parent_kind, service = parents.get(fields[_KIND]), fields[_SERVICE]
                parent = belongs.get(f"{parent_kind}/{service}") if parent_kind and service is not None else None
                key = context_key(parent)
                if row[width + 1] != key:
                    found.append(StalePolicy(row[0], fields, key, row[width + 2], row[width + 3], parent))
            if found:
                yield found
            if len(rows) < batch:
                return
            after = rows[-1][0]

    def set_policies(self, judged: Iterable[tuple[StalePolicy, list[Finding]]]) -> None:
        self._db.executemany("UPDATE entries SET context=?, policy=?, request=NULL WHERE rowid=?",
                             [(stale.context, _dump(findings), stale.row) for stale, findings in judged])

    def set_new_policies(self, state: int, judged: Iterable[tuple[PolicySubject, str, tuple[Record, ...]]]) -> None:
        self._db.executemany(
            "UPDATE entries SET context=?, policy=? WHERE state=? AND path=? AND document=?",
            [(key, marshal.dumps(list(found)) if found else None, state, subject.path, subject.document)
             for subject, key, found in judged])

    def policy_findings(self, scope: Scope, except_services: Collection[str] = ()) -> list[Finding]:
        """Stored policy findings in `scope`, but for the resources belonging to one of `except_services`."""
        found: list[Finding] = []
        if scope.hidden or except_services:
            # Only a resource that belongs to another has a `service` (`bot.validate`'s entries).
            services = ",".join("?" * len(except_services))
            rows = self._db.execute(
                f"SELECT policy FROM entries WHERE state=? AND policy IS NOT NULL{self._filter(scope)} "
                f"AND (service IS NULL OR service NOT IN ({services}))",
                (scope.state, *sorted(except_services)))
        else:
            rows = self._db.execute("SELECT policy FROM entries WHERE state=? AND policy IS NOT NULL", (scope.state,))
        for (blob,) in rows:
            found += _load(blob)
        return found

    def service_policies(self, scope: Scope, services: Iterable[str]) -> list[StoredPolicy]:
        """The stored policies of every resource belonging to one of `services`, with their context."""
        return [StoredPolicy(_entry(row), row[-2], tuple(_load(row[-1]))) for row in self._rows(
            scope, f"SELECT {_ENTRY_COLUMNS}, context, policy FROM entries WHERE state=? AND "
                   f"service IN ({{marks}}){{filter}}", services)]

    # -- the web catalogue's lists (`bot.catalogue_view.ResourceListings`) ---------------------------

    def remember_statuses(self, key: str, statuses: Mapping[str, Status]) -> None:
        """Keep the non-`applied` statuses next to the rows (per connection, once per `key`).

        Filtering by status then runs in SQLite next to the other filters, so a page never walks every
        resource in Python.
        """
        db = self._db
        self._status_table()
        row = db.execute(f"SELECT key FROM {_STATUS_KEY_TABLE}").fetchone()
        if row is not None and row[0] == key:
            return
        db.execute(f"DELETE FROM {_STATUS_TABLE}")
        db.executemany(f"INSERT INTO {_STATUS_TABLE} VALUES (?, ?)", sorted(statuses.items()))
        db.execute(f"DELETE FROM {_STATUS_KEY_TABLE}")
        db.execute(f"INSERT INTO {_STATUS_KEY_TABLE} VALUES (?)", (key,))

    def _status_table(self) -> None:
        if not self._statuses:
            self._db.execute(f"CREATE TABLE IF NOT EXISTS {_STATUS_TABLE}(identity TEXT PRIMARY KEY, status TEXT)")
            self._db.execute(f"CREATE TABLE IF NOT EXISTS {_STATUS_KEY_TABLE}(key TEXT)")
            self._statuses = True

    def _filtered(self, state: int, filters: Filters) -> tuple[str, list[Any]]:
        """The FROM and WHERE of a filtered list, shaped so SQLite walks as few rows as it can."""
        self._status_table()
        if filters.status and filters.status != "applied":
            # Few resources are anything but applied: start from them (CROSS JOIN keeps SQLite to that order).
            sql = (f"FROM {_STATUS_TABLE} s CROSS JOIN entries e INDEXED BY entries_by_identity "
                   "ON e.state=? AND e.identity=s.identity WHERE s.status=?")
            values: list[Any] = [state, filters.status]
        else:
            # The index has no statistics for SQLite's planner (nothing runs ANALYZE), so it is told: a team's
            # resources by owner (a few rows to sort), everything else in identity order, stopping at a page.
            index = "entries_by_owner" if filters.owner else "entries_by_identity"
            sql = (f"FROM entries e INDEXED BY {index} LEFT JOIN {_STATUS_TABLE} s ON s.identity=e.identity "
                   "WHERE e.state=?")
            values = [state]
            if filters.status == "applied":
                sql += " AND s.status IS NULL"
        if filters.kind:
            # An identity starts with its kind: a range of the identity index.
            sql += " AND e.identity >= ? AND e.identity < ? AND e.kind=?"
            values += [f"{filters.kind}/", f"{filters.kind}0", filters.kind]
        if filters.owner:
            sql += " AND e.owner=?"
            values.append(filters.owner)
        if filters.q:
            sql += " AND (e.identity LIKE ? ESCAPE '\\' OR e.owner LIKE ? ESCAPE '\\')"
            values += [_like(filters.q), _like(filters.q)]
        return sql, values

    def resource_page(self, state: int, filters: Filters, page: int, size: int) -> list[Row]:
        """One page (from 1) of the resources of `state` matching `filters`, by identity, without tiers."""
        from bot.catalogue_view import Row

        sql, values = self._filtered(state, filters)
        rows = self._db.execute(
            f"SELECT e.identity, e.kind, e.name, e.owner, e.path, e.cost, COALESCE(s.status, 'applied') {sql} "
            "GROUP BY e.identity ORDER BY e.identity LIMIT ? OFFSET ?", (*values, size, (page - 1) * size)).fetchall()
        return [Row(identity=r[0], kind=r[1], name=r[2], owner=r[3], path=r[4], cost=float(r[5] or 0), status=r[6])
                for r in rows]

    def count_resources(self, state: int, filters: Filters) -> int:
        sql, values = self._filtered(state, filters)
        return int(self._db.execute(f"SELECT COUNT(DISTINCT e.identity) {sql}", values).fetchone()[0])

    def identities_in(self, state: int, paths: Iterable[str]) -> dict[str, str]:
        """The identities defined in `paths`, with their file."""
        found: dict[str, str] = {}
        for chunk in _chunks(paths):
            found.update(self._db.execute(
                f"SELECT identity, path FROM entries WHERE state=? AND path IN ({','.join('?' * len(chunk))})",
                (state, *chunk)).fetchall())
        return found

    def references_in(self, state: int, path: str, source: str) -> list[tuple[str, str]]:
        """(target, relation) of what `source` names, read from the references of its file `path`."""
        return [(t, r) for t, r in self._db.execute(
            "SELECT target, relation FROM refs INDEXED BY refs_by_path WHERE state=? AND path=? AND source=?",
            (state, path, source))]

    def team_page(self, state: int, page: int, size: int, *, kind: str) -> list[str]:
        """One page (from 1) of the names of `kind` (the teams' kind), by name."""
        # `Kind/` up to `Kind0` ('0' follows '/'): every identity of that kind, by the identity index.
        return [n for (n,) in self._db.execute(
            "SELECT DISTINCT name FROM entries INDEXED BY entries_by_identity WHERE state=? AND identity >= ? "
            "AND identity < ? ORDER BY identity LIMIT ? OFFSET ?",
            (state, f"{kind}/", f"{kind}0", size, (page - 1) * size))]

    def count_teams(self, state: int, *, kind: str) -> int:
        return int(self._db.execute(
            "SELECT COUNT(DISTINCT identity) FROM entries WHERE state=? AND identity >= ? AND identity < ?",
            (state, f"{kind}/", f"{kind}0")).fetchone()[0])
