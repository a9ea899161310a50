"""Golden paths over time: which template a request follows, how it takes the template's upgrades, and
the record a scaffolded project keeps of what it was rendered from.

A project Paved scaffolds records, in `.paved/scaffold.json`, the template's folder name, the platform
repo's commit it was rendered from and the answers it was rendered with (as cruft's `.cruft.json` does).
A later template change, or a request change that alters the answers, is offered to the project as an
upgrade pull request: the template rendered at the recorded commit with the recorded answers and at the
new commit with the new answers, the difference merged into the project by git.

The record lives in the service repository, which its owning team may write: `read_record` treats it as
hostile data (a size limit, a closed shape, a full commit id, answers of plain JSON values only), and
whoever renders from it must still check that the commit is one the platform repo merged.

A request chooses how it takes upgrades in its template section (the kind's `x-paved` `template`
pointer, `spec.template` for a `Service`): `updates: auto` (the default) gets an upgrade pull request
for every change, `updates: manual` gets none, and `pin: <commit>` keeps the project on the template as
it was at that platform commit until the pin moves.

Pure: no git, no network. The adapters render and merge; this module says what and whether.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from bot.errors import PavedError
from bot.kinds import KindDescription, value_at
from bot.model import Resource

RECORD_PATH = ".paved/scaffold.json"
RECORD_VERSION = 1
# The record is a few hundred bytes; anything far larger is not Paved's.
RECORD_LIMIT = 256 * 1024
UPGRADE_LABEL = "paved:upgrade"
UPGRADE_LABEL_COLOR = "0e8a16"
UPGRADE_LABEL_PURPOSE = "Paved: the golden path this service was made from changed"
# One branch per repository: a service follows one template, and a newer upgrade replaces an older one.
UPGRADE_BRANCH = "paved/upgrade"

Updates = Literal["auto", "manual"]
UPDATES: tuple[Updates, ...] = ("auto", "manual")
_COMMIT = re.compile(r"^[0-9a-f]{40}$")
_TEMPLATE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class RecordUnreadable(PavedError):
    """Raised when a project's `.paved/scaffold.json` is missing a field, too big, or not what Paved
    writes: the project is not upgraded from it (it may have been edited by hand)."""


@dataclass(frozen=True, slots=True)
class ScaffoldRecord:
    """What a project was rendered from: the template's folder name, the platform repo's commit (40 hex
    digits) and every answer of the template's `cookiecutter.json` it was rendered with."""

    template: str
    commit: str
    answers: Mapping[str, Any] = field(default_factory=dict)

    def text(self) -> str:
        """The record as Paved writes it into a project (stable layout, so a re-render makes no diff)."""
        record = {"version": RECORD_VERSION, "template": self.template, "commit": self.commit,
                  "answers": dict(self.answers)}
        return json.dumps(record, indent=2, ensure_ascii=False) + "\n"


def read_record(data: bytes | str) -> ScaffoldRecord:
    """The record in `data` (the bytes of a project's `.paved/scaffold.json`), checked for shape."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    if len(raw) > RECORD_LIMIT:
        raise RecordUnreadable(f"{RECORD_PATH} is {len(raw)} bytes, more than Paved ever writes ({RECORD_LIMIT})")
    try:
        record = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise RecordUnreadable(f"{RECORD_PATH} is not JSON: {exc}") from None
    if not isinstance(record, dict):
        raise RecordUnreadable(f"{RECORD_PATH} holds a {type(record).__name__}, not an object")
    if record.get("version") != RECORD_VERSION:
        raise RecordUnreadable(f"{RECORD_PATH} has version {record.get('version')!r}; this Paved reads "
                               f"version {RECORD_VERSION}")
    template, commit, answers = record.get("template"), record.get("commit"), record.get("answers")
    if not isinstance(template, str) or not _TEMPLATE_NAME.match(template):
        raise RecordUnreadable(f"{RECORD_PATH} names no usable template ({template!r})")
    if not isinstance(commit, str) or not _COMMIT.match(commit):
        raise RecordUnreadable(f"{RECORD_PATH} names no full commit id ({commit!r})")
    if not isinstance(answers, dict) or not all(isinstance(k, str) and _plain(v) for k, v in answers.items()):
        raise RecordUnreadable(f"{RECORD_PATH} has answers that are not an object of plain values")
    return ScaffoldRecord(template, commit, answers)


def _plain(value: Any) -> bool:
    """JSON values a template's answers can be: text, numbers, booleans, null, and lists and objects of them
    (cookiecutter's dictionary variables)."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return True
    if isinstance(value, list):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    return False


@dataclass(frozen=True, slots=True)
class Following:
    """The golden path a request follows: the template's folder name, how it takes upgrades, and the
    platform commit it is pinned to (None: it follows the default branch)."""

    template: str
    updates: Updates = "auto"
    pin: str | None = None

    @property
    def takes_upgrades(self) -> bool:
        return self.updates == "auto"


def following(resource: Resource, described: KindDescription) -> Following | None:
    """The template `resource` follows, if its kind names one (`x-paved` `template`) and it chose one."""
    if described.template is None:
        return None
    section = value_at(resource.data, described.template)
    if not isinstance(section, dict) or not isinstance(section.get("name"), str) or not section["name"]:
        return None
    updates = section.get("updates", "auto")
    pin = section.get("pin")
    return Following(template=section["name"], updates=updates if updates in UPDATES else "auto",
                     pin=pin if isinstance(pin, str) and pin else None)


def answers_changed(before: Resource, after: Resource, described: KindDescription) -> bool:
    """Whether a request change alters what its template is rendered with: its template section (name,
    parameters, pin), or a field the kind says its answers come from (`x-paved` `templateAnswers`: its
    name, description, owner, tier ...)."""
    pointers = [p for p in (described.template, *described.template_answers) if p]
    if before.name != after.name:
        return True
    return any(value_at(before.data, p) != value_at(after.data, p) for p in pointers)
