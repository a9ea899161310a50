"""`paved setup`: register Paved's GitHub App in one step, from a manifest, and keep its credentials.

GitHub's manifest flow ("Registering a GitHub App from a manifest"), as Probot runs it:

1. `paved setup` serves a page on 127.0.0.1 with a form that posts the manifest (`bot.app_manifest`: exactly
   the permissions and events Paved uses) to GitHub's new-App form, the user's or an organization's, with a
   random `state` in its URL.
2. The person who opened the page confirms on GitHub, which creates the App and sends the browser back to
   this page's `/callback` with a one-time `code` and the same `state`. An answer without that state did not
   come from this page's form (a forged link, another site): it is refused and nothing is exchanged.
3. The code is exchanged, once, at `POST /app-manifests/{code}/conversions` for the App's id, slug, private
   key, webhook secret and client id and secret, which are written to an env file readable by its owner only
   (`bot.settings.write_env_file`: whole or not at all, never over an existing file unless `--force`), by the
   variable names `paved serve` reads (`bot.settings.app_environment`). Then the command ends.

No secret is printed or logged: the command says where the file is and where the App's page is. The page
answers only requests addressed to 127.0.0.1 or localhost (a site that rebinds its own name to this machine
cannot read the state from it), keeps no access log (the callback's URL holds the code), and tells the
browser to send no referrer and to post the form nowhere but to GitHub.
"""

from __future__ import annotations

import argparse
import html
import json
import logging
import os
import re
import secrets
import socket
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from bot.app_manifest import (
    EVENTS,
    PERMISSIONS,
    GitHubHost,
    check_name,
    check_org,
    check_webhook_url,
    manifest,
    public_url_of,
)
from bot.errors import ConfigurationError, PavedError, UsageError
from bot.settings import app_environment, env_file_of, write_env_file

if TYPE_CHECKING:
    from fastapi import FastAPI

log = logging.getLogger(__name__)

CALLBACK_PATH = "/callback"
EXCHANGE_TIMEOUT = 15.0  # seconds GitHub has to answer the code's conversion
_CODE = re.compile(r"[A-Za-z0-9_-]{1,100}")
_REPO = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+")


@dataclass(frozen=True, slots=True)
class Registration:
    """What `paved setup` was asked to register, and where to keep its credentials."""

    host: GitHubHost
    output: Path
    org: str | None = None
    name: str = "Paved"
    webhook_url: str | None = None
    catalogue_repo: str | None = None
    overwrite: bool = False

    @property
    def public_url(self) -> str | None:
        return public_url_of(self.webhook_url) if self.webhook_url else None

    @property
    def owner(self) -> str:
        return f"the organization {self.org}" if self.org else "your account"


@dataclass(frozen=True, slots=True)
class Registered:
    """The App GitHub registered, and where its credentials were written."""

    app_id: int
    slug: str
    html_url: str
    output: Path


class ManifestFlow:
    """The local page: the form that posts the manifest, and the callback that takes the App's credentials.

    `state` is what this page sent GitHub; `outcome` is set once, to what was `Registered` or the error
    that ended the flow, and `done` tells it happened.
    """

    def __init__(self, registration: Registration, base_url: str, state: str | None = None) -> None:
        self.registration = registration
        self.base_url = base_url
        self.state = state or secrets.token_urlsafe(32)
        self.outcome: Registered | PavedError | None = None
        self.done = threading.Event()
        self._exchanging = threading.Lock()

    @property
    def manifest(self) -> dict[str, Any]:
        r = self.registration
        homepage = r.public_url or (f"{r.host.web}/{r.org}" if r.org else r.host.web)
        return manifest(name=r.name, redirect_url=self.base_url + CALLBACK_PATH, homepage=homepage,
                        webhook_url=r.webhook_url, public_url=r.public_url)

    @property
    def form_action(self) -> str:
        return f"{self.registration.host.new_app_url(self.registration.org)}?state={self.state}"

    def app(self) -> FastAPI:
        from fastapi import FastAPI
        from fastapi.responses import HTMLResponse
        from starlette.middleware.trustedhost import TrustedHostMiddleware

        app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=["127.0.0.1", "localhost"])

        def page(status: int, title: str, body: str) -> HTMLResponse:
            return HTMLResponse(_page(title, body), status_code=status, headers={
                "Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY",
                "X-Content-Type-Options": "nosniff",
                "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
                                           f"form-action {self.registration.host.web}; frame-ancestors 'none'"})

        @app.get("/")
        def form() -> HTMLResponse:
            return page(200, "Register Paved's GitHub App", self._form())

        @app.get(CALLBACK_PATH)
        def callback(code: str = "", state: str = "") -> HTMLResponse:
            status, title, body = self.take(code, state)
            return page(status, title, body)

        return app

    def take(self, code: str, state: str) -> tuple[int, str, str]:
        """Answer GitHub's redirect back: (HTTP status, title, body) of the page to show."""
        if not state or not secrets.compare_digest(state.encode(), self.state.encode()):
            log.warning("refused an answer to paved setup without the state its form sent")
            return 400, "Refused", ("<p>This answer does not carry the state that this page sent to GitHub, so it "
                                    "did not come from its form. Nothing was exchanged.</p>")
        if not _CODE.fullmatch(code):
            return 400, "Refused", "<p>GitHub's answer carries no code to exchange.</p>"
        if not self._exchanging.acquire(blocking=False) or self.done.is_set():
            return 409, "Already answered", "<p>This paved setup has taken GitHub's answer already.</p>"
        try:
            self.outcome = registered = self._register(code)
        except PavedError as error:
            self.outcome = error
            return 502, "Paved's App could not be set up", f"<p>{html.escape(error.message)}</p>" + (
                f"<p>{html.escape(error.hint)}</p>" if error.hint else "")
        finally:
            self.done.set()
        where = html.escape(str(registered.output))
        return 200, "Paved's App is registered", (
            f"<p>GitHub registered <a href=\"{html.escape(registered.html_url)}\">{html.escape(registered.slug)}"
            f"</a>. Its credentials are in <code>{where}</code>, readable by you only.</p>"
            f"<p>Next, <a href=\"{html.escape(registered.html_url)}/installations/new\">install it</a> on "
            f"{html.escape(self.registration.owner)}. You can close this page.</p>")

    def _register(self, code: str) -> Registered:
        r = self.registration
        answer = convert_code(r.host.api, code)
        created = _created(answer)
        values = app_environment(
            api_url=r.host.api, app_id=created.app_id, private_key=str(answer["pem"]),
            webhook_secret=answer.get("webhook_secret"), client_id=str(answer["client_id"]),
            client_secret=str(answer["client_secret"]), session_secret=secrets.token_hex(32),
            public_url=r.public_url, catalogue_repo=r.catalogue_repo)
        comments = (f"Paved's GitHub App {created.slug}: {created.html_url}",
                    "Written by `paved setup`. It holds the App's private key and secrets: keep it readable by you "
                    "only, and out of git.")
        try:
            write_env_file(r.output, values, comments=comments, overwrite=r.overwrite)
        except ConfigurationError as error:
            raise PavedError(f"GitHub registered {created.slug}, but its credentials could not be kept: "
                             f"{error.message}", hint=f"Delete the App at {created.html_url}/advanced and run "
                                                      "paved setup again.") from None
        return Registered(created.app_id, created.slug, created.html_url, r.output)

    def _form(self) -> str:
        r = self.registration
        rows = "".join(f"<tr><td><code>{p.name}</code></td><td>{p.level}</td><td>{p.scope}</td>"
                       f"<td>{html.escape(p.purpose)}</td></tr>" for p in PERMISSIONS)
        if r.webhook_url:
            events = ", ".join(f"<code>{name}</code>" for name, _ in EVENTS)
            hook = f"<p>GitHub delivers {events} to <code>{html.escape(r.webhook_url)}</code>.</p>"
        else:
            hook = "<p>The App has no webhook (as <code>paved ci</code> needs): give <code>--webhook-url</code> for " \
                   "<code>paved serve</code>.</p>"
        return (f"<p>This registers a GitHub App named <strong>{html.escape(r.name)}</strong> on "
                f"{html.escape(r.host.web)}, owned by {html.escape(r.owner)} and installable there only. "
                f"GitHub asks you to confirm, then sends you back here, and its credentials are written to "
                f"<code>{html.escape(str(r.output))}</code>.</p>{hook}"
                f"<table><tr><th>permission</th><th>access</th><th>on</th><th>what Paved does with it</th></tr>"
                f"{rows}</table>"
                f'<form method="post" action="{html.escape(self.form_action)}">'
                f'<input type="hidden" name="manifest" value="{html.escape(json.dumps(self.manifest))}">'
                '<button type="submit" id="register">Register on GitHub</button></form>')


def _page(title: str, body: str) -> str:
    return (f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{html.escape(title)}</title>"
            "<style>body{font-family:system-ui,sans-serif;max-width:52rem;margin:3rem auto;color:#1f2328}"
            "td,th{text-align:left;padding:.2rem .6rem;vertical-align:top}button{padding:.6rem 1.2rem;"
            "font-size:1rem;cursor:pointer}</style></head>"
            f"<body><h1>{html.escape(title)}</h1>{body}</body></html>")


@dataclass(frozen=True, slots=True)
class _Created:
    app_id: int
    slug: str
    html_url: str


def _created(answer: dict[str, Any]) -> _Created:
    """The App's names from the conversion's answer, once it holds everything Paved keeps."""
    app_id, slug, html_url, pem = answer.get("id"), answer.get("slug"), answer.get("html_url"), answer.get("pem")
    missing = [name for name, ok in (("id", isinstance(app_id, int)), ("slug", isinstance(slug, str) and slug),
                                     ("html_url", isinstance(html_url, str)),
                                     ("pem", isinstance(pem, str) and "PRIVATE KEY-----" in pem),
                                     ("client_id", isinstance(answer.get("client_id"), str)),
                                     ("client_secret", isinstance(answer.get("client_secret"), str)))
               if not ok]
    webhook_secret = answer.get("webhook_secret")
    if webhook_secret is not None and not isinstance(webhook_secret, str):
        missing.append("webhook_secret")
    if missing:
        raise PavedError(f"GitHub's answer to the code's conversion lacks a usable {', '.join(missing)}",
                         hint="Delete the App GitHub registered (its settings, Advanced) and run paved setup again.")
    return _Created(int(app_id), str(slug), str(html_url))  # type: ignore[arg-type]


def convert_code(api_url: str, code: str) -> dict[str, Any]:
    """GitHub's answer to `POST /app-manifests/{code}/conversions`: the App and its credentials.

    Sent once, never again: the code is spent by the first answer, and a lost answer cannot be asked for twice.
    Raises `PavedError` saying what GitHub said (never the answer's secrets).
    """
    import requests

    url = f"{api_url.rstrip('/')}/app-manifests/{code}/conversions"
    try:
        answer = requests.post(url, timeout=EXCHANGE_TIMEOUT, headers={
            "Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"})
    except requests.RequestException as exc:
        raise PavedError(f"GitHub at {api_url} could not be asked for the App's credentials: {type(exc).__name__}",
                         hint="If GitHub registered the App meanwhile, delete it (its settings, Advanced) and run "
                              "paved setup again.") from None
    if answer.status_code != 201:
        try:
            said = str(answer.json().get("message") or "")
        except ValueError:
            said = ""
        reason = " (the code was used already, or expired after an hour)" if answer.status_code == 404 else ""
        raise PavedError(f"GitHub refused the App's code with {answer.status_code} {said}{reason}".rstrip(),
                         hint="Delete the App it registered, if any (its settings, Advanced), and run paved setup "
                              "again.")
    try:
        body = answer.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise PavedError("GitHub's answer to the code's conversion is not a JSON object")
    return body


class SetupServer:
    """The local page of `paved setup` on 127.0.0.1 (a free port unless `port` is given), in a thread."""

    def __init__(self, registration: Registration, port: int = 0) -> None:
        import uvicorn

        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as exc:
            sock.close()
            raise UsageError(f"paved setup cannot listen on 127.0.0.1:{port}: {exc.strerror}") from None
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        self.flow = ManifestFlow(registration, self.url)
        # No access log: the callback's URL carries the one-time code.
        self.server = uvicorn.Server(uvicorn.Config(self.flow.app(), log_config=None, access_log=False,
                                                    lifespan="off", server_header=False))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]}, daemon=True,
                                       name="paved-setup")
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise PavedError("paved setup's page did not start")
            time.sleep(0.02)

    def wait(self, timeout: float | None = None) -> Registered:
        """What was registered, once GitHub's answer was taken; raises the `PavedError` that ended the flow."""
        if not self.flow.done.wait(timeout):
            raise PavedError("GitHub's answer did not come back in time")
        outcome = self.flow.outcome
        if isinstance(outcome, PavedError):
            raise outcome
        assert outcome is not None
        return outcome

    def stop(self) -> None:
        """Stop serving, after the page being answered (the last one, saying how it went) has gone out."""
        self.server.should_exit = True
        self.thread.join(timeout=10)


def setup(registration: Registration, *, port: int = 0, out: TextIO = sys.stdout) -> int:
    """Serve the page, wait for GitHub's answer, say where the credentials are; 0 once they are written."""
    if registration.output.exists() and not registration.overwrite:
        raise UsageError(f"{registration.output} exists already", hint="Give another --output, or --force to "
                                                                        "replace it.")
    # Known before GitHub registers anything: credentials that cannot be kept would leave an App to delete.
    folder = next(p for p in registration.output.parents if p.exists())
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(f"{registration.output} cannot be written ({folder} is not writable)",
                         hint="Give another --output.")
    server = SetupServer(registration, port)
    try:
        print(f"Open {server.url}/ in a browser to register Paved's GitHub App on {registration.host.web} for "
              f"{registration.owner}. Waiting for GitHub (Ctrl-C stops).", file=out, flush=True)
        registered = server.wait()
    finally:
        server.stop()
    default = registration.output == env_file_of(os.environ).absolute()
    print(f"Registered the GitHub App {registered.slug}: {registered.html_url}", file=out)
    print(f"Its credentials are in {registered.output} (readable by you only); paved serve reads them "
          + ("from there." if default else f"with PAVED_ENV_FILE={registered.output}."), file=out)
    print(f"Next: install it on {registration.owner}: {registered.html_url}/installations/new", file=out)
    if registration.webhook_url is None:
        print("It has no webhook: run paved setup again with --webhook-url for paved serve.", file=out)
    if registration.catalogue_repo is None:
        print("Before paved serve: set PAVED_CATALOGUE_REPO=OWNER/NAME (the platform repo whose readers may sign in "
              "to the catalogue).", file=out)
    return 0


def registration_of(args: argparse.Namespace) -> Registration:
    """The registration the command line asks for; `UsageError` naming the option that cannot work."""
    host = GitHubHost.parse(args.github_url)
    org = check_org(args.org) if args.org else None
    name = check_name(args.name or (f"Paved ({org})"[:34] if org else "Paved"))
    webhook_url = check_webhook_url(args.webhook_url) if args.webhook_url else None
    if args.catalogue_repo and not _REPO.fullmatch(args.catalogue_repo):
        raise UsageError(f"--catalogue-repo {args.catalogue_repo} is not OWNER/NAME")
    output = Path(args.output).expanduser() if args.output else env_file_of(os.environ)
    return Registration(host=host, output=output.absolute(), org=org, name=name, webhook_url=webhook_url,
                        catalogue_repo=args.catalogue_repo, overwrite=args.force)


def add_commands(subparsers: Any) -> None:
    """Add `setup` to the `paved` parser's subcommands (`subparsers` from `ArgumentParser.add_subparsers()`)."""

    def cmd_setup(args: argparse.Namespace) -> int:
        """Register Paved's GitHub App on GitHub in one step and write its credentials to an env file."""
        return setup(registration_of(args), port=args.port)

    def port(value: str) -> int:
        if not value.isdigit() or not 0 <= int(value) < 65536:
            raise argparse.ArgumentTypeError(f"{value} is not a TCP port")
        return int(value)

    doc = (cmd_setup.__doc__ or "").strip()
    sub = subparsers.add_parser("setup", help=doc, description=doc, epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub.set_defaults(func=cmd_setup)
    sub.add_argument("--org", metavar="ORG", help="register the App for this organization (default: your account)")
    sub.add_argument("--github-url", default="https://github.com", metavar="URL",
                     help="GitHub's address: https://github.com (default), or https://HOST of GitHub Enterprise")
    sub.add_argument("--webhook-url", metavar="URL",
                     help="where GitHub delivers webhooks: https://HOST/webhooks/github of paved serve (default: "
                          "no webhook, as paved ci needs)")
    sub.add_argument("--output", metavar="PATH",
                     help="the env file to write (default: $PAVED_ENV_FILE, or paved.env in the data folder)")
    sub.add_argument("--force", action="store_true", help="replace the env file if it exists")
    sub.add_argument("--name", help="the App's name on GitHub, at most 34 characters (default: Paved, or "
                                    "Paved (ORG))")
    sub.add_argument("--catalogue-repo", metavar="OWNER/NAME",
                     help="the platform repo whose readers may sign in to the catalogue (PAVED_CATALOGUE_REPO)")
    sub.add_argument("--port", type=port, default=0, help="the local page's port on 127.0.0.1 (default: a free one)")


EPILOG = """
The App asks for exactly what Paved uses (bot/app_manifest.py lists each permission and why). paved serve,
paved worker and paved reconcile read the env file: PAVED_ENV_FILE, else paved.env in the data folder; a
variable set in the environment wins over the file.
"""
