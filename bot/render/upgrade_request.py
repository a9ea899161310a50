"""The golden-path upgrade pull request, as Markdown: its title, and a body that says what changed and why.

Paved opens one such pull request on a service repository when the template the service was made from
changes, or when its request changes what the template is rendered with (see `bot.golden_paths`). The
body names the files the upgrade changes, the files git could not merge (left with conflict markers),
and the reason: the platform pull requests that changed the template, or the request change.

Those pull requests' titles and descriptions were written by whoever opened them: hostile text. A title
is echoed as plain text (`markdown.echo`: no mention, link, tag or reference); a description is quoted
in a code block whose fence is longer than any run of backticks in it, so nothing in it can close the
block, render, mention anyone or link an issue; both are cut to a length, and the list to a count.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from bot.render.markdown import echo
from bot.render.wording import plural

MARKER = "<!-- paved:upgrade -->"
TITLE_LIMIT = 200
DESCRIPTION_LIMIT = 1500
PULL_REQUESTS_SHOWN = 10
FILES_SHOWN = 100


@dataclass(frozen=True, slots=True)
class TemplatePullRequest:
    """A platform pull request that changed a template: its number, title, description and address."""

    number: int
    title: str
    body: str = ""
    url: str = ""


@dataclass(frozen=True, slots=True)
class UpgradeProposal:
    """What one upgrade pull request says.

    `reason` is why the project moves: `template` (its template changed) or `answers` (its request changed
    what the template is rendered with, in `request_change`, the platform pull request that merged it, if
    known). `since` and `until` are the platform commits the project moves between; `changes` the
    platform pull requests that changed the template in between, oldest first, `more_changes` how many
    more there were; `files` what the upgrade changes in the project, `conflicts` those left with
    conflict markers.
    """

    template: str
    repository: str
    platform_repo: str
    identity: str
    reason: str
    since: str
    until: str
    files: tuple[str, ...]
    conflicts: tuple[str, ...] = ()
    changes: tuple[TemplatePullRequest, ...] = ()
    more_changes: int = 0
    request_change: TemplatePullRequest | None = None


def title(template: str) -> str:
    return f"Upgrade to the latest {template} golden path"


def body(proposal: UpgradeProposal) -> str:
    p = proposal
    lines = [MARKER, f"Paved rendered the **{echo(p.template)}** golden path again for `{p.identity}` and merged "
             f"what changed into this repository with git: from {p.platform_repo} at `{p.since[:12]}` to "
             f"`{p.until[:12]}`."]
    if p.conflicts:
        lines += ["", f"⚠️ **{plural(len(p.conflicts), 'file')} could not be merged** and hold git's conflict "
                  "markers (`<<<<<<<`, `=======`, `>>>>>>>`): this pull request is a draft until someone resolves "
                  "them on this branch and marks it ready for review.", ""]
        lines += _listed(p.conflicts)
    lines += ["", "### Why", ""]
    if p.reason == "answers":
        where = (f" in {p.platform_repo}#{p.request_change.number} ({echo(p.request_change.title, TITLE_LIMIT)})"
                 if p.request_change is not None else "")
        lines.append(f"The request `{p.identity}` changed what the golden path is rendered with{where}.")
    if p.changes:
        lines.append("The template changed in these platform pull requests:" if p.reason == "template" else
                     "The template also changed since this project was last rendered:")
        lines.append("")
        for change in p.changes:
            lines += _change(p.platform_repo, change)
        if p.more_changes:
            lines.append(f"- and {plural(p.more_changes, 'earlier change')}")
    elif p.reason == "template":
        lines.append(f"The template changed in {p.platform_repo} (no merged pull request names the change).")
    lines += ["", f"### What changes ({plural(len(p.files), 'file')})", ""]
    lines += _listed(p.files)
    lines += ["", "Review it as any change: merge it to take the upgrade, or close it to stay as you are (Paved "
              "offers the next template change again). A request opts out with `spec.template.updates: manual`, "
              "or stays on one platform commit with `spec.template.pin`."]
    return "\n".join(lines) + "\n"


def _change(platform_repo: str, change: TemplatePullRequest) -> list[str]:
    entry = [f"- {platform_repo}#{change.number}: {echo(change.title, TITLE_LIMIT)}"]
    text = _quotable(change.body)
    if text:
        fence = "`" * max(3, _longest_backticks(text) + 1)
        entry += ["", "<details><summary>its description</summary>", "", f"{fence}text", text, fence, "",
                  "</details>", ""]
    return entry


def _listed(paths: Sequence[str]) -> list[str]:
    shown = [f"- {echo(path, 300)}" for path in paths[:FILES_SHOWN]]
    if len(paths) > FILES_SHOWN:
        shown.append(f"- and {plural(len(paths) - FILES_SHOWN, 'more file')}")
    return shown


def _quotable(text: str) -> str:
    """`text` for a code block: line breaks kept, other control and invisible characters dropped, cut."""
    kept = "".join(char for char in text.replace("\r\n", "\n")
                   if char in "\n\t" or unicodedata.category(char)[0] != "C").strip()
    return kept if len(kept) <= DESCRIPTION_LIMIT else kept[:DESCRIPTION_LIMIT - 1] + "…"


def _longest_backticks(text: str) -> int:
    longest = run = 0
    for char in text:
        run = run + 1 if char == "`" else 0
        longest = max(longest, run)
    return longest
