"""The shape of the code, held by tests: imports point inward, and the fast paths stay light."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PROJECT

BOT = PROJECT / "bot"
# The pure core: plain functions over data. It may use parsing and validation libraries, never the
# outside world's clients, and never the adapters or entry points that wrap it.
CORE = ["model", "errors", "yamlio", "rules", "validate", "catalog", "plan", "policy_tests", "explain", "render"]
OUTSIDE_WORLD = {"github", "git", "fastapi", "starlette", "uvicorn", "cookiecutter", "psycopg", "huey", "redis",
                 "requests", "httpx", "urllib3", "socket", "http"}
ENTRY_POINTS_AND_ADAPTERS = {"bot.adapters", "bot.cli", "bot.demo", "bot.sandbox", "bot.settings", "bot.web",
                             "bot.handlers", "bot.providers"}


def core_modules() -> list[Path]:
    found: list[Path] = []
    for name in CORE:
        target = BOT / name
        found += sorted(target.rglob("*.py")) if target.is_dir() else [BOT / f"{name}.py"]
    return found


def imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("module", core_modules(), ids=lambda p: p.relative_to(PROJECT).as_posix())
def test_the_core_imports_neither_adapters_nor_the_outside_world(module: Path) -> None:
    names = imported(module)
    assert not {n for n in names if n.split(".")[0] in OUTSIDE_WORLD}, names
    assert not {n for n in names if any(n == p or n.startswith(p + ".") for p in ENTRY_POINTS_AND_ADAPTERS)}


def test_validate_and_plan_import_only_what_they_use(platform_repo: object) -> None:
    heavy = ["fastapi", "github", "cookiecutter", "git", "ruamel", "jsonschema"]
    code = ("import sys; from bot.cli import main; main(['validate', '--repo', sys.argv[1]]); "
            "main(['plan', '--repo', sys.argv[1], '--base', 'HEAD']); "
            f"print(sorted(m for m in {heavy!r} if m in sys.modules))")
    root = platform_repo.root  # type: ignore[attr-defined]
    done = subprocess.run([sys.executable, "-c", code, str(root)], capture_output=True, text=True, check=True)
    assert done.stdout.strip().splitlines()[-1] == "[]"
