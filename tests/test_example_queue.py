"""A new kind is one schema and one provider package: the `Queue` of `examples/queue/`, end to end.

The package is installed with pip into a folder of its own (never into Paved's environment), and that
folder is put on Paved's path, as installing it next to Paved does: Paved finds its provider through the
entry point `paved.providers`, with no line of Paved naming queues. The platform repo on the sandbox forge
holds the bundled catalogue plus what the package's README says to copy (the kind's schema, its policy
with its cases, a price and `providers.queue` in `paved.yaml`). Queues live on this machine's Redis
(`PAVED_TEST_REDIS_URL`), under a key prefix of each test's own that is removed afterwards.

Only the queue provider is built into these jobs: the built-in kinds' providers are tested on their own
(tests/test_drift.py), and the bundled catalogue's teams and services are skipped ("no provider makes …").
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from github import Auth, Github

from bot.composition import context_for
from bot.handlers import Context
from bot.handlers.drift import check_drift
from bot.handlers.pull_request import plan_pull_request
from bot.handlers.push import ApplyOutcome, apply_default_branch
from bot.providers import installed
from bot.render.markdown import MARKER
from bot.sandbox import Sandbox
from bot.settings import Secret, Settings
from bot.web.catalogue import PlatformSource, catalogue_router
from tests.conftest import PROJECT, missing

EXAMPLE = PROJECT / "examples" / "queue"
REDIS_URL = os.environ.get("PAVED_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
VARIABLE = "PAVED_QUEUE_REDIS_URL"
REPO = "acme/platform"
QUEUE_FILE = "catalog/queues/payments-accepted.yaml"

QUEUE = """\
apiVersion: paved/v1
kind: Queue
metadata:
  name: payments-accepted
  owner: payments
  description: Card payments the API accepted, for the ledger.
spec:
  service: payments-api
  consumerGroups: [ledger]
  retentionHours: {hours}
  maxLength: 100000
"""


# -- the package, installed as pip installs it ----------------------------------------------------------------

@pytest.fixture(scope="module")
def queue_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """examples/queue installed by pip into a folder of its own (offline: it needs no build dependency)."""
    target = tmp_path_factory.mktemp("queue-package")
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-input", "--no-index",
                           "--no-deps", "--target", str(target), str(EXAMPLE)],
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    return target


@pytest.fixture
def queue_plugin(queue_package: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The installed package on Paved's path; Paved's plugins are looked for again, with and after it."""
    monkeypatch.syspath_prepend(str(queue_package))
    installed.cache_clear()
    yield queue_package
    installed.cache_clear()
    for module in [m for m in sys.modules if m == "paved_queue" or m.startswith("paved_queue.")]:
        sys.modules.pop(module)


@pytest.fixture
def redis_client() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(REDIS_URL, decode_responses=True, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        missing(f"Redis is not reachable at {REDIS_URL} ({exc})",
                "Start one with `redis-server --daemonize yes` or set PAVED_TEST_REDIS_URL")
    yield client
    client.close()


@pytest.fixture
def prefix(redis_client: redis.Redis) -> Iterator[str]:
    """The key prefix paved.yaml gives queues in this test; every key under it is deleted afterwards."""
    mine = f"paved-test-{uuid.uuid4().hex[:12]}:"
    yield mine
    for key in redis_client.scan_iter(match=f"{mine}*"):
        redis_client.delete(key)


# -- acme's platform repo with the Queue kind, on the sandbox forge ----------------------------------------

@dataclass
class Platform:
    """acme's platform repo with the Queue kind, Paved's App on it, and the Redis its queues live on."""

    forge: Sandbox
    settings: Settings
    ctx: Context
    alice: Github
    redis: redis.Redis
    prefix: str

    def propose(self, text: str, branch: str) -> int:
        """bob's pull request writing the queue request `text`."""
        self.forge.push_files("acme", "platform", branch, {QUEUE_FILE: text}, by="bob")
        return self.forge.open_pull_request("acme", "platform", head=branch, title="A queue for payments",
                                            by="bob").number

    def plan_comment(self, number: int) -> str:
        [comment] = [c.body for c in self.forge.comments("acme", "platform", number) if c.body.startswith(MARKER)]
        return comment

    def merge_and_apply(self, number: int) -> ApplyOutcome:
        self.forge.merge("acme", "platform", number, by="alice")
        return apply_default_branch(self.ctx, REPO, self.ctx.providers)

    def drift_issues(self) -> list[Any]:
        return list(self.alice.get_repo(REPO).get_issues(state="open", labels=["paved:drift"]))

    @property
    def stream(self) -> str:
        return f"{self.prefix}payments-accepted"

    @property
    def mark(self) -> str:
        return f"{self.prefix}paved:queue:payments-accepted"


def seed(folder: Path, prefix: str) -> Path:
    """The bundled catalogue and rules, plus what examples/queue/README.md says to copy into them."""
    for name in ("catalog", "schemas", "templates"):
        shutil.copytree(PROJECT / name, folder / name)
    shutil.copytree(EXAMPLE / "schemas", folder / "schemas", dirs_exist_ok=True)
    with (folder / "schemas" / "prices.yaml").open("a", encoding="utf-8") as prices:
        prices.write("  Queue:\n    monthly: 4\n")
    (folder / "paved.yaml").write_text(f"providers:\n  queue:\n    connectionEnv: {VARIABLE}\n"
                                       f"    keyPrefix: '{prefix}'\n", encoding="utf-8")
    return folder


@pytest.fixture
def platform(tmp_path: Path, queue_plugin: Path, redis_client: redis.Redis, prefix: str) -> Iterator[Platform]:
    with Sandbox.start(tmp_path / "forge") as forge:
        alice = forge.create_user("alice")
        forge.create_user("bob")
        forge.create_org("acme", owners=["alice"], members=["bob"])
        forge.create_repo_from_folder("acme", "platform", seed(tmp_path / "seed", prefix), owner_token=alice.token)
        forge.add_collaborator("acme", "platform", "bob", "write")
        app = forge.create_app("acme", "paved", permissions={
            "checks": "write", "contents": "write", "issues": "write", "pull_requests": "write",
            "metadata": "read"}, webhook_url="http://127.0.0.1:9/webhooks/github", webhook_secret="x" * 32)
        forge.install_app(app.id, "acme")
        # The Redis URL reaches the provider as an operator gives it: in the variable paved.yaml names.
        settings = dataclasses.replace(
            Settings.from_env({"PAVED_DATA_DIR": str(tmp_path / "data"), VARIABLE: REDIS_URL}),
            github_api_url=forge.api_url, github_app_id=str(app.id), github_private_key=Secret(app.private_key),
            catalogue_repo=REPO)
        ctx = context_for(settings, REPO)
        ctx = dataclasses.replace(ctx, providers=tuple(p for p in ctx.providers if "Queue" in p.kinds))
        person = Github(base_url=forge.api_url, auth=Auth.Token(alice.token), retry=None,
                        seconds_between_requests=None, seconds_between_writes=None)
        try:
            yield Platform(forge, settings, ctx, person, redis_client, prefix)
        finally:
            ctx.store.close()


# -- the package ----------------------------------------------------------------------------------------------

def test_pip_installs_the_package_with_its_entry_point_and_its_own_tests_pass_on_the_installed_copy(
        queue_package: Path, tmp_path: Path) -> None:
    [info] = queue_package.glob("paved_queue-*.dist-info")
    assert (info / "entry_points.txt").read_text() == "[paved.providers]\nqueue = paved_queue:plugin\n"
    for part in ("tests", "schemas"):  # away from the source, which would shadow the installed copy
        shutil.copytree(EXAMPLE / part, tmp_path / part)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(queue_package), str(PROJECT)])}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert " passed" in done.stdout and " skipped" not in done.stdout


def test_paved_finds_the_queue_provider_through_its_entry_point(platform: Platform, queue_plugin: Path) -> None:
    found = {plugin.name: plugin.kinds for plugin in installed()}
    assert found["queue"] == ("Queue",)
    [provider] = platform.ctx.providers
    assert Path(sys.modules[type(provider).__module__].__file__ or "").is_relative_to(queue_plugin)


# -- a pull request, its plan and its apply -------------------------------------------------------------------

def test_a_pull_request_adding_a_queue_is_planned_with_the_steps_paved_will_take(platform: Platform) -> None:
    number = platform.propose(QUEUE.format(hours=72), "queue")
    outcome = plan_pull_request(platform.ctx, REPO, number)
    assert outcome.plan is not None and not outcome.plan.errors
    comment = platform.plan_comment(number)
    assert "Queue/payments-accepted" in comment
    assert (f"create the stream {platform.stream} with the consumer group ledger (XGROUP CREATE … MKSTREAM), "
            f"keeping at most 100000 entries for 72 hours, marked as Paved's in {platform.mark}") in comment
    assert platform.redis.exists(platform.stream, platform.mark) == 0  # a plan only reads


def test_a_queue_that_breaks_the_copied_policy_fails_the_check(platform: Platform) -> None:
    number = platform.propose(QUEUE.format(hours=6), "short-lived")
    outcome = plan_pull_request(platform.ctx, REPO, number)
    assert outcome.conclusion == "failure"
    assert outcome.plan is not None
    assert [f.rule for f in outcome.plan.errors] == ["production-queues-keep-a-day"]


def test_a_merged_queue_is_made_on_redis_with_paveds_mark_and_listed_by_the_catalogue(platform: Platform) -> None:
    applied = platform.merge_and_apply(platform.propose(QUEUE.format(hours=72), "queue"))
    assert applied.record is not None
    [queue] = [r for r in applied.record.results if r.resource == "Queue/payments-accepted"]
    assert (queue.status, queue.outputs["stream"]) == ("applied", platform.stream)
    assert [g["name"] for g in platform.redis.xinfo_groups(platform.stream)] == ["ledger"]
    assert platform.redis.hget(platform.mark, "platformRepo") == REPO
    app = FastAPI()
    app.include_router(catalogue_router(PlatformSource.from_settings(platform.settings)))
    with TestClient(app) as client:
        page = client.get("/resources/Queue/payments-accepted")
        listed = client.get("/?kind=Queue")
    assert page.status_code == 200, page.text
    assert "Card payments the API accepted, for the ledger." in page.text and "payments-api" in page.text
    assert listed.status_code == 200 and "/resources/Queue/payments-accepted" in listed.text


# -- drift --------------------------------------------------------------------------------------------------

def test_a_stream_deleted_by_hand_is_drift_reported_in_an_issue_naming_the_way_back(platform: Platform) -> None:
    platform.merge_and_apply(platform.propose(QUEUE.format(hours=72), "queue"))
    platform.redis.delete(platform.stream)
    report = check_drift(platform.ctx, REPO)
    assert [d.identity for d in report.drifts] == ["Queue/payments-accepted"]
    [issue] = platform.drift_issues()
    assert issue.title == "Queue/payments-accepted has drifted from the catalogue"
    assert "@acme/payments" in issue.body and f"create the stream {platform.stream}" in issue.body
    assert platform.redis.exists(platform.stream) == 0  # warn, the default, only reports


def test_a_queue_that_asks_to_heal_gets_its_consumer_group_back(platform: Platform) -> None:
    healing = QUEUE.format(hours=72) + "  drift: heal\n"
    platform.merge_and_apply(platform.propose(healing, "queue"))
    platform.redis.xgroup_destroy(platform.stream, "ledger")
    report = check_drift(platform.ctx, REPO)
    assert ([r.resource for r in report.healed], report.drifts) == (["Queue/payments-accepted"], ())
    assert [g["name"] for g in platform.redis.xinfo_groups(platform.stream)] == ["ledger"]
    assert platform.drift_issues() == []


# -- what is not Paved's ------------------------------------------------------------------------------------

def test_a_stream_named_like_the_request_without_paveds_mark_is_left_alone_and_the_plan_says_so(
        platform: Platform) -> None:
    platform.redis.xadd(platform.stream, {"made": "by hand"})
    number = platform.propose(QUEUE.format(hours=72), "queue")
    plan_pull_request(platform.ctx, REPO, number)
    refusal = (f"Paved will not touch queue payments-accepted on the Redis in ${VARIABLE}: the stream "
               f"{platform.stream} exists and Paved did not create it (no hash {platform.mark})")
    assert refusal in platform.plan_comment(number)
    applied = platform.merge_and_apply(number)
    assert applied.record is not None
    [queue] = [r for r in applied.record.results if r.resource == "Queue/payments-accepted"]
    assert (queue.status, queue.message) == ("failed", refusal)
    assert platform.redis.xlen(platform.stream) == 1 and platform.redis.xinfo_groups(platform.stream) == []
    assert platform.redis.exists(platform.mark) == 0
