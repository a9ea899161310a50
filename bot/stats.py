"""How the paved road is used: requests per week, lead times, first plans passed, findings, failed applies.

Everything comes from git, like the audit trail: the apply records in `refs/notes/paved` (bot/apply.py)
and the plan records that Paved appends to `refs/notes/paved-plans`, one JSON line on a pull request's
head commit each time it publishes a plan there (bot/handlers/pull_request.py). Pure: the caller reads
the notes; this module parses them into records, computes a `Stats` and renders it.

The figures, and where each comes from:

* **requests per week**, by kind and by owning team: the resource changes of each merged pull
  request (its latest plan record), in the ISO week it was first applied. Pull requests merged before
  plans were recorded fall back to their apply record's `actions` (kind known, team from `owners`);
  the very first apply (no `previous`) brings in the whole existing catalogue, so it is no request.
* **lead time**: from the pull request's opening (`opened_at` in its first plan record) to the first
  apply of it that went through; median and 90th percentile (nearest rank, so always a real sample).
* **first plan passed**: the share of pull requests whose earliest plan record has no error.
* **most frequent findings**: per rule id, how many pull requests tripped it in any of their plans
  (a finding that survives five pushes is one trip, not five) — the guardrails people stumble on.
* **apply failure rate**: failed applies over all applies, leaving out drift heals (`trigger: heal`),
  which are Paved's own upkeep, not people's requests. An apply with changes but no results was
  refused (the catalogue had errors) and counts as failed.
* **satisfaction**: the authors' ratings of their applies (`bot.satisfaction`: a reaction on Paved's apply
  comment, 👍 3, 😕 2, 👎 1), beside lead time and first plans passed, by the ISO week of the pull
  request's first apply, by kind and by golden path (the templates its apply's requests follow); with how
  many authors were asked (at most once a week each) and the words left with `/paved feedback`.
* **guardrails that fail first**: per rule, how many pull requests' first plans it found something in —
  what people stumble on before anyone helped them, the friction to look at first.
* **on the latest golden path**: of the services scored by the newest standards scorecard (the notes
  under `refs/notes/paved-standards`, see `bot.standards`) that follow a template, those whose
  repository was rendered from the template as the platform repo has it now (or as their pin has it).
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

from bot.apply import ApplyRecord, read_records
from bot.model import Plan
from bot.render.wording import plural
from bot.satisfaction import SATISFIED, Asked, Feedback, FeedbackRecord, current_ratings
from bot.satisfaction import shown as inert

PLANS_REF = "refs/notes/paved-plans"
PLAN_RECORD_VERSION = 1
# The findings list shows this many rules; the JSON has them all.
TOP_FINDINGS = 10
# The text shows this many of the newest feedback notes; JSON and CSV have them all.
FEEDBACK_SHOWN = 5


@dataclass(frozen=True, slots=True)
class PlanRecord:
    """One plan Paved published on a pull request: when, for whom, whether it passed, what it found."""

    pull_request: int
    head: str
    opened_at: str
    author: str
    planned_at: str
    ok: bool
    findings: Mapping[str, int] = field(default_factory=dict)  # rule id -> findings of that rule
    changes: Mapping[str, Mapping[str, int]] = field(default_factory=dict)  # kind -> action -> count
    teams: Mapping[str, int] = field(default_factory=dict)  # owning team -> changes

    @classmethod
    def of(cls, plan: Plan, *, pull_request: int, head: str, opened_at: str, author: str,
           planned_at: str) -> PlanRecord:
        changes: dict[str, Counter[str]] = defaultdict(Counter)
        for change in plan.all_changes:
            changes[change.kind][change.action] += 1
        return cls(pull_request=pull_request, head=head, opened_at=opened_at, author=author,
                   planned_at=planned_at, ok=not plan.errors,
                   findings=dict(sorted(Counter(f.rule for f in plan.findings).items())),
                   changes={k: dict(sorted(v.items())) for k, v in sorted(changes.items())},
                   teams=dict(sorted(Counter(c.owner for c in plan.all_changes).items())))

    def to_json(self) -> str:
        data = {"paved": PLAN_RECORD_VERSION, **asdict(self)}
        return json.dumps(data, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> PlanRecord:
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("not a plan record")
        return cls(
            pull_request=int(data["pull_request"]), head=str(data.get("head", "")),
            opened_at=str(data.get("opened_at") or ""), author=str(data.get("author") or ""),
            planned_at=str(data["planned_at"]), ok=bool(data["ok"]),
            findings={str(k): int(v) for k, v in (data.get("findings") or {}).items()},
            changes={str(k): {str(a): int(n) for a, n in v.items()} for k, v in (data.get("changes") or {}).items()},
            teams={str(k): int(v) for k, v in (data.get("teams") or {}).items()})

    @property
    def total_changes(self) -> int:
        return sum(sum(actions.values()) for actions in self.changes.values())


def read_plan_records(note: str) -> list[PlanRecord]:
    """Every plan recorded in one commit's note (one JSON object a line); other lines are not Paved's."""
    records = []
    for line in note.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                records.append(PlanRecord.from_json(line))
            except (ValueError, TypeError, KeyError, AttributeError):
                continue
    return records


def plan_records(notes: Mapping[str, str]) -> list[PlanRecord]:
    """The plan records of every note under `refs/notes/paved-plans` (commit -> note text)."""
    return [r for note in notes.values() for r in read_plan_records(note)]


def apply_records(notes: Mapping[str, str]) -> list[ApplyRecord]:
    """The apply records of every note under `refs/notes/paved` (commit -> note text)."""
    return [r for note in notes.values() for r in read_records(note)]


def trigger_of(record: ApplyRecord) -> str:
    """Why an apply ran; records written before triggers were recorded came from merges."""
    return str(getattr(record, "trigger", None) or "merge")


def apply_failed(record: ApplyRecord) -> bool:
    """Whether an apply did not go through: a provider failed or skipped, or it was refused outright
    (changes were due but nothing was attempted: the merged catalogue had errors)."""
    return not record.ok or (bool(record.actions) and not record.results)


# -- the figures ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Week:
    """The resource changes merged pull requests asked for in one ISO week (`2026-W48`)."""

    week: str
    requests: int  # pull requests
    changes: int
    by_kind: Mapping[str, int]
    by_team: Mapping[str, int]


@dataclass(frozen=True, slots=True)
class LeadTime:
    """Hours from a pull request's opening to its first successful apply."""

    pull_requests: int
    median_hours: float | None
    p90_hours: float | None


@dataclass(frozen=True, slots=True)
class FindingCount:
    """A rule, how many pull requests tripped it, and how many findings it made across their plans."""

    rule: str
    pull_requests: int
    findings: int


@dataclass(frozen=True, slots=True)
class Satisfaction:
    """How the merged pull requests of one group went for their authors: a week (`2026-W48`, of their first
    apply), a kind, or a golden path (`name`). `asked`: authors invited to rate; `ratings`: those who did,
    `satisfied` of them with 👍 (3), `average` on the 1-3 scale."""

    name: str
    pull_requests: int
    lead_time_median_hours: float | None
    first_plan_passed: int
    first_plan_total: int
    asked: int
    ratings: int
    satisfied: int
    average: float | None


@dataclass(frozen=True, slots=True)
class FeedbackNote:
    """Words left with `/paved feedback`: by whom, on which pull request, when. Hostile text: show it only
    through `bot.satisfaction.shown` (or `echo` in Markdown)."""

    login: str
    pull_request: int
    at: str
    text: str
    truncated: bool


@dataclass(frozen=True, slots=True)
class Stats:
    """The figures of one platform repo, from `since` (an ISO date, or everything)."""

    since: str | None
    pull_requests_planned: int
    pull_requests_applied: int
    weeks: tuple[Week, ...]
    lead_time: LeadTime
    first_plan_passed: int
    first_plan_total: int
    findings: tuple[FindingCount, ...]
    applies: int
    applies_failed: int
    heals_left_out: int
    # Services on the latest version of their golden path, of those the newest scorecard scored that follow
    # one; None: no scorecard recorded yet.
    on_latest_golden_path: int | None = None
    following_golden_path: int = 0
    # Satisfaction: all merged pull requests, then by week, by kind and by golden path (see `Satisfaction`).
    satisfaction: Satisfaction | None = None
    satisfaction_weeks: tuple[Satisfaction, ...] = ()
    satisfaction_kinds: tuple[Satisfaction, ...] = ()
    satisfaction_golden_paths: tuple[Satisfaction, ...] = ()
    first_failing: tuple[FindingCount, ...] = ()  # rules found in first plans, by pull requests
    feedback: tuple[FeedbackNote, ...] = ()  # newest first

    @property
    def first_plan_pass_rate(self) -> float | None:
        return self.first_plan_passed / self.first_plan_total if self.first_plan_total else None

    @property
    def apply_failure_rate(self) -> float | None:
        return self.applies_failed / self.applies if self.applies else None


def parse_time(value: str) -> datetime | None:
    """An ISO 8601 timestamp as an aware datetime (UTC when it names no offset), or None."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def percentile(values: list[float], share: float) -> float | None:
    """The nearest-rank percentile: the smallest sample with at least `share` of them at or below it."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(math.ceil(share * len(ordered)) - 1, 0)]


def median(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def _week(moment: datetime) -> str:
    year, week, _ = moment.astimezone(UTC).isocalendar()
    return f"{year}-W{week:02d}"


def compute(plans: Iterable[PlanRecord], applies: Iterable[ApplyRecord], *, since: datetime | None = None,
            owners: Mapping[str, str] | None = None, golden_path: tuple[int, int] | None = None,
            feedback: Iterable[FeedbackRecord] = ()) -> Stats:
    """The figures from parsed records. `since` keeps pull requests opened (or, unplanned, applied) and
    applies made from then on; `owners` (identity -> team) names the team of changes known only from
    an apply record; `golden_path` is (on the latest, following one) from the newest standards scorecard
    (`bot.standards.on_latest`), a figure of now that `since` does not narrow; `feedback` are the records
    under `refs/notes/paved-feedback` (`bot.satisfaction`)."""
    owners = owners or {}
    by_pr: dict[int, list[PlanRecord]] = defaultdict(list)
    for plan in plans:
        by_pr[plan.pull_request].append(plan)
    for records in by_pr.values():
        records.sort(key=lambda r: (parse_time(r.planned_at) or datetime.min.replace(tzinfo=UTC), r.planned_at))
    all_applies = sorted(applies, key=lambda r: (parse_time(r.applied_at) or datetime.min.replace(tzinfo=UTC)))

    def recent(moment: datetime | None) -> bool:
        return since is None or (moment is not None and moment >= since)

    planned = {n: records for n, records in by_pr.items()
               if recent(parse_time(records[0].opened_at) or parse_time(records[0].planned_at))}

    # Applies: the failure rate leaves out drift heals; each pull request's first (and first good) apply.
    # Drift records apply nothing (they say what a check found), so they are no applies at all.
    all_applies = [r for r in all_applies if trigger_of(r) != "drift"]
    counted = [r for r in all_applies if recent(parse_time(r.applied_at))]
    heals = [r for r in counted if trigger_of(r) == "heal"]
    requested = [r for r in counted if trigger_of(r) != "heal"]
    first_apply: dict[int, ApplyRecord] = {}
    first_good: dict[int, ApplyRecord] = {}
    for record in all_applies:
        if record.pull_request is None or trigger_of(record) == "heal":
            continue
        first_apply.setdefault(record.pull_request, record)
        if not apply_failed(record):
            first_good.setdefault(record.pull_request, record)

    # Requests per week: merged pull requests by the week of their first apply.
    weeks: dict[str, dict[str, Counter[str]]] = defaultdict(lambda: {"kind": Counter(), "team": Counter(),
                                                                     "requests": Counter()})
    for number, record in first_apply.items():
        applied = parse_time(record.applied_at)
        if applied is None:
            continue
        opened = parse_time(by_pr[number][0].opened_at) if number in by_pr else None
        if not recent(opened or applied):
            continue
        bucket = weeks[_week(applied)]
        bucket["requests"]["pull requests"] += 1
        if number in by_pr:
            latest = by_pr[number][-1]  # the plan of the head that merged
            for kind, actions in latest.changes.items():
                bucket["kind"][kind] += sum(actions.values())
            bucket["team"].update(latest.teams)
        elif record.previous is not None:  # merged before plans were recorded
            for identity in record.actions:
                bucket["kind"][identity.split("/", 1)[0]] += 1
                bucket["team"][owners.get(identity, "unknown")] += 1
    week_list = tuple(Week(week=w, requests=b["requests"]["pull requests"], changes=sum(b["kind"].values()),
                           by_kind=dict(sorted(b["kind"].items())),
                           by_team=dict(sorted(b["team"].items(), key=lambda kv: (-kv[1], kv[0]))))
                      for w, b in sorted(weeks.items()))

    # Lead time: opened -> first apply that went through.
    lead: dict[int, float] = {}
    for number, records in planned.items():
        opened = parse_time(records[0].opened_at)
        good = first_good.get(number)
        applied = parse_time(good.applied_at) if good else None
        if opened is not None and applied is not None and applied >= opened:
            lead[number] = (applied - opened).total_seconds() / 3600
    hours = list(lead.values())

    trips: Counter[str] = Counter()
    occurrences: Counter[str] = Counter()
    for records in planned.values():
        seen: set[str] = set()
        for plan in records:
            occurrences.update(plan.findings)
            seen |= set(plan.findings)
        trips.update(seen)
    findings = tuple(FindingCount(rule, n, occurrences[rule])
                     for rule, n in sorted(trips.items(), key=lambda kv: (-kv[1], -occurrences[kv[0]], kv[0])))

    first_trips: Counter[str] = Counter()
    first_findings: Counter[str] = Counter()
    for records in planned.values():
        first_trips.update(set(records[0].findings))
        first_findings.update(records[0].findings)
    first_failing = tuple(FindingCount(rule, n, first_findings[rule]) for rule, n in
                          sorted(first_trips.items(), key=lambda kv: (-kv[1], -first_findings[kv[0]], kv[0])))

    # Satisfaction, by the merged pull requests' first apply.
    notes = list(feedback)
    asked = {r.pull_request for r in notes if isinstance(r, Asked)}
    rated: dict[int, int] = {}
    for rating in sorted(current_ratings(notes).values(), key=lambda r: (r.reacted_at, r.reaction)):
        author = first_apply[rating.pull_request].requested_by if rating.pull_request in first_apply else None
        if author is None or author.lower() == rating.login.lower():
            rated[rating.pull_request] = rating.score  # the newest rating of each pull request
    groups: dict[str, dict[str, list[int]]] = {"week": defaultdict(list), "kind": defaultdict(list),
                                               "golden path": defaultdict(list)}
    templates: dict[int, set[str]] = defaultdict(set)
    for record in all_applies:
        if record.pull_request is not None and trigger_of(record) != "heal":
            templates[record.pull_request].update(record.templates)
    merged: list[int] = []
    for number, record in first_apply.items():
        applied = parse_time(record.applied_at)
        opened = parse_time(by_pr[number][0].opened_at) if number in by_pr else None
        if applied is None or not recent(opened or applied):
            continue
        merged.append(number)
        groups["week"][_week(applied)].append(number)
        if number in by_pr:
            kinds = set(by_pr[number][-1].changes)
        else:
            kinds = {i.split("/", 1)[0] for i in record.actions} if record.previous is not None else set()
        for kind in kinds:
            groups["kind"][kind].append(number)
        for template in templates.get(number, ()):
            groups["golden path"][template].append(number)

    def figure(name: str, numbers: list[int]) -> Satisfaction:
        scores = [rated[n] for n in numbers if n in rated]
        firsts = [by_pr[n][0].ok for n in numbers if n in by_pr]
        return Satisfaction(
            name=name, pull_requests=len(numbers),
            lead_time_median_hours=median([lead[n] for n in numbers if n in lead]), first_plan_passed=sum(firsts),
            first_plan_total=len(firsts), asked=sum(1 for n in numbers if n in asked),
            ratings=len(scores), satisfied=sum(1 for score in scores if score == SATISFIED),
            average=round(sum(scores) / len(scores), 2) if scores else None)

    def by(group: str) -> tuple[Satisfaction, ...]:
        return tuple(figure(name, numbers) for name, numbers in sorted(groups[group].items()))

    kept = [r for r in notes if isinstance(r, Feedback) and recent(parse_time(r.at))]
    words = tuple(FeedbackNote(r.login, r.pull_request, r.at, r.text, r.truncated)
                  for r in sorted(kept, key=lambda r: (r.at, r.comment), reverse=True))

    return Stats(
        satisfaction=figure("all", merged) if merged else None,
        satisfaction_weeks=by("week"), satisfaction_kinds=by("kind"), satisfaction_golden_paths=by("golden path"),
        first_failing=first_failing, feedback=words,
        since=since.date().isoformat() if since else None,
        pull_requests_planned=len(planned),
        pull_requests_applied=sum(1 for n, r in first_apply.items() if recent(parse_time(r.applied_at))),
        weeks=week_list,
        lead_time=LeadTime(len(hours), median(hours), percentile(hours, 0.9)),
        first_plan_passed=sum(1 for records in planned.values() if records[0].ok),
        first_plan_total=len(planned),
        findings=findings,
        applies=len(requested),
        applies_failed=sum(1 for r in requested if apply_failed(r)),
        heals_left_out=len(heals),
        on_latest_golden_path=golden_path[0] if golden_path else None,
        following_golden_path=golden_path[1] if golden_path else 0)


# -- rendering ------------------------------------------------------------------------------------


def duration(hours: float | None) -> str:
    """Hours as a person reads them: `45 min`, `5 h 12 min`, `3 d 4 h`."""
    if hours is None:
        return "n/a"
    minutes = round(hours * 60)
    if minutes < 60:
        return f"{minutes} min"
    if minutes < 24 * 60:
        h, m = divmod(minutes, 60)
        return f"{h} h {m} min" if m else f"{h} h"
    d, h = divmod(round(hours), 24)
    return f"{d} d {h} h" if h else f"{d} d"


def _share(part: int, whole: int, noun: str, nouns: str | None = None) -> str:
    if not whole:
        return f"no {nouns or noun + 's'} yet"
    return f"{part} of {plural(whole, noun, nouns)} ({part / whole:.0%})"


def _counts(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in counts.items()) or "-"


def as_text(stats: Stats) -> str:
    period = f"since {stats.since}" if stats.since else "all recorded history"
    lines = [f"Paved stats, {period}: {plural(stats.pull_requests_planned, 'pull request')} planned, "
             f"{stats.pull_requests_applied} merged and applied", ""]
    lines.append("Requests per week (resource changes in merged pull requests, by week applied)")
    if stats.weeks:
        width = max(len(_counts(w.by_kind)) for w in stats.weeks)
        lines.append(f"  {'week':<9} {'PRs':>4} {'changes':>8}  {'by kind':<{width}}  by team")
        for w in stats.weeks:
            lines.append(f"  {w.week:<9} {w.requests:>4} {w.changes:>8}  {_counts(w.by_kind):<{width}}  "
                         f"{_counts(w.by_team)}")
    else:
        lines.append("  none yet")
    lead = stats.lead_time
    lines += ["", f"Lead time, pull request opened to applied: median {duration(lead.median_hours)}, "
                  f"p90 {duration(lead.p90_hours)} ({plural(lead.pull_requests, 'pull request')})",
              f"First plan passed: {_share(stats.first_plan_passed, stats.first_plan_total, 'pull request')}",
              f"Apply failure rate: {_share(stats.applies_failed, stats.applies, 'apply', 'applies')} failed"
              + (f" ({plural(stats.heals_left_out, 'drift heal')} not counted)" if stats.heals_left_out else ""),
              *([f"On the latest golden path: "
                 f"{_share(stats.on_latest_golden_path, stats.following_golden_path, 'service')}"
                 " (the newest standards scorecard)"] if stats.on_latest_golden_path is not None else []),
              "", *_satisfaction_text(stats),
              "", "Most frequent findings (pull requests that tripped each rule)"]
    lines += _rule_lines(stats.findings)
    lines += ["", "Guardrails that fail first (pull requests whose first plan found something of each rule)"]
    lines += _rule_lines(stats.first_failing)
    if stats.feedback:
        lines += ["", f"Feedback (/paved feedback), newest first: {len(stats.feedback)}"]
        for note in stats.feedback[:FEEDBACK_SHOWN]:
            lines.append(f"  {note.at[:10]} {inert(note.login, 39)} on #{note.pull_request}: {inert(note.text, 100)}")
        if len(stats.feedback) > FEEDBACK_SHOWN:
            lines.append("  … (--format json or csv lists all)")
    if not stats.pull_requests_planned and not stats.applies:
        lines += ["", "Nothing recorded yet (plans are under refs/notes/paved-plans, applies under "
                      "refs/notes/paved; fetch them from the platform repo)."]
    return "\n".join(lines) + "\n"


def _rule_lines(counts: tuple[FindingCount, ...]) -> list[str]:
    """The first `TOP_FINDINGS` rules, one a line with their pull requests and findings."""
    if not counts:
        return ["  none"]
    shown = counts[:TOP_FINDINGS]
    width = max(len(f.rule) for f in shown)
    lines = [f"  {f.rule:<{width}}  {plural(f.pull_requests, 'pull request')} ({plural(f.findings, 'finding')})"
             for f in shown]
    if len(counts) > TOP_FINDINGS:
        lines.append(f"  … and {plural(len(counts) - TOP_FINDINGS, 'more rule', 'more rules')}"
                     " (--format json lists all)")
    return lines


def _rating(figure: Satisfaction) -> str:
    if not figure.ratings:
        return "-"
    return f"{figure.average:.1f} ({figure.satisfied}/{figure.ratings} 👍)"


def _satisfaction_table(title: str, figures: tuple[Satisfaction, ...]) -> list[str]:
    if not figures:
        return []
    width = max(9, *(len(f.name) for f in figures))
    lines = [title, f"  {'':<{width}} {'PRs':>4} {'lead time':>10} {'first plan':>10} {'asked':>6} "
                    f"{'rated':>6}  rating"]
    for f in figures:
        first = f"{f.first_plan_passed}/{f.first_plan_total}" if f.first_plan_total else "-"
        lines.append(f"  {f.name:<{width}} {f.pull_requests:>4} {duration(f.lead_time_median_hours):>10} {first:>10} "
                     f"{f.asked:>6} {f.ratings:>6}  {_rating(f)}")
    return lines


def _satisfaction_text(stats: Stats) -> list[str]:
    whole = stats.satisfaction
    head = ("Satisfaction (authors' ratings of their applies: 👍 3, 😕 2, 👎 1; each asked at most once a week)")
    if whole is None or not whole.asked:
        return [head, "  nobody asked yet"]
    lines = [head, f"  {_share(whole.ratings, whole.asked, 'author asked', 'authors asked')} rated"
                   + (f", average {whole.average:.1f}, {_share(whole.satisfied, whole.ratings, 'rating')} 👍"
                      if whole.ratings else "")]
    lines += _satisfaction_table("  By week of the first apply (lead time: median)", stats.satisfaction_weeks)
    lines += _satisfaction_table("  By kind", stats.satisfaction_kinds)
    lines += _satisfaction_table("  By golden path", stats.satisfaction_golden_paths)
    return lines


def to_dict(stats: Stats) -> dict[str, object]:
    """The figures as plain data, for JSON and for the adoption page."""
    data = asdict(stats)
    data["first_plan_pass_rate"] = stats.first_plan_pass_rate
    data["apply_failure_rate"] = stats.apply_failure_rate
    return {"version": 1, **data}


def as_json(stats: Stats) -> str:
    return json.dumps(to_dict(stats), indent=2) + "\n"


CSV_COLUMNS = ("section", "name", "pull_requests", "lead_time_median_hours", "first_plan_passed", "first_plan_total",
               "asked", "ratings", "satisfied", "average_rating", "findings", "login", "at", "text")


def _cell(text: str) -> str:
    """Someone's words as a CSV cell a spreadsheet shows as text: one line, and a leading `=`, `+`, `-`, `@`
    (a formula to a spreadsheet) behind an apostrophe."""
    line = inert(text, 10_000)
    return "'" + line if line[:1] in ("=", "+", "-", "@") else line


def as_csv(stats: Stats) -> str:
    """Satisfaction beside lead time and first plans as rows a spreadsheet filters by `section`: `all`, `week`,
    `kind`, `golden path`; then the guardrails that fail first (`first failing guardrail`, with the pull
    requests and findings) and the feedback (`feedback`, with who, when and the words)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    sections = [("all", (stats.satisfaction,) if stats.satisfaction else ()), ("week", stats.satisfaction_weeks),
                ("kind", stats.satisfaction_kinds), ("golden path", stats.satisfaction_golden_paths)]
    for section, figures in sections:
        for f in figures:
            lead = "" if f.lead_time_median_hours is None else round(f.lead_time_median_hours, 2)
            writer.writerow([section, f.name, f.pull_requests, lead, f.first_plan_passed, f.first_plan_total, f.asked,
                             f.ratings, f.satisfied, "" if f.average is None else f.average, "", "", "", ""])
    for rule in stats.first_failing:
        writer.writerow(["first failing guardrail", rule.rule, rule.pull_requests, "", "", "", "", "", "", "",
                         rule.findings, "", "", ""])
    for note in stats.feedback:
        writer.writerow(["feedback", "", "", "", "", "", "", "", "", "", "", _cell(note.login), note.at,
                         _cell(note.text)])
    return buffer.getvalue()
