"""Plans as GitHub Markdown for the sticky pull request comment.

The bot edits one comment in place on every push and finds it again by `MARKER` on its first line.
`drift_issue` and `drift_resolved` write the drift issues the same way (see `bot.drift`).
GitHub refuses comments over 65,536 characters, so the renderer degrades to fit `limit`: it drops
the per-resource details first, then shortens the longest lists, and always says what it left out.

Names, paths and messages come from the pull request, so everything taken from it is escaped: it
must not break the table layout, close the `<details>` blocks, forge the marker or mention people.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from bot.deployments import ServiceStatus, Summary, web_url
from bot.drift import Drift, marker
from bot.model import Change, Finding, Plan, RuleChange, TeamCost, Upgrade
from bot.render import wording

MARKER = "<!-- paved:plan -->"
GITHUB_COMMENT_LIMIT = 65536

_RUN_LOCALLY = "run `paved plan` locally for the full list"
# Long values (a whole mapping added at once) would crowd out other entries; the JSON output and
# the terminal show them in full.
_VALUE_WIDTH = 120

_ACTION_LABELS = {
    "create": "➕ create",
    "update": "✏️ update",
    "rename": "🔀 rename",
    "delete": "⚠️ delete",
}
_SEVERITY_ICONS = {"error": "❌", "warning": "⚠️", "notice": "ℹ️"}

_MARKDOWN_PUNCTUATION = re.compile(r"([\\`*_\[\]<>|~&])")
# A code span is a run of backticks closed by the next run of the same length (CommonMark 6.1).
_CODE_SPAN = re.compile(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)")
# "@name" notifies that person or team; a zero-width space after the "@" keeps the text readable
# without pinging anyone.
_MENTION = re.compile(r"@(?=[A-Za-z0-9])")
_MENTION_BREAK = "@&#8203;"
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def render(plan: Plan, *, repo_url: str | None = None, limit: int = GITHUB_COMMENT_LIMIT) -> str:
    """The plan as a pull request comment of at most `limit` characters, starting with `MARKER`.

    With `repo_url` (e.g. `https://github.com/acme/platform`), locations link to the files at the
    plan's head revision (deletions: at its base revision); without it they are shown as text.
    Never raises: a plan that cannot be rendered still yields a comment saying so.
    """
    try:
        return _fit(_Comment.of(plan, repo_url), limit)
    except Exception as error:
        # The comment replaces the previous one, so posting nothing would leave a stale plan on
        # the pull request; a short comment pointing at the local command is better.
        return _clip(
            f"{MARKER}\n**Plan:** ⚠️ could not be rendered ({type(error).__name__}); "
            "run `paved plan` locally to see it.\n",
            limit,
        )


@dataclass(frozen=True, slots=True)
class _Section:
    """A part of the comment whose entries can be cut to fit, and how to say that they were."""

    noun: str
    plural_noun: str
    total: int
    build: Callable[[int], list[str]]  # the section showing its first n entries

    def lines(self, keep: int) -> list[str]:
        if self.total == 0:
            return []
        lines = self.build(min(keep, self.total))
        hidden = self.hidden(keep)
        if hidden:
            lines += ["", f"… {hidden} more {self.noun_for(hidden)} not shown; {_RUN_LOCALLY}"]
        return lines

    def hidden(self, keep: int) -> int:
        return max(self.total - keep, 0)

    def noun_for(self, count: int) -> str:
        return self.noun if count == 1 else self.plural_noun


@dataclass(frozen=True, slots=True)
class _Comment:
    """Every part of the comment, rendered once, ready to be put together at any size."""

    head: tuple[str, ...]
    before_details: tuple[_Section, ...]
    details: tuple[str, ...]
    after_details: tuple[_Section, ...]

    @classmethod
    def of(cls, plan: Plan, repo_url: str | None) -> _Comment:
        repo = repo_url.rstrip("/") if repo_url else None
        # Deleted files no longer exist at the head revision, so their links point at the base.
        at_head, at_base = _Link(repo, plan.head), _Link(repo, plan.base)
        head = [MARKER, _summary(plan), "", _context(plan)]
        return cls(
            head=tuple(head),
            before_details=(
                _changes_section(plan.changes, at_head),
                _deletions_section(plan.deletions, at_base),
            ),
            details=tuple(_details_section(plan.all_changes)),
            after_details=(
                _costs_section(plan.costs),
                _findings_section(plan.findings, at_head),
                _rule_changes_section(plan.rule_changes, plan.platform_impact),
                _upgrades_section(plan.upgrades),
            ),
        )

    @property
    def sections(self) -> tuple[_Section, ...]:
        return self.before_details + self.after_details

    def compose(self, *, with_details: bool, keep: int) -> str:
        details_dropped = bool(self.details) and not with_details
        blocks: list[list[str]] = [list(self.head)]
        cut_note = self._cut_note(details_dropped, keep)
        if cut_note:
            blocks[0][2:2] = ["", cut_note]
        blocks += [section.lines(keep) for section in self.before_details]
        if with_details:
            blocks.append(list(self.details))
        blocks += [section.lines(keep) for section in self.after_details]
        return "\n\n".join("\n".join(block) for block in blocks if block) + "\n"

    def _cut_note(self, details_dropped: bool, keep: int) -> str:
        cuts = ["per-resource details omitted"] if details_dropped else []
        hidden = [
            f"{section.hidden(keep)} more {section.noun_for(section.hidden(keep))}"
            for section in self.sections
            if section.hidden(keep)
        ]
        if hidden:
            cuts.append(f"{', '.join(hidden)} not shown")
        if not cuts:
            return ""
        return f"> ✂️ Shortened to fit GitHub's comment size limit: {'; '.join(cuts)}; {_RUN_LOCALLY}."


def _fit(comment: _Comment, limit: int) -> str:
    everything = max((section.total for section in comment.sections), default=0)
    full = comment.compose(with_details=True, keep=everything)
    if len(full) <= limit:
        return full
    without_details = comment.compose(with_details=False, keep=everything)
    if len(without_details) <= limit:
        return without_details

    def fits(keep: int) -> bool:
        return len(comment.compose(with_details=False, keep=keep)) <= limit

    if not fits(0):
        return _clip(comment.compose(with_details=False, keep=0), limit)
    # Every list keeps the same number of entries (short lists keep all of theirs), so one long
    # list cannot crowd out the others. The length is measured, not estimated, so the result is
    # known to fit; the search only needs to be roughly monotonic to find a near-largest size.
    fewest, most = 0, everything
    while fewest < most:
        middle = (fewest + most + 1) // 2
        if fits(middle):
            fewest = middle
        else:
            most = middle - 1
    return comment.compose(with_details=False, keep=fewest)


def _clip(text: str, limit: int) -> str:
    """A last resort when even the shortest form is too long: cut at a line break if possible."""
    if len(text) <= limit:
        return text
    cut = text[: max(limit, 0)]
    line_end = cut.rfind("\n")
    return cut[: line_end + 1] if line_end >= len(MARKER) else cut


# --- head -------------------------------------------------------------------------------------


def _summary(plan: Plan) -> str:
    cost_changed = bool(plan.costs) and not wording.is_zero_money(plan.cost_delta)
    if not plan.all_changes and not plan.findings and not cost_changed:
        return "**Plan:** ✅ no changes"
    parts = [wording.change_tally(plan)]
    if cost_changed:
        parts.append(f"cost {wording.money_change(plan.cost_delta)}/month")
    parts.append(_status(plan.findings))
    return "**Plan:** " + " · ".join(parts)


def _status(findings: Sequence[Finding]) -> str:
    counts = wording.severity_counts(findings)
    if counts["error"]:
        icon = "❌"
    elif counts["warning"]:
        icon = "⚠️"
    elif counts["notice"]:
        icon = "ℹ️"
    elif findings:
        icon = "❌"  # severities the model does not know are treated as the worst
    else:
        return "✅ no problems found"
    return f"{icon} {wording.finding_tally(findings)}"


def _context(plan: Plan) -> str:
    revisions = f"{_code(wording.short_revision(plan.base))} → {_code(wording.short_revision(plan.head))}"
    parts = [revisions]
    if plan.files_checked:
        parts.append(f"{wording.plural(plan.files_checked, 'file')} checked")
    if plan.unchanged:
        parts.append(f"{wording.plural(plan.unchanged, 'resource')} unchanged")
    return f"<sub>{' · '.join(parts)}</sub>"


# --- sections ---------------------------------------------------------------------------------

_CHANGE_TABLE = ("| Action | Resource | Owner | File | Cost/month |", "|---|---|---|---|--:|")


def _changes_section(changes: Sequence[Change], link: _Link) -> _Section:
    rows = [_change_row(change, link) for change in changes]
    return _Section("change", "changes", len(rows), lambda n: ["### Changes", *_table(_CHANGE_TABLE, rows[:n])])


def _deletions_section(deletions: Sequence[Change], link: _Link) -> _Section:
    rows = [_change_row(change, link) for change in deletions]
    warning = "> Merging this pull request **destroys** these resources. Check that nothing still needs them."
    return _Section(
        "deletion",
        "deletions",
        len(rows),
        lambda n: ["### ⚠️ Deletions (destructive)", "", warning, *_table(_CHANGE_TABLE, rows[:n])],
    )


def _change_row(change: Change, link: _Link) -> str:
    resource = _code(change.identity, in_table=True)
    if change.action == "rename" and change.previous_name:
        resource += f" (was {_code(f'{change.kind}/{change.previous_name}', in_table=True)})"
    cost = "—" if wording.is_zero_money(change.cost_delta) else wording.money_change(change.cost_delta)
    cells = [
        _ACTION_LABELS.get(change.action, _plain(change.action)),
        resource,
        _plain(change.owner) or "—",
        link(change.path, change.line, in_table=True),
        cost,
    ]
    return f"| {' | '.join(cells)} |"


def _details_section(changes: Sequence[Change]) -> list[str]:
    blocks = [block for block in (_details_block(change) for change in changes) if block]
    if not blocks:
        return []
    return ["### Details", *(line for block in blocks for line in ["", *block])]


def _details_block(change: Change) -> list[str]:
    facts = []
    if change.action == "rename" and change.previous_name:
        facts.append(f"- renamed from {_code(f'{change.kind}/{change.previous_name}')}")
    if change.previous_path and change.previous_path != change.path:
        facts.append(f"- file moved from {_code(change.previous_path)} to {_code(change.path)}")
    for field_change in change.fields:
        words = wording.field_change_words(field_change, _value)
        facts.append(f"- {_code(wording.field_path(field_change.pointer))}: {words}")
    if change.depends_on:
        facts.append(f"- depends on {', '.join(_code(identity) for identity in change.depends_on)}")
    if not facts:
        return []
    what = [html.escape(change.action)]
    if change.fields:
        what.append(wording.plural(len(change.fields), "field") + " changed")
    summary = f"<code>{html.escape(change.identity)}</code> · {' · '.join(what)}"
    return [f"<details><summary>{summary}</summary>", "", *facts, "", "</details>"]


_COST_TABLE = (
    "| Team | Before | After | Change | Budget | Status |",
    "|---|--:|--:|--:|--:|---|",
)


def _costs_section(costs: Sequence[TeamCost]) -> _Section:
    rows = [_cost_row(cost) for cost in costs]
    return _Section(
        "team",
        "teams",
        len(rows),
        lambda n: ["### Cost by team (USD/month)", *_table(_COST_TABLE, rows[:n])],
    )


def _cost_row(cost: TeamCost) -> str:
    if cost.budget is None:
        budget, status = "—", "no budget"
    else:
        budget = wording.money(cost.budget)
        status = "⚠️ **over budget**" if cost.over_budget else "within budget"
    cells = [
        _plain(cost.team) or "—",
        wording.money(cost.before),
        wording.money(cost.after),
        wording.money_change(cost.delta),
        budget,
        status,
    ]
    return f"| {' | '.join(cells)} |"


def _findings_section(findings: Sequence[Finding], link: _Link) -> _Section:
    # When not everything fits, errors are kept before warnings and notices: they block the merge.
    prioritized = wording.by_severity(findings)
    entries = [_finding_entry(finding, link) for finding in prioritized]

    def build(n: int) -> list[str]:
        lines = ["### Findings"]
        shown = sorted(range(n), key=lambda i: prioritized[i].sort_key())
        current_path: str | None = None
        for i in shown:
            path = prioritized[i].path
            if path != current_path:
                heading = f"**{_code(path)}**" if path else "**Whole catalogue**"
                lines += ["", heading, ""]
                current_path = path
            lines.append(entries[i])
        return lines

    return _Section("finding", "findings", len(entries), build)


def _finding_entry(finding: Finding, link: _Link) -> str:
    icon = _SEVERITY_ICONS.get(finding.severity, "❌")
    parts = [f"- {icon} **{_plain(finding.severity)}**", link(finding.path, finding.line)]
    if finding.rule:
        parts.append(_code(finding.rule))
    entry = " ".join(parts) + f": {_prose(finding.message)}"
    if finding.hint:
        entry += f"\n  - 💡 {_prose(finding.hint)}"
    return entry


def _rule_changes_section(rule_changes: Sequence[RuleChange], impact: Sequence[str] = ()) -> _Section:
    rows = [f"- {_code(change.path)} ({_plain(change.status)})" for change in rule_changes]
    explanation = (
        "This pull request changes the platform's rules or settings: a platform change, which the "
        "platform owners approve. These changes are **not** used to judge this pull request, which is "
        "checked against the rules of its base revision; they take effect after merge."
    )
    affects = [f"- {_prose(sentence)}" for sentence in impact]
    return _Section(
        "rule file",
        "rule files",
        len(rows),
        lambda n: ["### 📜 Platform change", "", explanation, *(["", "What it affects:", "", *affects] if affects
                                                                 else []),
                   *([""] if n else []), *rows[:n]],
    )


def _upgrades_section(upgrades: Sequence[Upgrade]) -> _Section:
    taking = [u for u in upgrades if not u.held]
    rows = [f"- {_code(u.identity)}: {_plain(wording.upgrade_words(u))}" for u in upgrades]
    intro = (f"After the merge, Paved opens an upgrade pull request on the repository of each of "
             f"{wording.plural(len(taking), 'service')} below (or updates the one already open): the golden "
             "path's change, merged into the repository by git, for its owners to review." if taking else
             "Every service below is held back: Paved opens no upgrade pull request for them.")
    return _Section("upgrade", "upgrades", len(rows),
                    lambda n: ["### 🔁 Golden-path upgrades", "", intro, "", *rows[:n]])


def _table(header: Sequence[str], rows: Sequence[str]) -> list[str]:
    # A header without rows renders as an empty table, which reads like "nothing here".
    return ["", *header, *rows] if rows else []


# --- links and escaping -----------------------------------------------------------------------


class _Link:
    """Formats `path:line` as a link into the repository at one revision, or as code without one."""

    def __init__(self, repo_url: str | None, revision: str) -> None:
        self._repo_url = repo_url
        self._revision = revision

    def __call__(self, path: str, line: int, *, in_table: bool = False) -> str:
        place = f"{path}:{line}" if line > 0 else path
        if not path:
            return "—"
        if self._repo_url is None:
            return _code(place, in_table=in_table)
        url = f"{self._repo_url}/blob/{quote(self._revision, safe='/')}/{quote(path, safe='/')}"
        if line > 0:
            url += f"#L{line}"
        return f"[{_plain(place)}]({url})"


def _one_line(text: str) -> str:
    # A line break would end a table row or a list item, so values are kept on one line.
    return _LINE_BREAK.sub(" ", text)


def _code(text: str, *, in_table: bool = False) -> str:
    """`text` as a code span, shown literally whatever backticks or pipes it contains."""
    text = _one_line(text)
    longest_run = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest_run + 1)
    # CommonMark strips one space from each end when both are present, and a span may not start
    # or end with its own fence character; padding with a space handles both.
    padded = (
        text.startswith("`")
        or text.endswith("`")
        or (text.startswith(" ") and text.endswith(" ") and text.strip() != "")
    )
    if not text:
        text, padded = " ", False
    if in_table:
        # GFM splits table cells on "|" even inside code spans; "\|" is turned back into "|".
        text = text.replace("|", "\\|")
    pad = " " if padded else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _plain(text: str) -> str:
    """`text` shown literally as ordinary Markdown text (also safe in table cells and link text)."""
    escaped = _MARKDOWN_PUNCTUATION.sub(r"\\\1", _one_line(text))
    return _MENTION.sub(_MENTION_BREAK, escaped)


def _prose(text: str) -> str:
    """A message or hint: its own `code spans` are kept, but it cannot inject HTML or mention anyone.

    Messages are written to be read as Markdown (they quote keys and values in backticks), so
    only what could break the comment's structure is neutralised.
    """
    text = _one_line(text)
    pieces = []
    position = 0
    for span in _CODE_SPAN.finditer(text):
        pieces.append(_neutralise(text[position : span.start()]))
        pieces.append(span.group(0))
        position = span.end()
    pieces.append(_neutralise(text[position:]))
    return "".join(pieces)


# What a reply may repeat of a comment, at most: a command's name, its arguments, a login.
ECHO_LIMIT = 60
# "#12" links issue 12 and leaves a reference in its timeline; a zero-width space after "#" keeps it text.
_ISSUE_REFERENCE = re.compile(r"#(?=[0-9])")


def echo(text: str, limit: int = ECHO_LIMIT) -> str:
    """Text someone wrote, made safe to repeat in Paved's answer as ordinary Markdown text.

    Anyone who may comment can make Paved repeat what they wrote, so what is repeated must do nothing
    but show: control and invisible format characters are dropped and line breaks become spaces (no
    new block, no reordered text), backticks are dropped (no code span to break out of), Markdown and
    HTML punctuation is escaped (no link, emphasis, table cell, tag or entity), `@name` and `#12` get a
    zero-width space so nobody is mentioned and no issue is referenced, and it is cut to `limit`
    characters. Put the result in ordinary text, never inside a code span, where escapes show.
    """
    kept = "".join(" " if char.isspace() else char for char in text
                   if char.isspace() or (unicodedata.category(char)[0] != "C" and char != "`"))
    kept = " ".join(kept.split())
    if len(kept) > limit:
        kept = kept[:limit - 1] + "…"
    escaped = _MARKDOWN_PUNCTUATION.sub(r"\\\1", kept)
    return _MENTION.sub(_MENTION_BREAK, _ISSUE_REFERENCE.sub("#&#8203;", escaped))


def _neutralise(text: str) -> str:
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MENTION.sub(_MENTION_BREAK, text)


def _value(value: Any) -> str:
    shown = wording.compact_json(value)
    if len(shown) > _VALUE_WIDTH:
        shown = shown[: _VALUE_WIDTH - 1] + "…"
    return _code(shown)


# --- drift issues -----------------------------------------------------------------------------------
#
# One issue per drifted resource (see `bot.drift`), found again by its marker and edited in place, so
# its body must come out the same when nothing changed. Names come from the catalogue and messages
# from providers: they are escaped like everything else here, and only the owning team is mentioned.

_TEAM_SLUG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def _team_mention(organization: str, team: str) -> str:
    if _TEAM_SLUG.match(organization) and _TEAM_SLUG.match(team):
        return f"@{organization}/{team}"
    return _code(team)


def drift_issue(drift: Drift, *, organization: str, revision: str) -> str:
    """The body of a resource's drift issue: what differs, who owns it, the last error, how to resolve it."""
    owner = _team_mention(organization, drift.owner)
    where = f" in {_code(drift.path)}" if drift.path else ""
    lines = [marker(drift.identity)]
    if drift.error:
        lines.append(f"Paved could not apply {_code(drift.identity)}, owned by {owner}, as its request{where} "
                     f"asks at {_code(revision[:12])}.")
    elif drift.unobserved:
        lines.append(f"Paved cannot see whether {_code(drift.identity)}, owned by {owner}, is as its request{where} "
                     f"asks at {_code(revision[:12])}.")
    else:
        lines.append(f"{_code(drift.identity)}, owned by {owner}, is not as its request{where} asks at "
                     f"{_code(revision[:12])}: something was changed outside the catalogue.")
    if drift.steps:
        lines += ["", "**What differs** — putting it back takes these steps:", ""]
        lines += [f"- {_plain(step.verb)}: {_plain(step.description)}"
                  + (" (destructive)" if step.destructive else "") for step in drift.steps]
    if drift.error:
        source = f" of pull request #{drift.pull_request}" if drift.pull_request else ""
        tries = ""
        if drift.attempts:
            tries = (f" Paved tried {drift.attempts} times and stopped retrying on its own." if drift.gave_up
                     else f" Paved has tried {drift.attempts} {'time' if drift.attempts == 1 else 'times'} "
                          f"and retries with backoff.")
        lines += ["", f"**The last apply{source} failed:** {_code(drift.error)}{tries}"]
    if drift.unobserved:
        lines += ["", f"**Reading it failed:** {_code(drift.unobserved)}"]
    if drift.mode == "heal" and drift.error and not drift.pull_request:
        lines += ["", "The request has `spec.drift: heal`; Paved tries to put it back again at its next check."]
    lines += ["", "**To resolve it**, one of:",
              "- change the request to match what exists, in a pull request, if the change was meant;",
              "- set `spec.drift: heal` in the request, and Paved puts back what it asks at its next check;",
              "- comment `/paved retry` on a merged pull request of this repository"
              + (f" (such as #{drift.pull_request})" if drift.pull_request else "")
              + " to apply the catalogue again now.",
              "", "Paved updates this issue at every check and closes it when the drift is gone."]
    return "\n".join(lines) + "\n"


def drift_resolved(identity: str, *, revision: str, healed: Sequence[str] = (), gone: bool = False) -> str:
    """The comment that closes a drift issue: healed (with the steps taken), removed, or back in line."""
    if healed:
        steps = "\n".join(f"- {_plain(step)}" for step in healed)
        return (f"Paved put {_code(identity)} back as the catalogue asks at {_code(revision[:12])} "
                f"(recorded in `refs/notes/paved`):\n\n{steps}\n")
    if gone:
        return f"{_code(identity)} is no longer in the catalogue at {_code(revision[:12])}; closing.\n"
    return f"{_code(identity)} is as the catalogue asks at {_code(revision[:12])} again; closing.\n"


# --- deployment status (`/paved status SERVICE`) -----------------------------------------------------------
#
# Service and environment names come from the catalogue, checked by its schemas; everything else came from
# GitHub, written by whoever may push to the service's repository or run its workflows (logins, descriptions,
# workflow names, URLs), so it is echoed, and a URL becomes a link only when it is an http(s) address.

_SUMMARY_ICONS: dict[Summary, str] = {"deployed": "✅", "failed": "❌", "in progress": "⏳", "inactive": "💤",
                                      "never deployed": "➖"}
_GITHUB_TIME = re.compile(r"^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2})(?::\d{2}(?:\.\d+)?)?Z$")
_COMMIT = re.compile(r"^[0-9a-f]{7,64}$")
# What a link's address keeps as it is; the rest is percent-encoded.
_URL_KEPT = ":/?#@!$&'*+,;=%-._~"


def _when(timestamp: str) -> str:
    found = _GITHUB_TIME.match(timestamp)
    return f"{found[1]} {found[2]} UTC" if found else (echo(timestamp, 25) or "—")


def _commit(sha: str) -> str:
    return _code(sha[:7]) if _COMMIT.match(sha) else (echo(sha, 12) or "—")


def _outbound(text: str, url: str) -> str:
    """A link to `url`, if it is an http(s) address, else nothing; `(`, `)`, `<` and `>` are percent-encoded so
    the address cannot end the link early and go on as Markdown."""
    safe = web_url(url)
    return f"[{text}]({quote(safe, safe=_URL_KEPT)})" if safe else ""


def service_status(service: str, status: ServiceStatus) -> str:
    """The answer to `/paved status SERVICE`: each environment's latest deployment, and the latest run of the
    default branch, with links."""
    repo = _outbound(_plain(status.repository), status.html_url) or _code(status.repository)
    lines = [f"**Deployment status of {_code(service)}** in {repo}", ""]
    if status.environments:
        lines += ["| environment | status | commit | by | when | links |", "|---|---|---|---|---|---|"]
        for environment in status.environments:
            latest = environment.latest
            shown = f"{_SUMMARY_ICONS[environment.summary]} {environment.summary}"
            if latest is None:
                lines.append(f"| {_code(environment.name, in_table=True)} | {shown} | — | — | — | — |")
                continue
            links = " · ".join(link for link in (_outbound("log", latest.log_url),
                                                 _outbound("open", latest.environment_url)) if link) or "—"
            described = f" {echo(latest.description)}" if latest.description.strip() else ""
            lines.append(f"| {_code(environment.name, in_table=True)} | {shown} | {_commit(latest.sha)}{described} "
                         f"| {echo(latest.creator) or '—'} | {_when(latest.updated_at or latest.created_at)} "
                         f"| {links} |")
    else:
        lines.append("The catalogue gives it no deployment environment yet.")
    branch = _code(status.default_branch) if status.default_branch else "the default branch"
    run = status.latest_run
    if run is None:
        lines += ["", f"**Latest run of {branch}:** none yet."]
    else:
        icon = {"success": "✅", "failure": "❌", "cancelled": "⛔", "timed out": "❌"}.get(run.outcome, "⏳")
        link = _outbound("run", run.html_url)
        lines += ["", f"**Latest run of {branch}:** {echo(run.name) or 'a workflow'} — {icon} {echo(run.outcome)}, "
                      f"started by {echo(run.actor) or 'someone'} at {_when(run.created_at)}"
                      + (f" ({link})" if link else "") + "."]
    return "\n".join(lines) + "\n"


def unknown_service(name: str, close: Sequence[str], revision: str) -> str:
    """The answer to `/paved status` naming no service of the catalogue; `close` are the nearest names."""
    hint = f" Did you mean {', '.join(_code(c) for c in close)}?" if close else ""
    return f"There is no service “{echo(name)}” in the catalogue at {_code(revision)}.{hint}\n"


def service_unread(service: str, repository: str, *, exists: bool) -> str:
    """Why `/paved status` shows nothing for a service of the catalogue: its repository is not there yet, or
    it is there without Paved's mark (Paved reads only what it created)."""
    if not exists:
        return (f"{_code(service)} has no repository {_code(repository)} yet: Paved creates it when the request "
                "is applied.\n")
    return (f"{_code(repository)} exists, but Paved did not create it (it lacks the `paved-managed` mark), so "
            "Paved does not read it.\n")
