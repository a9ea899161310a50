"""Scoring the standards at reconcile, from what the drift check has just observed, and recording it in git.

The drift check (`bot.handlers.drift.check_drift`) observes every resource of the catalogue; this module
turns what it saw into each resource's document (`bot.standards.document`), scores it, and records the
scorecard as one JSON line in the note of the platform repo's head under `refs/notes/paved-standards`,
pushed like Paved's other notes (merged with the forge's, every line of both kept). It makes no request of
its own to GitHub: the golden path's facts come from the scaffold record the repository's observation
read, and from the platform repo's git history in the mirror (the template folder's tree at the record's
commit and at the head, or the pin).

The note is written before anything shows the scorecard, and only when it says something the newest
scorecard on the head does not: a reconcile that finds the same (or another replica running it) writes
nothing, and two that race write the same line, which the notes merge keeps once.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from bot.errors import PavedError
from bot.golden_paths import ScaffoldRecord, following
from bot.handlers import Context
from bot.kinds import value_at
from bot.model import Resource
from bot.rules import TEMPLATES_DIR, Rules
from bot.standards import (
    STANDARDS_REF,
    Scorecard,
    as_json,
    belonging,
    document,
    golden_path,
    read_scorecards,
    score,
    scorecard,
    unscored,
)

log = logging.getLogger(__name__)

# Why a resource has no score at this reconcile, for the scorecard.
PENDING = "it has changes not applied yet: it is scored once they are"
LEFT = "it was left for the next reconcile, to keep GitHub requests for plans and applies"
HEALED = "Paved put it back at this reconcile: it is scored at the next"
NO_PROVIDER = "no provider here makes it, so nothing observed it"


def unread(reason: str) -> str:
    return f"Paved could not read it: {reason}"


def record_scorecard(ctx: Context, repo: str, head: str, rules: Rules, resources: Mapping[str, Resource],
                     observed: Mapping[str, Any], skipped: Mapping[str, str],
                     issues: Mapping[str, tuple[int, str]], now: datetime) -> Scorecard | None:
    """Score every resource of the catalogue at `head` and note the scorecard on it.

    `observed` is what the drift check read of each resource it observed (None: it does not exist);
    `skipped` says why the others were not observed; `issues` are the open drift issues (number, link)
    by identity. None when the platform repo has no standards.
    """
    if not rules.standards:
        return None
    card = scorecard(rules, head, now.isoformat(timespec="seconds"),
                     _scores(ctx, repo, head, rules, resources, observed, skipped, issues))
    ctx.mirror.fetch_if_present(repo, STANDARDS_REF)
    noted = read_scorecards(ctx.mirror.note(repo, STANDARDS_REF, head))
    latest = max(noted, key=lambda c: c.scored_at, default=None)
    if latest is None or latest.content() != card.content():
        ctx.mirror.append_note(repo, STANDARDS_REF, head, card.to_json())
        ctx.mirror.push(repo, [STANDARDS_REF])
    failing = sum(1 for r in card.resources if r.failed)
    log.info("standards of %s at %s: %d resources scored, %d failing one or more", repo, head[:12],
             len(card.resources), failing)
    return card


def _scores(ctx: Context, repo: str, head: str, rules: Rules, resources: Mapping[str, Resource],
            observed: Mapping[str, Any], skipped: Mapping[str, str],
            issues: Mapping[str, tuple[int, str]]) -> list[Any]:
    described = rules.described
    owned: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for identity, resource in resources.items():
        parent = described[resource.kind].parent if resource.kind in described.names else None
        if parent is None or identity not in observed:
            continue  # only what was observed this time is listed under its parent
        parent_identity = described.parent_of(resource.kind, _text(value_at(resource.data, parent.pointer)))
        if parent_identity is not None:
            actual = observed[identity]
            owned[parent_identity][described[resource.kind].plural].append(
                belonging(resource, observed="found" if actual is not None else "missing", live=actual))
    trees = _TemplateTrees(ctx, repo, head)
    scores = []
    for identity, resource in sorted(resources.items()):
        if resource.kind not in described.names:
            continue
        if identity not in observed:
            scores.append(unscored(rules, resource, skipped.get(identity, NO_PROVIDER)))
            continue
        actual = observed[identity]
        live = as_json(actual) if actual is not None else None
        golden = _golden(resource, rules, live, trees, head)
        issue = issues.get(identity)
        scores.append(score(rules, document(
            resource, described[resource.kind], observed="found" if actual is not None else "missing",
            live=actual, golden=golden, belongings=owned.get(identity), drift_issues=[issue] if issue else ())))
    return scores


def _golden(resource: Resource, rules: Rules, live: Any, trees: _TemplateTrees, head: str) -> dict[str, Any] | None:
    """The golden-path facts of a resource that follows a template, from the record its observation read."""
    follows = following(resource, rules.describe(resource.kind))
    if follows is None:
        return None
    live = live if isinstance(live, dict) else {}
    record, problem = _record(live.get("scaffold"), _text(live.get("scaffold_problem")))
    problem = problem or ("its repository does not exist" if not live else "")
    url = live.get("url")
    return golden_path(follows, record, problem, head=head,
                       tree_at=lambda commit: trees.tree_at(commit, follows.template),
                       merged=trees.merged, repository_url=url if isinstance(url, str) else None)


def _record(value: Any, problem: str) -> tuple[ScaffoldRecord | None, str]:
    """The scaffold record as the observation gave it (already read as hostile data there)."""
    if not isinstance(value, dict):
        return None, problem
    template, commit = value.get("template"), value.get("commit")
    if not isinstance(template, str) or not isinstance(commit, str):
        return None, problem or "its scaffold record names no template and commit"
    return ScaffoldRecord(template, commit), problem


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


class _TemplateTrees:
    """The template folders' git tree ids at the commits records name, read from the mirror once each."""

    def __init__(self, ctx: Context, repo: str, head: str) -> None:
        self.ctx, self.repo, self.head = ctx, repo, head
        self._trees: dict[tuple[str, str], str | None] = {}
        self._merged: dict[str, bool] = {head: True}

    def tree_at(self, commit: str, template: str) -> str | None:
        key = (commit, template)
        if key not in self._trees:
            try:
                tree = self.ctx.mirror.tree(self.repo, commit)
            except PavedError:
                self._trees[key] = None  # the platform repo has no such commit
            else:
                try:
                    self._trees[key] = tree.tree_id(f"{TEMPLATES_DIR}{template}/")
                finally:
                    tree.close()
        return self._trees[key]

    def merged(self, commit: str) -> bool:
        if commit not in self._merged:
            try:
                self._merged[commit] = self.ctx.mirror.merge_base(self.repo, commit, self.head) == commit
            except PavedError:
                self._merged[commit] = False
        return self._merged[commit]
