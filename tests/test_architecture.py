"""The shape of the code, held by tests: imports point inward, and the fast paths stay light."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PROJECT

BOT = PROJECT / "bot"
# The pure core: plain functions over data. It may use parsing and validation libraries, never the
# outside world's clients, files or databases, and never the adapters or entry points that wrap it.
CORE = ["model", "errors", "yamlio", "rules", "kinds", "validate", "catalogue", "plan", "policy_tests", "explain",
        "render", "catalogue_view", "deployments", "forms"]
OUTSIDE_WORLD = {"github", "git", "fastapi", "starlette", "uvicorn", "cookiecutter", "psycopg", "huey", "redis",
                 "requests", "httpx", "urllib3", "socket", "http",
                 "sqlite3", "os", "pathlib", "shutil", "tempfile", "glob", "subprocess"}
ENTRY_POINTS_AND_ADAPTERS = {"bot.adapters", "bot.cli", "bot.demo", "bot.sandbox", "bot.settings", "bot.web",
                             "bot.handlers", "bot.providers", "bot.files", "bot.composition"}
# The catalogue index's tables, temporary tables and indexes: named in SQL by its owner alone.
INDEX_OWNER = BOT / "adapters" / "catalogue_index.py"
INDEX_SQL = re.compile(r"\b(FROM|INTO|UPDATE|JOIN|TABLE(?: IF NOT EXISTS)?)\s+(temp\.)?"
                       r"(meta|results|states|files|entries|refs|checks|carry|hidden_\w*|paved_view_\w+)\b"
                       r"|\b(entries|refs|checks)_by_\w+")


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


@pytest.mark.parametrize("module", core_modules(), ids=lambda p: p.relative_to(PROJECT).as_posix())
def test_the_core_opens_no_files(module: Path) -> None:
    calls = [node.func.id for node in ast.walk(ast.parse(module.read_text(encoding="utf-8")))
             if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)]
    assert "open" not in calls


# The kinds Paved's own schemas describe. Everything the core knows about a kind comes from its schema's
# `x-paved` section (bot/kinds.py), so none of these names may appear in the core as a string, nor as
# the start of an identity (`"Team/..."`).
BUILT_IN_KINDS = ("Team", "Service", "Database", "Environment", "Access")
# Beyond the core, the modules that read kind descriptions rather than naming kinds.
KIND_AGNOSTIC = [BOT / "audit.py", BOT / "approvals.py", BOT / "handlers" / "pull_request.py", BOT / "export.py"]


def _strings(path: Path) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            found.append((node.lineno, node.value))
    return found


@pytest.mark.parametrize("module", core_modules() + KIND_AGNOSTIC, ids=lambda p: p.relative_to(PROJECT).as_posix())
def test_the_core_names_no_kind(module: Path) -> None:
    named = [(line, text) for line, text in _strings(module)
             if text in BUILT_IN_KINDS or any(text.startswith(f"{kind}/") for kind in BUILT_IN_KINDS)]
    assert named == [], f"{module.name} names kinds; describe them in x-paved instead (docs/kinds.md)"


def test_only_the_catalogue_index_speaks_its_sql() -> None:
    speakers = sorted(path.relative_to(PROJECT).as_posix() for path in BOT.rglob("*.py")
                      if path != INDEX_OWNER and INDEX_SQL.search(path.read_text(encoding="utf-8")))
    assert speakers == []
    assert INDEX_SQL.search(INDEX_OWNER.read_text(encoding="utf-8"))  # the pattern still finds what it looks for


def _module_name(path: Path) -> str:
    parts = path.relative_to(PROJECT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _top_level_imports(path: Path, modules: set[str]) -> set[str]:
    """The bot modules `path` imports when it is imported: its top-level imports, those under a
    top-level `if` or `try` too, but neither those under `if TYPE_CHECKING:` nor those inside functions."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.If):
                test = node.test
                if not ((isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
                        or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")):
                    visit(node.body)
                    visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body)
                for handler in node.handlers:
                    visit(handler.body)
                visit(node.orelse)
                visit(node.finalbody)
            elif isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parent = package.split(".")[:len(package.split(".")) - (node.level - 1)]
                    base = ".".join(parent + ([node.module] if node.module else []))
                found.add(base)
                found.update(f"{base}.{alias.name}" for alias in node.names)
    visit(ast.parse(path.read_text(encoding="utf-8")).body)
    # Importing a module runs its packages' __init__ first.
    found |= {".".join(m.split(".")[:i]) for m in set(found) for i in range(1, m.count(".") + 1)}
    return {m for m in found if m in modules and m != name and not name.startswith(m + ".")}


def test_the_bot_package_has_no_import_cycle() -> None:
    """No import inside a function is there to break a cycle: at module level, bot's imports form none."""
    paths = {_module_name(path): path for path in BOT.rglob("*.py")}
    graph = {name: _top_level_imports(path, set(paths)) for name, path in paths.items()}
    done: set[str] = set()

    def cycle_from(name: str, trail: list[str]) -> list[str] | None:
        if name in trail:
            return [*trail[trail.index(name):], name]
        if name in done:
            return None
        for imported_name in sorted(graph[name]):
            found = cycle_from(imported_name, [*trail, name])
            if found:
                return found
        done.add(name)
        return None

    cycles = [c for c in (cycle_from(name, []) for name in sorted(graph)) if c]
    assert cycles == [], " -> ".join(cycles[0]) if cycles else ""
    assert graph["bot.cli"] >= {"bot.errors"} and graph["bot.plan"] >= {"bot.catalogue"}  # the walk still sees


def test_validate_and_plan_import_only_what_they_use(platform_repo: object) -> None:
    heavy = ["fastapi", "github", "cookiecutter", "git", "ruamel", "jsonschema"]
    code = ("import sys; from bot.cli import main; main(['validate', '--repo', sys.argv[1]]); "
            "main(['plan', '--repo', sys.argv[1], '--base', 'HEAD']); "
            f"print(sorted(m for m in {heavy!r} if m in sys.modules))")
    root = platform_repo.root  # type: ignore[attr-defined]
    done = subprocess.run([sys.executable, "-c", code, str(root)], capture_output=True, text=True, check=True)
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_validate_loads_neither_the_service_the_sandbox_nor_ci(platform_repo: object) -> None:
    """The commands other modules define are added to `paved`'s parser only when asked for."""
    elsewhere = ["bot.web", "bot.sandbox", "bot.ci", "huey", "redis", "uvicorn", "fastapi"]
    code = ("import sys; from bot.cli import main; main(['validate', '--repo', sys.argv[1]]); "
            f"print(sorted(m for m in {elsewhere!r} if m in sys.modules))")
    root = platform_repo.root  # type: ignore[attr-defined]
    done = subprocess.run([sys.executable, "-c", code, str(root)], capture_output=True, text=True, check=True)
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_no_class_name_is_defined_twice_in_the_bot_package() -> None:
    """One name, one class: a reader (or a traceback) naming `PullRequest` means one thing in Paved."""
    defined: dict[str, list[str]] = {}
    for path in sorted(BOT.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                defined.setdefault(node.name, []).append(f"{path.relative_to(PROJECT).as_posix()}:{node.lineno}")
    twice = {name: places for name, places in defined.items() if len(places) > 1}
    assert twice == {}
    assert "SandboxGitHub" in defined and "PullRequest" in defined  # the walk still sees what it looks for
