"""The forge ports: what Paved needs from GitHub and from git, in Paved's words.

Handlers talk to a `Forge` (the GitHub API) and a `Mirror` (local copies of repositories);
`bot/adapters/github.py` and `bot/adapters/mirror.py` implement them against GitHub, GitHub
Enterprise or the local sandbox forge. Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from bot.deployments import ServiceStatus
from bot.model import Finding, Tree

Permission = Literal["admin", "maintain", "write", "triage", "read", "none"]
PERMISSION_ORDER: tuple[Permission, ...] = ("none", "read", "triage", "write", "maintain", "admin")
CheckConclusion = Literal["success", "failure", "neutral", "action_required", "cancelled", "skipped"]
# GitHub takes at most 50 annotations per check-run request.
ANNOTATIONS_PER_REQUEST = 50


def at_least(permission: str, required: str) -> bool:
    """Whether `permission` is `required` or more (`write` is at least `triage`)."""
    order = list(PERMISSION_ORDER)
    have = order.index(permission) if permission in order else 0
    need = order.index(required) if required in order else len(order)
    return have >= need


@dataclass(frozen=True, slots=True)
class PullRequest:
    """A pull request as Paved needs it."""

    repo: str
    number: int
    title: str
    author: str
    head_sha: str
    head_ref: str
    base_ref: str
    base_sha: str
    state: Literal["open", "closed"]
    merged: bool = False
    merge_commit_sha: str | None = None
    merged_by: str | None = None
    draft: bool = False
    from_fork: bool = False
    url: str = ""
    created_at: str = ""  # ISO 8601, UTC: when it was opened
    head_repo: str = ""  # owner/name of the repository holding the head branch (a fork's, or `repo`)
    body: str = ""  # its description, as its author wrote it (hostile text: quote it, never render it)
    labels: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Review:
    """A submitted review; `state` is GitHub's (`APPROVED`, `CHANGES_REQUESTED`, `COMMENTED`, ...)."""

    login: str
    state: str
    commit_id: str | None = None


@dataclass(frozen=True, slots=True)
class Reaction:
    """A reaction on a comment: GitHub's id for it, who reacted, with what (`+1`, `-1`, `heart` ...) and when."""

    id: int
    login: str
    content: str
    created_at: str = ""


@dataclass(frozen=True, slots=True)
class Annotation:
    """A line-precise note on a check run."""

    path: str
    line: int
    level: Literal["notice", "warning", "failure"]
    message: str
    title: str = ""
    column: int = 0

    @classmethod
    def of(cls, finding: Finding) -> Annotation:
        level: Literal["notice", "warning", "failure"] = {
            "error": "failure", "warning": "warning"}.get(finding.severity, "notice")  # type: ignore[assignment]
        message = finding.message + (f"\n\n{finding.hint}" if finding.hint else "")
        return cls(path=finding.path, line=max(finding.line, 1), level=level, message=message,
                   title=finding.rule, column=finding.column)


@dataclass(frozen=True, slots=True)
class CheckRun:
    """A check run to publish on a commit (created, or updated when one of that name exists)."""

    name: str
    head_sha: str
    conclusion: CheckConclusion | None
    title: str
    summary: str
    text: str = ""
    annotations: tuple[Annotation, ...] = ()
    details_url: str | None = None


@dataclass(frozen=True, slots=True)
class Issue:
    """An issue (never a pull request) as Paved needs it: to find its own again and keep it current."""

    number: int
    title: str
    body: str
    state: Literal["open", "closed"] = "open"
    labels: tuple[str, ...] = ()
    url: str = ""


@dataclass(frozen=True, slots=True)
class ForgeRepository:
    """What Paved reads of a repository before it offers it a change: where its work is (`default_branch`,
    "" while it has no branch), whether it is archived, and its organization's custom property values
    (`properties`, where Paved's mark is)."""

    full_name: str
    default_branch: str
    archived: bool
    properties: Mapping[str, str]


class Forge(Protocol):
    """GitHub, as the pull-request loop uses it. `repo` is always `owner/name`."""

    def pull_request(self, repo: str, number: int) -> PullRequest: ...

    def open_pull_requests(self, repo: str) -> list[PullRequest]: ...

    def reviews(self, repo: str, number: int) -> list[Review]: ...

    def upsert_comment(self, repo: str, number: int, marker: str, body: str) -> int:
        """Edit Paved's own comment that starts with `marker` in place, or create it; return its id.
        A comment by anyone else never counts, whatever it starts with."""
        ...

    def has_path(self, repo: str, path: str) -> bool:
        """Whether the default branch of `repo` holds `path` (a file or a folder); an empty repository
        holds nothing."""
        ...

    def own_comment(self, repo: str, number: int, marker: str) -> str | None:
        """The body of Paved's own comment on #`number` that starts with `marker`, if there is one."""
        ...

    def comment(self, repo: str, number: int, body: str) -> int: ...

    def react(self, repo: str, number: int, comment_id: int, content: str) -> None:
        """React to comment `comment_id` on pull request `number` (`eyes`, `+1`, ...)."""
        ...

    def comment_reactions(self, repo: str, comment_id: int) -> list[Reaction] | None:
        """The reactions on comment `comment_id` (the first hundred); None when the comment is gone. The read
        is conditional: a comment whose reactions did not change costs no rate-limited request."""
        ...

    def publish_check(self, repo: str, check: CheckRun) -> int:
        """Create or update the check run; annotations go in batches of 50. Return its id."""
        ...

    def permission_of(self, repo: str, login: str) -> Permission: ...

    def default_branch(self, repo: str) -> str: ...

    def clone_url(self, repo: str) -> str:
        """The HTTPS address git fetches `repo` from."""
        ...

    def has_check(self, repo: str, sha: str, name: str) -> bool:
        """Whether commit `sha` carries Paved's own check run called `name`."""
        ...

    def deployment_status(self, repo: str, environments: Iterable[str]) -> ServiceStatus | None:
        """Where each of `environments` of `repo` stands (its latest deployment, with that deployment's latest
        status) and the latest run a push to the default branch started; None when GitHub has no such
        repository. It only reads, and every read is conditional: a repository unchanged since the process
        last read it costs no rate-limited request."""
        ...

    def check_conclusion(self, repo: str, sha: str, name: str) -> str | None:
        """The conclusion of Paved's own check run `name` on `sha` (its status, such as `in_progress`,
        while it is not completed); None when Paved published none there. A check run of another App or
        of a workflow that borrows the name is not Paved's and never counts."""
        ...

    def admin_teams(self, repo: str) -> dict[str, tuple[str, ...]]:
        """The teams with admin permission on `repo` (slug -> their members' logins)."""
        ...

    def merged_pull_request(self, repo: str, sha: str) -> PullRequest | None:
        """The recently merged pull request whose merge made commit `sha`, if there is one."""
        ...

    def labelled_issues(self, repo: str, label: str) -> list[Issue]:
        """The open issues (not pull requests) that carry `label`."""
        ...

    def open_issue(self, repo: str, title: str, body: str, labels: Iterable[str] = ()) -> Issue: ...

    def ensure_label(self, repo: str, name: str, color: str, description: str) -> None:
        """Create label `name` unless the repository has it (GitHub would make it grey and unexplained)."""
        ...

    def update_issue(self, repo: str, number: int, title: str, body: str) -> None: ...

    def close_issue(self, repo: str, number: int, comment: str) -> None:
        """Say why in a comment, then close the issue as completed."""
        ...

    def repository(self, repo: str) -> ForgeRepository | None:
        """The repository as it is now, or None when GitHub has none of that name (deleted, or never made)."""
        ...

    def pull_request_from(self, repo: str, branch: str) -> PullRequest | None:
        """The open pull request whose head is `branch` of `repo` itself (not a fork's), if there is one."""
        ...

    def open_pull_request(self, repo: str, *, head: str, base: str, title: str, body: str, draft: bool = False,
                          labels: Iterable[str] = ()) -> PullRequest:
        """Open a pull request from branch `head` into `base`, labelled with `labels`."""
        ...

    def update_pull_request(self, repo: str, number: int, *, title: str, body: str) -> None: ...

    def label_pull_request(self, repo: str, number: int, labels: Iterable[str]) -> None:
        """Add `labels` to pull request `number` (those it has already stay)."""
        ...

    def close_pull_request(self, repo: str, number: int, comment: str) -> None:
        """Say why in a comment, then close the pull request without merging it."""
        ...

    def pull_requests_of_commit(self, repo: str, sha: str) -> list[PullRequest]:
        """The pull requests GitHub associates with commit `sha`: for a commit of the default branch, the
        merged pull request that brought it there."""
        ...


class Proposing(Protocol):
    """What opening a pull request as a person needs: their own branch of a repository, one file on it, and
    the pull request. Implemented with the person's own user access token, never Paved's (the catalogue's
    request form), so GitHub holds them to what they themselves may do."""

    def branch_head(self, repo: str, branch: str) -> str | None:
        """The commit `branch` points at; None when there is no such branch."""
        ...

    def create_branch(self, repo: str, branch: str, sha: str) -> None: ...

    def file_blob(self, repo: str, branch: str, path: str) -> str | None:
        """Git's blob id of `path` on `branch`; None when it holds no such file."""
        ...

    def put_file(self, repo: str, *, branch: str, path: str, data: bytes, message: str,
                 replacing: str | None) -> None:
        """Commit `data` at `path` on `branch`, replacing the blob `replacing` (None: a new file)."""
        ...

    def pull_request_from(self, repo: str, branch: str) -> PullRequest | None: ...

    def open_pull_request(self, repo: str, *, head: str, base: str, title: str, body: str, draft: bool = False,
                          labels: Iterable[str] = ()) -> PullRequest: ...


class Mirror(Protocol):
    """Local mirrors of repositories on the forge."""

    def fetch(self, repo: str, refs: Iterable[str]) -> None:
        """Bring `refs` (branch names or full refs) up to date."""
        ...

    def tree(self, repo: str, revision: str) -> Tree: ...

    def merge_base(self, repo: str, a: str, b: str) -> str: ...

    def holds(self, repo: str, commit: str, head: str) -> bool:
        """Whether `commit` is in the history of `head` (`head` itself included); False for a commit the
        mirror does not have at all."""
        ...

    def first_parents(self, repo: str, since: str | None, until: str, limit: int) -> list[str]:
        """The commits from `until` back along first parents to `since` (excluded; None: to the root),
        newest first, at most `limit` of them."""
        ...

    def fetch_if_present(self, repo: str, ref: str) -> bool:
        """Fetch a ref that may not exist yet (Paved's own refs); whether it exists."""
        ...

    def resolve(self, repo: str, ref: str) -> str | None:
        """The commit a ref points at in the mirror, or None."""
        ...

    def note(self, repo: str, notes_ref: str, sha: str) -> str:
        """The note on commit `sha` under `notes_ref` ("" when there is none)."""
        ...

    def append_note(self, repo: str, notes_ref: str, sha: str, text: str) -> None: ...

    def notes(self, repo: str, notes_ref: str) -> dict[str, str]:
        """Every note under `notes_ref` in the mirror (fetched already): annotated commit -> note text."""
        ...

    def set_ref(self, repo: str, ref: str, sha: str) -> None: ...

    def push(self, repo: str, refs: Iterable[str], *, expected: Mapping[str, str | None] | None = None) -> None:
        """Push refs of the mirror to the forge under the same names, never forcing: a notes ref is merged
        with the forge's (every record of both kept), retrying when another writer moved it; another
        ref moves fast-forward only, or only from the commit `expected` gives for it (None: only if
        it does not exist yet)."""
        ...

    def file(self, repo: str, revision: str, path: str, limit: int) -> bytes | None:
        """The bytes of the regular file `path` at `revision` (None: no such file, or a link or folder);
        of a file larger than `limit` bytes, only its first `limit + 1` bytes."""
        ...

    def commit_folder(self, repo: str, folder: Path, message: str, parents: Sequence[str] = ()) -> str:
        """A new commit in the mirror (pushed nowhere) holding exactly the files of `folder`; its id."""
        ...

    def commit_tree(self, repo: str, tree: str, message: str, parents: Sequence[str]) -> str:
        """A new commit in the mirror (pushed nowhere) of the tree `tree` (an id, or a commit's); its id."""
        ...

    def merge_trees(self, repo: str, base: str, ours: str, theirs: str, *,
                    labels: tuple[str, str] = ("ours", "theirs")) -> MergedTree:
        """The files of `ours` with the change from `base` to `theirs` merged in by git (commits, all three):
        conflicting hunks are left in the files with git's conflict markers, labelled with `labels` (branch
        names)."""
        ...

    def made_by_paved(self, repo: str, commit: str) -> bool:
        """Whether `commit` was authored and committed as Paved (git's identities, which anyone may write:
        enough to tell Paved's own work from a person's, never to trust anything)."""
        ...

    def changed_files(self, repo: str, before: str, after: str) -> list[str]:
        """The paths whose content or mode differs between two commits (or trees), sorted."""
        ...

    def commits_touching(self, repo: str, since: str, until: str, path: str, limit: int) -> list[str]:
        """The commits of `until`'s first-parent history after `since` that changed something under `path`,
        oldest first, at most the newest `limit` of them."""
        ...


@dataclass(frozen=True, slots=True)
class MergedTree:
    """What git made of a three-way merge: the resulting tree's id, and the files left with conflict markers."""

    tree: str
    conflicts: tuple[str, ...] = ()
