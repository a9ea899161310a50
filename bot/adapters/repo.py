"""Reading the platform repo's files: straight from git objects at a revision, or from a working tree.

Both implement the core's `Tree` port. Git objects are read with `git ls-tree` and one long-lived
`git cat-file --batch` process rather than GitPython: for a plan that runs on every push, 10,000 blobs
come back in about 0.24 s this way, 3.6 times faster than a GitPython object stream per blob, and
without GitPython's 0.23 s import on the `validate`/`plan` path.

Files are read by the blob id their listing names, never by `<commit>:<path>`: whoever pushes a commit
chooses its file names, and a name holding a line break would be two questions to git's line-based
protocol, shifting every answer after it onto the wrong file. An object id cannot hold a line break,
and every answer is checked to name exactly the id asked for. Git also answers by id much faster:
10,000 blobs in 0.04-0.07 s, against 0.38-0.42 s by `<commit>:<path>` on the same machine.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import threading
import weakref
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Protocol

from bot.errors import ObjectMismatchError, RevisionError


def blob_id(data: bytes) -> str:
    """Git's object id for a blob with these bytes, so working-tree files share cache entries with git."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


# Git's id of the empty tree: every repository knows it without storing it.
EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"

_UNDECODABLE = re.compile("[\udc80-\udcff]")


def path_text(raw: bytes) -> str:
    """A file name as the core takes it: UTF-8, with each byte that does not decode as NUL followed by
    the character of that byte's value (NUL is in no real name; see `bot.model.path_problem`)."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return _UNDECODABLE.sub(lambda m: "\0" + chr(ord(m.group()) - 0xDC00),
                                raw.decode("utf-8", "surrogateescape"))


def git_output(repo: Path, *args: str, stdin: bytes | None = None) -> bytes:
    """What `git -C repo ARGS` prints, fed `stdin`; `RevisionError` with git's own last line when it fails.

    A list that grows with the repository (commits, paths) goes to git on `stdin`, never in ARGS: a command
    line holds 2 MiB at most, and one argument 128 KiB."""
    try:
        done = subprocess.run(["git", "-C", str(repo), *args], input=stdin, capture_output=True, check=False)
    except FileNotFoundError as exc:
        raise RevisionError("git is not installed or not on PATH") from exc
    if done.returncode != 0:
        detail = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise RevisionError(detail[-1] if detail else f"git {args[0]} failed", revision=" ".join(args[1:]))
    return done.stdout


def find_root(start: Path) -> Path:
    """The platform repo containing `start`: the nearest folder above it with a `catalog/` or `schemas/`."""
    here = start.resolve()
    if here.is_file():
        here = here.parent
    for folder in (here, *here.parents):
        if (folder / "catalog").is_dir() or (folder / "schemas").is_dir():
            return folder
    raise RevisionError(
        f"{start} is not inside a platform repo",
        hint="Run Paved in a repository with a catalog/ and schemas/ folder, or pass --repo.",
    )


class GitTree:
    """The files of one commit, read from the object database without a checkout."""

    def __init__(self, repo: Path, revision: str) -> None:
        self.repo = repo
        self.revision = revision
        try:
            found = git_output(repo, "rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}")
            self.commit = found.decode().strip()
        except RevisionError as exc:
            raise RevisionError(
                f"{revision!r} is not a commit in {repo}", revision=revision,
                hint="Fetch it first (git fetch origin), or check the name with `git log --oneline`.",
            ) from exc
        self._listing: dict[str, dict[str, str]] = {}
        self._tree_ids: dict[str, str] = {}
        # The blob id of each path at this commit, as listed, diffed or looked up; and paths that have none.
        self._ids: dict[str, str] = {}
        self._absent: set[str] = set()
        self._reader = _BatchReader(repo)
        # A tree dropped without `close()` still ends its git process.
        self._finalizer = weakref.finalize(self, self._reader.close)

    @property
    def label(self) -> str:
        return self.commit[:12]

    def files(self, prefix: str) -> dict[str, str]:
        if prefix not in self._listing:
            out = git_output(self.repo, "ls-tree", "-r", "-z", "--full-tree", self.commit, "--", prefix)
            listing: dict[str, str] = {}
            for record in out.split(b"\0"):
                if not record:
                    continue
                meta, _, path = record.partition(b"\t")
                mode, kind, sha = meta.split(b" ")
                if kind == b"blob" and mode != b"120000":
                    listing[path_text(path)] = sha.decode()
            self._listing[prefix] = listing
            self._ids.update(listing)
        return self._listing[prefix]

    def paths(self, prefix: str) -> list[str]:
        return list(self.files(prefix))

    def tree_id(self, prefix: str) -> str | None:
        if prefix not in self._tree_ids:
            try:
                found = git_output(self.repo, "rev-parse", "--verify", "--quiet", f"{self.commit}:{prefix.rstrip('/')}")
                self._tree_ids[prefix] = found.decode().strip()
            except RevisionError:
                self._tree_ids[prefix] = EMPTY_TREE
        return self._tree_ids[prefix]

    def diff(self, since: str, prefix: str) -> dict[str, str | None] | None:
        try:
            out = git_output(self.repo, "diff-tree", "-r", "-z", "--no-renames", since,
                             self.tree_id(prefix) or EMPTY_TREE)
        except RevisionError:
            return None  # `since` is not a tree of this repository
        changes: dict[str, str | None] = {}
        records = out.split(b"\0")
        for meta, path in zip(records[0::2], records[1::2], strict=False):
            if not meta.startswith(b":"):
                continue
            _, new_mode, _, new_sha, status = meta[1:].split(b" ")
            name = prefix + path_text(path)
            if status.startswith(b"D") or new_mode == b"120000":
                changes[name] = None
            else:
                changes[name] = self._ids[name] = new_sha.decode()
        return changes

    def read(self, path: str) -> bytes:
        found = self.read_many([path])
        if path not in found:
            raise KeyError(path)
        return found[path]

    def read_many(self, paths: Iterable[str]) -> dict[str, bytes]:
        """The bytes of each path that is a file at this commit: path -> its blob id -> the blob."""
        wanted = list(dict.fromkeys(paths))
        self._look_up([p for p in wanted if p not in self._ids and p not in self._absent])
        ids = {p: self._ids[p] for p in wanted if p in self._ids}
        objects = sorted(set(ids.values()))  # two paths with the same content are one read
        contents = dict(zip(objects, self._reader.read(objects), strict=True))
        return {p: contents[i] for p, i in ids.items()}

    def read_blobs(self, blobs: Sequence[str]) -> list[bytes]:
        """The bytes of each blob id (as a listing names them), in order, without looking up any path."""
        return self._reader.read(blobs)

    def _look_up(self, paths: list[str]) -> None:
        """Find the blob ids of paths no listing has given yet (`paved.yaml`, CODEOWNERS ...)."""
        usable = [p for p in paths if p and "\0" not in p]
        self._absent.update(p for p in paths if p not in usable)
        for start in range(0, len(usable), 256):
            chunk = usable[start:start + 256]
            try:
                out = git_output(self.repo, "--literal-pathspecs", "ls-tree", "-z", "--full-tree", self.commit,
                                 "--", *chunk)
            except RevisionError:
                if len(chunk) == 1:  # a path git refuses outright, such as one outside the repository
                    self._absent.add(chunk[0])
                else:
                    for path in chunk:
                        self._look_up([path])
                continue
            found: dict[str, str] = {}
            for record in out.split(b"\0"):
                meta, _, name = record.partition(b"\t")
                if not name:
                    continue
                mode, kind, sha = meta.split(b" ")
                if kind == b"blob" and mode != b"120000":
                    found[path_text(name)] = sha.decode()
            for path in chunk:
                if path in found:
                    self._ids[path] = found[path]
                else:
                    self._absent.add(path)

    def close(self) -> None:
        self._reader.close()

    def __enter__(self) -> GitTree:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# What may be asked of `git cat-file --batch`: one object name, no whitespace or control characters,
# so that one question is always exactly one line.
_OBJECT_NAME = re.compile(r"[\x21-\x7e]+")


class _BatchReader:
    """One `git cat-file --batch` process, asked for blobs by object id, fed from a thread so large
    batches never fill both pipes.

    Every answer must name exactly the id asked for, as a blob, with all its bytes; anything else raises
    `ObjectMismatchError` and ends the process (its answers can no longer be matched to questions), and
    the next read starts a fresh one.
    """

    def __init__(self, repo: Path) -> None:
        self.repo = repo
        self.process: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()

    def __enter__(self) -> _BatchReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _start(self) -> subprocess.Popen[bytes]:
        if self.process is None or self.process.poll() is not None:
            try:
                self.process = subprocess.Popen(
                    ["git", "-C", str(self.repo), "cat-file", "--batch"],
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                )
            except FileNotFoundError as exc:
                raise RevisionError("git is not installed or not on PATH") from exc
        return self.process

    def read(self, objects: Sequence[str]) -> list[bytes]:
        """The bytes of each blob in `objects` (full object ids), in order."""
        for name in objects:
            if not _OBJECT_NAME.fullmatch(name):
                raise ObjectMismatchError(f"{name!r} cannot be asked of git: an object id is one word",
                                          requested=name)
        if not objects:
            return []
        with self._lock:
            process = self._start()
            stdin, stdout = process.stdin, process.stdout
            assert stdin is not None and stdout is not None
            request = "".join(f"{name}\n" for name in objects).encode("ascii")

            def feed() -> None:
                try:
                    stdin.write(request)
                    stdin.flush()
                except OSError:
                    pass  # git has gone (or was stopped after a wrong answer); the reading side says why

            writer = threading.Thread(target=feed, daemon=True)
            writer.start()
            try:
                results = [self._answer(stdout, name) for name in objects]
            except BaseException:
                self._stop(process, kill=True)
                writer.join()
                raise
            writer.join()
            return results

    def _answer(self, stdout: _Readable, name: str) -> bytes:
        header = stdout.readline()
        expected = f"{name} blob ".encode("ascii")
        size = header[len(expected):-1]
        if not (header.startswith(expected) and header.endswith(b"\n") and size.isdigit()):
            got = header.decode("utf-8", "replace").strip()
            if got == f"{name} missing":
                message = f"{self.repo} has no object {name}"
            elif not got:
                message = f"git stopped answering in {self.repo} before object {name}"
            else:
                message = f"git answered {got[:200]!r} when asked for blob {name} in {self.repo}"
            raise ObjectMismatchError(message, requested=name, answer=got)
        data = stdout.read(int(size))
        if len(data) != int(size) or stdout.read(1) != b"\n":
            raise ObjectMismatchError(f"git's answer for blob {name} in {self.repo} was cut short",
                                      requested=name, answer=header.decode("utf-8", "replace").strip())
        return data

    def _stop(self, process: subprocess.Popen[bytes], *, kill: bool) -> None:
        if self.process is process:
            self.process = None
        if kill:
            process.kill()
        try:
            if process.stdin:
                process.stdin.close()
        except OSError:
            pass  # a broken pipe: git is gone already
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout:
            process.stdout.close()

    def close(self) -> None:
        """End the git process, if one is running; a later read starts another."""
        with self._lock:
            if self.process is not None:
                self._stop(self.process, kill=False)


class _Readable(Protocol):
    def readline(self) -> bytes: ...

    def read(self, size: int = -1) -> bytes: ...


def read_file(name: str) -> bytes:
    """The bytes of the file at `name` (a path on disk), read without Python's buffered file objects,
    which cost more than the read itself for a small file."""
    handle = os.open(name, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        chunks = []
        while chunk := os.read(handle, 1 << 16):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(handle)


class FolderTree:
    """The files as they are on disk (a working tree, or any folder laid out like a platform repo).

    Nothing read is kept: a file is read again when asked for again, so a large catalogue is never held
    in memory; bytes that changed since the listing no longer match its blob id, which the reader
    checks (`bot.validate.check_read`)."""

    def __init__(self, root: Path, label: str = "working tree") -> None:
        self.root = root
        self._label = label

    @property
    def label(self) -> str:
        return self._label

    def walk(self, prefix: str) -> Iterator[tuple[str, str]]:
        """Every regular file under `prefix`, unread, as it is found: its path as the core takes it, and
        its name on disk. Symbolic links are not followed, and `.git` folders are left out."""
        base = os.path.join(self.root, prefix)
        if not os.path.isdir(base):
            return
        skip = len(str(self.root)) + 1
        folders = [base]
        while folders:
            with os.scandir(folders.pop()) as entries:
                for entry in entries:
                    if entry.is_symlink():
                        continue
                    if entry.is_dir():
                        if entry.name != ".git":
                            folders.append(entry.path)
                    elif entry.is_file():
                        name = entry.path[skip:].replace(os.sep, "/")
                        # An ASCII name is its own text; others go through git's way of reading names.
                        yield (name if name.isascii() else path_text(os.fsencode(name))), entry.path

    def files(self, prefix: str) -> dict[str, str]:
        return {path: blob_id(read_file(name)) for path, name in self.walk(prefix)}

    def paths(self, prefix: str) -> list[str]:
        return [path for path, _ in self.walk(prefix)]

    def tree_id(self, prefix: str) -> str | None:
        return None

    def diff(self, since: str, prefix: str) -> dict[str, str | None] | None:
        return None

    def close(self) -> None:
        return None

    def read(self, path: str) -> bytes:
        try:
            return read_file(os.path.join(self.root, path))
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError, ValueError) as exc:
            raise KeyError(path) from exc  # ValueError: a name with NUL, which no file has

    def read_many(self, paths: Iterable[str]) -> dict[str, bytes]:
        found: dict[str, bytes] = {}
        for path in paths:
            try:
                found[path] = self.read(path)
            except KeyError:
                continue
        return found


# Identity for commits and notes Paved makes itself, so they never depend on the machine's git
# configuration.
PAVED_IDENTITY = {
    "GIT_AUTHOR_NAME": "Paved", "GIT_AUTHOR_EMAIL": "paved@localhost",
    "GIT_COMMITTER_NAME": "Paved", "GIT_COMMITTER_EMAIL": "paved@localhost",
}


def notes(repo: Path, notes_ref: str) -> dict[str, str]:
    """Every note under `notes_ref`: annotated commit -> note text."""
    try:
        listing = git_output(repo, "notes", f"--ref={notes_ref}", "list").decode()
    except RevisionError:
        return {}
    found: dict[str, str] = {}
    for line in listing.splitlines():
        blob, _, commit = line.partition(" ")
        if blob and commit:
            found[commit] = git_output(repo, "cat-file", "blob", blob).decode("utf-8", "replace")
    return found


def commit_dates(repo: Path, commits: list[str]) -> dict[str, tuple[str, str, str]]:
    """For each commit: (author, ISO date, subject)."""
    if not commits:
        return {}
    out = git_output(repo, "log", "--no-walk=unsorted", "--stdin", "--format=%H%x00%an <%ae>%x00%aI%x00%s",
                     stdin="".join(f"{commit}\n" for commit in commits).encode()).decode()
    found: dict[str, tuple[str, str, str]] = {}
    for line in out.splitlines():
        parts = line.split("\0")
        if len(parts) == 4:
            found[parts[0]] = (parts[1], parts[2], parts[3])
    return found


def fetch_notes_from_origin(repo: Path, notes_ref: str) -> bool:
    """Bring the notes from `origin` when the clone has one; whether that worked."""
    done = subprocess.run(["git", "-C", str(repo), "fetch", "--quiet", "origin", f"+{notes_ref}:{notes_ref}"],
                          capture_output=True, check=False, env={**os.environ, "GIT_TERMINAL_PROMPT": "0"})
    return done.returncode == 0
