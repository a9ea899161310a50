"""The catalogue's view of where services are deployed: each service's status read from GitHub, never in the way.

A service's page and its team's page show where it is deployed (`bot.deployments`), read through Paved's own
forge (the App's installation on the platform repo, as `/paved status` reads it; never a visitor's token). A
page must not wait on GitHub or fail with it, so `DeploymentBoard`:

- reads on its own few threads and waits for them a short time (`seconds`); what is not read by then is shown as
  "GitHub did not answer in time", and the read goes on, to be shown by the next view;
- keeps what it read per service for `keep_seconds` (a minute): a busy page asks GitHub once a minute at most,
  and every one of those asks is conditional, so an unchanged service costs no rate-limited request anyway
  (`bot.adapters.github.ETagCache`). A failure is kept for a few seconds only, so GitHub is not hammered
  while it is down and the page recovers soon after it is back;
- turns every failure into words (`Reading.problem`): GitHub down, slow or rate-limited, no credentials, a
  repository not made yet or not made by Paved (which Paved does not read). No exception reaches the page.

What it reads from GitHub is hostile text (a workflow's name, a login, a URL): the templates show it through
Jinja's autoescape and make links of `http(s)` addresses only (`bot.deployments.web_url`).
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for
from dataclasses import dataclass
from typing import Protocol

from bot.deployments import ServiceStatus, ServiceTarget
from bot.errors import PavedError

log = logging.getLogger(__name__)

SECONDS = 3.0  # how long a page waits for GitHub before showing what it has
KEEP_SECONDS = 60.0  # how long a read is shown before GitHub is asked again
KEEP_FAILURE_SECONDS = 10.0  # how long a failed read is shown before GitHub is asked again
WORKERS = 4  # reads at once, all pages together: a team's page of services does not flood GitHub
KEPT = 4096  # services remembered, least recently read dropped first


class ReadsDeployments(Protocol):
    """What the board needs of a forge: `bot.forge.Forge.deployment_status`."""

    def deployment_status(self, repo: str, environments: Iterable[str]) -> ServiceStatus | None: ...


@dataclass(frozen=True, slots=True)
class Reading:
    """What a page shows of one service's deployments: its status as read, or why there is none (`problem`)."""

    service: str
    repository: str
    status: ServiceStatus | None = None
    problem: str = ""
    failed: bool = False  # GitHub could not be read (kept a few seconds only), not "there is nothing to read"


class DeploymentBoard:
    """Reads services' deployment status for the catalogue's pages, in time or not at all (see the module).

    `forge` builds Paved's forge; it is called once, on a reading thread (building an App's client asks GitHub
    for its installation), and again after it failed.
    """

    def __init__(self, forge: Callable[[], ReadsDeployments], *, seconds: float = SECONDS,
                 keep_seconds: float = KEEP_SECONDS, keep_failure_seconds: float = KEEP_FAILURE_SECONDS,
                 workers: int = WORKERS, clock: Callable[[], float] = time.monotonic) -> None:
        self._build = forge
        self.seconds = seconds
        self.keep_seconds = keep_seconds
        self.keep_failure_seconds = keep_failure_seconds
        self._clock = clock
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="paved-deployments")
        # Re-entrant: a read that is done already runs its callback (`_keep`) at once, inside `read`'s hold.
        self._lock = threading.RLock()
        self._forge: ReadsDeployments | None = None
        self._forge_lock = threading.Lock()
        self._kept: OrderedDict[tuple[str, tuple[str, ...]], tuple[Reading, float]] = OrderedDict()
        self._reading: dict[tuple[str, tuple[str, ...]], Future[Reading]] = {}

    def close(self) -> None:
        """Stop reading (the app is shutting down): reads not started are dropped, running ones are not waited for."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    def read(self, targets: Sequence[ServiceTarget]) -> dict[str, Reading]:
        """Each target's reading, by service: kept ones at once, the others read together within `seconds`."""
        found: dict[str, Reading] = {}
        waiting: dict[str, Future[Reading]] = {}
        now = self._clock()
        with self._lock:
            for target in targets:
                key = (target.repository, target.environments)
                kept = self._kept.get(key)
                if kept is not None and kept[1] > now:
                    self._kept.move_to_end(key)
                    found[target.service] = kept[0]
                    continue
                running = self._reading.get(key)
                if running is None:
                    try:
                        running = self._pool.submit(self._read, target)
                    except RuntimeError:  # shut down: the app is stopping
                        found[target.service] = Reading(target.service, target.repository,
                                                        problem="Paved is shutting down.")
                        continue
                    self._reading[key] = running
                    running.add_done_callback(functools.partial(self._keep, key))
                waiting[target.service] = running
        if waiting:
            wait_for(list(waiting.values()), timeout=self.seconds)
        for target in targets:
            running = waiting.get(target.service)
            if running is None:
                continue
            if running.done() and not running.cancelled():
                found[target.service] = running.result()
            else:
                found[target.service] = Reading(target.service, target.repository, failed=True, problem=(
                    f"GitHub did not answer within {self.seconds:g} seconds; Paved goes on asking, so reload the "
                    "page in a moment."))
        return found

    def read_one(self, target: ServiceTarget) -> Reading:
        return self.read([target])[target.service]

    # -- on the reading threads --------------------------------------------------------------------------------

    def _keep(self, key: tuple[str, tuple[str, ...]], done: Future[Reading]) -> None:
        with self._lock:
            self._reading.pop(key, None)
            if done.cancelled():
                return
            reading = done.result()
            keep = self.keep_failure_seconds if reading.failed else self.keep_seconds
            self._kept[key] = (reading, self._clock() + keep)
            self._kept.move_to_end(key)
            while len(self._kept) > KEPT:
                self._kept.popitem(last=False)

    def _read(self, target: ServiceTarget) -> Reading:
        """Never raises: every failure becomes the reading's `problem`."""
        from bot.providers.github.shared import MARK_PROPERTY, MARK_VALUE

        try:
            status = self._forge_once().deployment_status(target.repository, target.environments)
        except PavedError as exc:  # GitHub's refusals, its silence and missing credentials alike
            log.warning("could not read the deployments of %s: %s", target.repository, exc.message)
            return Reading(target.service, target.repository, failed=True,
                           problem=f"Paved could not read them from GitHub: {exc.message}")
        except Exception:
            log.exception("unexpected error reading the deployments of %s", target.repository)
            return Reading(target.service, target.repository, failed=True,
                           problem="Paved could not read them from GitHub: something unexpected went wrong; it is "
                                   "logged.")
        if status is None:
            return Reading(target.service, target.repository, problem=(
                f"{target.repository} does not exist yet: Paved creates it when the request is applied."))
        if status.properties.get(MARK_PROPERTY) != MARK_VALUE:
            return Reading(target.service, target.repository, problem=(
                f"{target.repository} exists, but Paved did not create it (it lacks the {MARK_PROPERTY} mark), "
                "so Paved does not read it."))
        return Reading(target.service, target.repository, status=status)

    def _forge_once(self) -> ReadsDeployments:
        with self._forge_lock:
            if self._forge is None:
                self._forge = self._build()
            return self._forge

