"""Golden-path upgrades: a template change, or a request change to a template's answers, offered to a
service repository as one pull request, merged by git.

For one service whose repository Paved made (it carries Paved's mark; Paved touches only what it created):

1. its `.paved/scaffold.json` is read from its default branch, as hostile data (`read_record`): missing or
   unreadable, the upgrade is skipped and says why;
2. the platform commit it names must be one the platform repo merged (an ancestor of the applied head in
   Paved's mirror), and so must the service's `pin`: a template is only ever rendered from merged commits,
   since its hooks are code its platform owners approved there, and only there;
3. the template is rendered twice in the scaffolding child (no secrets, a time limit): at the recorded commit
   with the recorded answers (only what a request could give: `scaffold.recorded_inputs`), and at the new
   commit (the applied head, or the pin) from the request as it is now, exactly as a first scaffold renders,
   new record included;
4. git merges the difference into the default branch (`Mirror.merge_trees`: base the old render, ours the
   branch, theirs the new render). What git cannot merge stays in the files with conflict markers, and the
   pull request is a draft that says which files; the default branch itself is never written;
5. when the result holds nothing the branch lacks (already upgraded, or the team did it by hand), nothing is
   opened, and an upgrade pull request left open is closed, saying why;
6. otherwise the result is one commit on top of the default branch, on Paved's branch `paved/upgrade`, pushed
   only when the branch's files differ from it (and only from where Paved found the branch), and one pull
   request from it, labelled `paved:upgrade`, is opened or brought up to date, found by its branch.

Every step can be taken again: a re-run after a crash renders the same files, finds the branch already
holding them (so pushes nothing) and the pull request by its branch (so opens no second one). Pushes move
the branch only from where this run read it, so two replicas never overwrite each other unseen. A branch the
team committed to while its pull request is open is theirs: Paved leaves it alone and says so.

GitHub is reached through the `Forge` port, git through the `Mirror` port (service repositories are mirrored
beside the platform repo); rendering is the GitHub provider's (`bot.providers.github.repositories`).
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, closing
from dataclasses import dataclass, field, replace
from pathlib import Path

from bot.adapters.mirror import MirrorError
from bot.errors import PavedError
from bot.forge import Forge, Mirror, PullRequest
from bot.golden_paths import (
    RECORD_LIMIT,
    RECORD_PATH,
    UPGRADE_BRANCH,
    UPGRADE_LABEL,
    UPGRADE_LABEL_COLOR,
    UPGRADE_LABEL_PURPOSE,
    Following,
    RecordUnreadable,
    following,
    read_record,
)
from bot.kinds import Kinds
from bot.model import Resource, Upgrade
from bot.provider import Result, Status, Target
from bot.providers.github.repositories import render_recorded, render_request
from bot.providers.github.shared import MARK_PROPERTY, MARK_VALUE
from bot.render import upgrade_request
from bot.render.upgrade_request import TemplatePullRequest, UpgradeProposal

log = logging.getLogger(__name__)

UPGRADE_REF = f"refs/heads/{UPGRADE_BRANCH}"
# How many platform commits that changed a template an upgrade looks up, newest first.
CHANGES_LOOKED_UP = 20


class UpgradeSkipped(PavedError):
    """Raised when a service cannot be offered an upgrade and nothing is wrong with Paved: its repository is
    gone or not Paved's, its record is missing or not to be believed. The message says why."""


@dataclass
class TemplateHistory:
    """What the platform repo says of its templates' changes, looked up once per apply: the pull requests
    that changed `templates/NAME/` between two commits, shared by every service that moves between them."""

    forge: Forge
    mirror: Mirror
    platform_repo: str
    _found: dict[tuple[str, str, str], tuple[tuple[TemplatePullRequest, ...], int]] = field(default_factory=dict)

    def merged(self, commit: str, head: str) -> bool:
        """Whether `commit` is in the history of `head` (the applied head of the default branch)."""
        return self.mirror.holds(self.platform_repo, commit, head)

    def changes(self, template: str, since: str, until: str) -> tuple[tuple[TemplatePullRequest, ...], int]:
        """The merged pull requests that changed the template after `since` up to `until`, oldest first, and
        how many more changing commits there were than were looked up."""
        key = (template, since, until)
        if key not in self._found:
            self._found[key] = self._look_up(template, since, until)
        return self._found[key]

    def _look_up(self, template: str, since: str, until: str) -> tuple[tuple[TemplatePullRequest, ...], int]:
        if since == until:
            return (), 0
        path = f"templates/{template}/"
        everything = self.mirror.commits_touching(self.platform_repo, since, until, path, CHANGES_LOOKED_UP + 1)
        commits = everything[-CHANGES_LOOKED_UP:]
        found: dict[int, TemplatePullRequest] = {}
        for commit in commits:
            for pr in self.forge.pull_requests_of_commit(self.platform_repo, commit):
                if pr.merged and pr.number not in found:
                    found[pr.number] = TemplatePullRequest(pr.number, pr.title, pr.body, pr.url)
        return tuple(found.values()), len(everything) - len(commits)


@dataclass(frozen=True, slots=True)
class Upgrading:
    """What upgrading one service works with: the forge and the mirror, the template history of the apply,
    and `check`, called before every write another job could also make (the repository lease's)."""

    forge: Forge
    mirror: Mirror
    history: TemplateHistory
    check: Callable[[], None] = lambda: None


def upgrade_service(work: Upgrading, service: Resource, follows: Following, reason: str, target: Target, *,
                    request_change: PullRequest | None = None) -> Result:
    """Offer `service` the golden path as `target` has it (or at its pin): a `Result` for the apply's record.

    `applied` when a pull request was opened or changed, `unchanged` when nothing needed doing, `skipped`
    when the service cannot be upgraded (its message says why), `failed` when GitHub or git failed (the
    apply is then retried, and this with it).
    """
    repo = f"{target.organization}/{service.name}"
    try:
        return _upgrade(work, service, follows, reason, target, repo, request_change)
    except UpgradeSkipped as skipped:
        log.info("%s: no upgrade: %s", service.identity, skipped.message)
        return Result(service.identity, "skipped", f"upgrade skipped: {skipped.message}")
    except PavedError as exc:  # GitHub, git or the template failed: the apply is retried
        log.warning("%s: upgrade failed: %s", service.identity, exc.message)
        return Result(service.identity, "failed", f"upgrade of {repo} failed: {' '.join(exc.message.split())[:400]}")


def _upgrade(work: Upgrading, service: Resource, follows: Following, reason: str, target: Target, repo: str,
             request_change: PullRequest | None) -> Result:
    forge, mirror, platform = work.forge, work.mirror, target.platform_repo
    found = forge.repository(repo)
    if found is None:
        raise UpgradeSkipped(f"GitHub has no repository {repo} (it was deleted)")
    if found.properties.get(MARK_PROPERTY) != MARK_VALUE:
        raise UpgradeSkipped(f"{repo} does not carry Paved's mark ({MARK_PROPERTY}), so Paved leaves it alone")
    if found.archived:
        raise UpgradeSkipped(f"{repo} is archived")
    branch = found.default_branch
    try:
        mirror.fetch(repo, [branch])
    except MirrorError as exc:
        if "couldn't find remote ref" in exc.message:
            raise UpgradeSkipped(f"{repo} has no branch {branch} yet") from None
        raise
    mirror.fetch_if_present(repo, UPGRADE_REF)
    ours = mirror.resolve(repo, f"refs/heads/{branch}")
    if ours is None:
        raise UpgradeSkipped(f"{repo} has no branch {branch} yet")
    recorded = mirror.file(repo, ours, RECORD_PATH, RECORD_LIMIT)
    if recorded is None:
        raise UpgradeSkipped(f"{repo} has no {RECORD_PATH} on {branch}, so Paved cannot tell what it was made "
                             "from")
    try:
        record = read_record(recorded)
    except RecordUnreadable as exc:
        raise UpgradeSkipped(exc.message) from None
    head = target.revision
    if not work.history.merged(record.commit, head):
        raise UpgradeSkipped(f"{RECORD_PATH} names commit {record.commit[:12]}, which {platform} never merged: "
                             "Paved renders templates only from merged commits")
    until = follows.pin or head
    if not work.history.merged(until, head):
        raise UpgradeSkipped(f"spec.template.pin names commit {until[:12]}, which {platform} never merged")

    with tempfile.TemporaryDirectory(prefix="paved-upgrade-") as scratch, ExitStack() as trees, \
            ThreadPoolExecutor(max_workers=2, thread_name_prefix="paved-render") as renders:
        folder = Path(scratch)
        then = trees.enter_context(closing(mirror.tree(platform, record.commit)))
        now = target if until == head else replace(
            target, tree=trees.enter_context(closing(mirror.tree(platform, until))), revision=until)
        # The two renders are child processes of their own: side by side, an upgrade takes the time of one.
        rendering_old = renders.submit(render_recorded, record, recorded, replace(target, tree=then,
                                       revision=record.commit), folder / "then", identity=service.identity,
                                       owner=service.owner)
        new = render_request(service, now, folder / "now")
        base = mirror.commit_folder(repo, rendering_old.result(), f"{record.template} golden path at {record.commit}")
        theirs = mirror.commit_folder(repo, new, f"{follows.template} golden path at {until}", [base])
    merged = mirror.merge_trees(repo, base, ours, theirs, labels=(branch, f"golden-path/{follows.template}"))
    files = [p for p in mirror.changed_files(repo, ours, merged.tree) if p != RECORD_PATH]
    open_pr = forge.pull_request_from(repo, UPGRADE_BRANCH)
    if not files:
        if open_pr is not None:
            work.check()
            forge.close_pull_request(repo, open_pr.number, f"Paved closes this upgrade: {branch} already has "
                                     f"everything the {follows.template} golden path at `{until[:12]}` changes "
                                     "(it was applied by hand, or by another pull request).")
        return Result(service.identity, "unchanged",
                      f"{repo} already has what the {follows.template} golden path changes" +
                      (f"; closed upgrade pull request #{open_pr.number}" if open_pr else ""))
    current = mirror.resolve(repo, UPGRADE_REF)
    if current is not None and open_pr is not None and mirror.changed_files(repo, current, merged.tree) and \
            not mirror.made_by_paved(repo, current):
        raise UpgradeSkipped(f"upgrade pull request #{open_pr.number} on {repo} has commits of the team's on "
                             f"{UPGRADE_BRANCH}: Paved leaves them as they are (merge or close it, and the next "
                             "change opens a new one)")
    changes, more = work.history.changes(follows.template, record.commit, until)
    proposal = UpgradeProposal(
        template=follows.template, repository=repo, platform_repo=platform, identity=service.identity,
        reason=reason, since=record.commit, until=until, files=tuple(files), conflicts=merged.conflicts,
        changes=changes, more_changes=more,
        request_change=(TemplatePullRequest(request_change.number, request_change.title, "", request_change.url)
                        if request_change is not None and reason == "answers" else None))
    pushed = _push(work, repo, branch, ours, current, merged.tree, follows.template, until)
    number, url, verb = _pull_request(work, repo, branch, open_pr, proposal)
    conflicts = (f", a draft with conflicts in {len(merged.conflicts)} file"
                 f"{'s' if len(merged.conflicts) != 1 else ''}" if merged.conflicts else "")
    status: Status = "applied" if pushed or verb != "is up to date" else "unchanged"
    return Result(service.identity, status, f"upgrade pull request #{number} {verb} on {repo}{conflicts}",
                  outputs={"upgrade": url} if url else {})


def _push(work: Upgrading, repo: str, branch: str, ours: str, current: str | None, tree: str, template: str,
          until: str) -> bool:
    """Put the merged files on `paved/upgrade` as one commit on top of `branch`; whether anything was pushed.

    A branch that already holds these files on top of `branch` is left as it is, so a re-run pushes nothing."""
    mirror = work.mirror
    if current is not None and not mirror.changed_files(repo, current, tree) and \
            mirror.merge_base(repo, ours, current) == ours:
        return False
    message = (f"Upgrade to the latest {template} golden path\n\nRendered by Paved from the platform repo at "
               f"{until}, merged into {branch} by git.\n")
    commit = mirror.commit_tree(repo, tree, message, [ours])
    mirror.set_ref(repo, UPGRADE_REF, commit)
    work.check()
    # From where this run found it, or only if it still does not exist: never over another writer's push.
    mirror.push(repo, [UPGRADE_REF], expected={UPGRADE_REF: current})
    return True


def _pull_request(work: Upgrading, repo: str, branch: str, open_pr: PullRequest | None,
                  proposal: UpgradeProposal) -> tuple[int, str, str]:
    """Open the upgrade pull request, or bring the open one up to date: its number, its address and what
    was done."""
    forge = work.forge
    title, body, draft = upgrade_request.title(proposal.template), upgrade_request.body(proposal), \
        bool(proposal.conflicts)
    if open_pr is not None and open_pr.draft != draft:
        # GitHub's REST API cannot turn a pull request into a draft or back: this one gives way to a new one.
        work.check()
        forge.close_pull_request(repo, open_pr.number, "Paved replaces this upgrade pull request: the golden "
                                 "path changed again, and the upgrade now " +
                                 ("has conflicts to resolve (a draft follows)." if draft else
                                  "merges without conflicts."))
        open_pr = None
    if open_pr is None:
        work.check()
        forge.ensure_label(repo, UPGRADE_LABEL, UPGRADE_LABEL_COLOR, UPGRADE_LABEL_PURPOSE)
        opened = forge.open_pull_request(repo, head=UPGRADE_BRANCH, base=branch, title=title, body=body,
                                         draft=draft, labels=[UPGRADE_LABEL])
        return opened.number, opened.url, "opened"
    verb = "is up to date"
    if open_pr.title != title or open_pr.body != body:
        work.check()
        forge.update_pull_request(repo, open_pr.number, title=title, body=body)
        verb = "updated"
    if UPGRADE_LABEL not in open_pr.labels:
        work.check()
        forge.ensure_label(repo, UPGRADE_LABEL, UPGRADE_LABEL_COLOR, UPGRADE_LABEL_PURPOSE)
        forge.label_pull_request(repo, open_pr.number, [UPGRADE_LABEL])
    return open_pr.number, open_pr.url, verb


def upgrade_all(work: Upgrading, upgrades: Sequence[Upgrade], after: Mapping[str, Resource],
                described: Kinds, target: Target, results: Sequence[Result],
                request_change: PullRequest | None = None) -> list[Result]:
    """After an apply: offer every service of `upgrades` that is not held back (opted out, pinned) its
    upgrade, unless its own apply failed (a retry takes both again); `results` with the upgrades' folded in.
    """
    broken = {r.resource for r in results if r.status == "failed" or r.message.startswith("skipped:")}
    done: dict[str, Result] = {}
    for entry in upgrades:
        resource = after.get(entry.identity)
        if entry.held or resource is None or entry.identity in broken:
            continue
        follows = following(resource, described[resource.kind])
        if follows is None or not follows.takes_upgrades:
            continue
        done[entry.identity] = upgrade_service(work, resource, follows, entry.reason, target,
                                               request_change=request_change)
    return merged_results(results, done)


def merged_results(results: Sequence[Result], upgrades: Mapping[str, Result]) -> list[Result]:
    """The apply's results with each service's upgrade folded into its own result: one result per resource,
    failed when either failed, saying both; a service the apply did not touch gets the upgrade's own."""
    folded: list[Result] = []
    for result in results:
        extra = upgrades.get(result.resource)
        if extra is None:
            folded.append(result)
            continue
        status: Status = "failed" if "failed" in (result.status, extra.status) else \
            "applied" if "applied" in (result.status, extra.status) else result.status
        message = "; ".join(m for m in (result.message, extra.message) if m)
        folded.append(Result(result.resource, status, message, result.steps, {**result.outputs, **extra.outputs}))
    done = {r.resource for r in results}
    return folded + [r for identity, r in upgrades.items() if identity not in done]
