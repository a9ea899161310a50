"""The values Paved's core passes around: requests, findings, changes and plans.

Everything here is a frozen dataclass over plain data (stdlib only), so the same objects flow
unchanged from validation and planning to every surface that renders them: the terminal, a PR
comment, a check run's annotations, GitHub Actions workflow commands and JSON.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

Severity = Literal["error", "warning", "notice"]
SEVERITIES: tuple[Severity, ...] = ("error", "warning", "notice")

API_VERSION = "paved/v1"


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem found in the platform repo, positioned as precisely as the input allows.

    `line` and `column` are 1-based and point at the offending node itself (the misspelled key, the
    bad value); 0 means the finding is about the file as a whole. `pointer` is the RFC 6901 JSON
    pointer of the node inside its YAML document ("" for the document itself). `rule` names what was
    broken: a policy id, `schema`, `yaml`, or a `catalog.*` cross-file check.
    """

    path: str
    line: int
    column: int
    pointer: str
    message: str
    severity: Severity
    rule: str
    hint: str | None = None
    document: int = 0

    @property
    def location(self) -> str:
        """`path:line:column`, as editors and terminals link it."""
        if self.line <= 0:
            return self.path
        if self.column <= 0:
            return f"{self.path}:{self.line}"
        return f"{self.path}:{self.line}:{self.column}"

    def sort_key(self) -> tuple[str, int, int, str, str]:
        return (self.path, self.line, self.column, self.rule, self.message)


@dataclass(frozen=True, slots=True)
class Resource:
    """One request document (`apiVersion: paved/v1`) that passed enough checks to have an identity."""

    kind: str
    name: str
    owner: str
    path: str
    document: int
    line: int
    data: dict[str, Any] = field(compare=False, repr=False)

    @property
    def identity(self) -> str:
        return f"{self.kind}/{self.name}"

    @property
    def spec(self) -> dict[str, Any]:
        spec = self.data.get("spec")
        return spec if isinstance(spec, dict) else {}

    @property
    def metadata(self) -> dict[str, Any]:
        metadata = self.data.get("metadata")
        return metadata if isinstance(metadata, dict) else {}


FieldOp = Literal["add", "remove", "replace"]


@dataclass(frozen=True, slots=True)
class FieldChange:
    """A single leaf that differs between two versions of a request.

    `pointer` is an RFC 6901 JSON pointer into the request; `before`/`after` are JSON values.
    """

    pointer: str
    op: FieldOp
    before: Any = None
    after: Any = None


Action = Literal["create", "update", "delete", "rename"]
ACTIONS: tuple[Action, ...] = ("create", "update", "rename", "delete")


@dataclass(frozen=True, slots=True)
class Change:
    """What will happen to one resource when the pull request merges.

    For a deletion, `path` and `line` refer to the base revision (the file is gone at the head).
    """

    action: Action
    kind: str
    name: str
    owner: str
    path: str
    line: int
    fields: tuple[FieldChange, ...] = ()
    previous_name: str | None = None
    previous_path: str | None = None
    monthly_cost_before: float = 0.0
    monthly_cost_after: float = 0.0
    depends_on: tuple[str, ...] = ()
    tier: str | None = None

    @property
    def identity(self) -> str:
        return f"{self.kind}/{self.name}"

    @property
    def previous_identity(self) -> str:
        """The resource's identity at the base: its former name's, when the change renames it."""
        return f"{self.kind}/{self.previous_name or self.name}"

    @property
    def destructive(self) -> bool:
        return self.action == "delete"

    @property
    def cost_delta(self) -> float:
        return self.monthly_cost_after - self.monthly_cost_before


@dataclass(frozen=True, slots=True)
class TeamCost:
    """A team's monthly cost before and after the change, against its budget (None: no budget set)."""

    team: str
    before: float
    after: float
    budget: float | None = None

    @property
    def delta(self) -> float:
        return self.after - self.before

    @property
    def over_budget(self) -> bool:
        return self.budget is not None and self.after > self.budget


RuleChangeStatus = Literal["added", "modified", "deleted"]


@dataclass(frozen=True, slots=True)
class RuleChange:
    """A file of the platform's own rules or settings that the pull request changes (`schemas/`,
    `templates/`, `paved.yaml`, `.github/`, CODEOWNERS): a platform change.

    Such changes do not judge the pull request that makes them; they apply from the merge on, and the
    platform owners approve them.
    """

    path: str
    status: RuleChangeStatus


@dataclass(frozen=True, slots=True)
class Keeping:
    """Where a provider would keep the data of a kind that keeps data (`keepsData`) when its settings name
    no lasting home for it: refused before merge in a job whose machine is thrown away (GitHub Actions).

    `needs` says what is missing ("a database server"), `pointer` is the field of a request that chooses
    where its data lives (the finding points there), and `hint` says how to name a lasting home.
    """

    needs: str
    pointer: str
    hint: str


UpgradeReason = Literal["template", "answers"]
UpgradeHeld = Literal["", "manual", "pinned"]


@dataclass(frozen=True, slots=True)
class Upgrade:
    """A scaffolded project whose golden path moves when the plan is applied: its template changed
    (`template`), or its request changed what the template is rendered with (`answers`).

    `held` says why Paved opens no upgrade pull request for it: `manual` (the request opted out with
    `updates: manual`) or `pinned` (it stays on the template at its pinned commit); "" when it gets one.
    """

    identity: str
    template: str
    reason: UpgradeReason
    held: UpgradeHeld = ""


@dataclass(frozen=True, slots=True)
class Plan:
    """Everything the core says about moving the catalogue from `base` to `head`.

    `changes` excludes deletions and is ordered so that a resource comes after what it depends on;
    `deletions` are kept apart because they are destructive, ordered dependents first. `followed`
    holds, for each parent a change belongs to, the names its followed resources hand to followers (the
    kinds' `follows`: a service's deployment environments, where its databases' credentials go).
    `refresh` lists unchanged resources that apply again because something they serve changed (a
    database when its service gains an environment).
    `platform_impact` says, a sentence per area, what the rule changes affect.
    `upgrades` lists the scaffolded projects whose golden path moves (a template changed, or a request
    changed its answers), each getting an upgrade pull request after the apply unless it is held back.
    """

    base: str
    head: str
    changes: tuple[Change, ...]
    deletions: tuple[Change, ...]
    unchanged: int
    costs: tuple[TeamCost, ...]
    findings: tuple[Finding, ...]
    rule_changes: tuple[RuleChange, ...] = ()
    files_checked: int = 0
    followed: tuple[tuple[str, tuple[str, ...]], ...] = ()
    refresh: tuple[str, ...] = ()
    platform_impact: tuple[str, ...] = ()
    upgrades: tuple[Upgrade, ...] = ()

    @property
    def all_changes(self) -> tuple[Change, ...]:
        return self.changes + self.deletions

    @property
    def errors(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity == "error")

    @property
    def warnings(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity == "warning")

    @property
    def ok(self) -> bool:
        """True when no finding of severity error stands in the way of merging."""
        return not self.errors

    def count(self, action: Action) -> int:
        return sum(1 for c in self.all_changes if c.action == action)

    @property
    def cost_delta(self) -> float:
        return sum(c.delta for c in self.costs)


def worst_severity(findings: Iterable[Finding]) -> Severity | None:
    """The most severe level among `findings`, or None when there are none."""
    seen = {f.severity for f in findings}
    for level in SEVERITIES:
        if level in seen:
            return level
    return None


# -- paths are data ----------------------------------------------------------------------------------
# Whoever pushes a commit chooses its file names. A name holding a line break, a tab or an escape
# sequence can break any line-based protocol or output it reaches, so Paved reads no file so named
# (`bot.validate.check_files` for requests, `bot.rules.load_rules` for rules) and shows the name only
# escaped.

# C0 controls (a line break, a tab, an escape), DEL and the C1 controls.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\\": "\\\\"}


def path_problem(path: str) -> str | None:
    """Why Paved will not read the file at `path`, or None when its name is plain text.

    Trees hand over a name that is not valid UTF-8 with each byte that does not decode as NUL followed
    by the character of that byte's value: NUL is in no real name, so the result is unambiguous, and
    it is a control character, so the name is refused like any other.
    """
    if "\0" in path:
        return "is not valid UTF-8"
    if _CONTROL.search(path):
        return "holds a control character"
    return None


def shown_path(path: str) -> str:
    """`path` on one line, as a person would type it: `catalog/a\\nb.yaml` for a name with a line break.

    Control characters become escapes and backslashes are doubled, so the shown name is unambiguous;
    an undecodable byte (see `path_problem`) shows as `\\xff`.
    """
    out: list[str] = []
    chars = iter(path)
    for char in chars:
        if char == "\0":
            out.append(f"\\x{ord(next(chars, chr(0))):02x}")
        elif char in _NAMED:
            out.append(_NAMED[char])
        elif _CONTROL.match(char):
            out.append(f"\\x{ord(char):02x}")
        else:
            out.append(char)
    return "".join(out)


class Tree(Protocol):
    """The platform repo's files at one revision (a git commit, or the working tree).

    Blob ids are git's object ids of the file contents, so identical bytes have the same id at every
    revision and results can be cached by them.
    """

    @property
    def label(self) -> str:
        """How to name this revision to a person: a short commit id, a ref, or "working tree"."""
        ...

    def files(self, prefix: str) -> dict[str, str]:
        """Every file under `prefix` (a folder path ending in "/"), mapped to its blob id."""
        ...

    def paths(self, prefix: str) -> list[str]:
        """Every file under `prefix`, as `files` lists them but without their blob ids, which a working
        tree can only give by reading each file."""
        ...

    def read(self, path: str) -> bytes:
        """The bytes of one file; raises KeyError when there is no such file."""
        ...

    def read_many(self, paths: Iterable[str]) -> dict[str, bytes]:
        """The bytes of several files at once (one round trip where the storage allows), each file's own:
        never another file's, whatever the names hold."""
        ...

    def tree_id(self, prefix: str) -> str | None:
        """Git's id of the folder `prefix` at this revision; None where the storage has no such id."""
        ...

    def diff(self, since: str, prefix: str) -> dict[str, str | None] | None:
        """Files under `prefix` that differ from git tree `since`: path -> new blob id (None: deleted).

        None when the difference cannot be computed cheaply here (the caller compares listings).
        """
        ...

    def close(self) -> None:
        """Release what reading held open (a git process); the tree is not used afterwards."""
        ...


class MemoryTree:
    """A `Tree` over files held in memory, for judging a few files (policy test cases, previews)."""

    def __init__(self, files: dict[str, bytes], label: str = "memory") -> None:
        import hashlib

        self._files = files
        self._label = label
        self._ids = {p: hashlib.sha1(b"blob %d\0" % len(d) + d, usedforsecurity=False).hexdigest()
                     for p, d in files.items()}

    @property
    def label(self) -> str:
        return self._label

    def files(self, prefix: str) -> dict[str, str]:
        return {p: b for p, b in self._ids.items() if p.startswith(prefix)}

    def paths(self, prefix: str) -> list[str]:
        return list(self.files(prefix))

    def read(self, path: str) -> bytes:
        return self._files[path]

    def read_many(self, paths: Iterable[str]) -> dict[str, bytes]:
        return {p: self._files[p] for p in paths if p in self._files}

    def tree_id(self, prefix: str) -> str | None:
        return None

    def diff(self, since: str, prefix: str) -> dict[str, str | None] | None:
        return None

    def close(self) -> None:
        return None


class WithFile:
    """A `Tree` as another would be with one more file (or one file's bytes replaced): what a new request is
    judged in, with the rest of the catalogue, before it is written (`paved new`, the catalogue's form).

    The base tree stays its owner's: closing this one leaves it open."""

    def __init__(self, base: Tree, path: str, data: bytes) -> None:
        import hashlib

        self._base, self._path, self._data = base, path, data
        self._id = hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()

    @property
    def label(self) -> str:
        return self._base.label

    def files(self, prefix: str) -> dict[str, str]:
        found = self._base.files(prefix)
        if self._path.startswith(prefix):
            found[self._path] = self._id
        return found

    def paths(self, prefix: str) -> list[str]:
        found = self._base.paths(prefix)
        return [*found, self._path] if self._path.startswith(prefix) and self._path not in found else found

    def read(self, path: str) -> bytes:
        return self._data if path == self._path else self._base.read(path)

    def read_many(self, paths: Iterable[str]) -> dict[str, bytes]:
        paths = list(paths)
        found = self._base.read_many(p for p in paths if p != self._path)
        if self._path in paths:
            found[self._path] = self._data
        return found

    def tree_id(self, prefix: str) -> str | None:
        return None

    def diff(self, since: str, prefix: str) -> dict[str, str | None] | None:
        found = self._base.diff(since, prefix)
        if found is not None and self._path.startswith(prefix):
            found[self._path] = self._id
        return found

    def close(self) -> None:
        return None

