"""Git plumbing over the sandbox's bare repositories (the `git` command, no working trees).

Everything the API reports about branches, commits, trees, files and pull-request diffs is read
here from the bare repository, and everything the API writes (files, commits, refs, merges) is
written here, so git clients and API clients always see the same repository.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
ZERO_SHA = "0" * 40


class GitError(Exception):
    """Raised when a git command fails; `stderr` holds what git said."""

    def __init__(self, args: list[str], code: int, stderr: str) -> None:
        super().__init__(f"git {' '.join(args)} exited {code}: {stderr.strip()}")
        self.code = code
        self.stderr = stderr


def git_environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for every git the sandbox runs: no system or user config may change results."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("GIT_")}
    env.update(
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_TERMINAL_PROMPT="0",
        LC_ALL="C",
    )
    env.update(extra or {})
    return env


@dataclass(frozen=True)
class Person:
    name: str
    email: str
    date: str  # ISO 8601, UTC

    def git_env(self, role: str) -> dict[str, str]:
        return {
            f"GIT_{role}_NAME": self.name,
            f"GIT_{role}_EMAIL": self.email,
            f"GIT_{role}_DATE": self.date,
        }


@dataclass(frozen=True)
class GitCommit:
    sha: str
    tree: str
    parents: tuple[str, ...]
    author: Person
    committer: Person
    message: str


@dataclass(frozen=True)
class TreeEntry:
    mode: str
    type: str  # blob, tree, commit
    sha: str
    path: str
    size: int | None


@dataclass(frozen=True)
class FileChange:
    """One file of a diff, in the terms of GitHub's `diff-entry`."""

    filename: str
    status: str  # added, removed, modified, renamed, copied, changed
    additions: int
    deletions: int
    sha: str  # blob sha after the change (before, for removed files)
    patch: str | None
    previous_filename: str | None = None

    @property
    def changes(self) -> int:
        return self.additions + self.deletions


@dataclass(frozen=True)
class TreeChange:
    """A path to set (mode + blob sha) or, with sha None, to remove, when building a tree."""

    path: str
    mode: str
    sha: str | None
    type: str = "blob"


def _iso(timestamp: str, offset: str) -> str:
    sign = -1 if offset.startswith("-") else 1
    delta = timedelta(hours=int(offset[1:3]), minutes=int(offset[3:5])) * sign
    moment = datetime.fromtimestamp(int(timestamp), tz=timezone(delta))
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _person(line: str) -> Person:
    # "Name <email> 1700000000 +0000"
    head, _, rest = line.rpartition(">")
    name, _, email = head.partition("<")
    timestamp, offset = rest.split()
    return Person(name=name.strip(), email=email, date=_iso(timestamp, offset))


# Branch protection for git pushes, refused as GitHub refuses them (GH006). The server tells the hook
# which refs this pusher may not touch through environment variables (`github.branches.PushRules`).
PRE_RECEIVE = """#!/bin/sh
zero=0000000000000000000000000000000000000000
status=0
while read old new ref; do
  reason=""
  case " $SANDBOX_LOCKED_REFS " in *" $ref "*) reason="Changes must be made through a pull request." ;; esac
  if [ "$new" = "$zero" ]; then
    case " $SANDBOX_NO_DELETE_REFS " in *" $ref "*) reason="Cannot delete this protected branch" ;; esac
  elif [ "$old" != "$zero" ] && ! git merge-base --is-ancestor "$old" "$new" 2>/dev/null; then
    case " $SANDBOX_NO_FORCE_REFS " in *" $ref "*) reason="Cannot force-push to this branch" ;; esac
  fi
  if [ -n "$reason" ]; then
    echo "error: GH006: Protected branch update failed for $ref." >&2
    echo "error: $reason" >&2
    status=1
  fi
done
exit $status
"""

_STATUS = {"A": "added", "D": "removed", "M": "modified", "R": "renamed", "C": "copied", "T": "changed"}


class GitRepo:
    """One bare repository on disk."""

    def __init__(self, path: Path) -> None:
        self.path = path

    # -- running git -------------------------------------------------------------------------------

    def run(self, *args: str, input: bytes | None = None, env: dict[str, str] | None = None,
            check: bool = True) -> subprocess.CompletedProcess[bytes]:
        argv = ["git", f"--git-dir={self.path}", *args]
        done = subprocess.run(argv, input=input, capture_output=True, env=git_environment(env), check=False)
        if check and done.returncode != 0:
            raise GitError(list(args), done.returncode, done.stderr.decode(errors="replace"))
        return done

    def text(self, *args: str, input: bytes | None = None, env: dict[str, str] | None = None) -> str:
        return self.run(*args, input=input, env=env).stdout.decode()

    # -- repository ----------------------------------------------------------------------------------

    def init(self, default_branch: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["git", "init", "--bare", "--quiet", f"--initial-branch={default_branch}", str(self.path)],
            check=True, capture_output=True, env=git_environment(),
        )
        # Let `git http-backend` serve pushes from any authenticated user the sandbox lets through.
        self.run("config", "http.receivepack", "true")
        self.install_hooks()

    def install_hooks(self) -> None:
        """Branch protection for pushes, and `refs/pull/*` readable but not pushable (as on GitHub)."""
        self.run("config", "receive.hideRefs", "refs/pull")
        hook = self.path / "hooks" / "pre-receive"
        hook.parent.mkdir(exist_ok=True)
        hook.write_text(PRE_RECEIVE)
        hook.chmod(0o755)

    def set_head(self, branch: str) -> None:
        self.run("symbolic-ref", "HEAD", f"refs/heads/{branch}")

    def refs(self, prefix: str = "refs/") -> dict[str, str]:
        """Ref name -> sha of what it points at (tags unpeeled), sorted by name."""
        out = self.text("for-each-ref", "--format=%(objectname) %(refname)", prefix)
        refs: dict[str, str] = {}
        for line in out.splitlines():
            sha, _, name = line.partition(" ")
            refs[name] = sha
        return refs

    def branches(self) -> dict[str, str]:
        return {name.removeprefix("refs/heads/"): sha for name, sha in self.refs("refs/heads/").items()}

    def resolve(self, rev: str, kind: str = "commit") -> str | None:
        """The sha `rev` names (a branch, tag, sha or ref), peeled to `kind`; None if there is none."""
        if rev.startswith("-"):
            return None
        done = self.run("rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{{kind}}}", check=False)
        return done.stdout.decode().strip() if done.returncode == 0 else None

    def object_type(self, sha: str) -> str | None:
        done = self.run("cat-file", "-t", sha, check=False)
        return done.stdout.decode().strip() if done.returncode == 0 else None

    def exists(self, sha: str) -> bool:
        return self.object_type(sha) is not None

    # -- reading objects ------------------------------------------------------------------------------

    def commit(self, sha: str) -> GitCommit:
        raw = self.text("cat-file", "commit", sha)
        header, _, message = raw.partition("\n\n")
        tree, parents, author, committer = "", [], None, None
        for line in header.splitlines():
            key, _, value = line.partition(" ")
            if key == "tree":
                tree = value
            elif key == "parent":
                parents.append(value)
            elif key == "author":
                author = _person(value)
            elif key == "committer":
                committer = _person(value)
        assert author is not None and committer is not None
        return GitCommit(sha=sha, tree=tree, parents=tuple(parents), author=author, committer=committer,
                         message=message)

    def tree(self, sha: str, recursive: bool = False) -> list[TreeEntry]:
        args = ["ls-tree", "-l", "-z", "--full-tree"]
        if recursive:
            args += ["-r", "-t"]
        out = self.text(*args, sha)
        entries = []
        for record in out.split("\0"):
            if not record:
                continue
            meta, _, path = record.partition("\t")
            mode, kind, object_sha, size = meta.split()
            entries.append(TreeEntry(mode, kind, object_sha, path, None if size == "-" else int(size)))
        return entries

    def entry(self, commit: str, path: str) -> TreeEntry | None:
        """The tree entry at `path` in `commit`; the root tree for ""."""
        path = path.strip("/")
        if not path:
            tree = self.resolve(commit, "tree")
            return TreeEntry("040000", "tree", tree, "", None) if tree else None
        out = self.text("ls-tree", "-l", "-z", "--full-tree", commit, "--", path)
        for record in out.split("\0"):
            meta, _, found = record.partition("\t")
            if found == path:
                mode, kind, sha, size = meta.split()
                return TreeEntry(mode, kind, sha, path, None if size == "-" else int(size))
        return None

    def blob(self, sha: str) -> bytes:
        return self.run("cat-file", "blob", sha).stdout

    def rev_list(self, head: str, exclude: str | None = None) -> list[str]:
        """Commits reachable from `head` but not from `exclude`, oldest first."""
        args = ["rev-list", "--reverse", "--topo-order", head]
        if exclude:
            args.append(f"^{exclude}")
        return self.text(*args).split()

    def merge_base(self, a: str, b: str) -> str | None:
        done = self.run("merge-base", a, b, check=False)
        return done.stdout.decode().strip() if done.returncode == 0 else None

    def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        return self.run("merge-base", "--is-ancestor", ancestor, descendant, check=False).returncode == 0

    def diff(self, old: str | None, new: str) -> list[FileChange]:
        """What changed from `old` (a commit or tree; None for nothing) to `new`, with renames."""
        base = old or EMPTY_TREE
        raw = self.text("diff-tree", "-r", "-z", "-M", "--raw", "--no-abbrev", base, new).split("\0")
        numstat = self.text("diff-tree", "-r", "-z", "-M", "--numstat", base, new).split("\0")
        patch = self.run("diff-tree", "-r", "-M", "-p", "--no-color", "--full-index", base, new).stdout
        patches = _split_patch(patch.decode(errors="replace"))
        changes: list[FileChange] = []
        i = j = 0
        while i < len(raw) and raw[i]:
            meta = raw[i].lstrip(":").split()
            _old_mode, _new_mode, old_sha, new_sha, status = meta
            letter = status[0]
            if letter in "RC":
                previous, filename = raw[i + 1], raw[i + 2]
                i += 3
            else:
                previous, filename = None, raw[i + 1]
                i += 2
            # numstat: "adds\tdels\tpath" or, for renames, "adds\tdels\t" then old, new as fields
            counts = numstat[j].split("\t")
            j += 3 if letter in "RC" else 1
            additions = int(counts[0]) if counts[0] != "-" else 0
            deletions = int(counts[1]) if counts[1] != "-" else 0
            changes.append(FileChange(
                filename=filename,
                status=_STATUS.get(letter, "modified"),
                additions=additions,
                deletions=deletions,
                sha=old_sha if letter == "D" else new_sha,
                patch=patches.get(filename),
                previous_filename=previous,
            ))
        return changes

    # -- writing objects ------------------------------------------------------------------------------

    def write_blob(self, data: bytes) -> str:
        return self.text("hash-object", "-w", "--stdin", input=data).strip()

    def write_tree(self, base_tree: str | None, changes: list[TreeChange]) -> str:
        """A new tree: `base_tree` (or nothing) with `changes` applied, nested paths included."""
        with tempfile.TemporaryDirectory(prefix="index-") as scratch:
            env = {"GIT_INDEX_FILE": str(Path(scratch) / "index")}
            if base_tree:
                self.run("read-tree", base_tree, env=env)
            else:
                self.run("read-tree", "--empty", env=env)
            entries: list[str] = []
            subtrees: list[TreeChange] = []
            for change in changes:
                path = change.path.strip("/")
                if change.sha is None or change.type == "tree":
                    # Drop the path itself and anything under it (mode 0 removes an index entry).
                    listed = self.text("ls-files", "-z", "--", path, env=env).split("\0")
                    entries += [f"0 {ZERO_SHA}\t{name}" for name in listed if name]
                if change.sha is not None and change.type == "tree":
                    subtrees.append(change)
                elif change.sha is not None:
                    entries.append(f"{change.mode} {change.sha}\t{path}")
            if entries:
                self.run("update-index", "--add", "--index-info", input="\n".join(entries).encode() + b"\n", env=env)
            for subtree in subtrees:
                self.run("read-tree", f"--prefix={subtree.path.strip('/')}/", str(subtree.sha), env=env)
            return self.text("write-tree", env=env).strip()

    def write_commit(self, tree: str, parents: list[str], message: str, author: Person,
                     committer: Person) -> str:
        args = ["commit-tree", tree]
        for parent in parents:
            args += ["-p", parent]
        env = {**author.git_env("AUTHOR"), **committer.git_env("COMMITTER")}
        return self.text(*args, input=message.encode(), env=env).strip()

    def update_ref(self, ref: str, new: str, old: str | None = None) -> bool:
        """Point `ref` at `new`, only if it still points at `old` (when given). False if it moved."""
        args = ["update-ref", ref, new] + ([old] if old else [])
        return self.run(*args, check=False).returncode == 0

    def delete_ref(self, ref: str) -> bool:
        return self.run("update-ref", "-d", ref, check=False).returncode == 0

    def merge_tree(self, ours: str, theirs: str) -> str | None:
        """The tree of merging `theirs` into `ours` (three-way, like the merge button); None on conflict."""
        done = self.run("merge-tree", "--write-tree", "--no-messages", ours, theirs, check=False)
        if done.returncode != 0:
            return None
        return done.stdout.decode().split()[0]

    def import_folder(self, folder: Path) -> str:
        """A tree holding the files of `folder` (git's ignore rules and `.git` folders left out)."""
        with tempfile.TemporaryDirectory(prefix="index-") as scratch:
            env = {"GIT_INDEX_FILE": str(Path(scratch) / "index"), "GIT_WORK_TREE": str(folder)}
            self.run("add", "--all", "--force", ".", env={**env, "GIT_DIR": str(self.path)})
            return self.text("write-tree", env=env).strip()

    def size_kb(self) -> int:
        out = self.text("count-objects", "-v")
        fields = dict(line.split(": ", 1) for line in out.splitlines() if ": " in line)
        return int(fields.get("size", "0")) + int(fields.get("size-pack", "0"))


def _split_patch(text: str) -> dict[str, str]:
    """Per-file hunks of a `git diff -p`, keyed by new path, as GitHub's `patch` field (from `@@`)."""
    patches: dict[str, str] = {}
    for chunk in text.split("\ndiff --git "):
        if not chunk.strip():
            continue
        lines = chunk.removeprefix("diff --git ").split("\n")
        name = None
        hunk_start = None
        for index, line in enumerate(lines):
            if line.startswith("+++ b/"):
                name = line[len("+++ b/"):]
            elif line.startswith("--- a/") and name is None:
                name = line[len("--- a/"):]
            elif line.startswith("rename to "):
                name = line[len("rename to "):]
            elif line.startswith("@@"):
                hunk_start = index
                break
        if name is not None and hunk_start is not None:
            patches[name] = "\n".join(lines[hunk_start:]).rstrip("\n")
    return patches
