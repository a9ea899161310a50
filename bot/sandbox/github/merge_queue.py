"""The merge queue (GitHub's docs: "Managing a merge queue"; GraphQL `enqueuePullRequest`; the
`merge_group` webhook).

A branch whose ruleset requires a merge queue takes pull requests only through it: the merge button and
`PUT /pulls/N/merge` are refused, and a pull request whose reviews and required checks pass is queued
instead. For each queued pull request the queue builds a merge group: a temporary branch
`gh-readonly-queue/{base}/pr-{number}-{head}` whose head is the base, plus every pull request ahead of it
in the queue, plus this one, merged as the queue's merge method says; it asks for checks on it
(`merge_group checks_requested`). The base's required status checks then run on the group's head, not on
the pull request's (its reviews were judged when it was queued).

As GitHub's default grouping does (ALLGREEN, one pull request a group), a group merges once its required
checks pass and every group ahead of it merged: the base moves fast-forward to the group's head (a push),
the pull request is closed as merged with that commit as its merge commit, and the temporary branch goes
(`destroyed`, reason `merged`). A group whose required check fails takes its pull request out of the queue
(`destroyed`, reason `dequeued`; the pull request stays open), and every group behind it, which held its
changes, is built again without it (`destroyed`, reason `invalidated`, then `checks_requested` for the new
group). A base moved outside the queue invalidates every group likewise.

Enqueuing is not a REST operation on GitHub (it is GraphQL's `enqueuePullRequest`), so the sandbox offers
it as a story operation, like its other non-REST actions (`ForgeHandle.enqueue_pull_request`, and
`enqueue_pull_request` on its administration API).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from .. import gitrepo
from ..auth import Principal, now_iso
from ..errors import ApiError, unprocessable
from ..model import StoredAccount, StoredIssue, StoredMergeQueue, StoredPullRequest, StoredRepo
from .state import ADMIN, NOREPLY, WRITE_CODE, GitHubState

QUEUE_BRANCHES = "gh-readonly-queue"
MERGE_METHODS = ("merge", "squash", "rebase")
# Apps hear `merge_group` only with this permission (GitHub's webhook docs: "Merge queues", read).
MERGE_QUEUES_PERMISSION = "merge_queues"


@dataclass
class QueueEntry:
    """A queued pull request and its merge group: `base_sha` is the group's parent (the base branch's head,
    or the head of the group ahead), `head_sha` the group's own commit."""

    number: int
    pull_head: str
    base_sha: str
    head_sha: str
    enqueued_by: int
    enqueued_at: str

    def ref(self, branch: str) -> str:
        return f"refs/heads/{QUEUE_BRANCHES}/{branch}/pr-{self.number}-{self.pull_head}"


def _entries(queue: StoredMergeQueue) -> list[QueueEntry]:
    return [QueueEntry(**entry) for entry in queue.entries]


class MergeQueueArea(GitHubState):
    def require_merge_queue(self, principal: Principal, repo: StoredRepo, branch: str,
                            merge_method: str = "merge") -> StoredMergeQueue:
        """Make `branch` take pull requests only through a merge queue that lands them by `merge_method`."""
        with self.store.lock:
            self.access.require(principal, repo, ADMIN)
            if self.git(repo).resolve(f"refs/heads/{branch}") is None:
                raise ApiError(404, "Branch not found")
            if merge_method not in MERGE_METHODS:
                raise unprocessable(f"merge_method must be one of {', '.join(MERGE_METHODS)}")
            queue = self.merge_queue_for(repo, branch) or StoredMergeQueue(self.store.new_id(), repo.id, branch)
            queue.merge_method = merge_method
            return self.store.put(queue)

    def merge_queue_for(self, repo: StoredRepo, branch: str) -> StoredMergeQueue | None:
        """The merge queue `branch` requires, if it requires one."""
        return self.store.first(StoredMergeQueue, lambda q: q.repo_id == repo.id and q.branch == branch)

    def queued(self, repo: StoredRepo, branch: str) -> list[QueueEntry]:
        queue = self.merge_queue_for(repo, branch)
        return _entries(queue) if queue is not None else []

    def enqueue_pull_request(self, principal: Principal, repo: StoredRepo, number: int) -> QueueEntry:
        """Add pull request `number` to its base branch's queue, as GraphQL's `enqueuePullRequest` does: its
        reviews and required checks must pass first, as they must for the merge button."""
        with self.store.lock:
            self.access.require(principal, repo, WRITE_CODE)
            actor = self.actor_account(principal)
            pull, issue = self.pull(repo, number), self.issue(repo, number)
            if pull.merged or issue.state != "open":
                raise unprocessable("Pull request is closed")
            if pull.draft:
                raise unprocessable("Draft pull requests cannot be added to the merge queue")
            queue = self.merge_queue_for(repo, pull.base_ref)
            if queue is None:
                raise unprocessable(f"The branch {pull.base_ref} does not use a merge queue")
            entries = _entries(queue)
            if any(e.number == number for e in entries):
                raise unprocessable("Pull request is already in the merge queue")
            blockers = self.other_areas.merge_blockers(repo, pull)
            if blockers:
                raise ApiError(405, "Pull request is not mergeable\n\n" + "\n".join(blockers))
            parent = entries[-1].head_sha if entries else self.git(repo).resolve(f"refs/heads/{queue.branch}")
            if parent is None:
                raise unprocessable(f"Branch {queue.branch} not found")
            entry = self._build_group(repo, queue, pull, issue, parent, actor.id, now_iso())
            if entry is None:
                raise unprocessable("Pull request has merge conflicts")
            queue.entries.append(asdict(entry))
            self.store.put(queue)
            self._advance(repo, queue)
            return entry

    def merge_queue_checks_changed(self, repo: StoredRepo, sha: str) -> None:
        """A check run completed or a status was set on `sha`: if a merge group has that head, the queue may
        move (a group merges, or leaves it)."""
        with self.store.lock:
            for queue in self.store.all(StoredMergeQueue, lambda q: q.repo_id == repo.id):
                if any(e["head_sha"] == sha for e in queue.entries):
                    self._advance(repo, queue)

    # -- what the queue does on its own ---------------------------------------------------------------------

    def _advance(self, repo: StoredRepo, queue: StoredMergeQueue) -> None:
        """Merge the groups at the front whose required checks passed; take out each one that failed (building
        the groups behind it again); rebuild every group when the base moved outside the queue."""
        git = self.git(repo)
        while queue.entries:
            entries = _entries(queue)
            tip = git.resolve(f"refs/heads/{queue.branch}")
            if tip is None:
                for entry in entries:
                    self._leave(repo, queue, entry, "dequeued")
                return
            if entries[0].base_sha != tip:
                self._rebuild(repo, queue, 0)
                continue
            verdicts = [self.other_areas.checks_verdict(repo, queue.branch, e.head_sha) for e in entries]
            if "failed" in verdicts:
                failed = verdicts.index("failed")
                self._leave(repo, queue, entries[failed], "dequeued")
                self._rebuild(repo, queue, failed)
                continue
            if verdicts[0] != "passed":
                return
            self._land(repo, queue, entries[0])

    def _build_group(self, repo: StoredRepo, queue: StoredMergeQueue, pull: StoredPullRequest, issue: StoredIssue,
                     parent: str, enqueued_by: int, enqueued_at: str) -> QueueEntry | None:
        """The merge group of `pull` on `parent`: its commit, its temporary branch and `checks_requested`;
        None when the pull request does not merge cleanly there."""
        enqueuer = self.store.get(StoredAccount, enqueued_by)
        author = self._person_of(enqueuer) if enqueuer is not None else \
            gitrepo.Person("GitHub", f"noreply@{NOREPLY}", now_iso())
        head = self.other_areas.merge_commit(repo, pull, issue, parent, queue.merge_method, author)
        if head is None:
            return None
        entry = QueueEntry(pull.number, pull.head_sha, parent, head, enqueued_by, enqueued_at)
        self.other_areas.move_ref(None, repo, entry.ref(queue.branch), head, None)
        self._merge_group_event(repo, queue, entry, "checks_requested")
        return entry

    def _rebuild(self, repo: StoredRepo, queue: StoredMergeQueue, start: int) -> None:
        """Build every group from position `start` on again, each on the one ahead of it (or on the base):
        the old ones are invalidated, and a pull request that no longer merges cleanly leaves the queue."""
        entries = _entries(queue)
        kept = entries[:start]
        for entry in entries[start:]:
            self._remove_group(repo, queue, entry, "invalidated")
        git = self.git(repo)
        for entry in entries[start:]:
            pull, issue = self.pull(repo, entry.number), self.issue(repo, entry.number)
            parent = kept[-1].head_sha if kept else git.resolve(f"refs/heads/{queue.branch}")
            if parent is None or pull.merged or issue.state != "open":
                continue
            rebuilt = self._build_group(repo, queue, pull, issue, parent, entry.enqueued_by, entry.enqueued_at)
            if rebuilt is not None:
                kept.append(rebuilt)
        queue.entries = [asdict(e) for e in kept]
        self.store.put(queue)

    def _leave(self, repo: StoredRepo, queue: StoredMergeQueue, entry: QueueEntry, reason: str) -> None:
        """Take `entry`'s pull request out of the queue (it stays open) and destroy its group."""
        self._remove_group(repo, queue, entry, reason)
        queue.entries = [e for e in queue.entries if e["number"] != entry.number]
        self.store.put(queue)

    def _remove_group(self, repo: StoredRepo, queue: StoredMergeQueue, entry: QueueEntry, reason: str) -> None:
        ref = entry.ref(queue.branch)
        if self.git(repo).resolve(ref) == entry.head_sha:
            self.other_areas.move_ref(None, repo, ref, None, entry.head_sha)
        self._merge_group_event(repo, queue, entry, "destroyed", reason=reason)

    def _land(self, repo: StoredRepo, queue: StoredMergeQueue, entry: QueueEntry) -> None:
        """The group at the front passed: the base moves to its head, and its pull request is merged."""
        pull, issue = self.pull(repo, entry.number), self.issue(repo, entry.number)
        enqueuer = self.store.get(StoredAccount, entry.enqueued_by)
        now = now_iso()
        pull.merged, pull.merged_at, pull.merged_by_id, pull.merge_commit_sha = True, now, entry.enqueued_by, \
            entry.head_sha
        issue.state, issue.closed_at, issue.closed_by_id, issue.updated_at = "closed", now, entry.enqueued_by, now
        self.store.put(pull)
        self.store.put(issue)
        queue.entries = [e for e in queue.entries if e["number"] != entry.number]
        self.store.put(queue)
        self.other_areas.move_ref(None, repo, f"refs/heads/{queue.branch}", entry.head_sha, entry.base_sha,
                                  merging=True)
        pull.base_sha = entry.base_sha  # the PR keeps the base it was merged onto
        self.store.put(pull)
        self.other_areas.update_pull_refs(repo, pull)
        self.other_areas.pull_event("closed", pull, enqueuer)
        self._remove_group(repo, queue, entry, "merged")

    def _merge_group_event(self, repo: StoredRepo, queue: StoredMergeQueue, entry: QueueEntry, action: str,
                           **extra: Any) -> None:
        commit = self.git(repo).commit(entry.head_sha)

        def person(p: gitrepo.Person) -> dict[str, str]:
            return {"name": p.name, "email": p.email}

        payload: dict[str, Any] = {"action": action, **extra, "merge_group": {
            "head_sha": entry.head_sha,
            "head_ref": entry.ref(queue.branch),
            "base_sha": entry.base_sha,
            "base_ref": f"refs/heads/{queue.branch}",
            "head_commit": {"id": commit.sha, "tree_id": commit.tree, "message": commit.message.rstrip("\n"),
                            "timestamp": commit.committer.date, "author": person(commit.author),
                            "committer": person(commit.committer)},
        }, "repository": self.render.repo(repo, for_webhook=True)}
        self._add_org(payload, repo)
        payload["sender"] = self.render.user(self.store.get(StoredAccount, entry.enqueued_by)
                                             or self.store.get(StoredAccount, repo.owner_id))
        self.hooks.emit("merge_group", payload, repo, needs=MERGE_QUEUES_PERMISSION)
