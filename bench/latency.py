"""Time from webhook receipt to plan comment, for a one-file pull request, on 100 and 10,000 resources.

Usage: python bench/latency.py [--repeat N] [--quick]

The whole loop runs as in production, on this machine: the sandbox forge holds the platform repo
and delivers signed webhooks over HTTP to Paved's web app (uvicorn), whose queue consumers run the
real job (fetch into the mirror, plan, publish the check run and the sticky comment). Each figure is
the median over N pull requests, each changing one file, after one warm-up pull request; it is
measured from the moment Paved's app recorded the delivery to the moment the comment exists.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from generate import generate

from bot.sandbox import Sandbox
from bot.settings import Secret, Settings
from bot.web.serve import Background

SECRET = "a-webhook-secret-for-the-benchmark"
MARKER = "<!-- paved:plan -->"


def one_pull_request(forge: Sandbox, deliveries: object, path: str, value: int) -> float:
    """Open a PR changing one file; seconds from the delivery's receipt to the plan comment."""
    text = forge.read_file("acme", "platform", path).decode().replace("retentionDays: 14",
                                                                      f"retentionDays: {value}")
    branch = f"change-{value}"
    forge.push_files("acme", "platform", branch, {path: text}, by="carol")
    pr = forge.open_pull_request("acme", "platform", head=branch, title=f"retention {value}", by="carol")
    deadline = time.monotonic() + 120
    while not any(c.body.startswith(MARKER) for c in forge.comments("acme", "platform", pr.number)):
        if time.monotonic() > deadline:
            raise SystemExit(f"no plan comment on #{pr.number} within 120 s")
        time.sleep(0.01)
    seen = datetime.now().astimezone()
    forge.wait_for_deliveries()
    delivery = forge.deliveries("pull_request", "opened")[-1]
    record = deliveries.get(delivery.guid)  # type: ignore[attr-defined]
    received = datetime.fromisoformat(record.received_at)
    return (seen - received).total_seconds()


@contextmanager
def platform_on_forge(repo: Path, forge_folder: Path, env: dict[str, str]) -> Iterator[tuple[Sandbox, Settings, int]]:
    """`repo` as acme's platform repo on a new sandbox forge (carol may write to it) with Paved's App installed;
    the forge, Paved's settings from `env` for it, and the App's id."""
    with Sandbox.start(forge_folder) as forge:
        alice = forge.create_user("alice")
        forge.create_user("carol")
        forge.create_org("acme", owners=["alice"], members=["carol"])
        forge.create_repo_from_folder("acme", "platform", repo, owner_token=alice.token)
        forge.add_collaborator("acme", "platform", "carol", "write")
        app = forge.create_app("acme", "paved", permissions={
            "checks": "write", "contents": "write", "issues": "write", "pull_requests": "write", "metadata": "read"})
        forge.install_app(app.id, "acme")
        settings = dataclasses.replace(
            Settings.from_env(env), github_api_url=forge.api_url, github_app_id=str(app.id),
            github_private_key=Secret(app.private_key), webhook_secret=Secret(SECRET))
        yield forge, settings, app.id


def measure(size: int, repeat: int, root: Path) -> dict[str, float]:
    repo = generate(size, root / f"catalogue-{size}")
    with platform_on_forge(repo, root / f"forge-{size}", {"PAVED_DATA_DIR": str(root / f"data-{size}")}) as (
            forge, settings, app_id):
        service = Background(settings)
        url, deliveries = service.url, service.deliveries
        try:
            forge.set_app_webhook(app_id, url + "/webhooks/github", SECRET)
            path = _a_database(repo)
            warm = one_pull_request(forge, deliveries, path, 20)
            runs = [one_pull_request(forge, deliveries, path, 21 + i) for i in range(repeat)]
        finally:
            service.stop()
    return {"warm_up_seconds": warm, "seconds": statistics.median(runs), "max_seconds": max(runs), "runs": repeat}


def _a_database(repo: Path) -> str:
    first = sorted((repo / "catalog" / "databases").rglob("*.yaml"))[0]
    return first.relative_to(repo).as_posix()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="1,000 instead of 10,000 resources")
    args = parser.parse_args()
    large = 1_000 if args.quick else 10_000
    with tempfile.TemporaryDirectory(prefix="paved-latency-") as scratch:
        figures = {str(size): measure(size, args.repeat, Path(scratch)) for size in (100, large)}
    out = Path(__file__).resolve().parent / "out"
    out.mkdir(exist_ok=True)
    (out / "latency.json").write_text(json.dumps(figures, indent=2) + "\n")
    print("| resources | webhook receipt → plan comment (median) | max | warm-up PR |")
    print("| --- | --- | --- | --- |")
    for size, f in figures.items():
        print(f"| {int(size):,} | {f['seconds']:.2f} s | {f['max_seconds']:.2f} s | {f['warm_up_seconds']:.2f} s |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
