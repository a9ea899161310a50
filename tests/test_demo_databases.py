"""The demo's database is real: a SQLite file on a bare laptop, a PostgreSQL database when
PAVED_POSTGRES_DSN is set, and in both cases only the service's repository holds its URL."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg

PROJECT = Path(__file__).resolve().parent.parent


def demo(**environ: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PAVED_POSTGRES_DSN"}
    return subprocess.run([sys.executable, "-m", "bot.cli", "demo"], capture_output=True, text=True, cwd=PROJECT,
                          timeout=300, env={**env, **environ})


def test_with_a_server_the_demo_makes_a_postgresql_database_and_drops_it_afterwards(postgres_dsn: str) -> None:
    done = demo(PAVED_POSTGRES_DSN=postgres_dsn)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "run `CREATE DATABASE \"search-db-" in done.stdout
    assert "DATABASE_URL set on acme/search and its production environment (postgresql://" in done.stdout
    with psycopg.connect(postgres_dsn) as conn:
        names = [row[0] for row in conn.execute("SELECT datname FROM pg_database")]
    made = [line for line in done.stdout.splitlines() if "PostgreSQL database search-db-" in line]
    assert made and not any(made[0].split("PostgreSQL database ")[1].split()[0] == n for n in names)
