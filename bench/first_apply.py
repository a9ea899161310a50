"""The first apply of a whole catalogue: 100 and 10,000 resources merged at once, recorded and reported.

Usage: python bench/first_apply.py [--quick]

A platform repo made by `generate.py` is put on the sandbox forge, a one-file pull request is merged, and
Paved's apply job runs for the merge's push as the service runs it (`bot.handlers.router.route`): it
fetches the default branch into a new mirror, plans the whole catalogue from nothing, records the
outcome as a note on the merged commit and pushes it, publishes the `paved/apply` check, moves
`refs/paved/applied` and comments on the pull request. No provider is built into the job, so every
resource's result is "no provider makes … here": what is measured is Paved's own cost of a first
apply (planning, the record, its reporting), not the providers' (the time to create a repository, a team
or a database on GitHub or PostgreSQL, per resource, comes on top; see `databases.py`).

Reported per size: the whole job's time, the time spent writing and pushing the note, the note's size,
and the size of the comment after it was fitted to GitHub's limit.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from github import Auth

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from generate import PROJECT, requests

from bot.adapters.catalogue_index import SQLiteCatalogueIndex
from bot.adapters.github import GitHubForge, installation_client, installation_of
from bot.adapters.mirror import GitMirror
from bot.apply import NOTES_REF
from bot.handlers import Context
from bot.handlers.push import applied_marker
from bot.handlers.router import route
from bot.sandbox import Sandbox
from bot.webhook import Delivery

REPO = "acme/platform"


class TimedMirror(GitMirror):
    """A mirror that adds up the time spent writing and pushing notes."""

    notes_seconds = 0.0

    def append_note(self, repo: str, notes_ref: str, sha: str, text: str) -> None:
        started = time.perf_counter()
        super().append_note(repo, notes_ref, sha, text)
        self.notes_seconds += time.perf_counter() - started

    def push(self, repo: str, refs: Iterable[str], *, expected: Mapping[str, str | None] | None = None) -> None:
        refs = list(refs)
        started = time.perf_counter()
        super().push(repo, refs, expected=expected)
        if any(r.startswith("refs/notes/") for r in refs):
            self.notes_seconds += time.perf_counter() - started


@dataclass
class MergedCatalogue:
    """A platform repo of generated requests on the sandbox forge, one pull request merged on it, and the
    apply job's collaborators (no provider); `push` is the merge's push delivery."""

    forge: Sandbox
    ctx: Context
    mirror: TimedMirror
    number: int
    merged: str
    push: Delivery


@contextmanager
def merged_catalogue(size: int, root: Path) -> Iterator[MergedCatalogue]:
    """`size` generated requests on the sandbox forge in `root`, with a one-file pull request merged."""
    seed = root / f"seed-{size}"
    for name in ("schemas", "templates"):
        shutil.copytree(PROJECT / name, seed / name)
    for path, text in requests(size):
        (seed / path).parent.mkdir(parents=True, exist_ok=True)
        (seed / path).write_text(text, encoding="utf-8")
    with Sandbox.start(root / f"forge-{size}") as forge:
        alice = forge.create_user("alice")
        forge.create_user("carol")
        forge.create_org("acme", owners=["alice"], members=["carol"])
        forge.create_repo_from_folder("acme", "platform", seed, owner_token=alice.token)
        forge.add_collaborator("acme", "platform", "carol", "write")
        app = forge.create_app("acme", "paved", permissions={
            "checks": "write", "contents": "write", "issues": "write", "pull_requests": "write",
            "metadata": "read"}, webhook_url="http://127.0.0.1:9/webhooks/github", webhook_secret="x" * 32)
        forge.install_app(app.id, "acme")
        installation = installation_of(forge.api_url, app.id, app.private_key, REPO)
        client = installation_client(forge.api_url, app.id, app.private_key, installation, polite=False)
        auth = client.requester.auth
        assert isinstance(auth, Auth.AppInstallationAuth)
        mirror = TimedMirror(root / f"mirrors-{size}", lambda repo: forge.clone_url(*repo.split("/")),
                             lambda repo: auth.token)
        ctx = Context(GitHubForge(client), mirror, SQLiteCatalogueIndex(root / f"index-{size}.sqlite"))
        path = "catalog/teams/team-0000.yaml"
        text = forge.read_file("acme", "platform", path).decode().replace("monthly: 100000", "monthly: 90000")
        forge.push_files("acme", "platform", "budget", {path: text}, by="carol")
        number = forge.open_pull_request("acme", "platform", head="budget", title="Less budget", by="carol").number
        merged = forge.merge("acme", "platform", number, by="alice")
        forge.wait_for_deliveries()
        push = Delivery(f"push-{size}", "push", forge.deliveries("push")[-1].payload)
        try:
            yield MergedCatalogue(forge, ctx, mirror, number, merged, push)
        finally:
            ctx.store.close()


def measure(size: int, root: Path) -> dict[str, float]:
    with merged_catalogue(size, root) as catalogue:
        started = time.perf_counter()
        routed = route(catalogue.ctx, catalogue.push)
        seconds = time.perf_counter() - started
        if not routed.result.startswith("applied"):
            raise SystemExit(f"the first apply of {size:,} resources did not succeed: {routed.result}")
        note = catalogue.mirror.note(REPO, NOTES_REF, catalogue.merged)
        comment = next(c.body for c in catalogue.forge.comments("acme", "platform", catalogue.number)
                       if c.body.startswith(applied_marker(catalogue.merged)))
    return {"resources": size, "seconds": seconds, "note_seconds": catalogue.mirror.notes_seconds,
            "note_bytes": len(note.encode()), "comment_chars": len(comment)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="1,000 instead of 10,000 resources")
    args = parser.parse_args()
    large = 1_000 if args.quick else 10_000
    with tempfile.TemporaryDirectory(prefix="paved-first-apply-") as scratch:
        figures = [measure(size, Path(scratch)) for size in (100, large)]
    out = Path(__file__).resolve().parent / "out"
    out.mkdir(exist_ok=True)
    (out / "first_apply.json").write_text(json.dumps(figures, indent=2) + "\n")
    print("| resources | first apply (whole job) | of which the note, written and pushed | note size | "
          "comment (fitted) |")
    print("| --- | --- | --- | --- | --- |")
    for f in figures:
        print(f"| {int(f['resources']):,} | {f['seconds']:.2f} s | {f['note_seconds']:.2f} s | "
              f"{f['note_bytes'] / 1024:,.0f} KiB | {int(f['comment_chars']):,} characters |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
