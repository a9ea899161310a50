"""Applying 200 databases in one merge, then applying the same state again, on this machine's PostgreSQL,
each side by side with the least a script could do for the same result.

Usage: python bench/databases.py [--count N] [--services N] [--repeat N]

A platform repo gets one commit with N `Database` requests spread over a few services (each with a
production environment), and Paved plans it from the empty catalogue and applies it with the database
provider, as it would after the merge: role, database, limits, PUBLIC revoked, a generated password,
`DATABASE_URL` sealed and set on each service's repository and environment of the local sandbox forge
(over real HTTP). That first apply is set against `CREATE DATABASE` alone: a script creating N empty
databases over one connection. Then the same state is applied again, which must take no step and issue
no DDL, and that no-op re-apply is set against a script that reads the same state over one connection:
the same catalog rows for the N databases and roles, and one list of Actions secrets per place the
credentials go. The re-apply and the script alternate, `--repeat` times each, and their medians are
compared; the target is the re-apply within 2x of the script (exit status 1 when missed).

Reported besides the times: the connections Paved opened (each `psycopg.connect`), the SQL statements
it sent (reads and writes) and the requests the forge answered. Every database is uniquely named and
dropped at the end.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from github import Auth, Github
from psycopg import sql

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.adapters.catalogue_index import SQLiteCatalogueIndex
from bot.adapters.github import installation_client, installation_of
from bot.adapters.repo import GitTree
from bot.apply import apply_plan
from bot.config import RepoConfig
from bot.model import MemoryTree
from bot.plan import plan_requests
from bot.provider import Target
from bot.providers.database import CATALOG, DatabaseProvider
from bot.providers.github.secrets import GitHubSecrets
from bot.rules import load_rules
from bot.sandbox import Sandbox, recording

PROJECT = Path(__file__).resolve().parent.parent
VARIABLE = "PAVED_BENCH_POSTGRES_DSN"
# The no-op re-apply's target: at most this many times the one-connection script's time.
TARGET_RATIO = 2.0

TEAM = """apiVersion: paved/v1
kind: Team
metadata: {{name: bench, owner: bench, description: The benchmark's team.}}
spec:
  members: [alice]
  maintainers: [alice]
  budget: {{monthly: 100000}}
"""
SERVICE = """apiVersion: paved/v1
kind: Service
metadata: {{name: {name}, owner: bench, description: A service of the benchmark.}}
spec:
  template: {{name: fastapi-service}}
  repository: {{visibility: private}}
  tier: experimental
  lifecycle: experimental
---
apiVersion: paved/v1
kind: Environment
metadata: {{name: {name}-production, owner: bench, description: Where {name} runs.}}
spec: {{service: {name}, name: production, requiredReviewers: [bench]}}
"""
DATABASE = """apiVersion: paved/v1
kind: Database
metadata: {{name: {name}, owner: bench, description: A database of the benchmark.}}
spec:
  engine: postgres
  version: "{version}"
  size: small
  service: {service}
  backups: {{enabled: false, retentionDays: 1}}
  deletionProtection: false
"""


def git(folder: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(folder), *args], check=True, capture_output=True, text=True).stdout


def platform_repo(folder: Path, services: list[str], databases: dict[str, str], version: str) -> Path:
    root = folder / "platform"
    root.mkdir(parents=True)
    for name in ("schemas", "templates"):
        subprocess.run(["cp", "-r", str(PROJECT / name), str(root / name)], check=True)
    (root / "catalog").mkdir()
    (root / "catalog" / "bench.yaml").write_text(TEAM.format())
    for service in services:
        (root / "catalog" / f"{service}.yaml").write_text(SERVICE.format(name=service))
    for database, service in databases.items():
        (root / "catalog" / f"{database}.yaml").write_text(DATABASE.format(name=database, service=service,
                                                                            version=version))
    git(root, "init", "--quiet", "-b", "main")
    git(root, "add", "-A")
    git(root, "-c", "user.name=bench", "-c", "user.email=bench@example.com", "commit", "--quiet", "-m", "bench")
    return root


@dataclass(frozen=True)
class Cost:
    """What one measured run took: wall seconds, connections opened, SQL statements, forge requests."""

    seconds: float
    connections: int = 0
    reads: int = 0
    writes: int = 0
    requests: int = 0


@contextmanager
def counting(provider: DatabaseProvider | None = None) -> Iterator[Callable[[float], Cost]]:
    """Count the connections opened (every `psycopg.connect` of this process), the provider's statements
    and the forge's answers while the block runs; the block gets a function that makes its `Cost`."""
    opened = [0]
    answered: list[recording.Exchange] = []
    connect = psycopg.connect

    def counted(*args: Any, **kwargs: Any) -> Any:
        opened[0] += 1
        return connect(*args, **kwargs)

    before = (provider.statements.reads, provider.statements.writes) if provider else (0, 0)
    psycopg.connect = counted  # type: ignore[assignment]
    stop = recording.watch(on_exchange=answered.append)
    try:
        yield lambda seconds: Cost(seconds, opened[0],
                                   (provider.statements.reads - before[0]) if provider else 0,
                                   (provider.statements.writes - before[1]) if provider else 0, len(answered))
    finally:
        stop()
        psycopg.connect = connect  # type: ignore[assignment]


def create_plainly(dsn: str, names: list[str]) -> Cost:
    """`CREATE DATABASE` for each name over one connection: what the server itself takes to make them."""
    with counting() as cost:
        started = time.perf_counter()
        with psycopg.connect(dsn, autocommit=True) as conn:
            for name in names:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return cost(time.perf_counter() - started)


def read_plainly(dsn: str, names: list[str], client: Github, places: list[str]) -> Cost:
    """The state a no-op re-apply reads, read by a script over one connection: the catalog rows of every
    database and role in one query, and one list of Actions secrets per place (one GET each)."""
    with counting() as cost:
        started = time.perf_counter()
        with psycopg.connect(dsn, autocommit=True) as conn:
            rows = conn.execute(CATALOG, (names,)).fetchall()
        listed = [client.requester.requestJsonAndCheck("GET", f"{place}/secrets")[1] for place in places]
        elapsed = time.perf_counter() - started
    assert len(rows) == len(names) and all(row[1] for row in rows)
    assert all(any(s["name"] == "DATABASE_URL" for s in found["secrets"]) for found in listed)
    return cost(elapsed)


def drop(dsn: str, names: list[str]) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        for name in names:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--services", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    dsn = os.environ.get("PAVED_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
    with psycopg.connect(dsn) as conn:
        version = str(conn.info.server_version // 10000)
    tag = uuid.uuid4().hex[:6]
    services = [f"svc-{tag}-{i}" for i in range(args.services)]
    databases = {f"db-{tag}-{i}": services[i % len(services)] for i in range(args.count)}
    plain = [f"plain-{tag}-{i}" for i in range(args.count)]
    places = [f"/repos/acme/{s}/actions" for s in services] + \
             [f"/repos/acme/{s}/environments/production" for s in services]
    with tempfile.TemporaryDirectory(prefix="paved-bench-db-") as scratch:
        folder = Path(scratch)
        root = platform_repo(folder, services, databases, version)
        head = git(root, "rev-parse", "HEAD").strip()
        try:
            with Sandbox.start(folder / "forge") as forge:
                forge.create_user("alice")
                forge.create_org("acme", owners=["alice"])
                app = forge.create_app("acme", "paved", permissions={
                    "administration": "write", "secrets": "write", "metadata": "read"})
                forge.install_app(app.id, "acme")
                for service in services:
                    forge.create_repo("acme", service, private=True)
                installation = installation_of(forge.api_url, app.id, app.private_key, f"acme/{services[0]}")
                client = installation_client(forge.api_url, app.id, app.private_key, installation, polite=False)
                assert isinstance(client.requester.auth, Auth.AppInstallationAuth)
                for service in services:
                    client.get_repo(f"acme/{service}").create_environment("production")
                head_tree = GitTree(root, head)
                planned = plan_requests(MemoryTree({}), head_tree, store=SQLiteCatalogueIndex(),
                                        rules=load_rules(head_tree))
                if planned.plan.errors:
                    print(f"the benchmark's catalogue has errors: {planned.plan.errors[0].message}")
                    return 1
                provider = DatabaseProvider({VARIABLE: dsn}.get, folder / "data", GitHubSecrets(client))
                target = Target("acme", "acme/platform", head_tree, head, followed=dict(planned.plan.followed),
                                config=RepoConfig(providers={"postgres": {"connectionEnv": VARIABLE}}))

                def apply(expected: str) -> Cost:
                    with counting(provider) as cost:
                        started = time.perf_counter()
                        results = apply_plan(planned.plan, planned.before, planned.after, [provider], target)
                        elapsed = time.perf_counter() - started
                    mine = [r for r in results if r.resource.startswith("Database/")]
                    wrong = [r for r in mine if r.status != expected]
                    if wrong:
                        raise SystemExit(f"{len(wrong)} databases were {wrong[0].status}, not {expected}: "
                                         f"{wrong[0].message}")
                    return cost(elapsed)

                created = create_plainly(dsn, plain)
                drop(dsn, plain)
                first = apply("applied")
                again: list[Cost] = []
                read: list[Cost] = []
                for _ in range(args.repeat):
                    again.append(apply("unchanged"))
                    read.append(read_plainly(dsn, list(databases), client, places))
                head_tree.close()
        finally:
            drop(dsn, [*plain, *databases])
    no_op = statistics.median(c.seconds for c in again)
    script = statistics.median(c.seconds for c in read)
    ratio = no_op / script
    print(f"{args.count} databases over {args.services} services (each with one environment), PostgreSQL {version}; "
          f"re-apply and script: median of {args.repeat}")
    print("| measurement | Paved | one-connection script | ratio | target |")
    print("| --- | --- | --- | --- | --- |")
    print(f"| first apply: {args.count} databases made | {first.seconds:.2f} s | `CREATE DATABASE` ×{args.count}: "
          f"{created.seconds:.2f} s | {first.seconds / created.seconds:.2f}x | (reported) |")
    print(f"| no-op re-apply of {args.count} databases | {no_op:.3f} s | the same state read: {script:.3f} s | "
          f"{ratio:.2f}x | ≤ {TARGET_RATIO:g}x: {'met' if ratio <= TARGET_RATIO else 'MISSED'} |")
    print()
    print("| run | connections opened | SQL reads | SQL writes | forge requests |")
    print("| --- | --- | --- | --- | --- |")
    print(f"| `CREATE DATABASE` ×{args.count} | {created.connections} | – | {args.count} | 0 |")
    print(f"| Paved's first apply | {first.connections} | {first.reads} | {first.writes} | {first.requests} |")
    print(f"| Paved's no-op re-apply (each) | {again[-1].connections} | {again[-1].reads} | {again[-1].writes} | "
          f"{again[-1].requests} |")
    print(f"| the script reading the same state | {read[-1].connections} | 1 | 0 | {read[-1].requests} |")
    return 0 if ratio <= TARGET_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
