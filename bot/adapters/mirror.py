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
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path

import git

from bot.adapters.repo import PAVED_IDENTITY, GitTree
from bot.errors import PavedError
from bot.files import private_folder
from bot.forge import MergedTree

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


# What every local git command of the mirror runs with, whatever the machine's configuration: the same
# commits and conflict markers on every replica, and nothing that signs or converts.
_PINNED = ("-c", "merge.conflictStyle=merge", "-c", "core.autocrlf=false", "-c", "commit.gpgSign=false",
           "-c", "core.hooksPath=/dev/null")


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

    def notes(self, repo: str, notes_ref: str) -> dict[str, str]:
        """Read in one `git cat-file --batch`, however many notes there are."""
        listed = self._local(repo, f"list the notes of {notes_ref}", "notes", f"--ref={notes_ref}", "list",
                             codes=(0, 1)).stdout.decode()
        pairs = [tuple(line.split()) for line in listed.splitlines() if len(line.split()) == 2]
        if not pairs:
            return {}
        batch = self._local(repo, f"read the notes of {notes_ref}", "cat-file", "--batch",
                            stdin="".join(f"{blob}\n" for blob, _ in pairs).encode()).stdout
        found: dict[str, str] = {}
        at = 0
        for _, commit in pairs:
            header_end = batch.index(b"\n", at)
            size = int(batch[at:header_end].split()[2])
            found[commit] = batch[header_end + 1:header_end + 1 + size].decode("utf-8", "replace")
            at = header_end + 1 + size + 1
        return found

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

    def holds(self, repo: str, commit: str, head: str) -> bool:
        try:
            return commit == head or self.merge_base(repo, commit, head) == commit
        except PavedError:  # not a commit the mirror holds at all
            return False

    # -- commits made in the mirror: a golden path's upgrade, merged by git --------------------------------------

    def _local(self, repo: str, what: str, *args: str, env: Mapping[str, str] | None = None,
               codes: tuple[int, ...] = (0,), cwd: Path | None = None,
               stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
        """Run a git command that stays on this machine (no credential) in the mirror, fed `stdin`; its outcome
        when it exits with one of `codes`, else `MirrorError` saying it could not `what`."""
        mirror = Path(self._mirror(repo).git_dir)
        full = {**git_environment(), **PAVED_IDENTITY, "GIT_DIR": str(mirror), **(env or {})}
        try:
            done = subprocess.run(["git", *_PINNED, *args], env=full, input=stdin if stdin is not None else b"",
                                  cwd=cwd, capture_output=True, check=False)
        except OSError as exc:
            raise MirrorError(f"git could not {what} for {repo}: {exc.strerror}") from None
        if done.returncode not in codes:
            lines = done.stderr.decode("utf-8", "replace").strip().splitlines() or [f"exit {done.returncode}"]
            raise MirrorError(f"git could not {what} for {repo}: {lines[-1]}")
        return done

    def file(self, repo: str, revision: str, path: str, limit: int) -> bytes | None:
        listed = self._local(repo, f"look for {path} at {revision[:12]}", "--literal-pathspecs", "ls-tree", "-z",
                             "-l", "--full-tree", revision, "--", path).stdout
        meta, _, name = listed.rstrip(b"\0").partition(b"\t")
        fields = meta.split()
        if name.decode("utf-8", "replace") != path or len(fields) != 4 or fields[1] != b"blob" \
                or fields[0] not in (b"100644", b"100755"):
            return None
        if int(fields[3]) <= limit:
            return self._local(repo, f"read {path}", "cat-file", "blob", fields[2].decode()).stdout
        # Larger than anything the caller takes: read no more than enough to say so.
        mirror = Path(self._mirror(repo).git_dir)
        with subprocess.Popen(["git", "cat-file", "blob", fields[2].decode()], stdout=subprocess.PIPE,
                              stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              env={**git_environment(), "GIT_DIR": str(mirror)}) as reading:
            assert reading.stdout is not None
            start = reading.stdout.read(limit + 1)
            reading.kill()
        return start

    def commit_folder(self, repo: str, folder: Path, message: str, parents: Sequence[str] = ()) -> str:
        with tempfile.TemporaryDirectory(prefix="paved-index-") as scratch:
            # A throwaway index: the files are added as `git add --all` adds them to a new repository (the
            # folder's own .gitignore holds), which is how a scaffolded project's first commit was made.
            env = {"GIT_INDEX_FILE": str(Path(scratch) / "index"), "GIT_WORK_TREE": str(folder)}
            self._local(repo, "add the rendered files", "add", "--all", env=env, cwd=folder)
            tree = self._local(repo, "write the rendered files' tree", "write-tree", env=env).stdout.decode().strip()
        return self.commit_tree(repo, tree, message, parents)

    def commit_tree(self, repo: str, tree: str, message: str, parents: Sequence[str]) -> str:
        linked = [arg for parent in parents for arg in ("-p", parent)]
        return self._local(repo, "make a commit", "commit-tree", "--no-gpg-sign", f"{tree}^{{tree}}", *linked,
                           "-m", message).stdout.decode().strip()

    def merge_trees(self, repo: str, base: str, ours: str, theirs: str, *,
                    labels: tuple[str, str] = ("ours", "theirs")) -> MergedTree:
        """As the port says; `labels` are branch names git writes beside its conflict markers.

        git 2.39 has no `merge-tree --merge-base`: git finds the base itself, as the merge base of the two
        sides. So each side becomes a throwaway commit of its tree whose only parent is `base`, which
        makes `base` their merge base. The two are named by `labels` in a scratch repository that keeps its
        objects in the mirror's object store, so the merged tree is in the mirror."""
        mirror = Path(self._mirror(repo).git_dir)
        one = self.commit_tree(repo, ours, "ours", [base])
        two = self.commit_tree(repo, theirs, "theirs", [base])
        with tempfile.TemporaryDirectory(prefix="paved-merge-") as scratch:
            names = Path(scratch) / "names.git"
            self._local(repo, "prepare a merge", "init", "--quiet", "--bare", str(names))
            env = {"GIT_DIR": str(names), "GIT_OBJECT_DIRECTORY": str(mirror / "objects")}
            for label, commit in zip(labels, (one, two), strict=True):
                self._local(repo, "name a side of the merge", "update-ref", f"refs/heads/{label}", commit, env=env)
            done = self._local(repo, "merge the golden path's change", "merge-tree", "--write-tree", "--name-only",
                               "--no-messages", "-z", *labels, env=env, codes=(0, 1))
        tree, *conflicts = [part.decode("utf-8", "replace") for part in done.stdout.split(b"\0") if part]
        return MergedTree(tree, tuple(dict.fromkeys(conflicts)))

    def made_by_paved(self, repo: str, commit: str) -> bool:
        shown = self._local(repo, "read who made a commit", "show", "-s", "--format=%ae%x00%ce", commit).stdout
        return shown.decode("utf-8", "replace").strip().split("\0") == [
            PAVED_IDENTITY["GIT_AUTHOR_EMAIL"], PAVED_IDENTITY["GIT_COMMITTER_EMAIL"]]

    def changed_files(self, repo: str, before: str, after: str) -> list[str]:
        listed = self._local(repo, "compare two commits", "diff-tree", "-r", "-z", "--name-only", "--no-renames",
                             f"{before}^{{tree}}", f"{after}^{{tree}}").stdout
        return sorted(part.decode("utf-8", "replace") for part in listed.split(b"\0") if part)

    def commits_touching(self, repo: str, since: str, until: str, path: str, limit: int) -> list[str]:
        listed = self._local(repo, f"list the commits that changed {path}", "rev-list", "--first-parent",
                             f"--max-count={limit}", f"{since}..{until}", "--", path).stdout.decode()
        return list(reversed(listed.split()))
