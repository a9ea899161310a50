"""Turns records and git objects into the JSON shapes GitHub sends, for REST answers and webhooks.

One renderer serves both, so an object looks the same wherever a client meets it. Every field the
REST description marks required is emitted (GitHub's own examples are older than its schemas, so
the shapes are written from the schemas, not replayed). Webhook payloads are stricter in places
(some webhook schemas forbid extra properties), which is what `for_webhook` trims.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from . import gitrepo
from .model import (
    StoredAccount,
    StoredApp,
    StoredCheckRun,
    StoredCheckSuite,
    StoredCollaborator,
    StoredComment,
    StoredCustomProperty,
    StoredDelivery,
    StoredDeployment,
    StoredDeploymentBranchPolicy,
    StoredDeploymentStatus,
    StoredEnvironment,
    StoredHook,
    StoredInstallation,
    StoredIssue,
    StoredLabel,
    StoredMembership,
    StoredPullRequest,
    StoredReaction,
    StoredRepo,
    StoredReview,
    StoredSecret,
    StoredStatus,
    StoredTeam,
    StoredTeamMember,
    StoredTeamRepo,
    StoredWorkflowRun,
)
from .store import Store

JSON = dict[str, Any]

REACTIONS = ("+1", "-1", "laugh", "confused", "heart", "hooray", "eyes", "rocket")


def node_id(kind: str, record_id: int | str) -> str:
    return base64.b64encode(f"0:{kind}{record_id}".encode()).decode().rstrip("=")


@dataclass(frozen=True)
class Urls:
    web: str  # http://127.0.0.1:PORT
    api: str  # http://127.0.0.1:PORT/api/v3


# The forge's addresses as the client of the request being served reached it (see `server.py`).
_serving: ContextVar[Urls | None] = ContextVar("sandbox_request_urls", default=None)


@contextmanager
def serving(urls: Urls) -> Iterator[None]:
    """Render URLs from `urls` in this thread while a request is served (and the webhooks it causes)."""
    token = _serving.set(urls)
    try:
        yield
    finally:
        _serving.reset(token)


# Repository keys the webhook schemas accept (their `repository` objects forbid others).
_WEBHOOK_REPO_EXTRA = {"network_count", "temp_clone_token", "subscribers_count", "permissions", "organization",
                       "parent", "source", "security_and_analysis", "code_of_conduct",
                       "template_repository", "anonymous_access_enabled", "has_pull_requests",
                       "pull_request_creation_policy"}
# Permission names the webhook schemas know: their apps' and installations' `permissions` forbid others, so
# newer ones (`organization_custom_properties`, ...) are left out of webhook payloads.
_WEBHOOK_PERMISSIONS = frozenset({
    "actions", "administration", "blocking", "checks", "content_references", "contents", "deployments",
    "discussions", "emails", "environments", "issues", "members", "merge_queues", "metadata",
    "organization_administration", "organization_hooks", "organization_packages", "organization_plan",
    "organization_projects", "organization_secrets", "organization_self_hosted_runners",
    "organization_user_blocking", "packages", "pages", "pull_requests", "repository_hooks", "repository_projects",
    "secret_scanning_alerts", "secrets", "security_events", "security_scanning_alert", "single_file", "statuses",
    "team_discussions", "vulnerability_alerts", "workflows"})


def _permissions(granted: dict[str, str], for_webhook: bool) -> dict[str, str]:
    return {k: v for k, v in granted.items() if not for_webhook or k in _WEBHOOK_PERMISSIONS}


class Renderer:
    def __init__(self, store: Store, urls: Urls, git_for: Callable[[StoredRepo], gitrepo.GitRepo]) -> None:
        self.store = store
        self.bound_urls = urls
        self.git_for = git_for

    @property
    def urls(self) -> Urls:
        """Where the request being served reached the forge; where it is bound when none is."""
        return _serving.get() or self.bound_urls

    # -- people --------------------------------------------------------------------------------------------

    def account(self, account_id: int) -> StoredAccount:
        found = self.store.get(StoredAccount, account_id)
        assert found is not None, account_id
        return found

    def user(self, account: StoredAccount | None) -> JSON | None:
        if account is None:
            return None
        api, web, login = self.urls.api, self.urls.web, account.login
        user_url = f"{api}/users/{quote(login)}"
        return {
            "login": login,
            "id": account.id,
            "node_id": node_id("U" if account.type != "Organization" else "O", account.id),
            "avatar_url": f"{web}/avatars/{quote(login)}",
            "gravatar_id": "",
            "url": user_url,
            "html_url": f"{web}/{quote(login)}",
            "followers_url": f"{user_url}/followers",
            "following_url": f"{user_url}/following{{/other_user}}",
            "gists_url": f"{user_url}/gists{{/gist_id}}",
            "starred_url": f"{user_url}/starred{{/owner}}{{/repo}}",
            "subscriptions_url": f"{user_url}/subscriptions",
            "organizations_url": f"{user_url}/orgs",
            "repos_url": f"{user_url}/repos",
            "events_url": f"{user_url}/events{{/privacy}}",
            "received_events_url": f"{user_url}/received_events",
            "type": account.type,
            "user_view_type": "public",
            "site_admin": account.site_admin,
        }

    def user_by_id(self, account_id: int | None) -> JSON | None:
        return self.user(self.store.get(StoredAccount, account_id)) if account_id else None

    def user_full(self, account: StoredAccount, private: bool = False) -> JSON:
        repos = [r for r in self.store.all(StoredRepo, lambda r: r.owner_id == account.id)]
        body = {
            **(self.user(account) or {}),
            "name": account.name,
            "company": None,
            "blog": "",
            "location": None,
            "email": account.email,
            "hireable": None,
            "bio": None,
            "twitter_username": None,
            "notification_email": account.email,
            "public_repos": sum(1 for r in repos if not r.private),
            "public_gists": 0,
            "followers": 0,
            "following": 0,
            "created_at": account.created_at,
            "updated_at": account.created_at,
        }
        if private:
            body.update(
                private_gists=0,
                total_private_repos=sum(1 for r in repos if r.private),
                owned_private_repos=sum(1 for r in repos if r.private),
                disk_usage=0,
                collaborators=0,
                two_factor_authentication=False,
                plan={"name": "free", "space": 976562499, "private_repos": 10000, "collaborators": 0},
            )
        return body

    def org_simple(self, org: StoredAccount) -> JSON:
        api, login = self.urls.api, quote(org.login)
        return {
            "login": org.login,
            "id": org.id,
            "node_id": node_id("O", org.id),
            "url": f"{api}/orgs/{login}",
            "repos_url": f"{api}/orgs/{login}/repos",
            "events_url": f"{api}/orgs/{login}/events",
            "hooks_url": f"{api}/orgs/{login}/hooks",
            "issues_url": f"{api}/orgs/{login}/issues",
            "members_url": f"{api}/orgs/{login}/members{{/member}}",
            "public_members_url": f"{api}/orgs/{login}/public_members{{/member}}",
            "avatar_url": f"{self.urls.web}/avatars/{login}",
            "description": None,
        }

    def org_full(self, org: StoredAccount, for_owner: bool = False) -> JSON:
        """An organization; its owners also see the private counts and member settings, as on GitHub."""
        repos = self.store.all(StoredRepo, lambda r: r.owner_id == org.id)
        body = {
            **self.org_simple(org),
            "name": org.name,
            "is_verified": False,
            "has_organization_projects": True,
            "has_repository_projects": True,
            "public_repos": sum(1 for r in repos if not r.private),
            "public_gists": 0,
            "followers": 0,
            "following": 0,
            "html_url": f"{self.urls.web}/{quote(org.login)}",
            "type": "Organization",
            "created_at": org.created_at,
            "updated_at": org.created_at,
            "archived_at": None,
        }
        if org.email:  # optional and not nullable in GitHub's description: absent rather than null
            body["email"] = org.email
        if for_owner:
            private = sum(1 for r in repos if r.private)
            body.update(
                total_private_repos=private,
                owned_private_repos=private,
                private_gists=0,
                disk_usage=0,
                collaborators=0,
                billing_email=None,
                default_repository_permission="read",
                members_can_create_repositories=True,
                two_factor_requirement_enabled=False,
                members_allowed_repository_creation_type="all",
                members_can_create_public_repositories=True,
                members_can_create_private_repositories=True,
                members_can_create_internal_repositories=False,
                members_can_create_pages=True,
                members_can_fork_private_repositories=False,
                members_can_create_public_pages=True,
                members_can_create_private_pages=True,
                web_commit_signoff_required=False,
                plan={"name": "team", "space": 976562499, "private_repos": 999999,
                      "filled_seats": len(self.store.all(StoredMembership, lambda m: m.org_id == org.id)),
                      "seats": 999999},
            )
        return body

    # -- repositories -----------------------------------------------------------------------------------

    def repo_path(self, repo: StoredRepo) -> str:
        owner = self.account(repo.owner_id)
        return f"{quote(owner.login)}/{quote(repo.name)}"

    def repo(self, repo: StoredRepo, permissions: JSON | None = None, for_webhook: bool = False,
             full: bool = True) -> JSON:
        owner = self.account(repo.owner_id)
        full_name = f"{owner.login}/{repo.name}"
        url = f"{self.urls.api}/repos/{self.repo_path(repo)}"
        html = f"{self.urls.web}/{self.repo_path(repo)}"
        open_issues = sum(1 for i in self.store.all(StoredIssue, lambda i: i.repo_id == repo.id and i.state == "open"))
        host = self.urls.web.split("://", 1)[-1]
        body: JSON = {
            "id": repo.id,
            "node_id": node_id("R", repo.id),
            "name": repo.name,
            "full_name": full_name,
            "private": repo.private,
            "owner": self.user(owner),
            "html_url": html,
            "description": repo.description,
            "fork": repo.fork_of is not None,
            "url": url,
            "forks_url": f"{url}/forks",
            "keys_url": f"{url}/keys{{/key_id}}",
            "collaborators_url": f"{url}/collaborators{{/collaborator}}",
            "teams_url": f"{url}/teams",
            "hooks_url": f"{url}/hooks",
            "issue_events_url": f"{url}/issues/events{{/number}}",
            "events_url": f"{url}/events",
            "assignees_url": f"{url}/assignees{{/user}}",
            "branches_url": f"{url}/branches{{/branch}}",
            "tags_url": f"{url}/tags",
            "blobs_url": f"{url}/git/blobs{{/sha}}",
            "git_tags_url": f"{url}/git/tags{{/sha}}",
            "git_refs_url": f"{url}/git/refs{{/sha}}",
            "trees_url": f"{url}/git/trees{{/sha}}",
            "statuses_url": f"{url}/statuses/{{sha}}",
            "languages_url": f"{url}/languages",
            "stargazers_url": f"{url}/stargazers",
            "contributors_url": f"{url}/contributors",
            "subscribers_url": f"{url}/subscribers",
            "subscription_url": f"{url}/subscription",
            "commits_url": f"{url}/commits{{/sha}}",
            "git_commits_url": f"{url}/git/commits{{/sha}}",
            "comments_url": f"{url}/comments{{/number}}",
            "issue_comment_url": f"{url}/issues/comments{{/number}}",
            "contents_url": f"{url}/contents/{{+path}}",
            "compare_url": f"{url}/compare/{{base}}...{{head}}",
            "merges_url": f"{url}/merges",
            "archive_url": f"{url}/{{archive_format}}{{/ref}}",
            "downloads_url": f"{url}/downloads",
            "issues_url": f"{url}/issues{{/number}}",
            "pulls_url": f"{url}/pulls{{/number}}",
            "milestones_url": f"{url}/milestones{{/number}}",
            "notifications_url": f"{url}/notifications{{?since,all,participating}}",
            "labels_url": f"{url}/labels{{/name}}",
            "releases_url": f"{url}/releases{{/id}}",
            "deployments_url": f"{url}/deployments",
            "created_at": repo.created_at,
            "updated_at": repo.updated_at,
            "pushed_at": repo.pushed_at,
            "git_url": f"git://{host}/{full_name}.git",
            "ssh_url": f"git@{host.split(':')[0]}:{full_name}.git",
            "clone_url": f"{html}.git",
            "svn_url": html,
            "homepage": None,
            "size": 0,
            "stargazers_count": 0,
            "watchers_count": 0,
            "language": None,
            "has_issues": True,
            "has_projects": True,
            "has_downloads": True,
            "has_wiki": True,
            "has_pages": False,
            "has_discussions": False,
            "forks_count": 0,
            "mirror_url": None,
            "archived": repo.archived,
            "disabled": False,
            "open_issues_count": open_issues,
            "license": None,
            "allow_forking": True,
            "is_template": False,
            "web_commit_signoff_required": False,
            "topics": [],
            "visibility": "internal" if repo.internal else "private" if repo.private else "public",
            "forks": 0,
            "open_issues": open_issues,
            "watchers": 0,
            "default_branch": repo.default_branch,
        }
        if full:
            body.update(
                allow_squash_merge=True,
                allow_merge_commit=True,
                allow_rebase_merge=True,
                allow_auto_merge=False,
                delete_branch_on_merge=False,
                allow_update_branch=False,
                use_squash_pr_title_as_default=False,
                squash_merge_commit_title="COMMIT_OR_PR_TITLE",
                squash_merge_commit_message="COMMIT_MESSAGES",
                merge_commit_title="MERGE_MESSAGE",
                merge_commit_message="PR_TITLE",
                network_count=0,
                subscribers_count=0,
                temp_clone_token=None,
                custom_properties=self.custom_property_values(repo),
            )
            if owner.type == "Organization" and not for_webhook:
                body["organization"] = self.user(owner)
        if permissions is not None and not for_webhook:
            body["permissions"] = permissions
        if for_webhook:
            for key in _WEBHOOK_REPO_EXTRA:
                body.pop(key, None)
            body["custom_properties"] = self.custom_property_values(repo)
        return body

    # -- custom properties ---------------------------------------------------------------------------------------

    def custom_property_values(self, repo: StoredRepo) -> JSON:
        """A repository's custom property values: its own, and the default of each required property it lacks."""
        defined = self.store.all(StoredCustomProperty, lambda p: p.org_id == repo.owner_id)
        values: JSON = {p.name: p.default_value for p in defined if p.required and p.default_value is not None}
        values.update({name: value for name, value in repo.custom_properties.items()
                       if any(p.name == name for p in defined)})
        return values

    def custom_property(self, prop: StoredCustomProperty) -> JSON:
        org = self.account(prop.org_id)
        return {
            "property_name": prop.name,
            "url": f"{self.urls.api}/orgs/{quote(org.login)}/properties/schema/{quote(prop.name)}",
            "source_type": "organization",
            "value_type": prop.value_type,
            "required": prop.required,
            "default_value": prop.default_value,
            "description": prop.description,
            "allowed_values": prop.allowed_values,
            "values_editable_by": prop.values_editable_by,
            "require_explicit_values": prop.require_explicit_values,
        }

    # -- issues, pulls, comments -------------------------------------------------------------------------

    def label(self, label: StoredLabel) -> JSON:
        url = f"{self.urls.api}/repos/{self.repo_path(self._repo(label.repo_id))}/labels/{quote(label.name)}"
        return {
            "id": label.id,
            "node_id": node_id("LA", label.id),
            "url": url,
            "name": label.name,
            "color": label.color,
            "default": label.default,
            "description": label.description,
        }

    def _repo(self, repo_id: int) -> StoredRepo:
        repo = self.store.get(StoredRepo, repo_id)
        assert repo is not None
        return repo

    def _labels(self, issue: StoredIssue) -> list[JSON]:
        labels = [self.store.get(StoredLabel, label_id) for label_id in issue.label_ids]
        return [self.label(label) for label in labels if label is not None]

    def reactions_rollup(self, url: str, comment_id: int | None) -> JSON:
        found = self.store.all(StoredReaction, lambda r: r.comment_id == comment_id) if comment_id else []
        rollup: JSON = {"url": url, "total_count": len(found)}
        for content in REACTIONS:
            rollup[content] = sum(1 for r in found if r.content == content)
        return rollup

    def author_association(self, repo: StoredRepo, account_id: int) -> str:
        if account_id == repo.owner_id:
            return "OWNER"
        owner = self.account(repo.owner_id)
        member = self.store.first(StoredMembership, lambda m: m.org_id == owner.id and m.user_id == account_id)
        if owner.type == "Organization" and member is not None:
            return "MEMBER"
        if self.store.first(StoredCollaborator, lambda c: c.repo_id == repo.id and c.user_id == account_id):
            return "COLLABORATOR"
        return "NONE"

    def app(self, app: StoredApp | None, for_webhook: bool = False) -> JSON | None:
        if app is None:
            return None
        owner = self.account(app.owner_id)
        return {
            "id": app.id,
            "slug": app.slug,
            "node_id": node_id("A", app.id),
            "owner": self.user(owner),
            "name": app.name,
            "description": app.description,
            "external_url": f"{self.urls.web}/apps/{app.slug}",
            "html_url": f"{self.urls.web}/apps/{app.slug}",
            "created_at": app.created_at,
            "updated_at": app.created_at,
            "permissions": _permissions(app.permissions, for_webhook),
            "events": list(app.events),
            **({} if for_webhook else {"client_id": app.client_id}),
        }

    def issue(self, issue: StoredIssue, for_webhook: bool = False) -> JSON:
        repo = self._repo(issue.repo_id)
        repo_url = f"{self.urls.api}/repos/{self.repo_path(repo)}"
        url = f"{repo_url}/issues/{issue.number}"
        comments = sum(1 for c in self.store.all(StoredComment, lambda c: c.repo_id == repo.id
                                                 and c.issue_number == issue.number))
        assignees = [self.user_by_id(a) for a in issue.assignee_ids]
        body: JSON = {
            "id": issue.id,
            "node_id": node_id("I", issue.id),
            "url": url,
            "repository_url": repo_url,
            "labels_url": f"{url}/labels{{/name}}",
            "comments_url": f"{url}/comments",
            "events_url": f"{url}/events",
            "html_url": f"{self.urls.web}/{self.repo_path(repo)}/{'pull' if issue.is_pull else 'issues'}/"
                        f"{issue.number}",
            "number": issue.number,
            "state": issue.state,
            "state_reason": issue.state_reason,
            "title": issue.title,
            "body": issue.body,
            "user": self.user_by_id(issue.user_id),
            "labels": self._labels(issue),
            "assignee": assignees[0] if assignees else None,
            "assignees": assignees,
            "milestone": None,
            "locked": issue.locked,
            "active_lock_reason": None,
            "comments": comments,
            "closed_at": issue.closed_at,
            "created_at": issue.created_at,
            "updated_at": issue.updated_at,
            "author_association": self.author_association(repo, issue.user_id),
            "reactions": self.reactions_rollup(f"{url}/reactions", None),
            "timeline_url": f"{url}/timeline",
            "performed_via_github_app": (self.app(self.store.get(StoredApp, issue.app_id), for_webhook=for_webhook)
                                         if issue.app_id else None),
        }
        if issue.is_pull:
            pulls = f"{self.urls.web}/{self.repo_path(repo)}/pull/{issue.number}"
            body["pull_request"] = {
                "url": f"{repo_url}/pulls/{issue.number}",
                "html_url": pulls,
                "diff_url": f"{pulls}.diff",
                "patch_url": f"{pulls}.patch",
                "merged_at": pull.merged_at if (pull := self._pull_of(issue)) else None,
            }
        if not for_webhook:
            body["closed_by"] = self.user_by_id(issue.closed_by_id)
        return body

    def _pull_of(self, issue: StoredIssue) -> StoredPullRequest | None:
        return self.store.first(StoredPullRequest, lambda p: p.issue_id == issue.id)

    def pull(self, pull: StoredPullRequest, full: bool = True, for_webhook: bool = False) -> JSON:
        issue = self.store.get(StoredIssue, pull.issue_id)
        assert issue is not None
        repo = self._repo(pull.repo_id)
        repo_url = f"{self.urls.api}/repos/{self.repo_path(repo)}"
        url = f"{repo_url}/pulls/{pull.number}"
        html = f"{self.urls.web}/{self.repo_path(repo)}/pull/{pull.number}"
        owner = self.account(repo.owner_id)
        repo_json = self.repo(repo, for_webhook=for_webhook, full=for_webhook)
        # A fork's pull request names the fork, and its owner, as its head.
        head_repo = self._repo(pull.head_repo_id) if pull.head_repo_id is not None else repo
        head_owner = self.account(head_repo.owner_id)
        head_json = (self.repo(head_repo, for_webhook=for_webhook, full=for_webhook)
                     if head_repo is not repo else repo_json)
        assignees = [self.user_by_id(a) for a in issue.assignee_ids]
        body: JSON = {
            "url": url,
            "id": pull.id,
            "node_id": node_id("PR", pull.id),
            "html_url": html,
            "diff_url": f"{html}.diff",
            "patch_url": f"{html}.patch",
            "issue_url": f"{repo_url}/issues/{pull.number}",
            "commits_url": f"{url}/commits",
            "review_comments_url": f"{url}/comments",
            "review_comment_url": f"{repo_url}/pulls/comments{{/number}}",
            "comments_url": f"{repo_url}/issues/{pull.number}/comments",
            "statuses_url": f"{repo_url}/statuses/{pull.head_sha}",
            "number": pull.number,
            "state": issue.state,
            "locked": issue.locked,
            "title": issue.title,
            "user": self.user_by_id(issue.user_id),
            "body": issue.body,
            "labels": self._labels(issue),
            "milestone": None,
            "active_lock_reason": None,
            "created_at": issue.created_at,
            "updated_at": issue.updated_at,
            "closed_at": issue.closed_at,
            "merged_at": pull.merged_at,
            "merge_commit_sha": pull.merge_commit_sha,
            "assignee": assignees[0] if assignees else None,
            "assignees": assignees,
            "requested_reviewers": [],
            "requested_teams": [],
            "head": {
                "label": f"{head_owner.login}:{pull.head_ref}",
                "ref": pull.head_ref,
                "sha": pull.head_sha,
                "user": self.user(head_owner),
                "repo": head_json,
            },
            "base": {
                "label": f"{owner.login}:{pull.base_ref}",
                "ref": pull.base_ref,
                "sha": pull.base_sha,
                "user": self.user(owner),
                "repo": repo_json,
            },
            "_links": {
                "self": {"href": url},
                "html": {"href": html},
                "issue": {"href": f"{repo_url}/issues/{pull.number}"},
                "comments": {"href": f"{repo_url}/issues/{pull.number}/comments"},
                "review_comments": {"href": f"{url}/comments"},
                "review_comment": {"href": f"{repo_url}/pulls/comments{{/number}}"},
                "commits": {"href": f"{url}/commits"},
                "statuses": {"href": f"{repo_url}/statuses/{pull.head_sha}"},
            },
            "author_association": self.author_association(repo, issue.user_id),
            "auto_merge": None,
            "draft": pull.draft,
        }
        if full:
            git = self.git_for(repo)
            base = git.merge_base(pull.base_sha, pull.head_sha) or pull.base_sha
            files = git.diff(base, pull.head_sha)
            mergeable: bool | None = True
            if not pull.merged and issue.state == "open":
                mergeable = git.merge_tree(pull.base_sha, pull.head_sha) is not None
            comments = len(self.store.all(StoredComment,
                                          lambda c: c.repo_id == repo.id and c.issue_number == pull.number))
            body.update(
                merged=pull.merged,
                mergeable=mergeable if issue.state == "open" else None,
                rebaseable=mergeable if issue.state == "open" else None,
                mergeable_state=("clean" if mergeable else "dirty") if issue.state == "open" else "unknown",
                merged_by=self.user_by_id(pull.merged_by_id),
                comments=comments,
                review_comments=0,
                maintainer_can_modify=pull.maintainer_can_modify,
                commits=len(git.rev_list(pull.head_sha, pull.base_sha)),
                additions=sum(f.additions for f in files),
                deletions=sum(f.deletions for f in files),
                changed_files=len(files),
            )
        return body

    def comment(self, comment: StoredComment, for_webhook: bool = False) -> JSON:
        repo = self._repo(comment.repo_id)
        repo_url = f"{self.urls.api}/repos/{self.repo_path(repo)}"
        issue = self.store.first(StoredIssue, lambda i: i.repo_id == repo.id and i.number == comment.issue_number)
        kind = "pull" if issue and issue.is_pull else "issues"
        url = f"{repo_url}/issues/comments/{comment.id}"
        return {
            "url": url,
            "html_url": f"{self.urls.web}/{self.repo_path(repo)}/{kind}/{comment.issue_number}"
                        f"#issuecomment-{comment.id}",
            "issue_url": f"{repo_url}/issues/{comment.issue_number}",
            "id": comment.id,
            "node_id": node_id("IC", comment.id),
            "user": self.user_by_id(comment.user_id),
            "created_at": comment.created_at,
            "updated_at": comment.updated_at,
            "author_association": self.author_association(repo, comment.user_id),
            "body": comment.body,
            "reactions": self.reactions_rollup(f"{url}/reactions", comment.id),
            "performed_via_github_app": (self.app(self.store.get(StoredApp, comment.app_id), for_webhook=for_webhook)
                                         if comment.app_id else None),
        }

    def reaction(self, reaction: StoredReaction) -> JSON:
        return {
            "id": reaction.id,
            "node_id": node_id("REA", reaction.id),
            "user": self.user_by_id(reaction.user_id),
            "content": reaction.content,
            "created_at": reaction.created_at,
        }

    def review(self, review: StoredReview, for_webhook: bool = False) -> JSON:
        repo = self._repo(review.repo_id)
        pull_url = f"{self.urls.api}/repos/{self.repo_path(repo)}/pulls/{review.pull_number}"
        html = f"{self.urls.web}/{self.repo_path(repo)}/pull/{review.pull_number}#pullrequestreview-{review.id}"
        return {
            "id": review.id,
            "node_id": node_id("PRR", review.id),
            "user": self.user_by_id(review.user_id),
            "body": review.body,
            "state": review.state.lower() if for_webhook else review.state,
            "html_url": html,
            "pull_request_url": pull_url,
            "author_association": self.author_association(repo, review.user_id),
            "_links": {"html": {"href": html}, "pull_request": {"href": pull_url}},
            "submitted_at": review.submitted_at,
            "commit_id": review.commit_id,
        }

    # -- git data ------------------------------------------------------------------------------------------

    def account_for_email(self, email: str) -> StoredAccount | None:
        local = email.split("@", 1)[0].split("+", 1)[-1]
        return self.store.first(StoredAccount, lambda a: a.email == email or (
            email.endswith("@users.noreply.sandbox") and a.login == local))

    def git_person(self, person: gitrepo.Person) -> JSON:
        return {"name": person.name, "email": person.email, "date": person.date}

    def git_commit(self, repo: StoredRepo, commit: gitrepo.GitCommit) -> JSON:
        url = f"{self.urls.api}/repos/{self.repo_path(repo)}/git/commits/{commit.sha}"
        return {
            "sha": commit.sha,
            "node_id": node_id("C", commit.sha),
            "url": url,
            "html_url": f"{self.urls.web}/{self.repo_path(repo)}/commit/{commit.sha}",
            "author": self.git_person(commit.author),
            "committer": self.git_person(commit.committer),
            "message": commit.message.rstrip("\n"),
            "tree": {"sha": commit.tree,
                     "url": f"{self.urls.api}/repos/{self.repo_path(repo)}/git/trees/{commit.tree}"},
            "parents": [
                {"sha": p, "url": f"{self.urls.api}/repos/{self.repo_path(repo)}/git/commits/{p}",
                 "html_url": f"{self.urls.web}/{self.repo_path(repo)}/commit/{p}"}
                for p in commit.parents
            ],
            "verification": _unsigned(),
        }

    def commit(self, repo: StoredRepo, commit: gitrepo.GitCommit,
               files: list[gitrepo.FileChange] | None = None) -> JSON:
        repo_url = f"{self.urls.api}/repos/{self.repo_path(repo)}"
        html = f"{self.urls.web}/{self.repo_path(repo)}/commit/{commit.sha}"
        body: JSON = {
            "url": f"{repo_url}/commits/{commit.sha}",
            "sha": commit.sha,
            "node_id": node_id("C", commit.sha),
            "html_url": html,
            "comments_url": f"{repo_url}/commits/{commit.sha}/comments",
            "commit": {
                "url": f"{repo_url}/git/commits/{commit.sha}",
                "author": self.git_person(commit.author),
                "committer": self.git_person(commit.committer),
                "message": commit.message.rstrip("\n"),
                "comment_count": 0,
                "tree": {"sha": commit.tree, "url": f"{repo_url}/git/trees/{commit.tree}"},
                "verification": _unsigned(),
            },
            "author": self.user(self.account_for_email(commit.author.email)),
            "committer": self.user(self.account_for_email(commit.committer.email)),
            "parents": [
                {"sha": p, "url": f"{repo_url}/commits/{p}",
                 "html_url": f"{self.urls.web}/{self.repo_path(repo)}/commit/{p}"}
                for p in commit.parents
            ],
        }
        if files is not None:
            additions = sum(f.additions for f in files)
            deletions = sum(f.deletions for f in files)
            body["stats"] = {"additions": additions, "deletions": deletions, "total": additions + deletions}
            body["files"] = [self.diff_entry(repo, f, commit.sha) for f in files]
        return body

    def diff_entry(self, repo: StoredRepo, change: gitrepo.FileChange, ref: str) -> JSON:
        path = quote(change.filename)
        entry: JSON = {
            "sha": change.sha,
            "filename": change.filename,
            "status": change.status,
            "additions": change.additions,
            "deletions": change.deletions,
            "changes": change.changes,
            "blob_url": f"{self.urls.web}/{self.repo_path(repo)}/blob/{ref}/{path}",
            "raw_url": f"{self.urls.web}/{self.repo_path(repo)}/raw/{ref}/{path}",
            "contents_url": f"{self.urls.api}/repos/{self.repo_path(repo)}/contents/{path}?ref={ref}",
        }
        if change.patch is not None:
            entry["patch"] = change.patch
        if change.previous_filename:
            entry["previous_filename"] = change.previous_filename
        return entry

    def git_ref(self, repo: StoredRepo, ref: str, sha: str, kind: str = "commit") -> JSON:
        repo_url = f"{self.urls.api}/repos/{self.repo_path(repo)}"
        return {
            "ref": ref,
            "node_id": node_id("REF", f"{repo.id}:{ref}"),
            "url": f"{repo_url}/git/{quote(ref)}",
            "object": {"type": kind, "sha": sha, "url": f"{repo_url}/git/{kind}s/{sha}"},
        }

    def branch_short(self, repo: StoredRepo, name: str, sha: str, protected: bool) -> JSON:
        repo_url = f"{self.urls.api}/repos/{self.repo_path(repo)}"
        return {
            "name": name,
            "commit": {"sha": sha, "url": f"{repo_url}/commits/{sha}"},
            "protected": protected,
            "protection": {"enabled": protected, "required_status_checks": {
                "enforcement_level": "off", "contexts": [], "checks": []}},
            "protection_url": f"{repo_url}/branches/{quote(name, safe='')}/protection",
        }

    def branch(self, repo: StoredRepo, name: str, commit: gitrepo.GitCommit, protected: bool) -> JSON:
        repo_url = f"{self.urls.api}/repos/{self.repo_path(repo)}"
        return {
            "name": name,
            "commit": self.commit(repo, commit),
            "_links": {"self": f"{repo_url}/branches/{quote(name, safe='')}",
                       "html": f"{self.urls.web}/{self.repo_path(repo)}/tree/{quote(name)}"},
            "protected": protected,
            "protection": {"enabled": protected, "required_status_checks": {
                "enforcement_level": "off", "contexts": [], "checks": []}},
            "protection_url": f"{repo_url}/branches/{quote(name, safe='')}/protection",
        }

    def content(self, repo: StoredRepo, entry: gitrepo.TreeEntry, ref: str, data: bytes | None = None) -> JSON:
        repo_path = self.repo_path(repo)
        path = quote(entry.path)
        kind = {"blob": "file", "tree": "dir", "commit": "submodule"}[entry.type]
        if entry.mode == "120000":
            kind = "symlink"
        url = f"{self.urls.api}/repos/{repo_path}/contents/{path}?ref={quote(ref, safe='')}"
        git_url = f"{self.urls.api}/repos/{repo_path}/git/{'trees' if kind == 'dir' else 'blobs'}/{entry.sha}"
        html = f"{self.urls.web}/{repo_path}/{'tree' if kind == 'dir' else 'blob'}/{quote(ref)}/{path}"
        download = f"{self.urls.web}/{repo_path}/raw/{quote(ref)}/{path}" if kind == "file" else None
        body: JSON = {
            "type": kind,
            "size": entry.size or 0,
            "name": entry.path.rsplit("/", 1)[-1],
            "path": entry.path,
            "sha": entry.sha,
            "url": url,
            "git_url": git_url,
            "html_url": html,
            "download_url": download,
            "_links": {"self": url, "git": git_url, "html": html},
        }
        if data is not None:
            if kind == "symlink":
                body["target"] = data.decode(errors="replace")
            else:
                body["content"] = base64.encodebytes(data).decode()
                body["encoding"] = "base64"
        return body

    # -- checks and statuses -------------------------------------------------------------------------------

    def check_suite(self, suite: StoredCheckSuite, for_webhook: bool = False) -> JSON:
        repo = self._repo(suite.repo_id)
        repo_url = f"{self.urls.api}/repos/{self.repo_path(repo)}"
        runs = self.store.all(StoredCheckRun, lambda r: r.suite_id == suite.id)
        status, conclusion = suite_state(runs)
        git = self.git_for(repo)
        commit = git.commit(suite.head_sha) if git.exists(suite.head_sha) else None
        body: JSON = {
            "id": suite.id,
            "node_id": node_id("CS", suite.id),
            "head_branch": suite.head_branch,
            "head_sha": suite.head_sha,
            "status": status,
            "conclusion": conclusion,
            "url": f"{repo_url}/check-suites/{suite.id}",
            "before": suite.before,
            "after": suite.after,
            "pull_requests": self.pull_refs(repo, suite.head_sha),
            "app": self.app(self.store.get(StoredApp, suite.app_id), for_webhook),
            "created_at": suite.created_at,
            "updated_at": suite.updated_at,
            "rerequestable": suite.rerequestable,
            "runs_rerequestable": True,
            "latest_check_runs_count": len(runs),
            "check_runs_url": f"{repo_url}/check-suites/{suite.id}/check-runs",
            "head_commit": _simple_commit(commit) if commit else None,
        }
        if not for_webhook:
            body["repository"] = self.repo(repo, full=False)
        else:
            body.pop("rerequestable")
            body.pop("runs_rerequestable")
        return body

    def pull_refs(self, repo: StoredRepo, sha: str) -> list[JSON]:
        """`pull-request-minimal` for open PRs whose head is `sha` (as checks report them)."""
        repo_url = f"{self.urls.api}/repos/{self.repo_path(repo)}"
        short = {"id": repo.id, "url": repo_url, "name": repo.name}
        refs = []
        for pull in self.store.all(StoredPullRequest, lambda p: p.repo_id == repo.id and p.head_sha == sha):
            issue = self.store.get(StoredIssue, pull.issue_id)
            if issue is None or issue.state != "open":
                continue
            refs.append({
                "id": pull.id,
                "number": pull.number,
                "url": f"{repo_url}/pulls/{pull.number}",
                "head": {"ref": pull.head_ref, "sha": pull.head_sha, "repo": short},
                "base": {"ref": pull.base_ref, "sha": pull.base_sha, "repo": short},
            })
        return refs

    def check_run(self, run: StoredCheckRun, for_webhook: bool = False) -> JSON:
        repo = self._repo(run.repo_id)
        repo_url = f"{self.urls.api}/repos/{self.repo_path(repo)}"
        url = f"{repo_url}/check-runs/{run.id}"
        suite = self.store.get(StoredCheckSuite, run.suite_id)
        output = run.output
        suite_json: JSON = {"id": run.suite_id}
        if for_webhook and suite is not None:
            suite_json = self.check_suite(suite, for_webhook=True)
            for key in ("latest_check_runs_count", "check_runs_url", "head_commit", "node_id"):
                suite_json.pop(key, None)
        return {
            "id": run.id,
            "head_sha": run.head_sha,
            "node_id": node_id("CR", run.id),
            "external_id": run.external_id or "",
            "url": url,
            "html_url": f"{self.urls.web}/{self.repo_path(repo)}/runs/{run.id}",
            "details_url": run.details_url or f"{self.urls.web}/{self.repo_path(repo)}/runs/{run.id}",
            "status": run.status,
            "conclusion": run.conclusion,
            "started_at": run.started_at,
            "completed_at": run.completed_at,
            "output": {
                "title": output.get("title"),
                "summary": output.get("summary"),
                "text": output.get("text"),
                "annotations_count": len(run.annotations),
                "annotations_url": f"{url}/annotations",
            },
            "name": run.name,
            "check_suite": suite_json,
            "app": self.app(self.store.get(StoredApp, run.app_id), for_webhook),
            "pull_requests": self.pull_refs(repo, run.head_sha),
        }

    def status(self, status: StoredStatus) -> JSON:
        repo = self._repo(status.repo_id)
        creator = self.store.get(StoredAccount, status.creator_id)
        return {
            "url": f"{self.urls.api}/repos/{self.repo_path(repo)}/statuses/{status.sha}",
            "avatar_url": f"{self.urls.web}/avatars/{quote(creator.login) if creator else ''}",
            "id": status.id,
            "node_id": node_id("SC", status.id),
            "state": status.state,
            "description": status.description,
            "target_url": status.target_url,
            "context": status.context,
            "created_at": status.created_at,
            "updated_at": status.updated_at,
            "creator": self.user(creator),
        }

    def combined_status(self, repo: StoredRepo, sha: str, statuses: list[StoredStatus]) -> JSON:
        repo_url = f"{self.urls.api}/repos/{self.repo_path(repo)}"
        states = {s.state for s in statuses}
        if not statuses or "pending" in states:
            state = "pending"
        elif states & {"failure", "error"}:
            state = "failure"
        else:
            state = "success"
        simple = []
        for s in statuses:
            one = self.status(s)
            one.pop("creator")
            simple.append(one)
        return {
            "state": state,
            "statuses": simple,
            "sha": sha,
            "total_count": len(statuses),
            "repository": self.repo(repo, full=False),
            "commit_url": f"{repo_url}/commits/{sha}",
            "url": f"{repo_url}/commits/{sha}/status",
        }

    # -- deployments and workflow runs -------------------------------------------------------------------

    def deployment(self, deployment: StoredDeployment) -> JSON:
        repo_url = f"{self.urls.api}/repos/{self.repo_path(self._repo(deployment.repo_id))}"
        url = f"{repo_url}/deployments/{deployment.id}"
        return {
            "url": url,
            "id": deployment.id,
            "node_id": node_id("DE", deployment.id),
            "sha": deployment.sha,
            "ref": deployment.ref,
            "task": deployment.task,
            "payload": deployment.payload,
            "original_environment": deployment.original_environment or deployment.environment,
            "environment": deployment.environment,
            "description": deployment.description,
            "creator": self.user_by_id(deployment.creator_id),
            "created_at": deployment.created_at,
            "updated_at": deployment.updated_at,
            "statuses_url": f"{url}/statuses",
            "repository_url": repo_url,
            "transient_environment": deployment.transient_environment,
            "production_environment": deployment.production_environment,
            "performed_via_github_app": self.app(self.store.get(StoredApp, deployment.app_id or 0)),
        }

    def deployment_status(self, status: StoredDeploymentStatus) -> JSON:
        repo_url = f"{self.urls.api}/repos/{self.repo_path(self._repo(status.repo_id))}"
        deployment_url = f"{repo_url}/deployments/{status.deployment_id}"
        return {
            "url": f"{deployment_url}/statuses/{status.id}",
            "id": status.id,
            "node_id": node_id("DES", status.id),
            "state": status.state,
            "creator": self.user_by_id(status.creator_id),
            "description": status.description,
            "environment": status.environment,
            "target_url": status.target_url,
            "created_at": status.created_at,
            "updated_at": status.updated_at,
            "deployment_url": deployment_url,
            "repository_url": repo_url,
            "environment_url": status.environment_url,
            "log_url": status.log_url,
            "performed_via_github_app": self.app(self.store.get(StoredApp, status.app_id or 0)),
        }

    def workflow_run(self, run: StoredWorkflowRun) -> JSON:
        repo = self._repo(run.repo_id)
        head_repo = self._repo(run.head_repo_id) if run.head_repo_id is not None else repo
        api = f"{self.urls.api}/repos/{self.repo_path(repo)}"
        web = f"{self.urls.web}/{self.repo_path(repo)}"
        url = f"{api}/actions/runs/{run.id}"
        commit = self.git_for(repo).commit(run.head_sha)
        actor = self.user_by_id(run.actor_id)
        pull_requests = []
        listed = self.store.all(StoredPullRequest, lambda p: p.repo_id == repo.id
                                and p.number in run.pull_request_numbers)
        for pull in listed:
            pull_requests.append({
                "url": f"{api}/pulls/{pull.number}", "id": pull.id, "number": pull.number,
                "head": {"ref": pull.head_ref, "sha": pull.head_sha,
                         "repo": {"id": repo.id, "url": api, "name": repo.name}},
                "base": {"ref": pull.base_ref, "sha": pull.base_sha,
                         "repo": {"id": repo.id, "url": api, "name": repo.name}}})
        return {
            "id": run.id,
            "name": run.name,
            "node_id": node_id("WFR", run.id),
            "check_suite_id": run.id,
            "check_suite_node_id": node_id("CS", run.id),
            "head_branch": run.head_branch,
            "head_sha": run.head_sha,
            "path": run.path,
            "display_title": run.display_title,
            "run_number": run.run_number,
            "run_attempt": run.run_attempt,
            "referenced_workflows": [],
            "event": run.event,
            "status": run.status,
            "conclusion": run.conclusion,
            "workflow_id": run.workflow_id,
            "url": url,
            "html_url": f"{web}/actions/runs/{run.id}",
            "pull_requests": pull_requests,
            "created_at": run.created_at,
            "updated_at": run.updated_at,
            "run_started_at": run.created_at,
            "actor": actor,
            "triggering_actor": actor,
            "jobs_url": f"{url}/jobs",
            "logs_url": f"{url}/logs",
            "check_suite_url": f"{api}/check-suites/{run.id}",
            "artifacts_url": f"{url}/artifacts",
            "cancel_url": f"{url}/cancel",
            "rerun_url": f"{url}/rerun",
            "previous_attempt_url": None,
            "workflow_url": f"{api}/actions/workflows/{run.workflow_id}",
            "head_commit": {
                "id": commit.sha, "tree_id": commit.tree, "message": commit.message.rstrip("\n"),
                "timestamp": commit.committer.date,
                "author": {"name": commit.author.name, "email": commit.author.email},
                "committer": {"name": commit.committer.name, "email": commit.committer.email},
            },
            "repository": self.repo(repo, full=False),
            "head_repository": self.repo(head_repo, full=False),
            "head_repository_id": head_repo.id,
        }

    # -- administration ------------------------------------------------------------------------------------

    def environment(self, env: StoredEnvironment) -> JSON:
        repo = self._repo(env.repo_id)
        rules: list[JSON] = []
        if env.wait_timer:
            rules.append({"id": env.id * 10 + 1, "node_id": node_id("GA", env.id * 10 + 1),
                          "type": "wait_timer", "wait_timer": env.wait_timer})
        if env.reviewers:
            rules.append({"id": env.id * 10 + 2, "node_id": node_id("GA", env.id * 10 + 2),
                          "type": "required_reviewers", "prevent_self_review": env.prevent_self_review,
                          "reviewers": [self._reviewer(r) for r in env.reviewers]})
        body: JSON = {
            "id": env.id,
            "node_id": node_id("EN", env.id),
            "name": env.name,
            "url": f"{self.urls.api}/repos/{self.repo_path(repo)}/environments/{quote(env.name, safe='')}",
            "html_url": f"{self.urls.web}/{self.repo_path(repo)}/deployments/activity_log"
                        f"?environments_filter={quote(env.name)}",
            "created_at": env.created_at,
            "updated_at": env.updated_at,
            "can_admins_bypass": True,
            "protection_rules": rules,
            "deployment_branch_policy": env.deployment_branch_policy,
        }
        return body

    def branch_policy(self, policy: StoredDeploymentBranchPolicy) -> JSON:
        return {"id": policy.id, "node_id": node_id("GBP", policy.id), "name": policy.name, "type": policy.type}

    def _reviewer(self, reviewer: JSON) -> JSON:
        if reviewer["type"] == "Team":
            team = self.store.get(StoredTeam, reviewer["id"])
            return {"type": "Team", "reviewer": self.team(team) if team else None}
        return {"type": "User", "reviewer": self.user_by_id(reviewer["id"])}

    def secret(self, secret: StoredSecret) -> JSON:
        return {"name": secret.name, "created_at": secret.created_at, "updated_at": secret.updated_at}

    def team(self, team: StoredTeam, full: bool = False) -> JSON:
        org = self.account(team.org_id)
        # Clients follow a team's `url`; it names the id-based `/teams/{team_id}` forms.
        url = f"{self.urls.api}/teams/{team.id}"
        body: JSON = {
            "id": team.id,
            "node_id": node_id("T", team.id),
            "url": url,
            "html_url": f"{self.urls.web}/orgs/{quote(org.login)}/teams/{team.slug}",
            "name": team.name,
            "slug": team.slug,
            "description": team.description,
            "privacy": team.privacy,
            "notification_setting": "notifications_enabled",
            "permission": team.permission,
            "members_url": f"{url}/members{{/member}}",
            "repositories_url": f"{url}/repos",
            "type": "organization",
            "organization_id": org.id,
            "parent": None,
        }
        if team.parent_id:
            parent = self.store.get(StoredTeam, team.parent_id)
            if parent is not None:
                body["parent"] = self.team(parent)
                body["parent"].pop("parent", None)
        if full:
            body.update(
                members_count=len(self.store.all(StoredTeamMember, lambda m: m.team_id == team.id)),
                repos_count=len(self.store.all(StoredTeamRepo, lambda r: r.team_id == team.id)),
                created_at=team.created_at,
                updated_at=team.created_at,
                organization=self.org_full(org),
            )
        return body

    def team_membership(self, team: StoredTeam, user: StoredAccount, role: str) -> JSON:
        return {"url": f"{self.urls.api}/teams/{team.id}/memberships/{quote(user.login)}", "role": role,
                "state": "active"}

    def installation(self, installation: StoredInstallation, for_webhook: bool = False) -> JSON:
        app = self.store.get(StoredApp, installation.app_id)
        assert app is not None
        account = self.account(installation.account_id)
        owner = self.user(account) or {}
        if not for_webhook:
            # `apps/list-installations` describes the account as simple-user *and* enterprise (allOf),
            # so it carries the enterprise fields too.
            owner.update(name=account.name or account.login, slug=account.login, created_at=account.created_at,
                         updated_at=account.created_at)
        return {
            "id": installation.id,
            "account": owner,
            "repository_selection": installation.repository_selection,
            "access_tokens_url": f"{self.urls.api}/app/installations/{installation.id}/access_tokens",
            "repositories_url": f"{self.urls.api}/installation/repositories",
            "html_url": f"{self.urls.web}/settings/installations/{installation.id}",
            "app_id": app.id,
            "app_slug": app.slug,
            **({} if for_webhook else {"client_id": app.client_id}),
            "target_id": account.id,
            "target_type": account.type,
            "permissions": _permissions(installation.permissions, for_webhook),
            "events": list(installation.events),
            "created_at": installation.created_at,
            "updated_at": installation.created_at,
            "single_file_name": None,
            "has_multiple_single_files": False,
            "single_file_paths": [],
            "suspended_by": None,
            "suspended_at": None,
        }

    def hook(self, hook: StoredHook) -> JSON:
        repo = self._repo(hook.repo_id) if hook.repo_id else None
        base = f"{self.urls.api}/repos/{self.repo_path(repo)}/hooks/{hook.id}" if repo else f"{self.urls.api}/app/hook"
        last = self.store.all(StoredDelivery, lambda d: d.hook_id == hook.id)
        last_response: JSON = {"code": None, "status": "unused", "message": None}
        if last:
            latest = last[-1]
            last_response = {"code": latest.status_code or None, "status": "active" if latest.status == "OK"
                             else "failed", "message": latest.status}
        return {
            "type": "Repository" if repo else "App",
            "id": hook.id,
            "name": "web",
            "active": hook.active,
            "events": list(hook.events),
            "config": {"url": hook.url, "content_type": hook.content_type, "insecure_ssl": "0",
                       **({"secret": "********"} if hook.secret else {})},
            "updated_at": hook.updated_at,
            "created_at": hook.created_at,
            "url": base,
            "test_url": f"{base}/test",
            "ping_url": f"{base}/pings",
            "deliveries_url": f"{base}/deliveries",
            "last_response": last_response,
        }

    def delivery(self, delivery: StoredDelivery, full: bool = False) -> JSON:
        body: JSON = {
            "id": delivery.id,
            "guid": delivery.guid,
            "delivered_at": delivery.delivered_at,
            "redelivery": delivery.redelivery,
            "duration": delivery.duration,
            "status": delivery.status,
            "status_code": delivery.status_code,
            "event": delivery.event,
            "action": delivery.action,
            "installation_id": delivery.installation_id,
            "repository_id": delivery.repository_id,
            "throttled_at": None,
        }
        if full:
            try:
                payload: Any = json.loads(delivery.request_body)
            except ValueError:
                payload = None
            body["request"] = {"headers": dict(delivery.request_headers), "payload": payload}
            body["response"] = {"headers": dict(delivery.response_headers), "payload": delivery.response_body}
        return body


def suite_state(runs: list[StoredCheckRun]) -> tuple[str, str | None]:
    """A suite's status and conclusion from its runs, as GitHub derives them."""
    if not runs:
        return "queued", None
    if any(r.status != "completed" for r in runs):
        return ("in_progress" if any(r.status == "in_progress" for r in runs) else "queued"), None
    conclusions = [r.conclusion for r in runs]
    for worst in ("action_required", "cancelled", "timed_out", "failure", "stale", "neutral", "skipped"):
        if worst in conclusions and worst not in ("neutral", "skipped"):
            return "completed", worst
    if all(c in ("neutral", "skipped") for c in conclusions):
        return "completed", "neutral"
    return "completed", "success"


def _unsigned() -> JSON:
    return {"verified": False, "reason": "unsigned", "signature": None, "payload": None, "verified_at": None}


def _simple_commit(commit: gitrepo.GitCommit) -> JSON:
    return {
        "id": commit.sha,
        "tree_id": commit.tree,
        "message": commit.message.rstrip("\n"),
        "timestamp": commit.committer.date,
        "author": {"name": commit.author.name, "email": commit.author.email},
        "committer": {"name": commit.committer.name, "email": commit.committer.email},
    }
