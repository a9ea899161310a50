"""Generate a realistic platform repo with N resources, one request per file, for the benchmarks.

Usage: python bench/generate.py N FOLDER   (FOLDER becomes a git repo on branch `main`)

The mix follows a real catalogue: per team of 10 services, each service has a database, every other
service a production environment, every fifth an access grant for a neighbouring team.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
IDENTITY = {"GIT_AUTHOR_NAME": "Bench", "GIT_AUTHOR_EMAIL": "bench@localhost",
            "GIT_COMMITTER_NAME": "Bench", "GIT_COMMITTER_EMAIL": "bench@localhost"}

TEAM = """\
# yaml-language-server: $schema=../../schemas/kinds/team.json
apiVersion: paved/v1
kind: Team
metadata:
  name: {team}
  owner: {team}
  description: Team {team} builds and runs its services.
spec:
  members: [alice-{n}, bob-{n}, carol-{n}]
  maintainers: [alice-{n}, bob-{n}]
  budget:
    monthly: 100000
"""

SERVICE = """\
# yaml-language-server: $schema=../../schemas/kinds/service.json
apiVersion: paved/v1
kind: Service
metadata:
  name: {service}
  owner: {team}
  description: The {service} service of team {team}.
  labels:
    domain: d{n}
spec:
  template:
    name: {template}
    parameters:
      python_version: "3.12"
  repository:
    visibility: private
  tier: {tier}
  lifecycle: production
"""

DATABASE = """\
# yaml-language-server: $schema=../../schemas/kinds/database.json
apiVersion: paved/v1
kind: Database
metadata:
  name: {service}-db
  owner: {team}
  description: Data of {service}.
spec:
  engine: postgres
  version: "16"
  size: {size}
  service: {service}
  backups:
    enabled: true
    retentionDays: 14
  deletionProtection: true
"""

ENVIRONMENT = """\
# yaml-language-server: $schema=../../schemas/kinds/environment.json
apiVersion: paved/v1
kind: Environment
metadata:
  name: {service}-production
  owner: {team}
  description: Production deployments of {service}.
spec:
  service: {service}
  name: production
  requiredReviewers: [{team}]
  waitTimer: 5
  deploymentBranches: [main]
"""

ACCESS = """\
# yaml-language-server: $schema=../../schemas/kinds/access.json
apiVersion: paved/v1
kind: Access
metadata:
  name: {other}-reads-{service}
  owner: {team}
  description: Team {other} reads the code of {service}.
spec:
  team: {other}
  service: {service}
  permission: pull
"""


def requests(count: int) -> list[tuple[str, str]]:
    """(path, text) pairs for `count` resources."""
    out: list[tuple[str, str]] = []
    team_index = 0
    while len(out) < count:
        team = f"team-{team_index:04d}"
        other = f"team-{(team_index - 1):04d}" if team_index else team
        out.append((f"catalog/teams/{team}.yaml", TEAM.format(team=team, n=team_index)))
        for s in range(10):
            service = f"svc-{team_index:04d}-{s:02d}"
            fields = {"team": team, "service": service, "n": team_index, "other": other,
                      "template": "worker" if s % 3 == 0 else "fastapi-service",
                      "tier": "critical" if s == 0 else "production", "size": "medium" if s % 4 == 0 else "small"}
            out.append((f"catalog/services/{team}/{service}.yaml", SERVICE.format(**fields)))
            out.append((f"catalog/databases/{team}/{service}-db.yaml", DATABASE.format(**fields)))
            if s % 2 == 0:
                out.append((f"catalog/environments/{team}/{service}-production.yaml", ENVIRONMENT.format(**fields)))
            if s % 5 == 0 and other != team:
                out.append((f"catalog/access/{team}/{other}-reads-{service}.yaml", ACCESS.format(**fields)))
        team_index += 1
    # Keep whole teams' references intact: trim only trailing access grants and environments.
    return out[:count] if count >= 30 else out


def git(folder: Path, *args: str) -> None:
    import os

    subprocess.run(["git", "-C", str(folder), *args], check=True, capture_output=True,
                   env={**os.environ, **IDENTITY})


def generate(count: int, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("schemas", "templates"):
        shutil.copytree(PROJECT / name, folder / name, dirs_exist_ok=True)
    for path, text in requests(count):
        target = folder / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    git(folder, "init", "--quiet", "--initial-branch=main")
    git(folder, "add", "--all")
    git(folder, "commit", "--quiet", "-m", f"{count} resources")
    return folder


if __name__ == "__main__":
    generate(int(sys.argv[1]), Path(sys.argv[2]))
