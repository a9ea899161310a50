"""Local mirrors of platform repos: fetch what a job needs, read it as git trees, push notes and refs.

One bare mirror per repository in the data folder, fetched incrementally, so a plan reads base and
head straight from git objects without a checkout. GitPython drives the fetches and pushes; reading
files goes through `GitTree` (one `git cat-file --batch`). Credentials are given per command as an
HTTP header and never stored in the mirror's config; any error message is scrubbed of them.
"""

from __future__ import annotations

import base64
import fcntl
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import git

from bot.adapters.repo import PAVED_IDENTITY, GitTree
from bot.errors import PavedError

Credentials = Callable[[str], str]  # repo ("owner/name") -> token to fetch and push with


class WorkspaceError(PavedError):
    """Raised when git cannot fetch or push; the message never contains a credential."""


def _scrub(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return re.sub(r"(Authorization: Basic )[A-Za-z0-9+/=]+", r"\1***", text)


class Workspace:
    """Mirrors under `root`, one per repository, reached at `clone_url(repo)` with `token(repo)`."""

    def __init__(self, root: Path, clone_url: Callable[[str], str], token: Credentials) -> None:
        self.root = root
        self.clone_url = clone_url
        self.token = token

    def path(self, repo: str) -> Path:
        owner, name = repo.split("/", 1)
        return self.root / owner / f"{name}.git"

    @contextmanager
    def _locked(self, repo: str) -> Iterator[None]:
        """One writer per mirror at a time, across threads and processes sharing the data folder: two
        fetches into one repository at once fail on git's ref locks."""
        lock_path = self.path(repo).with_suffix(".lock")
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        with open(lock_path, "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _mirror(self, repo: str) -> git.Repo:
        path = self.path(repo)
        if (path / "HEAD").exists():
            return git.Repo(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        return git.Repo.init(path, bare=True)

    def _run(self, repo: str, what: str, *args: str) -> str:
        with self._locked(repo):
            return self._run_locked(repo, what, *args)

    def _run_locked(self, repo: str, what: str, *args: str) -> str:
        token = self.token(repo)
        header = base64.b64encode(f"x-access-token:{token}".encode()).decode()
        mirror = self._mirror(repo)
        try:
            out: str = mirror.git.execute(
                ["git", "-c", f"http.extraHeader=Authorization: Basic {header}", "-c", "credential.helper=",
                 *args], env={"GIT_TERMINAL_PROMPT": "0"})
            return out
        except git.GitCommandError as exc:
            detail = _scrub(str(exc.stderr or exc).strip(), [token, header])
            # `from None`: the original error quotes the command line, credentials included.
            raise WorkspaceError(
                f"git could not {what} for {repo}: {detail.splitlines()[-1] if detail else ''}") from None

    def fetch(self, repo: str, refs: Iterable[str]) -> None:
        """Fetch `refs` (branch names or full refs) into the mirror under the same names."""
        specs = []
        for ref in refs:
            full = ref if ref.startswith("refs/") else f"refs/heads/{ref}"
            specs.append(f"+{full}:{full}")
        self._run(repo, "fetch", "fetch", "--quiet", "--no-tags", "--prune", self.clone_url(repo), *specs)

    def push(self, repo: str, refs: Iterable[str]) -> None:
        """Push refs of the mirror to the same names on the forge, moving them where they point.

        Paved pushes only its own refs (notes and `refs/paved/*`), and only while it holds the
        repository's lock, so moving them is safe.
        """
        self._run(repo, "push", "push", "--quiet", self.clone_url(repo), *[f"+{r}:{r}" for r in refs])

    def fetch_if_present(self, repo: str, ref: str) -> bool:
        try:
            self.fetch(repo, [ref])
        except WorkspaceError as exc:
            if "couldn't find remote ref" in exc.message:
                return False
            raise
        return True

    def resolve(self, repo: str, ref: str) -> str | None:
        try:
            return str(self._mirror(repo).git.rev_parse("--verify", "--quiet", f"{ref}^{{commit}}")).strip() or None
        except git.GitCommandError:
            return None

    def note(self, repo: str, notes_ref: str, sha: str) -> str:
        try:
            return str(self._mirror(repo).git.notes(f"--ref={notes_ref}", "show", sha))
        except git.GitCommandError:
            return ""

    def append_note(self, repo: str, notes_ref: str, sha: str, text: str) -> None:
        with self._locked(repo):
            self._mirror(repo).git.notes(f"--ref={notes_ref}", "append", "-m", text, sha, env=PAVED_IDENTITY)

    def set_ref(self, repo: str, ref: str, sha: str) -> None:
        with self._locked(repo):
            self._mirror(repo).git.update_ref(ref, sha)

    def tree(self, repo: str, revision: str) -> GitTree:
        return GitTree(self.path(repo), revision)

    def merge_base(self, repo: str, a: str, b: str) -> str:
        try:
            return str(self._mirror(repo).git.merge_base(a, b)).strip()
        except git.GitCommandError as exc:
            raise WorkspaceError(f"{a[:12]} and {b[:12]} share no history in {repo}") from exc
