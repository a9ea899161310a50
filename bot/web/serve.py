"""`paved serve` and `paved worker`: check the settings, build the service's parts, run until stopped.

Both take the job, the periodic task and what to do when a delivery's last attempt failed as callables
(see `bot.adapters.queue.Job`, `Periodic` and `GaveUp`); by default they are Paved's own,
`bot.web.jobs.handle_delivery`, `reconcile` and `say_gave_up`. `serve` runs the web app
under uvicorn, with consumer threads inside it unless the queue is in Redis; `worker` consumes the queue
in the foreground.
"""

from __future__ import annotations

import logging

import uvicorn

from bot.adapters.deliveries import open_delivery_log
from bot.adapters.queue import GaveUp, Job, Periodic, WorkQueue, make_queue
from bot.errors import PavedError, UsageError
from bot.files import private_folder
from bot.settings import Command, Settings
from bot.web.app import Warm, create_app
from bot.web.jobs import handle_delivery, is_plan, reconcile, say_gave_up, warm_catalogues
from bot.web.logs import configure_logging

log = logging.getLogger(__name__)


def _queue(settings: Settings, command: Command, job: Job, periodic: Periodic | None,
           gave_up: GaveUp | None) -> WorkQueue:
    settings.check_service(command)
    configure_logging(settings)
    try:
        private_folder(settings.data_dir)
    except OSError as exc:
        raise PavedError(f"the data folder {settings.data_dir} cannot be created: {exc.strerror}",
                         hint="Point PAVED_DATA_DIR at a folder this process may write.") from exc
    return make_queue(settings, open_delivery_log(settings), job, periodic, gave_up=gave_up, is_plan=is_plan)


def serve(settings: Settings, job: Job = handle_delivery, periodic: Periodic | None = reconcile,
          gave_up: GaveUp | None = say_gave_up, warm: Warm | None = warm_catalogues) -> int:
    """Receive webhooks on `settings.host:port` until stopped; returns the exit code.

    As it starts it warms the catalogue index of every platform repo in the background (`warm`), and
    `/readyz` says so until that is done.

    On the embedded SQLite queue this process also runs the jobs (and, being the queue's only consumer,
    releases at once the leases a previous run left behind, instead of letting them expire). With Redis
    it only enqueues unless `queue_workers` asks for consumer threads.
    """
    queue = _queue(settings, "serve", job, periodic, gave_up)
    consumers = settings.consumer_threads("serve")
    app = create_app(settings, queue, queue.deliveries, consumers=consumers,
                     flush_locks=queue.backend == "sqlite" and consumers > 0, warm=warm)
    log.info("paved serve on http://%s:%d: %s queue%s, %d consumer thread(s), GitHub API at %s", settings.host,
             settings.port, queue.backend, f" at {settings.redis_display}" if settings.redis_display else "",
             consumers, settings.github_api_url)
    server = uvicorn.Server(uvicorn.Config(app, host=settings.host, port=settings.port, log_config=None,
                                           server_header=False, lifespan="on"))
    try:
        server.run()
    except SystemExit as exc:  # uvicorn exits when it cannot start; say so the way every command does
        raise PavedError(f"paved serve could not start on {settings.host}:{settings.port}",
                         hint="The log above says why (a port in use, an unreachable queue).") from exc
    return 0


def worker(settings: Settings, job: Job = handle_delivery, periodic: Periodic | None = reconcile,
           gave_up: GaveUp | None = say_gave_up, *, flush_locks: bool = False) -> int:
    """Run jobs from the queue in the foreground until SIGTERM or SIGINT; returns the exit code.

    `flush_locks` first releases every lease of the queue, when no other worker is running. It is not
    needed after a crash: the leases of a killed worker expire on their own (`PAVED_LEASE_SECONDS`).
    """
    if settings.queue_immediate:
        raise UsageError("PAVED_QUEUE_IMMEDIATE is set: jobs run inside paved serve, so a worker has nothing "
                         "to consume")
    queue = _queue(settings, "worker", job, periodic, gave_up)
    workers = settings.consumer_threads("worker")
    log.info("paved worker: %s queue%s, %d thread(s), GitHub API at %s", queue.backend,
             f" at {settings.redis_display}" if settings.redis_display else "", workers, settings.github_api_url)
    queue.run_worker(workers, flush_locks=flush_locks)
    return 0


class Background:
    """`paved serve` running in a thread of this process on a free loopback port (the demo, benchmarks).

    It warms the catalogue index only when given `warm`, so that a benchmark measuring a cold first plan
    (`bench/latency.py`) still finds the index cold."""

    def __init__(self, settings: Settings, job: Job = handle_delivery, periodic: Periodic | None = reconcile,
                 gave_up: GaveUp | None = say_gave_up, *, consumers: int = 2, warm: Warm | None = None) -> None:
        import socket
        import threading
        import time

        self.deliveries = open_delivery_log(settings)
        self.queue = make_queue(settings, self.deliveries, job, periodic, gave_up=gave_up, is_plan=is_plan)
        app = create_app(settings, self.queue, self.deliveries, consumers=consumers, warm=warm)
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_config=None, lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise PavedError("Paved's service did not start", hint="The log above says why.")
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
