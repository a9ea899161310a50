"""The one place that talks to GitHub: the `Forge` port implemented with PyGithub.

Works against github.com, GitHub Enterprise and the local sandbox forge alike; only the API base URL
differs. Every PyGithub error is wrapped in `ForgeError` carrying GitHub's status and message.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC
from typing import Any, TypeVar

from github import Auth, Github, GithubException, GithubIntegration

from bot.errors import PavedError
from bot.forge import ANNOTATIONS_PER_REQUEST, Annotation, CheckRun, Issue, Permission, PullRequest, Review

log = logging.getLogger(__name__)
T = TypeVar("T")


class ForgeError(PavedError):
    """Raised when GitHub refuses or fails a request; `status` is the HTTP status (0 when none)."""

    def __init__(self, message: str, *, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


@contextmanager
def _wrapped(what: str) -> Iterator[None]:
    try:
        yield
    except GithubException as exc:
        data = exc.data if isinstance(exc.data, dict) else {}
        message = data.get("message") or str(exc)
        raise ForgeError(f"GitHub refused to {what}: {message} ({exc.status})", status=exc.status) from exc


# PyGithub waits 0.25 s between requests and 1 s between writes by default, as GitHub asks of
# clients to stay clear of its secondary rate limits. Against the local sandbox forge nothing is
# gained by waiting, so callers may turn it off.
POLITE = {"seconds_between_requests": 0.25, "seconds_between_writes": 1.0}
IMPATIENT: dict[str, float | None] = {"seconds_between_requests": None, "seconds_between_writes": None}


def _observed(requester: Any, api_url: str) -> None:
    """Count every request `requester` makes, and record the rate limit GitHub reports, in Paved's metrics.

    PyGithub calls its requester's `DEBUG_ON_RESPONSE` hook after every response, with the status and the
    headers and whether or not its debug mode is on: wrapping it on this one requester sees each call of
    this client, without touching PyGithub's classes (other clients in the process are not counted).
    """
    from bot.adapters import metrics

    original = requester.DEBUG_ON_RESPONSE

    def on_response(status: int, headers: dict[str, Any], data: Any) -> None:
        remaining = headers.get("x-ratelimit-remaining")
        metrics.github_answered(api_url, int(status), None if remaining is None else str(remaining))
        original(status, headers, data)

    requester.DEBUG_ON_RESPONSE = on_response


def connect_with_token(api_url: str, token: str, *, polite: bool = True) -> Github:
    client = Github(base_url=api_url, auth=Auth.Token(token), per_page=100, retry=None,
                    **(POLITE if polite else IMPATIENT))
    _observed(client.requester, api_url)
    return client


def oauth_user_token(api_url: str, client_id: str, client_secret: str, code: str) -> str:
    """The user access token GitHub's OAuth web flow gives for `code` (the visitor's, signing in)."""
    from requests import RequestException

    client = Github(base_url=api_url, retry=None, seconds_between_requests=None, seconds_between_writes=None)
    application = client.get_oauth_application(client_id, client_secret)
    try:
        # GitHub answers a refused exchange with 200 and an `error`; PyGithub raises on it.
        return str(application.get_access_token(code).token)
    except GithubException as exc:
        data = exc.data if isinstance(exc.data, dict) else {}
        raise ForgeError(f"GitHub refused the sign-in code: {data.get('error') or exc.status}",
                         status=exc.status) from exc
    except RequestException as exc:
        raise ForgeError(f"GitHub could not be reached to finish signing in ({type(exc).__name__})") from exc


def login_of_token(api_url: str, token: str) -> str:
    """Whose a user access token is."""
    from requests import RequestException

    client = Github(base_url=api_url, auth=Auth.Token(token), retry=None, seconds_between_requests=None,
                    seconds_between_writes=None)
    try:
        return str(client.get_user().login)
    except GithubException as exc:
        raise ForgeError(f"GitHub would not say who signed in ({exc.status})", status=exc.status) from exc
    except RequestException as exc:
        raise ForgeError(f"GitHub could not be reached to finish signing in ({type(exc).__name__})") from exc


def installation_client(api_url: str, app_id: int | str, private_key: str, installation_id: int, *,
                        polite: bool = True) -> Github:
    """A client acting as one installation of a GitHub App (its token is renewed by PyGithub)."""
    auth = Auth.AppAuth(int(app_id), private_key).get_installation_auth(installation_id)
    client = Github(base_url=api_url, auth=auth, per_page=100, retry=None,
                    **(POLITE if polite else IMPATIENT))
    _observed(client.requester, api_url)
    return client


def _integration(api_url: str, app_id: int | str, private_key: str) -> GithubIntegration:
    integration = GithubIntegration(base_url=api_url, auth=Auth.AppAuth(int(app_id), private_key))
    _observed(integration.requester, api_url)
    return integration


def installation_of(api_url: str, app_id: int | str, private_key: str, repo: str) -> int:
    """The id of the App's installation that covers `repo`."""
    owner, name = repo.split("/", 1)
    integration = _integration(api_url, app_id, private_key)
    with _wrapped(f"find the installation for {repo}"):
        return int(integration.get_repo_installation(owner, name).id)


def _pull(repo: str, pr: Any) -> PullRequest:
    head_repo = pr.head.repo.full_name if pr.head.repo is not None else None
    return PullRequest(
        repo=repo, number=pr.number, title=pr.title, author=pr.user.login, head_sha=pr.head.sha,
        head_ref=pr.head.ref, base_ref=pr.base.ref, base_sha=pr.base.sha, state=pr.state,
        merged=bool(pr.merged), merge_commit_sha=pr.merge_commit_sha,
        merged_by=pr.merged_by.login if pr.merged and pr.merged_by is not None else None,
        draft=bool(pr.draft), from_fork=head_repo is not None and head_repo != repo, url=pr.html_url,
        created_at=pr.created_at.astimezone(UTC).isoformat(timespec="seconds") if pr.created_at else "",
    )


def _output(check: CheckRun, annotations: tuple[Annotation, ...]) -> dict[str, Any]:
    return {
        "title": check.title[:255], "summary": check.summary[:65535], "text": check.text[:65535],
        "annotations": [
            {"path": a.path, "start_line": a.line, "end_line": a.line, "annotation_level": a.level,
             "message": a.message[:64 * 1024], "title": a.title[:255],
             **({"start_column": a.column, "end_column": a.column} if a.column else {})}
            for a in annotations
        ],
    }


class GitHubForge:
    """`Forge` over one PyGithub client.

    Paved knows its own comments and check runs by who made them, never by their text alone: anyone
    who may comment can write Paved's hidden markers, and any workflow can name a check run
    `paved/plan`. Acting as a GitHub App installation, Paved's are those made by its App (a comment's
    `performed_via_github_app`, a check run's `app`); acting with a token, those of the token's user.
    """

    def __init__(self, client: Github, *, login: str | None = None) -> None:
        self.client = client
        self._repos: dict[str, Any] = {}
        self._login = login  # whom a token acts as, when GitHub will not say (the Actions job token)

    @property
    def app_id(self) -> int | None:
        """The id of the GitHub App Paved acts as, or None when it acts with a person's token."""
        auth = self.client.requester.auth
        return int(auth.app_id) if isinstance(auth, Auth.AppInstallationAuth) else None

    def _user_login(self) -> str:
        if self._login is None:
            with _wrapped("read whose token Paved acts with"):
                self._login = str(self.client.get_user().login)
        return self._login

    def _mine(self, comment: Any) -> bool:
        """Whether Paved wrote this issue comment."""
        app_id = self.app_id
        if app_id is not None:
            via = comment.performed_via_github_app
            return via is not None and int(via.id) == app_id
        return comment.user is not None and comment.user.login == self._user_login()

    def _own_run(self, run: Any) -> bool:
        """Whether Paved published this check run (only Apps publish check runs)."""
        app_id = self.app_id
        return app_id is None or (run.app is not None and int(run.app.id) == app_id)

    def _own_runs(self, repo: str, sha: str, name: str) -> list[Any]:
        return [run for run in self._repo(repo).get_commit(sha).get_check_runs(check_name=name) if self._own_run(run)]

    def _repo(self, repo: str) -> Any:
        if repo not in self._repos:
            with _wrapped(f"read {repo}"):
                self._repos[repo] = self.client.get_repo(repo)
        return self._repos[repo]

    def _call(self, what: str, action: Callable[[], T]) -> T:
        with _wrapped(what):
            return action()

    def pull_request(self, repo: str, number: int) -> PullRequest:
        return self._call(f"read pull request #{number} of {repo}",
                          lambda: _pull(repo, self._repo(repo).get_pull(number)))

    def open_pull_requests(self, repo: str) -> list[PullRequest]:
        return self._call(f"list the open pull requests of {repo}",
                          lambda: [_pull(repo, pr) for pr in self._repo(repo).get_pulls(state="open")])

    def reviews(self, repo: str, number: int) -> list[Review]:
        def read() -> list[Review]:
            return [Review(r.user.login, r.state, r.commit_id)
                    for r in self._repo(repo).get_pull(number).get_reviews() if r.user is not None]
        return self._call(f"read the reviews of #{number} in {repo}", read)

    def upsert_comment(self, repo: str, number: int, marker: str, body: str) -> int:
        def upsert() -> int:
            issue = self._repo(repo).get_issue(number)
            for comment in issue.get_comments():
                if comment.body.startswith(marker) and self._mine(comment):
                    if comment.body != body:
                        comment.edit(body)
                    return int(comment.id)
            return int(issue.create_comment(body).id)
        return self._call(f"comment on #{number} in {repo}", upsert)

    def comment(self, repo: str, number: int, body: str) -> int:
        return self._call(f"comment on #{number} in {repo}",
                          lambda: int(self._repo(repo).get_issue(number).create_comment(body).id))

    def react(self, repo: str, number: int, comment_id: int, content: str) -> None:
        self._call(f"react to comment {comment_id} in {repo}",
                   lambda: self._repo(repo).get_issue(number).get_comment(comment_id).create_reaction(content))

    def publish_check(self, repo: str, check: CheckRun) -> int:
        def publish() -> int:
            target = self._repo(repo)
            batches = [check.annotations[i:i + ANNOTATIONS_PER_REQUEST]
                       for i in range(0, len(check.annotations), ANNOTATIONS_PER_REQUEST)] or [()]
            existing = next(iter(self._own_runs(repo, check.head_sha, check.name)), None)
            fields: dict[str, Any] = {"status": "completed" if check.conclusion else "in_progress"}
            if check.conclusion:
                fields["conclusion"] = check.conclusion
            if check.details_url:
                fields["details_url"] = check.details_url
            if existing is None:
                run = target.create_check_run(name=check.name, head_sha=check.head_sha,
                                              output=_output(check, batches[0]), **fields)
            else:
                run = existing
                run.edit(output=_output(check, batches[0]), **fields)
            for batch in batches[1:]:
                run.edit(output=_output(check, batch))
            return int(run.id)
        return self._call(f"publish the {check.name} check on {check.head_sha[:12]} in {repo}", publish)

    def permission_of(self, repo: str, login: str) -> Permission:
        def read() -> Permission:
            try:
                level = self._repo(repo).get_collaborator_role_name(login)
            except GithubException as exc:
                if exc.status == 404:
                    return "none"
                raise
            return {"admin": "admin", "maintain": "maintain", "write": "write", "triage": "triage",
                    "read": "read"}.get(str(level), "none")  # type: ignore[return-value]
        return self._call(f"read {login}'s permission on {repo}", read)

    def default_branch(self, repo: str) -> str:
        return self._call(f"read {repo}", lambda: str(self._repo(repo).default_branch))

    def clone_url(self, repo: str) -> str:
        return self._call(f"read {repo}", lambda: str(self._repo(repo).clone_url))

    def merged_pull_request(self, repo: str, sha: str) -> PullRequest | None:
        def find() -> PullRequest | None:
            recent = self._repo(repo).get_pulls(state="closed", sort="updated", direction="desc")
            for pr, _ in zip(recent, range(50), strict=False):
                if pr.merged and pr.merge_commit_sha == sha:
                    return _pull(repo, pr)
            return None
        return self._call(f"find the pull request merged as {sha[:12]} in {repo}", find)

    def has_check(self, repo: str, sha: str, name: str) -> bool:
        return self.check_conclusion(repo, sha, name) is not None

    def check_conclusion(self, repo: str, sha: str, name: str) -> str | None:
        def read() -> str | None:
            runs = self._own_runs(repo, sha, name)
            if not runs:
                return None
            return str(runs[0].conclusion) if runs[0].status == "completed" else str(runs[0].status)
        return self._call(f"read the checks of {sha[:12]} in {repo}", read)

    def admin_teams(self, repo: str) -> dict[str, tuple[str, ...]]:
        def read() -> dict[str, tuple[str, ...]]:
            return {str(team.slug): tuple(sorted(str(u.login) for u in team.get_members()))
                    for team in self._repo(repo).get_teams() if team.permission == "admin"}
        return self._call(f"read the teams with admin permission on {repo}", read)

    @staticmethod
    def _issue(issue: Any) -> Issue:
        return Issue(number=int(issue.number), title=issue.title or "", body=issue.body or "",
                     state="closed" if issue.state == "closed" else "open",
                     labels=tuple(lb.name for lb in issue.labels), url=issue.html_url or "")

    def labelled_issues(self, repo: str, label: str) -> list[Issue]:
        # GitHub's issue list holds pull requests too; they carry `pull_request`.
        return self._call(f"list the open issues labelled {label} in {repo}", lambda: [
            self._issue(i) for i in self._repo(repo).get_issues(state="open", labels=[label])
            if i.pull_request is None])

    def open_issue(self, repo: str, title: str, body: str, labels: Iterable[str] = ()) -> Issue:
        return self._call(f"open an issue in {repo}", lambda: self._issue(
            self._repo(repo).create_issue(title=title, body=body, labels=list(labels))))

    def ensure_label(self, repo: str, name: str, color: str, description: str) -> None:
        def ensure() -> None:
            target = self._repo(repo)
            try:
                target.get_label(name)
            except GithubException as exc:
                if exc.status != 404:
                    raise
                target.create_label(name, color, description)
        self._call(f"create the label {name} in {repo}", ensure)

    def update_issue(self, repo: str, number: int, title: str, body: str) -> None:
        self._call(f"update issue #{number} in {repo}",
                   lambda: self._repo(repo).get_issue(number).edit(title=title, body=body))

    def close_issue(self, repo: str, number: int, comment: str) -> None:
        def close() -> None:
            issue = self._repo(repo).get_issue(number)
            issue.create_comment(comment)
            issue.edit(state="closed", state_reason="completed")
        self._call(f"close issue #{number} in {repo}", close)


def token_of(client: Github) -> str:
    """The token a client currently authenticates with (an installation's is renewed when it expires)."""
    auth = client.requester.auth
    token = getattr(auth, "token", None)
    if not isinstance(token, str):
        raise ForgeError("this GitHub client has no token to hand to git")
    return token


def installed_repositories(api_url: str, app_id: int | str, private_key: str) -> list[str]:
    """Every repository the App is installed on, across its installations."""
    integration = _integration(api_url, app_id, private_key)
    with _wrapped("list the App's installations and their repositories"):
        return sorted(repo.full_name for installation in integration.get_installations()
                      for repo in installation.get_repos())
