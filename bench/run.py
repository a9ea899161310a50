"""Paved's speed and memory targets, measured side by side in one run.

Usage: python bench/run.py [--repeat N] [--quick] [--full] [--cores]

1. Start-up: `paved validate` on the bundled catalogue against `check-jsonschema` on one file, the two
   run in turn, N times each.
2. Cold validation of 10,000 resources (no cache; 50,000 with --full) against `check-jsonschema` on the
   same files and kind schemas (one call per kind, as a team would script it). Paved also runs the
   guardrail policies and the catalogue-wide checks, which check-jsonschema does not.
3. Every core: cold validation of 50,000 resources (10,000 with --quick) on one core, where Paved judges
   in its own process, and on every core the machine gives it, where it shares the files among worker
   processes; the two in turn, N times each. Beside it, what the machine's cores give at best right
   then: one Python loop alone against one on each core at once. `--cores` measures this alone (about two
   minutes with --repeat 5), as the figures in bench/README.md do.
4. Memory: the peak of `paved validate --no-cache` (its own process, its workers and their fork server,
   added up as proportional set size, sampled every 20 ms in the first second and every 200 ms after) at
   1,000, 10,000 and 50,000 resources (the last from step 3), and at 100,000 with --full; per resource, as
   what the largest costs beyond the one before it (both judged by workers: below 5,000 files there are
   none, and they cost ~60 MiB however many files they judge).
5. A plan for a one-file change on 10,000 resources against the same on 100 resources, once warm
   (the base's state is in the data folder; each measured plan has a head never seen before).
6. GitHub requests a reconcile costs, first and repeated, at 100 and 1,000 services (300 with --quick):
   `reconcile_requests.py`, run as it is, its table printed first.
7. A no-op re-apply of 200 databases against a one-connection script reading the same state, and their
   first apply against plain `CREATE DATABASE` (`databases.py`, on the machine's PostgreSQL; 50 with
   --quick), and a first apply of 10,000 resources with its note (`first_apply.py`; 1,000 with --quick).
8. One golden-path change upgrading 50 services (10 with --quick): the apply that opens their upgrade pull
   requests, its time and GitHub requests, and the same upgrades again, which must change nothing
   (`upgrades.py`).

Each figure is the median wall time of N runs of the real command line (a new process each time), which
reads Paved's modules compiled, as an installed Paved does; memory comes from one more run of each command,
sampled (sampling takes processor time from what it measures, more from a command on every core). Results
go to stdout as a Markdown table and to bench/out/. The exit code is 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from generate import generate, git

PROJECT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
KINDS = {"team": "teams", "service": "services", "database": "databases", "environment": "environments",
         "access": "access"}


@dataclass(frozen=True)
class Run:
    """One command's wall seconds, its peak resident KiB (its own process) and the peak of its whole
    process tree (proportional set size, KiB), and its exit code."""

    seconds: float
    peak_kib: int
    tree_pss_kib: int
    code: int


def children() -> dict[int, list[int]]:
    """Every process's children, as the system lists them now."""
    found: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue  # ended meanwhile
            found.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(entry))
    return found


def _tree(root: int) -> list[int]:
    """`root` and every process below it."""
    below = children()
    found, waiting = [], [root]
    while waiting:
        pid = waiting.pop()
        found.append(pid)
        waiting += below.get(pid, [])
    return found


def _pss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass  # ended meanwhile
    return 0


def run(argv: list[str], *, cwd: Path, env: dict[str, str] | None = None,
        cores: set[int] | None = None, sample: bool = True) -> Run:
    """Run one command (on `cores` only, when given) and measure it: its time, and, if `sample`, the peak
    memory of its whole process tree (sampling slows it: `side_by_side` times runs that are not sampled)."""
    start = time.perf_counter()
    child = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             preexec_fn=(lambda: os.sched_setaffinity(0, cores)) if cores else None)
    peak = [0]
    done = threading.Event()

    def sample_tree() -> None:
        # Every 20 ms in the first second, every 200 ms after: a sample costs about 1 ms of processor time and
        # holds each process's memory map while it is read, which slowed a run on every core by about 3%
        # when taken every 20 ms throughout (and a run on one core less, whose sampler has a core to itself).
        while not done.wait(0.02 if time.perf_counter() - start < 1 else 0.2):
            peak[0] = max(peak[0], sum(_pss_kib(pid) for pid in _tree(child.pid)))

    sampler = threading.Thread(target=sample_tree, daemon=True)
    if sample:
        sampler.start()
    assert child.stderr is not None
    err = child.stderr.read().decode(errors="replace")
    _, status, usage = os.wait4(child.pid, 0)
    elapsed = time.perf_counter() - start
    done.set()
    if sample:
        sampler.join()
    child.returncode = os.waitstatus_to_exitcode(status)
    child.stderr.close()
    if child.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(argv)} failed ({child.returncode}):\n{err}")
    return Run(elapsed, usage.ru_maxrss, peak[0], child.returncode)


def summary(runs: list[Run], sampled: list[Run] | None = None) -> dict[str, float]:
    """The median time of `runs`, and the peak memory of `sampled` (by default, of `runs`)."""
    sampled = runs if sampled is None else sampled
    return {"seconds": statistics.median(r.seconds for r in runs), "peak_kib": max(r.peak_kib for r in sampled),
            "tree_pss_kib": max(r.tree_pss_kib for r in sampled), "runs": len(runs)}


def side_by_side(repeat: int, commands: dict[str, Callable[[bool], Run]]) -> dict[str, dict[str, float]]:
    """Each command run `repeat` times, in turn, so that whatever else the machine does weighs on all;
    then once more each with its memory sampled. Times come from the runs nobody sampled: the sampler
    reads every process's parent and the tree's memory maps, 0.22 s of processor time during a 3 s
    validation of 50,000 resources, taken from the cores Paved needs when it runs on every core, and from
    the idle one when it runs on one; timing sampled runs made two cores look about 4% slower against one."""
    runs: dict[str, list[Run]] = {name: [] for name in commands}
    for _ in range(repeat):
        for name, command in commands.items():
            runs[name].append(command(False))
    sampled = {name: [command(True)] for name, command in commands.items()}
    return {name: summary(found, sampled[name]) for name, found in runs.items()}


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


def usable_cores() -> set[int]:
    return os.sched_getaffinity(0)


SPIN = "import time; t = time.perf_counter(); sum(range(30_000_000)); x = 0\nfor i in range(10_000_000): x += i"


def cores_at_best(cores: set[int], repeat: int) -> float:
    """How much faster the machine runs one Python loop on each of `cores` at once than one loop alone:
    the ceiling for any work shared among those cores, now (a shared or busy machine gives less than
    their number)."""
    def on(core: int) -> Callable[[], None]:
        return lambda: os.sched_setaffinity(0, {core})

    alone: list[float] = []
    together: list[float] = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", SPIN], check=True, preexec_fn=on(min(cores)))
        alone.append(time.perf_counter() - start)
        start = time.perf_counter()
        loops = [subprocess.Popen([sys.executable, "-c", SPIN], preexec_fn=on(core)) for core in sorted(cores)]
        for loop in loops:
            loop.wait()
        together.append(time.perf_counter() - start)
    return len(cores) * statistics.median(alone) / statistics.median(together)


def every_core_against_one(repo: Path, env: dict[str, str], repeat: int,
                           ) -> tuple[dict[str, dict[str, float]], float, float]:
    """`paved validate --no-cache` on one core and on every core, in turn; the ratio of their medians; and
    what the machine's cores give at best right after (`cores_at_best`)."""
    paved = str(BIN / "paved")
    cores = usable_cores()
    on_cores = side_by_side(repeat, {
        "one_core": lambda sample: run([paved, "validate", "--no-cache"], cwd=repo, env=env, cores={min(cores)},
                                       sample=sample),
        "every_core": lambda sample: run([paved, "validate", "--no-cache"], cwd=repo, env=env, sample=sample)})
    ratio = on_cores["one_core"]["seconds"] / on_cores["every_core"]["seconds"]
    return on_cores, ratio, cores_at_best(cores, repeat) if len(cores) >= 2 else 1.0


def cores_only(size: int, repeat: int) -> int:
    """Step 3 alone, on a catalogue of `size` resources; exit code 1 when two cores give less than 1.7x."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(PROJECT / "bot")], check=True,
                   stdout=subprocess.DEVNULL)
    load = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="paved-bench-") as scratch:
        repo = generate(size, Path(scratch) / "catalogue")
        env = {**os.environ, "PAVED_DATA_DIR": str(Path(scratch) / "data"), "NO_COLOR": "1"}
        on_cores, ratio, ceiling = every_core_against_one(repo, env, repeat)
    one, every = on_cores["one_core"], on_cores["every_core"]
    print(f"cold validation of {size:,} resources, medians of {repeat}: one core {one['seconds']:.2f} s "
          f"({one['tree_pss_kib'] / 1024:.0f} MiB), {len(usable_cores())} cores {every['seconds']:.2f} s "
          f"({every['tree_pss_kib'] / 1024:.0f} MiB): {ratio:.2f}x; the machine's cores at best meanwhile "
          f"{ceiling:.2f}x; load average {load[0]:.1f} at the start, {os.getloadavg()[0]:.1f} at the end")
    return 0 if ratio >= 1.7 or len(usable_cores()) < 2 else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5, help="runs per figure (check-jsonschema: at most 2; "
                        "the largest catalogues: at most 3)")
    parser.add_argument("--quick", action="store_true", help="1,000 and 10,000 instead of 10,000 and 50,000")
    parser.add_argument("--full", action="store_true", help="also check-jsonschema at 50,000 resources and "
                        "memory at 50,000 and 100,000 (about 20 minutes more)")
    parser.add_argument("--cores", action="store_true", help="only every core against one, and what the "
                        "machine's cores give at best meanwhile")
    args = parser.parse_args()
    if args.cores:
        return cores_only(10_000 if args.quick else 50_000, args.repeat)
    cold_size = 50_000 if args.full else (1_000 if args.quick else 10_000)
    cores_size = 10_000 if args.quick else 50_000
    memory_sizes = [1_000, 10_000, 100_000] if args.full else [1_000, 10_000]
    plan_size = 1_000 if args.quick else 10_000
    big_repeat = min(args.repeat, 3)
    paved = str(BIN / "paved")
    cores = usable_cores()
    # An installed Paved has its modules compiled; this checkout may not (PYTHONDONTWRITEBYTECODE).
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(PROJECT / "bot")], check=True,
                   stdout=subprocess.DEVNULL)
    results: dict[str, object] = {"machine": {"cpus": os.cpu_count(), "usable": len(cores),
                                              "python": sys.version.split()[0],
                                              "load_at_start": os.getloadavg()}}
    with tempfile.TemporaryDirectory(prefix="paved-bench-") as scratch:
        root = Path(scratch)
        env = {**os.environ, "PAVED_DATA_DIR": str(root / "data"), "NO_COLOR": "1"}

        # 1. start-up
        run([paved, "validate", "--repo", str(PROJECT)], cwd=PROJECT, env=env)  # stores the bundled state
        startup = side_by_side(max(args.repeat, 10), {
            "paved": lambda sample: run([paved, "validate", "--repo", str(PROJECT)], cwd=PROJECT, env=env,
                                        sample=sample),
            "check_jsonschema": lambda sample: run([str(BIN / "check-jsonschema"), "--schemafile",
                                                    "schemas/kinds/team.json", "catalog/teams/platform.yaml"],
                                                   cwd=PROJECT, sample=sample)})
        startup_ratio = startup["paved"]["seconds"] / startup["check_jsonschema"]["seconds"]
        results["startup"] = {**startup, "ratio": startup_ratio}

        sizes = sorted({cold_size, cores_size, plan_size, 100, *memory_sizes})
        repos = {n: generate(n, root / f"catalogue-{n}") for n in sizes}

        # 2. cold validation against check-jsonschema
        cold = side_by_side(min(args.repeat, 2) if cold_size <= 10_000 else 1, {
            "paved": lambda sample: run([paved, "validate", "--no-cache"], cwd=repos[cold_size], env=env,
                                        sample=sample),
            "check_jsonschema": lambda sample: run(check_jsonschema_catalogue(repos[cold_size]),
                                                   cwd=repos[cold_size], sample=sample)})
        cold_paved, cj = cold["paved"], cold["check_jsonschema"]
        speedup = cj["seconds"] / cold_paved["seconds"]
        results["cold_validation"] = {"resources": cold_size, "paved": cold_paved, "check_jsonschema": cj,
                                      "speedup": speedup}

        # 3. every core against one
        on_cores, cores_ratio, ceiling = every_core_against_one(repos[cores_size], env, big_repeat)
        results["every_core"] = {"resources": cores_size, "cores": len(cores), **on_cores, "speedup": cores_ratio,
                                 "machine_at_best": ceiling}

        # 4. memory
        memory = {n: summary([run([paved, "validate", "--no-cache"], cwd=repos[n], env=env)])
                  for n in memory_sizes if n != cores_size}
        memory[cores_size] = on_cores["every_core"]
        memory = dict(sorted(memory.items()))
        smallest, largest = list(memory)[-2:]
        per_resource = (memory[largest]["tree_pss_kib"] - memory[smallest]["tree_pss_kib"]) * 1024 / (
            largest - smallest)
        results["memory"] = {"by_resources": {str(n): m for n, m in memory.items()},
                             "bytes_per_resource": per_resource}

        # 5. plans follow the change
        plans: dict[str, dict[str, float]] = {}
        for size in (100, plan_size):
            size_env = {**env, "PAVED_DATA_DIR": str(root / f"data-{size}")}
            warm = run([paved, "plan", "--base", "main", "--head", "main"], cwd=repos[size], env=size_env)
            timings = []
            for i in range(args.repeat):
                one_file_change(repos[size], f"change-{i}", 20 + i)
                timings.append(run([paved, "plan", "--base", "main", "--head", f"change-{i}"], cwd=repos[size],
                                   env=size_env))
            plans[str(size)] = {"warm_up_seconds": warm.seconds, **summary(timings)}
        plan_ratio = plans[str(plan_size)]["seconds"] / plans["100"]["seconds"]
        results["plan_one_file_change"] = {**plans, "ratio": plan_ratio}
    # 6. GitHub requests a reconcile costs (its own script and sandbox forges; it prints its own table)
    reconciled = subprocess.run([sys.executable, str(PROJECT / "bench" / "reconcile_requests.py"),
                                 *(["--quick"] if args.quick else [])], cwd=PROJECT).returncode
    # 7. Databases and a first apply (their own scripts; each prints its own table, the first exits 1 on a miss)
    databases = subprocess.run([sys.executable, str(PROJECT / "bench" / "databases.py"),
                                *(["--count", "50", "--repeat", "3"] if args.quick else [])], cwd=PROJECT).returncode
    first_apply = subprocess.run([sys.executable, str(PROJECT / "bench" / "first_apply.py"),
                                  *(["--quick"] if args.quick else [])], cwd=PROJECT).returncode
    # 8. A template change upgrading every service that follows it (its own script; it prints its own table)
    upgrades = subprocess.run([sys.executable, str(PROJECT / "bench" / "upgrades.py"),
                               *(["--services", "10"] if args.quick else [])], cwd=PROJECT).returncode
    results["machine"]["load_at_end"] = os.getloadavg()  # type: ignore[index]

    cold_target = 10 if cold_size >= 50_000 else 5  # smaller, the fixed costs of starting weigh more
    targets = {
        "start-up: paved validate (bundled) at most half of check-jsonschema on one file": startup_ratio <= 0.5,
        f"cold validation of {cold_size:,} resources at least {cold_target}x faster than check-jsonschema":
            speedup >= cold_target,
        f"memory: at most 2 KB a resource ({smallest:,} to {largest:,} resources)": per_resource <= 2048,
        f"plan of a one-file change: {plan_size:,} resources at most 1.5x the time of 100": plan_ratio <= 1.5,
    }
    if len(cores) >= 2:
        targets[f"cold validation of {cores_size:,} resources on {len(cores)} cores at least 1.7x faster than "
                "on one"] = cores_ratio >= 1.7
    if 100_000 in memory:
        targets["memory: 100,000 resources under 250 MiB"] = memory[100_000]["tree_pss_kib"] < 250 * 1024
    targets["reconcile: a repeated reconcile of the larger catalogue at most 500 GitHub requests"] = reconciled == 0
    targets["databases: a no-op re-apply within 2x a one-connection script reading the same state"] = databases == 0
    targets["first apply of the larger catalogue: note written and pushed, job done"] = first_apply == 0
    targets["upgrades: one template change opens a pull request on every service, and again changes nothing"] = \
        upgrades == 0
    results["targets"] = targets
    out = PROJECT / "bench" / "out"
    out.mkdir(exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2, default=asdict) + "\n")

    mib = 1024.0
    print("| measurement | Paved | compared with | ratio |")
    print("| --- | --- | --- | --- |")
    print(f"| start-up, `paved validate` on the bundled catalogue | {startup['paved']['seconds']:.3f} s | "
          f"check-jsonschema, one file: {startup['check_jsonschema']['seconds']:.3f} s | {startup_ratio:.2f}x |")
    print(f"| cold validation, {cold_size:,} resources | {cold_paved['seconds']:.2f} s, "
          f"{cold_paved['tree_pss_kib'] / mib:.0f} MiB | check-jsonschema: {cj['seconds']:.2f} s, "
          f"{cj['tree_pss_kib'] / mib:.0f} MiB | {speedup:.1f}x faster |")
    print(f"| cold validation, {cores_size:,} resources, {len(cores)} cores | "
          f"{on_cores['every_core']['seconds']:.2f} s, {on_cores['every_core']['tree_pss_kib'] / mib:.0f} MiB | "
          f"one core: {on_cores['one_core']['seconds']:.2f} s, {on_cores['one_core']['tree_pss_kib'] / mib:.0f} MiB "
          f"| {cores_ratio:.2f}x faster (the machine's cores at best, meanwhile: {ceiling:.2f}x) |")
    for n, m in memory.items():
        print(f"| memory, cold validation of {n:,} resources | {m['tree_pss_kib'] / mib:.0f} MiB "
              f"({m['tree_pss_kib'] * 1024 / n:,.0f} bytes a resource) | {m['seconds']:.2f} s | |")
    print(f"| memory per resource, {smallest:,} to {largest:,} | {per_resource:,.0f} bytes | | |")
    print(f"| plan, one-file change, warm | {plan_size:,}: {plans[str(plan_size)]['seconds']:.3f} s | "
          f"100: {plans['100']['seconds']:.3f} s | {plan_ratio:.2f}x |")
    print(f"load average at start {results['machine']['load_at_start']}, at end "  # type: ignore[index]
          f"{results['machine']['load_at_end']}")  # type: ignore[index]
    for name, ok in targets.items():
        print(f"{'PASS' if ok else 'MISS'}  {name}")
    return 0 if all(targets.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
