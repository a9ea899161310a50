"""The web catalogue's read model: what each page shows, from git history, apply notes and the index.

Nothing here reads git, files, the network or a database. The caller (`bot/web/catalogue.py`) hands in
the first-parent history of the default branch (`Commit`s), the apply records from `refs/notes/paved`
(parsed here, tolerantly), the `Catalogue` judged at the branch's head and the catalogue index's lists
(`ResourceListings`); this module joins them into statuses, histories and pages, and draws the SVG a
page shows (dependency graphs and plots).

So it belongs to the core, not to the adapters: it is the pages' read model, plain functions over data
that tests call without a server. What it asks the index for (a page of resources matching the home
page's filters, counts, teams) it asks through `ResourceListings`, a port in the pages' words; the one
module that turns those questions into SQL is `bot.adapters.catalogue_index`.

Cost: everything that grows with the catalogue or its history is computed once per `Timeline`
(one per head, applied commit and notes revision) and kept by the caller; a page then asks the index
for one page of rows (`list_resources`), so a warm page costs about the same on 100 resources as on
10,000.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol

from bot.apply import read_records
from bot.catalogue import Catalogue
from bot.explain import FieldDoc, fields, skeleton
from bot.rules import Rules, Template

Status = Literal["applied", "pending", "failed", "drifted"]
STATUSES: tuple[Status, ...] = ("applied", "pending", "failed", "drifted")
PAGE_SIZE = 50
# Applies that take the commits since the previous applied one; the others (heal, drift) take none.
COVERING_TRIGGERS = frozenset({"merge", "retry", "reconcile"})
# A graph side shows this many neighbours; the lists under it name every one.
GRAPH_LIMIT = 16
# Output names that could only hold a credential; providers never record one, this is a second lock.
_SECRET_NAME = re.compile(r"password|passwd|secret|token|credential|private|api[-_]?key|dsn", re.IGNORECASE)
_PR_IN_SUBJECT = re.compile(r"^Merge pull request #(\d+)\b|\(#(\d+)\)\s*$")


# -- apply records, read tolerantly ------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Outcome:
    """What one apply did to one resource."""

    resource: str
    status: str  # applied | unchanged | failed | skipped | drifted (drift records), or a later word
    message: str = ""
    outputs: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Apply:
    """One apply record of `refs/notes/paved` (read by `bot.apply.read_records`), as the catalogue shows
    it; `order` keeps records with equal timestamps in note order."""

    revision: str
    previous: str | None
    applied_at: str
    trigger: str
    results: tuple[Outcome, ...]
    pull_request: int | None = None
    requested_by: str | None = None
    merged_by: str | None = None
    approved_by: tuple[str, ...] = ()
    actions: Mapping[str, str] = field(default_factory=dict)
    order: int = 0


def read_applies(note: str, revision: str = "") -> list[Apply]:
    """Every apply record in one commit's note; lines that are not Paved's records are left out."""
    return [Apply(
        revision=record.revision or revision, previous=record.previous, applied_at=str(record.applied_at or ""),
        trigger=record.trigger,
        results=tuple(Outcome(r.resource, str(r.status), str(r.message or ""),
                              tuple((str(k), str(v)) for k, v in dict(r.outputs).items())) for r in record.results),
        pull_request=record.pull_request if isinstance(record.pull_request, int) and record.pull_request > 0
        else None,
        requested_by=record.requested_by or None, merged_by=record.merged_by or None,
        approved_by=tuple(str(a) for a in record.approved_by),
        actions={str(k): str(v) for k, v in dict(record.actions).items()}, order=order)
        for order, record in enumerate(read_records(note))]


def safe_outputs(outputs: Iterable[tuple[str, str]]) -> list[tuple[str, str, bool]]:
    """Outputs to show: (name, value, is a web link), leaving out any whose name says credential."""
    return [(k, v, v.startswith(("https://", "http://"))) for k, v in outputs if not _SECRET_NAME.search(k)]


# -- git history joined with the records ----------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Commit:
    """A commit of the default branch's first-parent history: merges and squashes, as merged."""

    sha: str
    author: str
    date: str
    subject: str
    paths: tuple[str, ...] = ()


def pull_request_in(subject: str) -> int | None:
    """The pull request a merge commit's subject names (`Merge pull request #12 …`, `Title (#12)`)."""
    match = _PR_IN_SUBJECT.search(subject)
    if match is None:
        return None
    return int(match.group(1) or match.group(2))


@dataclass(frozen=True, slots=True)
class ResourceChange:
    """A commit as it concerns one resource, with the applies that took it and what they did."""

    commit: Commit
    pull_request: int | None
    requested_by: str
    approved_by: tuple[str, ...]
    applies: tuple[tuple[Apply, Outcome | None], ...]  # oldest first
    pending: bool

    @property
    def result(self) -> str:
        """The outcome of the latest apply of this change, in one word or a few."""
        if self.pending:
            return "pending"
        if not self.applies:
            return "not recorded"
        apply, outcome = self.applies[-1]
        if outcome is not None:
            return outcome.status
        return "not applied" if apply.actions and not apply.results else "no change"


@dataclass(frozen=True, slots=True)
class Event:
    """An apply that touched a resource without a commit changing its file (drift, heal, a refresh)."""

    apply: Apply
    outcome: Outcome


class Timeline:
    """The default branch's history at one head, joined with the apply records.

    `commits` are newest first (`git log --first-parent`); `applied` is `refs/paved/applied` (None when
    nothing was applied yet). Built once per head, applied commit and notes revision; every question a
    page asks of it after that costs the same however large the catalogue is.
    """

    def __init__(self, commits: Sequence[Commit], applies: Iterable[Apply], applied: str | None) -> None:
        self.commits = list(reversed(commits))  # oldest first: a commit's position is its index
        self.position = {c.sha: i for i, c in enumerate(self.commits)}
        self.applies = sorted(applies, key=lambda a: (a.applied_at, a.order))
        self.applied_position = self.position.get(applied, -1) if applied else -1
        self.by_path: dict[str, list[int]] = {}
        for i, commit in enumerate(self.commits):
            for path in commit.paths:
                self.by_path.setdefault(path, []).append(i)
        # Which applies took each commit: a record covers (previous, revision] of the first-parent chain.
        self.covering: dict[int, list[int]] = {}
        for n, apply in enumerate(self.applies):
            end = self.position.get(apply.revision)
            # Drift checks and heals look at what exists, not at commits: they are events of their own.
            if end is None or apply.trigger not in COVERING_TRIGGERS:
                continue
            start = self.position.get(apply.previous, -1) if apply.previous else -1
            for i in range(start + 1, end + 1):
                self.covering.setdefault(i, []).append(n)
        self.events: dict[str, list[tuple[int, Outcome]]] = {}
        for n, apply in enumerate(self.applies):
            for outcome in apply.results:
                self.events.setdefault(outcome.resource, []).append((n, outcome))

    # -- status --------------------------------------------------------------------------------

    def pending_paths(self) -> set[str]:
        """Files changed by commits after `refs/paved/applied` (every file, when nothing was applied)."""
        return {p for c in self.commits[self.applied_position + 1:] for p in c.paths}

    def statuses(self, pending_candidates: Mapping[str, str]) -> dict[str, Status]:
        """The status of every resource that is not simply `applied`.

        `pending_candidates` maps the identities defined at the head in `pending_paths()` to their file.
        A resource is failed when its latest apply result failed, drifted when the latest record about it
        says so, pending when its file changed after the last apply that took it, applied otherwise.
        """
        found: dict[str, Status] = {}
        for identity, events in self.events.items():
            latest = self._latest(events)
            if latest is not None and latest[1] in ("failed", "drifted"):
                found[identity] = "failed" if latest[1] == "failed" else "drifted"
        for identity, path in pending_candidates.items():
            if identity in found:
                continue
            changed = self.by_path.get(path)
            if not changed:
                continue
            taken = self.applied_position
            for n, outcome in self.events.get(identity, []):
                if outcome.status in ("applied", "unchanged"):
                    taken = max(taken, self.position.get(self.applies[n].revision, -1))
            if changed[-1] > taken:
                found[identity] = "pending"
        return found

    def _latest(self, events: list[tuple[int, Outcome]]) -> tuple[int, str] | None:
        """The latest decisive result: a skip because something it needs failed says nothing of its own."""
        for n, outcome in reversed(events):
            if outcome.status == "skipped" and outcome.message.startswith("skipped:"):
                continue
            if outcome.status == "drifted" or self.applies[n].trigger == "drift":
                return n, "drifted" if outcome.status in ("drifted", "failed") else "applied"
            return n, "failed" if outcome.status == "failed" else "applied"
        return None

    # -- one resource --------------------------------------------------------------------------

    def last_change(self, path: str) -> ResourceChange | None:
        changed = self.by_path.get(path)
        return self._change(changed[-1], None) if changed else None

    def history(self, path: str, identity: str) -> list[ResourceChange | Event]:
        """Every commit that changed the resource's file and every other apply about it, newest first."""
        changes = [self._change(i, identity) for i in self.by_path.get(path, [])]
        taken = {id(a) for c in changes for a, _ in c.applies}
        events = [Event(self.applies[n], o) for n, o in self.events.get(identity, [])
                  if id(self.applies[n]) not in taken]
        rows: list[tuple[str, ResourceChange | Event]] = [
            (c.applies[-1][0].applied_at if c.applies else "~" + c.commit.date, c) for c in changes]
        rows += [(e.apply.applied_at, e) for e in events]
        rows.sort(key=lambda r: r[0], reverse=True)
        return [r for _, r in rows]

    def outputs(self, identity: str) -> list[tuple[str, str, bool]]:
        """The outputs of the latest apply that recorded any for the resource."""
        for _, outcome in reversed(self.events.get(identity, [])):
            if outcome.outputs:
                return safe_outputs(outcome.outputs)
        return []

    def _change(self, position: int, identity: str | None) -> ResourceChange:
        commit = self.commits[position]
        applies = [self.applies[n] for n in self.covering.get(position, [])]
        recorded = next((a for a in applies if a.pull_request), None)
        outcomes: list[tuple[Apply, Outcome | None]] = []
        for apply in applies:
            outcome = next((o for o in apply.results if o.resource == identity), None) if identity else None
            outcomes.append((apply, outcome))
        return ResourceChange(
            commit=commit,
            pull_request=recorded.pull_request if recorded else pull_request_in(commit.subject),
            requested_by=(recorded.requested_by if recorded and recorded.requested_by else commit.author),
            approved_by=recorded.approved_by if recorded else (),
            applies=tuple(outcomes), pending=position > self.applied_position and not applies)


# -- the index: one page of resources -------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Filters:
    """What the home page's form asks for; empty strings mean "any"."""

    kind: str = ""
    owner: str = ""
    status: str = ""
    q: str = ""

    @property
    def active(self) -> bool:
        return bool(self.kind or self.owner or self.status or self.q)


@dataclass(frozen=True, slots=True)
class Row:
    """One resource in a list: what the index knows of it, and its status."""

    identity: str
    kind: str
    name: str
    owner: str
    path: str
    cost: float
    status: Status
    tier: str | None = None


class ResourceListings(Protocol):
    """The lists the pages ask the catalogue index for, over one stored state (never an overlay).

    Statuses come from git history and apply records, not from the index: `remember_statuses` hands
    the index the non-`applied` ones so that filtering by status runs next to the other filters.
    """

    def remember_statuses(self, key: str, statuses: Mapping[str, Status]) -> None:
        """Use `statuses` for the lists from now on; a second call with the same `key` changes nothing."""
    def resource_page(self, state: int, filters: Filters, page: int, size: int) -> list[Row]:
        """One page (from 1) of the resources matching `filters`, by identity, their tiers unknown."""
    def count_resources(self, state: int, filters: Filters) -> int: ...
    def identities_in(self, state: int, paths: Iterable[str]) -> dict[str, str]: ...
    def references_in(self, state: int, path: str, source: str) -> list[tuple[str, str]]:
        """(target, relation) of what `source` names in its file `path`."""
    def team_page(self, state: int, page: int, size: int, *, kind: str) -> list[str]: ...
    def count_teams(self, state: int, *, kind: str) -> int: ...


def list_resources(listings: ResourceListings, catalogue: Catalogue, filters: Filters, page: int,
                   size: int = PAGE_SIZE) -> list[Row]:
    """One page (from 1) of resources matching `filters`, by identity; statuses as last remembered."""
    assert not catalogue.changed, "the site lists stored states, never overlays"
    rows = listings.resource_page(catalogue.state.id, filters, page, size)
    tiers = catalogue.tiers(r.identity for r in rows) if rows else {}
    return [replace(r, tier=tiers.get(r.identity)) for r in rows]


def count_resources(listings: ResourceListings, catalogue: Catalogue, filters: Filters) -> int:
    return listings.count_resources(catalogue.state.id, filters)


def identities_in(listings: ResourceListings, catalogue: Catalogue, paths: Iterable[str]) -> dict[str, str]:
    """The identities defined in `paths` at this revision, with their file."""
    return listings.identities_in(catalogue.state.id, paths)


def references_of(listings: ResourceListings, catalogue: Catalogue, identity: str,
                  path: str) -> list[tuple[str, str]]:
    """What the resource names (target, relation), read from the references of its own file."""
    rows = listings.references_in(catalogue.state.id, path, identity)
    return sorted({(t, r) for t, r in rows if t != identity}, key=lambda row: (row[1], row[0]))


def list_teams(listings: ResourceListings, catalogue: Catalogue, page: int, size: int = PAGE_SIZE) -> list[str]:
    kind = catalogue.rules.described.team
    return listings.team_page(catalogue.state.id, page, size, kind=kind) if kind is not None else []


def count_teams(listings: ResourceListings, catalogue: Catalogue) -> int:
    kind = catalogue.rules.described.team
    return listings.count_teams(catalogue.state.id, kind=kind) if kind is not None else 0


# -- a request, field by field ----------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class FieldRow:
    """One field of a request: where it is, its value (None for a mapping), and what the schema says."""

    path: str
    depth: int
    value: str | None
    title: str
    description: str


def _docs(schema: dict[str, Any]) -> dict[str, FieldDoc]:
    return {d.path: d for d in fields(schema)}


def request_fields(data: Mapping[str, Any], schema: dict[str, Any]) -> list[FieldRow]:
    """The request's fields in file order, each with the description its kind's schema gives it."""
    docs = _docs(schema)
    titles = _titles(schema)
    rows: list[FieldRow] = []

    def scalar(value: Any) -> str:
        return value if isinstance(value, str) else json.dumps(value)

    def walk(value: Any, path: str, shape: str, depth: int) -> None:
        doc = docs.get(shape)
        title = titles.get(shape, path.rsplit(".", 1)[-1])
        description = doc.description if doc else ""
        if isinstance(value, dict):
            if path:
                rows.append(FieldRow(path, depth, None, title, description))
            for key, sub in value.items():
                walk(sub, f"{path}.{key}" if path else str(key), f"{shape}.{key}" if shape else str(key),
                     depth + (1 if path else 0))
        elif isinstance(value, list) and any(isinstance(v, dict) for v in value):
            rows.append(FieldRow(path, depth, None, title, description))
            for i, sub in enumerate(value):
                walk(sub, f"{path}[{i}]", f"{shape}[]", depth + 1)
        elif isinstance(value, list):
            rows.append(FieldRow(path, depth, ", ".join(scalar(v) for v in value), title, description))
        else:
            rows.append(FieldRow(path, depth, scalar(value), title, description))

    walk(dict(data), "", "", 0)
    return rows


def _titles(schema: dict[str, Any]) -> dict[str, str]:
    """The schema's `title` of each field, by the dotted paths `bot.explain.fields` uses."""
    found: dict[str, str] = {}

    def deref(node: Any) -> Any:
        ref = node.get("$ref") if isinstance(node, dict) else None
        if isinstance(ref, str) and ref.startswith("#/"):
            target: Any = schema
            for token in ref[2:].split("/"):
                target = target.get(token) if isinstance(target, dict) else None
            if isinstance(target, dict):
                return {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return node

    def walk(node: Any, prefix: str, depth: int) -> None:
        node = deref(node)
        if not isinstance(node, dict) or depth > 12:
            return
        for name, sub in (node.get("properties") or {}).items():
            sub = deref(sub)
            path = f"{prefix}.{name}" if prefix else name
            if isinstance(sub, dict):
                if sub.get("title"):
                    found[path] = str(sub["title"])
                walk(sub, path, depth + 1)
                items = deref(sub.get("items"))
                if isinstance(items, dict):
                    walk(items, f"{path}[]", depth + 1)

    walk(schema, "", 0)
    return found


# -- golden paths -----------------------------------------------------------------------------------

SNIPPET_NAME = "my-service"
SNIPPET_OWNER = "my-team"


def snippet(rules: Rules, template: Template) -> dict[str, Any]:
    """A ready request on `template` of the kind that names templates (a Service): the kind's required
    fields, every parameter at its default."""
    kind = rules.described.with_template() or ""
    data = skeleton(rules.kinds[kind], SNIPPET_NAME, SNIPPET_OWNER)
    data["metadata"]["description"] = template.description or f"A {kind.lower()} on the {template.name} golden path."
    chosen: dict[str, Any] = {"name": template.name}
    if template.parameters:
        chosen["parameters"] = {p.name: p.default for p in template.parameters.values()}
    _set_at(data, rules.describe(kind).template or "/spec/template", chosen)
    return data


def _set_at(data: dict[str, Any], pointer: str, value: Any) -> None:
    """Put `value` at `pointer`, making the mappings on the way."""
    tokens = [t.replace("~1", "/").replace("~0", "~") for t in pointer.split("/")[1:]]
    for token in tokens[:-1]:
        data = data.setdefault(token, {})
    data[tokens[-1]] = value


# -- SVG: dependency graphs and plots ----------------------------------------------------------------

def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _clip(text: str, limit: int = 30) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


@dataclass(frozen=True, slots=True)
class Neighbour:
    identity: str
    relation: str


def graph_svg(center: str, dependencies: Sequence[Neighbour], dependents: Sequence[Neighbour],
              href: Callable[[str], str]) -> str:
    """The resource between what names it (left) and what it names (right), as inline SVG.

    At most `GRAPH_LIMIT` neighbours a side are drawn; the page lists them all next to the drawing, which
    is why the drawing is hidden from screen readers and its links from the keyboard.
    """
    node_w, node_h, gap, col = 230, 36, 10, 300
    left, right = list(dependents[:GRAPH_LIMIT]), list(dependencies[:GRAPH_LIMIT])
    more_left, more_right = len(dependents) - len(left), len(dependencies) - len(right)
    rows = max(len(left) + (1 if more_left else 0), len(right) + (1 if more_right else 0), 1)
    height = rows * (node_h + gap) + gap + 24
    width = 2 * col + node_w + 20
    cy = height / 2 + 12

    def y_of(i: int, n: int) -> float:
        top = cy - (n * (node_h + gap) - gap) / 2
        return top + i * (node_h + gap)

    parts = [f'<svg class="graph" viewBox="0 0 {width} {height}" '
             f'width="{width}" height="{height}" aria-hidden="true" focusable="false">',
             '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
             'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" class="edge-head"/></marker></defs>',
             f'<text x="10" y="16" class="graph-label">needed by ({len(dependents)})</text>',
             f'<text x="{2 * col + 10}" y="16" class="graph-label">needs ({len(dependencies)})</text>']

    def node(x: float, y: float, identity: str, relation: str, link: bool, css: str) -> None:
        box = (f'<rect x="{x}" y="{y}" width="{node_w}" height="{node_h}" rx="6" class="{css}"/>'
               f'<text x="{x + 10}" y="{y + 15}" class="node-name">{_e(_clip(identity))}</text>'
               f'<text x="{x + 10}" y="{y + 29}" class="node-relation">{_e(relation)}</text>')
        if link:
            parts.append(f'<a href="{_e(href(identity))}" tabindex="-1"><title>{_e(identity)}</title>{box}</a>')
        else:
            parts.append(box)

    cx, cy_node = col + 10, cy - node_h / 2
    for i, n in enumerate(left):
        y = y_of(i, len(left) + (1 if more_left else 0))
        parts.append(f'<path d="M{10 + node_w},{y + node_h / 2} C{cx - 30},{y + node_h / 2} {10 + node_w + 30},'
                     f'{cy} {cx},{cy}" class="edge" marker-end="url(#arrow)"/>')
        node(10, y, n.identity, n.relation, True, "node")
    for i, n in enumerate(right):
        y = y_of(i, len(right) + (1 if more_right else 0))
        x = 2 * col + 10
        parts.append(f'<path d="M{cx + node_w},{cy} C{x - 30},{cy} {cx + node_w + 30},{y + node_h / 2} '
                     f'{x},{y + node_h / 2}" class="edge" marker-end="url(#arrow)"/>')
        node(x, y, n.identity, n.relation, True, "node")
    if more_left:
        y = y_of(len(left), len(left) + 1)
        parts.append(f'<text x="20" y="{y + 22}" class="node-relation">and {more_left} more</text>')
    if more_right:
        y = y_of(len(right), len(right) + 1)
        parts.append(f'<text x="{2 * col + 20}" y="{y + 22}" class="node-relation">and {more_right} more</text>')
    node(cx, cy_node, center, "this resource", False, "node node-center")
    parts.append("</svg>")
    return "".join(parts)


@dataclass(frozen=True, slots=True)
class Bar:
    label: str
    segments: tuple[tuple[str, float], ...]  # (series, value), stacked in this order


def bar_chart(bars: Sequence[Bar], series: Sequence[str], *, unit: str = "", top: float | None = None) -> str:
    """Horizontal stacked bars as inline SVG, scaled to `top` (default: the longest bar); the page shows
    the same figures in words or a table beside it. No bars: no drawing."""
    if not bars:
        return ""
    label_w, plot_w, bar_h, gap = 170, 420, 20, 8
    top = top or max((sum(v for _, v in b.segments) for b in bars), default=0.0) or 1.0
    legend_h = 24 if len(series) > 1 else 0
    height = legend_h + len(bars) * (bar_h + gap) + gap
    width = label_w + plot_w + 80
    parts = [f'<svg class="plot" viewBox="0 0 {width} {height}" '
             f'width="{width}" height="{height}" aria-hidden="true" focusable="false">']
    if legend_h:
        x = 0.0
        for i, name in enumerate(series):
            parts.append(f'<rect x="{x}" y="4" width="12" height="12" class="series-{i % 6}"/>'
                         f'<text x="{x + 16}" y="15" class="plot-text">{_e(_clip(name, 18))}</text>')
            x += 24.0 + 7 * min(len(name), 18)
    for i, bar in enumerate(bars):
        y = legend_h + gap + i * (bar_h + gap)
        parts.append(f'<text x="{label_w - 6}" y="{y + 14}" text-anchor="end" class="plot-text">'
                     f'{_e(_clip(bar.label, 24))}</text>')
        x = float(label_w)
        for name, value in bar.segments:
            w = plot_w * value / top
            if w > 0:
                index = series.index(name) if name in series else 0
                parts.append(f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{bar_h}" '
                             f'class="series-{index % 6}"><title>{_e(name)}: {value:g}{unit}</title></rect>')
                x += w
        total = sum(v for _, v in bar.segments)
        parts.append(f'<text x="{x + 6:.1f}" y="{y + 14}" class="plot-text">{total:g}{unit}</text>')
    parts.append("</svg>")
    return "".join(parts)
