"""Standards, scored from live state: which resources meet what the platform team recommends now.

A standard (`schemas/standards/*.json`, loaded by `bot.rules` as a `Standard`) is a JSON Schema `rule`, in
the language of the guardrail policies, checked not against a request but against each resource's
*document*: its request together with what its provider observed of it at the last reconcile. One
document per resource, plain JSON (so a rule can say anything about it, and docs/standards.md can list
every field):

```
{
  "kind": "Service", "name": "payments-api", "identity": "Service/payments-api",
  "owner": "payments", "tier": "production",          # the kind's x-paved tier pointer; null without one
  "request": {...},                                    # the request as the catalogue has it
  "observed": "found",                                 # or "missing": no such object exists
  "live": {...},                                       # the provider's observed state as JSON; null when missing
  "goldenPath": {                                      # only for a resource that follows a template
    "template": "fastapi-service", "updates": "auto", "pin": null,
    "record": {"template": "fastapi-service", "commit": "<40 hex>"},   # null: no usable record
    "latest": true, "problem": "",                     # why it is not on the latest, in words
    "upgrades": "https://github.com/acme/payments-api/pulls?q=..."     # its upgrade pull requests
  },
  "belongings": {"environments": [{"identity", "name", "request", "observed", "live"}], ...},
  "driftIssues": [{"number": 12, "url": "https://..."}]  # open paved:drift issues about it
}
```

`as_json` is the one way observed state (a provider's frozen dataclasses) becomes JSON. `golden_path`
decides whether a project is on the latest version of its template from the record it keeps and the
template folder's git tree ids, which the caller reads. `score` checks every standard that applies to a
document's kind and tier. A `Scorecard` is what reconcile records, one JSON line in the note of the
platform repo's head under `refs/notes/paved-standards`; the web catalogue, `paved standards` and `paved
stats` read the newest one.

Pure: no git, no network.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote

from bot.golden_paths import RECORD_PATH, UPGRADE_LABEL, Following, ScaffoldRecord
from bot.kinds import KindDescription, value_at
from bot.model import Resource
from bot.rules import Rules, Standard

STANDARDS_REF = "refs/notes/paved-standards"
SCORECARD_VERSION = 1
# A text from a document (a record's problem, written from a hostile file) is shown cut to this length.
DETAIL_LIMIT = 300
_LINK = re.compile(r"^https?://\S+$")

Observation = Literal["found", "missing"]


# -- observed state as JSON -----------------------------------------------------------------------------

def as_json(value: Any) -> Any:
    """`value` (a provider's observed state: frozen dataclasses of text, numbers, mappings, tuples) as plain
    JSON values; field names stay as the dataclass spells them. Sets become sorted lists; anything else JSON
    has no word for becomes its text."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: as_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): as_json(v) for k, v in value.items()}
    if isinstance(value, (set, frozenset)):
        return sorted((as_json(v) for v in value), key=lambda v: json.dumps(v, sort_keys=True))
    if isinstance(value, (list, tuple)):
        return [as_json(v) for v in value]
    return str(value)


# -- the golden path ------------------------------------------------------------------------------------

def golden_path(following: Following, record: ScaffoldRecord | None, problem: str, *, head: str,
                tree_at: Callable[[str], str | None], merged: Callable[[str], bool],
                repository_url: str | None = None) -> dict[str, Any]:
    """Whether a project is on the latest version of the template it follows.

    `record` is what its `.paved/scaffold.json` holds (None: missing or unreadable, `problem` says why).
    Latest means the template's folder has the same git tree at the record's commit as at `head` (the
    platform repo's head), or, for a pinned project, as at its pin: `tree_at(commit)` is that tree's id
    (None when the platform repo has no such commit). `merged(commit)` says whether the platform repo's
    default branch holds the commit: a record naming any other is not taken at its word.
    """
    facts: dict[str, Any] = {"template": following.template, "updates": following.updates, "pin": following.pin,
                             "record": None, "latest": False, "problem": "",
                             "upgrades": _upgrades(repository_url)}
    if record is None:
        facts["problem"] = problem or f"the repository has no {RECORD_PATH}"
        return facts
    facts["record"] = {"template": record.template, "commit": record.commit}
    short = record.commit[:12]
    if record.template != following.template:
        facts["problem"] = (f"it was made from template {record.template}, and the request now names "
                            f"{following.template}")
        return facts
    if not merged(record.commit):
        facts["problem"] = f"{RECORD_PATH} names commit {short}, which the platform repo's default branch does not hold"
        return facts
    ours = tree_at(record.commit)
    wanted_at = following.pin or head
    wanted = tree_at(wanted_at)
    if wanted is None:
        facts["problem"] = f"the pin {wanted_at[:12]} is no commit of the platform repo"
        return facts
    if ours != wanted:
        where = f"its pin {wanted_at[:12]}" if following.pin else "the platform repo's head"
        facts["problem"] = f"it was rendered from templates/{record.template}/ at {short}, which differs at {where}"
        return facts
    facts["latest"] = True
    return facts


def _upgrades(repository_url: str | None) -> str | None:
    if not repository_url or not _LINK.match(repository_url):
        return None
    query = quote(f'is:pr is:open label:"{UPGRADE_LABEL}"', safe="")
    return f"{repository_url.rstrip('/')}/pulls?q={query}"


# -- the document --------------------------------------------------------------------------------------

def document(resource: Resource, described: KindDescription, *, observed: Observation, live: Any,
             golden: Mapping[str, Any] | None = None,
             belongings: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
             drift_issues: Sequence[tuple[int, str]] = ()) -> dict[str, Any]:
    """The document standards are checked against, for one resource (see the module's docstring)."""
    tier = value_at(resource.data, described.tier) if described.tier else None
    found: dict[str, Any] = {
        "kind": resource.kind, "name": resource.name, "identity": resource.identity, "owner": resource.owner,
        "tier": tier if isinstance(tier, str) else None, "request": resource.data, "observed": observed,
        "live": as_json(live) if observed == "found" else None,
        "belongings": {k: list(v) for k, v in (belongings or {}).items()},
        "driftIssues": [{"number": n, "url": u} for n, u in drift_issues],
    }
    if golden is not None:
        found["goldenPath"] = dict(golden)
    return found


def belonging(resource: Resource, *, observed: Observation, live: Any) -> dict[str, Any]:
    """A resource that belongs to another (an Environment of a Service), as its parent's document lists it."""
    return {"identity": resource.identity, "name": resource.name, "request": resource.data, "observed": observed,
            "live": as_json(live) if observed == "found" else None}


# -- scoring -------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Verdict:
    """One standard, for one resource: passed, or failed with what to tell and where to fix it."""

    standard: str
    passed: bool
    message: str = ""
    link: str | None = None


@dataclass(frozen=True, slots=True)
class ResourceScore:
    """One resource's scorecard. `unscored` says why it was not scored this time (nothing observed);
    `latest` whether it is on the latest version of its golden path (None: it follows none, or unscored)."""

    identity: str
    kind: str
    name: str
    owner: str
    tier: str | None
    outcomes: tuple[Verdict, ...] = ()
    unscored: str = ""
    latest: bool | None = None

    @property
    def failed(self) -> tuple[Verdict, ...]:
        return tuple(o for o in self.outcomes if not o.passed)

    @property
    def passed(self) -> tuple[Verdict, ...]:
        return tuple(o for o in self.outcomes if o.passed)


@dataclass(frozen=True, slots=True)
class StandardInfo:
    """A standard as a scorecard keeps it, so that it reads the same after the file changes."""

    id: str
    title: str
    severity: str
    hint: str
    link: str | None = None
    description: str = ""

    @classmethod
    def of(cls, standard: Standard) -> StandardInfo:
        return cls(standard.id, standard.title, standard.severity, standard.fix.hint, standard.fix.link,
                   standard.description)


def _text(value: Any) -> str:
    if not isinstance(value, str):
        return ""
    # One line of printable characters: the text may come from a file the service's team wrote.
    line = "".join(c if c.isprintable() else "?" for c in " ".join(value.split()))
    return line if len(line) <= DETAIL_LIMIT else line[:DETAIL_LIMIT - 1] + "…"


def check(rules: Rules, standard: Standard, doc: Mapping[str, Any]) -> Verdict:
    """`standard` against one document."""
    if rules.standard_validator(standard).is_valid(doc):
        return Verdict(standard.id, True)
    message = standard.message
    detail = _text(value_at(doc, standard.detail)) if standard.detail else ""
    if detail:
        message = f"{message.rstrip('.')}: {detail}"
    link = value_at(doc, standard.fix.link_from) if standard.fix.link_from else None
    link = link if isinstance(link, str) and _LINK.match(link) else standard.fix.link
    return Verdict(standard.id, False, message, link)


def score(rules: Rules, doc: Mapping[str, Any]) -> ResourceScore | None:
    """The standards that apply to the document's kind and tier, checked; None when none applies."""
    kind, tier = str(doc.get("kind", "")), doc.get("tier")
    applying = [s for s in rules.standards if s.applies_to(kind, tier if isinstance(tier, str) else None)]
    if not applying:
        return None
    golden = doc.get("goldenPath")
    latest = bool(golden.get("latest")) if isinstance(golden, Mapping) else None
    return ResourceScore(str(doc.get("identity", "")), kind, str(doc.get("name", "")), str(doc.get("owner", "")),
                         tier if isinstance(tier, str) else None,
                         tuple(check(rules, s, doc) for s in sorted(applying, key=lambda s: s.id)), latest=latest)


def unscored(rules: Rules, resource: Resource, reason: str) -> ResourceScore | None:
    """A resource standards apply to that was not observed this time (changes not applied yet, its provider
    could not read it, the hour's requests ran low): on the scorecard, with why."""
    described = rules.describe(resource.kind)
    tier = value_at(resource.data, described.tier) if described.tier else None
    tier = tier if isinstance(tier, str) else None
    if not any(s.applies_to(resource.kind, tier) for s in rules.standards):
        return None
    return ResourceScore(resource.identity, resource.kind, resource.name, resource.owner, tier, unscored=reason)


# -- the scorecard, as recorded -------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Scorecard:
    """Every scored resource of a platform repo at one commit of its default branch (`revision`)."""

    revision: str
    scored_at: str
    standards: tuple[StandardInfo, ...]
    resources: tuple[ResourceScore, ...]

    def standard(self, standard_id: str) -> StandardInfo | None:
        return next((s for s in self.standards if s.id == standard_id), None)

    def of(self, identity: str) -> ResourceScore | None:
        return next((r for r in self.resources if r.identity == identity), None)

    def owned_by(self, team: str) -> tuple[ResourceScore, ...]:
        return tuple(r for r in self.resources if r.owner == team)

    def content(self) -> dict[str, Any]:
        """What the scorecard says, without when: two scorings that found the same are the same."""
        return {
            "revision": self.revision,
            "standards": [dataclasses.asdict(s) for s in self.standards],
            "resources": [_resource_json(r) for r in self.resources],
        }

    def to_json(self) -> str:
        data = {"paved": SCORECARD_VERSION, "scored_at": self.scored_at, **self.content()}
        return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> Scorecard:
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("paved") != SCORECARD_VERSION or "resources" not in data:
            raise ValueError("not a scorecard")
        standards = tuple(StandardInfo(str(s["id"]), str(s["title"]), str(s["severity"]), str(s.get("hint") or ""),
                                       _link(s.get("link")),
                                       str(s.get("description") or ""))
                          for s in data.get("standards") or [])
        resources = tuple(
            ResourceScore(str(r["identity"]), str(r["kind"]), str(r["name"]), str(r["owner"]),
                          r.get("tier") if isinstance(r.get("tier"), str) else None,
                          tuple(sorted([Verdict(str(i), True) for i in r.get("passed") or []]
                                       + [Verdict(str(f["standard"]), False, str(f.get("message") or ""),
                                                  _link(f.get("link")))
                                          for f in r.get("failed") or []], key=lambda o: o.standard)),
                          str(r.get("unscored") or ""),
                          r.get("latest") if isinstance(r.get("latest"), bool) else None)
            for r in data["resources"])
        return cls(str(data["revision"]), str(data.get("scored_at") or ""), standards, resources)


def _link(value: Any) -> str | None:
    """A link read back from a note, kept only if it is a web address (pages show it as one)."""
    return value if isinstance(value, str) and _LINK.match(value) else None


def _resource_json(score: ResourceScore) -> dict[str, Any]:
    found: dict[str, Any] = {"identity": score.identity, "kind": score.kind, "name": score.name,
                             "owner": score.owner, "tier": score.tier,
                             "passed": [o.standard for o in score.passed],
                             "failed": [{"standard": o.standard, "message": o.message, "link": o.link}
                                        for o in score.failed]}
    if score.unscored:
        found["unscored"] = score.unscored
    if score.latest is not None:
        found["latest"] = score.latest
    return found


def scorecard(rules: Rules, revision: str, scored_at: str, scores: Iterable[ResourceScore | None]) -> Scorecard:
    """The scorecard of `scores` (None: a resource no standard applies to), by identity."""
    kept = sorted((s for s in scores if s is not None), key=lambda s: s.identity)
    return Scorecard(revision, scored_at, tuple(StandardInfo.of(s) for s in rules.standards), tuple(kept))


def read_scorecards(note: str) -> list[Scorecard]:
    """Every scorecard in one commit's note (one JSON object a line); other lines are not Paved's."""
    found = []
    for line in note.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                found.append(Scorecard.from_json(line))
            except (ValueError, TypeError, KeyError, AttributeError):
                continue
    return found


def newest(notes: Mapping[str, str]) -> Scorecard | None:
    """The most recently scored scorecard among every note under `refs/notes/paved-standards` (commit ->
    note text). Notes merge by sorting their lines, so the time scored decides, not a line's place."""
    cards = [card for text in notes.values() for card in read_scorecards(text)]
    return max(cards, key=lambda c: (c.scored_at, c.revision), default=None)


# -- summaries -----------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Failing:
    """A standard and the scored resources failing it, for the page of what fails most."""

    standard: StandardInfo
    failing: tuple[ResourceScore, ...]
    scored: int  # resources it was checked on


def failing_most(card: Scorecard) -> list[Failing]:
    """Every standard with the resources failing it, most failed first."""
    failing: dict[str, list[ResourceScore]] = defaultdict(list)
    checked: Counter[str] = Counter()
    for resource in card.resources:
        for outcome in resource.outcomes:
            checked[outcome.standard] += 1
            if not outcome.passed:
                failing[outcome.standard].append(resource)
    found = [Failing(s, tuple(failing.get(s.id, ())), checked[s.id]) for s in card.standards if checked[s.id]]
    return sorted(found, key=lambda f: (-len(f.failing), f.standard.severity != "error", f.standard.id))


@dataclass(frozen=True, slots=True)
class Tally:
    """How a set of resources scores: checks passed of checks made, and resources meeting every standard."""

    passed: int = 0
    checked: int = 0
    resources: int = 0
    clean: int = 0
    unscored: int = 0


def tally(resources: Iterable[ResourceScore]) -> Tally:
    passed = checked = count = clean = skipped = 0
    for resource in resources:
        if resource.unscored:
            skipped += 1
            continue
        count += 1
        checked += len(resource.outcomes)
        passed += len(resource.passed)
        clean += not resource.failed
    return Tally(passed, checked, count, clean, skipped)


def on_latest(card: Scorecard) -> tuple[int, int]:
    """(resources on the latest version of their golden path, resources following one that were scored)."""
    known = [r.latest for r in card.resources if r.latest is not None and not r.unscored]
    return sum(1 for latest in known if latest), len(known)


def filtered(card: Scorecard, *, team: str | None = None, identity: str | None = None,
             failing: bool = False) -> Scorecard:
    """The scorecard for one team, or one resource, or only the resources failing something."""
    kept = [r for r in card.resources
            if (team is None or r.owner == team) and (identity is None or r.identity == identity)
            and (not failing or r.failed)]
    return dataclasses.replace(card, resources=tuple(kept))

