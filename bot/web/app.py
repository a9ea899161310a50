"""The web app of `paved serve`: GitHub webhooks in, jobs queued, and health for the orchestrator.

`create_app` takes its collaborators (settings, the work queue, the delivery log) and returns a FastAPI
app with four routes:

- `POST /webhooks/github` reads the raw body (refusing more than the bound before reading it when the
  Content-Length says so), hands headers and bytes to `bot.webhook.parse`, records the delivery, queues
  its job and answers 202. A redelivery of an accepted delivery is answered 200 and not acted on again;
  one whose attempt failed is accepted again. So is a body already accepted under another delivery id (a
  signed delivery replayed): answered 200, not acted on, and logged as a replay.
- `GET /healthz`: the process is up.
- `GET /readyz`: the queue (the SQLite file, or Redis) and the delivery log can be reached, the data
  folder (and in it the mirrors' folder, where damaged mirrors are rebuilt) can be written, and the
  catalogue index has been warmed (below); otherwise 503 saying what is wrong.
- `GET /metrics`: Prometheus metrics (see `bot.adapters.metrics`); every webhook answer is counted there.

When the app starts it warms the catalogue index in a thread of its own (`warm`: by default nothing; `paved
serve` gives `bot.web.jobs.warm_catalogues`), so that the first plan and the first page do not build it:
`/readyz` answers 503 saying which repository is still being indexed until that is done. Deliveries are
accepted and queued meanwhile, and the start-up reconcile is queued once the warming has finished (it
needs the same index, and would only wait for it). A repository that could not be indexed, or a warming
that crashed, is logged and named in `/readyz`'s answer, which is then ready all the same: the index is a
cache that the first plan builds, and an instance kept out of service for it could not plan at all.

Every answer that is not a success is a JSON body `{"message": ...}`; no traceback ever reaches a
response. Unexpected errors are logged with the delivery id and answered 500.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
import threading
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from bot.adapters import metrics
from bot.adapters.deliveries import (
    DeliveryLog,
    DeliveryLogError,
    delivery_context,
    job_context,
    one_line,
    pull_request_of,
)
from bot.adapters.queue import QueueError, WorkQueue
from bot.handlers.router import plan_subject
from bot.settings import Settings
from bot.web.jobs import IndexWarming
from bot.web.signin import SignIn
from bot.webhook import MAX_BODY_BYTES, WebhookError, echo_of, parse

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/webhooks/github"
# How long stopping the app waits for a warming that is indexing a repository to finish it.
WARMING_STOP_SECONDS = 30
# Warms the catalogue index (see `bot.web.jobs.warm_catalogues`), telling the `IndexWarming` as it goes.
Warm = Callable[[Settings, IndexWarming], None]


class _Echo(JSONResponse):
    """The answer to a delivery that only echoes one of Paved's own writes (see `bot.webhook.echo_of`)."""


class _Coalesced(JSONResponse):
    """The answer to a delivery whose work a job already waiting in the queue will do."""


def _error(status: int, message: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"message": message}, status_code=status, headers=headers)


def _loggable(value: str | None) -> str:
    # Header values are chosen by whoever sends the request: keep log lines one line and short.
    return re.sub(r"[^A-Za-z0-9._:-]", "?", value[:64]) if value else "-"


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.strip().isdigit():
            raise WebhookError(400, "the Content-Length header is not a number")
        if int(declared) > limit:
            raise WebhookError(413, f"payload of {int(declared):,} bytes is over the limit of {limit:,}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():  # a chunked body has no Content-Length: count as it comes
        size += len(chunk)
        if size > limit:
            raise WebhookError(413, f"payload is over the limit of {limit:,} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


PROBE_BYTES = 4096  # one block: an empty file needs no room, so it succeeds on a full disk


def _writable(folder: Path) -> bool:
    # Writing a file is the only test that holds for every user (root passes any permission check) and
    # for a read-only or full file system; the block is written through to the disk, where a full one
    # refuses it.
    try:
        with tempfile.TemporaryFile(dir=folder) as probe:
            probe.write(b"\0" * PROBE_BYTES)
            probe.flush()
            os.fsync(probe.fileno())
            return True
    except OSError:
        return False


class _DeliveryContext:
    """ASGI middleware: everything logged while a webhook request is handled, the access log line included,
    carries the delivery id and event from its headers (the route adds the repository once verified)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != WEBHOOK_PATH:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        with delivery_context(_loggable(headers.get("x-github-delivery")), _loggable(headers.get("x-github-event")),
                              None):
            await self.app(scope, receive, send)


def create_app(settings: Settings, queue: WorkQueue, deliveries: DeliveryLog, *, consumers: int = 0,
               flush_locks: bool = False, max_body_bytes: int = MAX_BODY_BYTES,
               signin: SignIn | None = None, warm: Warm | None = None) -> FastAPI:
    """The FastAPI app of `paved serve`.

    While the app runs (its lifespan), `consumers` threads consume the queue in this process; 0 means
    it only enqueues (serve replicas next to `paved worker` processes). `flush_locks` releases locks
    left by a stopped consumer first; ask for it only when no other consumer shares the queue. `signin`
    guards the catalogue (default: from the settings, see `bot.web.signin`). `warm`, when given, warms the
    catalogue index as the app starts, in the background.
    """
    secret = settings.webhook_secret
    own_app = int(settings.github_app_id) if settings.github_app_id and settings.github_app_id.isdigit() else None
    warming = IndexWarming() if warm is not None else None

    def warm_then_reconcile() -> None:
        assert warm is not None and warming is not None
        try:
            warm(settings, warming)
        except Exception as exc:  # the warming's own fault: logged whole, named in one line by /readyz
            why = one_line(f"{type(exc).__name__}: {exc}", settings.secret_values())
            log.error("warming the catalogue index failed: %s", why, exc_info=True)
            warming.stopped(why)
        finally:
            warming.finish()
        if consumers > 0 and not warming.stopping.is_set():
            try:
                queue.reconcile_on_start()
            except QueueError as exc:
                log.error("the start-up reconcile was not queued: %s", exc.message)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(lambda: queue.start(consumers, flush_locks=flush_locks, reconcile=warm is None))
        warmer = None
        if warming is not None:
            warmer = threading.Thread(target=warm_then_reconcile, name="paved catalogue warming", daemon=True)
            warmer.start()
        try:
            yield
        finally:
            if warmer is not None and warming is not None:
                warming.stopping.set()
                await run_in_threadpool(warmer.join, WARMING_STOP_SECONDS)
            await run_in_threadpool(queue.stop)

    app = FastAPI(title="Paved", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.add_middleware(_DeliveryContext)
    # /signin, /oauth/callback, /signout and the session cookies; every catalogue page depends on
    # `signin.viewer` (`dependencies=signin.dependencies()`), which lets everyone in without sign-in settings.
    signin = signin or SignIn(settings, settings.catalogue_repository or "")
    signin.install(app)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail), exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _error(422, "the request is not valid")

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("unexpected error answering %s %s", request.method, request.url.path, exc_info=exc)
        return _error(500, "internal error; it is logged")

    def accept(headers: Mapping[str, str], body: bytes) -> JSONResponse:
        delivery = parse(headers, body, secret.reveal() if secret else None, max_bytes=max_body_bytes)
        with delivery_context(delivery.id, delivery.kind, delivery.repository, pr=pull_request_of(delivery)):
            echo = echo_of(delivery, own_app)
            if echo is not None:
                log.info("not queued: %s", echo)
                return _Echo({"message": f"not queued: {echo}, which needs nothing from Paved", "echo": True},
                             status_code=200)
            duplicate = deliveries.accept(delivery, coalesce=plan_subject(delivery))
            if duplicate is not None and duplicate.absorbed:
                log.info("absorbed by the waiting job of delivery %s", _loggable(duplicate.of))
                return _Coalesced({"message": f"absorbed: the job of delivery {duplicate.of}, still waiting in the "
                                              "queue, plans the same pull request's head as it is when it runs",
                                   "absorbed_by": duplicate.of}, status_code=202)
            if duplicate is not None and duplicate.replay:
                log.warning("replayed delivery: its body is that of delivery %s (%s), so it is not acted on",
                            _loggable(duplicate.of), duplicate.status)
                return JSONResponse({"message": f"duplicate delivery {delivery.id}: its body was accepted before as "
                                                f"delivery {duplicate.of}, which is {duplicate.status}, so it is not "
                                                "acted on again", "duplicate": True, "status": duplicate.status,
                                     "replay_of": duplicate.of}, status_code=200)
            if duplicate is not None:
                log.info("duplicate delivery (already %s): not acting on it again", duplicate.status)
                return JSONResponse({"message": f"duplicate delivery {delivery.id}: it was accepted before and "
                                                f"is {duplicate.status}, so it is not acted on again",
                                     "duplicate": True, "status": duplicate.status}, status_code=200)
            try:
                job = queue.enqueue(delivery)
            except QueueError as exc:
                # Not queued means not accepted: fail it, so that GitHub's redelivery is taken.
                deliveries.finish(delivery.id, "failed", exc.message)
                raise
            with job_context(job):
                log.info("accepted and queued")
            return JSONResponse({"message": f"accepted {delivery.kind}"
                                            + (f" for {delivery.repository}" if delivery.repository else ""),
                                 "delivery": delivery.id}, status_code=202)

    @app.post(WEBHOOK_PATH)
    async def github_webhook(request: Request) -> JSONResponse:
        """Receive one GitHub webhook delivery."""
        answer = await _answer_webhook(request)
        metrics.webhook_answered(request.headers.get("x-github-event"), answer.status_code,
                                 duplicate=answer.status_code == 200,
                                 echo=isinstance(answer, _Echo), coalesced=isinstance(answer, _Coalesced))
        return answer

    async def _answer_webhook(request: Request) -> JSONResponse:
        try:
            body = await _read_body(request, max_body_bytes)
            # Verifying, recording and queueing block (HMAC over the body, SQLite or Redis): off the loop.
            return await run_in_threadpool(accept, dict(request.headers), body)
        except WebhookError as exc:
            log.warning("refused with %d: %s", exc.status, exc.message)
            return _error(exc.status, exc.message)
        except (QueueError, DeliveryLogError) as exc:
            log.error("not accepted: %s", exc.message)
            return _error(503, f"Paved cannot take deliveries right now ({exc.message}); redeliver this one later")
        except Exception:
            log.exception("unexpected error handling the delivery")
            return _error(500, "internal error; it is logged with the delivery id")

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok"}

    @app.get("/readyz")
    def readyz() -> JSONResponse:
        """The queue, the delivery log and the data folder can be reached, and the catalogue index is warm."""
        problems: list[str] = []
        status: dict[str, Any] = {"status": "ready", "queue": queue.backend, "consumers": consumers}
        try:
            status["pending"] = queue.check()
        except QueueError as exc:
            problems.append(exc.message)
        try:
            deliveries.check()
        except DeliveryLogError as exc:
            problems.append(exc.message)
        if not _writable(settings.data_dir):
            problems.append(f"the data folder {settings.data_dir} is not a writable folder")
        elif settings.mirrors.exists() and not _writable(settings.mirrors):
            # Mirrors are a cache that a damaged one is rebuilt from the forge into: not without this.
            problems.append(f"the mirrors folder {settings.mirrors} cannot be written, so a damaged mirror "
                            "cannot be fetched again from GitHub")
        busy = warming.busy() if warming is not None else None
        if problems:
            log.warning("not ready: %s", "; ".join(problems))
        if busy is not None:
            problems.append(busy)  # a start-up step, not a fault: answered, not warned about
        elif warming is not None:
            status["catalogue"] = warming.outcome()
        if problems:
            return _error(503, "not ready: " + "; ".join(problems))
        return JSONResponse(status)

    @app.get("/metrics")
    def prometheus_metrics() -> Response:
        """Prometheus metrics of this process and of the workers sharing its data folder."""
        return Response(metrics.exposition(settings.data_dir, queue.pending), media_type=metrics.CONTENT_TYPE)

    from bot.composition import status_forge
    from bot.web.catalogue import PlatformSource, catalogue_router  # the catalogue's pages, behind sign-in
    from bot.web.deployments import DeploymentBoard  # where services are deployed, read with Paved's own App

    board = DeploymentBoard(lambda: status_forge(settings))
    app.include_router(catalogue_router(PlatformSource.from_settings(settings), dependencies=signin.dependencies(),
                                        deployments=board))
    from bot.web.request_form import RequestForm  # asking for a resource with a form, as the signed-in person

    app.include_router(RequestForm(settings, PlatformSource.from_settings(settings), signin).router())
    return app
