"""What reconcile costs of GitHub's rate limit: requests per service, first and repeated, at 100 and 1,000 services.

Usage: python bench/reconcile_requests.py [--quick]

An App installation has 5,000 REST requests an hour, shared by reconcile, plans and applies. A catalogue of N
services (`generate.py`'s mix without databases: a team per ten services, a production environment for
every other service, an access grant for every fifth) is applied on the sandbox forge, which counts every
request against its caller's hourly budget and answers a conditional GET whose ETag still holds with a free
`304 Not Modified`, as GitHub does. Then reconcile runs as `paved serve` schedules it (`bot.web.jobs.
reconcile`: the App's repositories, which of them are platform repos, the catch-up apply and the drift check
of every resource), twice in one process: first with the process's store of GitHub's answers empty, as
after a start, then again with nothing changed in between. Each run's cost is what the sandbox counted
against the installation. The hourly limit is lifted while measuring, so the first run checks everything
instead of stopping at its reserve.

Target: a repeated reconcile of 1,000 services costs at most 10% of the hourly budget (500 requests).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from generate import PROJECT, requests

from bot.adapters.github import ETAGS
from bot.adapters.leases import ALWAYS_HELD
from bot.adapters.queue import Work
from bot.app_manifest import default_permissions
from bot.composition import context_for
from bot.handlers import Context
from bot.handlers.push import apply_default_branch
from bot.sandbox import Sandbox
from bot.settings import Secret, Settings
from bot.web.jobs import reconcile

REPO = "acme/platform"
HOURLY = 5000
UNLIMITED = 10**9


def catalogue(services: int) -> list[tuple[str, str]]:
    """(path, text) of `generate.py`'s requests for `services` services (whole teams of ten), without databases."""
    teams = max(services // 10, 1)
    return [(path, text) for path, text in requests(teams * 30)
            if "/databases/" not in path and int(path.split("team-")[1][:4]) < teams]


@dataclass
class ServicesOnForge:
    """acme's platform repo of `services` services on a sandbox forge, applied by Paved's App, which is
    installed on the whole organization; `caller` is the installation as the sandbox counts its requests."""

    forge: Sandbox
    settings: Settings
    caller: str
    services: int

    def used(self) -> int:
        """The requests the installation has spent in its current hour."""
        usage = self.forge.rate_limit(self.caller)
        return usage.used if usage is not None else 0

    def remaining(self) -> int:
        usage = self.forge.rate_limit(self.caller)
        return usage.remaining if usage is not None else HOURLY

    def context(self) -> Context:
        """A job's collaborators, built as every job builds them (a new client with a new token)."""
        return context_for(self.settings, REPO)

    def reconcile(self) -> int:
        """Run the scheduled reconcile once; the requests it cost the installation."""
        before = self.used()
        reconcile(Work(self.settings, "schedule", 1, lambda repo: nullcontext(ALWAYS_HELD),
                       lambda repo, numbers: nullcontext(ALWAYS_HELD)))
        return self.used() - before


@contextmanager
def services_on_forge(services: int, root: Path) -> Iterator[ServicesOnForge]:
    """The forge in `root` with acme's platform repo of `services` services, its catalogue applied.

    The services' repositories are made on the forge first, marked as Paved's and holding a first commit and
    what a golden path leaves that observing reads (CODEOWNERS, `.paved/scaffold.json`), as if Paved had
    scaffolded them (rendering a golden path per service would take most of the time);
    Paved's own apply then does the rest: teams and their people, owners' grants, branch protection,
    environments and access grants. The installation's hour starts afresh once it is done, at GitHub's
    5,000 requests, with the process's store of GitHub's answers empty.
    """
    seed = root / "seed"
    for name in ("schemas", "templates"):
        shutil.copytree(PROJECT / name, seed / name)
    files = catalogue(services)
    for path, text in files:
        (seed / path).parent.mkdir(parents=True, exist_ok=True)
        (seed / path).write_text(text, encoding="utf-8")
    teams = max(services // 10, 1)
    with Sandbox.start(root / "forge") as forge:
        forge.set_rate_limit(UNLIMITED)
        alice = forge.create_user("alice")
        people = [f"{who}-{n}" for n in range(teams) for who in ("alice", "bob", "carol")]
        for login in people:
            forge.create_user(login)
        forge.create_org("acme", owners=["alice"], members=people)
        forge.create_repo_from_folder("acme", "platform", seed, owner_token=alice.token)
        app = forge.create_app("acme", "paved", permissions=default_permissions(),
            webhook_url="http://127.0.0.1:9/webhooks/github", webhook_secret="x" * 32)
        installation = forge.install_app(app.id, "acme")
        forge.define_property("acme", "paved-managed", "true_false", values_editable_by="org_actors")
        platform_head = forge.branch_sha("acme", "platform", "main")
        for path, _ in files:
            if path.startswith("catalog/services/"):
                name = Path(path).stem
                team = path.split("/")[2]
                forge.create_repo("acme", name, private=True, description=f"The {name} service of team {team}.",
                                  auto_init=True, custom_properties={"paved-managed": "true"})
                # What a scaffolded repository holds that observing it reads: its CODEOWNERS and its record.
                forge.push_files("acme", name, "main", {
                    "CODEOWNERS": f"* @acme/{team}\n",
                    ".paved/scaffold.json": json.dumps({"version": 1, "template": "fastapi-service",
                                                        "commit": platform_head, "answers": {"name": name}})},
                    by="alice")
        settings = dataclasses.replace(
            Settings.from_env({"PAVED_DATA_DIR": str(root / "data")}), github_api_url=forge.api_url,
            github_app_id=str(app.id), github_private_key=Secret(app.private_key))
        ctx = context_for(settings, REPO)
        try:
            applied = apply_default_branch(ctx, REPO, ctx.providers)
        finally:
            ctx.store.close()
        failed = [r for r in (applied.record.results if applied.record else ()) if r.status == "failed"]
        if applied.status != "applied" or failed:
            raise RuntimeError(f"the catalogue of {services} services was not applied: {applied.status} {failed[:3]}")
        forge.set_rate_limit(HOURLY)
        forge.reset_rate_limits()
        ETAGS.clear()
        yield ServicesOnForge(forge, settings, f"installation:{installation.id}", services)


def measure(services: int, root: Path) -> dict[str, float]:
    with services_on_forge(services, root / f"services-{services}") as estate:
        estate.forge.set_rate_limit(UNLIMITED)  # the first reconcile checks everything, past its reserve
        first = estate.reconcile()
        repeated = estate.reconcile()
        kept = len(ETAGS), ETAGS.size
    return {"services": services, "first": first, "repeated": repeated, "first_per_service": first / services,
            "repeated_per_service": repeated / services, "answers_kept": kept[0], "answers_kept_bytes": kept[1]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="100 and 300 services instead of 100 and 1,000")
    args = parser.parse_args()
    large = 300 if args.quick else 1_000
    with tempfile.TemporaryDirectory(prefix="paved-reconcile-requests-") as scratch:
        figures = [measure(size, Path(scratch)) for size in (100, large)]
    out = Path(__file__).resolve().parent / "out"
    out.mkdir(exist_ok=True)
    (out / "reconcile_requests.json").write_text(json.dumps(figures, indent=2) + "\n")
    print("| services | first reconcile (nothing kept) | repeated, nothing changed | share of 5,000 an hour | "
          "answers kept |")
    print("| --- | --- | --- | --- | --- |")
    for f in figures:
        print(f"| {int(f['services']):,} | {int(f['first']):,} requests ({f['first_per_service']:.2f} a service) | "
              f"{int(f['repeated']):,} ({f['repeated_per_service']:.3f} a service) | "
              f"{f['first'] / HOURLY:.0%} first, {f['repeated'] / HOURLY:.1%} repeated | "
              f"{int(f['answers_kept']):,} ({f['answers_kept_bytes'] / 2**20:.1f} MiB) |")
    target = next(f for f in figures if f["services"] == large)["repeated"] <= HOURLY / 10
    name = f"a repeated reconcile of {large:,} services costs at most 10% of the hourly budget (500 requests)"
    print(f"{'PASS' if target else 'MISS'}  {name}")
    return 0 if target else 1


if __name__ == "__main__":
    sys.exit(main())
