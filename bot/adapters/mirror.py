"""Local mirrors of platform repos: fetch what a job needs, read it as git trees, push notes and refs.

One bare mirror per repository in the data folder, fetched incrementally, so a plan reads base and
head straight from git objects without a checkout. Fetches and pushes run git with `git_environment`;
GitPython drives the local commands (notes, refs); reading files goes through `GitTree` (one
`git cat-file --batch`).

Credentials are given per command as an HTTP header, through git's environment (`GIT_CONFIG_COUNT`,
`GIT_CONFIG_KEY_n`, `GIT_CONFIG_VALUE_n`): never on git's command line, which any user of the machine can
read in /proc/<pid>/cmdline, and never stored in the mirror's config. That environment is built from
scratch with only what git needs from Paved's own (where programs and git's config are, proxies, CA
certificates), so Paved's secrets are not handed to git and the helpers it starts. Any error message is
scrubbed of credentials. `clone` makes a working clone the same way.

Pushes never force. Several workers add records to the same notes refs, so a notes ref is merged with
the forge's before it is pushed (`git notes merge -s cat_sort_uniq`: every record is one JSON line, and
every line of both sides is kept), and pushed again after another merge when another writer got there
first. Other refs move fast-forward only, or from the commit the caller expects (a compare-and-swap:
`--force-with-lease=<ref>:<expected>`). A push whose answer was lost is asked about: when the forge has
the ref where the push meant to put it, the push happened.

A mirror is a cache of the forge: a mirror that git cannot open (a crash or a read-only remount left its
`HEAD` empty, its objects damaged) is deleted and fetched again, and a ref of Paved's that the forge does
not have (a push that never arrived) is dropped from the mirror when it is fetched, never carried along
into the next push.
"""

from __future__ import annotations

import base64
import fcntl
import logging
import os
import random
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path

import git

from bot.adapters.repo import PAVED_IDENTITY, GitTree
from bot.errors import PavedError
from bot.files import private_folder

Credentials = Callable[[str], str]  # repo ("owner/name") -> token to fetch and push with
log = logging.getLogger(__name__)
# What git says of a mirror it cannot use: rebuilt from the forge, once, then the job goes on.
_DAMAGED = ("not a git repository", "bad object", "loose object", "is corrupt", "unable to read", "invalid sha1",
            "bad signature", "index file", "missing object", "did not send all necessary objects")


class MirrorError(PavedError):
    """Raised when git cannot fetch or push; the message never contains a credential."""


class PushRejected(MirrorError):
    """Raised when the forge refuses to move a ref because it is not where the push expected it: another
    writer moved it since it was read (not a fast-forward, or not the expected commit)."""


# How a notes ref that another writer moved meanwhile is merged and pushed again: this many pushes at
# most, waiting a random while between them, up to twice as long each time.
NOTES_PUSH_ATTEMPTS = 6
NOTES_RETRY_SECONDS = 0.1
NOTES_MERGE_STRATEGY = "cat_sort_uniq"
# What git says when a ref moved under a push: refused by git before sending (`[rejected] … (fetch
# first | non-fast-forward | stale info)`), or by the forge when another push won the race for the ref.
_MOVED = ("[rejected]", "cannot lock ref", "failed to update ref", "incorrect old value")


# What git may need from Paved's environment: where programs and git's own configuration are, proxies and
# CA certificates for HTTPS. Nothing else is passed on (Paved's variables hold its secrets).
GIT_NEEDS = ("PATH", "HOME", "TMPDIR", "XDG_CONFIG_HOME", "GIT_EXEC_PATH", "GIT_CONFIG_NOSYSTEM", "GIT_CONFIG_GLOBAL",
             "GIT_CONFIG_SYSTEM", "GIT_SSL_CAINFO", "GIT_SSL_CAPATH", "SSL_CERT_FILE", "SSL_CERT_DIR",
             "CURL_CA_BUNDLE", "http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY",
             "no_proxy", "NO_PROXY")


def _basic(token: str) -> str:
    return base64.b64encode(f"x-access-token:{token}".encode()).decode()


def git_environment(token: str | None = None) -> dict[str, str]:
    """The whole environment for a git command: what git needs of Paved's (`GIT_NEEDS`), messages in
    English (Paved reads some), no prompts, no credential helper, and `token`, when given, as an HTTP
    `Authorization` header in git's configuration for this command only."""
    env = {name: os.environ[name] for name in GIT_NEEDS if name in os.environ}
    env.setdefault("PATH", os.defpath)
    env.update({"LC_ALL": "C", "LANGUAGE": "C", "GIT_TERMINAL_PROMPT": "0"})
    config = [("credential.helper", "")]
    if token:
        config.append(("http.extraHeader", f"Authorization: Basic {_basic(token)}"))
    env["GIT_CONFIG_COUNT"] = str(len(config))
    for index, (key, value) in enumerate(config):
        env[f"GIT_CONFIG_KEY_{index}"] = key
        env[f"GIT_CONFIG_VALUE_{index}"] = value
    return env


def _git(args: list[str], *, cwd: Path | None, token: str, what: str) -> str:
    """Run git with `token` in its environment; `MirrorError` saying it could not `what`, scrubbed."""
    try:
        done = subprocess.run(["git", *args], cwd=cwd, env=git_environment(token), stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, check=False)
    except OSError as exc:
        raise MirrorError(f"git could not {what}: {exc.strerror}") from None
    if done.returncode != 0:
        detail = _scrub(done.stderr.strip() or f"exit status {done.returncode}", [token, _basic(token)])
        lines = [line for line in detail.splitlines() if not line.startswith("hint:")] or [detail]
        moved = [line.strip() for line in lines if any(sign in line for sign in _MOVED)]
        if args[:1] == ["push"] and moved:
            raise PushRejected(f"git could not {what}: {moved[0]}")
        raise MirrorError(f"git could not {what}: {lines[-1]}")
    return done.stdout


def clone(url: str, folder: Path, token: str, refs: Iterable[str] = ()) -> None:
    """Clone `url` into `folder` with `token`, then fetch `refs` (full names, such as notes) under the same
    names. The token travels in git's environment only, so the clone's `.git/config` holds the bare URL."""
    _git(["clone", "--quiet", url, str(folder)], cwd=None, token=token, what=f"clone {_scrub(url, [token])}")
    specs = [f"+{ref}:{ref}" for ref in refs]
    if specs:
        _git(["fetch", "--quiet", "origin", *specs], cwd=folder, token=token, what=f"fetch {', '.join(refs)}")


def _scrub(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return re.sub(r"(Authorization: Basic )[A-Za-z0-9+/=]+", r"\1***", text)


class GitMirror:
    """The `Mirror` port (`bot.forge`) in git: mirrors under `root`, one per repository, reached at
    `clone_url(repo)` with `token(repo)`."""

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
        private_folder(lock_path.parent)
        with open(lock_path, "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _mirror(self, repo: str) -> git.Repo:
        path = self.path(repo)
        if (path / "HEAD").exists():
            try:
                if (path / "HEAD").read_bytes().strip():
                    return git.Repo(path)
            except (OSError, git.InvalidGitRepositoryError, git.NoSuchPathError):
                pass
            self._discard(repo, "git cannot open it")
        try:
            private_folder(path.parent)
            return git.Repo.init(path, bare=True)
        except (OSError, git.GitCommandError) as exc:
            raise MirrorError(f"the mirror of {repo} cannot be made in {path.parent}: "
                                 f"{getattr(exc, 'strerror', None) or exc}") from None

    def _discard(self, repo: str, why: str) -> None:
        """Delete a damaged mirror: it is only a cache of the forge, fetched again by the next step."""
        path = self.path(repo)
        log.warning("the mirror of %s is damaged (%s): deleting it to fetch it again from the forge", repo, why)
        try:
            shutil.rmtree(path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise MirrorError(f"the mirror of {repo} is damaged ({why}) and cannot be rebuilt: "
                                 f"{exc.strerror or exc}") from None

    def _run(self, repo: str, what: str, *args: str) -> str:
        with self._locked(repo):
            return self._run_locked(repo, what, *args)

    def _run_locked(self, repo: str, what: str, *args: str) -> str:
        mirror = self._mirror(repo)
        return _git(list(args), cwd=Path(mirror.git_dir), token=self.token(repo), what=f"{what} for {repo}")

    def fetch(self, repo: str, refs: Iterable[str]) -> None:
        """Fetch `refs` (branch names or full refs) into the mirror under the same names; a mirror git
        finds damaged on the way is rebuilt and fetched again."""
        specs = []
        for ref in refs:
            full = ref if ref.startswith("refs/") else f"refs/heads/{ref}"
            specs.append(f"+{full}:{full}")
        with self._locked(repo):
            try:
                self._run_locked(repo, "fetch", "fetch", "--quiet", "--no-tags", "--prune", self.clone_url(repo),
                                 *specs)
            except MirrorError as exc:
                if not any(sign in exc.message.lower() for sign in _DAMAGED):
                    raise
                self._discard(repo, exc.message)
                self._run_locked(repo, "fetch", "fetch", "--quiet", "--no-tags", "--prune", self.clone_url(repo),
                                 *specs)

    def push(self, repo: str, refs: Iterable[str], *, expected: Mapping[str, str | None] | None = None) -> None:
        """Push refs of the mirror to the same names on the forge, never forcing.

        A notes ref (`refs/notes/…`) is first merged with the forge's, keeping every record of both,
        and merged and pushed again when another writer moved it meanwhile. Any other ref moves only
        fast-forward, or, when `expected` names it, only from that commit (None: only if it does not
        exist yet), whatever their history; `PushRejected` otherwise.
        """
        expected = expected or {}
        others = []
        for ref in refs:
            if ref.startswith("refs/notes/"):
                self._push_notes(repo, ref)
            else:
                others.append(ref)
        if others:
            leases = [f"--force-with-lease={r}:{expected[r] or ''}" for r in others if r in expected]
            try:
                self._run(repo, "push", "push", "--quiet", *leases, self.clone_url(repo),
                          *[f"{r}:{r}" for r in others])
            except MirrorError:
                # The answer may have been lost after the forge took the push (git then tries again and is
                # refused, as the ref already moved): what the forge has now decides.
                if self._arrived(repo, others):
                    return
                raise

    def _arrived(self, repo: str, refs: list[str]) -> bool:
        """Whether the forge has every one of `refs` where the mirror has it."""
        try:
            listed = self._run(repo, "ask the forge where its refs are", "ls-remote", self.clone_url(repo), *refs)
        except MirrorError:
            return False
        there = {name: sha for sha, _, name in (line.partition("\t") for line in listed.splitlines())}
        return all(there.get(ref) is not None and there.get(ref) == self.resolve(repo, ref) for ref in refs)

    def _push_notes(self, repo: str, ref: str) -> None:
        for attempt in range(1, NOTES_PUSH_ATTEMPTS + 1):
            with self._locked(repo):
                self._merge_forge_notes(repo, ref)
                try:
                    self._run_locked(repo, f"push {ref}", "push", "--quiet", self.clone_url(repo), f"{ref}:{ref}")
                    return
                except PushRejected:
                    if attempt == NOTES_PUSH_ATTEMPTS:
                        raise
            # Another writer pushed between our fetch and our push: let it finish, then merge again.
            time.sleep(random.uniform(0.5, 1.0) * NOTES_RETRY_SECONDS * 2 ** (attempt - 1))

    def _merge_forge_notes(self, repo: str, ref: str) -> None:
        """Merge the forge's `ref` into the mirror's (holding the mirror's lock): fetched into a temporary
        notes ref, then `git notes merge`, where a note both sides changed keeps every line of both."""
        incoming = "refs/notes/paved-incoming/" + ref.removeprefix("refs/notes/")
        try:
            self._run_locked(repo, f"fetch {ref}", "fetch", "--quiet", "--no-tags", self.clone_url(repo),
                             f"+{ref}:{incoming}")
        except MirrorError as exc:
            if "couldn't find remote ref" in exc.message:
                return  # nothing on the forge yet: ours is all there is
            raise
        mirror = self._mirror(repo)
        try:
            mirror.git.notes(f"--ref={ref}", "merge", "--quiet", f"--strategy={NOTES_MERGE_STRATEGY}", incoming,
                             env=PAVED_IDENTITY)
        except git.GitCommandError as exc:
            with suppress(git.GitCommandError):  # leave no half-done merge behind for the next one
                mirror.git.notes(f"--ref={ref}", "merge", "--abort")
            detail = (str(exc.stderr).strip().splitlines() or [f"exit status {exc.status}"])[-1]
            raise MirrorError(f"git could not merge the forge's {ref} for {repo}: {detail}") from exc
        finally:
            mirror.git.update_ref("-d", incoming)

    def fetch_if_present(self, repo: str, ref: str) -> bool:
        """Fetch one of Paved's own refs; when the forge has none, the mirror keeps none either."""
        try:
            self.fetch(repo, [ref])
        except MirrorError as exc:
            if "couldn't find remote ref" in exc.message:
                with self._locked(repo), suppress(git.GitCommandError):
                    self._mirror(repo).git.update_ref("-d", ref)
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
        # From a file, not `-m`: the record of a large first apply is longer than a command line may be. The
        # mirror is opened (made, for a worker that never fetched) first: the file is written inside it.
        with self._locked(repo):
            mirror = self._mirror(repo)
            with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=self.path(repo), prefix="note-",
                                             suffix=".txt") as note:
                note.write(text)
                note.flush()
                mirror.git.notes(f"--ref={notes_ref}", "append", "-F", note.name, sha, env=PAVED_IDENTITY)

    def set_ref(self, repo: str, ref: str, sha: str) -> None:
        with self._locked(repo):
            self._mirror(repo).git.update_ref(ref, sha)

    def tree(self, repo: str, revision: str) -> GitTree:
        return GitTree(self.path(repo), revision)

    def first_parents(self, repo: str, since: str | None, until: str, limit: int) -> list[str]:
        span = f"{since}..{until}" if since else until
        try:
            listed = self._mirror(repo).git.rev_list("--first-parent", f"--max-count={limit}", span)
        except git.GitCommandError as exc:
            raise MirrorError(f"cannot list the commits {span} of {repo}") from exc
        return [line.strip() for line in str(listed).splitlines() if line.strip()]

    def merge_base(self, repo: str, a: str, b: str) -> str:
        try:
            return str(self._mirror(repo).git.merge_base(a, b)).strip()
        except git.GitCommandError as exc:
            raise MirrorError(f"{a[:12]} and {b[:12]} share no history in {repo}") from exc
