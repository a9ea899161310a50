"""`paved init`: the files of a new platform repo, and what this Paved's starter rules would change in one.

A new platform repo is Paved's starter rules (schemas/, templates/, the workflows) with a commented
`paved.yaml`, a first Team for the platform team, CODEOWNERS for the rule folders and a README for the
people who will ask for things through it. Nothing here writes: the command line checks the files and
writes them only into a folder that holds none of them.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from bot import starter
from bot.errors import UsageError

# GitHub's own rules for names, checked before anything is written (the schemas check them again).
LOGIN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}$")
TEAM = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
CODEOWNERS = ".github/CODEOWNERS"
# The workflows a platform repo may have adopted from Paved; `paved init` writes the first two.
ADOPTABLE_WORKFLOWS = (*starter.WORKFLOWS, ".github/workflows/paved-check.yml")


@dataclass(frozen=True, slots=True)
class NewRepo:
    """Who the new platform repo is for: its GitHub organisation (when known) and its platform team."""

    organization: str | None
    team: str
    maintainers: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.organization is not None and not LOGIN.match(self.organization):
            raise UsageError(f"--org {self.organization!r} is not a GitHub organisation name",
                             hint="Letters, digits and single hyphens, as in the organisation's URL.")
        if not TEAM.match(self.team):
            raise UsageError(f"--team {self.team!r} is not a team name Paved accepts",
                             hint="1 to 63 lowercase letters, digits and '-', starting with a letter.")
        if not self.maintainers:
            raise UsageError("the platform team needs at least one maintainer",
                             hint="Name one with --maintainer LOGIN.")
        for login in self.maintainers:
            if not LOGIN.match(login):
                raise UsageError(f"--maintainer {login!r} is not a GitHub login",
                                 hint="Letters, digits and single hyphens, as in the person's GitHub URL.")


def files(repo: NewRepo) -> dict[str, bytes]:
    """Every file of the new platform repo, by its path in the repo."""
    found = {path: source.read_bytes() for path, source in starter.rules().items()}
    found["paved.yaml"] = _settings(repo).encode()
    found[f"catalog/teams/{repo.team}.yaml"] = _team(repo).encode()
    found[CODEOWNERS] = _codeowners(repo).encode()
    found["README.md"] = _readme(repo).encode()
    return found


def existing(folder: Path, paths: Iterable[str]) -> list[str]:
    """The paths that `folder` already has something at (a file, a folder, a link), or that a file or a
    link stands in the way of (writing through a linked folder would write outside the repo)."""
    taken: list[str] = []
    for path in paths:
        target = folder / path
        above = [folder / parent for parent in Path(path).parents if parent != Path(".")]
        if target.exists() or target.is_symlink() or any(
                parent.is_symlink() or (parent.exists() and not parent.is_dir()) for parent in above):
            taken.append(path)
    return taken


def write(folder: Path, found: Mapping[str, bytes]) -> None:
    """Write the files into `folder`, never over anything (`existing` said there was nothing)."""
    for path, data in found.items():
        target = folder / path
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("xb") as out:  # "x": a file that appeared meanwhile is not overwritten
            out.write(data)


@dataclass(frozen=True, slots=True)
class StarterUpgrade:
    """What this Paved's starter rules would change in a platform repo: a patch `git apply` takes."""

    patch: str
    changed: tuple[str, ...]
    added: tuple[str, ...]
    kept: tuple[str, ...]  # the repo's own rule files, which the starter does not have: left as they are


def upgrade(folder: Path) -> StarterUpgrade:
    """Compare the repo's schemas/, templates/ and adopted workflows with this Paved's starter."""
    theirs = starter.rules()
    base = starter.root()
    for workflow in ADOPTABLE_WORKFLOWS:
        if workflow not in theirs and (folder / workflow).is_file():
            theirs[workflow] = base / workflow
    ours = {path: folder / path for folder_name in starter.RULE_FOLDERS
            for path in _files_under(folder, folder_name)}
    patch: list[str] = []
    changed: list[str] = []
    added: list[str] = []
    for path, source in sorted(theirs.items()):
        new = source.read_bytes()
        target = folder / path
        old = target.read_bytes() if target.is_file() else None
        if old == new:
            continue
        (changed if old is not None else added).append(path)
        patch.append(_file_patch(path, old, new))
    kept = tuple(sorted(path for path in ours if path not in theirs))
    return StarterUpgrade("".join(patch), tuple(changed), tuple(added), kept)


def _files_under(folder: Path, name: str) -> list[str]:
    base = folder / name
    if not base.is_dir():
        return []
    return [path.relative_to(folder).as_posix() for path in sorted(base.rglob("*"))
            if path.is_file() and "__pycache__" not in path.parts and ".git" not in path.parts]


def _file_patch(path: str, old: bytes | None, new: bytes) -> str:
    """One file's change as git writes it, so `paved init --upgrade | git apply` takes it."""
    header = [f"diff --git a/{path} b/{path}\n"]
    if old is None:
        header.append("new file mode 100644\n")
    try:
        before = old.decode("utf-8").splitlines(keepends=True) if old is not None else []
        after = new.decode("utf-8").splitlines(keepends=True)
    except UnicodeDecodeError:
        return "".join(header) + f"Binary files {'a/' + path if old is not None else '/dev/null'} and b/{path} differ\n"
    lines = difflib.unified_diff(before, after, "/dev/null" if old is None else f"a/{path}", f"b/{path}")
    body: list[str] = []
    for line in lines:
        body.append(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n")
    return "".join(header + body)


def _settings(repo: NewRepo) -> str:
    github = (f"github:\n  organization: {repo.organization}\n" if repo.organization else
              "# github:\n#   organization: acme\n")
    return f"""\
# Paved's settings for this platform repo. Every key is optional: without one, Paved does what the
# comment above it says. Changes to this file are platform changes: the platform owners approve them.

# The least permission on this repository that lets someone run `/paved plan` and `/paved retry`.
commands:
  permission: write

approvals:
  # Changes to resources of these tiers wait for their owning teams' approval.
  tiers: [production, critical]
  # The teams that approve changes to the rules (schemas/, templates/, paved.yaml, .github/) and new teams.
  platformOwners: [{repo.team}]

# The organisation where Service repositories are created (default: the owner of this repository).
{github}
# Databases: PostgreSQL on the server whose connection string is in the environment variable named here
# (set where Paved runs, never in git). Without it, databases are SQLite files, fit for a trial only.
# providers:
#   postgres:
#     connectionEnv: PAVED_POSTGRES_DSN
"""


def _team(repo: NewRepo) -> str:
    from bot.yamlio import dump_request  # ruamel.yaml: only `paved init` and `paved new` write YAML

    return dump_request({
        "apiVersion": "paved/v1",
        "kind": "Team",
        "metadata": {"name": repo.team, "owner": repo.team, "description": "Runs Paved and the golden paths."},
        # Two lists, not one list twice: the YAML writer would make it an anchor and an alias.
        "spec": {"displayName": "Platform", "members": list(repo.maintainers), "maintainers": list(repo.maintainers),
                 "budget": {"monthly": 500}},
    }, schema_comment="../../schemas/kinds/team.json")


def _codeowners(repo: NewRepo) -> str:
    owner = f"@{repo.organization or 'ORG'}/{repo.team}"
    rules = "".join(f"{'# ' if repo.organization is None else ''}{path:<12} {owner}\n"
                    for path in ("/schemas/", "/templates/", "/paved.yaml", "/.github/"))
    missing = ("# Name your GitHub organisation in place of ORG and remove the '# ' before each line\n"
               "# (or run `paved init --org ORG` in an empty folder).\n") if repo.organization is None else ""
    return (f"# The platform team reviews every change to the rules, as Paved's approvals also ask\n"
            f"# (paved.yaml: approvals.platformOwners). Requests under catalog/ are approved through Paved by\n"
            f"# the teams that own what they change.\n{missing}{rules}")


def _readme(repo: NewRepo) -> str:
    where = f"{repo.organization}'s" if repo.organization else "The"
    return f"""\
# {where} platform

Ask for a service, a database, an environment or access by adding a request (a YAML file) under
`catalog/` in a pull request. [Paved](https://github.com/paved-dev/paved) checks it against this
repository's rules, comments with a plan of exactly what will change and what it costs, waits for the
owning teams' approval, and makes it real once the pull request is merged.

## Ask for something

1. Install Paved: `pipx install paved` (or `uv tool install paved`).
2. Write the request: `paved new Service my-service --owner my-team` writes
   `catalog/services/my-service.yaml` and lists what is left to fill in. `paved explain Service` describes
   every field (`Database`, `Environment`, `Access` and `Team` likewise).
3. Check it: `paved validate` (every error names its file, line and field).
4. Open a pull request. Paved answers with the plan; the teams that own what it changes approve it; merge.

## What is here

| path | what it holds |
| --- | --- |
| `catalog/` | the requests: teams, services, databases, environments, access |
| `schemas/kinds/` | what a request of each kind may say |
| `schemas/policies/` | the guardrails, each with cases that must pass and fail (`paved test`) |
| `schemas/standards/` | what services should be as they exist, scored at every reconcile (`paved standards`) |
| `schemas/prices.yaml` | monthly prices, for plan costs and team budgets |
| `templates/` | the golden paths new services are created from |
| `paved.yaml` | Paved's settings for this repository |
| `.github/` | the workflows that run Paved, and who reviews rule changes |

Changes to `schemas/`, `templates/`, `paved.yaml` and `.github/` are platform changes: the
`{repo.team}` team approves them.

## For the platform team

- Connect Paved: a GitHub App and either `paved serve`, or the workflows in `.github/workflows/` ("Paved
  with nothing to host" in Paved's README), and make `paved/plan`, from the App, the required check of
  the default branch.
- Change the rules in pull requests like any request; `paved test` runs the guardrails' cases.
- After installing a newer Paved, `paved init --upgrade` shows what its starter rules would change here.
"""
