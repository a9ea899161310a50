"""The catalogue as a whole: what no single file can tell, judged so that work follows the change.

Identities are unique, references resolve (owners are Teams, a database's service exists, ...),
`dependsOn` has no cycles, every team stays within its monthly budget, and the guardrail policies hold
(they may look at the owning service, so they belong here, not to one file).

A judged revision of `catalog/` is a *state*: rows in the catalogue index of its files, resources,
references and catalogue-wide findings. A pull request's head is not judged from scratch: it is an
*overlay* of the base's state, hiding the files that changed and adding their new versions, and only
the checks whose subjects the change touched are run again. So planning a one-file change costs about
the same on 100 resources as on 10,000, where loading every resource into Python would not.

This module decides what to store and what to ask; it reaches the index only through its port,
`CatalogueIndex` (typed questions in the catalogue's words: states, entries, references, checks,
policies). `bot.adapters.catalogue_index` keeps it in SQLite, in the data folder or in memory, and is
the one place that knows its tables; the caller builds it and hands it in.
"""

from __future__ import annotations

import hashlib
import marshal
import operator
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from typing import Any, Literal, NamedTuple, Protocol

from bot.kinds import value_at
from bot.model import Finding, Resource, Tree
from bot.rules import Policy, Rules
from bot.validate import (
    CATALOG_DIR,
    Entry,
    FileResult,
    FileResults,
    Reference,
    check_files,
    check_read,
    content_id,
    field_name,
    finding_from_tuple,
    finding_to_tuple,
    is_for,
    is_request_file,
    record_bytes,
    refused_file,
    suggest,
)
from bot.yamlio import Document, join, load


@dataclass(frozen=True, slots=True)
class State:
    """One judged revision of `catalog/` under one set of rules, stored whole."""

    id: int
    tree: str
    files: int
    resources: int


@dataclass(frozen=True, slots=True)
class Scope:
    """The rows a question to the index reads: one stored state's, less the files an overlay hides.

    `hidden` is the index's number for an overlay's hidden files (`CatalogueIndex.hide`); 0 hides none.
    """

    state: int
    hidden: int = 0


@dataclass(frozen=True, slots=True)
class Check:
    """A catalogue-wide finding stored with a state, and the subject that makes it stale when touched:
    an identity (a duplicate, a dangling reference's target) or a team (a budget)."""

    category: Literal["duplicate", "reference", "budget"]
    subject: str
    finding: Finding


class StalePolicy(NamedTuple):
    """A stored resource whose policies must be judged (again): never judged, or its service changed.

    `context` is the owning service's context now (`policy_context`); `row` is the index's own handle.
    `fields` are the resource's `Entry` fields, in order (`entry` makes the entry of them). `request` is
    the resource's data (marshal bytes) when it was judged for this state and waits there for its context
    (`JudgedFile.requests`), and `blob` its file's blob id. `belongs_to` is the tier and lifecycle of the
    resource it belongs to (its first definition), None when there is none.

    A named tuple of plain fields, as a new catalogue reads one for most of its resources at once (making
    an `Entry` and a data class of each took a third of the checks' time at 50,000 resources).
    """

    row: int
    fields: tuple[Any, ...]
    context: str
    request: bytes | None = None
    blob: str = ""
    belongs_to: tuple[str | None, str | None] | None = None

    @property
    def entry(self) -> Entry:
        return Entry(*self.fields)

    @property
    def kind(self) -> str:
        return str(self.fields[_KIND])

    @property
    def service(self) -> str | None:
        return self.fields[_SERVICE]


@dataclass(frozen=True, slots=True)
class StoredPolicy:
    """A resource's stored policy findings, and the service context (`policy_context`) they were judged in."""

    entry: Entry
    context: str | None
    findings: tuple[Finding, ...]


Record = tuple[Any, ...]
# Where the fields that the policies of a stale resource need stand among its `Entry` fields.
_KIND, _PATH, _DOCUMENT, _SERVICE = (Entry.__slots__.index(name) for name in ("kind", "path", "document", "service"))
_IDENTITY, _TIER, _LIFECYCLE = (Entry.__slots__.index(name) for name in ("identity", "tier", "lifecycle"))


class JudgedFile(NamedTuple):
    """One file judged for a new state, as plain values: cheap to hand from a judging process to the
    one that stores it (a named tuple pickles several times faster than a data class), and kept by
    nobody once stored.

    `findings`, `entries` and `references` are in record form (`finding_to_tuple`; the fields of `Entry`
    and `Reference`, in order). `policies` holds the policy findings (record form) of each document whose
    findings are known without any other file: its resource belongs to nothing, or its kind's policies
    never read what it belongs to (`Rules.reads_context`); `requests` holds the data (marshal bytes) of
    each other resource with policies, judged once the whole catalogue is stored (`PolicySubject`).
    `record` is the file's result for the results cache (`record_bytes`); None, with no policies judged,
    for a file whose result came from that cache.
    """

    path: str
    blob: str
    broken: bool
    findings: tuple[Record, ...]
    entries: tuple[Record, ...]
    references: tuple[Record, ...]
    policies: dict[int, tuple[Record, ...]]
    requests: dict[int, bytes]
    record: bytes | None


class PolicySubject(NamedTuple):
    """One request whose policies are judged once the catalogue is stored: its data (marshal bytes)
    and what its policies see of the resource it belongs to (`context`). A named tuple, as it is handed
    to another process."""

    path: str
    blob: str
    document: int
    kind: str
    request: bytes
    context: dict[str, Any]


class Judging(Protocol):
    """Where the work on each file of a new state is done: here (`LocalJudging`), or shared among
    processes (`bot.adapters.judging`). Answers come in the order of the question."""

    def listing(self, tree: Tree, prefix: str) -> dict[str, str]:
        """`tree.files(prefix)`, hashed wherever is quickest."""
    def paths(self, tree: Tree, prefix: str) -> list[str]:
        """`tree.paths(prefix)`: the files a first judgement reads, hashing as it reads (see `judge`)."""
    def judge_files(self, tree: Tree, rules: Rules, files: Sequence[tuple[str, str]],
                    records: bool = True) -> Iterator[JudgedFile]:
        """Each (path, blob id) of `files` read from `tree` and judged on its own (with its `record`
        for the results cache when `records`)."""
    def judge_policies(self, tree: Tree, rules: Rules,
                       subjects: Sequence[PolicySubject]) -> Iterator[tuple[Record, ...]]:
        """The policy findings (record form, placed in their file) of each subject."""


class CatalogueIndex(FileResults, Protocol):
    """The port to where judged files and catalogue states are kept (`bot.adapters.catalogue_index`).

    States are written whole, in a `transaction`; every question names the `Scope` it reads, so an
    overlay's answers leave out the files it hides. Lists come back in no particular order.
    """

    def transaction(self) -> AbstractContextManager[None]: ...

    # states
    def find_state(self, rules: str, tree: str) -> State | None:
        """The state of `tree` under the rules with digest `rules`, marked as just used."""
    def latest_state(self, rules: str) -> State | None: ...
    def knows(self, rules: str) -> bool:
        """Whether anything judged under the rules with digest `rules` is kept (a state, a file's result)."""
    def add_state(self, rules: str, tree: str | Callable[[], str], since: State | None, changed: Collection[str],
                  files: Iterable[JudgedFile]) -> State:
        """Store a new state: `since`'s rows but for the `changed` files, and `files`, read as they come.
        `tree` is the state's key, or what gives it once `files` are all read (a first judgement's key is
        made of what was read).

        A file's judged policies are stored as holding in any context (`ANY_CONTEXT`); its `requests`
        wait with their resources for `stale_policies`, until `set_policies`."""
    def prune(self) -> None: ...
    @property
    def keeps_records(self) -> bool:
        """Whether `add_state` keeps each judged file's record in the results cache."""
    def cached_files(self, rules: Rules, files: Iterable[tuple[str, str]]) -> dict[str, FileResult]:
        """The results kept for those of `files` (path, blob id) judged before under `rules`."""

    # files of a state
    def listing(self, state: int) -> dict[str, str]: ...
    def blobs(self, state: int, paths: Iterable[str]) -> dict[str, str]: ...
    def broken_paths(self, scope: Scope) -> set[str]: ...
    def file_findings(self, scope: Scope) -> list[Finding]: ...

    # overlays
    def hide(self, state: int, paths: Iterable[str]) -> Scope: ...
    def release(self, scope: Scope) -> None: ...
    def hidden_entries(self, scope: Scope) -> list[Entry]: ...

    # resources and references
    def definitions(self, scope: Scope, identities: Iterable[str]) -> list[Entry]: ...
    def owned_by(self, scope: Scope, teams: Iterable[str]) -> list[Entry]: ...
    def serving(self, scope: Scope, services: Iterable[str]) -> list[Entry]: ...
    def identities(self, scope: Scope) -> set[str]: ...
    def names_of(self, scope: Scope, kind: str) -> set[str]: ...
    def team_costs(self, scope: Scope) -> dict[str, float]: ...
    def references_to(self, scope: Scope, targets: Iterable[str]) -> list[Reference]: ...
    def references_from(self, scope: Scope, sources: Iterable[str]) -> list[tuple[str, str]]: ...
    def dependencies(self, scope: Scope) -> list[Reference]: ...

    # catalogue-wide checks and policies of a stored state
    def duplicated_identities(self, state: int) -> list[str]: ...
    def dangling_references(self, state: int) -> list[Reference]: ...
    def teams_over_budget(self, state: int) -> list[str]: ...
    def add_checks(self, state: int, checks: Iterable[Check]) -> None: ...
    def checks(self, scope: Scope) -> list[Check]: ...
    def stale_policies(self, state: int, parents: Mapping[str, str], batch: int = 5_000) -> Iterator[list[StalePolicy]]:
        """Resources whose policies must be judged, in the index's order, at most `batch` at a time; `parents`
        maps each kind that belongs to another (through `Entry.service`) to that kind, whose tier and
        lifecycle make the policy context. Each batch may be judged and stored (`set_policies`) before the
        next is asked for."""
    def set_policies(self, judged: Iterable[tuple[StalePolicy, list[Finding]]]) -> None: ...
    def set_new_policies(self, state: int, judged: Iterable[tuple[PolicySubject, str, tuple[Record, ...]]]) -> None:
        """Store the policy findings (record form) of requests of `state` that wait for them, each found by
        its file and document, with the context they were judged in (`policy_context`)."""
    def policy_findings(self, scope: Scope, except_services: Collection[str] = ()) -> list[Finding]: ...
    def service_policies(self, scope: Scope, services: Iterable[str]) -> list[StoredPolicy]: ...


def file_result(index: FileResults, tree: Tree, rules: Rules, path: str, blob: str) -> FileResult:
    """The judgement of one file, from the index or judged now."""
    known = index.get_file(rules, path, blob)
    if known is not None:
        return known
    [result] = check_files(tree, {path: blob}, rules, index)
    return result


@dataclass(slots=True)
class Catalogue:
    """The catalogue at one revision: a stored state, or an overlay of one.

    An overlay hides the base state's files listed in `changed` and adds `added`, the judged new
    versions of the files that still exist. Every query below answers for the revision as a whole.
    """

    index: CatalogueIndex
    rules: Rules
    state: State
    tree: Tree
    scope: Scope
    changed: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)
    added: dict[str, FileResult] = field(default_factory=dict)

    # -- where rows come from ----------------------------------------------------------------------

    @property
    def is_overlay(self) -> bool:
        return bool(self.scope.hidden)

    def _added_entries(self) -> Iterator[Entry]:
        for result in self.added.values():
            yield from result.entries

    def _added_references(self) -> Iterator[Reference]:
        for result in self.added.values():
            yield from result.references

    # -- what the checks ask -----------------------------------------------------------------------

    def definitions(self, identities: Iterable[str]) -> dict[str, list[Entry]]:
        """Every definition of each identity, in file order (the first is the one that counts)."""
        wanted = set(identities)
        found: dict[str, list[Entry]] = {}
        for entry in self.index.definitions(self.scope, wanted):
            found.setdefault(entry.identity, []).append(entry)
        for entry in self._added_entries():
            if entry.identity in wanted:
                found.setdefault(entry.identity, []).append(entry)
        for entries in found.values():
            entries.sort(key=lambda e: (e.path, e.document))
        return found

    def references_to(self, targets: Iterable[str]) -> list[Reference]:
        wanted = set(targets)
        found = self.index.references_to(self.scope, wanted)
        return found + [r for r in self._added_references() if r.target in wanted]

    def references_from(self, sources: Iterable[str]) -> dict[str, list[str]]:
        wanted = set(sources)
        found: dict[str, list[str]] = {s: [] for s in wanted}
        for source, target in self.index.references_from(self.scope, wanted):
            found[source].append(target)
        for r in self._added_references():
            if r.source in wanted:
                found[r.source].append(r.target)
        return found

    def dependencies(self) -> list[Reference]:
        found = self.index.dependencies(self.scope)
        return found + [r for r in self._added_references() if r.relation == "dependsOn"]

    def owned_by(self, teams: Iterable[str]) -> dict[str, list[Entry]]:
        found: dict[str, list[Entry]] = {}
        wanted = set(teams)
        for entry in self.index.owned_by(self.scope, wanted):
            found.setdefault(entry.owner, []).append(entry)
        for entry in self._added_entries():
            if entry.owner in wanted:
                found.setdefault(entry.owner, []).append(entry)
        return found

    def team_costs(self, teams: Iterable[str] | None = None) -> dict[str, float]:
        """Monthly cost per owning team: of `teams`, or of every team that spends anything."""
        if teams is None:
            totals = self.index.team_costs(self.scope)
            for entry in self._added_entries():
                totals[entry.owner] = totals.get(entry.owner, 0.0) + entry.cost
        else:
            totals = {team: sum(e.cost for e in entries) for team, entries in self.owned_by(teams).items()}
        return {team: total for team, total in totals.items() if total}
    def tiers(self, identities: Iterable[str]) -> dict[str, str | None]:
        """The tier of each resource: its own (a Service's), or the tier of the resource it belongs to."""
        kinds = self.rules.described
        definitions = {i: e[0] for i, e in self.definitions(identities).items()}
        parents = _parents(self, definitions.values())
        found: dict[str, str | None] = {}
        for identity, entry in definitions.items():
            parent = parents.get(kinds.parent_of(entry.kind, entry.service) or "")
            if kinds[entry.kind].tier is not None:
                found[identity] = entry.tier
            elif parent is not None:
                found[identity] = parent.tier
            else:
                found[identity] = None
        return found

    def people(self, teams: Iterable[str]) -> dict[str, tuple[str, ...]]:
        """Members and maintainers of each named team (the fields its kind's description names)."""
        kind = self.rules.described.team
        if kind is None:
            return {}
        pointers = self.rules.describe(kind).people
        found: dict[str, tuple[str, ...]] = {}
        for identity, resource in self.resources(f"{kind}/{t}" for t in teams).items():
            logins = [p for pointer in pointers for p in value_at(resource.data, pointer) or [] if isinstance(p, str)]
            found[identity.split("/", 1)[1]] = tuple(sorted(set(logins)))
        return found

    def teams(self) -> list[str]:
        """Every team's name."""
        kind = self.rules.described.team
        return self.names_of(kind) if kind is not None else []

    def serving(self, services: Iterable[str], kind: str) -> dict[str, list[Entry]]:
        """The resources of `kind` that belong to each of `services` (the reference marked `belongsTo`)."""
        wanted = set(services)
        found: dict[str, list[Entry]] = {}
        for entry in self.index.serving(self.scope, wanted):
            if entry.kind == kind:
                found.setdefault(entry.service or "", []).append(entry)
        for entry in self._added_entries():
            if entry.kind == kind and entry.service in wanted:
                found.setdefault(entry.service or "", []).append(entry)
        return found

    def followed(self, services: Iterable[str]) -> dict[str, tuple[str, ...]]:
        """The names handed to followers (a Database's deployment environments: each Environment's
        `spec.name`) of the followed resources belonging to each of `services`."""
        services = list(services)
        found: dict[str, set[str]] = {}
        for kind, name in self.rules.described.followed().items():
            serving = self.serving(services, kind)
            requests = self.resources(e.identity for entries in serving.values() for e in entries)
            for service, entries in serving.items():
                found.setdefault(service, set()).update(
                    str(value_at(requests[e.identity].data, name)) for e in entries if e.identity in requests)
        return {service: tuple(sorted(names)) for service, names in found.items()}

    def identities(self) -> list[str]:
        """Every resource at this revision, by identity."""
        found = self.index.identities(self.scope)
        return sorted(found | {e.identity for e in self._added_entries()})

    def names_of(self, kind: str) -> list[str]:
        """Every name of one kind (only asked for when a reference dangles, to suggest a fix)."""
        found = self.index.names_of(self.scope, kind)
        return sorted(found | {e.name for e in self._added_entries() if e.kind == kind})

    # -- the revision as a whole -------------------------------------------------------------------

    @property
    def file_count(self) -> int:
        return self.state.files + sum(1 for old, new in self.changed.values() if old is None and new is not None) \
            - sum(1 for old, new in self.changed.values() if old is not None and new is None)

    def broken_paths(self) -> set[str]:
        found = self.index.broken_paths(self.scope)
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
                blob = self.index.blobs(self.state.id, [path])[path]
                result = file_result(self.index, self.tree, self.rules, path, blob)
            for resource in result.resources:
                first = wanted[resource.identity][0] if resource.identity in identities_here else None
                if first is not None and resource.document == first.document and resource.identity not in found:
                    found[resource.identity] = resource
        return found

    def findings(self) -> list[Finding]:
        """Every finding at this revision: per file, catalogue-wide and policies, in file order."""
        found = _overlay_findings(self) if self.is_overlay else _stored_findings(self)
        found.sort(key=Finding.sort_key)
        return found

    def close(self) -> None:
        """Let the index forget what an overlay hides (a stored state holds nothing to forget)."""
        if self.is_overlay:
            self.index.release(self.scope)
            self.scope = Scope(self.state.id)


# -- building states and overlays ------------------------------------------------------------------

TreeKey = tuple[str, dict[str, str] | None]


class ListingKey:
    """The key of a tree without git's tree ids (a working tree): a digest of its request files' paths
    and blob ids, added in path order."""

    def __init__(self) -> None:
        self._digest = hashlib.sha1(usedforsecurity=False)

    def add(self, path: str, blob: str) -> None:
        self._digest.update(f"{path}\0{blob}\n".encode("utf-8", "surrogateescape"))

    def __call__(self) -> str:
        return "listing:" + self._digest.hexdigest()


def tree_key(tree: Tree, judging: Judging | None = None) -> TreeKey:
    """A key for the contents of `catalog/` at `tree` (git's tree id, or a digest of the listing), and
    the listing when it took one."""
    tree_id = tree.tree_id(CATALOG_DIR)
    if tree_id is not None:
        return tree_id, None
    files = judging.listing(tree, CATALOG_DIR) if judging is not None else tree.files(CATALOG_DIR)
    listing = {p: b for p, b in files.items() if is_request_file(p)}
    key = ListingKey()
    for path in sorted(listing):
        key.add(path, listing[path])
    return key(), listing


def first_judgement(tree: Tree, rules: str, index: CatalogueIndex) -> bool:
    """Whether judging `tree` under the rules with digest `rules` can skip its key until its files are
    read: a working tree (whose key needs every file's bytes) when the index keeps nothing under those
    rules (`--no-cache`, a first run, new rules), so no state could be found by the key and no result
    reused by blob id. Reading each file once, hashing as it is judged, then saves a pass over them all."""
    return tree.tree_id(CATALOG_DIR) is None and not index.knows(rules)


def _changes(index: CatalogueIndex, since: State, tree: Tree,
             listing: dict[str, str] | None) -> dict[str, tuple[str | None, str | None]]:
    """Request files that differ between a stored state and `tree`: path -> (blob before, blob after)."""
    diff = tree.diff(since.tree, CATALOG_DIR) if listing is None else None
    before = None
    if diff is None:
        current = listing if listing is not None else {
            p: b for p, b in tree.files(CATALOG_DIR).items() if is_request_file(p)}
        before = index.listing(since.id)
        diff = {p: b for p, b in current.items() if before.get(p) != b}
        diff.update({p: None for p in before if p not in current})
    diff = {p: b for p, b in diff.items() if is_request_file(p)}
    olds: dict[str, str] = before if before is not None else {}
    if before is None:
        olds = index.blobs(since.id, diff)
    return {p: (olds.get(p), b) for p, b in diff.items() if olds.get(p) != b}


def judge(tree: Tree, rules: Rules, index: CatalogueIndex, judging: Judging | None = None,
          known_key: TreeKey | None = None) -> Catalogue:
    """The catalogue at `tree`, stored whole: found in `index`, or derived from the most recently used
    state by judging only the files that differ, or built from scratch (`known_key`: its `tree_key`,
    when the caller has it already).

    Files stream through `judging` (here by default) into the index, which keeps every row: nothing
    judged is held here once stored."""
    judging = judging or LocalJudging()
    if known_key is None and first_judgement(tree, rules.digest, index):
        with index.transaction():
            # Another process may have judged under these rules while this one waited for the write lock.
            if not index.knows(rules.digest):
                return _judge_first(tree, rules, index, judging)
    key, listing = known_key or tree_key(tree, judging)
    known = index.find_state(rules.digest, key)
    if known is not None:
        return Catalogue(index, rules, known, tree, Scope(known.id))
    with index.transaction():
        # Another process may have stored this state while this one waited for the write lock.
        known = index.find_state(rules.digest, key)
        if known is not None:
            return Catalogue(index, rules, known, tree, Scope(known.id))
        like = index.latest_state(rules.digest)
        changes = _changes(index, like, tree, listing) if like is not None else {
            p: (None, b) for p, b in (listing or judging.listing(tree, CATALOG_DIR)).items() if is_request_file(p)}
        fresh = sorted((p, new) for p, (_, new) in changes.items() if new is not None)
        state = index.add_state(rules.digest, key, like, changes.keys(), _judged(tree, rules, index, judging, fresh))
        catalogue = Catalogue(index, rules, state, tree, Scope(state.id))
        _store_checks(catalogue, judging)
        index.prune()
    return catalogue


def _judge_first(tree: Tree, rules: Rules, index: CatalogueIndex, judging: Judging) -> Catalogue:
    """`judge` when `first_judgement` holds, in its transaction: every request file is read once, judged,
    and hashed as it is read (listed with blob ""), and the key is made from what was read. The requests
    that wait for the whole catalogue are noted on their way to the index (`WaitingRequests`) and judged
    from there once it is stored: reading them back took most of the catalogue-wide stretch."""
    paths = sorted(p for p in judging.paths(tree, CATALOG_DIR) if is_request_file(p))
    key = ListingKey()

    def keyed(judged: Iterator[JudgedFile]) -> Iterator[JudgedFile]:
        for one in judged:  # in path order, as `tree_key` adds them
            key.add(one.path, one.blob)
            yield one

    files = judging.judge_files(tree, rules, [(p, "") for p in paths], index.keeps_records)
    waiting = WaitingRequests(rules)
    state = index.add_state(rules.digest, key, None, paths, waiting.noted(keyed(files)))
    catalogue = Catalogue(index, rules, state, tree, Scope(state.id))
    _store_new_checks(catalogue, judging, waiting)
    index.prune()
    return catalogue


def _judged(tree: Tree, rules: Rules, index: CatalogueIndex, judging: Judging,
            fresh: list[tuple[str, str]]) -> Iterator[JudgedFile]:
    """Each of `fresh` (path, blob id) taken from the results cache, or judged."""
    cached = index.cached_files(rules, fresh)
    for path, _ in fresh:
        if path in cached:
            yield without_policies(cached[path])
    yield from judging.judge_files(tree, rules, [(p, b) for p, b in fresh if p not in cached], index.keeps_records)


def overlay(base: Catalogue, tree: Tree) -> Catalogue:
    """The catalogue at `tree` as the stored `base` plus what changed: nothing is stored."""
    _, listing = tree_key(tree)
    changed = _changes(base.index, base.state, tree, listing)
    scope = base.index.hide(base.state.id, changed)
    fresh = {p: new for p, (_, new) in changed.items() if new is not None}
    added = {r.path: r for r in check_files(tree, fresh, base.rules, base.index)}
    return Catalogue(base.index, base.rules, base.state, tree, scope, changed, added)


# -- policies --------------------------------------------------------------------------------------

def _context(parent: Entry | None) -> dict[str, Any]:
    """What a policy sees of the resource a request belongs to, under its kind's name (`context.service`)."""
    if parent is None:
        return {}
    return _belonging(parent.kind, parent.name, parent.tier, parent.lifecycle)


# The stored context of policy findings that hold in any context: judged with their file, as the resource
# belongs to nothing or its kind's policies never read what it belongs to.
ANY_CONTEXT = "*"


def policy_context(parent: Entry | None) -> str:
    """The context policy findings are stored with, to tell when they must be judged again: what they
    read of the resource their request belongs to ("-": nothing; `ANY_CONTEXT` for findings that hold in any)."""
    return context_key(None if parent is None else (parent.tier, parent.lifecycle))


def context_key(belongs_to: tuple[str | None, str | None] | None) -> str:
    """`policy_context` of what a request belongs to, known by its tier and lifecycle (None: nothing)."""
    return "-" if belongs_to is None else f"{belongs_to[0]}|{belongs_to[1]}"


def _belonging(parent_kind: str, name: str, tier: str | None, lifecycle: str | None) -> dict[str, Any]:
    """`_context` of a resource known by its kind, name, tier and lifecycle (a stored row's, not an `Entry`)."""
    return {parent_kind.lower(): {"name": name, "tier": tier, "lifecycle": lifecycle}}


def _policy_pointer(policy: Policy, errors: list[Any]) -> str:
    if policy.pointer:
        return policy.pointer
    deepest = max(errors, key=lambda e: len(e.instance_path))
    return "".join(join("", t) for t in deepest.instance_path)


def request_policies(rules: Rules, kind: str, path: str, document: int, data: Any,
                     context: dict[str, Any]) -> list[Finding]:
    """The policy findings of one request, which sees `context` of what it belongs to (`_context`);
    their lines and columns are left for `place`."""
    policies = rules.policies_for(kind)
    if not policies:
        return []
    instance = {**data, "context": context}
    if rules.policy_gate(kind).is_valid(instance):
        return []
    produced: list[Finding] = []
    for policy in policies:
        validator = rules.policy_validator(policy)
        if validator.is_valid(instance):
            continue
        errors = list(validator.iter_errors(instance))
        # The validator's own message is never shown: for the secrets policy it would repeat the secret.
        produced.append(Finding(path=path, line=0, column=0, pointer=_policy_pointer(policy, errors),
                                message=policy.message, severity=policy.severity, rule=policy.id,
                                hint=policy.hint, document=document))
    return produced


def place(findings: list[Finding], documents: Sequence[Document]) -> list[Finding]:
    """Each finding with the line and column of its pointer in its file's parsed `documents`."""
    placed = []
    for f in findings:
        if f.document < len(documents):
            line, column = documents[f.document].position(f.pointer)
            f = replace(f, line=line, column=column)
        placed.append(f)
    return placed


def _evaluate(catalogue: Catalogue, entries: Iterable[Entry], parents: dict[str, Entry]) -> dict[Entry, list[Finding]]:
    """Policy findings of each entry, with its owning service as context, positioned in its file."""
    found: dict[Entry, list[Finding]] = {}
    results: dict[str, FileResult] = dict(catalogue.added)
    for entry in entries:
        if not catalogue.rules.policies_for(entry.kind):
            found[entry] = []
            continue
        result = results.get(entry.path)
        if result is None:
            blob = catalogue.index.blobs(catalogue.state.id, [entry.path])[entry.path]
            result = results[entry.path] = file_result(catalogue.index, catalogue.tree, catalogue.rules,
                                                       entry.path, blob)
        resource = next((r for r in result.resources if r.document == entry.document), None)
        if resource is None:
            found[entry] = []
            continue
        parent = parents.get(catalogue.rules.described.parent_of(entry.kind, entry.service) or "")
        produced = request_policies(catalogue.rules, entry.kind, entry.path, entry.document, resource.data,
                                    _context(parent))
        found[entry] = _position(produced, result, catalogue.tree) if produced else []
    return found


def _position(findings: list[Finding], result: FileResult, tree: Tree) -> list[Finding]:
    """Fill in line and column from the parsed documents, parsing the file again if they were not kept."""
    if result.documents is None:
        result.documents = load(result.path, tree.read(result.path)).documents
    return place(findings, result.documents)


# -- judging each file of a new state, here or in another process ------------------------------------

_ENTRY_FIELDS = operator.attrgetter(*Entry.__slots__)
_REFERENCE_FIELDS = operator.attrgetter(*Reference.__slots__)


def judged_file(result: FileResult, rules: Rules, record: bool = True) -> JudgedFile:
    """A file just judged, its documents at hand, in the form a new state stores (`JudgedFile`), with
    its record for the results cache if `record`."""
    kinds = rules.described
    data = {r.document: r.data for r in result.resources}
    policies: dict[int, tuple[Record, ...]] = {}
    requests: dict[int, bytes] = {}
    for entry in result.entries:
        if kinds.parent_of(entry.kind, entry.service) is None or not rules.reads_context(entry.kind):
            found = request_policies(rules, entry.kind, entry.path, entry.document, data[entry.document], {})
            policies[entry.document] = tuple(finding_to_tuple(f) for f in place(found, result.documents or []))
        elif rules.policies_for(entry.kind):
            requests[entry.document] = marshal.dumps(data[entry.document])
    return JudgedFile(
        result.path, result.blob, result.broken, tuple(finding_to_tuple(f) for f in result.findings),
        tuple(map(_ENTRY_FIELDS, result.entries)), tuple(map(_REFERENCE_FIELDS, result.references)),
        policies, requests, record_bytes(result) if record and is_for(result, result.path, result.blob) else None)


def without_policies(result: FileResult) -> JudgedFile:
    """`result` as a new state stores it, all its policies left to be judged with the whole catalogue (a
    result from the results cache, whose documents are not at hand)."""
    return JudgedFile(result.path, result.blob, result.broken, tuple(finding_to_tuple(f) for f in result.findings),
                      tuple(map(_ENTRY_FIELDS, result.entries)), tuple(map(_REFERENCE_FIELDS, result.references)),
                      {}, {}, None)


Reader = Callable[[Sequence[tuple[str, str]]], Mapping[str, bytes]]


def judge_read(files: Sequence[tuple[str, str]], read: Reader, rules: Rules, label: str,
               records: bool = True) -> list[JudgedFile]:
    """Each of `files` (path, blob id) judged from the bytes `read` gives for it (path -> bytes), in order,
    with their records for the results cache if `records`.

    A file whose name Paved refuses is not judged (its bytes are read only for their id, when the file is
    listed without one: blob ""); one that `read` does not find is left out; bytes that are not the blob
    named raise `ObjectMismatchError`, as in `check_files`."""
    refused = {p: r for p, b in files if (r := refused_file(p, b)) is not None}
    contents = read([(p, b) for p, b in files if p not in refused or not b])
    judged: list[JudgedFile] = []
    for path, blob in files:
        raw = contents.get(path)
        result = refused.get(path)
        if result is None:
            if raw is None:
                continue
            result = check_read(path, blob, raw, rules, label)
        elif raw is not None and not blob:
            result = replace(result, blob=content_id(raw, blob))
        judged.append(judged_file(result, rules, records))
    return judged


def judge_subjects(subjects: Sequence[PolicySubject], rules: Rules,
                   documents: Callable[[str, str], Sequence[Document]]) -> list[tuple[Record, ...]]:
    """The policy findings of each subject, placed in the documents of its file (path, blob id), which
    are read again only when a policy fails."""
    judged: list[tuple[Record, ...]] = []
    for subject in subjects:
        found = request_policies(rules, subject.kind, subject.path, subject.document,
                                 marshal.loads(subject.request), subject.context)
        if found:
            found = place(found, documents(subject.path, subject.blob))
        judged.append(tuple(finding_to_tuple(f) for f in found))
    return judged


# Files read at once when judging in this process: enough for one round trip to git to pay, few enough
# that their bytes never add up to much.
FILES_PER_READ = 256


class LocalJudging:
    """Judging in this process, a few hundred files at a time."""

    def listing(self, tree: Tree, prefix: str) -> dict[str, str]:
        return tree.files(prefix)

    def paths(self, tree: Tree, prefix: str) -> list[str]:
        return tree.paths(prefix)

    def judge_files(self, tree: Tree, rules: Rules, files: Sequence[tuple[str, str]],
                    records: bool = True) -> Iterator[JudgedFile]:
        def read(wanted: Sequence[tuple[str, str]]) -> Mapping[str, bytes]:
            return tree.read_many(p for p, _ in wanted)

        for start in range(0, len(files), FILES_PER_READ):
            yield from judge_read(files[start:start + FILES_PER_READ], read, rules, tree.label, records)

    def judge_policies(self, tree: Tree, rules: Rules,
                       subjects: Sequence[PolicySubject]) -> Iterator[tuple[Record, ...]]:
        def documents(path: str, blob: str) -> Sequence[Document]:
            return load(path, tree.read(path)).documents

        yield from judge_subjects(subjects, rules, documents)


def _parents(catalogue: Catalogue, entries: Iterable[Entry]) -> dict[str, Entry]:
    """The first definition of the resource each of `entries` belongs to, by identity."""
    kinds = catalogue.rules.described
    wanted = {kinds.parent_of(e.kind, e.service) for e in entries} - {None}
    found = catalogue.definitions(i for i in wanted if i is not None)
    return {identity: definitions[0] for identity, definitions in found.items()}


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
            message = f"the owner {name!r} is not a {kind}"
            hint = suggest(name, names.setdefault(kind, catalogue.names_of(kind))) or \
                f"Every resource is owned by a {kind} of the catalogue."
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
    kind = catalogue.rules.described.team
    if kind is None:
        return {}
    at_budget = catalogue.rules.describe(kind).budget or ""
    teams = set(teams)
    owned = catalogue.owned_by(teams)
    definitions = catalogue.definitions(f"{kind}/{t}" for t in teams)
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
            team.path, team.budget_line, team.budget_column, at_budget, team.document,
            f"team {team.name} would spend {currency} {spent:,.2f}/month, over its budget of "
            f"{currency} {team.budget:,.2f}", "catalog.budget",
            "Largest items: " + ", ".join(f"{i} ({c:,.0f})" for c, i in biggest)
            + ". Raise the budget or choose smaller sizes.")]
    return found


# Stale policies taken from the index at once: the requests and entries of so many are all that is held.
POLICIES_AT_ONCE = 5_000


class WaitingRequests:
    """The requests of a catalogue judged from scratch whose policies wait for what they belong to, noted
    as their files are stored, with the first definition of every resource a request may belong to.

    Files are stored in path order, so the first definition seen of a service is its first in the
    catalogue (`Catalogue.definitions`' order), whichever file comes first. Once every file is stored,
    the requests are judged from here: the index is not read back for them, nor asked which are stale (a
    state judged from scratch has no other requests waiting), and does not keep them meanwhile. What is
    held is each waiting request's data (marshal bytes) and where it stands, and one context per service:
    about 0.7 KB a request (bench/README.md).
    """

    def __init__(self, rules: Rules) -> None:
        self._parents = rules.described.parents()
        self._parent_kinds = frozenset(self._parents.values())
        # identity -> (tier, lifecycle) of its first definition; a few distinct pairs, shared.
        self._first: dict[str, tuple[str | None, str | None]] = {}
        self._pairs: dict[tuple[str | None, str | None], tuple[str | None, str | None]] = {}
        # path, blob, document, kind, request (marshal bytes), name of what it belongs to
        self._requests: list[tuple[str, str, int, str, bytes, str]] = []

    def noted(self, files: Iterable[JudgedFile]) -> Iterator[JudgedFile]:
        """`files` as they come (in path order), each noted on its way to the index."""
        first, pairs, parent_kinds = self._first, self._pairs, self._parent_kinds
        kinds: dict[str, str] = {}
        for one in files:
            for entry in one.entries:
                if entry[_KIND] in parent_kinds and entry[_IDENTITY] not in first:
                    pair = (entry[_TIER], entry[_LIFECYCLE])
                    first[entry[_IDENTITY]] = pairs.setdefault(pair, pair)
            if one.requests:
                for entry in one.entries:
                    request = one.requests.get(entry[_DOCUMENT])
                    if request is not None:
                        kind = kinds.setdefault(entry[_KIND], entry[_KIND])  # one string a kind
                        self._requests.append((one.path, one.blob, entry[_DOCUMENT], kind, request, entry[_SERVICE]))
                one = one._replace(requests={})  # held here: the index need not keep them too
            yield one

    def subjects(self, at_once: int) -> Iterator[list[tuple[PolicySubject, str]]]:
        """The noted requests, `at_once` at a time, each with its policy context and the key it is stored
        with (`policy_context`); each batch is no longer held here once handed out."""
        requests, self._requests = self._requests, []
        contexts: dict[tuple[str, str], tuple[dict[str, Any], str]] = {}  # by kind and service: only read
        while requests:
            batch: list[tuple[PolicySubject, str]] = []
            for path, blob, document, kind, request, service in requests[:at_once]:
                made = contexts.get((kind, service))
                if made is None:
                    parent = self._parents[kind]
                    belongs_to = self._first.get(f"{parent}/{service}")
                    made = contexts[kind, service] = ({}, "-") if belongs_to is None else (
                        _belonging(parent, service, *belongs_to), context_key(belongs_to))
                batch.append((PolicySubject(path, blob, document, kind, request, made[0]), made[1]))
            del requests[:at_once]
            yield batch


def _store_checks(catalogue: Catalogue, judging: Judging) -> None:
    """Run every catalogue-wide check over a newly stored state and keep the results with it."""
    index, state = catalogue.index, catalogue.state.id
    # Policies: every resource whose request is new here, or whose owning service's tier changed (the
    # index compares the contexts; findings that hold in any context are never read).
    parents = catalogue.rules.described.parents()
    batches = index.stale_policies(state, parents, POLICIES_AT_ONCE)
    stale = next(batches, [])
    unchecked = True
    while stale or unchecked:
        waiting = [s for s in stale if s.request is not None]
        contexts: dict[tuple[str, str], dict[str, Any]] = {}  # of this batch only: the rest is not held
        subjects = [PolicySubject(s.fields[_PATH], s.blob, s.fields[_DOCUMENT], s.kind, s.request or b"",
                                  _stale_context(parents, s, contexts)) for s in waiting]
        judged = judging.judge_policies(catalogue.tree, catalogue.rules, subjects)
        if unchecked:
            # The identities, references and budgets are checked while the first requests are judged (by
            # workers, when there are any).
            index.add_checks(state, _checks(catalogue))
            unchecked = False
        # The next ones are read while these are judged.
        following = next(batches, [])
        index.set_policies((one, [finding_from_tuple(f) for f in found])
                           for one, found in zip(waiting, judged, strict=True))
        # Those judged before in another context (their service changed), or taken from the results cache.
        others = [s.entry for s in stale if s.request is None]
        if others:
            evaluated = _evaluate(catalogue, others, _parents(catalogue, others))
            index.set_policies((one, evaluated[one.entry]) for one in stale if one.request is None)
        stale = following


def _store_new_checks(catalogue: Catalogue, judging: Judging, noted: WaitingRequests) -> None:
    """`_store_checks` for a state judged from scratch: its waiting requests are judged from `noted`, and
    the identities, references and budgets are checked while the first of them are judged (by workers,
    when there are any). Each batch is handed out before the answers for the one before are stored, so
    workers never wait for this process."""
    index, state, tree, rules = catalogue.index, catalogue.state.id, catalogue.tree, catalogue.rules

    def handed_out(batch: list[tuple[PolicySubject, str]]) -> Iterator[tuple[PolicySubject, str, tuple[Record, ...]]]:
        judged = judging.judge_policies(tree, rules, [subject for subject, _ in batch])
        return ((subject, key, found) for (subject, key), found in zip(batch, judged, strict=True))

    batches = noted.subjects(POLICIES_AT_ONCE)
    current = handed_out(next(batches, []))
    index.add_checks(state, _checks(catalogue))
    for batch in batches:
        following = handed_out(batch)
        index.set_new_policies(state, current)
        current = following
    index.set_new_policies(state, current)


def _checks(catalogue: Catalogue) -> list[Check]:
    """The identities defined twice, the references to nothing and the teams over budget of a stored state."""
    index, state = catalogue.index, catalogue.state.id
    checks: list[Check] = []
    for identity, findings in _duplicates(catalogue.definitions(index.duplicated_identities(state))).items():
        checks += [Check("duplicate", identity, f) for f in findings]
    for r, f in _dangling(catalogue, index.dangling_references(state)):
        checks.append(Check("reference", r.target, f))
    for team, findings in _budgets(catalogue, index.teams_over_budget(state)).items():
        checks += [Check("budget", team, f) for f in findings]
    return checks


def _stale_context(parents: Mapping[str, str], stale: StalePolicy,
                   made: dict[tuple[str, str], dict[str, Any]]) -> dict[str, Any]:
    """What the policies of a stale resource see of the resource it belongs to (as `_context` says);
    `parents` maps each kind that belongs to another to that kind (`Kinds.parents`). The requests of one
    service share one context (`made`, by kind and service), which is only read."""
    fields = stale.fields
    kind, service = fields[_KIND], fields[_SERVICE]
    if stale.belongs_to is None or not service or kind not in parents:
        return {}
    context = made.get((kind, service))
    if context is None:
        context = made[kind, service] = _belonging(parents[kind], service, *stale.belongs_to)
    return context


def _stored_findings(catalogue: Catalogue) -> list[Finding]:
    return stored_findings(catalogue.index, catalogue.scope)


def stored_findings(index: CatalogueIndex, scope: Scope) -> list[Finding]:
    """Every finding of a stored state, as stored (and its dependency cycles), in no particular order."""
    found = index.file_findings(scope) + index.policy_findings(scope)
    found += [check.finding for check in index.checks(scope)]
    return found + _cycles(index.dependencies(scope))


def _overlay_findings(catalogue: Catalogue) -> list[Finding]:
    """The findings of an overlay: the base's, less what the change touched, plus those checked again."""
    index, scope = catalogue.index, catalogue.scope
    removed = index.hidden_entries(scope)
    added = list(catalogue._added_entries())
    touched = {e.identity for e in removed} | {e.identity for e in added}
    kinds = catalogue.rules.described
    teams = {e.owner for e in removed + added} | {e.name for e in removed + added if e.kind == kinds.team}
    parent_kinds = kinds.parent_kinds()
    services = {e.name for e in removed + added if e.kind in parent_kinds}

    found: list[Finding] = index.file_findings(scope)
    for result in catalogue.added.values():
        found += result.findings

    for check in index.checks(scope):
        stale = check.subject in (teams if check.category == "budget" else touched)
        if not stale:
            found.append(check.finding)
    for findings in _duplicates({i: e for i, e in catalogue.definitions(touched).items() if len(e) > 1}).values():
        found += findings
    fresh_refs = list(catalogue._added_references())
    refs_to_touched = [r for r in catalogue.references_to(touched) if r.path not in catalogue.added]
    found += [f for _, f in _dangling(catalogue, fresh_refs + refs_to_touched)]
    for findings in _budgets(catalogue, teams).values():
        found += findings
    found += _cycles(catalogue.dependencies())

    # Policies: kept where neither the request nor what it belongs to changed; evaluated again otherwise.
    stored_policies = index.service_policies(scope, services)
    parents = _parents(catalogue, [*added, *(stored.entry for stored in stored_policies)])
    found += index.policy_findings(scope, except_services=services)
    again: list[Entry] = list(added)
    for stored in stored_policies:
        entry = stored.entry
        parent = kinds.parent_of(entry.kind, entry.service)
        if parent is None or stored.context in (ANY_CONTEXT, policy_context(parents.get(parent))):
            found += stored.findings
        else:
            again.append(entry)
    for findings in _evaluate(catalogue, again, parents).values():
        found += findings
    return found
