"""Check runs, check suites and commit statuses."""

from __future__ import annotations

from ..auth import Need
from ..errors import not_found, unprocessable
from ..model import StoredCheckRun, StoredCheckSuite, StoredRepo, StoredStatus
from ..routing import Depends, Request, Response, Routes
from .common import forge_of, repo_of, repository

routes = Routes()

READ_CHECKS = Need("checks", "read", "read")
READ_STATUSES = Need("statuses", "read", "read")


def _run(request: Request) -> StoredCheckRun:
    forge = forge_of(request)
    repo = repo_of(request, READ_CHECKS)
    run = forge.store.get(StoredCheckRun, request.int_param("check_run_id"))
    if run is None or run.repo_id != repo.id:
        raise not_found()
    return run


@routes.post("/repos/{owner}/{repo}/check-runs")
def create_check_run(request: Request, repo: StoredRepo = Depends(repository())) -> Response:
    forge = forge_of(request)
    run = forge.create_check_run(request.principal, repo, request.body())
    return Response(201, forge.render.check_run(run))


@routes.get("/repos/{owner}/{repo}/check-runs/{check_run_id}")
def get_check_run(request: Request) -> Response:
    return Response(200, forge_of(request).render.check_run(_run(request)))


@routes.patch("/repos/{owner}/{repo}/check-runs/{check_run_id}")
def update_check_run(request: Request, repo: StoredRepo = Depends(repository())) -> Response:
    forge = forge_of(request)
    run = forge.update_check_run(request.principal, repo, request.int_param("check_run_id"), request.body())
    return Response(200, forge.render.check_run(run))


@routes.get("/repos/{owner}/{repo}/check-runs/{check_run_id}/annotations")
def list_annotations(request: Request) -> Response:
    run = _run(request)
    forge = forge_of(request)
    repo = repo_of(request)
    blob = f"{forge.urls.web}/{forge.render.repo_path(repo)}/blob/{run.head_sha}"
    answer = []
    for a in request.paginate(run.annotations):
        answer.append({
            "path": a["path"], "blob_href": f"{blob}/{a['path']}",
            "start_line": a["start_line"], "end_line": a["end_line"],
            "start_column": a.get("start_column"), "end_column": a.get("end_column"),
            "annotation_level": a["annotation_level"], "title": a.get("title"), "message": a["message"],
            "raw_details": a.get("raw_details"),
        })
    return Response(200, answer)


@routes.post("/repos/{owner}/{repo}/check-runs/{check_run_id}/rerequest")
def rerequest_check_run(request: Request, repo: StoredRepo = Depends(repository())) -> Response:
    forge = forge_of(request)
    forge.rerequest_check_run(request.principal, repo, request.int_param("check_run_id"))
    return Response(201, {})


@routes.get("/repos/{owner}/{repo}/commits/{ref+}/check-runs")
def list_check_runs_for_ref(request: Request, repo: StoredRepo = Depends(repository(READ_CHECKS))) -> Response:
    forge = forge_of(request)
    sha = _sha(request, request.params["ref"])
    runs = forge.store.all(StoredCheckRun, lambda r: r.repo_id == repo.id and r.head_sha == sha)
    if request.query.get("check_name"):
        runs = [r for r in runs if r.name == request.query["check_name"]]
    if request.query.get("status"):
        runs = [r for r in runs if r.status == request.query["status"]]
    if request.query.get("filter", "latest") == "latest":
        latest: dict[tuple[int, str], StoredCheckRun] = {}
        for run in runs:
            latest[(run.app_id, run.name)] = run
        runs = sorted(latest.values(), key=lambda r: r.id)
    runs.reverse()  # newest first, as GitHub lists them
    return Response(200, {"total_count": len(runs),
                          "check_runs": [forge.render.check_run(r) for r in request.paginate(runs)]})


def _sha(request: Request, ref: str) -> str:
    forge = forge_of(request)
    repo = repo_of(request)
    git = forge.git(repo)
    sha = git.resolve(f"refs/heads/{ref}") or git.resolve(ref)
    if sha is None:
        raise unprocessable(f"No commit found for SHA: {ref}")
    return sha


@routes.get("/repos/{owner}/{repo}/commits/{ref+}/check-suites")
def list_check_suites_for_ref(request: Request, repo: StoredRepo = Depends(repository(READ_CHECKS))) -> Response:
    forge = forge_of(request)
    sha = _sha(request, request.params["ref"])
    suites = forge.store.all(StoredCheckSuite, lambda s: s.repo_id == repo.id and s.head_sha == sha)
    return Response(200, {"total_count": len(suites),
                          "check_suites": [forge.render.check_suite(s) for s in request.paginate(suites)]})


def _suite(request: Request) -> StoredCheckSuite:
    forge = forge_of(request)
    repo = repo_of(request, READ_CHECKS)
    suite = forge.store.get(StoredCheckSuite, request.int_param("check_suite_id"))
    if suite is None or suite.repo_id != repo.id:
        raise not_found()
    return suite


@routes.get("/repos/{owner}/{repo}/check-suites/{check_suite_id}")
def get_check_suite(request: Request) -> Response:
    return Response(200, forge_of(request).render.check_suite(_suite(request)))


@routes.get("/repos/{owner}/{repo}/check-suites/{check_suite_id}/check-runs")
def list_check_runs_in_suite(request: Request) -> Response:
    forge = forge_of(request)
    suite = _suite(request)
    runs = list(reversed(forge.store.all(StoredCheckRun, lambda r: r.suite_id == suite.id)))
    return Response(200, {"total_count": len(runs),
                          "check_runs": [forge.render.check_run(r) for r in request.paginate(runs)]})


@routes.post("/repos/{owner}/{repo}/check-suites/{check_suite_id}/rerequest")
def rerequest_check_suite(request: Request, repo: StoredRepo = Depends(repository())) -> Response:
    forge = forge_of(request)
    forge.rerequest_check_suite(request.principal, repo, request.int_param("check_suite_id"))
    return Response(201, {})


# -- commit statuses --------------------------------------------------------------------------------------------

@routes.post("/repos/{owner}/{repo}/statuses/{sha}")
def create_status(request: Request, repo: StoredRepo = Depends(repository())) -> Response:
    forge = forge_of(request)
    body = request.body()
    status = forge.create_status(request.principal, repo, request.params["sha"], body.get("state"),
                                 body.get("context"), body.get("description"), body.get("target_url"))
    return Response(201, forge.render.status(status))


def _statuses(request: Request) -> tuple[str, list[StoredStatus]]:
    forge = forge_of(request)
    repo = repo_of(request, READ_STATUSES)
    sha = _sha(request, request.params["ref"])
    return sha, list(reversed(forge.store.all(StoredStatus, lambda s: s.repo_id == repo.id and s.sha == sha)))


@routes.get("/repos/{owner}/{repo}/commits/{ref+}/statuses")
@routes.get("/repos/{owner}/{repo}/statuses/{ref+}")  # the older spelling, still served (PyGithub uses it)
def list_statuses(request: Request) -> Response:
    forge = forge_of(request)
    _, statuses = _statuses(request)
    return Response(200, [forge.render.status(s) for s in request.paginate(statuses)])


@routes.get("/repos/{owner}/{repo}/commits/{ref+}/status")
def combined_status(request: Request, repo: StoredRepo = Depends(repository(READ_STATUSES))) -> Response:
    forge = forge_of(request)
    sha, statuses = _statuses(request)
    latest: dict[str, StoredStatus] = {}
    for status in statuses:  # newest first: keep the first per context
        latest.setdefault(status.context, status)
    chosen = sorted(latest.values(), key=lambda s: s.id)
    return Response(200, forge.render.combined_status(repo, sha, request.paginate(chosen)))
