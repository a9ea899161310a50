"""Paved under a storm of deliveries and a burst of pull requests, through the whole loop.

Usage: python bench/storm.py [--deliveries N] [--prs N] [--burst N] [--sequential N]

The sandbox forge holds acme's platform repo (the bundled catalogue) and Paved's service (`paved serve`'s
app with its embedded SQLite queue and two consumers) receives its webhooks, as in production.

1. **The storm**: `--prs` pull requests are opened (and answered), then `--deliveries` signed
   `pull_request.synchronize` deliveries for them arrive as fast as one client sends them, 30% of them
   GitHub's redeliveries of one already sent (same id, same body). Reported: jobs run per delivery, the
   wait in the queue (p50, p99: from the delivery's receipt to its job's start, read from the delivery
   log), how many times each head was planned (check runs published or edited on it), and the time until
   every pull request's plan was published again after the storm began.
2. **The burst**: `--burst` pull requests opened at once (real pushes, real `opened` deliveries). Reported:
   the time until every one has its plan comment, against `--sequential` pull requests planned one after
   another (the time of one plan, times the burst's size).

Targets: at most one plan per head per burst of triggers (the storm's triggers name heads that do not
move, so each head is planned at most once after the storm began, plus once for the opening), and the
whole burst answered within the time of as many sequential plans.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import hmac
import json
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from bot.sandbox import Sandbox, recording
from bot.settings import Secret, Settings
from bot.web.serve import Background

PROJECT = Path(__file__).resolve().parent.parent
SECRET = "a-webhook-secret-for-the-storm"
MARKER = "<!-- paved:plan -->"
AB_TESTING = "catalog/services/ab-testing.yaml"


@dataclasses.dataclass
class Loop:
    forge: Sandbox
    service: Background
    url: str

    def open_pr(self, n: int, by: str = "carol") -> int:
        text = self.forge.read_file("acme", "platform", AB_TESTING).decode().replace(
            "Assigns visitors to experiment variants", f"Assigns visitors to experiment variants ({n})", 1)
        self.forge.push_files("acme", "platform", f"change-{n}", {AB_TESTING: text}, by=by)
        return self.forge.open_pull_request("acme", "platform", head=f"change-{n}", title=f"Change {n}", by=by).number

    def answered(self, numbers: list[int], seconds: float = 600) -> float:
        """Seconds until every pull request in `numbers` has its plan comment."""
        start = time.monotonic()
        waiting = set(numbers)
        while waiting:
            waiting = {n for n in waiting if not any(c.body.startswith(MARKER)
                                                     for c in self.forge.comments("acme", "platform", n))}
            if time.monotonic() - start > seconds:
                raise SystemExit(f"{len(waiting)} pull requests had no plan within {seconds:.0f} s")
            time.sleep(0.02)
        return time.monotonic() - start


def start(root: Path) -> tuple[Sandbox, Loop]:
    seed = root / "seed"
    for name in ("catalog", "schemas", "templates"):
        shutil.copytree(PROJECT / name, seed / name)
    forge = Sandbox.start(root / "forge")
    alice = forge.create_user("alice")
    forge.create_user("carol")
    forge.create_org("acme", owners=["alice"], members=["carol"])
    forge.create_repo_from_folder("acme", "platform", seed, owner_token=alice.token)
    forge.add_collaborator("acme", "platform", "carol", "write")
    app = forge.create_app("acme", "paved", permissions={
        "checks": "write", "contents": "write", "issues": "write", "pull_requests": "write", "metadata": "read"})
    forge.install_app(app.id, "acme")
    settings = dataclasses.replace(
        Settings.from_env({"PAVED_DATA_DIR": str(root / "data"), "PAVED_RECONCILE_MINUTES": "0"}),
        github_api_url=forge.api_url, github_app_id=str(app.id), github_private_key=Secret(app.private_key),
        webhook_secret=Secret(SECRET))
    service = Background(settings)
    forge.set_app_webhook(app.id, service.url + "/webhooks/github", SECRET)
    return forge, Loop(forge, service, service.url)


def signed(body: bytes, delivery_id: str) -> dict[str, str]:
    return {"X-GitHub-Event": "pull_request", "X-GitHub-Delivery": delivery_id, "Content-Type": "application/json",
            "X-Hub-Signature-256": "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()}


def storm(loop: Loop, prs: int, deliveries: int, rng: random.Random) -> dict[str, Any]:
    numbers = [loop.open_pr(n) for n in range(prs)]
    loop.answered(numbers)
    loop.forge.wait_for_deliveries()
    opened = {n: next(d.payload for d in loop.forge.deliveries("pull_request", "opened")
                      if d.payload["pull_request"]["number"] == n) for n in numbers}
    heads = {n: opened[n]["pull_request"]["head"]["sha"] for n in numbers}

    published: Counter[str] = Counter()  # check runs published or edited, by head

    def seen(exchange: recording.Exchange) -> None:
        if exchange.method in ("POST", "PATCH") and "/check-runs" in exchange.path and exchange.status < 300:
            body = json.loads(exchange.response_body or b"{}")
            if isinstance(body, dict) and body.get("head_sha"):
                published[str(body["head_sha"])] += 1

    stop = recording.watch(on_exchange=seen)
    sent: list[tuple[str, bytes]] = []
    ids: list[str] = []
    began = time.monotonic()
    with httpx.Client(timeout=30) as client:
        for i in range(deliveries):
            if sent and rng.random() < 0.3:
                delivery_id, body = rng.choice(sent)  # GitHub redelivers one it sent before
            else:
                number = rng.choice(numbers)
                payload = {**opened[number], "action": "synchronize", "before": heads[number],
                           "after": heads[number], "storm": i}
                body = json.dumps(payload).encode()
                delivery_id = f"storm-{i}"
                sent.append((delivery_id, body))
                ids.append(delivery_id)
            answer = client.post(loop.url + "/webhooks/github", content=body, headers=signed(body, delivery_id))
            if answer.status_code >= 300:
                raise SystemExit(f"delivery {delivery_id} answered {answer.status_code}: {answer.text}")
    sent_in = time.monotonic() - began
    log = loop.service.deliveries
    records = {i: log.get(i) for i in ids}
    deadline = time.monotonic() + 600
    while any(r is None or r.status not in ("done", "failed") for r in records.values()):
        if time.monotonic() > deadline:
            raise SystemExit("the storm's jobs did not finish within 600 s")
        time.sleep(0.05)
        records = {i: log.get(i) for i in ids}
    settled = time.monotonic() - began
    stop()
    ran = [r for r in records.values() if r is not None and r.started_at]
    waits = sorted((datetime.fromisoformat(r.started_at or "") - datetime.fromisoformat(r.received_at))
                   .total_seconds() for r in ran)
    per_head = [published.get(heads[n], 0) for n in numbers]
    return {"pull_requests": prs, "deliveries": deliveries, "distinct": len(ids), "redelivered": deliveries - len(ids),
            "jobs_run": len(ran), "jobs_per_delivery": len(ran) / deliveries,
            "queue_wait_p50_s": _quantile(waits, 0.5), "queue_wait_p99_s": _quantile(waits, 0.99),
            "sent_in_s": sent_in, "all_planned_after_s": settled,
            "plans_per_head_max": max(per_head), "plans_per_head_mean": statistics.mean(per_head)}


def burst(loop: Loop, size: int, sequential: int, offset: int) -> dict[str, Any]:
    one_by_one = []
    for n in range(sequential):
        began = time.monotonic()
        number = loop.open_pr(offset + n)
        loop.answered([number])
        one_by_one.append(time.monotonic() - began)
    per_plan = statistics.median(one_by_one)
    began = time.monotonic()
    numbers: list[int] = []
    lock = threading.Lock()

    def open_one(n: int) -> None:
        number = loop.open_pr(offset + sequential + n)
        with lock:
            numbers.append(number)

    threads = [threading.Thread(target=open_one, args=(n,)) for n in range(size)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    loop.answered(numbers)
    whole = time.monotonic() - began
    return {"burst": size, "burst_answered_s": whole, "sequential_plan_s": per_plan,
            "sequential_equivalent_s": per_plan * size, "ratio": whole / (per_plan * size)}


def _quantile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--deliveries", type=int, default=1000)
    parser.add_argument("--prs", type=int, default=20)
    parser.add_argument("--burst", type=int, default=50)
    parser.add_argument("--sequential", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="paved-storm-") as scratch:
        forge, loop = start(Path(scratch))
        try:
            figures = {"storm": storm(loop, args.prs, args.deliveries, random.Random(args.seed)),
                       "burst": burst(loop, args.burst, args.sequential, offset=args.prs)}
        finally:
            loop.service.stop()
            forge.stop()
    out = Path(__file__).resolve().parent / "out"
    out.mkdir(exist_ok=True)
    (out / "storm.json").write_text(json.dumps(figures, indent=2) + "\n")
    s, b = figures["storm"], figures["burst"]
    print("| measurement | figure | target |")
    print("| --- | --- | --- |")
    print(f"| storm: {s['deliveries']:,} deliveries ({s['redelivered']} redelivered) on {s['pull_requests']} PRs: "
          f"jobs run | {s['jobs_run']} ({s['jobs_per_delivery']:.3f} per delivery) | |")
    print(f"| storm: wait in the queue, p50 / p99 | {s['queue_wait_p50_s']:.2f} s / {s['queue_wait_p99_s']:.2f} s | |")
    print(f"| storm: plans of one head, max (mean) | {s['plans_per_head_max']} ({s['plans_per_head_mean']:.2f}) | "
          "≤ 1 after the opening's |")
    print(f"| storm: until every job finished | {s['all_planned_after_s']:.1f} s (sent in {s['sent_in_s']:.1f} s) | |")
    print(f"| burst of {b['burst']} PRs: until every one has its plan | {b['burst_answered_s']:.1f} s | "
          f"≤ {b['sequential_equivalent_s']:.1f} s ({b['burst']} × {b['sequential_plan_s']:.2f} s sequential): "
          f"{b['ratio']:.2f}x |")
    missed = s["plans_per_head_max"] > 2 or b["ratio"] > 1.0
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
