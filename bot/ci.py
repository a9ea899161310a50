"""`paved ci`: Paved as a step of a GitHub Actions job, for teams that host nothing.

The job's event becomes a `Delivery` and goes through the same router the service uses, with the same
collaborators the service builds from a token (`bot.composition.context_for`), so a pull request gets the
same check run and sticky comment, and a comment the same answer, whether Paved runs as a service or in
Actions. Nothing here knows one event from another. What it adds is for the job's own page: the plan's
findings as workflow commands (annotations that show even where the token may not write check runs),
one line saying what happened, and the plan in the job's summary.

A pull request's job runs the workflow file as the pull request changed it, so Paved's workflow gives it a
read-only token (a fork's gets one whatever the workflow asks): the job plans and reports on its own page
as ever, holds back the check and the comment, and leaves a record naming the pull request
(`bot.handoff`); on `workflow_run`, from the default branch's workflow and with the platform App's token,
`publish_from_run` checks that record against GitHub, plans the head itself and publishes `paved/plan`
as the App, the one source the required check accepts.

Exit codes a workflow can trust: 0 only when the job did what it was for (the plan published, the merge
applied, the command answered), 1 when the plan has errors (the step fails, as `paved plan` does, `/paved
plan` included) or an apply or `/paved retry` failed or was refused, 2 when Paved could not run (a missing
variable, an unreadable event, a token without the permissions the job needs), with a message and no
traceback. Every run appends what it did to the job's summary page.
`add_commands` adds `ci` to the `paved` parser; this module imports the rest only when the command runs.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import uuid
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from bot.errors import ConfigurationError, PavedError

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from bot.forge import CheckRun, Forge, Mirror
    from bot.handlers.router import Routed
    from bot.settings import ActionsSettings
    from bot.webhook import Delivery

log = logging.getLogger(__name__)

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2

CI_VARIABLES = """
environment (set by GitHub Actions, except the token):
  GITHUB_EVENT_NAME     the event that started the workflow (pull_request, issue_comment, push, ...);
                        on workflow_run, the plan of a pull request is published (see below)
  GITHUB_EVENT_PATH     the file holding the event's payload
  GITHUB_TOKEN          the job's token: pass it with `env: GITHUB_TOKEN: ${{ github.token }}`
  GITHUB_REPOSITORY     owner/name of the platform repo
  GITHUB_API_URL        default https://api.github.com
  GITHUB_SERVER_URL     default https://github.com (for links in the plan)
  GITHUB_STEP_SUMMARY   when set, what Paved did (and the plan) is appended to the job's summary
  GITHUB_RUN_ID, GITHUB_RUN_ATTEMPT   name the run in log lines
  PAVED_DATA_DIR        Paved's data folder (default: $RUNNER_TEMP/paved on a runner)
  PAVED_APP_SLUG        the platform App's slug, when GITHUB_TOKEN is its installation token
  PAVED_PLAN_DIR        where a read-only plan job leaves the record naming its pull request, and where
                        the workflow_run job finds it (default: $RUNNER_TEMP/paved-plan)

A pull request's job with a read-only token plans, prints the findings and leaves the record; the
workflow_run job, with the platform App's token, checks the record against GitHub, plans the head itself
and publishes.

exit status: 0 done, 1 the plan has errors or the apply failed, 2 Paved could not run
"""


def read_event(settings: ActionsSettings) -> Delivery:
    """The job's event as a webhook delivery, named after the run (or a fresh id outside one)."""
    from bot.webhook import Delivery

    try:
        payload: Any = json.loads(settings.event_path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigurationError(f"GITHUB_EVENT_PATH={settings.event_path} cannot be read: "
                                 f"{exc.strerror or type(exc).__name__}") from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigurationError(f"GITHUB_EVENT_PATH={settings.event_path} does not hold JSON: {exc}") from exc
    if not isinstance(payload, dict):
        raise ConfigurationError(f"GITHUB_EVENT_PATH={settings.event_path} does not hold a JSON object")
    run = f"actions-{settings.run_id}-{settings.run_attempt or 1}" if settings.run_id else str(uuid.uuid4())
    return Delivery(run, settings.event_name, payload)


def run_ci(settings: ActionsSettings) -> int:
    """Handle the job's event as the service would, then report on the job's own page; the exit code."""
    from bot.composition import context_for
    from bot.handlers.router import route

    delivery = read_event(settings)
    log.info("delivery %s: %s on %s", delivery.id, delivery.kind, settings.repository)
    if delivery.event == "workflow_run":
        return publish_from_run(settings, delivery)
    held = pull_request_of(delivery) is not None and not may_publish(settings)
    if not held:
        check_token(settings, delivery)
    # A runner's data folder is thrown away with it: the embedded database default would be lost.
    ctx = replace(context_for(settings.service_settings(), settings.repository), data_lasts=False)
    if held:
        ctx = replace(ctx, forge=cast("Forge", HeldForge(ctx.forge)), mirror=cast("Mirror", HeldMirror(ctx.mirror)))
    try:
        routed = route(ctx, delivery)
    finally:
        ctx.store.close()
    if held:
        routed = hand_off(settings, delivery, routed)
    return report(settings, delivery.kind, routed)


def report(settings: ActionsSettings, kind: str, routed: Routed) -> int:
    """Say on the job's page what Paved did (annotations, one line, the summary); the exit code."""
    from bot.render import actions, markdown

    plan = routed.plan
    if plan is not None:
        sys.stdout.write(actions.render(plan.findings))
    outcome = " ".join(f"paved ci: {kind}: {routed.handler}: {routed.result}".split())
    # One line whatever the result quotes (a comment's text, a reason), so nothing in it can start a
    # line the runner would read as a workflow command.
    print(outcome)
    sections = [f"**{escape_markdown(outcome)}**"]
    if routed.report:
        sections.append(routed.report)
    if plan is not None:
        sections.append(markdown.render(plan, repo_url=settings.repo_url))
    write_summary(settings, sections)
    return exit_status(routed)


# -- pull requests: planned read-only, published by the App ----------------------------------------------
#
# GitHub runs a pull request's workflow as the pull request changed it, and on a branch of the repository
# with the repository's secrets: whoever may open a pull request decides what its jobs do. So nothing a
# pull request's job publishes can be the gate. Paved does as GitHub recommends for untrusted pull
# requests, for every pull request: the pull request's job, with a read-only token, plans and shows the
# plan on its own page (annotations, summary), and leaves a record naming the pull request
# (`bot.handoff`); a `workflow_run` job, which GitHub runs from the default branch's workflow file, makes
# the plan again itself with the platform App's token and publishes it as the App.

PULL_REQUEST_EVENTS = frozenset({"pull_request", "pull_request_review"})


def pull_request_of(delivery: Delivery) -> dict[str, Any] | None:
    """The pull request of a plan event (`pull_request`, `pull_request_review`); else None."""
    if delivery.event not in PULL_REQUEST_EVENTS:
        return None
    pr = delivery.payload.get("pull_request")
    return pr if isinstance(pr, dict) else None


def may_publish(settings: ActionsSettings) -> bool:
    """Whether the token may publish the `paved/plan` check (a read-only job's may not)."""
    from bot.adapters import permissions

    return not permissions.missing(settings.api_url, settings.token.reveal(), settings.repository,
                                   (permissions.PUBLISH_CHECK,))


class HeldForge:
    """The forge, with the check run and the comment held back: a read-only token may not publish them.

    Everything else is asked of GitHub as ever, so the plan is the one the publishing job will make.
    """

    def __init__(self, forge: Forge) -> None:
        self._forge = forge

    def __getattr__(self, name: str) -> Any:
        return getattr(self._forge, name)

    def publish_check(self, repo: str, check: CheckRun) -> int:
        return 0

    def upsert_comment(self, repo: str, number: int, marker: str, body: str) -> int:
        return 0


class HeldMirror:
    """The git mirror, with pushes held back: a read-only token may not push the plan's record (a git note);
    the publishing job records the plan it publishes."""

    def __init__(self, mirror: Mirror) -> None:
        self._mirror = mirror

    def __getattr__(self, name: str) -> Any:
        return getattr(self._mirror, name)

    def push(self, repo: str, refs: Iterable[str], *, expected: Mapping[str, str | None] | None = None) -> None:
        return None


def hand_off(settings: ActionsSettings, delivery: Delivery, routed: Routed) -> Routed:
    """Leave the record the publishing job needs, and say what the read-only job did instead of publishing."""
    from bot import handoff
    from bot.handlers.router import Routed

    pr = pull_request_of(delivery) or {}
    if routed.handler != "plan":
        return routed
    record = handoff.Handoff(int(pr["number"]), str(pr["head"]["sha"]), str((pr.get("base") or {}).get("sha")))
    assert settings.plan_dir is not None
    handoff.write(settings.plan_dir, record)
    result = ("planned; this job's token is read-only, so the `Paved publish` workflow publishes the check "
              "and the comment as the platform's App" if routed.plan is not None else routed.result)
    return Routed(routed.handler, result, routed.plan, routed.failed, routed.report)


def publish_from_run(settings: ActionsSettings, delivery: Delivery) -> int:
    """`workflow_run`: publish the plan of the pull request whose Paved run has just completed.

    Nothing from the pull request is checked out or run, and nothing its job wrote is believed: its record
    only says which pull request to look at. GitHub's event says which head and which repository the run
    was for; the pull request must have that head now and come from that repository (a fork, or this
    repository for a branch of its own). Then the plan is made here, from git objects, with the base
    branch's rules, and published with this job's token, the platform App's.
    """
    from bot import handoff
    from bot.adapters import permissions
    from bot.composition import context_for
    from bot.handlers.pull_request import plan_pull_request
    from bot.handlers.router import Routed

    run = delivery.payload.get("workflow_run")
    run = run if isinstance(run, dict) else {}
    head_sha = run.get("head_sha")
    head_repo = (run.get("head_repository") or {}).get("full_name") if isinstance(
        run.get("head_repository"), dict) else None
    if not isinstance(head_sha, str) or not handoff.SHA.fullmatch(head_sha) or not isinstance(head_repo, str):
        raise ConfigurationError("the workflow_run event names no head commit and head repository")
    if run.get("event") not in PULL_REQUEST_EVENTS:
        return report(settings, delivery.kind, Routed("ignored", f"runs for {run.get('event')} plan nothing"))
    record = handoff.read(settings.plan_dir or Path("."))
    if record.head_sha != head_sha:
        raise handoff.HandoffRefused(f"the plan record names head {record.head_sha[:12]}, but GitHub says the run "
                                     f"was for {head_sha[:12]}: nothing published")
    lacking = permissions.missing(settings.api_url, settings.token.reveal(), settings.repository,
                                  (permissions.PUBLISH_CHECK,))
    if lacking:
        raise ConfigurationError(f"paved ci cannot publish the plan with this token: it lacks {lacking[0]}",
                                 hint=PUBLISH_HINT)
    ctx = replace(context_for(settings.service_settings(), settings.repository), data_lasts=False)
    try:
        pr = ctx.forge.pull_request(settings.repository, record.pull_request)
        if pr.head_repo != head_repo:
            raise handoff.HandoffRefused(
                f"pull request #{pr.number} comes from {pr.head_repo or 'a deleted repository'}, not from "
                f"{head_repo}, which the run was for: nothing published")
        if pr.head_sha != head_sha:
            if pr.head_ref == run.get("head_branch"):
                return report(settings, delivery.kind, Routed(
                    "plan", f"skipped superseded: the head is now {pr.head_sha[:12]}, whose own run publishes"))
            raise handoff.HandoffRefused(f"pull request #{pr.number}'s head is {pr.head_sha[:12]}, not "
                                         f"{head_sha[:12]}, which the run was for: nothing published")
        outcome = plan_pull_request(ctx, settings.repository, pr.number, head_sha=head_sha)
    finally:
        ctx.store.close()
    result = f"#{pr.number} {outcome.status} {outcome.reason or outcome.verdict}".strip()
    return report(settings, delivery.kind, Routed("plan", result, outcome.plan))


# What each kind of job publishes or changes, by event; what is not here needs no more than reading.
PLAN_EVENTS = frozenset({"pull_request", "pull_request_review", "check_run", "workflow_run", "merge_group"})
APP_TOKEN_HINT = ("GitHub never grants these to a job's own token (GITHUB_TOKEN). Give this job an installation "
                  "token of the platform's GitHub App instead: mint it with actions/create-github-app-token from "
                  "the PAVED_APP_ID and PAVED_APP_PRIVATE_KEY secrets of the `paved` environment, as README.md's "
                  "\"Paved with nothing to host\" shows.")


# `paved/plan` is required from the platform's App, so a check the job's own token published would never
# let a pull request merge: the publishing job publishes with the App's token.
PUBLISH_HINT = ("Publish with an installation token of the platform's GitHub App, minted with "
                "actions/create-github-app-token in a job that declares the `paved` environment, as "
                "paved-publish.yml does (README.md, \"Paved with nothing to host\").")


def check_token(settings: ActionsSettings, delivery: Delivery) -> None:
    """Ask GitHub what the token may do before acting, and refuse to start a job it cannot finish.

    Raises `ConfigurationError` naming every permission the job needs and the token lacks: an apply
    (a merge, or `/paved retry`) that creates teams, repositories and secrets with the job's own token
    would fail half-way with 403 after GitHub had done part of it.
    """
    from bot.adapters import permissions
    from bot.commands import Command, parse

    probes: tuple[permissions.Probe, ...] = ()
    job = ""
    if delivery.event == "push":
        probes, job = permissions.APPLY, "apply"
    elif delivery.event == "issue_comment":
        parsed = parse(str((delivery.payload.get("comment") or {}).get("body") or ""))
        if isinstance(parsed, Command) and parsed.name == "retry":
            probes, job = permissions.APPLY, "apply again (/paved retry)"
    elif delivery.event in PLAN_EVENTS:
        probes, job = (permissions.PUBLISH_CHECK,), "publish the plan"
    if not probes:
        return
    lacking = permissions.missing(settings.api_url, settings.token.reveal(), settings.repository, probes)
    if not lacking:
        return
    organisation_wide = {permissions.CREATE_TEAMS, permissions.CREATE_REPOS, permissions.SEAL_SECRETS,
                         permissions.MARK_REPOS}
    hint = (APP_TOKEN_HINT if any(m.probe in organisation_wide for m in lacking) else
            f"Grant the job `permissions: {lacking[0].probe.permission}` in the workflow, or give it the "
            "platform App's token.")
    raise ConfigurationError(f"paved ci cannot {job} with this token: it lacks "
                             + "; ".join(str(m) for m in lacking), hint=hint)


def exit_status(routed: Routed) -> int:
    """0 only when the job did what it was for; 1 when the plan it published has errors or what it
    applied failed, so a workflow (and a required check on it) can trust the step's colour."""
    if routed.failed or (routed.plan is not None and not routed.plan.ok):
        return EXIT_FINDINGS
    return EXIT_OK


def escape_markdown(text: str) -> str:
    """`text` shown as it is in Markdown: what it quotes of a comment or a reason cannot format the page."""
    return "".join(f"\\{c}" if c in "\\`*_[]<>|~" else c for c in text)


def write_summary(settings: ActionsSettings, sections: list[str]) -> None:
    """Append `sections` to the job's summary page, when the runner gave one."""
    if settings.step_summary is None:
        return
    try:
        with settings.step_summary.open("a", encoding="utf-8") as summary:
            summary.write("\n\n".join(section.strip("\n") for section in sections) + "\n")
    except OSError as exc:
        # The check run and the comment are out already; a summary that cannot be written is no
        # reason to fail a step whose work is done.
        log.warning("the step summary %s cannot be written: %s", settings.step_summary, exc.strerror)


def cmd_ci(args: argparse.Namespace) -> int:
    """Run Paved for this GitHub Actions job's event: plan pull requests, answer commands, apply merges."""
    from bot.render.actions import escape_data
    from bot.settings import ActionsSettings

    settings: ActionsSettings | None = None
    try:
        settings = ActionsSettings.from_env()
        return run_ci(settings)
    except PavedError as exc:
        # Said here rather than left to `paved`'s own handler, so the run's page shows it as an error too.
        print(f"::error title=paved ci::{escape_data(exc.message)}")
        print(f"paved: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"hint: {exc.hint}", file=sys.stderr)
        if settings is not None:
            write_summary(settings, [f"**paved ci could not run:** {escape_markdown(exc.message)}",
                                     escape_markdown(exc.hint) if exc.hint else ""])
        return EXIT_USAGE


def add_commands(subparsers: Any) -> None:
    """Add `ci` to the `paved` parser's subcommands (what `ArgumentParser.add_subparsers()` returned)."""
    doc = (cmd_ci.__doc__ or "").strip()
    sub = subparsers.add_parser("ci", help=doc, description=doc, epilog=CI_VARIABLES,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub.set_defaults(func=cmd_ci)
