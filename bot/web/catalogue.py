"""The web catalogue of `paved serve`: server-rendered pages over the platform repo's git history.

Everything shown is read from the local mirror of the platform repo (kept fresh by Paved's own jobs:
every push and every reconcile fetches the default branch, `refs/paved/applied` and the notes) and from
the catalogue index in the data folder; there is no second source of truth and no write operation.

Pages (Jinja2 templates in `templates/`, one stylesheet in `static/`, no JavaScript, nothing from the
internet): the resources (`/`), one resource (`/resources/KIND/NAME`), the teams (`/teams`, `/teams/NAME`),
the golden paths (`/golden-paths`), adoption (`/adoption`) and the standards (`/standards`: which fail most).
A resource's page and a team's show their scorecards, from the newest one reconcile noted
(`refs/notes/paved-standards`, see `bot.standards`), and a service's page and its team's show where the
services are deployed, read from GitHub in time or not at all (`bot.web.deployments`).

Cost: a `_Snapshot` (the history index, the apply records, every status) is built once per head,
applied commit and notes revision and shared by every request; each request thread keeps its own
catalogue index connection and git reader (neither may cross threads) and asks the index for one page of rows.
"""

from __future__ import annotations

import logging
import re
import threading
import urllib.parse
from collections import Counter, OrderedDict
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
import markupsafe
from fastapi import APIRouter, Request
from fastapi.params import Depends
from fastapi.responses import HTMLResponse, Response

from bot.adapters.catalogue_index import SQLiteCatalogueIndex
from bot.adapters.repo import GitTree, git_output
from bot.apply import APPLIED_REF, NOTES_REF
from bot.catalogue import Catalogue, judge
from bot.catalogue_view import (
    PAGE_SIZE,
    STATUSES,
    Apply,
    Bar,
    Commit,
    Filters,
    Neighbour,
    ResourceChange,
    ResourceListings,
    Status,
    Timeline,
    bar_chart,
    count_resources,
    count_teams,
    graph_svg,
    identities_in,
    list_resources,
    list_teams,
    read_applies,
    references_of,
    request_fields,
    snippet,
)
from bot.deployments import service_target, web_url
from bot.errors import PavedError, RevisionError
from bot.kinds import value_at
from bot.rules import Rules, load_rules
from bot.satisfaction import FEEDBACK_REF, feedback_records
from bot.satisfaction import shown as inert
from bot.settings import DEFAULT_GITHUB_API_URL, Settings
from bot.standards import STANDARDS_REF, Scorecard, failing_most, newest, on_latest, tally
from bot.web.deployments import DeploymentBoard, Reading

log = logging.getLogger(__name__)

PLANS_REF = "refs/notes/paved-plans"  # where Paved records the plans it publishes (bot/stats.py)
STATIC = ("paved.css",)
_KEEP = 2  # snapshots (and histories) kept: the current one, and the one requests may still be reading


class Unavailable(PavedError):
    """Raised when the platform repo cannot be read yet (no mirror, no default branch, broken rules)."""


# -- where the site reads ---------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class PlatformSource:
    """The platform repo the site shows: a git repository on disk (Paved's mirror) and the index.

    `web_url` is the forge's web address (`https://github.com`), for links to pull requests, commits
    and files; None shows them as plain text. `problem` says why nothing can be shown (no repository
    configured), on every page.
    """

    name: str
    git_dir: Path | None
    index: Path
    web_url: str | None = None
    branch: str | None = None
    problem: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> PlatformSource:
        """The mirror of `settings.catalogue_repository` in the data folder, and the shared index."""
        repo = settings.catalogue_repository
        api = settings.github_api_url.rstrip("/")
        web = "https://github.com" if api == DEFAULT_GITHUB_API_URL else (
            api.removesuffix("/api/v3") if api.endswith("/api/v3") else None)
        if repo is None:
            return cls("", None, settings.catalogue_index, web, problem=(
                "No platform repo is configured for the catalogue: set PAVED_CATALOGUE_REPO to its owner/name "
                "(or PAVED_REPOSITORIES to exactly one repository)."))
        owner, name = repo.split("/", 1)
        return cls(repo, settings.mirrors / owner / f"{name}.git", settings.catalogue_index, web)

    def link(self, kind: str, rest: str) -> str | None:
        """A web link into the repository (`pull`, `commit`, `blob`), when the forge's address is known."""
        if not self.web_url or not self.name:
            return None
        return f"{self.web_url}/{self.name}/{kind}/{urllib.parse.quote(rest)}"


def _git(repo: Path, *args: str) -> str:
    return git_output(repo, *args).decode("utf-8", "replace")


@dataclass(frozen=True, slots=True)
class _Refs:
    branch: str
    head: str
    applied: str | None
    notes: str | None
    plans: str | None
    standards: str | None = None
    feedback: str | None = None

    @property
    def key(self) -> str:
        return f"{self.head}:{self.applied}:{self.notes}"


def _refs(source: PlatformSource) -> _Refs:
    """Where the default branch, `refs/paved/applied` and the notes point, in one `git for-each-ref`."""
    if source.git_dir is None:
        raise Unavailable(source.problem or "no platform repo")
    if not source.git_dir.is_dir():
        raise Unavailable(f"Paved has no copy of {source.name} yet: it fetches one on the first push to its "
                          "default branch, or at the next reconcile.")
    listing = _git(source.git_dir, "for-each-ref", "--format=%(refname) %(objectname)", "refs/heads",
                   APPLIED_REF, NOTES_REF, PLANS_REF, STANDARDS_REF, FEEDBACK_REF)
    refs = dict(line.split(" ", 1) for line in listing.splitlines() if " " in line)
    branches = sorted(r.removeprefix("refs/heads/") for r in refs if r.startswith("refs/heads/"))
    branch = source.branch
    if branch is None:
        # A mirror's HEAD is not the forge's default branch, so: the usual names, else the only branch.
        branch = next((b for b in ("main", "master") if b in branches), branches[0] if len(branches) == 1 else None)
    if branch is None or f"refs/heads/{branch}" not in refs:
        raise Unavailable(f"{source.name or 'the platform repo'} has no default branch fetched yet")
    return _Refs(branch, refs[f"refs/heads/{branch}"], refs.get(APPLIED_REF), refs.get(NOTES_REF),
                 refs.get(PLANS_REF), refs.get(STANDARDS_REF), refs.get(FEEDBACK_REF))


def _history(repo: Path, head: str, since: str | None = None) -> list[Commit]:
    """The first-parent history of `head` (back to `since`, exclusive), newest first, with changed files."""
    out = _git(repo, "log", "--first-parent", "--no-renames", "--name-only", "-z",
               "--format=%x01%H%x1f%an%x1f%aI%x1f%s", head if since is None else f"{since}..{head}")
    commits: list[Commit] = []
    for chunk in out.split("\x01")[1:]:
        header, _, names = chunk.partition("\0")
        sha, author, date, subject = [*header.split("\x1f"), "", "", ""][:4]
        paths = tuple(p.strip("\n") for p in names.split("\0") if p.strip("\n").startswith("catalog/"))
        commits.append(Commit(sha, author, date, subject, paths))
    return commits


# -- what every request shares ------------------------------------------------------------------------

@dataclass
class _Snapshot:
    """Everything that grows with the catalogue or its history, for one head, applied commit and notes."""

    key: str
    refs: _Refs
    rules: Rules
    timeline: Timeline
    statuses: dict[str, Status]
    counts: dict[Status, int]  # resources per status
    total: int
    cached_counts: OrderedDict[Filters, int] = field(default_factory=OrderedDict)


class _Local(threading.local):
    index: SQLiteCatalogueIndex | None = None
    head: str | None = None
    tree: GitTree | None = None
    catalogue: Catalogue | None = None


class Reader:
    """Reads the platform repo for the pages, keeping what is costly to build between requests."""

    def __init__(self, source: PlatformSource) -> None:
        self.source = source
        self._lock = threading.Lock()
        self._snapshots: OrderedDict[str, _Snapshot] = OrderedDict()
        self._histories: OrderedDict[str, list[Commit]] = OrderedDict()
        self._rules: OrderedDict[str, Rules] = OrderedDict()
        self._apply_notes: dict[str, str] = {}  # note blob id -> text
        self._plan_notes: dict[str, str] = {}
        self._standard_notes: dict[str, str] = {}
        self._feedback_notes: dict[str, str] = {}
        self._figures: OrderedDict[str, Figures | None] = OrderedDict()
        self._scorecards: OrderedDict[str, Scorecard | None] = OrderedDict()
        self._local = _Local()
        # Every thread's git reader, so that the app's shutdown ends their `git cat-file` processes
        # rather than leaving them to the garbage collector (threads of the pool outlive requests).
        self._trees: set[GitTree] = set()
        self._trees_lock = threading.Lock()  # not `_lock`: a page holds that one while it opens a tree

    def close(self) -> None:
        """End the git readers every thread opened (the app is shutting down: no page is being read)."""
        with self._trees_lock:
            trees, self._trees = self._trees, set()
        for tree in trees:
            tree.close()

    # -- per thread: the index connection and the git reader at the head -------------------------

    def _index(self) -> SQLiteCatalogueIndex:
        if self._local.index is None:
            self._local.index = SQLiteCatalogueIndex(self.source.index)
        return self._local.index

    def _catalogue(self, head: str, rules: Rules) -> Catalogue:
        local, index = self._local, self._index()
        if local.head != head or local.catalogue is None:
            if local.tree is not None:
                local.tree.close()
                with self._trees_lock:
                    self._trees.discard(local.tree)
            assert self.source.git_dir is not None
            local.tree = GitTree(self.source.git_dir, head)
            with self._trees_lock:
                self._trees.add(local.tree)
            local.head, local.catalogue = head, None
        catalogue = local.catalogue
        # The index keeps a few states and drops the least used: check this one is still there.
        if catalogue is None or not index.has_state(catalogue.state.id):
            assert local.tree is not None
            catalogue = local.catalogue = judge(local.tree, rules, index)
        return catalogue

    def _tree(self) -> GitTree:
        assert self._local.tree is not None
        return self._local.tree

    # -- shared ------------------------------------------------------------------------------------

    def view(self) -> View:
        """The catalogue as the mirror holds it now."""
        refs = _refs(self.source)
        snapshot = self._snapshots.get(refs.key)
        if snapshot is None:
            with self._lock:
                snapshot = self._snapshots.get(refs.key) or self._build(refs)
        catalogue = self._catalogue(refs.head, snapshot.rules)
        index = self._index()
        index.remember_statuses(f"{catalogue.state.id}:{snapshot.key}", snapshot.statuses)
        return View(self, snapshot, catalogue, index, self._tree())

    def _build(self, refs: _Refs) -> _Snapshot:
        assert self.source.git_dir is not None
        rules = self._rules.get(refs.head)
        if rules is None:
            with GitTree(self.source.git_dir, refs.head) as tree:
                try:
                    rules = load_rules(tree)
                except PavedError as exc:
                    raise Unavailable(f"the rules at {refs.head[:12]} cannot be read: {exc.message}") from exc
            _remember(self._rules, refs.head, rules)
        catalogue = self._catalogue(refs.head, rules)
        timeline = Timeline(self._commits(refs.head), self._applies(refs.notes), refs.applied)
        statuses = timeline.statuses(identities_in(self._index(), catalogue, timeline.pending_paths()))
        counts = {s: 0 for s in STATUSES}
        for status in statuses.values():
            counts[status] += 1
        total = catalogue.state.resources
        counts["applied"] = max(total - sum(counts.values()), 0)
        snapshot = _Snapshot(refs.key, refs, rules, timeline, statuses, counts, total)
        _remember(self._snapshots, refs.key, snapshot)
        log.info("catalogue of %s at %s indexed: %d resources, %d commits, %d applies", self.source.name,
                 refs.head[:12], total, len(timeline.commits), len(timeline.applies))
        return snapshot

    def _commits(self, head: str) -> list[Commit]:
        """The history at `head`; when the last one read is an ancestor, only what came since is read."""
        assert self.source.git_dir is not None
        known = self._histories.get(head)
        if known is not None:
            return known
        commits: list[Commit] | None = None
        for previous, older in reversed(self._histories.items()):
            try:
                _git(self.source.git_dir, "merge-base", "--is-ancestor", previous, head)
            except RevisionError:
                continue
            commits = _history(self.source.git_dir, head, previous) + older
            break
        if commits is None:
            commits = _history(self.source.git_dir, head)
        _remember(self._histories, head, commits)
        return commits

    def note_texts(self, ref_sha: str | None, cache: dict[str, str]) -> dict[str, str]:
        """Commit -> text of every note under a notes commit; only notes not seen before are read."""
        if ref_sha is None:
            return {}
        assert self.source.git_dir is not None
        with GitTree(self.source.git_dir, ref_sha) as tree:
            listing = tree.files(".")  # notes are stored by commit id, fanned out into folders
            missing = [p for p, blob in listing.items() if blob not in cache]
            for path, data in tree.read_many(missing).items():
                cache[listing[path]] = data.decode("utf-8", "replace")
        return {p.replace("/", ""): cache[b] for p, b in listing.items() if b in cache}

    def figures(self, view: View) -> Figures | None:
        """The adoption figures, computed once per notes revision; None when nothing is recorded yet."""
        refs = view.snapshot.refs
        key = f"{refs.notes}:{refs.plans}:{refs.feedback}"
        if key not in self._figures:
            found = _figures(self.note_texts(refs.notes, self._apply_notes),
                             self.note_texts(refs.plans, self._plan_notes), view.catalogue,
                             self.note_texts(refs.feedback, self._feedback_notes))
            with self._lock:
                _remember(self._figures, key, found)
        return self._figures.get(key)

    def scorecard(self, view: View) -> Scorecard | None:
        """The newest standards scorecard noted, read once per revision of its notes; None before the first."""
        ref = view.snapshot.refs.standards
        key = ref or ""
        if key not in self._scorecards:
            found = newest(self.note_texts(ref, self._standard_notes))
            with self._lock:
                _remember(self._scorecards, key, found)
        return self._scorecards.get(key)

    def _applies(self, notes: str | None) -> list[Apply]:
        return [a for commit, text in self.note_texts(notes, self._apply_notes).items()
                for a in read_applies(text, commit)]


def _remember(cache: OrderedDict[str, Any], key: str, value: Any) -> None:
    cache[key] = value
    cache.move_to_end(key)
    while len(cache) > _KEEP:
        cache.popitem(last=False)


@dataclass
class View:
    """One request's view: the shared snapshot, and this thread's catalogue and git reader."""

    reader: Reader
    snapshot: _Snapshot
    catalogue: Catalogue
    listings: ResourceListings
    tree: GitTree

    def count(self, filters: Filters) -> int:
        if not filters.active:
            return self.snapshot.total
        cached = self.snapshot.cached_counts
        found = cached.get(filters)
        if found is None:
            found = cached[filters] = count_resources(self.listings, self.catalogue, filters)
            while len(cached) > 256:
                cached.popitem(last=False)
        return found

    def status(self, identity: str) -> Status:
        return self.snapshot.statuses.get(identity, "applied")


# -- pages ------------------------------------------------------------------------------------------

class _BadRequest(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _page(value: str | None) -> int:
    if value is None or value == "":
        return 1
    if not value.isdigit() or int(value) < 1 or len(value) > 9:
        raise _BadRequest(f"page must be a whole number from 1 (got {value[:20]!r})")
    return int(value)


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.PackageLoader("bot.web", "templates"),
                             autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["quote"] = lambda text: urllib.parse.quote(str(text), safe="")
    env.filters["money"] = lambda value: f"{float(value):,.2f}"
    env.tests["change"] = lambda value: isinstance(value, ResourceChange)
    env.filters["ticks"] = _ticks
    return env


def _ticks(text: object) -> markupsafe.Markup:
    """Schema descriptions mark names with backticks, as Markdown does: show them as code."""
    escaped = str(markupsafe.escape(str(text)))
    return markupsafe.Markup(re.sub(r"`([^`]+)`", r"<code>\1</code>", escaped))


def _pages_of(total: int, size: int = PAGE_SIZE) -> int:
    return max((total + size - 1) // size, 1)


def catalogue_router(source: PlatformSource, *, dependencies: Sequence[Depends] | None = None,
                     prefix: str = "", deployments: DeploymentBoard | None = None) -> APIRouter:
    """The catalogue's pages for `source`, under `prefix`.

    `dependencies` run before every page (sign-in, when there is one). `deployments` reads where services are
    deployed, for their pages and their teams' (without it, those pages leave it out). Every page answers HTML:
    404 for what does not exist, 400 for a query it cannot read, 503 while the platform repo cannot be read yet,
    and never a traceback.
    """
    reader = Reader(source)
    organizations: OrderedDict[str, str | PavedError] = OrderedDict()  # head -> where services live, or why not

    @asynccontextmanager
    async def lifespan(_app: Any) -> AsyncIterator[None]:
        # FastAPI runs an included router's lifespan inside the app's.
        try:
            yield
        finally:
            reader.close()
            if deployments is not None:
                deployments.close()

    def organization_of(view: View) -> str | PavedError:
        """Where the catalogue's services have their repositories, as `paved.yaml` at the head says."""
        head = view.snapshot.refs.head
        found = organizations.get(head)
        if found is None:
            from bot.config import load_config
            from bot.providers import installed, settings_schemas

            try:
                found = load_config(view.tree, settings_schemas(installed())).organization \
                    or source.name.split("/", 1)[0]
            except PavedError as exc:
                found = exc
            _remember(organizations, head, found)
        return found

    def deployments_of(view: View, services: Sequence[str]) -> dict[str, Reading]:
        """Each service's deployments, as the board reads them in time; the services it has none of are left out."""
        if deployments is None or not services:
            return {}
        organization = organization_of(view)
        if isinstance(organization, PavedError):
            why = ("paved.yaml cannot be read, so Paved does not know where the repositories are: "
                   f"{organization.message}")
            return {s: Reading(s, "", problem=why) for s in services}
        targets = [t for t in (service_target(view.catalogue, s, organization) for s in services) if t is not None]
        return deployments.read(targets)

    router = APIRouter(prefix=prefix, dependencies=list(dependencies or []), lifespan=lifespan)
    env = _environment()
    static = {name: (resources.files("bot.web") / "static" / name).read_bytes() for name in STATIC}

    def url(path: str, **query: Any) -> str:
        kept = {k: v for k, v in query.items() if v not in (None, "")}
        return prefix + path + ("?" + urllib.parse.urlencode(kept) if kept else "")

    def resource_url(identity: str) -> str:
        kind, _, name = identity.partition("/")
        return url(f"/resources/{urllib.parse.quote(kind, safe='')}/{urllib.parse.quote(name, safe='')}")

    # Globals, so that the macros imported by the templates see them too.
    env.globals.update(url=url, resource_url=resource_url, source=source, link=source.link,
                       team_url=lambda t: url(f"/teams/{urllib.parse.quote(t, safe='')}"))
    env.filters["web_url"] = web_url  # what GitHub holds becomes a link only when it is an http(s) address

    # Who is looking, for the header: set by each page as it starts; a page runs in one thread throughout.
    visitor = threading.local()

    def looking(request: Request) -> None:
        session = request.scope.get("session") or {}  # there only when sign-in is on (`bot.web.signin`)
        login = session.get("login")
        visitor.login = login if isinstance(login, str) else None

    def render(template: str, code: int = 200, **context: Any) -> HTMLResponse:
        return HTMLResponse(env.get_template(template).render(signed_in=getattr(visitor, "login", None), **context),
                            status_code=code)

    def answer(section: str, build: Callable[[], HTMLResponse]) -> HTMLResponse:
        try:
            return build()
        except _BadRequest as exc:
            return render("error.html", 400, section=section, title="Bad request", message=exc.message, view=None)
        except Unavailable as exc:
            return render("error.html", 503, section=section, title="Not available yet", message=exc.message,
                          view=None)
        except PavedError as exc:
            log.warning("catalogue page %s: %s", section, exc.message)
            return render("error.html", 503, section=section, title="Not available", message=exc.message, view=None)
        except Exception:
            log.exception("unexpected error rendering the catalogue page %s", section)
            return render("error.html", 500, section=section, title="Internal error",
                          message="Something went wrong showing this page; it is logged.", view=None)

    def not_found(section: str, what: str, view: View | None) -> HTMLResponse:
        return render("error.html", 404, section=section, title="Not found", message=what, view=view)

    @router.get("/static/{name}", include_in_schema=False)
    def static_file(name: str) -> Response:
        if name not in static:
            return render("error.html", 404, section="", title="Not found", message="There is no such file.",
                          view=None)
        return Response(static[name], media_type="text/css", headers={"Cache-Control": "public, max-age=3600"})

    @router.get("/", response_class=HTMLResponse)
    def home(request: Request, kind: str = "", owner: str = "", status: str = "", q: str = "",
             page: str = "1") -> HTMLResponse:
        """Every resource, filtered and paginated."""
        looking(request)
        def build() -> HTMLResponse:
            number = _page(page)
            view = reader.view()
            kinds = list(view.snapshot.rules.kinds)
            if kind and kind not in kinds:
                raise _BadRequest(f"kind must be one of {', '.join(kinds)} (got {kind[:40]!r})")
            if status and status not in STATUSES:
                raise _BadRequest(f"status must be one of {', '.join(STATUSES)} (got {status[:40]!r})")
            if len(q) > 200 or len(owner) > 200:
                raise _BadRequest("the search and owner fields take at most 200 characters")
            filters = Filters(kind, owner.strip(), status, q.strip())
            total = view.count(filters)
            rows = list_resources(view.listings, view.catalogue, filters, number)
            changes = {r.identity: view.snapshot.timeline.last_change(r.path) for r in rows}
            query = {"kind": kind, "owner": filters.owner, "status": status, "q": filters.q}
            return render("home.html", section="resources", view=view, rows=rows, changes=changes,
                          filters=filters, kinds=kinds, statuses=STATUSES, total=total, page=number,
                          pages=_pages_of(total), query=query)
        return answer("resources", build)

    @router.get("/resources/{kind}/{name}", response_class=HTMLResponse)
    def resource(request: Request, kind: str, name: str) -> HTMLResponse:
        """One resource: its request, outputs, graph and history."""
        looking(request)
        def build() -> HTMLResponse:
            view = reader.view()
            identity = f"{kind}/{name}"
            found = view.catalogue.resources([identity])
            if identity not in found:
                return not_found("resources", f"There is no {identity} in the catalogue at "
                                              f"{view.snapshot.refs.head[:12]}.", view)
            request = found[identity]
            schema = view.snapshot.rules.kinds.get(request.kind, {})
            dependencies = [Neighbour(t, r)
                            for t, r in references_of(view.listings, view.catalogue, identity, request.path)]
            dependents = [Neighbour(r.source, r.relation) for r in view.catalogue.references_to([identity])
                          if r.source != identity]
            dependents = sorted(set(dependents), key=lambda n: (n.identity, n.relation))
            graph = graph_svg(identity, dependencies, dependents, resource_url)
            timeline = view.snapshot.timeline
            history = timeline.history(request.path, identity)
            tiers = view.catalogue.tiers([identity])
            service_kind = view.snapshot.rules.described.with_template()
            deployed = deployments_of(view, [request.name]).get(request.name) if request.kind == service_kind \
                else None
            return render("resource.html", section="resources", view=view, request=request, identity=identity,
                          deployed=deployed,
                          schema_title=str(schema.get("title") or request.kind),
                          schema_description=str(schema.get("description") or ""),
                          fields=request_fields(request.data, schema), outputs=timeline.outputs(identity),
                          status=view.status(identity), tier=tiers.get(identity), graph=graph,
                          dependencies=dependencies, dependents=dependents, history=history,
                          environments=_environments(view.catalogue, request), **_scored(reader.scorecard(view),
                                                                                        identity))
        return answer("resources", build)

    @router.get("/teams", response_class=HTMLResponse)
    def teams(request: Request, page: str = "1") -> HTMLResponse:
        """Every team, with its monthly cost against its budget."""
        looking(request)
        def build() -> HTMLResponse:
            number = _page(page)
            view = reader.view()
            names = list_teams(view.listings, view.catalogue, number)
            kind = view.snapshot.rules.described.team
            definitions = view.catalogue.definitions(f"{kind}/{n}" for n in names)
            costs = view.catalogue.team_costs(names)
            rows = [(n, costs.get(n, 0.0),
                     definitions[f"{kind}/{n}"][0].budget if f"{kind}/{n}" in definitions else None)
                    for n in names]
            total = count_teams(view.listings, view.catalogue)
            return render("teams.html", section="teams", view=view, rows=rows, page=number, pages=_pages_of(total),
                          total=total, currency=view.snapshot.rules.currency)
        return answer("teams", build)

    @router.get("/teams/{name}", response_class=HTMLResponse)
    def team(request: Request, name: str, page: str = "1") -> HTMLResponse:
        """One team: its people, what it owns and what that costs a month against its budget."""
        looking(request)
        def build() -> HTMLResponse:
            number = _page(page)
            view = reader.view()
            kind = view.snapshot.rules.described.team
            identity = f"{kind}/{name}"
            found = view.catalogue.resources([identity]) if kind is not None else {}
            if identity not in found:
                return not_found("teams", f"There is no team {name} in the catalogue.", view)
            request = found[identity]
            # The first field of people its kind names are the members; the others, the maintainers.
            people = [{p for p in value_at(request.data, pointer) or [] if isinstance(p, str)}
                      for pointer in view.snapshot.rules.describe(request.kind).people]
            members = sorted(people[0]) if people else []
            maintainers = sorted(set().union(*people[1:]))
            owned = sorted((e for e in view.catalogue.owned_by([name]).get(name, []) if e.identity != identity),
                           key=lambda e: e.identity)
            shown = owned[(number - 1) * PAGE_SIZE:number * PAGE_SIZE]
            tiers = view.catalogue.tiers(e.identity for e in shown)
            definition = view.catalogue.definitions([identity])[identity][0]
            spent = view.catalogue.team_costs([name]).get(name, 0.0)
            card = reader.scorecard(view)
            scores = card.owned_by(name) if card else ()
            # Only this page's services: a team of hundreds reads a page of them at a time.
            service_kind = view.snapshot.rules.described.with_template()
            deployed = deployments_of(view, [e.name for e in shown if e.kind == service_kind])
            return render("team.html", section="teams", view=view, name=name, request=request, members=members,
                          deployed=[deployed[e.name] for e in shown if e.name in deployed and e.kind == service_kind],
                          service_kind=service_kind,
                          maintainers=maintainers, owned=shown, total=len(owned), page=number,
                          pages=_pages_of(len(owned)), tiers=tiers, budget=definition.budget, spent=spent,
                          currency=view.snapshot.rules.currency, card=card, scores=scores, tally=tally(scores),
                          standards={s.id: s for s in card.standards} if card else {})
        return answer("teams", build)

    @router.get("/golden-paths", response_class=HTMLResponse)
    def golden_paths(request: Request) -> HTMLResponse:
        """Each template, its parameters and a request to copy."""
        looking(request)
        def build() -> HTMLResponse:
            view = reader.view()
            rules = view.snapshot.rules
            return render("golden_paths.html", section="golden-paths", view=view,
                          templates=[(t, _snippet_text(rules, t.name)) for t in rules.templates.values()])
        return answer("golden-paths", build)

    @router.get("/adoption", response_class=HTMLResponse)
    def adoption(request: Request) -> HTMLResponse:
        """How the paved road is used, as plots."""
        looking(request)
        def build() -> HTMLResponse:
            view = reader.view()
            from bot.stats import duration

            return render("adoption.html", section="adoption", view=view, figures=reader.figures(view),
                          duration=duration)
        return answer("adoption", build)

    @router.get("/standards", response_class=HTMLResponse)
    def standards(request: Request) -> HTMLResponse:
        """The platform's standards, which fail most, and on which resources."""
        looking(request)
        def build() -> HTMLResponse:
            view = reader.view()
            card = reader.scorecard(view)
            latest, following = on_latest(card) if card else (0, 0)
            return render("standards.html", section="standards", view=view, card=card,
                          failing=failing_most(card) if card else [], tally=tally(card.resources) if card else None,
                          latest=_share(latest, following))
        return answer("standards", build)

    return router


def _scored(card: Scorecard | None, identity: str) -> dict[str, Any]:
    """What a resource's page shows of its score: the scorecard, its score, and the standards by id."""
    return {"card": card, "score": card.of(identity) if card else None,
            "standards": {s.id: s for s in card.standards} if card else {}}


@dataclass(frozen=True, slots=True)
class Figures:
    """The adoption page's figures, with their plots drawn."""

    period: str
    planned: int
    applied: int
    weeks: tuple[Any, ...]
    by_kind_svg: str
    by_team_svg: str
    median: str
    p90: str
    lead_count: int
    lead_svg: str
    first_plan: str
    failures: str
    rates_svg: str
    findings: tuple[Any, ...]
    findings_svg: str
    # Satisfaction beside lead time and first plans (`bot.stats.Satisfaction`), the guardrails that fail first,
    # and the newest feedback as inert text: (login, pull request, date, words).
    satisfaction: Any = None
    satisfaction_weeks: tuple[Any, ...] = ()
    satisfaction_kinds: tuple[Any, ...] = ()
    satisfaction_golden_paths: tuple[Any, ...] = ()
    satisfaction_svg: str = ""
    first_failing: tuple[Any, ...] = ()
    feedback: tuple[tuple[str, int, str, str], ...] = ()


# The adoption page lists this many of the newest feedback notes (`paved stats --format csv` has them all).
FEEDBACK_LISTED = 20


def _figures(apply_notes: dict[str, str], plan_notes: dict[str, str], catalogue: Catalogue,
             feedback_notes: dict[str, str] | None = None) -> Figures | None:
    """The figures of `bot.stats` from the notes, drawn as plots; None when nothing is recorded."""
    try:
        from bot import stats
    except ImportError:  # the figures module is not part of this Paved
        return None
    applies = stats.apply_records(apply_notes)
    plans = stats.plan_records(plan_notes)
    if not applies and not plans:
        return None
    asked = {i for record in applies for i in record.actions}
    owners = {i: entries[0].owner for i, entries in catalogue.definitions(asked).items()}
    figures = stats.compute(plans, applies, owners=owners, feedback=feedback_records(feedback_notes or {}))
    kinds = sorted({k for w in figures.weeks for k in w.by_kind})
    top_teams = [t for t, _ in Counter({t: n for w in figures.weeks for t, n in w.by_team.items()}).most_common(5)]
    teams = [*top_teams, "other"] if any(t not in top_teams for w in figures.weeks for t in w.by_team) else top_teams
    recent = figures.weeks[-26:]  # half a year of weeks keeps the plot readable on a phone

    def by_team(week: Any) -> tuple[tuple[str, float], ...]:
        other = sum(n for t, n in week.by_team.items() if t not in top_teams)
        shown = tuple((t, float(week.by_team.get(t, 0))) for t in top_teams)
        return (*shown, ("other", float(other))) if other else shown

    lead = figures.lead_time
    first = figures.first_plan_pass_rate
    failed = figures.apply_failure_rate
    rates = [Bar("first plan passed", (("share", round(first * 100, 1)),)) if first is not None else None,
             Bar("applies failed", (("share", round(failed * 100, 1)),)) if failed is not None else None]
    shown_findings = figures.findings[:stats.TOP_FINDINGS]
    return Figures(
        period=f"{figures.since} on" if figures.since else "all recorded history",
        planned=figures.pull_requests_planned, applied=figures.pull_requests_applied, weeks=tuple(recent),
        by_kind_svg=bar_chart([Bar(w.week, tuple((k, float(w.by_kind.get(k, 0))) for k in kinds)) for w in recent],
                              kinds),
        by_team_svg=bar_chart([Bar(w.week, by_team(w)) for w in recent], teams),
        median=stats.duration(lead.median_hours), p90=stats.duration(lead.p90_hours), lead_count=lead.pull_requests,
        lead_svg=bar_chart([Bar(label, (("hours", round(value, 1)),)) for label, value in
                            (("median", lead.median_hours), ("90th percentile", lead.p90_hours)) if value is not None],
                           ["hours"], unit=" h"),
        first_plan=_share(figures.first_plan_passed, figures.first_plan_total),
        failures=_share(figures.applies_failed, figures.applies),
        rates_svg=bar_chart([b for b in rates if b is not None], ["share"], unit="%", top=100),
        findings=tuple(shown_findings),
        findings_svg=bar_chart([Bar(f.rule, (("pull requests", float(f.pull_requests)),)) for f in shown_findings],
                               ["pull requests"]),
        satisfaction=figures.satisfaction, satisfaction_weeks=figures.satisfaction_weeks[-26:],
        satisfaction_kinds=figures.satisfaction_kinds, satisfaction_golden_paths=figures.satisfaction_golden_paths,
        satisfaction_svg=bar_chart([Bar(w.name, (("average rating", float(w.average)),))
                                    for w in figures.satisfaction_weeks[-26:] if w.average is not None],
                                   ["average rating"], top=3),
        first_failing=figures.first_failing[:stats.TOP_FINDINGS],
        feedback=tuple((inert(n.login, 39), n.pull_request, n.at[:10], inert(n.text, 500))
                       for n in figures.feedback[:FEEDBACK_LISTED]))


def _share(part: int, whole: int) -> str:
    return f"{part} of {whole} ({part / whole:.0%})" if whole else "none yet"


def _environments(catalogue: Catalogue, request: Any) -> tuple[str, ...]:
    """The names a resource's followers are handed (a Service's deployment environments)."""
    if request.kind not in catalogue.rules.described.parent_kinds():
        return ()
    return catalogue.followed([request.name]).get(request.name, ())


_SNIPPETS: dict[tuple[str, str], str] = {}


def _snippet_text(rules: Rules, template: str) -> str:
    key = (rules.digest, template)
    if key not in _SNIPPETS:
        from bot.yamlio import dump_request

        _SNIPPETS[key] = dump_request(snippet(rules, rules.templates[template]),
                                      schema_comment="../../" + rules.kind_paths[rules.described.with_template() or ""])
    return _SNIPPETS[key]


def static_names() -> Iterable[str]:
    return STATIC
