"""The `paved serve` and `paved worker` commands, added to the `paved` parser by `add_commands`.

This module stays light: FastAPI, uvicorn and Huey are imported only when one of the commands runs,
so the other `paved` commands start as fast as before.
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import TYPE_CHECKING, Any

from bot.web.jobs import handle_delivery, reconcile

if TYPE_CHECKING:
    from bot.adapters.queue import Job, Periodic
    from bot.settings import Settings

SERVICE_VARIABLES = """
environment:
  PAVED_WEBHOOK_SECRET            the webhook's secret (serve; at least 16 characters, not a placeholder)
  PAVED_GITHUB_APP_ID             the GitHub App's id, with its key in
  PAVED_GITHUB_PRIVATE_KEY        the App's private key (PEM), or
  PAVED_GITHUB_PRIVATE_KEY_FILE   a file holding it
  PAVED_GITHUB_TOKEN              or a token instead of an App
  PAVED_GITHUB_API_URL            default https://api.github.com (GitHub Enterprise, the sandbox forge)
  PAVED_REDIS_URL                 queue in Redis (scale-out); default: SQLite in the data folder
  PAVED_QUEUE_NAME                default paved (to share one Redis between installations)
  PAVED_QUEUE_WORKERS             consumer threads (serve: 2, or 0 with Redis; worker: 2)
  PAVED_QUEUE_IMMEDIATE           1: run jobs inline while answering (for tests)
  PAVED_RECONCILE_MINUTES         reconcile every N minutes and at start (default 15; 0: never)
  PAVED_RECONCILE_RESERVE         % of GitHub's hourly requests reconcile leaves to plans and applies (default 20)
  PAVED_LEASE_SECONDS             a lease outlives its holder's last renewal by this (default 60; at least 3)
  PAVED_REPOSITORIES              with a token: the platform repos to reconcile (owner/name, comma-separated)
  PAVED_HOST, PAVED_PORT          where serve listens (default 127.0.0.1:8000)
  PAVED_DATA_DIR                  Paved's data folder (default ~/.local/share/paved)
  PAVED_ENV_FILE                  a file of these variables, as paved setup writes it (default paved.env in
                                  the data folder, when there is one); the environment wins over it
  PAVED_LOG_FORMAT, PAVED_LOG_LEVEL   text or json; DEBUG, INFO (default), WARNING, ERROR
  PAVED_CATALOGUE_REPO            the platform repo the web catalogue shows (default: the only PAVED_REPOSITORIES)
  PAVED_GITHUB_CLIENT_ID          sign-in to the catalogue with GitHub: the App's OAuth client id,
  PAVED_GITHUB_CLIENT_SECRET      its client secret,
  PAVED_SESSION_SECRET            the key that signs session cookies (at least 16 characters)
  PAVED_PUBLIC_URL                where visitors reach Paved (https; GitHub sends them back there)
  PAVED_ALLOW_OPEN                1: serve the catalogue without sign-in on a non-loopback address
  (any variable)                  a PostgreSQL DSN that a platform repo's paved.yaml names for its databases
"""


def _settings(args: argparse.Namespace) -> Settings:
    from bot.settings import Settings

    settings = Settings.from_env()
    changes: dict[str, Any] = {}
    if getattr(args, "host", None):
        changes["host"] = args.host
    if getattr(args, "port", None):
        changes["port"] = args.port
    if args.workers is not None:
        changes["queue_workers"] = args.workers
    if getattr(args, "verbose", False):
        changes["log_level"] = "DEBUG"
    return dataclasses.replace(settings, **changes)


def add_commands(subparsers: Any, *, job: Job = handle_delivery, periodic: Periodic | None = reconcile) -> None:
    """Add `serve` and `worker` to the `paved` parser's subcommands, running `job` and `periodic`.

    `subparsers` is what `ArgumentParser.add_subparsers()` returned. Each command sets `func(args) -> int`.
    """

    def cmd_serve(args: argparse.Namespace) -> int:
        """Receive GitHub webhooks and run their jobs in a queue."""
        from bot.web.serve import serve

        return serve(_settings(args), job, periodic)

    def cmd_worker(args: argparse.Namespace) -> int:
        """Run jobs from the queue (in Redis for scale-out), next to `paved serve` replicas."""
        from bot.web.serve import worker

        return worker(_settings(args), job, periodic, flush_locks=args.flush_locks)

    def workers(value: str) -> int:
        if not value.isdigit():
            raise argparse.ArgumentTypeError(f"{value} is not a whole number")
        return int(value)

    def port(value: str) -> int:
        if not value.isdigit() or not 0 < int(value) < 65536:
            raise argparse.ArgumentTypeError(f"{value} is not a TCP port")
        return int(value)

    for name, func in (("serve", cmd_serve), ("worker", cmd_worker)):
        doc = (func.__doc__ or "").strip()
        sub = subparsers.add_parser(name, help=doc, description=doc, epilog=SERVICE_VARIABLES,
                                    formatter_class=argparse.RawDescriptionHelpFormatter)
        sub.set_defaults(func=func)
        if name == "serve":
            sub.add_argument("--host", help="the address to listen on (default: $PAVED_HOST or 127.0.0.1)")
            sub.add_argument("--port", type=port, help="the port to listen on (default: $PAVED_PORT or 8000)")
            sub.add_argument("--workers", type=workers, metavar="N",
                             help="consumer threads in this process (default: 2, or 0 when PAVED_REDIS_URL is set)")
        else:
            sub.add_argument("--workers", type=workers, metavar="N", help="consumer threads (default: 2)")
            sub.add_argument("--flush-locks", action="store_true",
                             help="first release every lease of the queue, held or not (only when no other worker"
                                  " runs); not needed after a crash: a killed worker's leases expire within a "
                                  "minute and the next job takes them")
