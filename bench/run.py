"""Paved's speed targets, measured side by side in one run.

Usage: python bench/run.py [--repeat N] [--quick]

1. Start-up: `paved validate` on the bundled catalogue against `check-jsonschema` on one file.
2. Cold validation of a 10,000-resource catalogue (no cache) against `check-jsonschema` on the same
   files and kind schemas (one call per kind, as a team would script it). Paved also runs the
   guardrail policies and the catalogue-wide checks, which check-jsonschema does not.
3. A plan for a one-file change on 10,000 resources against the same on 100 resources, once warm
   (the base's state is in the data folder; each measured plan has a head never seen before).

Each figure is the median wall time of N runs of the real command line (a new process each time),
with the peak memory of the child. Results go to stdout as a Markdown table and to bench/out/.
The exit code is 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from generate import generate, git

PROJECT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
KINDS = {"team": "teams", "service": "services", "database": "databases", "environment": "environments",
         "access": "access"}


def run(argv: list[str], *, cwd: Path, env: dict[str, str] | None = None) -> tuple[float, int, int]:
    """Wall seconds, peak resident KiB and exit code of one command."""
    start = time.perf_counter()
    child = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert child.stderr is not None
    _, status, usage = os.wait4(child.pid, 0)
    elapsed = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    err = child.stderr.read().decode(errors="replace")
    child.stderr.close()
    if child.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(argv)} failed ({child.returncode}):\n{err}")
    return elapsed, usage.ru_maxrss, child.returncode


def median_of(repeat: int, argv: list[str], *, cwd: Path, env: dict[str, str] | None = None) -> dict[str, float]:
    runs = [run(argv, cwd=cwd, env=env) for _ in range(repeat)]
    return {"seconds": statistics.median(r[0] for r in runs), "peak_kib": max(r[1] for r in runs),
            "runs": len(runs)}


def check_jsonschema_catalogue(repo: Path) -> list[str]:
    """One check-jsonschema call per kind over that kind's files (shell-free, like `xargs` would)."""
    script = ["set -e"]
    for kind, folder in KINDS.items():
        script.append(f"find catalog/{folder} -name '*.yaml' -print0 | xargs -0 -r {BIN / 'check-jsonschema'} "
                      f"--schemafile schemas/kinds/{kind}.json > /dev/null")
    return ["bash", "-c", "\n".join(script)]


def one_file_change(repo: Path, branch: str, value: int) -> None:
    """A branch off main that changes one database's backup retention."""
    target = next(iter(sorted((repo / "catalog" / "databases").rglob("*.yaml"))))
    git(repo, "switch", "--quiet", "-c", branch, "main")
    text = target.read_text().replace("retentionDays: 14", f"retentionDays: {value}")
    target.write_text(text)
    git(repo, "commit", "--quiet", "-am", f"retention {value}")
    git(repo, "switch", "--quiet", "main")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5, help="runs per figure (check-jsonschema: at most 2)")
    parser.add_argument("--quick", action="store_true", help="1,000 instead of 10,000 resources")
    args = parser.parse_args()
    large = 1_000 if args.quick else 10_000
    paved = str(BIN / "paved")
    results: dict[str, object] = {"machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]}}
    with tempfile.TemporaryDirectory(prefix="paved-bench-") as scratch:
        root = Path(scratch)
        env = {**os.environ, "PAVED_DATA_DIR": str(root / "data"), "NO_COLOR": "1"}

        startup_paved = median_of(args.repeat, [paved, "validate", "--repo", str(PROJECT)], cwd=PROJECT, env=env)
        startup_cj = median_of(args.repeat, [str(BIN / "check-jsonschema"), "--schemafile",
                                             "schemas/kinds/team.json", "catalog/teams/platform.yaml"], cwd=PROJECT)
        results["startup"] = {"paved_validate_bundled": startup_paved, "check_jsonschema_one_file": startup_cj}

        repos = {n: generate(n, root / f"catalogue-{n}") for n in (100, large)}
        cold = median_of(args.repeat, [paved, "validate", "--no-cache"], cwd=repos[large], env=env)
        cj = median_of(min(args.repeat, 2), check_jsonschema_catalogue(repos[large]), cwd=repos[large])
        results["cold_validation"] = {"resources": large, "paved": cold, "check_jsonschema": cj,
                                      "speedup": cj["seconds"] / cold["seconds"]}

        plans: dict[str, object] = {}
        for size, repo in repos.items():
            size_env = {**env, "PAVED_DATA_DIR": str(root / f"data-{size}")}
            warm = run([paved, "plan", "--base", "main", "--head", "main"], cwd=repo, env=size_env)
            timings = []
            for i in range(args.repeat):
                one_file_change(repo, f"change-{i}", 20 + i)
                timings.append(run([paved, "plan", "--base", "main", "--head", f"change-{i}"], cwd=repo,
                                   env=size_env))
            plans[str(size)] = {"warm_up_seconds": warm[0],
                                "seconds": statistics.median(t[0] for t in timings),
                                "peak_kib": max(t[1] for t in timings), "runs": len(timings)}
        ratio = plans[str(large)]["seconds"] / plans["100"]["seconds"]  # type: ignore[index]
        results["plan_one_file_change"] = {**plans, "ratio": ratio}

    targets = {
        "start-up: paved validate (bundled) faster than check-jsonschema on one file":
            startup_paved["seconds"] < startup_cj["seconds"],
        f"cold validation of {large:,} resources at least 5x faster than check-jsonschema":
            results["cold_validation"]["speedup"] >= 5,  # type: ignore[index]
        f"plan of a one-file change: {large:,} resources at most 1.5x the time of 100": ratio <= 1.5,
    }
    results["targets"] = targets
    out = PROJECT / "bench" / "out"
    out.mkdir(exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")

    cold_v, plan_v = results["cold_validation"], results["plan_one_file_change"]
    print("| measurement | Paved | compared with | ratio |")
    print("| --- | --- | --- | --- |")
    print(f"| start-up, `paved validate` on the bundled catalogue | {startup_paved['seconds']:.3f} s | "
          f"check-jsonschema, one file: {startup_cj['seconds']:.3f} s | "
          f"{startup_cj['seconds'] / startup_paved['seconds']:.2f}x faster |")
    print(f"| cold validation, {large:,} resources | {cold['seconds']:.2f} s, {cold['peak_kib'] / 1024:.0f} MiB | "
          f"check-jsonschema: {cj['seconds']:.2f} s, {cj['peak_kib'] / 1024:.0f} MiB | "
          f"{cold_v['speedup']:.1f}x faster |")  # type: ignore[index]
    print(f"| plan, one-file change, warm | {large:,}: {plan_v[str(large)]['seconds']:.3f} s | "  # type: ignore[index]
          f"100: {plan_v['100']['seconds']:.3f} s | {ratio:.2f}x |")  # type: ignore[index]
    for name, ok in targets.items():
        print(f"{'PASS' if ok else 'MISS'}  {name}")
    return 0 if all(targets.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
