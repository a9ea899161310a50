"""The web catalogue's pages, warm, on 100 and on 10,000 resources, side by side in one run.

Usage: python bench/pages.py [--repeat N] [--quick]

Each catalogue is made by `bench/generate.py`, then given a history like a platform repo's: the first
apply recorded for every resource, then merged pull requests (one a file) each recorded as Paved
records them, one of which failed, and one merged change not applied yet. The pages are served by the
real router (`bot.web.catalogue`) through FastAPI's test client, over the same index file Paved's jobs
would use. After one warm-up request per page (which builds the history index and the statuses for
the head), each page is requested N times; the figure is the median. Target: a page on 10,000
resources costs at most twice the same page on 100. The exit code is 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from generate import generate, git

from bot.apply import APPLIED_REF, NOTES_REF

PAGES = {
    "home": "/",
    "home, filtered (owner and status)": "/?owner=team-0001&status=applied",
    "resource": "/resources/Service/svc-0001-03",
    "team": "/teams/team-0001",
}
CHANGES = 20  # merged pull requests after the first apply


def _out(folder: Path, *args: str) -> str:
    import subprocess

    return subprocess.run(["git", "-C", str(folder), *args], check=True, capture_output=True,
                          text=True).stdout.strip()


def _record(revision: str, previous: str | None, when: str, results: list[tuple[str, str, str]],
            **fields: object) -> str:
    return json.dumps({"paved": 1, "revision": revision, "previous": previous, "applied_at": when,
                       "plan_digest": "0" * 16, "trigger": "merge", **fields,
                       "results": [{"resource": r, "status": s, "message": m, "steps": [],
                                    "outputs": {"repository": f"https://github.com/acme/{r.split('/')[1]}"}
                                    if r.startswith("Service/") else {}} for r, s, m in results]})


def history(folder: Path) -> None:
    """The first apply, then `CHANGES` merged and applied pull requests, one failed, one pending."""
    first = _out(folder, "rev-parse", "HEAD")
    identities = []
    for path in sorted((folder / "catalog").rglob("*.yaml")):
        kind = path.parent.parent.name if path.parent.name.startswith("team-") else path.parent.name
        kind = {"teams": "Team", "services": "Service", "databases": "Database", "environments": "Environment",
                "access": "Access"}[kind]
        identities.append(f"{kind}/{path.stem}")
    # The first apply's record lists every resource: too long for a command line, so it goes in a file.
    record = folder.parent / f"{folder.name}-first-apply.json"
    record.write_text(_record(first, None, "2026-11-02T09:00:00+00:00", [(i, "applied", "") for i in identities]))
    git(folder, "notes", f"--ref={NOTES_REF}", "add", "-F", str(record), first)
    previous = first
    for n in range(CHANGES + 1):
        branch = f"change-{n}"
        service = f"svc-0001-{n % 10:02d}"
        path = folder / "catalog" / "services" / "team-0001" / f"{service}.yaml"
        git(folder, "checkout", "--quiet", "-b", branch, "main")
        path.write_text(path.read_text().replace("lifecycle: production", "lifecycle: production\n")
                        .rstrip("\n") + f"\n# change {n}\n", encoding="utf-8")
        git(folder, "commit", "--quiet", "-am", f"{service}: change {n}")
        git(folder, "checkout", "--quiet", "main")
        git(folder, "merge", "--quiet", "--no-ff", branch, "-m", f"Merge pull request #{n + 1} from dev/{branch}")
        merged = _out(folder, "rev-parse", "HEAD")
        if n == CHANGES:
            break  # merged, not applied yet: pending
        status = "failed" if n == CHANGES - 1 else "applied"
        git(folder, "notes", f"--ref={NOTES_REF}", "add", "-m",
            _record(merged, previous, f"2026-11-{3 + n // 2:02d}T10:{n:02d}:00+00:00",
                    [(f"Service/{service}", status, "boom" if status == "failed" else "")],
                    pull_request=n + 1, requested_by="gina", approved_by=["hugo"], merged_by="alice",
                    actions={f"Service/{service}": "update"}), merged)
        if status == "applied":
            previous = merged
    git(folder, "update-ref", APPLIED_REF, previous)


def site(size: int, root: Path) -> Any:
    """A client of the catalogue's pages on a generated platform repo of `size` resources, warmed up."""
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from bot.web.catalogue import PlatformSource, catalogue_router

    folder = generate(size, root / f"repo-{size}")
    history(folder)
    app = FastAPI()
    app.include_router(catalogue_router(PlatformSource("acme/platform", folder, root / f"index-{size}.sqlite",
                                                       web_url="https://github.com")))
    client = TestClient(app)
    first: dict[str, float] = {}
    for name, path in PAGES.items():
        start = time.perf_counter()
        answer = client.get(path)
        first[name] = time.perf_counter() - start
        assert answer.status_code == 200, (path, answer.status_code, answer.text[:500])
        for _ in range(3):
            client.get(path)
    client.first = first  # type: ignore[attr-defined]
    return client


def measure(sizes: tuple[int, int], repeat: int, root: Path) -> dict[int, dict[str, dict[str, float]]]:
    """Median warm time of each page at both sizes, the requests interleaved so that whatever else the
    machine does weighs on both alike."""
    clients = {size: site(size, root) for size in sizes}
    times: dict[int, dict[str, list[float]]] = {size: {name: [] for name in PAGES} for size in sizes}
    sizes_of_bytes: dict[int, dict[str, int]] = {size: {} for size in sizes}
    for n in range(repeat):
        for name, path in PAGES.items():
            for size in (sizes if n % 2 == 0 else tuple(reversed(sizes))):
                start = time.perf_counter()
                answer = clients[size].get(path)
                times[size][name].append(time.perf_counter() - start)
                sizes_of_bytes[size][name] = len(answer.content)
    for client in clients.values():
        client.close()
    return {size: {name: {"median": statistics.median(times[size][name]), "first": clients[size].first[name],
                          "bytes": sizes_of_bytes[size][name]} for name in PAGES} for size in sizes}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--quick", action="store_true", help="1,000 instead of 10,000 resources")
    args = parser.parse_args()
    large = 1000 if args.quick else 10_000
    with tempfile.TemporaryDirectory() as tmp:
        measured = measure((100, large), args.repeat, Path(tmp))
    small_figures, large_figures = measured[100], measured[large]
    missed = False
    print(f"| page (warm, median of {args.repeat}) | 100 resources | {large:,} resources | ratio | target |")
    print("| --- | --- | --- | --- | --- |")
    for name in PAGES:
        small, big = small_figures[name], large_figures[name]
        ratio = big["median"] / small["median"]
        missed |= ratio > 2
        print(f"| {name} | {small['median'] * 1000:.1f} ms ({small['bytes'] / 1024:.0f} KiB) | "
              f"{big['median'] * 1000:.1f} ms ({big['bytes'] / 1024:.0f} KiB) | {ratio:.2f}x | ≤ 2x |")
    print()
    print("First request of each page (the home page's builds the history index and statuses for the head "
          "and judges the catalogue into the index): 100: "
          + ", ".join(f"{n} {f['first']:.2f} s" for n, f in small_figures.items())
          + f"; {large:,}: " + ", ".join(f"{n} {f['first']:.2f} s" for n, f in large_figures.items()))
    out = Path(__file__).resolve().parent / "out"
    out.mkdir(exist_ok=True)
    (out / "pages.json").write_text(json.dumps({"100": small_figures, str(large): large_figures}, indent=2))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
