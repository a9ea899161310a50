"""`paved demo`: Paved's main job on its embedded defaults, offline.

It builds a throwaway platform repo from the catalogue, schemas and templates bundled with Paved,
validates it, then applies the bundled example change (`examples/new-search-service/`) on a branch
and prints the plan a pull request would get. It exits 0 only if the bundled catalogue is clean and
the example change plans without errors.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from bot.adapters.repo import GitTree, commit_all, init_repo, switch_branch
from bot.errors import ConfigurationError
from bot.plan import make_plan, validate_tree
from bot.render import text

PROJECT = Path(__file__).resolve().parent.parent
EXAMPLE = "examples/new-search-service"
BUNDLED = ("catalog", "schemas", "templates")


def build_demo_repo(folder: Path, project: Path = PROJECT) -> tuple[str, str]:
    """Lay out the platform repo in `folder`: `main` as bundled, `new-search-service` with the change."""
    missing = [name for name in (*BUNDLED, EXAMPLE) if not (project / name).is_dir()]
    if missing:
        raise ConfigurationError(f"the bundled {', '.join(missing)} cannot be found next to Paved in {project}",
                                 hint="Run the demo from a checkout of Paved.")
    init_repo(folder)
    for name in BUNDLED:
        shutil.copytree(project / name, folder / name)
    base = commit_all(folder, "Platform catalogue as bundled with Paved")
    switch_branch(folder, "new-search-service", create=True)
    example = project / EXAMPLE
    delete_list = example / "DELETE"
    for source in sorted((example / "catalog").rglob("*")):
        if source.is_file():
            target = folder / source.relative_to(example)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
    if delete_list.exists():
        for line in delete_list.read_text(encoding="utf-8").splitlines():
            if line.strip() and not line.startswith("#"):
                (folder / line.strip()).unlink(missing_ok=True)
    head = commit_all(folder, "Request the search service, its database and environment")
    return base, head


def run_demo(args: argparse.Namespace) -> int:
    color = sys.stdout.isatty()
    with tempfile.TemporaryDirectory(prefix="paved-demo-") as scratch:
        folder = Path(args.keep) if args.keep else Path(scratch) / "platform"
        base, head = build_demo_repo(folder)
        with GitTree(folder, base) as base_tree, GitTree(folder, head) as head_tree:
            print(f"== 1. The bundled catalogue on main, validated ({folder})")
            validation = validate_tree(base_tree)
            print(text.render_findings(validation.findings, color=color, files_checked=validation.files_checked),
                  end="")
            print()
            print("== 2. A pull request: new-search-service → main")
            plan = make_plan(base_tree, head_tree)
        print(text.render(plan, color=color), end="")
        if args.keep:
            print(f"\nThe demo repo stays in {folder}: try `paved plan --repo {folder} --base main "
                  f"--head new-search-service --format markdown`.")
    return 0 if not validation.errors and plan.ok else 1
