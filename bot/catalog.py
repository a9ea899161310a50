"""The catalogue as a whole: what no single file can tell, judged so that work follows the change.

Identities are unique, references resolve (owners are Teams, a database's service exists, ...),
`dependsOn` has no cycles, every team stays within its monthly budget, and the guardrail policies hold
(they may look at the owning service, so they belong here, not to one file).

A judged revision of `catalog/` is a *state*: rows in an SQLite index (in the data folder, or in
memory) of its files, resources, references and catalogue-wide findings. A pull request's head is
not judged from scratch: it is an *overlay* of the base's state, hiding the files that changed and
adding their new versions, and only the checks whose subjects the change touched are run again. So
planning a one-file change costs about the same on 100 resources as on 10,000, where loading every
resource into Python would not. SQLite is an in-process library here, not a service: the caller
chooses whether the index lives in the data folder or in memory.
"""

from __future__ import annotations

import hashlib
import itertools
import marshal
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from bot.files import private_file, private_folder
from bot.model import Finding, Resource, Tree
from bot.rules import Policy, Rules
from bot.validate import (
    CATALOG_DIR,
    SERVICE_SCOPED_KINDS,
    Entry,
    FileResult,
    Reference,
    check_files,
    field_name,
    finding_from_tuple,
    finding_to_tuple,
    from_record,
    is_for,
    is_request_file,
    suggest,
    to_record,
)
from bot.yamlio import join, load

# 3: a judged file's record holds the path and blob it was judged for.
SCHEMA_VERSION = "3"
# States kept besides the ones in use; older ones are dropped (they are rebuilt from file results).
KEEP_STATES = 12
_CHUNK = 500  # identities per `IN (...)` query, well under SQLite's parameter limit

_ENTRY_FIELDS: tuple[str, ...] = Entry.__slots__
_REF_FIELDS: tuple[str, ...] = Reference.__slots__
_ENTRY_COLUMNS = ", ".join(_ENTRY_FIELDS)
_REF_COLUMNS = ", ".join(_REF_FIELDS)

_DDL = f"""
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS results(rules TEXT, path TEXT, blob TEXT, record BLOB, PRIMARY KEY(rules, path, blob));
CREATE TABLE IF NOT EXISTS states(id INTEGER PRIMARY KEY, rules TEXT, tree TEXT, used REAL,
                                  files INTEGER, resources INTEGER, UNIQUE(rules, tree));
CREATE TABLE IF NOT EXISTS files(state INTEGER, path TEXT, blob TEXT, broken INTEGER, findings BLOB,
                                 PRIMARY KEY(state, path));
CREATE TABLE IF NOT EXISTS entries(state INTEGER, {_ENTRY_COLUMNS}, context TEXT, policy BLOB);
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


def _dump(findings: Iterable[Finding]) -> bytes | None:
    rows = [finding_to_tuple(f) for f in findings]
    return marshal.dumps(rows) if rows else None


def _load(blob: bytes | None) -> list[Finding]:
    return [finding_from_tuple(t) for t in marshal.loads(blob)] if blob else []


def _chunks(items: Iterable[str]) -> Iterator[list[str]]:
    ordered = sorted(set(items))
    for i in range(0, len(ordered), _CHUNK):
        yield ordered[i:i + _CHUNK]


def _looks_like_sqlite(path: Path) -> bool:
    try:
        with open(path, "rb") as handle:
            return handle.read(16) == b"SQLite format 3\0"
    except OSError:
        return False


@dataclass(frozen=True, slots=True)
class State:
    """One judged revision of `catalog/` under one set of rules, stored whole."""

    id: int
    tree: str
    files: int
    resources: int


class CatalogueStore:
    """Judged files and catalogue states, in SQLite at `path` (in memory when `path` is None)."""

    def __init__(self, path: Path | None = None) -> None:
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
        self.db = sqlite3.connect(str(path) if path else ":memory:", isolation_level=None, timeout=30)
        self._journal("wal" if path else "memory")
        self.db.execute("PRAGMA synchronous=NORMAL")
        try:
            row = self.db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
        except sqlite3.OperationalError:
            row = None
        if row is not None and row[0] != SCHEMA_VERSION:
            # An index written by another version of Paved: it is only a cache, so start afresh.
            for table in _TABLES:
                self.db.execute(f"DROP TABLE IF EXISTS {table}")
        self.db.executescript(_DDL)
        self.db.execute("INSERT OR REPLACE INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))
        self._overlays = itertools.count()
        # In memory, judged files stay Python objects: nothing outlives the process to share them with.
        self._memory: dict[tuple[str, str, str], FileResult] | None = {} if path is None else None

    def _journal(self, mode: str) -> None:
        # Changing the journal mode needs the file to itself, and SQLite answers "locked" at once instead
        # of waiting for the busy timeout; several jobs (and the web pages) open the index together.
        deadline = time.monotonic() + 30
        while True:
            try:
                (current,) = self.db.execute("PRAGMA journal_mode").fetchone()
                if str(current).lower() != mode:
                    self.db.execute(f"PRAGMA journal_mode={mode}")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # -- judged files, by content ------------------------------------------------------------------

    def get_file(self, rules: Rules, path: str, blob: str) -> FileResult | None:
        """The result judged for `path` at `blob` under `rules`; never one judged for another path or blob."""
        if self._memory is not None:
            known = self._memory.get((rules.digest, path, blob))  # only results passing `is_for` are put
            return known if known is not None and known.path == path and known.blob == blob else None
        row = self.db.execute("SELECT record FROM results WHERE rules=? AND path=? AND blob=?",
                              (rules.digest, path, blob)).fetchone()
        return from_record(path, blob, marshal.loads(row[0])) if row else None

    def put_file(self, rules: Rules, result: FileResult) -> None:
        if not is_for(result, result.path, result.blob):
            return  # only a result that names its own path throughout is kept (a refused name is not)
        if self._memory is not None:
            self._memory[(rules.digest, result.path, result.blob)] = result
            return
        self.db.execute("INSERT OR REPLACE INTO results VALUES (?, ?, ?, ?)",
                        (rules.digest, result.path, result.blob, marshal.dumps(to_record(result))))

    def file_result(self, tree: Tree, rules: Rules, path: str, blob: str) -> FileResult:
        """The judgement of one file, from the store or judged now."""
        known = self.get_file(rules, path, blob)
        if known is not None:
            return known
        [result] = check_files(tree, {path: blob}, rules, self)
        return result

    # -- states ------------------------------------------------------------------------------------

    def find_state(self, rules: Rules, tree: str) -> State | None:
        row = self.db.execute("SELECT id, files, resources FROM states WHERE rules=? AND tree=?",
                              (rules.digest, tree)).fetchone()
        if row is None:
            return None
        self.db.execute("UPDATE states SET used=? WHERE id=?", (time.time(), row[0]))
        return State(row[0], tree, row[1], row[2])

    def latest_state(self, rules: Rules) -> State | None:
        row = self.db.execute("SELECT id, tree, files, resources FROM states WHERE rules=? ORDER BY used DESC "
                              "LIMIT 1", (rules.digest,)).fetchone()
        return State(*row) if row else None

    def listing(self, state: State) -> dict[str, str]:
        return dict(self.db.execute("SELECT path, blob FROM files WHERE state=?", (state.id,)).fetchall())

    def insert_files(self, state: int, results: Iterable[FileResult]) -> None:
        results = list(results)
        self.db.executemany("INSERT INTO files VALUES (?, ?, ?, ?, ?)",
                            [(state, r.path, r.blob, int(r.broken), _dump(r.findings)) for r in results])
        self.db.executemany(
            f"INSERT INTO entries VALUES (?, {', '.join('?' * len(_ENTRY_FIELDS))}, NULL, NULL)",
            [(state, *(getattr(e, f) for f in _ENTRY_FIELDS)) for r in results for e in r.entries])
        self.db.executemany(
            f"INSERT INTO refs VALUES (?, {', '.join('?' * len(_REF_FIELDS))})",
            [(state, *(getattr(ref, f) for f in _REF_FIELDS)) for r in results for ref in r.references])

    def prune(self) -> None:
        stale = [r[0] for r in self.db.execute("SELECT id FROM states ORDER BY used DESC LIMIT -1 OFFSET ?",
                                               (KEEP_STATES,))]
        for state in stale:
            for table in ("files", "entries", "refs", "checks"):
                self.db.execute(f"DELETE FROM {table} WHERE state=?", (state,))
            self.db.execute("DELETE FROM states WHERE id=?", (state,))


def _entry(row: Sequence[Any]) -> Entry:
    return Entry(*row[:len(_ENTRY_FIELDS)])


@dataclass(slots=True)
class Catalogue:
    """The catalogue at one revision: a stored state, or an overlay of one.

    An overlay hides the base state's files listed in `changed` and adds `added`, the judged new
    versions of the files that still exist. Every query below answers for the revision as a whole.
    """

    store: CatalogueStore
    rules: Rules
    state: State
    tree: Tree
    changed: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)
    added: dict[str, FileResult] = field(default_factory=dict)
    _hidden: str = ""

    # -- where rows come from ----------------------------------------------------------------------

    @property
    def _filter(self) -> str:
        return f" AND path NOT IN (SELECT path FROM temp.{self._hidden})" if self._hidden else ""

    def _added_entries(self) -> Iterator[Entry]:
        for result in self.added.values():
            yield from result.entries

    def _added_references(self) -> Iterator[Reference]:
        for result in self.added.values():
            yield from result.references

    def _rows(self, sql: str, values: Iterable[str]) -> Iterator[Sequence[Any]]:
        """Rows of `sql` (with `{marks}` for the IN list) from the base state, without hidden files."""
        for chunk in _chunks(values):
            yield from self.store.db.execute(sql.format(marks=",".join("?" * len(chunk)), filter=self._filter),
                                             (self.state.id, *chunk))

    # -- what the checks ask -----------------------------------------------------------------------

    def definitions(self, identities: Iterable[str]) -> dict[str, list[Entry]]:
        """Every definition of each identity, in file order (the first is the one that counts)."""
        wanted = set(identities)
        found: dict[str, list[Entry]] = {}
        for row in self._rows(f"SELECT {_ENTRY_COLUMNS} FROM entries WHERE state=? AND identity IN ({{marks}})"
                              "{filter}", wanted):
            entry = _entry(row)
            found.setdefault(entry.identity, []).append(entry)
        for entry in self._added_entries():
            if entry.identity in wanted:
                found.setdefault(entry.identity, []).append(entry)
        for entries in found.values():
            entries.sort(key=lambda e: (e.path, e.document))
        return found

    def references_to(self, targets: Iterable[str]) -> list[Reference]:
        wanted = set(targets)
        found = [Reference(*row) for row in self._rows(
            f"SELECT {_REF_COLUMNS} FROM refs WHERE state=? AND target IN ({{marks}}){{filter}}", wanted)]
        return found + [r for r in self._added_references() if r.target in wanted]

    def references_from(self, sources: Iterable[str]) -> dict[str, list[str]]:
        wanted = set(sources)
        found: dict[str, list[str]] = {s: [] for s in wanted}
        for source, target in self._rows("SELECT source, target FROM refs WHERE state=? AND source IN ({marks})"
                                         "{filter}", wanted):
            found[source].append(target)
        for r in self._added_references():
            if r.source in wanted:
                found[r.source].append(r.target)
        return found

    def dependencies(self) -> list[Reference]:
        found = [Reference(*row) for row in self.store.db.execute(
            f"SELECT {_REF_COLUMNS} FROM refs WHERE state=? AND relation='dependsOn'{self._filter}", (self.state.id,))]
        return found + [r for r in self._added_references() if r.relation == "dependsOn"]

    def owned_by(self, teams: Iterable[str]) -> dict[str, list[Entry]]:
        found: dict[str, list[Entry]] = {}
        wanted = set(teams)
        for row in self._rows(f"SELECT {_ENTRY_COLUMNS} FROM entries WHERE state=? AND owner IN ({{marks}})"
                              "{filter}", wanted):
            entry = _entry(row)
            found.setdefault(entry.owner, []).append(entry)
        for entry in self._added_entries():
            if entry.owner in wanted:
                found.setdefault(entry.owner, []).append(entry)
        return found

    def team_costs(self, teams: Iterable[str] | None = None) -> dict[str, float]:
        """Monthly cost per owning team: of `teams`, or of every team that spends anything."""
        if teams is None:
            rows = self.store.db.execute(f"SELECT owner, SUM(cost) FROM entries WHERE state=?{self._filter} "
                                         "GROUP BY owner", (self.state.id,)).fetchall()
            totals = {owner: float(total) for owner, total in rows}
            for entry in self._added_entries():
                totals[entry.owner] = totals.get(entry.owner, 0.0) + entry.cost
        else:
            totals = {team: sum(e.cost for e in entries) for team, entries in self.owned_by(teams).items()}
        return {team: total for team, total in totals.items() if total}

    def tiers(self, identities: Iterable[str]) -> dict[str, str | None]:
        """The tier of each resource: a Service's own, or the tier of the Service a resource belongs to."""
        definitions = {i: e[0] for i, e in self.definitions(identities).items()}
        services = _services(self, {e.service for e in definitions.values() if e.service})
        found: dict[str, str | None] = {}
        for identity, entry in definitions.items():
            if entry.kind == "Service":
                found[identity] = entry.tier
            elif entry.kind in SERVICE_SCOPED_KINDS and entry.service in services:
                found[identity] = services[entry.service].tier
            else:
                found[identity] = None
        return found

    def people(self, teams: Iterable[str]) -> dict[str, tuple[str, ...]]:
        """Members and maintainers of each named team."""
        found: dict[str, tuple[str, ...]] = {}
        for identity, resource in self.resources(f"Team/{t}" for t in teams).items():
            spec = resource.spec
            logins = [p for key in ("members", "maintainers") for p in spec.get(key) or [] if isinstance(p, str)]
            found[identity.split("/", 1)[1]] = tuple(sorted(set(logins)))
        return found

    def serving(self, services: Iterable[str], kind: str) -> dict[str, list[Entry]]:
        """The resources of `kind` that belong to each of `services` (through `spec.service`)."""
        wanted = set(services)
        found: dict[str, list[Entry]] = {}
        for row in self._rows(f"SELECT {_ENTRY_COLUMNS} FROM entries WHERE state=? AND service IN ({{marks}})"
                              "{filter}", wanted):
            entry = _entry(row)
            if entry.kind == kind:
                found.setdefault(entry.service or "", []).append(entry)
        for entry in self._added_entries():
            if entry.kind == kind and entry.service in wanted:
                found.setdefault(entry.service or "", []).append(entry)
        return found

    def environments(self, services: Iterable[str]) -> dict[str, tuple[str, ...]]:
        """The deployment environment names (`spec.name`) of each of `services`."""
        serving = self.serving(services, "Environment")
        requests = self.resources(e.identity for entries in serving.values() for e in entries)
        found: dict[str, tuple[str, ...]] = {}
        for service, entries in serving.items():
            names = {str(requests[e.identity].spec.get("name")) for e in entries if e.identity in requests}
            found[service] = tuple(sorted(names))
        return found

    def identities(self) -> list[str]:
        """Every resource at this revision, by identity."""
        found = {i for (i,) in self.store.db.execute(
            f"SELECT DISTINCT identity FROM entries WHERE state=?{self._filter}", (self.state.id,))}
        return sorted(found | {e.identity for e in self._added_entries()})

    def names_of(self, kind: str) -> list[str]:
        """Every name of one kind (only asked for when a reference dangles, to suggest a fix)."""
        found = {n for (n,) in self.store.db.execute(
            f"SELECT DISTINCT name FROM entries WHERE state=? AND kind=?{self._filter}", (self.state.id, kind))}
        return sorted(found | {e.name for e in self._added_entries() if e.kind == kind})

    # -- the revision as a whole -------------------------------------------------------------------

    @property
    def file_count(self) -> int:
        return self.state.files + sum(1 for old, new in self.changed.values() if old is None and new is not None) \
            - sum(1 for old, new in self.changed.values() if old is not None and new is None)

    def broken_paths(self) -> set[str]:
        found = {r[0] for r in self.store.db.execute(f"SELECT path FROM files WHERE state=? AND broken{self._filter}",
                                                      (self.state.id,))}
        return found | {p for p, r in self.added.items() if r.broken}

    def resources(self, identities: Iterable[str]) -> dict[str, Resource]:
        """The full requests of `identities` (their first definitions), read from the judged files."""
        found: dict[str, Resource] = {}
        wanted = self.definitions(identities)
        by_file: dict[str, set[str]] = {}
        for identity, entries in wanted.items():
            by_file.setdefault(entries[0].path, set()).add(identity)
        for path, identities_here in by_file.items():
            result = self.added.get(path)
            if result is None:
                blob = self.store.db.execute("SELECT blob FROM files WHERE state=? AND path=?",
                                             (self.state.id, path)).fetchone()[0]
                result = self.store.file_result(self.tree, self.rules, path, blob)
            for resource in result.resources:
                first = wanted[resource.identity][0] if resource.identity in identities_here else None
                if first is not None and resource.document == first.document and resource.identity not in found:
                    found[resource.identity] = resource
        return found

    def findings(self) -> list[Finding]:
        """Every finding at this revision: per file, catalogue-wide and policies, in file order."""
        found = _overlay_findings(self) if self._hidden else _stored_findings(self)
        found.sort(key=Finding.sort_key)
        return found

    def close(self) -> None:
        if self._hidden:
            self.store.db.execute(f"DROP TABLE IF EXISTS temp.{self._hidden}")
            self._hidden = ""


# -- building states and overlays ------------------------------------------------------------------

def _tree_key(tree: Tree) -> tuple[str, dict[str, str] | None]:
    """A key for the contents of `catalog/` at `tree` (git's tree id, or a digest of the listing)."""
    tree_id = tree.tree_id(CATALOG_DIR)
    if tree_id is not None:
        return tree_id, None
    listing = {p: b for p, b in tree.files(CATALOG_DIR).items() if is_request_file(p)}
    digest = hashlib.sha1(usedforsecurity=False)
    for path in sorted(listing):
        digest.update(f"{path}\0{listing[path]}\n".encode("utf-8", "surrogateescape"))
    return "listing:" + digest.hexdigest(), listing


def _changes(store: CatalogueStore, since: State, tree: Tree,
             listing: dict[str, str] | None) -> dict[str, tuple[str | None, str | None]]:
    """Request files that differ between a stored state and `tree`: path -> (blob before, blob after)."""
    diff = tree.diff(since.tree, CATALOG_DIR) if listing is None else None
    before = None
    if diff is None:
        current = listing if listing is not None else {
            p: b for p, b in tree.files(CATALOG_DIR).items() if is_request_file(p)}
        before = store.listing(since)
        diff = {p: b for p, b in current.items() if before.get(p) != b}
        diff.update({p: None for p in before if p not in current})
    diff = {p: b for p, b in diff.items() if is_request_file(p)}
    olds: dict[str, str] = before if before is not None else {}
    if before is None:
        for chunk in _chunks(diff):
            olds.update(store.db.execute(
                f"SELECT path, blob FROM files WHERE state=? AND path IN ({','.join('?' * len(chunk))})",
                (since.id, *chunk)).fetchall())
    return {p: (olds.get(p), b) for p, b in diff.items() if olds.get(p) != b}


def judge(tree: Tree, rules: Rules, store: CatalogueStore) -> Catalogue:
    """The catalogue at `tree`, stored whole: found in `store`, or derived from the most recently used
    state by judging only the files that differ, or built from scratch."""
    key, listing = _tree_key(tree)
    known = store.find_state(rules, key)
    if known is not None:
        return Catalogue(store, rules, known, tree)
    with store.transaction():
        # Another process may have stored this state while this one waited for the write lock.
        known = store.find_state(rules, key)
        if known is not None:
            return Catalogue(store, rules, known, tree)
        like = store.latest_state(rules)
        changes = _changes(store, like, tree, listing) if like is not None else {
            p: (None, b) for p, b in (listing or tree.files(CATALOG_DIR)).items() if is_request_file(p)}
        state_id = store.db.execute("INSERT INTO states(rules, tree, used) VALUES (?, ?, ?)",
                                    (rules.digest, key, time.time())).lastrowid
        assert state_id is not None
        if like is not None:
            store.db.execute("CREATE TEMP TABLE IF NOT EXISTS carry(path TEXT PRIMARY KEY)")
            store.db.execute("DELETE FROM temp.carry")
            store.db.executemany("INSERT INTO temp.carry VALUES (?)", [(p,) for p in changes])
            keep = "WHERE state=? AND path NOT IN (SELECT path FROM temp.carry)"
            for table, columns in (("files", "path, blob, broken, findings"),
                                   ("entries", f"{_ENTRY_COLUMNS}, context, policy"), ("refs", _REF_COLUMNS)):
                store.db.execute(f"INSERT INTO {table} SELECT ?, {columns} FROM {table} {keep}", (state_id, like.id))
        fresh = {p: new for p, (_, new) in changes.items() if new is not None}
        results = {r.path: r for r in check_files(tree, fresh, rules, store)}
        store.insert_files(state_id, results.values())
        files = store.db.execute("SELECT COUNT(*) FROM files WHERE state=?", (state_id,)).fetchone()[0]
        resources = store.db.execute("SELECT COUNT(DISTINCT identity) FROM entries WHERE state=?",
                                     (state_id,)).fetchone()[0]
        store.db.execute("UPDATE states SET files=?, resources=? WHERE id=?", (files, resources, state_id))
        catalogue = Catalogue(store, rules, State(state_id, key, files, resources), tree)
        _store_checks(catalogue, results)
        store.prune()
    return catalogue


def overlay(base: Catalogue, tree: Tree) -> Catalogue:
    """The catalogue at `tree` as the stored `base` plus what changed: nothing is stored."""
    _, listing = _tree_key(tree)
    changed = _changes(base.store, base.state, tree, listing)
    name = f"hidden_{next(base.store._overlays)}"
    base.store.db.execute(f"CREATE TEMP TABLE {name}(path TEXT PRIMARY KEY)")
    base.store.db.executemany(f"INSERT INTO temp.{name} VALUES (?)", [(p,) for p in changed])
    fresh = {p: new for p, (_, new) in changed.items() if new is not None}
    added = {r.path: r for r in check_files(tree, fresh, base.rules, base.store)}
    return Catalogue(base.store, base.rules, base.state, tree, changed, added, name)


# -- policies --------------------------------------------------------------------------------------

def _context(service: Entry | None) -> dict[str, Any]:
    if service is None:
        return {}
    return {"service": {"name": service.name, "tier": service.tier, "lifecycle": service.lifecycle}}


def _context_key(service: Entry | None) -> str:
    return "-" if service is None else f"{service.tier}|{service.lifecycle}"


def _policy_pointer(policy: Policy, errors: list[Any]) -> str:
    if policy.pointer:
        return policy.pointer
    deepest = max(errors, key=lambda e: len(e.instance_path))
    return "".join(join("", t) for t in deepest.instance_path)


def _evaluate(catalogue: Catalogue, entries: Iterable[Entry], services: dict[str, Entry],
              fresh: dict[str, FileResult] | None = None) -> dict[Entry, list[Finding]]:
    """Policy findings of each entry, with its owning service as context, positioned in its file."""
    found: dict[Entry, list[Finding]] = {}
    results: dict[str, FileResult] = {**catalogue.added, **(fresh or {})}
    for entry in entries:
        policies = catalogue.rules.policies_for(entry.kind)
        if not policies:
            found[entry] = []
            continue
        result = results.get(entry.path)
        if result is None:
            blob = catalogue.store.db.execute("SELECT blob FROM files WHERE state=? AND path=?",
                                              (catalogue.state.id, entry.path)).fetchone()[0]
            result = results[entry.path] = catalogue.store.file_result(catalogue.tree, catalogue.rules,
                                                                       entry.path, blob)
        resource = next((r for r in result.resources if r.document == entry.document), None)
        if resource is None:
            found[entry] = []
            continue
        service = services.get(entry.service or "") if entry.kind in SERVICE_SCOPED_KINDS else None
        instance = {**resource.data, "context": _context(service)}
        produced: list[Finding] = []
        if catalogue.rules.policy_gate(entry.kind).is_valid(instance):
            found[entry] = produced
            continue
        for policy in policies:
            validator = catalogue.rules.policy_validator(policy)
            if validator.is_valid(instance):
                continue
            errors = list(validator.iter_errors(instance))
            # The validator's own message is never shown: for the secrets policy it would repeat the secret.
            produced.append(Finding(path=entry.path, line=0, column=0, pointer=_policy_pointer(policy, errors),
                                    message=policy.message, severity=policy.severity, rule=policy.id,
                                    hint=policy.hint, document=entry.document))
        found[entry] = _position(produced, result, catalogue.tree) if produced else []
    return found


def _position(findings: list[Finding], result: FileResult, tree: Tree) -> list[Finding]:
    """Fill in line and column from the parsed documents, parsing the file again if they were not kept."""
    if result.documents is None:
        result.documents = load(result.path, tree.read(result.path)).documents
    placed = []
    for f in findings:
        if f.document < len(result.documents):
            line, column = result.documents[f.document].position(f.pointer)
            f = replace(f, line=line, column=column)
        placed.append(f)
    return placed


def _services(catalogue: Catalogue, names: Iterable[str]) -> dict[str, Entry]:
    """The first definition of each named Service."""
    found = catalogue.definitions(f"Service/{n}" for n in names)
    return {identity.split("/", 1)[1]: entries[0] for identity, entries in found.items()}


# -- catalogue-wide checks, each over the subjects it is asked about ---------------------------------

def _at(path: str, line: int, column: int, pointer: str, document: int, message: str, rule: str,
        hint: str | None = None) -> Finding:
    return Finding(path=path, line=line, column=column, pointer=pointer, message=message, severity="error",
                   rule=rule, hint=hint, document=document)


def _duplicates(definitions: dict[str, list[Entry]]) -> dict[str, list[Finding]]:
    found: dict[str, list[Finding]] = {}
    for identity, entries in definitions.items():
        first = entries[0]
        for later in entries[1:]:
            found.setdefault(identity, []).append(_at(
                later.path, later.name_line, later.name_column, "/metadata/name", later.document,
                f"{identity} is already defined in {first.path} (line {first.line})",
                "catalog.unique-identity", "Each Kind/name may be requested once; rename one."))
    return found


def _dangling(catalogue: Catalogue, references: Iterable[Reference]) -> list[tuple[Reference, Finding]]:
    references = list(references)
    existing = set(catalogue.definitions({r.target for r in references}))
    found: list[tuple[Reference, Finding]] = []
    names: dict[str, list[str]] = {}
    for r in references:
        if r.target in existing:
            continue
        kind, _, name = r.target.partition("/")
        if r.relation == "owner":
            message = f"the owner {name!r} is not a Team"
            hint = suggest(name, names.setdefault(kind, catalogue.names_of(kind))) or \
                "Every resource is owned by a Team of the catalogue."
        elif r.relation == "dependsOn":
            candidates = [f"{kind}/{n}" for n in names.setdefault(kind, catalogue.names_of(kind))]
            message = f"`dependsOn` names {r.target}, which does not exist"
            hint = suggest(r.target, candidates) or "Name an existing Kind/name."
        else:
            message = f"`{field_name(r.pointer)}` names {kind} {name!r}, which does not exist"
            hint = suggest(name, names.setdefault(kind, catalogue.names_of(kind))) or \
                f"Request the {kind} first, or name an existing one."
        found.append((r, _at(r.path, r.line, r.column, r.pointer, r.document, message,
                             "catalog.owner" if r.relation == "owner" else "catalog.reference", hint)))
    return found


def _cycles(references: list[Reference]) -> list[Finding]:
    """One finding per dependency cycle, at the `dependsOn` entry that closes it."""
    edges: dict[str, list[Reference]] = {}
    for r in sorted(references, key=lambda r: (r.source, r.pointer)):
        if r.target != r.source:  # a resource naming itself is a per-file finding already
            edges.setdefault(r.source, []).append(r)
    found: list[Finding] = []
    state_of: dict[str, int] = {}  # 1: on the current path, 2: done
    for start in sorted(edges):
        if state_of.get(start):
            continue
        trail: list[str] = []
        stack: list[tuple[str, int]] = [(start, 0)]
        while stack:
            node, i = stack.pop()
            if i == 0:
                state_of[node] = 1
                trail.append(node)
            out = edges.get(node, [])
            if i < len(out):
                stack.append((node, i + 1))
                r = out[i]
                if state_of.get(r.target) == 1:
                    loop = [*trail[trail.index(r.target):], r.target]
                    found.append(_at(r.path, r.line, r.column, r.pointer, r.document,
                                     "dependency cycle: " + " → ".join(loop), "catalog.cycle",
                                     "Break the cycle: a resource cannot need itself, even indirectly."))
                elif not state_of.get(r.target):
                    stack.append((r.target, 0))
            else:
                state_of[node] = 2
                trail.pop()
    return found


def _budgets(catalogue: Catalogue, teams: Iterable[str]) -> dict[str, list[Finding]]:
    teams = set(teams)
    owned = catalogue.owned_by(teams)
    definitions = catalogue.definitions(f"Team/{t}" for t in teams)
    currency = catalogue.rules.currency
    found: dict[str, list[Finding]] = {}
    for entries in definitions.values():
        team = entries[0]
        spent = sum(e.cost for e in owned.get(team.name, []))
        if team.budget is None or spent <= team.budget:
            continue
        biggest = sorted(((e.cost, e.identity) for e in owned.get(team.name, []) if e.cost > 0),
                         key=lambda item: (-item[0], item[1]))[:3]
        found[team.name] = [_at(
            team.path, team.budget_line, team.budget_column, "/spec/budget/monthly", team.document,
            f"team {team.name} would spend {currency} {spent:,.2f}/month, over its budget of "
            f"{currency} {team.budget:,.2f}", "catalog.budget",
            "Largest items: " + ", ".join(f"{i} ({c:,.0f})" for c, i in biggest)
            + ". Raise the budget or choose smaller sizes.")]
    return found


def _store_checks(catalogue: Catalogue, fresh: dict[str, FileResult]) -> None:
    """Run every catalogue-wide check over a newly stored state and keep the results with it."""
    db, state = catalogue.store.db, catalogue.state.id
    duplicated = [i for (i,) in db.execute("SELECT identity FROM entries WHERE state=? GROUP BY identity "
                                           "HAVING COUNT(*) > 1", (state,))]
    dangling_rows = db.execute(
        f"SELECT {_REF_COLUMNS} FROM refs r WHERE state=? AND NOT EXISTS "
        "(SELECT 1 FROM entries e WHERE e.state=r.state AND e.identity=r.target)", (state,)).fetchall()
    over = [t for (t,) in db.execute(
        "WITH spent AS (SELECT owner, SUM(cost) AS total FROM entries WHERE state=? GROUP BY owner) "
        "SELECT t.name FROM entries t JOIN spent ON spent.owner=t.name WHERE t.state=? AND t.kind='Team' "
        "AND t.budget IS NOT NULL AND spent.total > t.budget", (state, state))]
    rows: list[tuple[Any, ...]] = []
    for identity, findings in _duplicates(catalogue.definitions(duplicated)).items():
        rows += [(state, "duplicate", identity, f.path, marshal.dumps(finding_to_tuple(f))) for f in findings]
    for r, f in _dangling(catalogue, (Reference(*row) for row in dangling_rows)):
        rows.append((state, "reference", r.target, r.path, marshal.dumps(finding_to_tuple(f))))
    for team, findings in _budgets(catalogue, over).items():
        rows += [(state, "budget", team, f.path, marshal.dumps(finding_to_tuple(f))) for f in findings]
    db.executemany("INSERT INTO checks VALUES (?, ?, ?, ?, ?)", rows)

    # Policies: every resource whose request is new here, or whose owning service's tier changed. The
    # context key is computed in SQL (as `_context_key` does) so unchanged rows never reach Python.
    scoped = ",".join(f"'{k}'" for k in SERVICE_SCOPED_KINDS)
    stale_rows = db.execute(
        f"SELECT rid, {_ENTRY_COLUMNS}, key FROM (SELECT e.rowid AS rid, e.*, CASE WHEN e.kind IN ({scoped}) THEN "
        "COALESCE((SELECT COALESCE(s.tier, 'None') || '|' || COALESCE(s.lifecycle, 'None') "
        "FROM entries s INDEXED BY entries_by_identity "
        "WHERE s.state=e.state AND s.identity='Service/' || e.service ORDER BY s.path, s.document LIMIT 1), '-') "
        "ELSE '-' END AS key FROM entries e WHERE e.state=?) WHERE context IS NULL OR context != key",
        (state,)).fetchall()
    if not stale_rows:
        return
    stale = [(row[0], _entry(row[1:]), row[-1]) for row in stale_rows]
    services = _services(catalogue, {e.service for _, e, _ in stale if e.service})
    evaluated = _evaluate(catalogue, (e for _, e, _ in stale), services, fresh)
    db.executemany("UPDATE entries SET context=?, policy=? WHERE rowid=?",
                   [(key, _dump(evaluated[entry]), rowid) for rowid, entry, key in stale])


def _stored_findings(catalogue: Catalogue) -> list[Finding]:
    db, state = catalogue.store.db, catalogue.state.id
    found: list[Finding] = []
    for (blob,) in db.execute("SELECT findings FROM files WHERE state=? AND findings IS NOT NULL", (state,)):
        found += _load(blob)
    for (blob,) in db.execute("SELECT policy FROM entries WHERE state=? AND policy IS NOT NULL", (state,)):
        found += _load(blob)
    found += [finding_from_tuple(marshal.loads(b)) for (b,) in db.execute(
        "SELECT finding FROM checks WHERE state=?", (state,))]
    return found + _cycles(catalogue.dependencies())


def _overlay_findings(catalogue: Catalogue) -> list[Finding]:
    """The findings of an overlay: the base's, less what the change touched, plus those checked again."""
    db, state, hidden = catalogue.store.db, catalogue.state.id, f"temp.{catalogue._hidden}"
    removed = [_entry(row) for row in db.execute(
        f"SELECT {_ENTRY_COLUMNS} FROM entries WHERE state=? AND path IN (SELECT path FROM {hidden})", (state,))]
    added = list(catalogue._added_entries())
    touched = {e.identity for e in removed} | {e.identity for e in added}
    teams = {e.owner for e in removed + added} | {e.name for e in removed + added if e.kind == "Team"}
    services = {e.name for e in removed + added if e.kind == "Service"}

    found: list[Finding] = []
    for (blob,) in db.execute(f"SELECT findings FROM files WHERE state=? AND findings IS NOT NULL AND path NOT IN "
                              f"(SELECT path FROM {hidden})", (state,)):
        found += _load(blob)
    for result in catalogue.added.values():
        found += result.findings

    kept = db.execute(f"SELECT category, subject, finding FROM checks WHERE state=? AND path NOT IN "
                      f"(SELECT path FROM {hidden})", (state,)).fetchall()
    for category, subject, blob in kept:
        stale = (category == "duplicate" and subject in touched) or (category == "reference" and subject in touched) \
            or (category == "budget" and subject in teams)
        if not stale:
            found.append(finding_from_tuple(marshal.loads(blob)))
    for findings in _duplicates({i: e for i, e in catalogue.definitions(touched).items() if len(e) > 1}).values():
        found += findings
    fresh_refs = list(catalogue._added_references())
    refs_to_touched = [r for r in catalogue.references_to(touched) if r.path not in catalogue.added]
    found += [f for _, f in _dangling(catalogue, fresh_refs + refs_to_touched)]
    for findings in _budgets(catalogue, teams).values():
        found += findings
    found += _cycles(catalogue.dependencies())

    # Policies: kept where neither the request nor its owning service changed; evaluated again otherwise.
    service_entries = _services(catalogue, services | {e.service for e in added if e.service})
    for (blob,) in db.execute(
            f"SELECT policy FROM entries WHERE state=? AND policy IS NOT NULL AND path NOT IN (SELECT path FROM "
            f"{hidden}) AND (service IS NULL OR kind NOT IN ({','.join('?' * len(SERVICE_SCOPED_KINDS))}) "
            f"OR service NOT IN ({','.join('?' * len(services))}))",
            (state, *SERVICE_SCOPED_KINDS, *sorted(services))):
        found += _load(blob)
    again: list[Entry] = list(added)
    for row in catalogue._rows(f"SELECT {_ENTRY_COLUMNS}, context, policy FROM entries WHERE state=? AND "
                               f"service IN ({{marks}}){{filter}}", services):
        entry = _entry(row)
        if entry.kind not in SERVICE_SCOPED_KINDS or _context_key(service_entries.get(entry.service or "")) == row[-2]:
            found += _load(row[-1])
        else:
            again.append(entry)
    for findings in _evaluate(catalogue, again, service_entries).values():
        found += findings
    return found
