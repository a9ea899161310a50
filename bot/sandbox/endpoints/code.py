"""Repositories, contents, branches, commits and git data (refs, trees, blobs, commits)."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from .. import gitrepo
from ..errors import ApiError, invalid, not_found, unprocessable
from ..github import READ_CODE, WRITE_CODE, SandboxGitHub
from ..model import StoredProtection, StoredRepo
from ..routing import Depends, Request, Response, Routes, no_content
from .common import forge_of, permissions_json, repository, string_field

routes = Routes()

_SHA = re.compile(r"^[0-9a-f]{40}$")


@routes.get("/repos/{owner}/{repo}")
def get_repo(request: Request, repo: StoredRepo = Depends(repository())) -> Response:
    forge = forge_of(request)
    return Response(200, forge.render.repo(repo, permissions_json(forge, request, repo)))


@routes.patch("/repos/{owner}/{repo}")
def update_repo(request: Request, repo: StoredRepo = Depends(repository())) -> Response:
    forge = forge_of(request)
    repo = forge.update_repo(request.principal, repo, request.body())
    return Response(200, forge.render.repo(repo, permissions_json(forge, request, repo)))


@routes.delete("/repos/{owner}/{repo}")
def delete_repo(request: Request, repo: StoredRepo = Depends(repository())) -> Response:
    forge = forge_of(request)
    forge.delete_repo(request.principal, repo)
    return no_content()


# -- contents ----------------------------------------------------------------------------------------------

def _ref_sha(forge: SandboxGitHub, repo: StoredRepo, ref: str | None) -> tuple[str, str]:
    """(ref name as given or the default branch, commit sha); 404 as GitHub when it names nothing."""
    ref = ref or repo.default_branch
    sha = forge.git(repo).resolve(ref if _SHA.match(ref) or ref.startswith("refs/") else f"refs/heads/{ref}")
    sha = sha or forge.git(repo).resolve(ref)
    if sha is None:
        raise ApiError(404, f"No commit found for the ref {ref}")
    return ref, sha


@routes.get("/repos/{owner}/{repo}/contents")
@routes.get("/repos/{owner}/{repo}/contents/{path+}")
def get_content(request: Request, repo: StoredRepo = Depends(repository(READ_CODE))) -> Response:
    forge = forge_of(request)
    git = forge.git(repo)
    if not git.branches():
        raise ApiError(404, "This repository is empty.")
    ref, sha = _ref_sha(forge, repo, request.query.get("ref"))
    path = request.params.get("path", "").strip("/")
    entry = git.entry(sha, path)
    if entry is None:
        raise not_found()
    accept = request.headers.get("Accept") or ""
    if entry.type == "tree":
        listing = [forge.render.content(repo, e, ref) for e in git.tree(entry.sha)]
        for item, e in zip(listing, git.tree(entry.sha), strict=True):
            item["path"] = f"{path}/{e.path}".lstrip("/")
            item["name"] = e.path
        if "object" in accept:
            root = forge.render.content(repo, entry, ref)
            root["entries"] = listing
            return Response(200, root, content_type="application/vnd.github.object; charset=utf-8")
        return Response(200, listing)
    data = git.blob(entry.sha) if entry.type == "blob" else None
    if "raw" in accept and data is not None:
        return Response(200, data, content_type="application/vnd.github.raw; charset=utf-8")
    return Response(200, forge.render.content(repo, entry, ref, data))


@routes.put("/repos/{owner}/{repo}/contents/{path+}")
def put_content(request: Request, repo: StoredRepo = Depends(repository(WRITE_CODE))) -> Response:
    forge = forge_of(request)
    body = request.body()
    message = string_field(body, "message", "Content", required=True)
    content = string_field(body, "content", "Content", required=True)
    assert message is not None and content is not None
    try:
        data = base64.b64decode(content, validate=False)
    except (binascii.Error, ValueError) as exc:
        raise invalid("Content", "content", "invalid", "content is not valid Base64") from exc
    path = request.params["path"].strip("/")
    git = forge.git(repo)
    branch = string_field(body, "branch", "Content") or repo.default_branch
    existed = git.resolve(f"refs/heads/{branch}")
    before = git.entry(existed, path) if existed else None
    sha = forge.commit_files(request.principal, repo, branch, {path: data}, message,
                             expected_shas={path: string_field(body, "sha", "Content")})
    entry = git.entry(sha, path)
    assert entry is not None
    file_json = forge.render.content(repo, entry, branch)
    return Response(200 if before else 201, {"content": file_json,
                                             "commit": forge.render.git_commit(repo, git.commit(sha))})


@routes.delete("/repos/{owner}/{repo}/contents/{path+}")
def delete_content(request: Request, repo: StoredRepo = Depends(repository(WRITE_CODE))) -> Response:
    forge = forge_of(request)
    body = request.body()
    message = string_field(body, "message", "Content", required=True)
    sha = string_field(body, "sha", "Content", required=True)
    assert message is not None
    branch = string_field(body, "branch", "Content") or repo.default_branch
    path = request.params["path"].strip("/")
    commit = forge.commit_files(request.principal, repo, branch, {path: None}, message, expected_shas={path: sha})
    return Response(200, {"content": None, "commit": forge.render.git_commit(repo, forge.git(repo).commit(commit))})


# -- branches and commits ---------------------------------------------------------------------------------

def _protected(forge: SandboxGitHub, repo: StoredRepo) -> set[str]:
    return {p.branch for p in forge.store.all(StoredProtection, lambda p: p.repo_id == repo.id)}


@routes.get("/repos/{owner}/{repo}/branches")
def list_branches(request: Request, repo: StoredRepo = Depends(repository(READ_CODE))) -> Response:
    forge = forge_of(request)
    protected = _protected(forge, repo)
    branches = sorted(forge.git(repo).branches().items())
    if "protected" in request.query:
        branches = [b for b in branches if (b[0] in protected) == request.flag("protected")]
    return Response(200, [forge.render.branch_short(repo, name, sha, name in protected)
                          for name, sha in request.paginate(branches)])


@routes.get("/repos/{owner}/{repo}/branches/{branch+}")
def get_branch(request: Request, repo: StoredRepo = Depends(repository(READ_CODE))) -> Response:
    forge = forge_of(request)
    name = request.params["branch"]
    git = forge.git(repo)
    sha = git.resolve(f"refs/heads/{name}")
    if sha is None:
        raise ApiError(404, "Branch not found")
    return Response(200, forge.render.branch(repo, name, git.commit(sha), name in _protected(forge, repo)))


@routes.get("/repos/{owner}/{repo}/commits")
def list_commits(request: Request, repo: StoredRepo = Depends(repository(READ_CODE))) -> Response:
    forge = forge_of(request)
    git = forge.git(repo)
    if not git.branches():
        raise ApiError(409, "Git Repository is empty.")
    _, head = _ref_sha(forge, repo, request.query.get("sha"))
    args = ["rev-list", head]
    if request.query.get("path"):
        args += ["--", request.query["path"]]
    shas = git.text(*args).split()
    return Response(200, [forge.render.commit(repo, git.commit(sha)) for sha in request.paginate(shas)])


@routes.get("/repos/{owner}/{repo}/commits/{ref+}")
def get_commit(request: Request, repo: StoredRepo = Depends(repository(READ_CODE))) -> Response:
    forge = forge_of(request)
    git = forge.git(repo)
    ref = request.params["ref"]
    sha = git.resolve(ref) or git.resolve(f"refs/heads/{ref}")
    if sha is None:
        raise unprocessable(f"No commit found for SHA: {ref}")
    commit = git.commit(sha)
    files = git.diff(commit.parents[0] if commit.parents else None, sha)
    page = request.paginate(files, max_total=3000)
    return Response(200, forge.render.commit(repo, commit, page))


# -- git data -----------------------------------------------------------------------------------------------

def _ref_json(forge: SandboxGitHub, repo: StoredRepo, ref: str, sha: str) -> dict[str, Any]:
    kind = forge.git(repo).object_type(sha) or "commit"
    return forge.render.git_ref(repo, ref, sha, kind)


@routes.get("/repos/{owner}/{repo}/git/ref/{ref+}")
@routes.get("/repos/{owner}/{repo}/git/refs/{ref+}")
def get_ref(request: Request, repo: StoredRepo = Depends(repository(READ_CODE))) -> Response:
    forge = forge_of(request)
    ref = "refs/" + request.params["ref"].removeprefix("refs/")
    sha = forge.git(repo).refs(ref).get(ref)
    if sha is None:
        raise not_found()
    return Response(200, _ref_json(forge, repo, ref, sha))


@routes.get("/repos/{owner}/{repo}/git/refs")
@routes.get("/repos/{owner}/{repo}/git/matching-refs/{ref+}")
def list_matching_refs(request: Request, repo: StoredRepo = Depends(repository(READ_CODE))) -> Response:
    forge = forge_of(request)
    prefix = "refs/" + request.params.get("ref", "").removeprefix("refs/")
    found = [(name, sha) for name, sha in forge.git(repo).refs("refs/").items() if name.startswith(prefix)]
    return Response(200, [_ref_json(forge, repo, name, sha) for name, sha in request.paginate(found)])


@routes.post("/repos/{owner}/{repo}/git/refs")
def create_ref(request: Request, repo: StoredRepo = Depends(repository(WRITE_CODE))) -> Response:
    forge = forge_of(request)
    body = request.body()
    ref = string_field(body, "ref", "Reference", required=True)
    sha = string_field(body, "sha", "Reference", required=True)
    assert ref is not None and sha is not None
    if not ref.startswith("refs/") or ref.count("/") < 2:
        raise unprocessable("Reference name must start with 'refs/' and have at least two slashes.")
    git = forge.git(repo)
    if not _SHA.match(sha) or not git.exists(sha):
        raise unprocessable("Object does not exist")
    if ref in git.refs(ref):
        raise unprocessable("Reference already exists")
    forge.move_ref(request.principal, repo, ref, sha, None, force=True)
    return Response(201, _ref_json(forge, repo, ref, sha))


@routes.patch("/repos/{owner}/{repo}/git/refs/{ref+}")
def update_ref(request: Request, repo: StoredRepo = Depends(repository(WRITE_CODE))) -> Response:
    forge = forge_of(request)
    body = request.body()
    sha = string_field(body, "sha", "Reference", required=True)
    assert sha is not None
    ref = "refs/" + request.params["ref"].removeprefix("refs/")
    git = forge.git(repo)
    current = git.refs(ref).get(ref)
    if current is None:
        raise unprocessable("Reference does not exist")
    if not _SHA.match(sha) or not git.exists(sha):
        raise unprocessable("Object does not exist")
    force = body.get("force", False)
    if not isinstance(force, bool):
        raise invalid("Reference", "force", "invalid")
    forge.move_ref(request.principal, repo, ref, sha, current, force=force)
    return Response(200, _ref_json(forge, repo, ref, sha))


@routes.delete("/repos/{owner}/{repo}/git/refs/{ref+}")
def delete_ref(request: Request, repo: StoredRepo = Depends(repository(WRITE_CODE))) -> Response:
    forge = forge_of(request)
    ref = "refs/" + request.params["ref"].removeprefix("refs/")
    forge.move_ref(request.principal, repo, ref, None, None)
    return no_content()


@routes.get("/repos/{owner}/{repo}/git/trees/{tree_sha+}")
def get_tree(request: Request, repo: StoredRepo = Depends(repository(READ_CODE))) -> Response:
    forge = forge_of(request)
    git = forge.git(repo)
    given = request.params["tree_sha"]
    sha = git.resolve(given, "tree") or git.resolve(f"refs/heads/{given}", "tree")
    if sha is None:
        raise not_found()
    recursive = request.query.get("recursive") not in (None, "", "0", "false")
    return Response(200, _tree_json(forge, repo, sha, git.tree(sha, recursive=recursive)))


def _tree_json(forge: SandboxGitHub, repo: StoredRepo, sha: str, entries: list[gitrepo.TreeEntry]) -> dict[str, Any]:
    base = f"{forge.urls.api}/repos/{forge.render.repo_path(repo)}/git"
    tree = []
    for e in entries:
        item: dict[str, Any] = {"path": e.path, "mode": e.mode, "type": e.type, "sha": e.sha}
        if e.type == "blob":
            item["size"] = e.size or 0
            item["url"] = f"{base}/blobs/{e.sha}"
        elif e.type == "tree":
            item["url"] = f"{base}/trees/{e.sha}"
        tree.append(item)
    return {"sha": sha, "url": f"{base}/trees/{sha}", "tree": tree, "truncated": False}


@routes.post("/repos/{owner}/{repo}/git/trees")
def create_tree(request: Request, repo: StoredRepo = Depends(repository(WRITE_CODE))) -> Response:
    forge = forge_of(request)
    git = forge.git(repo)
    body = request.body()
    entries = body.get("tree")
    if not isinstance(entries, list):
        raise invalid("Tree", "tree", "missing_field")
    base_tree = body.get("base_tree")
    if base_tree is not None:
        base_tree = git.resolve(str(base_tree), "tree")
        if base_tree is None:
            raise unprocessable("base_tree is not a valid tree oid")
    changes = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("path"), str):
            raise invalid("Tree", f"tree[{index}].path", "missing_field")
        mode, kind = entry.get("mode", "100644"), entry.get("type", "blob")
        if mode not in ("100644", "100755", "040000", "160000", "120000") or kind not in ("blob", "tree", "commit"):
            raise unprocessable(f"tree.{index}.mode is invalid")
        sha = entry.get("sha", "")
        if "content" in entry:
            if not isinstance(entry["content"], str):
                raise invalid("Tree", f"tree[{index}].content", "invalid")
            sha = git.write_blob(entry["content"].encode())
        elif sha is not None and (not isinstance(sha, str) or not git.exists(sha)):
            raise unprocessable(f"tree.sha {sha} is not a valid {kind}")
        changes.append(gitrepo.TreeChange(entry["path"], mode, sha, kind))
    sha = git.write_tree(base_tree, changes)
    return Response(201, _tree_json(forge, repo, sha, git.tree(sha)))


@routes.get("/repos/{owner}/{repo}/git/blobs/{file_sha}")
def get_blob(request: Request, repo: StoredRepo = Depends(repository(READ_CODE))) -> Response:
    forge = forge_of(request)
    git = forge.git(repo)
    sha = request.params["file_sha"]
    if not _SHA.match(sha) or git.object_type(sha) != "blob":
        raise not_found()
    data = git.blob(sha)
    return Response(200, {
        "sha": sha, "node_id": forge.render.git_ref(repo, sha, sha)["node_id"], "size": len(data),
        "url": f"{forge.urls.api}/repos/{forge.render.repo_path(repo)}/git/blobs/{sha}",
        "content": base64.encodebytes(data).decode(), "encoding": "base64",
    })


@routes.post("/repos/{owner}/{repo}/git/blobs")
def create_blob(request: Request, repo: StoredRepo = Depends(repository(WRITE_CODE))) -> Response:
    forge = forge_of(request)
    body = request.body()
    content = string_field(body, "content", "Blob", required=True)
    assert content is not None
    encoding = body.get("encoding", "utf-8")
    if encoding not in ("utf-8", "base64"):
        raise invalid("Blob", "encoding", "invalid")
    try:
        data = base64.b64decode(content) if encoding == "base64" else content.encode()
    except (binascii.Error, ValueError) as exc:
        raise invalid("Blob", "content", "invalid") from exc
    sha = forge.git(repo).write_blob(data)
    return Response(201, {"sha": sha, "url": f"{forge.urls.api}/repos/{forge.render.repo_path(repo)}/git/blobs/{sha}"})


@routes.get("/repos/{owner}/{repo}/git/commits/{commit_sha}")
def get_git_commit(request: Request, repo: StoredRepo = Depends(repository(READ_CODE))) -> Response:
    forge = forge_of(request)
    git = forge.git(repo)
    sha = request.params["commit_sha"]
    if not _SHA.match(sha) or git.object_type(sha) != "commit":
        raise not_found()
    return Response(200, forge.render.git_commit(repo, git.commit(sha)))


@routes.post("/repos/{owner}/{repo}/git/commits")
def create_git_commit(request: Request, repo: StoredRepo = Depends(repository(WRITE_CODE))) -> Response:
    forge = forge_of(request)
    git = forge.git(repo)
    body = request.body()
    message = string_field(body, "message", "Commit", required=True)
    tree = string_field(body, "tree", "Commit", required=True)
    assert message is not None and tree is not None
    if git.object_type(tree) != "tree":
        raise unprocessable("Tree SHA does not exist")
    parents = body.get("parents", [])
    if not isinstance(parents, list) or any(not isinstance(p, str) or git.object_type(p) != "commit" for p in parents):
        raise unprocessable("Parent SHA does not exist or is not a commit object")
    default = forge.person_of(request.principal)
    author = _person(body.get("author"), default, "author")
    committer = _person(body.get("committer"), author, "committer")
    sha = git.write_commit(tree, parents, message, author, committer)
    return Response(201, forge.render.git_commit(repo, git.commit(sha)))


def _person(value: Any, default: gitrepo.Person, field: str) -> gitrepo.Person:
    if value is None:
        return default
    if not isinstance(value, dict) or not isinstance(value.get("name"), str) or not isinstance(value.get("email"), str):
        raise invalid("Commit", field, "invalid")
    return gitrepo.Person(value["name"], value["email"], value.get("date") or default.date)
