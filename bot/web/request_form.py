"""The catalogue's request form: ask for a resource without writing YAML, and get the pull request a person
would open.

`GET /request` lists the kinds; `GET /request/KIND` shows the kind's form, made from its JSON Schema at the
default branch's head (`bot.forms`). Posting it:

1. builds the request as data and writes it as `paved new` does (`bot.yamlio.dump_request`: the
   `yaml-language-server` line, block style), at `catalog/PLURAL/NAME.yaml`;
2. judges that file in the catalogue at the default branch's head (`bot.model.WithFile` over the mirror's
   tree, planned by `bot.plan.plan_requests`: the same core as `paved validate` and `paved plan`, so unique
   names, owners and references are checked too), and shows each finding of the new file at its field;
3. with no errors, shows the file and the plan the pull request would get (`bot.render.text`), and keeps the
   request server-side (`PendingRequests`, in the data folder: short-lived, the person's own).

Confirming (`POST /requests/ID/open`) sends the person through GitHub's OAuth web flow once more, with a
one-time `state` bound to the kept request; `GET /request/callback` takes the code, exchanges it for the
person's user access token, checks the token is theirs, and with it (never the App's credentials) creates a
branch, commits the file and opens the pull request (`Proposing`, `bot.adapters.github.person_forge`). The
token lives in that one call: it is neither stored nor put in the session, which still never carries a
GitHub credential. Every step is idempotent (the branch is named after the kept request), so confirming again
after a failure finishes what was started, and a request opened once shows its pull request.

Everything is behind sign-in (`SignIn.viewer`): there is no one to open a pull request as otherwise, so
without sign-in settings the form says it needs them. Every POST carries the session's CSRF token in a
hidden field (`csrf`), checked before anything else; session cookies are SameSite=Lax. What visitors type is
data only: never template source, never YAML text (the request is built as data and dumped). No answer
carries a traceback.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import time
import urllib.parse
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from bot.app_manifest import REQUEST_CALLBACK_PATH
from bot.errors import PavedError
from bot.forge import Proposing, PullRequest, at_least
from bot.forms import Form, Placed, answers_of, form_for, place_findings, request_data
from bot.model import Finding, WithFile
from bot.settings import Settings
from bot.web.catalogue import PlatformSource, Reader, Unavailable, View
from bot.web.catalogue import _environment as catalogue_environment  # the catalogue's filters and settings
from bot.web.signin import SignIn, SignInError, Viewer

log = logging.getLogger(__name__)

CALLBACK_PATH = REQUEST_CALLBACK_PATH  # the App's second callback URL (see docs/request-form.md)
MAX_FORM_BYTES = 64 * 1024  # a request's answers are a few hundred bytes; anything near this is not one
MAX_FIELDS = 400
PENDING_SECONDS = 30 * 60  # how long a checked request may wait for its confirmation
STATE_SECONDS = 10 * 60  # how long a sign-in to open the pull request may take (GitHub's codes live as long)
KEPT_SECONDS = 24 * 3600  # how long a kept request is remembered, to show its pull request again
_SAFE_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
_ID = re.compile(r"[A-Za-z0-9_-]{16,64}")


# -- requests kept while they wait for confirmation ----------------------------------------------------------

@dataclass(frozen=True, slots=True)
class PendingRequest:
    """A checked request waiting for its person to confirm it, or opened (`pull_request` set)."""

    id: str
    login: str
    kind: str
    name: str
    path: str
    text: str
    base: str  # the default branch the pull request goes to
    head: str  # the commit it was judged at
    created: int
    state_digest: str | None = None  # SHA-256 of the one-time state of the sign-in under way
    state_expires: int = 0
    pull_request: str | None = None  # its URL, once opened
    number: int = 0

    @property
    def branch(self) -> str:
        return f"paved/request/{self.kind.lower()}-{self.name}-{self.id[:8].lower()}"


class PendingRequests:
    """Kept requests, a JSON file each in the data folder, so that any replica sharing it can finish one."""

    def __init__(self, folder: Path, clock: Callable[[], float] = time.time) -> None:
        self.folder = folder
        self.clock = clock

    def _file(self, request_id: str) -> Path:
        if not _ID.fullmatch(request_id):
            raise KeyError(request_id)
        return self.folder / f"{request_id}.json"

    def save(self, pending: PendingRequest) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        target = self._file(pending.id)
        temporary = target.with_suffix(f".{secrets.token_hex(4)}.tmp")
        temporary.write_text(json.dumps(dataclasses.asdict(pending)), encoding="utf-8")
        os.replace(temporary, target)  # whole or not at all, whoever reads it
        self._prune()

    def load(self, request_id: str) -> PendingRequest | None:
        try:
            raw = json.loads(self._file(request_id).read_text(encoding="utf-8"))
            pending = PendingRequest(**raw)
        except (KeyError, OSError, ValueError, TypeError):
            return None
        return pending if self.clock() - pending.created <= KEPT_SECONDS else None

    def _prune(self) -> None:
        cutoff = self.clock() - KEPT_SECONDS
        for old in self.folder.glob("*.json"):
            try:
                if old.stat().st_mtime < cutoff:
                    old.unlink()
            except OSError:  # another replica pruned it first
                continue


def _digest(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()


# -- opening the pull request as the person ---------------------------------------------------------------------

def pull_request_body(pending: PendingRequest) -> str:
    """What the pull request says: who asks for what, and the file (fenced, so what it holds stays text)."""
    longest = max((len(run) for run in re.findall(r"`+", pending.text)), default=0)
    fence = "`" * max(3, longest + 1)
    return (f"{pending.login} asks for a new {pending.kind}, `{pending.name}`, with the catalogue's request form.\n\n"
            f"Paved plans this pull request as any other: its owners' approval and the `paved/plan` check decide "
            f"whether it merges.\n\n{fence}yaml\n{pending.text.rstrip()}\n{fence}\n")


def open_as_person(forge: Proposing, repo: str, pending: PendingRequest) -> PullRequest:
    """Branch, file and pull request for `pending`, through `forge` acting as its person; each step is skipped
    when it is done already, so a second run finishes what a first one started and opens nothing twice."""
    branch = pending.branch
    if forge.branch_head(repo, branch) is None:
        start = forge.branch_head(repo, pending.base)
        if start is None:
            raise PavedError(f"{repo} has no branch {pending.base} to start from")
        forge.create_branch(repo, branch, start)
    data = pending.text.encode()
    blob = forge.file_blob(repo, branch, pending.path)
    wanted = hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()
    if blob != wanted:
        forge.put_file(repo, branch=branch, path=pending.path, data=data, replacing=blob,
                       message=f"Request {pending.kind} {pending.name}")
    found = forge.pull_request_from(repo, branch)
    if found is not None:
        return found
    return forge.open_pull_request(repo, head=branch, base=pending.base, title=f"Request {pending.kind} {pending.name}",
                                   body=pull_request_body(pending))


def _person_forge(settings: Settings, token: str) -> Proposing:
    from bot.adapters.github import person_forge

    return person_forge(settings.github_api_url, token)


# -- judging the answers ------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class JudgedRequest:
    """The request the answers make, as written, and what judging it in the catalogue found."""

    path: str
    text: str
    placed: Placed
    plan_text: str
    exists: bool


def _form_of(view: View, kind: str) -> Form | None:
    rules = view.snapshot.rules
    schema = rules.kinds.get(kind)
    if schema is None:
        return None
    described = rules.describe(kind)
    return form_for(schema, owner=described.owner, teams=view.catalogue.teams(), is_team=described.is_team)


def _judge(view: View, form: Form, answers: Mapping[str, list[str]]) -> JudgedRequest:
    from bot.plan import plan_requests
    from bot.render import text as render_text
    from bot.yamlio import dump_request

    rules = view.snapshot.rules
    data = request_data(form, answers)
    name = data.get("metadata", {}).get("name") if isinstance(data.get("metadata"), dict) else None
    # The file's name comes from the request's; one that is no safe file name is judged under a stand-in
    # while its field's finding says what is wrong with it.
    stem = name if isinstance(name, str) and _SAFE_NAME.fullmatch(name) else "new-request"
    folder = f"catalog/{rules.describe(form.kind).plural}/"
    path = f"{folder}{stem}.yaml"
    schema_comment = "../" * (path.count("/")) + rules.kind_paths[form.kind]
    text = dump_request(data, schema_comment=schema_comment)
    exists = path in view.tree.files(folder)
    head = WithFile(view.tree, path, text.encode())
    planned = plan_requests(view.tree, head, store=view.catalogue.index, rules=rules)
    mine = [f for f in planned.plan.findings if f.path == path]
    # A name taken elsewhere is found at the other request (the first one keeps it): say so at the name.
    identity = f"{form.kind}/{name}"
    mine += [Finding(path, 0, 0, form.name, f"{identity} exists already, in {f.path}: choose another name", "error",
                     f.rule) for f in planned.plan.findings
             if f.path != path and f.rule == "catalog.unique-identity" and f.message.startswith(f"{identity} is ")]
    if exists:
        mine.append(Finding(path, 0, 0, form.name, f"{path} exists already: choose another name", "error",
                            "catalog.path"))
    return JudgedRequest(path, text, place_findings(form, mine), render_text.render(planned.plan), exists)


# -- the routes ---------------------------------------------------------------------------------------------------

class _FormRefusal(Exception):
    def __init__(self, status: int, title: str, message: str) -> None:
        super().__init__(message)
        self.status, self.title, self.message = status, title, message


async def _answers(request: Request) -> dict[str, list[str]]:
    """The form's answers: URL-encoded, bounded, UTF-8; anything else is refused (400/413)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_FORM_BYTES:
        raise _FormRefusal(413, "Too large", "That is more than a request's form holds.")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise _FormRefusal(413, "Too large", "That is more than a request's form holds.")
    try:
        return urllib.parse.parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=MAX_FIELDS,
                                     strict_parsing=False)
    except (UnicodeDecodeError, ValueError) as exc:
        raise _FormRefusal(400, "Bad request", "The form's answers could not be read.") from exc


class RequestForm:
    """The request form's routes for one platform repo, behind `signin`."""

    def __init__(self, settings: Settings, source: PlatformSource, signin: SignIn,
                 proposer: Callable[[str], Proposing] | None = None, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.source = source
        self.signin = signin
        self.reader = Reader(source)
        self.pending = PendingRequests(settings.data_dir / "requests", clock)
        self.proposer = proposer or (lambda token: _person_forge(settings, token))
        self.clock = clock
        self.env = catalogue_environment()
        self.env.globals.update(url=lambda path, **_: path, source=source, link=source.link,
                                resource_url=lambda identity: "/resources/" + urllib.parse.quote(identity),
                                team_url=lambda team: "/teams/" + urllib.parse.quote(team, safe=""))

    # -- pieces -------------------------------------------------------------------------------------------------

    def _render(self, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        context.setdefault("view", None)
        context.setdefault("signed_in", None)
        try:
            page = self.env.get_template(template).render(section="request", **context)
        except jinja2.TemplateError:
            log.exception("the request form's page %s could not be rendered", template)
            page = "<!doctype html><title>Internal error</title><p>Something went wrong; it is logged.</p>"
            status = 500
        return HTMLResponse(page, status_code=status, headers={"Cache-Control": "no-store"})

    def _refusal(self, exc: _FormRefusal, login: str | None) -> HTMLResponse:
        return self._render("request_message.html", exc.status, title=exc.title, message=exc.message,
                            signed_in=login)

    def _login(self, viewer: Viewer) -> str:
        if viewer.login is None:
            raise _FormRefusal(403, "Sign-in needed", (
                "Requesting through the catalogue opens a pull request as you, so it needs you to sign in with "
                "GitHub, and this catalogue runs without sign-in. Ask for it with `paved new KIND NAME` and a "
                "pull request instead, or ask the platform team to set up sign-in (docs/request-form.md)."))
        return viewer.login

    def _csrf(self, request: Request) -> str:
        token = request.session.get("csrf")
        if not isinstance(token, str) or len(token) < 32:
            token = secrets.token_urlsafe(32)
            request.session["csrf"] = token
        return token

    def _check_csrf(self, request: Request, answers: Mapping[str, list[str]]) -> None:
        expected = request.session.get("csrf")
        sent = (answers.get("csrf") or [""])[0]
        if not isinstance(expected, str) or not sent or not hmac.compare_digest(expected.encode(), sent.encode()):
            raise _FormRefusal(403, "This form has expired", (
                "The form was not sent from this catalogue's own page, or your session changed since it was shown. "
                "Open the form again and send it from there."))

    def _view(self) -> View:
        try:
            return self.reader.view()
        except Unavailable as exc:
            raise _FormRefusal(503, "Not available yet", exc.message) from exc

    def _guarded(self, login: str | None, build: Callable[[], Response]) -> Response:
        try:
            return build()
        except _FormRefusal as exc:
            return self._refusal(exc, login)
        except PavedError as exc:
            log.warning("request form: %s", exc.message)
            return self._refusal(_FormRefusal(503, "Not available", exc.message), login)
        except Exception:
            log.exception("unexpected error in the request form")
            return self._refusal(_FormRefusal(500, "Internal error", "Something went wrong; it is logged."), login)

    def _callback_url(self, request: Request) -> str:
        base = self.settings.public_url or str(request.base_url).rstrip("/")
        return base + CALLBACK_PATH

    def _may_push(self, login: str) -> bool:
        accounts = self.signin.accounts
        if accounts is None:
            return False
        try:
            return at_least(accounts.permission_of(login), "write")
        except SignInError as exc:
            log.warning("could not read %s's permission on %s: %s", login, self.source.name, exc.message)
            return True  # GitHub decides when the branch is pushed; the page does not guess

    # -- the router ---------------------------------------------------------------------------------------------

    def router(self) -> APIRouter:
        @asynccontextmanager
        async def lifespan(_app: Any) -> AsyncIterator[None]:
            try:
                yield
            finally:
                self.reader.close()

        router = APIRouter(lifespan=lifespan)
        viewer = Depends(self.signin.viewer)

        @router.get("/request", response_class=HTMLResponse)
        def kinds(request: Request, who: Viewer = viewer) -> Response:
            """The kinds one may ask for."""
            def build() -> Response:
                login = self._login(who)
                view = self._view()
                rules = view.snapshot.rules
                offered = [(k, str(rules.kinds[k].get("title") or k), str(rules.kinds[k].get("description") or ""))
                           for k in rules.kinds]
                return self._render("request_kinds.html", view=view, kinds=offered, signed_in=login,
                                    title="Request something new")
            return self._guarded(who.login, build)

        # Before `/request/{kind}`, which would take it for a kind.
        @router.get(CALLBACK_PATH)
        def callback(request: Request, who: Viewer = viewer, code: str | None = None, state: str | None = None,
                     error: str | None = None) -> Response:
            """GitHub sends the person back: open the pull request with the token the code gives, once."""
            return self._guarded(who.login, lambda: self._callback(request, who, code, state, error))

        @router.get("/request/{kind}", response_class=HTMLResponse)
        def blank(request: Request, kind: str, who: Viewer = viewer) -> Response:
            """The kind's form, at its defaults."""
            def build() -> Response:
                login = self._login(who)
                view = self._view()
                form = self._form(view, kind)
                return self._render("request_form.html", view=view, form=form, answers={}, placed=None,
                                    judged=None, csrf=self._csrf(request), signed_in=login, pending=None,
                                    may_push=True, title=f"Request a new {form.title}")
            return self._guarded(who.login, build)

        @router.post("/request/{kind}", response_class=HTMLResponse)
        async def check(request: Request, kind: str, who: Viewer = viewer) -> Response:
            """Judge the answers: errors at their fields, or the file, its plan and the button to open it."""
            try:
                answers = await _answers(request)
            except _FormRefusal as exc:
                return self._refusal(exc, who.login)
            return await run_in_threadpool(self._guarded, who.login, lambda: self._check(request, kind, who, answers))

        @router.post("/requests/{request_id}/open")
        async def confirm(request: Request, request_id: str, who: Viewer = viewer) -> Response:
            """Send the person to GitHub once more, to open the pull request with their own token."""
            try:
                answers = await _answers(request)
            except _FormRefusal as exc:
                return self._refusal(exc, who.login)
            return await run_in_threadpool(self._guarded, who.login,
                                           lambda: self._confirm(request, request_id, who, answers))

        @router.get("/requests/{request_id}", response_class=HTMLResponse)
        def shown(request: Request, request_id: str, who: Viewer = viewer) -> Response:
            """A kept request: its pull request once opened."""
            def build() -> Response:
                login = self._login(who)
                pending = self._mine(request_id, login)
                return self._render("request_done.html", pending=pending, signed_in=login, csrf=self._csrf(request),
                                    title=f"Request {pending.kind} {pending.name}")
            return self._guarded(who.login, build)

        return router

    # -- what the routes do -------------------------------------------------------------------------------------

    def _form(self, view: View, kind: str) -> Form:
        form = _form_of(view, kind)
        if form is None:
            raise _FormRefusal(404, "Not found", f"There is no kind {kind[:60]!r} in the platform's schemas.")
        return form

    def _mine(self, request_id: str, login: str) -> PendingRequest:
        pending = self.pending.load(request_id)
        if pending is None or pending.login != login:
            raise _FormRefusal(404, "Not found", "There is no such request of yours: it may have expired. Fill in the "
                                             "form again.")
        return pending

    def _check(self, request: Request, kind: str, who: Viewer, answers: dict[str, list[str]]) -> Response:
        login = self._login(who)
        self._check_csrf(request, answers)
        view = self._view()
        form = self._form(view, kind)
        judged = _judge(view, form, answers)
        shown = answers_of(form, request_data(form, answers))
        context: dict[str, Any] = {"view": view, "form": form, "answers": shown, "placed": judged.placed,
                                   "csrf": self._csrf(request), "signed_in": login, "judged": judged,
                                   "title": f"Request a new {form.title}", "pending": None, "may_push": True}
        if judged.placed.has_errors:
            return self._render("request_form.html", 422, **context)
        data = request_data(form, answers)
        pending = PendingRequest(id=secrets.token_urlsafe(18), login=login, kind=form.kind,
                                 name=str(data["metadata"]["name"]), path=judged.path, text=judged.text,
                                 base=view.snapshot.refs.branch, head=view.snapshot.refs.head,
                                 created=int(self.clock()))
        self.pending.save(pending)
        return self._render("request_form.html", **{**context, "pending": pending,
                                                    "may_push": self._may_push(login)})

    def _confirm(self, request: Request, request_id: str, who: Viewer, answers: dict[str, list[str]]) -> Response:
        login = self._login(who)
        self._check_csrf(request, answers)
        pending = self._mine(request_id, login)
        if pending.pull_request:
            return RedirectResponse(f"/requests/{pending.id}", status_code=303)
        if self.clock() - pending.created > PENDING_SECONDS:
            raise _FormRefusal(410, "This request has expired", "It was checked more than 30 minutes ago: fill in the "
                                                            "form again, so that it is judged as the catalogue is now.")
        accounts = self.signin.accounts
        assert accounts is not None  # signed in, so sign-in is on
        secret = secrets.token_urlsafe(24)
        # Intent first: the state is kept (as a digest) before the person is sent to GitHub with it.
        self.pending.save(dataclasses.replace(pending, state_digest=_digest(secret),
                                              state_expires=int(self.clock()) + STATE_SECONDS))
        log.info("%s confirms %s %s: asking GitHub for their token", login, pending.kind, pending.name)
        return RedirectResponse(accounts.authorize_url(self._callback_url(request), f"{pending.id}.{secret}"),
                                status_code=303)

    def _callback(self, request: Request, who: Viewer, code: str | None, state: str | None,
                  error: str | None) -> Response:
        login = self._login(who)
        request_id, _, secret = (state or "").partition(".")
        pending = self._mine(request_id, login) if _ID.fullmatch(request_id) else None
        if pending is None or not secret or pending.state_digest is None \
                or not hmac.compare_digest(pending.state_digest, _digest(secret)) \
                or self.clock() > pending.state_expires:
            raise _FormRefusal(400, "This confirmation has expired", (
                "It was not started here, was used already, or took too long. Open your request again and confirm "
                "it once more."))
        # One use: the state is forgotten before the code is exchanged.
        self.pending.save(dataclasses.replace(pending, state_digest=None, state_expires=0))
        if error or not code:
            raise _FormRefusal(401, "Not opened", "GitHub did not confirm who you are"
                           + (" (you cancelled)" if error == "access_denied" else "")
                           + f"; nothing was opened. Confirm again from /requests/{pending.id}.")
        accounts = self.signin.accounts
        assert accounts is not None
        repo = self.source.name
        try:
            token = accounts.exchange(code, self._callback_url(request))
            try:
                whose = accounts.login_of(token)
                if whose != login:
                    raise _FormRefusal(403, "Signed in as someone else", (
                        f"GitHub signed you in as {whose}, but {login} prepared this request: nothing was opened. "
                        f"Sign in to GitHub as {login} and confirm again."))
                opened = open_as_person(self.proposer(token), repo, pending)
            finally:
                del token  # used for this request only
        except SignInError as exc:
            log.warning("opening %s's request failed at sign-in: %s", login, exc.message)
            raise _FormRefusal(502, "Not opened", "GitHub could not confirm who you are just now; nothing was opened. "
                                              f"Confirm again from /requests/{pending.id}.") from exc
        except PavedError as exc:
            log.warning("opening %s's request on %s failed: %s", login, repo, exc.message)
            raise _FormRefusal(502, "Not opened", (
                f"GitHub refused to open it as you ({exc.message}). You need write access to {repo} to push a "
                f"branch; confirm again from /requests/{pending.id} once you have it.")) from exc
        self.pending.save(dataclasses.replace(pending, state_digest=None, state_expires=0,
                                              pull_request=opened.url or None, number=opened.number))
        log.info("%s opened %s#%d for %s %s", login, repo, opened.number, pending.kind, pending.name)
        return RedirectResponse(f"/requests/{pending.id}", status_code=303)
