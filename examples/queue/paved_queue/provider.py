"""The `Queue` provider: Redis streams with consumer groups, made, kept and deleted only when they are Paved's.

`Queue/NAME` is, on the Redis whose URL the variable `providers.queue.connectionEnv` of `paved.yaml` names:
- the stream `<keyPrefix>NAME`, with one consumer group per entry of `spec.consumerGroups`;
- Paved's mark, the hash `<keyPrefix>paved:queue:NAME`: the platform repo that made the queue, its owner
  and service, the groups Paved created, and the limits (`maxLength`, `retentionHours`) its producers
  trim to as they write (`XADD … MAXLEN ~`). Paved trims to them itself when it applies a change.

Why a hash beside the stream, not the stream's first entry: a queue's own trimming (`XTRIM`, `XADD …
MAXLEN ~`, Paved's included) removes its oldest entries, so a mark kept in the stream would disappear
with them, and every reader would have to skip it. The hash is written in the same MULTI/EXEC as the
`XGROUP CREATE … MKSTREAM` that makes the stream, so a queue of Paved's never exists unmarked.

Only what carries a mark of this platform repo is Paved's: a stream named like a request without the
mark, a key of another type, or a mark another platform repo's Paved wrote, is left alone, and the plan
says so. An operator hands a stream over by writing the mark by hand (`HSET <keyPrefix>paved:queue:NAME
platformRepo acme/platform`). Groups that readers created themselves are never deleted.

Every write runs in a transaction that WATCHes the stream and its mark and checks again that they are
Paved's, so a stream created or taken between the plan and the write is not touched. `observe` only
reads, and a queue that is as the request asks plans no step: applying twice does nothing the second
time. Names are checked as DNS labels (and the key prefix against the settings' pattern) before any
Redis call, though the kind's schema has checked them already: a request is never trusted.
"""

from __future__ import annotations

import json
import logging
import re
import urllib.parse
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import cast

import redis
from redis.client import Pipeline

from bot.errors import PavedError
from bot.model import Resource
from bot.provider import Result, Step, Target, Verb
from paved_queue import KINDS, NAME

log = logging.getLogger(__name__)

_NAME = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
_PREFIX = re.compile(r"^([a-z0-9][a-z0-9._-]{0,30}:)?$")
MARK = "paved:queue:"
# A group added to a queue reads what is written after it: Paved never replays entries that a reader of
# another group (or an earlier incarnation of this one) may have handled. `XGROUP SETID` moves it back.
NEW_ENTRIES_ONLY = "$"
TIMEOUT_SECONDS = 10


class QueueRefused(PavedError):
    """Raised when a queue cannot be read or a step cannot be taken; the message says why, for the plan,
    the apply's result and the drift issue."""


@dataclass(frozen=True, slots=True)
class Keys:
    """Where one queue lives in Redis: its stream and Paved's mark beside it."""

    name: str
    stream: str
    mark: str

    @classmethod
    def of(cls, name: str, prefix: str) -> Keys:
        """The keys of queue `name`; refuses a name or prefix that is not what the schemas allow."""
        if not isinstance(name, str) or not _NAME.match(name):
            raise QueueRefused(f"{name!r} is not a valid queue name (a DNS label); Redis was not called")
        if not isinstance(prefix, str) or not _PREFIX.match(prefix):
            raise QueueRefused(f"paved.yaml's providers.queue.keyPrefix {prefix!r} is not a valid key prefix; "
                               "Redis was not called")
        return cls(name, f"{prefix}{name}", f"{prefix}{MARK}{name}")


@dataclass(frozen=True, slots=True)
class Wanted:
    """What a request asks of its queue, checked: the groups and limits, and what the mark records."""

    groups: tuple[str, ...]
    max_length: int
    retention_hours: int
    owner: str
    service: str

    @classmethod
    def of(cls, resource: Resource) -> Wanted:
        spec = resource.spec
        groups = spec.get("consumerGroups")
        if not isinstance(groups, list) or not groups:
            raise QueueRefused(f"{resource.identity} names no consumer group; Redis was not called")
        for group in groups:
            if not isinstance(group, str) or not _NAME.match(group):
                raise QueueRefused(f"{group!r} is not a valid consumer group name (a DNS label); Redis was not "
                                   "called")
        limits = [spec.get("maxLength"), spec.get("retentionHours")]
        if not all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in limits):
            raise QueueRefused(f"{resource.identity} needs a positive maxLength and retentionHours; Redis was "
                               "not called")
        return cls(tuple(dict.fromkeys(groups)), int(spec["maxLength"]), int(spec["retentionHours"]),
                   resource.owner, str(spec.get("service") or ""))


@dataclass(frozen=True)
class _Action:
    """One step and the write that takes it."""

    step: Step
    run: Callable[[redis.Redis], None]
    stops: bool = False  # a refusal: nothing after it is taken


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def _recorded_groups(mark: Mapping[str, str]) -> list[str]:
    try:
        groups = json.loads(mark.get("consumerGroups") or "[]")
    except ValueError:
        return []
    return [g for g in groups if isinstance(g, str)] if isinstance(groups, list) else []


def _recorded_int(mark: Mapping[str, str], field: str) -> int | None:
    try:
        return int(mark[field])
    except (KeyError, ValueError):
        return None


@dataclass(frozen=True, slots=True)
class Stream:
    """A Redis stream as Paved reads it: how many entries it holds, and its consumer groups."""

    length: int
    groups: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ObservedQueue:
    """What Paved observes of a queue: the type of its key (None while missing), the stream when the key
    holds one, and Paved's mark (the hash it writes beside the stream; None while missing)."""

    type: str | None
    stream: Stream | None
    mark: Mapping[str, str] | None


class QueueProvider:
    """`Provider` for `Queue`. `server(variable)` is the URL an environment variable of Paved's process
    holds (None when unset), as Paved's settings read it."""

    kinds: tuple[str, ...] = KINDS

    def __init__(self, server: Callable[[str], str | None]) -> None:
        self.server = server
        self._clients: dict[str, redis.Redis] = {}
        self._secret_words: set[str] = set()

    # -- where queues live ---------------------------------------------------------------------------------

    @staticmethod
    def _settings(target: Target) -> tuple[str, str]:
        settings = target.config.settings_of(NAME)
        variable = settings.get("connectionEnv")
        if not variable:
            raise QueueRefused(f"paved.yaml names no Redis for queues: add providers.{NAME}.connectionEnv, the "
                               "environment variable holding the Redis URL where Paved runs")
        return str(variable), str(settings.get("keyPrefix") or "")

    def _where(self, target: Target) -> str:
        variable, _ = self._settings(target)
        return f"the Redis in ${variable}"

    def _keys(self, resource: Resource, target: Target) -> Keys:
        _, prefix = self._settings(target)
        return Keys.of(resource.name, prefix)

    def _client(self, target: Target) -> redis.Redis:
        variable, _ = self._settings(target)
        if variable in self._clients:
            return self._clients[variable]
        url = self.server(variable)
        if not url:
            raise QueueRefused(f"paved.yaml puts queues on the Redis in ${variable}, but {variable} is not set "
                               "where Paved runs")
        self._secret_words.add(url)
        password = urllib.parse.urlsplit(url).password
        if password:
            self._secret_words.add(urllib.parse.unquote(password))
        try:
            client = redis.Redis.from_url(url, decode_responses=True, socket_connect_timeout=TIMEOUT_SECONDS,
                                          socket_timeout=TIMEOUT_SECONDS)
        except ValueError as exc:
            raise QueueRefused(f"${variable} does not hold a Redis URL: {self._scrub(exc)}") from None
        self._clients[variable] = client
        return client

    def close(self) -> None:
        """Let go of every connection: a job may last long after its last queue."""
        for client in self._clients.values():
            client.close()
        self._clients.clear()

    def _scrub(self, text: object) -> str:
        """`text` on one line, with no URL or password of a Redis Paved was given."""
        line = _one_line(text)
        for word in sorted(self._secret_words, key=len, reverse=True):
            line = line.replace(word, "***")
        return re.sub(r"(rediss?://[^:/@\s]*:)[^@\s]+@", r"\1***@", line)[:500]

    # -- the port ------------------------------------------------------------------------------------------

    def observe(self, resource: Resource, target: Target) -> ObservedQueue | None:
        """The stream (its length and groups) and Paved's mark; None when neither exists."""
        keys = self._keys(resource, target)
        client = self._client(target)
        try:
            return self._read(client, keys)
        except redis.RedisError as exc:
            raise QueueRefused(f"{self._where(target)} could not be read: {self._scrub(exc)}") from None

    def plan(self, desired: Resource | None, actual: ObservedQueue | None, target: Target,
             previous: Resource | None = None) -> list[Step]:
        try:
            return [action.step for action in self._actions(desired, actual, target, previous)]
        finally:
            self.close()

    def apply(self, desired: Resource | None, target: Target, previous: Resource | None = None) -> Result:
        subject = desired or previous
        if subject is None:
            raise ValueError("apply needs the request, or the previous one to delete")
        taken: list[Step] = []
        current: Step | None = None
        outputs: dict[str, str] = {}
        try:
            keys = self._keys(subject, target)
            if desired is not None:
                Wanted.of(desired)  # a request's names are checked before Paved connects anywhere
            outputs = {"stream": keys.stream, "redis": self._where(target).removeprefix("the ")}
            client = self._client(target)
            for action in self._actions(desired, self.observe(subject, target), target, previous):
                current = action.step
                log.info("%s: %s", subject.identity, action.step.description)
                action.run(client)
                taken.append(action.step)
        except (PavedError, redis.RedisError) as exc:
            doing = f" to {current.description}" if current is not None else ""
            message = exc.message if isinstance(exc, PavedError) else f"Redis refused{doing}: {self._scrub(exc)}"
            log.warning("%s: %s", subject.identity, message)
            return Result(subject.identity, "failed", message, tuple(taken), outputs)
        finally:
            self.close()
        return Result(subject.identity, "applied" if taken else "unchanged", "", tuple(taken), outputs)

    # -- reading -------------------------------------------------------------------------------------------

    @staticmethod
    def _read(client: redis.Redis, keys: Keys) -> ObservedQueue | None:
        key_type = client.type(keys.stream)
        mark = client.hgetall(keys.mark)
        if key_type == "none" and not mark:
            return None
        stream = None
        if key_type == "stream":
            info = client.xinfo_stream(keys.stream)
            groups = tuple(str(g["name"]) for g in client.xinfo_groups(keys.stream))
            stream = Stream(int(info["length"]), groups)
        # The client decodes Redis's answers (decode_responses=True): keys and values are str.
        return ObservedQueue(None if key_type == "none" else cast(str, key_type), stream,
                             cast(dict[str, str], mark) or None)

    # -- what to do ----------------------------------------------------------------------------------------

    def _refusal(self, name: str, keys: Keys, actual: ObservedQueue | None, target: Target) -> str | None:
        """Why Paved leaves queue `name` alone, or None when it is Paved's (or does not exist)."""
        if actual is None:
            return None
        where = self._where(target)
        mark = actual.mark
        if actual.type not in (None, "stream"):
            return (f"Paved will not touch queue {name} on {where}: the key {keys.stream} holds a "
                    f"{actual.type}, not a stream Paved made")
        if not mark:
            return (f"Paved will not touch queue {name} on {where}: the stream {keys.stream} exists and Paved "
                    f"did not create it (no hash {keys.mark})")
        owner = mark.get("platformRepo")
        if owner != target.platform_repo:
            return (f"Paved will not touch queue {name} on {where}: its mark {keys.mark} says it belongs to "
                    f"{owner or 'no platform repo'}, not {target.platform_repo}")
        return None

    def _actions(self, desired: Resource | None, actual: ObservedQueue | None, target: Target,
                 previous: Resource | None) -> list[_Action]:
        subject = desired or previous
        if subject is None:
            return []
        keys = self._keys(subject, target)
        refused = self._refusal(subject.name, keys, actual, target)
        if refused is not None:
            return [self._stop(Step(subject.identity, "delete" if desired is None else "update", refused), refused)]
        if desired is None:
            return self._removal(subject, keys, actual, target) if actual is not None else []
        wanted = Wanted.of(desired)
        stream = actual.stream if actual else None
        mark: Mapping[str, str] = (actual.mark if actual else None) or {}
        if stream is None:
            return [self._creation(desired, keys, wanted, target)]
        return self._updates(desired, keys, wanted, stream, mark, target)

    def _step(self, resource: Resource, verb: Verb, text: str, target: Target, destructive: bool = False) -> Step:
        return Step(resource.identity, verb, f"{self._where(target)}: {text}", destructive)

    @staticmethod
    def _stop(step: Step, message: str) -> _Action:
        def refuse(client: redis.Redis) -> None:
            raise QueueRefused(message)
        return _Action(step, refuse, stops=True)

    def _memory(self, wanted: Wanted, groups: Sequence[str], target: Target) -> dict[str, str]:
        """The mark's fields: what Paved must remember and producers read."""
        return {"platformRepo": target.platform_repo, "owner": wanted.owner, "service": wanted.service,
                "consumerGroups": json.dumps(sorted(groups)), "maxLength": str(wanted.max_length),
                "retentionHours": str(wanted.retention_hours)}

    def _creation(self, desired: Resource, keys: Keys, wanted: Wanted, target: Target) -> _Action:
        memory = self._memory(wanted, wanted.groups, target)

        def create(client: redis.Redis) -> None:
            with self._guarded(client, keys, target, creating=True) as pipe:
                for i, group in enumerate(wanted.groups):
                    pipe.xgroup_create(keys.stream, group, id=NEW_ENTRIES_ONLY, mkstream=i == 0)
                pipe.delete(keys.mark)
                pipe.hset(keys.mark, mapping=memory)

        groups = ", ".join(wanted.groups)
        text = (f"create the stream {keys.stream} with the consumer group{'s' if len(wanted.groups) > 1 else ''} "
                f"{groups} (XGROUP CREATE … MKSTREAM), keeping at most {wanted.max_length} entries for "
                f"{wanted.retention_hours} hours, marked as Paved's in {keys.mark}")
        return _Action(self._step(desired, "create", text, target), create)

    def _updates(self, desired: Resource, keys: Keys, wanted: Wanted, stream: Stream, mark: Mapping[str, str],
                 target: Target) -> list[_Action]:
        present = list(stream.groups)
        made = _recorded_groups(mark)
        found: list[_Action] = []
        for group in wanted.groups:
            if group not in present:
                found.append(self._group_creation(desired, keys, group, target))
        for group in made:
            if group not in wanted.groups and group in present:
                found.append(self._group_removal(desired, keys, group, target))
        # Paved owns the groups it made and still keeps, and those it made now; a reader's own stay its own.
        kept = [g for g in made if g in wanted.groups] + [g for g in wanted.groups if g not in present]
        old_length, old_hours = _recorded_int(mark, "maxLength"), _recorded_int(mark, "retentionHours")
        if (old_length, old_hours) != (wanted.max_length, wanted.retention_hours):
            stricter = (old_length is None or wanted.max_length < old_length
                        or old_hours is None or wanted.retention_hours < old_hours)
            found.append(self._trim(desired, keys, wanted, stream.length, stricter, target))
        memory = self._memory(wanted, kept, target)
        if found or memory != {k: mark.get(k) for k in memory}:
            found.append(self._remember(desired, keys, memory, target))
        return found

    def _group_creation(self, desired: Resource, keys: Keys, group: str, target: Target) -> _Action:
        def create(client: redis.Redis) -> None:
            with self._guarded(client, keys, target) as pipe:
                pipe.xgroup_create(keys.stream, group, id=NEW_ENTRIES_ONLY)

        return _Action(self._step(desired, "update", f"create the consumer group {group} on the stream {keys.stream}, "
                                  "reading the entries added from now on", target), create)

    def _group_removal(self, desired: Resource, keys: Keys, group: str, target: Target) -> _Action:
        def destroy(client: redis.Redis) -> None:
            with self._guarded(client, keys, target) as pipe:
                pipe.xgroup_destroy(keys.stream, group)

        return _Action(self._step(desired, "update", f"delete the consumer group {group} from the stream "
                                  f"{keys.stream} (its record of pending entries goes with it)", target, True), destroy)

    def _trim(self, desired: Resource, keys: Keys, wanted: Wanted, length: int, stricter: bool,
              target: Target) -> _Action:
        def trim(client: redis.Redis) -> None:
            seconds, micros = client.time()  # the server's clock, which stamped the entries' ids
            oldest = int(seconds) * 1000 + int(micros) // 1000 - wanted.retention_hours * 3_600_000
            with self._guarded(client, keys, target) as pipe:
                pipe.xtrim(keys.stream, maxlen=wanted.max_length, approximate=False)
                pipe.xtrim(keys.stream, minid=f"{max(oldest, 0)}-0", approximate=False)

        text = (f"trim the stream {keys.stream} ({length} entries now) to at most {wanted.max_length} entries no "
                f"older than {wanted.retention_hours} hours (XTRIM)")
        return _Action(self._step(desired, "update", text, target, stricter and length > 0), trim)

    def _remember(self, desired: Resource, keys: Keys, memory: dict[str, str], target: Target) -> _Action:
        def write(client: redis.Redis) -> None:
            with self._guarded(client, keys, target) as pipe:
                pipe.delete(keys.mark)
                pipe.hset(keys.mark, mapping=memory)

        text = (f"record in {keys.mark}: owner {memory['owner']}, service {memory['service']}, at most "
                f"{memory['maxLength']} entries for {memory['retentionHours']} hours")
        return _Action(self._step(desired, "update", text, target), write)

    def _removal(self, previous: Resource, keys: Keys, actual: ObservedQueue, target: Target) -> list[_Action]:
        stream = actual.stream

        def delete(client: redis.Redis) -> None:
            with self._guarded(client, keys, target) as pipe:
                pipe.delete(keys.stream, keys.mark)

        if stream is None:
            text = f"delete Paved's mark {keys.mark} (the stream {keys.stream} is gone already)"
            return [_Action(self._step(previous, "delete", text, target), delete)]
        groups = ", ".join(stream.groups) or "none"
        text = (f"delete the stream {keys.stream} with its {stream.length} entries and consumer groups "
                f"({groups}), and Paved's mark {keys.mark}")
        return [_Action(self._step(previous, "delete", text, target, True), delete)]

    # -- writing -------------------------------------------------------------------------------------------

    @contextmanager
    def _guarded(self, client: redis.Redis, keys: Keys, target: Target, *,
                 creating: bool = False) -> Iterator[Pipeline]:
        """A transaction whose commands run only if, when it is sent, the queue is still Paved's (or, when
        `creating`, still has no stream and no other mark): the stream and the mark are WATCHed, so a hand
        that changes either in between makes Redis run none of them."""
        with client.pipeline() as pipe:
            try:
                pipe.watch(keys.stream, keys.mark)
                now = self._read(pipe, keys)  # type: ignore[arg-type]  # a watching pipeline answers at once
                if creating and now is not None and now.type is not None:
                    raise QueueRefused(f"the stream {keys.stream} appeared while Paved applied; nothing was "
                                       "changed, and the next apply looks again")
                if not creating and now is None:
                    raise QueueRefused(f"the stream {keys.stream} and its mark disappeared while Paved applied; "
                                       "the next apply looks again")
                refused = self._refusal(keys.name, keys, now, target)
                if refused is not None:
                    raise QueueRefused(refused)
                pipe.multi()
                yield pipe
                pipe.execute()
            except redis.WatchError:
                raise QueueRefused(f"the queue {keys.name} changed while Paved applied it; nothing more was changed, "
                                   "and the next apply looks again") from None
