"""The sandbox's HTTP side: GitHub's REST API under `/api/v3`, git's smart HTTP at `/OWNER/REPO.git`,
and the web pages of the OAuth sign-in flow under `/login/oauth/` (`endpoints/oauth.py`) and of registering
an App from a manifest (`endpoints/manifests.py`).

Why the standard library's `ThreadingHTTPServer` rather than FastAPI under uvicorn: it starts in a
few milliseconds with nothing to import, it hands over raw request bytes (git's smart HTTP streams
packfiles, chunked, that must reach `git http-backend` untouched), and the REST layer needs none of
FastAPI's validation or docs since answers are checked against GitHub's own description instead.
One thread per connection, HTTP/1.1 keep-alive, bound to 127.0.0.1 only, with a listen backlog deep
enough for a burst of clients connecting at once (the standard library's 5 resets the rest).

Answers name the forge by the address the client reached it at (`Host`, or `X-Forwarded-Proto`,
`-Host` and `-Port` as a proxy in front of GitHub Enterprise sets them), not by the address it is bound
to: URLs in bodies, `Location` and `Link` headers and the webhook payloads a call causes all lead back
through whatever stands between the client and the forge (a proxy, a fault injector). The forge trusts
these headers; it is a local test forge, never exposed.

Every REST answer carries GitHub's headers (rate limit, media type, request id, `Link` when paged);
failures become GitHub's error bodies, and a crash is logged and answered 500, never a traceback.
Each request is counted against its caller's hourly budget (`ratelimits.py`). A successful `GET` answer
carries an `ETag` computed over its body (weak, `W/"…"`, for JSON, as GitHub sends it); a request whose
`If-None-Match` names it is answered `304 Not Modified` without a body, which costs an authenticated
caller nothing, as on GitHub. Neither `Last-Modified` nor `Cache-Control` is sent: a client revalidates
with the ETag, every time it reads.
A repository's operations are served under `/repositories/ID` too, as GitHub serves them: that is where
the 301/307 for a name a repository had before a rename leads (`endpoints/common.py`); git's smart HTTP
redirects such a name's first request to the new address, and git follows.
Observers (see `recording.py`) may watch every exchange; the conformance tests use that. `faults.py`
makes some REST calls fail on purpose, as GitHub sometimes does.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
import subprocess
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import quote, urlsplit

from . import gitrepo, recording
from .auth import ANONYMOUS, Need, Principal
from .errors import DOCS, ApiError
from .faults import BEFORE_ACTING, SECONDARY_DOCS, SECONDARY_MESSAGE, FaultKind, Faults
from .github import READ_CODE, WRITE_CODE, RefUpdate, SandboxGitHub
from .model import StoredRepo
from .render import Urls, serving
from .routing import Request, Response, Routes, parse_query

log = logging.getLogger(__name__)

API_PREFIX = "/api/v3"
ADMIN_PREFIX = "/_sandbox"
# github.com's web URLs the sandbox serves beside the API: sign-in, and registering an App from a manifest.
WEB_PREFIXES = ("/login/oauth/", "/settings/apps/", "/organizations/")
_GIT_ENDPOINTS = ("/info/refs", "/git-upload-pack", "/git-receive-pack")  # git's smart HTTP protocol
# A host as a URL may name it: a DNS name or IPv4 address, or an IPv6 address in brackets; a port apart.
_HOST = re.compile(r"(?P<name>[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::(?P<port>[0-9]{1,5}))?")
_DEFAULT_PORTS = {"http": "80", "https": "443"}
# A repository named by its id, where GitHub's redirects for a renamed repository lead.
_BY_ID = re.compile(r"^/repositories/(?P<id>[0-9]{1,18})(?P<rest>/.*)?$")


class SandboxServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # The listen backlog: connections the kernel holds until the accept loop takes them. socketserver's 5
    # makes a burst of 32 clients meet resets; the kernel caps it at `net.core.somaxconn` anyway.
    request_queue_size = 1024
    faults: Faults | None = None  # see `faults.py`; set through `Sandbox.faults`

    def __init__(self, forge: SandboxGitHub, routes: Routes, admin_routes: Routes, port: int = 0,
                 web_routes: Routes | None = None) -> None:
        self.forge = forge
        self.routes = routes
        self.admin_routes = admin_routes
        self.web_routes = web_routes or Routes()
        super().__init__(("127.0.0.1", port), _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body leave in one write, without Nagle: otherwise every keep-alive request waits
    # for the client's delayed ACK (~40 ms).
    wbufsize = 1 << 16
    disable_nagle_algorithm = True
    server: SandboxServer
    server_version = "GitHub.com"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    # -- reading -----------------------------------------------------------------------------------------------

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    # -- dispatching -------------------------------------------------------------------------------------------

    def _urls(self) -> Urls:
        """The forge's addresses as this client reached it: `X-Forwarded-*` where a proxy set them, else `Host`.

        A list (proxies in a row) counts by its first value, the one the client used. A value that is not a
        plain scheme, host or port is ignored, so a header cannot put anything else into a URL.
        """
        bound = self.server.forge.bound_urls

        def first(name: str) -> str:
            return (self.headers.get(name) or "").split(",")[0].strip()

        scheme = first("X-Forwarded-Proto").lower() or bound.web.split("://", 1)[0]
        host = _HOST.fullmatch(first("X-Forwarded-Host") or first("Host"))
        port = first("X-Forwarded-Port")
        if scheme not in _DEFAULT_PORTS or host is None or (port and not port.isdigit()):
            return bound
        port = port or host["port"] or ""
        web = f"{scheme}://{host['name']}" + (f":{port}" if port and port != _DEFAULT_PORTS[scheme] else "")
        return Urls(web=web, api=f"{web}{API_PREFIX}")

    def _dispatch(self) -> None:
        with serving(self._urls()):
            self._dispatch_here()

    def _dispatch_here(self) -> None:
        started = time.monotonic()
        split = urlsplit(self.path)
        path = split.path
        try:
            body = self._read_body()
        except (OSError, ValueError):
            self.close_connection = True
            return
        if path == API_PREFIX or path.startswith(API_PREFIX + "/"):
            self._rest(path[len(API_PREFIX):] or "/", split.query, body, started, self.server.routes)
        elif path.startswith(ADMIN_PREFIX + "/"):
            self._rest(path, split.query, body, started, self.server.admin_routes, admin=True)
        elif path.startswith(WEB_PREFIXES):
            self._web(path, split.query, body)
        elif self._is_git(path):
            try:
                self._git(path, split.query, body)
            except Exception:
                log.exception("git %s failed", self.path)
                self._send(500, b"git failed\n", {"Content-Type": "text/plain"})
        elif path in ("/", ""):
            self._send(200, b"Paved sandbox forge. REST API at /api/v3\n", {"Content-Type": "text/plain"})
        else:
            self._send(404, b"Not Found\n", {"Content-Type": "text/plain"})

    def _rest(self, path: str, query: str, body: bytes, started: float, routes: Routes, admin: bool = False) -> None:
        forge = self.server.forge
        request_id = uuid.uuid4().hex[:20].upper()
        headers: dict[str, str] = {
            "X-GitHub-Media-Type": "github.v3; format=json",
            "X-GitHub-Api-Version-Selected": "2022-11-28",
            "X-GitHub-Request-Id": request_id,
            "Access-Control-Expose-Headers": "ETag, Link, Location, Retry-After, X-GitHub-OTP, X-RateLimit-Limit, "
                                             "X-RateLimit-Remaining, X-RateLimit-Used, X-RateLimit-Resource, "
                                             "X-RateLimit-Reset",
        }
        request = Request(self.command, path, parse_query(query), self.headers, body, ANONYMOUS,
                          f"{forge.urls.api}" if not admin else f"{forge.urls.web}", forge=forge)
        route_template = ""
        fault: FaultKind | None = None
        try:
            try:
                request.principal = forge.access.identify(self.headers.get("Authorization"))
            finally:
                # Refusals count against the caller's address too, and carry the headers, as on GitHub.
                if not admin:
                    headers.update(self._count(request.principal, path))
                    request.response_headers.update(headers)
            if admin and not request.principal.is_site_admin:
                raise ApiError(401 if request.principal.kind == "anonymous" else 403,
                               "The sandbox administration API needs the admin token")
            routed = path if admin else _by_name(forge, path)
            request.path = routed
            found = routes.match(self.command, routed)
            if found is None:
                raise ApiError(404, "Not Found")
            route, request.params = found
            route_template = route.template
            request.route = route_template
            faults = None if admin else self.server.faults
            if faults is not None:
                fault = faults.draw(self.command, path)
                if fault is not None and fault in BEFORE_ACTING:
                    raise _fault_answer(fault, request_id, faults.plan.retry_after)
            response = route.handler(request)
        except ApiError as error:
            headers.update(error.headers)
            response = Response(error.status, error.body())
        except Exception:
            log.exception("%s %s failed", self.command, self.path)
            response = Response(500, {"message": "Server Error", "documentation_url": DOCS, "status": "500"})
        for key, value in request.response_headers.items():
            headers.setdefault(key, value)
        if "Link" in request.response_headers:
            headers["Link"] = request.response_headers["Link"]
        raw = self._encode(response)
        if response.status != 204:
            headers["Content-Type"] = response.content_type
        headers.update(response.headers)
        status = response.status
        # GitHub answers a conditional GET with 304 on every operation that sends an ETag, though its REST
        # description lists 304 for only some of them (`pulls/get`, `issues/get`, `repos/get-content`, ...;
        # not `repos/get`): the sandbox does as GitHub does, and the conformance check accepts a 304 from any
        # GET that answers its request's `If-None-Match` (`tests/conformance.py`).
        if not admin and self.command in ("GET", "HEAD") and status == 200:
            headers["ETag"] = entity_tag(raw, headers["Content-Type"])
            if none_match(self.headers.get("If-None-Match"), headers["ETag"]):
                status, raw = 304, b""
                del headers["Content-Type"]
                if path.rstrip("/") != "/rate_limit":  # it took nothing to give back (`_count`)
                    headers.update(forge.rate_limits.give_back(request.principal, self.client_address[0]))
        if fault == "slow" and self.server.faults is not None:
            time.sleep(self.server.faults.plan.slow_seconds)
        if fault == "drop":
            status, headers, raw = 0, {}, b""  # done, and no answer: the connection closes unanswered
            self.close_connection = True
        else:
            self._send(status, raw, headers)
        if not admin:
            recording.notify_exchange(recording.Exchange(
                method=self.command, path=path, query=query, route=route_template, params=dict(request.params),
                request_headers={k: v for k, v in self.headers.items()}, request_body=body,
                status=status, response_headers=headers, response_body=raw,
                duration=time.monotonic() - started, fault=fault or "",
            ))

    def _count(self, principal: Principal, path: str) -> dict[str, str]:
        """Count the request against its caller's budget (`GET /rate_limit` is free, as on GitHub); the rate
        limit headers for its answer. Raises `ApiError` 403 when the budget is spent."""
        limits = self.server.forge.rate_limits
        if self.command in ("GET", "HEAD") and path.rstrip("/") == "/rate_limit":
            return limits.peek(principal, self.client_address[0])
        return limits.take(principal, self.client_address[0])

    def _web(self, path: str, query: str, body: bytes) -> None:
        """A web page or form post: no API headers, no rate limit, not recorded (the REST description lacks it)."""
        forge = self.server.forge
        request = Request(self.command, path, parse_query(query), self.headers, body, ANONYMOUS, forge.urls.web,
                          forge=forge)
        try:
            found = self.server.web_routes.match(self.command, path)
            if found is None:
                raise ApiError(404, "Not Found")
            route, request.params = found
            response = route.handler(request)
        except ApiError as error:
            response = Response(error.status, f"{error.message}\n".encode(), content_type="text/plain; charset=utf-8")
        except Exception:
            log.exception("%s %s failed", self.command, self.path)
            response = Response(500, b"Server Error\n", content_type="text/plain; charset=utf-8")
        self._send(response.status, self._encode(response), {"Content-Type": response.content_type,
                                                             **response.headers})

    @staticmethod
    def _encode(response: Response) -> bytes:
        if response.status == 204:
            return b""
        if isinstance(response.body, bytes):
            return response.body
        return json.dumps(response.body, separators=(",", ":")).encode()

    def _send(self, status: int, raw: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        if status != 304:  # a 304's Content-Length would have to be the 200's; it has no body either way
            self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        if self.command != "HEAD" and status not in (204, 304):
            self.wfile.write(raw)

    # -- git smart HTTP ------------------------------------------------------------------------------------------

    @staticmethod
    def _is_git(path: str) -> bool:
        return path.endswith(_GIT_ENDPOINTS)

    def _git(self, path: str, query: str, body: bytes) -> None:
        forge = self.server.forge
        suffix = next(end for end in _GIT_ENDPOINTS if path.endswith(end))
        repo_part, tail = path[1:-len(suffix)], suffix[1:]
        owner, _, name = repo_part.partition("/")
        service = parse_query(query).get("service", "") if tail == "info/refs" else tail
        writing = service == "git-receive-pack"
        try:
            principal = forge.access.identify(self.headers.get("Authorization"))
        except ApiError:
            return self._git_refuse(401, "Invalid username or token. Password authentication is not supported "
                                         "for Git operations.")
        repo = forge.find_repo(owner, name.removesuffix(".git"))
        if repo is None:
            repo = forge.moved_repo(owner, name.removesuffix(".git"))
            if repo is not None and forge.access.can_see(principal, repo) and tail == "info/refs":
                # A name the repository had before a rename: git follows the redirect of its first request and
                # talks to the new address from then on (git's `http.followRedirects`, `initial` by default).
                moved = f"{forge.urls.web}/{forge.render.repo_path(repo)}" + (".git" if name.endswith(".git") else "")
                return self._send(301, b"", {"Location": f"{moved}/{tail}" + (f"?{query}" if query else "")})
        if repo is None or not forge.access.can_see(principal, repo):
            if principal.kind == "anonymous":
                return self._git_refuse(401, "Authentication required")
            return self._git_refuse(404, "Repository not found.")
        need: Need = WRITE_CODE if writing else READ_CODE
        if not forge.access.may(principal, repo, need):
            if principal.kind == "anonymous":
                return self._git_refuse(401, "Authentication required")
            return self._git_refuse(403, f"Permission to {owner}/{name.removesuffix('.git')}.git denied to "
                                         f"{principal.login or 'anonymous'}.")
        if writing and repo.archived:
            return self._git_refuse(403, "This repository was archived so it is read-only.")
        git = forge.git(repo)
        relative = git.path.relative_to(forge.repos_dir).as_posix()
        env = gitrepo.git_environment({
            "GIT_PROJECT_ROOT": str(forge.repos_dir),
            "GIT_HTTP_EXPORT_ALL": "1",
            "PATH_INFO": f"/{relative}/{tail}",
            "REQUEST_METHOD": self.command,
            "QUERY_STRING": query,
            "CONTENT_TYPE": self.headers.get("Content-Type") or "",
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_USER": principal.login or "anonymous",
            "REMOTE_ADDR": self.client_address[0],
            "GIT_PROTOCOL": self.headers.get("Git-Protocol") or "",
            "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding") or "",
        })
        dropped = False
        if writing and tail == "git-receive-pack":
            faults = self.server.faults
            dropped = faults is not None and faults.draw(self.command, path, kinds=("drop",)) == "drop"
            env.update(forge.push_rules(principal, repo).environment())
            with forge.repo_lock(repo):
                before = git.refs()
                output = self._cgi(env, body)
                after = git.refs()
            updates = [RefUpdate(ref, before.get(ref, gitrepo.ZERO_SHA), after.get(ref, gitrepo.ZERO_SHA))
                       for ref in sorted(set(before) | set(after)) if before.get(ref) != after.get(ref)]
            if updates:
                try:
                    forge.after_push(repo, updates, principal.account)
                except Exception:
                    log.exception("after-push processing failed for %s", repo.name)
        else:
            output = self._cgi(env, body)
        if dropped:
            self.close_connection = True  # the push is in; its answer never leaves
            return None
        head, _, payload = output.partition(b"\r\n\r\n")
        if not _:
            head, _, payload = output.partition(b"\n\n")
        status = 200
        headers: dict[str, str] = {}
        for line in head.decode(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.lower() == "status":
                status = int(value.strip().split()[0])
            elif key:
                headers[key.strip()] = value.strip()
        self._send(status, payload, headers)
        return None

    def _cgi(self, env: dict[str, str], body: bytes) -> bytes:
        done = subprocess.run(["git", "http-backend"], input=body, capture_output=True, env=env, check=False)
        if done.returncode != 0 and not done.stdout:
            log.error("git http-backend failed: %s", done.stderr.decode(errors="replace"))
            return b"Status: 500 Internal Server Error\r\nContent-Type: text/plain\r\n\r\ngit failed\n"
        return done.stdout

    def _git_refuse(self, status: int, message: str) -> None:
        headers = {"Content-Type": "text/plain; charset=utf-8"}
        if status == 401:
            headers["WWW-Authenticate"] = 'Basic realm="GitHub"'
        self._send(status, (message + "\n").encode(), headers)


def _by_name(forge: SandboxGitHub, path: str) -> str:
    """`/repositories/ID/...` as `/repos/OWNER/NAME/...`: GitHub serves a repository's operations under its id
    too, which is where it redirects a client that used a name the repository had before a rename. An id that
    names no repository is left as it is (and answered 404); access is checked as for the name."""
    found = _BY_ID.match(path)
    repo = forge.store.get(StoredRepo, int(found["id"])) if found else None
    if found is None or repo is None:
        return path
    return f"/repos/{forge.render.repo_path(repo)}{found['rest'] or ''}"


def _fault_answer(fault: FaultKind, request_id: str, retry_after: int) -> ApiError:
    """GitHub's answer for a fault that strikes before anything is done (see `faults.py`)."""
    if fault == "secondary":
        return ApiError(403, SECONDARY_MESSAGE.format(request_id=request_id), documentation_url=SECONDARY_DOCS,
                        headers={"Retry-After": str(retry_after)})
    return ApiError(int(fault), "Server Error")


def entity_tag(body: bytes, content_type: str) -> str:
    """The `ETag` of an answer: a hash of its body, weak for JSON (`W/"…"`, as GitHub marks its JSON answers,
    whose bytes may differ while they mean the same), strong for file bytes, diffs and patches."""
    digest = hashlib.sha256(body).hexdigest()
    return f'W/"{digest}"' if content_type.startswith("application/json") else f'"{digest}"'


def none_match(if_none_match: str | None, etag: str) -> bool:
    """Whether an `If-None-Match` header names `etag` (or is `*`), compared weakly as RFC 9110 asks for it."""
    if not if_none_match:
        return False
    wanted = etag.removeprefix("W/")
    return any(tag == "*" or tag.removeprefix("W/") == wanted
               for tag in (part.strip() for part in if_none_match.split(",")))


def basic_auth(token: str) -> str:
    """An `Authorization` header value as git sends it for `x-access-token:<token>`."""
    return "Basic " + base64.b64encode(f"x-access-token:{token}".encode()).decode()


def quote_path(value: str) -> str:
    return quote(value, safe="")


def serve_in_thread(server: SandboxServer) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              name="sandbox-http", daemon=True)
    thread.start()
    return thread

