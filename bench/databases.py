"""Applying 200 databases in one merge, then applying the same state again, on this machine's PostgreSQL.

Usage: python bench/databases.py [--count N] [--services N]

A platform repo gets one commit with N `Database` requests spread over a few services (each with a
production environment), and Paved plans it from the empty catalogue and applies it with the database
provider, as it would after the merge: role, database, limits, PUBLIC revoked, a generated password,
`DATABASE_URL` sealed and set on each service's repository and environment of the local sandbox forge
(over real HTTP). Then the same state is applied again, which must take no step and issue no DDL.
Reported: the time of each apply and the SQL statements it sent (reads and writes). Every database is
uniquely named and dropped at the end.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg
from github import Auth
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
from bot.providers.database import DatabaseProvider
from bot.providers.github.secrets import GitHubSecrets
from bot.rules import load_rules
from bot.sandbox import Sandbox

PROJECT = Path(__file__).resolve().parent.parent
VARIABLE = "PAVED_BENCH_POSTGRES_DSN"

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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--services", type=int, default=10)
    args = parser.parse_args()
    dsn = os.environ.get("PAVED_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
    with psycopg.connect(dsn) as conn:
        version = str(conn.info.server_version // 10000)
    tag = uuid.uuid4().hex[:6]
    services = [f"svc-{tag}-{i}" for i in range(args.services)]
    databases = {f"db-{tag}-{i}": services[i % len(services)] for i in range(args.count)}
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
                figures = []
                for label in ("first apply (creates everything)", "second apply (same state)"):
                    before = (provider.statements.reads, provider.statements.writes)
                    started = time.perf_counter()
                    results = apply_plan(planned.plan, planned.before, planned.after, [provider], target)
                    elapsed = time.perf_counter() - started
                    mine = [r for r in results if r.resource.startswith("Database/")]
                    failed = [r for r in mine if r.status == "failed"]
                    if failed:
                        print(f"{label}: {len(failed)} failed, first: {failed[0].message}")
                        return 1
                    figures.append((label, elapsed, provider.statements.reads - before[0],
                                    provider.statements.writes - before[1],
                                    sum(r.status == "applied" for r in mine),
                                    sum(r.status == "unchanged" for r in mine)))
                head_tree.close()
        finally:
            with psycopg.connect(dsn, autocommit=True) as conn:
                for name in databases:
                    conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
                    conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))
    print(f"{args.count} databases over {args.services} services (each with one environment), PostgreSQL {version}")
    print("| apply | time | SQL reads | SQL writes (DDL, grants, comments) | applied | unchanged |")
    print("| --- | --- | --- | --- | --- | --- |")
    for label, elapsed, reads, writes, applied, unchanged in figures:
        print(f"| {label} | {elapsed:.1f} s | {reads} | {writes} | {applied} | {unchanged} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
