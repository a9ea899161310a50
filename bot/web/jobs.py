"""What `paved serve` and `paved worker` run: a delivery's job, reconcile on start and on a schedule, the
word to a pull request when Paved gave up on a delivery about it, and the catalogue index warmed at start-up.

Each job gets its collaborators from the composition root (`bot.composition.context_for`) and hands
them to the handlers. It stays light to import (no FastAPI, no Huey): the `paved` parser imports it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING

from bot.composition import context_for, github_client, platform_repositories
from bot.errors import ConfigurationError, PavedError

if TYPE_CHECKING:
    from bot.adapters.leases import Held
    from bot.adapters.queue import Work
    from bot.handlers import Context
    from bot.handlers.drift import Pacing, RepoReconciled
    from bot.settings import Settings
    from bot.webhook import Delivery

log = logging.getLogger(__name__)


def handle_delivery(delivery: Delivery, work: Work) -> None:
    """Run the use case a delivery calls for (see `bot.handlers.router`); plans and applies are counted.

    Applies hold the repository's lease and plans the pull request's, so however many deliveries race,
    one repository applies once at a time and one pull request gets one plan comment and one check run.
    """
    from bot.adapters import metrics
    from bot.handlers.router import route

    if delivery.repository is None:
        log.info("%s names no repository; nothing to do", delivery.kind)
        return
    ctx = context_for(work.settings, delivery.repository, delivery.installation_id)
    try:
        with _lease_for(delivery, work) as held:
            routed = route(ctx if held is None else replace(ctx, lease=held), delivery)
    finally:
        ctx.store.close()
    metrics.job_routed(routed.handler, routed.result)
    log.info("%s: %s", routed.handler, routed.result)


def _lease_for(delivery: Delivery, work: Work) -> AbstractContextManager[Held | None]:
    """The lease a delivery's job holds: the repository's when it may apply, the pull request's when it
    may plan (which raise `RepoBusy` and `PullRequestBusy`, to run again later), else none."""
    repo = delivery.repository or ""
    if _applies(delivery):
        # Applies for one repository never overlap (across every consumer of the queue).
        return work.repo_lock(repo)
    numbers = _plans(delivery)
    if numbers:
        return work.pull_request_lock(repo, numbers)
    return nullcontext()


def _command(delivery: Delivery) -> str | None:
    """The `/paved` command a new comment gives, if it gives one."""
    from bot.commands import Command, parse

    if delivery.event != "issue_comment" or delivery.action != "created":
        return None
    parsed = parse(str((delivery.payload.get("comment") or {}).get("body") or ""))
    return parsed.name if isinstance(parsed, Command) else None


def _applies(delivery: Delivery) -> bool:
    """Whether the delivery may apply: a push to the default branch, or a `/paved retry` comment."""
    if delivery.event == "push":
        payload = delivery.payload
        branch = (payload.get("repository") or {}).get("default_branch")
        return bool(branch) and payload.get("ref") == f"refs/heads/{branch}" and not payload.get("deleted")
    return _command(delivery) == "retry"


def _plans(delivery: Delivery) -> tuple[int, ...]:
    """The pull requests a delivery may plan (see `bot.handlers.router`), a merge group's by the pull request
    it was made for: their numbers, or none.

    A rerun of the check names its pull requests in the payload; one naming none (a head shared with a
    fork) is planned without a lease, as the router has to ask GitHub which pull requests it means.
    """
    from bot.handlers.router import PLAN_ACTIONS
    from bot.webhook import merge_group_of

    payload = delivery.payload
    number: object = None
    reviewed = delivery.kind in ("pull_request_review.submitted", "pull_request_review.dismissed")
    if (delivery.event == "pull_request" and delivery.action in PLAN_ACTIONS) or reviewed:
        number = (payload.get("pull_request") or {}).get("number")
    elif delivery.kind == "check_run.rerequested":
        pulls = (payload.get("check_run") or {}).get("pull_requests") or []
        return tuple(p["number"] for p in pulls if isinstance(p, dict) and isinstance(p.get("number"), int))
    elif _command(delivery) == "plan":
        number = (payload.get("issue") or {}).get("number")
    elif delivery.kind == "merge_group.checks_requested":
        # A merge group is planned under the lease of the pull request it was made for, so that
        # redeliveries of its event never publish two check runs on its head.
        group = merge_group_of(delivery)
        number = group.pull_request if group is not None else None
    return (number,) if isinstance(number, int) else ()


def is_plan(delivery: Delivery) -> bool:
    """Whether a delivery's job plans a pull request (its opening or a push to it, a review, a re-run of
    the check, `/paved plan`) or a merge group: such jobs run before other waiting work, as someone (or the
    merge queue) waits on their check."""
    return bool(_plans(delivery)) or delivery.kind == "check_run.rerequested"


def _platform_contexts(settings: Settings, repos: list[str],
                       pacing: Pacing | None = None) -> Iterator[tuple[str, Context | PavedError]]:
    """Each of `repos` that is a platform repo, with the collaborators for work on it (or the trouble
    that kept them from being built); the others are left out. With `pacing`, the search ends once
    GitHub's budget is down to its reserve: the repositories not looked at wait for the next reconcile.

    A platform repo is one whose default branch has the kind schemas the rules need
    (`bot.rules.is_platform_repo`): asked of GitHub in one request, with nothing fetched into the
    mirrors. An App may be installed on every repository of an organization, the services it
    scaffolded among them, and fetching each into a mirror to find out is what this spares. The
    `paved-managed` mark would name the scaffolded ones for free, but not the organization's other
    repositories, and it is not what makes a platform repo; the folder is.
    """
    from bot.rules import KINDS_DIR

    for repo in repos:
        try:
            ctx = context_for(settings, repo)
        except PavedError as exc:
            yield repo, exc
            continue
        if pacing is not None and not pacing.affords(ctx.forge, f"looking for platform repos at {repo}"):
            ctx.store.close()
            return
        try:
            platform = ctx.forge.has_path(repo, KINDS_DIR)
        except PavedError as exc:
            ctx.store.close()
            yield repo, exc
            continue
        if not platform:
            ctx.store.close()
            log.debug("reconcile passes over %s: it is not a platform repo", repo)
            continue
        yield repo, ctx


class IndexWarming:
    """Where indexing each platform repo's catalogue at start-up stands: `warm_catalogues` tells it as it goes,
    `/readyz` reads it from another thread, and `stopping` asks the warming to stop before its next repo."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._repos: dict[str, str | None] = {}  # repo -> how its indexing ended; None while it runs
        self._problem: str | None = None
        self._finished = False
        self.stopping = threading.Event()

    def indexing(self, repo: str) -> None:
        with self._lock:
            self._repos[repo] = None

    def indexed(self, repo: str, resources: int, head: str) -> None:
        with self._lock:
            self._repos[repo] = f"indexed: {resources:,} {'resource' if resources == 1 else 'resources'} at {head[:12]}"

    def failed(self, repo: str, why: str) -> None:
        with self._lock:
            self._repos[repo] = f"not indexed at start-up ({why}); the first plan indexes it"

    def stopped(self, why: str) -> None:
        """The warming stopped short (it could not list the platform repos, or it crashed): `why`, one line."""
        with self._lock:
            self._problem = why
            for repo, outcome in self._repos.items():
                if outcome is None:
                    self._repos[repo] = f"not indexed at start-up ({why}); the first plan indexes it"

    def finish(self) -> None:
        with self._lock:
            self._finished = True

    def busy(self) -> str | None:
        """What the warming is still doing, in words for `/readyz`; None once it has finished."""
        with self._lock:
            if self._finished:
                return None
            running = [repo for repo, outcome in self._repos.items() if outcome is None]
        if running:
            return f"the catalogue of {', '.join(running)} is still being indexed"
        return "the catalogue is still being indexed (finding the platform repositories)"

    def outcome(self) -> dict[str, str]:
        """How indexing each repo ended, and under `"problem"` why the warming stopped short, if it did."""
        with self._lock:
            found = {repo: outcome or "" for repo, outcome in self._repos.items()}
            if self._problem is not None:
                found["problem"] = f"indexing stopped at start-up: {self._problem}"
            return found


def warm_catalogues(settings: Settings, warming: IndexWarming) -> None:
    """Index the catalogue at the default branch's head of every platform repo, as a pull request's plan
    and the catalogue's pages do on first use (`bot.catalogue.judge`, by that head's rules), so that
    neither waits for it: at 10,000 resources a cold first plan took 10 s, the first page 16 s.

    The mirror fetches the branch, the applied ref and the notes, as an apply does (the pages read them
    too). A repository that cannot be indexed is told to `warming` and the next one is tried.
    """
    from bot.apply import APPLIED_REF, NOTES_REF
    from bot.catalogue import judge
    from bot.rules import load_rules

    for repo, built in _platform_contexts(settings, platform_repositories(settings)):
        if isinstance(built, PavedError):
            warming.failed(repo, built.message)
            continue
        try:
            if warming.stopping.is_set():
                return
            warming.indexing(repo)
            branch = built.forge.default_branch(repo)
            built.mirror.fetch(repo, [branch])
            for ref in (APPLIED_REF, NOTES_REF):
                built.mirror.fetch_if_present(repo, ref)
            head = built.mirror.resolve(repo, f"refs/heads/{branch}") or branch
            tree = built.mirror.tree(repo, head)
            try:
                resources = judge(tree, load_rules(tree), built.store).state.resources
            finally:
                tree.close()
            warming.indexed(repo, resources, head)
            log.info("the catalogue of %s at %s is indexed: %d resources", repo, head[:12], resources)
        except PavedError as exc:  # one repository's trouble does not stop the others
            log.warning("the catalogue of %s was not indexed at start-up: %s", repo, exc.message)
            warming.failed(repo, exc.message)
        finally:
            built.store.close()


def reconcile(work: Work) -> None:
    """Catch up on what a crash or a lost delivery left undone, and look for drift: apply a default
    branch that is ahead of its last applied commit (a failed apply again when its backoff says so),
    check every resource against what exists (`bot.handlers.drift`; it stops at the settings' reserve of
    GitHub's hourly budget, and the next reconcile goes on from there), and plan open pull requests whose
    head has no plan comment."""
    from bot.adapters.queue import PullRequestBusy, RepoBusy
    from bot.handlers.drift import reconcile_repo
    from bot.handlers.pull_request import is_planned, plan_pull_request

    pacing = _pacing(work.settings)
    for repo, built in _platform_contexts(work.settings, platform_repositories(work.settings), pacing):
        if isinstance(built, PavedError):  # one repository's trouble does not stop the others
            log.warning("reconcile skipped %s: %s", repo, built.message)
            continue
        ctx = built
        try:
            try:
                with work.repo_lock(repo) as held:
                    done = reconcile_repo(replace(ctx, lease=held), repo, pacing=pacing)
                _log_reconciled(done)
            except RepoBusy:
                log.info("reconcile left %s to the apply that is running", repo)
            for pr in ctx.forge.open_pull_requests(repo):
                # The plan comment names the head it planned and comes after the check: a head whose plan
                # was cut short between the two (or never made) is planned here.
                if pr.draft or is_planned(ctx, repo, pr.number, pr.head_sha):
                    continue
                try:
                    with work.pull_request_lock(repo, (pr.number,)) as held:
                        outcome = plan_pull_request(replace(ctx, lease=held), repo, pr.number,
                                                    head_sha=pr.head_sha)
                except PullRequestBusy:
                    log.info("reconcile left %s#%d to the plan that is running", repo, pr.number)
                    continue
                log.info("reconcile planned %s#%d: %s", repo, pr.number, outcome.status)
        except PavedError as exc:  # one repository's trouble does not stop the others
            log.warning("reconcile skipped %s: %s", repo, exc.message)
        finally:
            ctx.store.close()


# Where each repository's last drift check stopped short of its rate-limit reserve, so that the next
# reconcile of this process starts with what it left (see `bot.handlers.drift.Pacing`).
_RESUME_AT: dict[str, str] = {}


def _pacing(settings: Settings) -> Pacing:
    """Reconcile's pacing: the settings' reserve of GitHub's hourly budget, and where the last checks stopped."""
    from bot.handlers.drift import Pacing

    return Pacing(settings.reconcile_reserve, _RESUME_AT)


def _log_reconciled(done: RepoReconciled) -> None:
    applied, drift = done.applied, done.drift
    if applied is not None and applied.status != "up to date":
        log.info("reconcile applied %s at %s: %s %s", done.repo, applied.revision[:12], applied.status,
                 applied.reason)
    if drift is not None and not drift.skipped:
        log.info("reconcile checked %s for drift: %d checked, %d drifted, %d healed", done.repo, drift.checked,
                 len(drift.drifts), len(drift.healed))
    for error in done.errors:
        log.warning("reconcile of %s: %s", done.repo, error)


def reconcile_once(settings: Settings, *, now: datetime | None = None, force: bool = False) -> list[RepoReconciled]:
    """`paved reconcile`: for every platform repository, the catch-up apply (on the retry backoff;
    `force` applies at once) and the drift check, once.

    It takes each repository's lock in the queue the settings name (the SQLite queue in the data
    folder, or Redis), so it never overlaps an apply of a `paved serve` or `paved worker` sharing it;
    a repository that is busy is reported as such. Raises `ConfigurationError` when Paved has no
    credentials or no repository to look after.
    """
    from bot.adapters.deliveries import open_delivery_log
    from bot.adapters.queue import RepoBusy, make_queue
    from bot.handlers.drift import RepoReconciled, reconcile_repo

    if settings.github_token is None and not (settings.github_app_id and settings.private_key() is not None):
        raise ConfigurationError("no GitHub credentials: set PAVED_GITHUB_APP_ID and PAVED_GITHUB_PRIVATE_KEY, "
                                 "or PAVED_GITHUB_TOKEN with PAVED_REPOSITORIES")
    repos = platform_repositories(settings)
    if not repos:
        raise ConfigurationError("no platform repositories to reconcile",
                                 hint="With a token, name them in PAVED_REPOSITORIES (owner/name, comma-separated); "
                                      "an App reconciles the repositories it is installed on.")
    queue = make_queue(settings, open_delivery_log(settings), handle_delivery)
    pacing = _pacing(settings)
    done: list[RepoReconciled] = []
    for repo, built in _platform_contexts(settings, repos, pacing):
        if isinstance(built, PavedError):  # one repository's trouble does not stop the others
            done.append(RepoReconciled(repo, errors=(built.message,)))
            continue
        try:
            with queue.repo_lock(repo) as held:
                done.append(reconcile_repo(replace(built, lease=held), repo, now=now, force=force, pacing=pacing))
        except RepoBusy as exc:
            done.append(RepoReconciled(repo, errors=(f"{exc.message}; try again later",)))
        except PavedError as exc:
            done.append(RepoReconciled(repo, errors=(exc.message,)))
        finally:
            built.store.close()
    return done


# One comment per pull request, edited in place however many deliveries about it Paved gives up on.
GAVE_UP_MARKER = "<!-- paved:gave-up -->"


def say_gave_up(delivery: Delivery, work: Work, error: str) -> None:
    """Tell the pull request a delivery was about that Paved stopped trying its job, in one line: what
    it could not finish, the error (one line, scrubbed of secrets) and what to do now.

    The pull request is the one the delivery names, or for a push to the default branch the one whose
    merge made the pushed commit. A delivery about no pull request is only logged (by the queue).
    """
    from bot.adapters.deliveries import one_line, pull_request_of
    from bot.adapters.github import GitHubForge

    repo = delivery.repository
    if repo is None:
        return
    forge = GitHubForge(github_client(work.settings, repo, delivery.installation_id), login=work.settings.github_login)
    number = pull_request_of(delivery)
    what, retry = _what_was_given_up(delivery)
    if number is None and _applies(delivery) and delivery.event == "push":
        merged = forge.merged_pull_request(repo, str(delivery.payload.get("after") or ""))
        number = merged.number if merged is not None else None
    if number is None:
        log.info("no pull request to tell that Paved gave up on %s", what)
        return
    line = (f"⚠️ Paved could not finish {what} after {work.attempt} attempts: "
            f"{one_line(error, work.settings.secret_values())}. Paved's reconcile picks it up again; comment "
            f"`{retry}` to try now.")
    forge.upsert_comment(repo, number, GAVE_UP_MARKER, f"{GAVE_UP_MARKER}\n{line}")
    log.info("told %s#%d that Paved gave up on %s", repo, number, what)


def _what_was_given_up(delivery: Delivery) -> tuple[str, str]:
    """What the delivery's job was doing, in words, and the command that does it again now."""
    if delivery.event == "push":
        after = str(delivery.payload.get("after") or "")
        return f"applying {after[:12]}", "/paved retry"
    command = _command(delivery)
    if command is not None:
        return f"`/paved {command}`", f"/paved {command}"
    return f"planning this pull request (`{delivery.kind}`)", "/paved plan"
