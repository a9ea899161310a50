"""Pull requests, reviews, issues, issue comments, reactions and labels."""

from __future__ import annotations

from typing import Any

from ..auth import Need
from ..errors import ApiError, invalid, not_found
from ..model import StoredComment, StoredIssue, StoredLabel, StoredPullRequest, StoredReaction, StoredRepo, StoredReview
from ..routing import Depends, Request, Response, Routes, no_content
from .common import forge_of, repo_of, repository, string_field

routes = Routes()

READ_PULLS = Need("pull_requests", "read", "read")
READ_ISSUES = Need("issues", "read", "read")
MAX_PULL_FILES = 3000
MAX_PULL_COMMITS = 250


def _number(request: Request, name: str = "pull_number") -> int:
    return request.int_param(name)


def _read_issue_need(request: Request, repo: StoredRepo, number: int) -> None:
    """Issues of a PR may be read with either permission, as on GitHub."""
    forge = forge_of(request)
    issue = forge.issue(repo, number)
    if issue.is_pull and forge.access.may(request.principal, repo, READ_PULLS):
        return
    forge.access.require(request.principal, repo, READ_ISSUES)


# -- pull requests ------------------------------------------------------------------------------------------

@routes.get("/repos/{owner}/{repo}/pulls")
def list_pulls(request: Request, repo: StoredRepo = Depends(repository(READ_PULLS))) -> Response:
    forge = forge_of(request)
    state = request.query.get("state", "open")
    if state not in ("open", "closed", "all"):
        raise invalid("PullRequest", "state", "invalid")
    head, base = request.query.get("head"), request.query.get("base")
    pulls = []
    for pull in forge.store.all(StoredPullRequest, lambda p: p.repo_id == repo.id):
        issue = forge.store.get(StoredIssue, pull.issue_id)
        if issue is None or (state != "all" and issue.state != state):
            continue
        if head and head.split(":", 1)[-1] != pull.head_ref:
            continue
        if base and base != pull.base_ref:
            continue
        pulls.append((pull, issue))
    sort = request.query.get("sort", "created")
    key = {"created": lambda pi: pi[1].created_at, "updated": lambda pi: pi[1].updated_at}.get(sort)
    pulls.sort(key=key or (lambda pi: pi[1].created_at), reverse=request.query.get("direction", "desc") == "desc")
    if key is not None:
        # Newest first by default; ties (same second) broken by number.
        pulls.sort(key=lambda pi: (key(pi), pi[0].number), reverse=request.query.get("direction", "desc") == "desc")
    return Response(200, [forge.render.pull(p, full=False) for p, _ in request.paginate(pulls)])


@routes.get("/repos/{owner}/{repo}/commits/{commit_sha}/pulls")
def list_pulls_of_commit(request: Request, repo: StoredRepo = Depends(repository(READ_PULLS))) -> Response:
    """GitHub's "list pull requests associated with a commit": the pull request whose merge made the commit,
    and those whose commits include it (a commit not yet on the default branch), newest first."""
    forge = forge_of(request)
    git = forge.git(repo)
    sha = git.resolve(request.params["commit_sha"])
    if sha is None:
        raise ApiError(422, f"No commit found for SHA: {request.params['commit_sha']}")
    found = []
    for pull in forge.store.all(StoredPullRequest, lambda p: p.repo_id == repo.id):
        if pull.merge_commit_sha == sha or (pull.head_repo_id is None and sha in git.rev_list(pull.head_sha,
                                                                                                pull.base_sha)):
            found.append(pull)
    found.sort(key=lambda p: p.number, reverse=True)
    return Response(200, [forge.render.pull(p, full=False) for p in request.paginate(found)])


@routes.post("/repos/{owner}/{repo}/pulls")
def create_pull(request: Request, repo: StoredRepo = Depends(repository())) -> Response:
    forge = forge_of(request)
    body = request.body()
    head = string_field(body, "head", "PullRequest", required=True)
    base = string_field(body, "base", "PullRequest", required=True)
    title = string_field(body, "title", "PullRequest", required=True)
    assert head is not None and base is not None and title is not None
    text = string_field(body, "body", "PullRequest")
    pull = forge.open_pull_request(request.principal, repo, head, base, title, text,
                                   draft=bool(body.get("draft", False)),
                                   maintainer_can_modify=bool(body.get("maintainer_can_modify", False)))
    return Response(201, forge.render.pull(pull))


@routes.get("/repos/{owner}/{repo}/pulls/{pull_number}")
def get_pull(request: Request, repo: StoredRepo = Depends(repository(READ_PULLS))) -> Response:
    forge = forge_of(request)
    pull = forge.pull(repo, _number(request))
    accept = request.headers.get("Accept") or ""
    if "diff" in accept or "patch" in accept:
        git = forge.git(repo)
        merge_base = git.merge_base(pull.base_sha, pull.head_sha) or pull.base_sha
        text = git.run("diff", "--no-color", "-M", merge_base, pull.head_sha).stdout
        kind = "diff" if "diff" in accept else "patch"
        return Response(200, text, content_type=f"application/vnd.github.{kind}; charset=utf-8")
    return Response(200, forge.render.pull(pull))


@routes.patch("/repos/{owner}/{repo}/pulls/{pull_number}")
def update_pull(request: Request, repo: StoredRepo = Depends(repository())) -> Response:
    forge = forge_of(request)
    body = request.body()
    pull = forge.update_pull_request(request.principal, repo, _number(request),
                                     title=string_field(body, "title", "PullRequest"),
                                     body=string_field(body, "body", "PullRequest"),
                                     state=string_field(body, "state", "PullRequest"),
                                     base=string_field(body, "base", "PullRequest"))
    return Response(200, forge.render.pull(pull))


@routes.get("/repos/{owner}/{repo}/pulls/{pull_number}/files")
def list_pull_files(request: Request, repo: StoredRepo = Depends(repository(READ_PULLS))) -> Response:
    forge = forge_of(request)
    pull = forge.pull(repo, _number(request))
    git = forge.git(repo)
    merge_base = git.merge_base(pull.base_sha, pull.head_sha) or pull.base_sha
    files = git.diff(merge_base, pull.head_sha)
    page = request.paginate(files, max_total=MAX_PULL_FILES)
    return Response(200, [forge.render.diff_entry(repo, f, pull.head_sha) for f in page])


@routes.get("/repos/{owner}/{repo}/pulls/{pull_number}/commits")
def list_pull_commits(request: Request, repo: StoredRepo = Depends(repository(READ_PULLS))) -> Response:
    forge = forge_of(request)
    pull = forge.pull(repo, _number(request))
    git = forge.git(repo)
    shas = git.rev_list(pull.head_sha, pull.base_sha)
    page = request.paginate(shas, max_total=MAX_PULL_COMMITS)
    return Response(200, [forge.render.commit(repo, git.commit(sha)) for sha in page])


@routes.get("/repos/{owner}/{repo}/pulls/{pull_number}/merge")
def check_merged(request: Request, repo: StoredRepo = Depends(repository(READ_PULLS))) -> Response:
    forge = forge_of(request)
    pull = forge.pull(repo, _number(request))
    if not pull.merged:
        raise not_found()
    return no_content()


@routes.put("/repos/{owner}/{repo}/pulls/{pull_number}/merge")
def merge_pull(request: Request, repo: StoredRepo = Depends(repository())) -> Response:
    forge = forge_of(request)
    body = request.body()
    method = string_field(body, "merge_method", "PullRequest") or "merge"
    pull = forge.merge(request.principal, repo, _number(request), method,
                       string_field(body, "commit_title", "PullRequest"),
                       string_field(body, "commit_message", "PullRequest"),
                       string_field(body, "sha", "PullRequest"))
    return Response(200, {"sha": pull.merge_commit_sha, "merged": True, "message": "Pull Request successfully merged"})


@routes.get("/repos/{owner}/{repo}/pulls/{pull_number}/reviews")
def list_reviews(request: Request, repo: StoredRepo = Depends(repository(READ_PULLS))) -> Response:
    forge = forge_of(request)
    number = _number(request)
    forge.pull(repo, number)
    reviews = forge.store.all(StoredReview, lambda r: r.repo_id == repo.id and r.pull_number == number)
    return Response(200, [forge.render.review(r) for r in request.paginate(reviews)])


@routes.post("/repos/{owner}/{repo}/pulls/{pull_number}/reviews")
def create_review(request: Request, repo: StoredRepo = Depends(repository())) -> Response:
    forge = forge_of(request)
    body = request.body()
    event = string_field(body, "event", "PullRequestReview")
    if event is None:
        raise ApiError(422, "Unprocessable Entity", errors=[{"code": "custom",
                       "message": "Pending reviews are not supported by this forge; pass an event"}])
    if body.get("comments"):
        raise invalid("PullRequestReview", "comments", "unsupported", "review comments are not supported")
    review = forge.review(request.principal, repo, _number(request), event,
                          string_field(body, "body", "PullRequestReview") or "",
                          string_field(body, "commit_id", "PullRequestReview"))
    return Response(200, forge.render.review(review))


@routes.get("/repos/{owner}/{repo}/pulls/{pull_number}/reviews/{review_id}")
def get_review(request: Request, repo: StoredRepo = Depends(repository(READ_PULLS))) -> Response:
    forge = forge_of(request)
    review = forge.store.get(StoredReview, request.int_param("review_id"))
    if review is None or review.repo_id != repo.id or review.pull_number != _number(request):
        raise not_found()
    return Response(200, forge.render.review(review))


# -- issues ----------------------------------------------------------------------------------------------------

@routes.get("/repos/{owner}/{repo}/issues")
def list_issues(request: Request, repo: StoredRepo = Depends(repository(READ_ISSUES))) -> Response:
    forge = forge_of(request)
    state = request.query.get("state", "open")
    wanted_labels = {n.strip().lower() for n in request.query.get("labels", "").split(",") if n.strip()}
    issues = []
    for issue in forge.store.all(StoredIssue, lambda i: i.repo_id == repo.id):
        if state != "all" and issue.state != state:
            continue
        if wanted_labels:
            names = {lb.name.lower() for lb in (forge.store.get(StoredLabel, i) for i in issue.label_ids) if lb}
            if not wanted_labels <= names:
                continue
        issues.append(issue)
    issues.sort(key=lambda i: (i.created_at, i.number), reverse=request.query.get("direction", "desc") == "desc")
    return Response(200, [forge.render.issue(i) for i in request.paginate(issues)])


@routes.post("/repos/{owner}/{repo}/issues")
def create_issue(request: Request, repo: StoredRepo = Depends(repository())) -> Response:
    forge = forge_of(request)
    body = request.body()
    title = body.get("title")
    title = str(title) if isinstance(title, str | int) else ""
    labels = body.get("labels") or []
    names = [lb if isinstance(lb, str) else lb.get("name", "") for lb in labels if isinstance(lb, str | dict)]
    issue = forge.create_issue(request.principal, repo, title, string_field(body, "body", "Issue"), names)
    return Response(201, forge.render.issue(issue))


@routes.get("/repos/{owner}/{repo}/issues/{issue_number}")
def get_issue(request: Request, repo: StoredRepo = Depends(repository())) -> Response:
    forge = forge_of(request)
    number = _number(request, "issue_number")
    _read_issue_need(request, repo, number)
    return Response(200, forge.render.issue(forge.issue(repo, number)))


@routes.patch("/repos/{owner}/{repo}/issues/{issue_number}")
def update_issue(request: Request, repo: StoredRepo = Depends(repository())) -> Response:
    forge = forge_of(request)
    body = request.body()
    labels = body.get("labels")
    names = None
    if labels is not None:
        names = [lb if isinstance(lb, str) else lb.get("name", "") for lb in labels if isinstance(lb, str | dict)]
    issue = forge.update_issue(request.principal, repo, _number(request, "issue_number"),
                               title=string_field(body, "title", "Issue"), body=string_field(body, "body", "Issue"),
                               state=string_field(body, "state", "Issue"),
                               state_reason=string_field(body, "state_reason", "Issue"), labels=names)
    return Response(200, forge.render.issue(issue))


# -- comments and reactions -------------------------------------------------------------------------------------

@routes.get("/repos/{owner}/{repo}/issues/{issue_number}/comments")
def list_comments(request: Request, repo: StoredRepo = Depends(repository())) -> Response:
    forge = forge_of(request)
    number = _number(request, "issue_number")
    _read_issue_need(request, repo, number)
    comments = forge.store.all(StoredComment, lambda c: c.repo_id == repo.id and c.issue_number == number)
    since = request.query.get("since")
    if since:
        comments = [c for c in comments if c.updated_at >= since]
    return Response(200, [forge.render.comment(c) for c in request.paginate(comments)])


@routes.post("/repos/{owner}/{repo}/issues/{issue_number}/comments")
def create_comment(request: Request, repo: StoredRepo = Depends(repository())) -> Response:
    forge = forge_of(request)
    body = request.body()
    comment = forge.comment(request.principal, repo, _number(request, "issue_number"), body.get("body"))
    return Response(201, forge.render.comment(comment))


def _comment(request: Request) -> tuple[StoredRepo, StoredComment]:
    forge = forge_of(request)
    repo = repo_of(request)
    comment = forge.get_comment(repo, request.int_param("comment_id"))
    _read_issue_need(request, repo, comment.issue_number)
    return repo, comment


@routes.get("/repos/{owner}/{repo}/issues/comments/{comment_id}")
def get_comment(request: Request) -> Response:
    _, comment = _comment(request)
    return Response(200, forge_of(request).render.comment(comment))


@routes.patch("/repos/{owner}/{repo}/issues/comments/{comment_id}")
def update_comment(request: Request) -> Response:
    forge = forge_of(request)
    repo, comment = _comment(request)
    body = request.body()
    comment = forge.edit_comment(request.principal, repo, comment.id, body.get("body"))
    return Response(200, forge.render.comment(comment))


@routes.delete("/repos/{owner}/{repo}/issues/comments/{comment_id}")
def delete_comment(request: Request) -> Response:
    forge = forge_of(request)
    repo, comment = _comment(request)
    forge.delete_comment(request.principal, repo, comment.id)
    return no_content()


@routes.get("/repos/{owner}/{repo}/issues/comments/{comment_id}/reactions")
def list_reactions(request: Request) -> Response:
    forge = forge_of(request)
    _, comment = _comment(request)
    reactions = forge.store.all(StoredReaction, lambda r: r.comment_id == comment.id)
    if request.query.get("content"):
        reactions = [r for r in reactions if r.content == request.query["content"]]
    return Response(200, [forge.render.reaction(r) for r in request.paginate(reactions)])


@routes.post("/repos/{owner}/{repo}/issues/comments/{comment_id}/reactions")
def create_reaction(request: Request) -> Response:
    forge = forge_of(request)
    repo, comment = _comment(request)
    content = request.body().get("content")
    reaction, new = forge.react(request.principal, repo, comment.id, content if isinstance(content, str) else "")
    return Response(201 if new else 200, forge.render.reaction(reaction))


@routes.delete("/repos/{owner}/{repo}/issues/comments/{comment_id}/reactions/{reaction_id}")
def delete_reaction(request: Request) -> Response:
    forge = forge_of(request)
    repo, comment = _comment(request)
    forge.unreact(request.principal, repo, comment.id, request.int_param("reaction_id"))
    return no_content()


# -- labels -----------------------------------------------------------------------------------------------------

def _label_names(request: Request) -> list[str]:
    body = request.json()
    if isinstance(body, dict):
        body = body.get("labels", [])
    if not isinstance(body, list):
        raise invalid("Label", "labels", "invalid")
    names: list[str] = []
    for item in body:
        name = item.get("name") if isinstance(item, dict) else item
        if not isinstance(name, str) or not name:
            raise invalid("Label", "name", "invalid")
        names.append(name)
    return names


def _issue_labels(request: Request, issue: StoredIssue) -> list[dict[str, Any]]:
    forge = forge_of(request)
    labels = [forge.store.get(StoredLabel, i) for i in issue.label_ids]
    return [forge.render.label(lb) for lb in labels if lb is not None]


@routes.get("/repos/{owner}/{repo}/issues/{issue_number}/labels")
def list_issue_labels(request: Request, repo: StoredRepo = Depends(repository())) -> Response:
    forge = forge_of(request)
    number = _number(request, "issue_number")
    _read_issue_need(request, repo, number)
    return Response(200, request.paginate(_issue_labels(request, forge.issue(repo, number))))


@routes.post("/repos/{owner}/{repo}/issues/{issue_number}/labels")
def add_labels(request: Request, repo: StoredRepo = Depends(repository())) -> Response:
    forge = forge_of(request)
    issue = forge.set_labels(request.principal, repo, _number(request, "issue_number"), _label_names(request), add=True)
    return Response(200, _issue_labels(request, issue))


@routes.put("/repos/{owner}/{repo}/issues/{issue_number}/labels")
def set_labels(request: Request, repo: StoredRepo = Depends(repository())) -> Response:
    forge = forge_of(request)
    issue = forge.set_labels(request.principal, repo, _number(request, "issue_number"), _label_names(request))
    return Response(200, _issue_labels(request, issue))


@routes.delete("/repos/{owner}/{repo}/issues/{issue_number}/labels")
def remove_all_labels(request: Request, repo: StoredRepo = Depends(repository())) -> Response:
    forge = forge_of(request)
    forge.set_labels(request.principal, repo, _number(request, "issue_number"), [])
    return no_content()


@routes.delete("/repos/{owner}/{repo}/issues/{issue_number}/labels/{name}")
def remove_label(request: Request, repo: StoredRepo = Depends(repository())) -> Response:
    forge = forge_of(request)
    issue = forge.remove_label(request.principal, repo, _number(request, "issue_number"), request.params["name"])
    return Response(200, _issue_labels(request, issue))


@routes.get("/repos/{owner}/{repo}/labels")
def list_labels(request: Request, repo: StoredRepo = Depends(repository(READ_ISSUES))) -> Response:
    forge = forge_of(request)
    labels = forge.store.all(StoredLabel, lambda lb: lb.repo_id == repo.id)
    return Response(200, [forge.render.label(lb) for lb in request.paginate(labels)])


@routes.post("/repos/{owner}/{repo}/labels")
def create_label(request: Request, repo: StoredRepo = Depends(repository())) -> Response:
    forge = forge_of(request)
    body = request.body()
    label = forge.create_label(request.principal, repo, body.get("name"), body.get("color"),
                               string_field(body, "description", "Label"))
    return Response(201, forge.render.label(label))


@routes.get("/repos/{owner}/{repo}/labels/{name}")
def get_label(request: Request, repo: StoredRepo = Depends(repository(READ_ISSUES))) -> Response:
    forge = forge_of(request)
    return Response(200, forge.render.label(forge.find_label(repo, request.params["name"])))


@routes.patch("/repos/{owner}/{repo}/labels/{name}")
def update_label(request: Request, repo: StoredRepo = Depends(repository())) -> Response:
    forge = forge_of(request)
    body = request.body()
    label = forge.update_label(request.principal, repo, request.params["name"],
                               string_field(body, "new_name", "Label") or string_field(body, "name", "Label"),
                               string_field(body, "color", "Label"), string_field(body, "description", "Label"))
    return Response(200, forge.render.label(label))


@routes.delete("/repos/{owner}/{repo}/labels/{name}")
def delete_label(request: Request, repo: StoredRepo = Depends(repository())) -> Response:
    forge = forge_of(request)
    forge.delete_label(request.principal, repo, request.params["name"])
    return no_content()
