"""What Paved's GitHub App asks GitHub for, and the manifest that registers it in one step.

`PERMISSIONS` and `EVENTS` are the one list of what the App needs, each with what Paved does with it:
`paved setup` posts exactly these in a GitHub App manifest (GitHub's "Registering a GitHub App from a
manifest"), and the README's table is held to them by a test. Changing what Paved calls on GitHub means
changing them here.

`GitHubHost` is where GitHub is: github.com (web `https://github.com`, API `https://api.github.com`),
GitHub Enterprise Server (`https://HOST` and `https://HOST/api/v3`, as the sandbox forge too) or
GitHub Enterprise Cloud with data residency (`https://SUBDOMAIN.ghe.com` and `https://api.SUBDOMAIN.ghe.com`).

Plain values and functions: no I/O.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass
from typing import Any, Literal

from bot.errors import UsageError
from bot.settings import is_loopback

Level = Literal["read", "write", "admin"]


@dataclass(frozen=True, slots=True)
class Permission:
    """One permission the App asks for: its name and level as GitHub spells them, and what Paved does with it."""

    name: str
    level: Level
    scope: Literal["repository", "organization"]
    purpose: str


PERMISSIONS: tuple[Permission, ...] = (
    Permission("actions", "read", "repository", "read the latest workflow run of a service's default branch"),
    Permission("administration", "write", "repository",
               "create repositories, set their branch protection, teams' access, environments and their "
               "deployment branches"),
    Permission("checks", "write", "repository", "publish the paved/plan and paved/apply check runs"),
    Permission("contents", "write", "repository",
               "read the catalogue, record applies as git notes and refs/paved/applied, push a new repository's "
               "first commit"),
    Permission("deployments", "read", "repository", "read the latest deployment to each of a service's environments"),
    # GitHub asks for both `secrets` and `environments` to write an environment's secret.
    Permission("environments", "write", "repository", "give an environment its DATABASE_URL secret"),
    Permission("issues", "write", "repository", "open, edit and close drift issues and their label"),
    Permission("metadata", "read", "repository", "find repositories and people's access (every App has it)"),
    # GitHub delivers `merge_group` only to Apps holding it.
    Permission("merge_queues", "read", "repository", "hear of every merge group of a merge queue, to plan it"),
    # GitHub counts a comment on a pull request, and a reaction to one, as the pull request's.
    Permission("pull_requests", "write", "repository",
               "read pull requests and their reviews, comment on them and react to commands"),
    Permission("secrets", "write", "repository", "give a service its DATABASE_URL secret"),
    # A golden path's `.github/workflows/` is pushed with a new repository's first commit, which GitHub refuses
    # from an App without this.
    Permission("workflows", "write", "repository", "push a golden path's workflows into the repository it creates"),
    Permission("members", "write", "organization", "create teams and keep their members"),
    Permission("organization_custom_properties", "admin", "organization",
               "define the paved-managed property that marks the repositories Paved creates"),
)

EVENTS: tuple[tuple[str, str], ...] = (
    ("check_run", "plan again when someone re-runs paved/plan"),
    ("issue_comment", "answer /paved commands"),
    ("merge_group", "plan every merge group of a merge queue"),
    ("pull_request", "plan every pull request on a platform repo"),
    ("pull_request_review", "plan again when an owner approves"),
    ("push", "apply what a merge changed"),
)

WEBHOOK_PATH = "/webhooks/github"  # where `paved serve` takes GitHub's deliveries
SIGNIN_CALLBACK_PATH = "/oauth/callback"  # where GitHub sends visitors of the catalogue back after they sign in
# Where GitHub sends a person back who confirms a request of the catalogue's form (bot/web/request_form.py).
REQUEST_CALLBACK_PATH = "/request/callback"
# GitHub's limit on an App's name.
NAME_LIMIT = 34
DESCRIPTION = ("Paved: platform requests through pull requests. Plans every pull request on a platform repo and "
               "applies it after merge.")


def default_permissions() -> dict[str, str]:
    """The manifest's `default_permissions`."""
    return {p.name: p.level for p in PERMISSIONS}


def _checked_url(url: str, what: str) -> urllib.parse.SplitResult:
    parts = urllib.parse.urlsplit(url.strip())
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise UsageError(f"{what} {url!r} is not an http(s) URL")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise UsageError(f"{what} {url} must be https (plain http only to this machine)")
    if parts.username or parts.password:
        raise UsageError(f"{what} must not carry a user name or password")
    if parts.query or parts.fragment:
        raise UsageError(f"{what} {url} must have no query or fragment")
    return parts


@dataclass(frozen=True, slots=True)
class GitHubHost:
    """Where GitHub is: its web address (where people register Apps) and its REST API's."""

    web: str
    api: str

    @classmethod
    def parse(cls, url: str) -> GitHubHost:
        """The host `url` names: github.com, `https://HOST` (or `https://HOST/api/v3`) of GitHub Enterprise
        Server, or `https://SUBDOMAIN.ghe.com`. Raises `UsageError` for anything else."""
        parts = _checked_url(url, "--github-url")
        host = parts.hostname or ""
        path = parts.path.rstrip("/")
        if path and path != "/api/v3":
            raise UsageError(f"--github-url {url} names a page; give GitHub's address (https://HOST)")
        web = urllib.parse.urlunsplit((parts.scheme, parts.netloc, "", "", ""))
        if host in ("github.com", "www.github.com", "api.github.com"):
            return cls("https://github.com", "https://api.github.com")
        if host.endswith(".ghe.com"):
            tenant = host.removeprefix("api.")
            return cls(f"https://{tenant}", f"https://api.{tenant}")
        return cls(web, f"{web}/api/v3")

    def new_app_url(self, org: str | None) -> str:
        """Where the manifest is posted: the organization's new-App form, or the signed-in user's."""
        if org is None:
            return f"{self.web}/settings/apps/new"
        return f"{self.web}/organizations/{urllib.parse.quote(org, safe='')}/settings/apps/new"


def check_org(org: str) -> str:
    """`org` if it can be a GitHub organization's login, else `UsageError`."""
    if not org or len(org) > 39 or not all(c.isalnum() or c == "-" for c in org) or org.startswith("-"):
        raise UsageError(f"--org {org!r} is not a GitHub organization's name")
    return org


def public_url_of(webhook_url: str) -> str | None:
    """Where people reach Paved, when the webhook URL is Paved's own route there (`https://HOST/webhooks/github`)."""
    parts = urllib.parse.urlsplit(webhook_url)
    if not parts.path.rstrip("/").endswith(WEBHOOK_PATH):
        return None
    base = parts.path.rstrip("/").removesuffix(WEBHOOK_PATH)
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, base, "", ""))


def check_webhook_url(url: str) -> str:
    """`url` if GitHub may deliver to it: https (plain http only to this machine), no credentials in it."""
    _checked_url(url, "--webhook-url")
    return url.strip()


def check_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > NAME_LIMIT:
        raise UsageError(f"--name must be 1 to {NAME_LIMIT} characters long (GitHub's limit for an App's name)")
    return name


def manifest(*, name: str, redirect_url: str, homepage: str, webhook_url: str | None = None,
             public_url: str | None = None) -> dict[str, Any]:
    """The GitHub App manifest registering Paved's App.

    With `webhook_url` the App receives `EVENTS` there (GitHub makes the webhook's secret); without it the App
    has no webhook, as `paved ci` needs. With `public_url` visitors of the catalogue sign in through the App
    and come back to `public_url` + `/oauth/callback` (and to `/request/callback` when they open a pull request
    with the catalogue's request form). The App is private: only its owner can install it.
    """
    found: dict[str, Any] = {
        "name": name,
        "url": homepage,
        "description": DESCRIPTION,
        "public": False,
        "redirect_url": redirect_url,
        "default_permissions": default_permissions(),
    }
    if webhook_url is not None:
        found["hook_attributes"] = {"url": webhook_url, "active": True}
        found["default_events"] = [event for event, _ in EVENTS]
    if public_url is not None:
        found["callback_urls"] = [public_url + SIGNIN_CALLBACK_PATH, public_url + REQUEST_CALLBACK_PATH]
    return found
