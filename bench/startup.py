"""The first pull request and the first catalogue page after `paved serve` starts, with and without the
catalogue index warmed at start-up, on 10,000 resources.

Usage: python bench/startup.py [--quick]

For each of the two starts, a platform repo made by `generate.py` is put on a new sandbox forge and Paved's
service starts (`Background`: the web app, its SQLite queue, two consumers; reconcile off, so that only
what is measured runs). Warmed, the start warms the index as `paved serve` does, and the time until
`/readyz` answers 200 is measured; cold, nothing is built before the first use. Then a one-file pull
request is opened (receipt of its delivery to its plan comment, as `latency.py` measures it), after the
catalogue's home page was asked for once (cold, Paved has no copy of the platform repo to show yet).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from generate import generate
from latency import SECRET, _a_database, one_pull_request, platform_on_forge

from bot.web.jobs import warm_catalogues
from bot.web.serve import Background


def measure(size: int, root: Path, *, warmed: bool) -> dict[str, float]:
    label = "warmed" if warmed else "cold"
    repo = generate(size, root / f"catalogue-{label}")
    env = {"PAVED_DATA_DIR": str(root / f"data-{label}"), "PAVED_RECONCILE_MINUTES": "0"}
    with platform_on_forge(repo, root / f"forge-{label}", env) as (forge, settings, app_id):
        settings = dataclasses.replace(settings, catalogue_repo="acme/platform")
        started = time.perf_counter()
        service = Background(settings, warm=warm_catalogues if warmed else None)
        try:
            ready = _ready_after(service.url, started)
            began = time.perf_counter()
            page = httpx.get(service.url + "/", timeout=120)
            first_page = time.perf_counter() - began
            forge.set_app_webhook(app_id, service.url + "/webhooks/github", SECRET)
            first_plan = one_pull_request(forge, service.deliveries, _a_database(repo), 20)
        finally:
            service.stop()
    return {"resources": size, "warmed": warmed, "ready_s": ready, "first_plan_s": first_plan,
            "first_page_s": first_page, "first_page_status": page.status_code}


def _ready_after(url: str, started: float) -> float:
    deadline = time.monotonic() + 600
    while httpx.get(url + "/readyz", timeout=30).status_code != 200:
        if time.monotonic() > deadline:
            raise SystemExit("Paved's service was not ready within 600 s")
        time.sleep(0.05)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="1,000 instead of 10,000 resources")
    args = parser.parse_args()
    size = 1_000 if args.quick else 10_000
    with tempfile.TemporaryDirectory(prefix="paved-startup-") as scratch:
        figures = [measure(size, Path(scratch), warmed=warmed) for warmed in (False, True)]
    out = Path(__file__).resolve().parent / "out"
    out.mkdir(exist_ok=True)
    (out / "startup.json").write_text(json.dumps(figures, indent=2) + "\n")
    print("| start | ready (`/readyz` 200) | first pull request: receipt → plan comment | first home page (status) |")
    print("| --- | --- | --- | --- |")
    for f in figures:
        print(f"| {'index warmed at start-up' if f['warmed'] else 'cold'} ({int(f['resources']):,} resources) | "
              f"{f['ready_s']:.1f} s | {f['first_plan_s']:.2f} s | {f['first_page_s']:.2f} s "
              f"({f['first_page_status']}) |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
