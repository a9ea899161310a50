"""Deployments, their statuses, and GitHub Actions' workflow runs: what a repository has deployed where, and
how its workflows ran."""

from __future__ import annotations

from ..auth import Need
from ..errors import not_found
from ..github.deployments import READ_DEPLOYMENTS
from ..model import StoredDeploymentStatus, StoredRepo
from ..routing import Depends, Request, Response, Routes
from .common import forge_of, repository

routes = Routes()

READ_ACTIONS = Need("actions", "read", "read")
_DEPLOYMENT = "/repos/{owner}/{repo}/deployments/{deployment_id}"


@routes.post("/repos/{owner}/{repo}/deployments")
def create_deployment(request: Request, repo: StoredRepo = Depends(repository())) -> Response:
    forge = forge_of(request)
    return Response(201, forge.render.deployment(forge.create_deployment(request.principal, repo, request.body())))


@routes.get("/repos/{owner}/{repo}/deployments")
def list_deployments(request: Request, repo: StoredRepo = Depends(repository(READ_DEPLOYMENTS))) -> Response:
    forge = forge_of(request)
    # An empty filter narrows to nothing but what has that empty value, as on GitHub (`?environment=`).
    found = forge.deployments(repo, sha=request.query.get("sha"), ref=request.query.get("ref"),
                              task=request.query.get("task"), environment=request.query.get("environment"))
    return Response(200, [forge.render.deployment(d) for d in request.paginate(found)])


@routes.get(_DEPLOYMENT)
def get_deployment(request: Request, repo: StoredRepo = Depends(repository(READ_DEPLOYMENTS))) -> Response:
    forge = forge_of(request)
    return Response(200, forge.render.deployment(forge.deployment(repo, request.int_param("deployment_id"))))


@routes.post(f"{_DEPLOYMENT}/statuses")
def create_deployment_status(request: Request, repo: StoredRepo = Depends(repository())) -> Response:
    forge = forge_of(request)
    status = forge.create_deployment_status(request.principal, repo, request.int_param("deployment_id"),
                                            request.body())
    return Response(201, forge.render.deployment_status(status))


@routes.get(f"{_DEPLOYMENT}/statuses")
def list_deployment_statuses(request: Request, repo: StoredRepo = Depends(repository(READ_DEPLOYMENTS))) -> Response:
    forge = forge_of(request)
    deployment = forge.deployment(repo, request.int_param("deployment_id"))
    statuses = forge.deployment_statuses(deployment)
    return Response(200, [forge.render.deployment_status(s) for s in request.paginate(statuses)])


@routes.get(f"{_DEPLOYMENT}/statuses/{{status_id}}")
def get_deployment_status(request: Request, repo: StoredRepo = Depends(repository(READ_DEPLOYMENTS))) -> Response:
    forge = forge_of(request)
    deployment = forge.deployment(repo, request.int_param("deployment_id"))
    status = forge.store.get(StoredDeploymentStatus, request.int_param("status_id"))
    if status is None or status.deployment_id != deployment.id:
        raise not_found()
    return Response(200, forge.render.deployment_status(status))


# -- workflow runs ------------------------------------------------------------------------------------------------

@routes.get("/repos/{owner}/{repo}/actions/runs")
def list_workflow_runs(request: Request, repo: StoredRepo = Depends(repository(READ_ACTIONS))) -> Response:
    forge = forge_of(request)
    query = request.query
    runs = forge.workflow_runs(repo)
    if "branch" in query:
        runs = [r for r in runs if r.head_branch == query["branch"]]
    if "event" in query:
        runs = [r for r in runs if r.event == query["event"]]
    if "status" in query:  # a run's status or its conclusion, as GitHub's filter takes either
        runs = [r for r in runs if query["status"] in (r.status, r.conclusion)]
    if "head_sha" in query:
        runs = [r for r in runs if r.head_sha == query["head_sha"]]
    if "actor" in query:
        logins = {r.actor_id: forge.render.account(r.actor_id).login.lower() for r in runs}
        runs = [r for r in runs if logins[r.actor_id] == query["actor"].lower()]
    page = request.paginate(runs, max_total=1000)
    shown = [forge.render.workflow_run(r) for r in page]
    if request.flag("exclude_pull_requests"):
        for run in shown:
            run["pull_requests"] = []
    return Response(200, {"total_count": len(runs), "workflow_runs": shown})


@routes.get("/repos/{owner}/{repo}/actions/runs/{run_id}")
def get_workflow_run(request: Request, repo: StoredRepo = Depends(repository(READ_ACTIONS))) -> Response:
    forge = forge_of(request)
    run = forge.workflow_run(repo, request.int_param("run_id"))
    shown = forge.render.workflow_run(run)
    if request.flag("exclude_pull_requests"):
        shown["pull_requests"] = []
    return Response(200, shown)
