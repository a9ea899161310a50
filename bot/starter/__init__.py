"""The starter rules that ship with Paved, and where to find them.

A platform repo starts from Paved's own schemas/ (kinds, guardrail policies with their test cases, prices),
templates/ (the golden paths) and workflows (.github/workflows/paved.yml and paved-publish.yml); `paved demo`
also uses the example catalogue (catalog/) and change (examples/new-search-service/). This repository is
itself a platform repo and keeps them at those paths. An installed wheel holds the same paths under
bot/starter/data/ (setup.py says how the build puts them there); a checkout, or an editable install of one,
has no such folder and reads the checkout's own files, so both read the same files.
"""

from __future__ import annotations

from pathlib import Path

from bot.errors import ConfigurationError

PACKAGED = Path(__file__).resolve().parent / "data"
CHECKOUT = Path(__file__).resolve().parent.parent.parent
# What a platform repo adopts from Paved: its rules and the workflows that run Paved in GitHub Actions.
RULE_FOLDERS = ("schemas", "templates")
WORKFLOWS = (".github/workflows/paved.yml", ".github/workflows/paved-publish.yml")
# What the demo adds: the example catalogue and the example pull request.
EXAMPLE_CATALOGUE = "catalog"
EXAMPLE_CHANGE = "examples/new-search-service"


def root() -> Path:
    """The folder holding the starter's schemas/, templates/, catalog/, examples/ and .github/workflows/."""
    for candidate in (PACKAGED, CHECKOUT):
        if (candidate / "schemas" / "kinds").is_dir() and (candidate / "templates").is_dir():
            return candidate
    raise ConfigurationError(
        f"Paved's starter rules are missing: neither {PACKAGED} nor {CHECKOUT} holds schemas/kinds/ and templates/",
        hint="Reinstall Paved (pipx reinstall paved), or run it from a checkout of its repository.")


def files(folder: str) -> dict[str, Path]:
    """Every file of the starter under `folder` (a path like "schemas"), by its path relative to the root."""
    base = root()
    found: dict[str, Path] = {}
    for path in sorted((base / folder).rglob("*")):
        relative = path.relative_to(base)
        if path.is_file() and "__pycache__" not in relative.parts and path.suffix != ".pyc":
            found[relative.as_posix()] = path
    return found


def rules() -> dict[str, Path]:
    """The files a platform repo takes from Paved's starter: schemas, templates and the workflows."""
    found: dict[str, Path] = {}
    for folder in RULE_FOLDERS:
        found.update(files(folder))
    base = root()
    found.update({name: base / name for name in WORKFLOWS})
    return found
