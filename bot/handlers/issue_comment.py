"""Commands from pull-request comments: `/paved help`, `plan`, `retry`, `explain KIND`, `status SERVICE` and
`feedback TEXT`.

Only newly created comments on pull requests count; edits, deletions, other bots and Paved's own
comments are ignored. Commands that act need the permission `paved.yaml` asks for (write by
default) on the platform repo; anyone else gets a polite answer saying what is required. Every
comment Paved answers is acknowledged with a reaction first. What an answer repeats of the comment (the
kind asked for, the commenter's login) is neutralised by `bot.render.markdown.echo`: it mentions nobody.

`status SERVICE` changes nothing, so anyone who may comment may ask it, but only of a service the catalogue
on the default branch has, and only of a repository carrying Paved's mark: Paved reads nothing else.
`feedback TEXT` is open to anyone who may comment too: the words are kept as data in git
(`bot.handlers.feedback`), acknowledged with a reaction and never repeated back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from bot.catalogue import judge
from bot.commands import Command, Ignore, Reply, parse
from bot.config import RepoConfig, load_config
from bot.deployments import close_services, service_target
from bot.errors import UsageError
from bot.explain import as_markdown, kind_schema
from bot.forge import at_least
from bot.handlers import Context
from bot.handlers.feedback import record_feedback
from bot.handlers.pull_request import plan_pull_request
from bot.model import Plan, Tree
from bot.providers.github.shared import MARK_PROPERTY, MARK_VALUE
from bot.render.markdown import echo, service_status, service_unread, unknown_service
from bot.rules import load_rules

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RetryAnswer:
    """What `/paved retry` did: the answer to post, and whether applying failed (then the job did not do
    what it was asked, and says so by its exit status where one is read, as in Actions)."""

    text: str
    failed: bool = False


Retry = Callable[[Context, str, int], RetryAnswer]  # (context, repo, pull request number) -> what it did


@dataclass(frozen=True, slots=True)
class CommentOutcome:
    """What a comment led to. `plan` is the plan `/paved plan` published; `failed` says the command ran but
    what it was for did not happen (a retry that failed to apply)."""

    status: Literal["ignored", "replied", "refused", "ran"]
    detail: str = ""
    plan: Plan | None = None
    failed: bool = False


def on_comment(ctx: Context, payload: dict[str, Any], *, bot_login: str | None = None,
               retry: Retry | None = None) -> CommentOutcome:
    """Handle one `issue_comment` delivery's payload."""
    if payload.get("action") != "created":
        return CommentOutcome("ignored", "only new comments are read")
    issue, comment = payload.get("issue") or {}, payload.get("comment") or {}
    if not issue.get("pull_request"):
        return CommentOutcome("ignored", "not a pull request")
    author = comment.get("user") or {}
    login = str(author.get("login", ""))
    if author.get("type") == "Bot" or login.endswith("[bot]") or (bot_login and login == bot_login):
        return CommentOutcome("ignored", "written by a bot")
    parsed = parse(str(comment.get("body") or ""))
    if isinstance(parsed, Ignore):
        return CommentOutcome("ignored", parsed.reason)
    repo = payload["repository"]["full_name"]
    number = int(issue["number"])
    ctx.forge.react(repo, number, int(comment["id"]), "eyes")
    if isinstance(parsed, Reply):
        ctx.forge.comment(repo, number, parsed.text)
        return CommentOutcome("replied", parsed.text.splitlines()[0])
    if parsed.name == "feedback":
        return _feedback(ctx, repo, number, login, comment, parsed.argument or "")
    return _run(ctx, repo, number, login, parsed, retry)


def _feedback(ctx: Context, repo: str, number: int, login: str, comment: dict[str, Any], text: str) -> CommentOutcome:
    """Keep `/paved feedback`'s words (`bot.handlers.feedback`), and say so with a ❤️ on the comment: anyone who
    may comment may leave some, and nothing of them is repeated back."""
    new = record_feedback(ctx, repo, number, login, int(comment["id"]), str(comment.get("created_at") or ""), text)
    ctx.forge.react(repo, number, int(comment["id"]), "heart")
    return CommentOutcome("ran", "feedback noted" if new else "feedback noted already")


def _run(ctx: Context, repo: str, number: int, login: str, command: Command, retry: Retry | None) -> CommentOutcome:
    branch = ctx.forge.default_branch(repo)
    ctx.mirror.fetch(repo, [branch])
    tree = ctx.mirror.tree(repo, f"refs/heads/{branch}")
    try:
        config = load_config(tree, ctx.provider_schemas)
        if command.name == "explain":
            rules = load_rules(tree)
            try:
                answer = as_markdown(kind_schema(rules, command.argument or ""))
            except UsageError as exc:
                # Not `exc.message`: it quotes the kind as the comment wrote it.
                kinds = ", ".join(f"`{kind}`" for kind in rules.kinds)
                hint = f" {exc.hint[:1].upper()}{exc.hint[1:]}" if exc.hint else ""
                answer = f"There is no kind “{echo(command.argument or '')}” here; the kinds are {kinds}.{hint}"
            ctx.forge.comment(repo, number, answer)
            return CommentOutcome("replied", f"explained {command.argument}")
        if command.name == "status":
            ctx.forge.comment(repo, number, _status(ctx, repo, tree, config, command.argument or "", branch))
            return CommentOutcome("replied", f"status of {command.argument}")
    finally:
        tree.close()
    permission = ctx.forge.permission_of(repo, login)
    if not at_least(permission, config.command_permission):
        ctx.forge.comment(repo, number, (
            f"Sorry {echo('@' + login)}, `/paved {command.name}` needs **{config.command_permission}** permission on "
            f"`{repo}`, and you have **{permission}**. Ask a maintainer of the platform repo to run it, or to "
            f"grant you access."))
        return CommentOutcome("refused", f"{login} has {permission}")
    if command.name == "plan":
        outcome = plan_pull_request(ctx, repo, number)
        return CommentOutcome("ran", f"plan {outcome.status} {outcome.reason}".strip(),
                              plan=outcome.plan)
    if retry is None:
        ctx.forge.comment(repo, number, "Applying is not set up for this repository, so there is nothing to retry.")
        return CommentOutcome("replied", "no apply configured")
    retried = retry(ctx, repo, number)
    ctx.forge.comment(repo, number, retried.text)
    return CommentOutcome("ran", "retry failed" if retried.failed else "retry", failed=retried.failed)


def _status(ctx: Context, repo: str, tree: Tree, config: RepoConfig, name: str, branch: str) -> str:
    """The answer to `/paved status NAME`, from the catalogue on the default branch (`tree`) and GitHub."""
    catalogue = judge(tree, load_rules(tree), ctx.store)
    target = service_target(catalogue, name, config.organization or repo.split("/", 1)[0])
    if target is None:
        return unknown_service(name, close_services(catalogue, name), branch)
    status = ctx.forge.deployment_status(target.repository, target.environments)
    if status is None:
        return service_unread(target.service, target.repository, exists=False)
    if status.properties.get(MARK_PROPERTY) != MARK_VALUE:
        return service_unread(target.service, target.repository, exists=True)
    return service_status(target.service, status)
