"""Judging a large catalogue on every core: the core's `Judging` port over a pool of worker processes.

A new state's files are judged each on its own (`bot.catalogue.judge_read`, a plain function of bytes
and rules), so they are shared among workers in tasks of up to 1,000 files: each worker reads its
files itself (a folder's from disk, a commit's from git objects through a `git cat-file` of its own),
checks, parses and judges them, and sends back what the index stores (`JudgedFile`), never parsed
documents. The process that asked stores the answers, in order, while the workers go on. The policies
that wait for the whole catalogue are shared the same way. A working tree judged for the first time is
only walked here (`paths`): the workers hash the files as they read them. Otherwise its files are hashed
here (`listing`). Either way the workers start while this process walks.

Workers come from the `forkserver` start method: a fresh interpreter forks them, so none inherits the
asking process's SQLite connection or its git processes (a forked copy of either would share, and could
corrupt or hold open, what the parent uses). A worker that dies fails the judgement with `JudgingError`
instead of leaving it waiting; the index's transaction then stores nothing.

A pool costs about 0.3 s to start and some work to pass files and answers between processes, which a
small catalogue would not win back: below `WORKERS_FROM` files, or with one usable core, everything is
judged in this process (bench/README.md has the measurements behind the threshold).
"""

from __future__ import annotations

import copyreg
import gc
import itertools
import marshal
import os
import pickle
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from bot.adapters.repo import FolderTree, GitTree, blob_id, read_file
from bot.catalogue import (
    JudgedFile,
    LocalJudging,
    PolicySubject,
    Record,
    judge_read,
    judge_subjects,
)
from bot.errors import PavedError
from bot.model import Tree
from bot.rules import Rules
from bot.yamlio import Document, load

if TYPE_CHECKING:
    # Imported where a pool starts: `paved validate` on a small catalogue never starts one, and its
    # start-up is a speed target (bench/run.py).
    from concurrent.futures import Future, ProcessPoolExecutor

# Files below which a pool is not worth starting: it takes about 0.3 s to start (the fork server's
# imports, the workers, the rules sent to them), and with two cores saves about 0.07 ms a file (half of
# ~0.18 ms, less passing files and answers between processes), so it pays from about 4,300 files.
WORKERS_FROM = 5_000
# Files (or requests) in the largest task. Every answer that crosses back wakes this process's threads a
# few times, and each wake-up takes a core from a worker for a moment: 250-file tasks cost 5,000 context
# switches at 50,000 files, and the workers' tasks about 3% more processor time in all. Tasks shrink towards
# the end (`task_bounds`) so that the last ones do not keep a core waiting. (Tasks of 2,000 files were no
# faster, and the processes held 8 MiB more at 50,000 files.)
LARGEST_TASK = 1_000
SMALLEST_TASK = 100
# Tasks handed out ahead of the answer the asking process waits for, per worker.
AHEAD = 3
# Requests whose policies are worth sharing once the workers run (they judged the files).
SHARED_POLICIES_FROM = 500
# Bytes a pipe between this process and its workers holds: an answer of a large task is about 0.5 MB, which
# a pipe of the default 64 KB passes in many rounds, each waking both ends (Linux allows 1 MB by default).
PIPE_BYTES = 1 << 20

T = TypeVar("T")


class JudgingError(PavedError):
    """Raised when a worker process stopped before finishing its share of a judgement."""


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity, which `taskset` and containers narrow)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # a platform without affinity masks
        return os.cpu_count() or 1


@contextmanager
def paused_collector() -> Iterator[None]:
    """Run the enclosed work with the cyclic garbage collector paused.

    Judging allocates millions of small containers and frees them by reference counting; the collector
    would walk everything still alive again and again while finding nothing to collect (about a fifth of
    the time). What exists on entry is frozen out of its way for good measure, and all is as before on
    exit, whatever happens."""
    was_enabled = gc.isenabled()
    gc.freeze()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
        gc.unfreeze()


@dataclass(frozen=True, slots=True)
class TreeSource:
    """Where a worker reads a tree's files: a git repository's objects at a commit, or a folder."""

    root: str
    commit: str | None
    label: str


def source_of(tree: Tree) -> TreeSource | None:
    """How a worker opens `tree` again, or None for a tree only this process can read."""
    if isinstance(tree, GitTree):
        return TreeSource(str(tree.repo), tree.commit, tree.label)
    if type(tree) is FolderTree:
        return TreeSource(str(tree.root), None, tree.label)
    return None


@dataclass(frozen=True, slots=True)
class RulesParcel:
    """Rules as a worker receives them with each task: pickled once here, unpickled (and their validators
    compiled) once per worker, which keeps the last rules it saw by digest."""

    digest: str
    payload: bytes


class ProcessJudging:
    """The `Judging` port over up to `workers` processes (default: every usable core), started the
    first time a judgement is large enough and kept until `close`, for the next one (a plan judges two
    trees, by the same rules)."""

    def __init__(self, workers: int | None = None, *, workers_from: int = WORKERS_FROM,
                 per_task: int = LARGEST_TASK) -> None:
        self.workers = workers if workers is not None else usable_cores()
        self.workers_from = workers_from
        self.per_task = per_task
        self._local = LocalJudging()
        self._pool: ProcessPoolExecutor | None = None
        self._starting = threading.Lock()
        self._parcels: dict[str, RulesParcel] = {}

    def __enter__(self) -> ProcessJudging:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    # -- the port ------------------------------------------------------------------------------------

    def listing(self, tree: Tree, prefix: str) -> dict[str, str]:
        if type(tree) is not FolderTree:
            return tree.files(prefix)
        listing: dict[str, str] = {}
        for path, name in tree.walk(prefix):
            listing[path] = blob_id(read_file(name))
            if len(listing) == self.workers_from and self.workers >= 2:
                # Large enough: the workers start (about 0.3 s) while this process walks and hashes the rest,
                # which takes about as long at 50,000 files and would not be quicker shared.
                self._start_in_background()
        return listing

    def paths(self, tree: Tree, prefix: str) -> list[str]:
        if type(tree) is not FolderTree:
            return tree.paths(prefix)
        paths: list[str] = []
        for path, _ in tree.walk(prefix):
            paths.append(path)
            if len(paths) == self.workers_from and self.workers >= 2:
                self._start_in_background()
        return paths

    def judge_files(self, tree: Tree, rules: Rules, files: Sequence[tuple[str, str]],
                    records: bool = True) -> Iterator[JudgedFile]:
        source = source_of(tree)
        if self.workers < 2 or len(files) < self.workers_from or source is None:
            yield from self._local.judge_files(tree, rules, files, records)
            return
        parcel = self._parcel(rules)
        for answer in self._in_order((_judge_files, source, parcel, (files[start:end], records))
                                     for start, end in task_bounds(len(files), self.workers, self.per_task)):
            yield from map(JudgedFile._make, marshal.loads(answer))

    def judge_policies(self, tree: Tree, rules: Rules,
                       subjects: Sequence[PolicySubject]) -> Iterator[tuple[Record, ...]]:
        """As the port says; with workers, every task is handed out at once, so they work while the
        caller goes on until it asks for the first answer (the core reads the next stale policies). Once
        the workers run (they judged the files), a few tasks' worth is enough to share."""
        source = source_of(tree)
        enough = SHARED_POLICIES_FROM if self._pool is not None else self.workers_from
        if self.workers < 2 or len(subjects) < enough or source is None:
            return self._local.judge_policies(tree, rules, subjects)
        parcel = self._parcel(rules)
        # A request is judged in a few microseconds: the requests are shared evenly, in as few tasks as may be.
        per_task = min(self.per_task, -(-len(subjects) // self.workers))
        tasks = [(_judge_subjects, source, parcel, subjects[start:start + per_task])
                 for start in range(0, len(subjects), per_task)]
        return itertools.chain.from_iterable(self._in_order(tasks, ahead=len(tasks)))

    # -- the pool ------------------------------------------------------------------------------------

    def _parcel(self, rules: Rules) -> RulesParcel:
        parcel = self._parcels.get(rules.digest)
        if parcel is None:
            parcel = self._parcels[rules.digest] = RulesParcel(rules.digest, pickle.dumps(rules))
        return parcel

    def _started(self) -> ProcessPoolExecutor:
        """The pool, its workers started (from any thread: `listing` starts them early)."""
        with self._starting:
            if self._pool is None:
                import multiprocessing
                from concurrent.futures import ProcessPoolExecutor

                context = multiprocessing.get_context("forkserver")
                # The fork server imports the judging code once; each worker forked from it starts with it.
                context.set_forkserver_preload([__name__])
                self._pool = ProcessPoolExecutor(self.workers, mp_context=context, initializer=_start_worker)
                _widen_pipes(self._pool)
                for _ in range(self.workers):
                    self._pool.submit(os.getpid)  # a pool starts its processes with its first tasks
            return self._pool

    def _in_order(self, tasks: Iterable[tuple[Callable[..., T], TreeSource | None, RulesParcel | None, Any]],
                  ahead: int | None = None) -> Iterator[T]:
        """The answer of each of `tasks` (a worker function and its arguments), in order. The first `ahead` tasks (a
        few per worker by default) are handed out at once, and one more as each answer is taken, so that
        no worker waits while this process stores answers."""
        tasks = iter(tasks)
        with self._failing_clearly():
            pool = self._started()
            pending = deque(pool.submit(function, *arguments)
                            for function, *arguments in itertools.islice(tasks, ahead or AHEAD * self.workers))
        return self._answers(pool, pending, tasks)

    def _answers(self, pool: ProcessPoolExecutor, pending: deque[Future[T]],
                 tasks: Iterator[tuple[Callable[..., T], TreeSource | None, RulesParcel | None, Any]],
                 ) -> Iterator[T]:
        try:
            with self._failing_clearly():
                while pending:
                    yield pending.popleft().result()
                    for function, *arguments in itertools.islice(tasks, 1):
                        pending.append(pool.submit(function, *arguments))
        finally:
            for future in pending:
                future.cancel()

    @contextmanager
    def _failing_clearly(self) -> Iterator[None]:
        """Turn a dead worker into `JudgingError`, and let the next judgement start a new pool."""
        from concurrent.futures.process import BrokenProcessPool

        try:
            yield
        except BrokenProcessPool as exc:
            pool, self._pool = self._pool, None
            if pool is not None:
                pool.shutdown(wait=False, cancel_futures=True)
            raise JudgingError(
                "a process judging the catalogue stopped before it finished (killed, or out of memory); "
                "nothing was stored",
                hint="Run the command again; if it happens again, run it on one core (taskset -c 0 paved ...) "
                     "and report it to the platform team.") from exc

    def _start_in_background(self) -> None:
        threading.Thread(target=self._start_early, daemon=True).start()

    def _start_early(self) -> None:
        try:
            self._started()
        except Exception:
            return  # started again where the pool is used, which reports the failure


def task_bounds(count: int, workers: int, largest: int) -> Iterator[tuple[int, int]]:
    """Where each task starts and ends among `count` files: tasks of at most `largest` files, and from
    the last few per worker on, each a quarter of what is left per worker (guided self-scheduling), down
    to a tenth of `largest` or `SMALLEST_TASK`, whichever is fewer."""
    smallest = max(1, min(SMALLEST_TASK, largest // 10))
    start = 0
    while start < count:
        end = min(count, start + max(smallest, min(largest, (count - start) // (4 * workers))))
        yield start, end
        start = end


def _widen_pipes(pool: ProcessPoolExecutor) -> None:
    """Let the pipes that carry tasks and answers hold `PIPE_BYTES` (Linux), so that a large answer
    crosses in one write instead of waking both ends every 64 KB. The executor keeps its queues to itself
    (no public way to reach them): where they are not found, or the system refuses, they stay as they are."""
    try:
        import fcntl
    except ImportError:  # not a POSIX system
        return
    size = getattr(fcntl, "F_SETPIPE_SZ", None)
    for queue in (getattr(pool, "_result_queue", None), getattr(pool, "_call_queue", None)):
        reader = getattr(queue, "_reader", None)
        if size is None or reader is None:
            continue
        try:
            fcntl.fcntl(reader.fileno(), size, PIPE_BYTES)
        except OSError:
            continue  # above the system's limit for pipes (/proc/sys/fs/pipe-max-size)


# -- in each worker ----------------------------------------------------------------------------------

_rules: dict[str, Rules] = {}
_gits: dict[str, GitTree] = {}


def _start_worker() -> None:
    _carry_errors_whole()
    gc.freeze()  # what the worker was started with is never garbage: keep the collector off it


def _carry_errors_whole() -> None:
    """Let Paved's errors cross back to the asking process with their attributes (`ObjectMismatchError`
    has keyword arguments, which pickling exceptions by their positional arguments would lose)."""
    found: list[type[PavedError]] = [PavedError]
    while found:
        kind = found.pop()
        copyreg.pickle(kind, _reduce_error)
        found += kind.__subclasses__()


def _reduce_error(error: PavedError) -> tuple[Any, ...]:
    return _rebuild_error, (type(error), error.args, dict(vars(error)))


def _rebuild_error(kind: type[PavedError], args: tuple[Any, ...], attributes: dict[str, Any]) -> PavedError:
    error = kind.__new__(kind)
    Exception.__init__(error, *args)
    vars(error).update(attributes)
    return error


def _rules_of(parcel: RulesParcel) -> Rules:
    rules = _rules.get(parcel.digest)
    if rules is None:
        _rules.clear()
        rules = _rules[parcel.digest] = pickle.loads(parcel.payload)
    return rules


def _reader(source: TreeSource) -> Callable[[Sequence[tuple[str, str]]], dict[str, bytes]]:
    """How this worker reads the files of `source` (path, blob id): by blob id from git (one
    `git cat-file` per repository, ended when the worker exits), or by path from the folder."""
    if source.commit is not None:
        git = _gits.get(source.root)
        if git is None:
            git = _gits[source.root] = GitTree(Path(source.root), source.commit)

        def from_git(files: Sequence[tuple[str, str]]) -> dict[str, bytes]:
            return dict(zip((path for path, _ in files), git.read_blobs([blob for _, blob in files]), strict=True))

        return from_git

    def from_folder(files: Sequence[tuple[str, str]]) -> dict[str, bytes]:
        found: dict[str, bytes] = {}
        for path, _ in files:
            try:
                found[path] = read_file(os.path.join(source.root, path))
            except (FileNotFoundError, IsADirectoryError, NotADirectoryError, ValueError):
                continue  # gone since it was listed: left out, as a folder's `read_many` does
        return found

    return from_folder


def _judge_files(source: TreeSource, parcel: RulesParcel, work: tuple[Sequence[tuple[str, str]], bool]) -> bytes:
    """The judged files of `work`, as marshal bytes of plain tuples: the asking process reads them back
    as fast as pickle would give them, and they are written here three times faster."""
    files, records = work
    with paused_collector():
        judged = judge_read(files, _reader(source), _rules_of(parcel), source.label, records)
        return marshal.dumps([tuple(one) for one in judged])


def _judge_subjects(source: TreeSource, parcel: RulesParcel,
                    subjects: Sequence[PolicySubject]) -> list[tuple[Record, ...]]:
    read = _reader(source)

    def documents(path: str, blob: str) -> list[Document]:
        return load(path, read([(path, blob)])[path]).documents

    with paused_collector():
        return judge_subjects(subjects, _rules_of(parcel), documents)

