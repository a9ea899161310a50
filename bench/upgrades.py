"""One golden-path change reaching 50 services: the apply that opens their 50 upgrade pull requests.

Usage: python bench/upgrades.py [--services N]

acme's platform repo on the sandbox forge holds one team and N services (50 by default) made from the
`worker` golden path, and Paved's first apply has scaffolded their repositories, as `paved serve` builds
its job (`bot.composition.context_for`: Paved's App, installed on the organization, with the GitHub
provider). Then a platform pull request changes the template's README and merges, and Paved's apply job
for the merge runs (`bot.handlers.push.apply_default_branch`): the plan finds the N followers, and each
gets its upgrade (its record read, the template rendered at the recorded commit and at the merge, git's
three-way merge, the branch pushed, the pull request opened and labelled).

Reported: the apply's time in all and per service, and the GitHub REST requests it cost Paved's App
installation (as the sandbox counts them against its hourly budget, 5,000 on GitHub), in all and per
service; then the same apply run again (`/paved retry` on an applied head would find it up to date, so
the retry is of the upgrades themselves), which must push nothing and open nothing.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.adapters.upgrade import TemplateHistory, Upgrading, upgrade_all
from bot.app_manifest import default_permissions
from bot.apply import ApplyRecord
from bot.composition import context_for
from bot.handlers import Context
from bot.handlers.push import apply_default_branch
from bot.plan import plan_requests
from bot.provider import Result, Target
from bot.rules import load_rules
from bot.sandbox import Sandbox
from bot.sandbox.recording import Exchange, watch
from bot.settings import Secret, Settings

PROJECT = Path(__file__).resolve().parent.parent
REPO = "acme/platform"
README = "templates/worker/{{cookiecutter.name}}/README.md"
UNLIMITED = 10**9

TEAM = """apiVersion: paved/v1
kind: Team
metadata:
  name: payments
  owner: payments
  description: Takes card payments.
spec:
  members: [alice, bob]
  maintainers: [alice]
  budget:
    monthly: 100000
"""

SERVICE = """apiVersion: paved/v1
kind: Service
metadata:
  name: {name}
  owner: payments
  description: The {name} worker.
spec:
  template:
    name: worker
{extra}  repository:
    visibility: private
  tier: experimental
  lifecycle: experimental
"""


def service(name: str, *, updates: str | None = None, pin: str | None = None) -> str:
    extra = (f"    updates: {updates}\n" if updates else "") + (f"    pin: \"{pin}\"\n" if pin else "")
    return SERVICE.format(name=name, extra=extra)


@dataclass
class Estate:
    """acme's platform repo of services made from the `worker` golden path, scaffolded by Paved's first
    apply; `caller` is Paved's App installation as the sandbox counts its requests."""

    forge: Sandbox
    settings: Settings
    caller: str
    names: list[str]

    def context(self) -> Context:
        """A job's collaborators, built as every job of `paved serve` builds them."""
        return context_for(self.settings, REPO)

    def used(self) -> int:
        usage = self.forge.rate_limit(self.caller)
        return usage.used if usage is not None else 0

    def apply(self) -> ApplyRecord:
        """Paved's apply job for the platform repo's head, as a push runs it; its record."""
        ctx = self.context()
        try:
            outcome = apply_default_branch(ctx, REPO, ctx.providers)
        finally:
            ctx.store.close()
        if outcome.record is None:
            raise RuntimeError(f"nothing was applied: {outcome.status} {outcome.reason}")
        return outcome.record

    def change_template(self, old: str = "## Run it", new: str = "## Deploy it\n\nPush to main.\n\n## Run it",
                        branch: str = "template") -> tuple[int, str]:
        """A platform pull request changing the worker golden path's README, merged: its number and commit."""
        text = self.forge.read_file("acme", "platform", README).decode()
        self.forge.push_files("acme", "platform", branch, {README: text.replace(old, new, 1)}, by="bob")
        number = self.forge.open_pull_request("acme", "platform", head=branch, by="bob",
                                              title="Workers say how to deploy",
                                              body="Every worker's README says how it is deployed.").number
        self.forge.approve("acme", "platform", number, by="alice")
        return number, self.forge.merge("acme", "platform", number, by="alice")

    def upgrade_again(self, head: str) -> list[Result]:
        """The upgrades of the last apply taken again, as a retry of that apply takes them."""
        ctx = self.context()
        try:
            ctx.mirror.fetch(REPO, ["main"])
            with ctx.mirror.tree(REPO, head) as tree:
                previous = ctx.mirror.tree(REPO, f"{head}^")
                planned = plan_requests(previous, tree, store=ctx.store, rules=load_rules(tree))
                previous.close()
                assert planned.rules is not None
                target = Target(organization="acme", platform_repo=REPO, tree=tree, revision=head)
                work = Upgrading(ctx.forge, ctx.mirror, TemplateHistory(ctx.forge, ctx.mirror, REPO))
                return upgrade_all(work, planned.plan.upgrades, planned.after, planned.rules.described, target, [])
        finally:
            ctx.store.close()


@contextmanager
def estate(count: int, root: Path, *, manual: int = 0, pinned: int = 0) -> Iterator[Estate]:
    """The forge in `root` with acme's platform repo of `count` services following the worker golden path
    (and `manual` more that opted out, `pinned` more pinned to the first commit), all scaffolded by Paved."""
    seed = root / "seed"
    for name in ("schemas", "templates"):
        shutil.copytree(PROJECT / name, seed / name)
    (seed / "catalog/teams").mkdir(parents=True)
    (seed / "catalog/teams/payments.yaml").write_text(TEAM, encoding="utf-8")
    names = [f"worker-{n:03d}" for n in range(count)]
    (seed / "catalog/services").mkdir(parents=True)
    for name in names:
        (seed / f"catalog/services/{name}.yaml").write_text(service(name), encoding="utf-8")
    for n in range(manual):
        (seed / f"catalog/services/manual-{n:03d}.yaml").write_text(service(f"manual-{n:03d}", updates="manual"))
    with Sandbox.start(root / "forge") as forge:
        forge.set_rate_limit(UNLIMITED)
        alice = forge.create_user("alice")
        forge.create_user("bob")
        forge.create_org("acme", owners=["alice"], members=["bob"])
        forge.create_repo_from_folder("acme", "platform", seed, owner_token=alice.token)
        forge.add_collaborator("acme", "platform", "bob", "write")
        first = forge.branch_sha("acme", "platform", "main")
        assert first is not None
        if pinned:
            forge.push_files("acme", "platform", "main", {
                f"catalog/services/pinned-{n:03d}.yaml": service(f"pinned-{n:03d}", pin=first) for n in range(pinned)},
                by="alice")
        app = forge.create_app("acme", "paved", permissions=default_permissions(),
            webhook_url="http://127.0.0.1:9/webhooks/github", webhook_secret="x" * 32)
        installation = forge.install_app(app.id, "acme")
        settings = dataclasses.replace(
            Settings.from_env({"PAVED_DATA_DIR": str(root / "data")}), github_api_url=forge.api_url,
            github_app_id=str(app.id), github_private_key=Secret(app.private_key))
        made = Estate(forge, settings, f"installation:{installation.id}", names)
        record = made.apply()
        failed = [r for r in record.results if r.status == "failed"]
        if not record.succeeded or failed:
            raise RuntimeError(f"the services were not scaffolded: {record.reason} {failed[:3]}")
        yield made


def upgrades_of(record: ApplyRecord) -> list[Result]:
    return [r for r in record.results if "upgrade" in r.message]


def measure(count: int, root: Path) -> dict[str, float]:
    with estate(count, root) as made:
        made.change_template()
        requests: list[Exchange] = []
        stop = watch(requests.append)
        used, started = made.used(), time.perf_counter()
        try:
            record = made.apply()
        finally:
            stop()
        seconds, spent = time.perf_counter() - started, made.used() - used
        opened = [r for r in upgrades_of(record) if "opened" in r.message]
        if len(opened) != count:
            raise SystemExit(f"{len(opened)} of {count} upgrade pull requests were opened: "
                             f"{[r.message for r in record.results][:3]}")
        writes = sum(1 for e in requests if e.method != "GET")
        used, started = made.used(), time.perf_counter()
        again = made.upgrade_again(record.revision)
        again_seconds, again_spent = time.perf_counter() - started, made.used() - used
        if any(r.status != "unchanged" for r in again):
            raise SystemExit(f"upgrading again changed something: {[r.message for r in again][:3]}")
    return {"services": count, "seconds": seconds, "requests": spent, "writes": writes,
            "again_seconds": again_seconds, "again_requests": again_spent}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--services", type=int, default=50, help="how many services follow the template")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="paved-upgrades-") as scratch:
        f = measure(args.services, Path(scratch))
    out = Path(__file__).resolve().parent / "out"
    out.mkdir(exist_ok=True)
    (out / "upgrades.json").write_text(json.dumps(f, indent=2) + "\n")
    n = int(f["services"])
    print("| services | apply with their upgrades | per service | GitHub requests (of which writes) | per service "
          "| upgrading again | its requests |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    print(f"| {n} | {f['seconds']:.1f} s | {f['seconds'] / n:.2f} s | {int(f['requests'])} ({int(f['writes'])}) | "
          f"{f['requests'] / n:.1f} | {f['again_seconds']:.1f} s | {int(f['again_requests'])} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

