"""Deployments and their statuses (GitHub's REST reference: Deployments > Deployments, Deployments > Deployment
statuses).

A deployment asks for a commit to be deployed to an environment; whatever deploys it (a workflow job, with
its `GITHUB_TOKEN`) reports how it went with statuses, newest last. As on GitHub: the ref is resolved to its
commit when the deployment is made; the commit's status checks must pass first (every context it has, or
`required_contexts`; `[]` checks none); an environment that does not exist yet is created; and a `success`
status marks the environment's earlier successful deployments `inactive` (`auto_inactive`, for environments
that are neither transient nor production). The sandbox merges nothing: `auto_merge` is accepted and ignored.
"""

from __future__ import annotations

from typing import Any

from ..auth import Need, Principal, now_iso
from ..errors import ApiError, invalid, not_found, unprocessable
from ..model import StoredDeployment, StoredDeploymentStatus, StoredEnvironment, StoredRepo, StoredStatus
from .state import GitHubState

READ_DEPLOYMENTS = Need("deployments", "read", "read")
WRITE_DEPLOYMENTS = Need("deployments", "write", "write")
DEPLOYMENT_STATES = ("error", "failure", "inactive", "in_progress", "queued", "pending", "success")


class DeploymentsArea(GitHubState):
    def create_deployment(self, principal: Principal, repo: StoredRepo, body: dict[str, Any]) -> StoredDeployment:
        with self.store.lock:
            self.access.require(principal, repo, WRITE_DEPLOYMENTS)
            ref = body.get("ref")
            if not isinstance(ref, str) or not ref:
                raise invalid("Deployment", "ref", "missing_field")
            git = self.git(repo)
            sha = git.resolve(f"refs/heads/{ref}") or git.resolve(f"refs/tags/{ref}") or git.resolve(ref)
            if sha is None:
                raise ApiError(422, f"No ref found for: {ref}")
            environment = body.get("environment", "production")
            task = body.get("task", "deploy")
            description = body.get("description", "")
            payload = body.get("payload", {})
            for name, value in (("environment", environment), ("task", task)):
                if not isinstance(value, str) or not value.strip():
                    raise invalid("Deployment", name)
            if description is not None and not isinstance(description, str):
                raise invalid("Deployment", "description")
            if not isinstance(payload, dict | str):
                raise invalid("Deployment", "payload")
            required = body.get("required_contexts")
            if required is not None and (not isinstance(required, list)
                                         or not all(isinstance(c, str) for c in required)):
                raise invalid("Deployment", "required_contexts")
            self._require_contexts(repo, ref, sha, required)
            production = body.get("production_environment", environment == "production")
            transient = body.get("transient_environment", False)
            if not isinstance(production, bool) or not isinstance(transient, bool):
                raise invalid("Deployment", "production_environment" if not isinstance(production, bool)
                              else "transient_environment")
            self._environment_for(repo, environment)
            now = now_iso()
            actor = principal.account
            return self.store.put(StoredDeployment(
                self.store.new_id(), repo.id, sha, ref, task, environment, actor.id if actor else repo.owner_id,
                now, now, payload, description, environment, transient, production,
                principal.app.id if principal.kind == "installation" and principal.app else None))

    def _require_contexts(self, repo: StoredRepo, ref: str, sha: str, required: list[str] | None) -> None:
        """409 unless the commit's statuses of the contexts that must pass (every one it has, unless named) are
        all `success`."""
        latest: dict[str, str] = {}
        for status in self.store.all(StoredStatus, lambda s: s.repo_id == repo.id and s.sha == sha):
            latest[status.context] = status.state  # oldest first: the last one of a context stands
        wanted = list(latest) if required is None else required
        failing = sorted(context for context in wanted if latest.get(context) != "success")
        if failing:
            raise ApiError(409, f"Conflict: Commit status checks failed for {ref}.", errors=[{
                "contexts": [{"context": c, "state": latest.get(c, "missing")} for c in failing],
                "resource": "Deployment", "field": "required_contexts", "code": "invalid"}])

    def _environment_for(self, repo: StoredRepo, name: str) -> StoredEnvironment:
        """The environment a deployment names, made when it does not exist yet (as GitHub makes it)."""
        found = self.store.first(StoredEnvironment, lambda e: e.repo_id == repo.id and e.name.lower() == name.lower())
        if found is not None:
            return found
        now = now_iso()
        return self.store.put(StoredEnvironment(self.store.new_id(), repo.id, name, now, now))

    def deployment(self, repo: StoredRepo, deployment_id: int) -> StoredDeployment:
        found = self.store.get(StoredDeployment, deployment_id)
        if found is None or found.repo_id != repo.id:
            raise not_found()
        return found

    def deployments(self, repo: StoredRepo, *, sha: str | None = None, ref: str | None = None,
                    task: str | None = None, environment: str | None = None) -> list[StoredDeployment]:
        """The repository's deployments, newest first, narrowed as the list endpoint's filters ask."""
        found = self.store.all(StoredDeployment, lambda d: d.repo_id == repo.id
                               and (sha is None or d.sha == sha) and (ref is None or d.ref == ref)
                               and (task is None or d.task == task)
                               and (environment is None or d.environment == environment))
        return found[::-1]

    def create_deployment_status(self, principal: Principal, repo: StoredRepo, deployment_id: int,
                                 body: dict[str, Any]) -> StoredDeploymentStatus:
        with self.store.lock:
            self.access.require(principal, repo, WRITE_DEPLOYMENTS)
            deployment = self.deployment(repo, deployment_id)
            state = body.get("state")
            if state not in DEPLOYMENT_STATES:
                raise invalid("DeploymentStatus", "state", "custom", "State is not included in the list")
            fields: dict[str, str] = {}
            for name in ("description", "target_url", "log_url", "environment_url", "environment"):
                value = body.get(name)
                if value is not None and not isinstance(value, str):
                    raise invalid("DeploymentStatus", name)
                fields[name] = value or ""
            if len(fields["description"]) > 140:
                raise unprocessable("description is too long (maximum is 140 characters)")
            # `log_url` replaces `target_url`: setting either sets both.
            log_url = fields["log_url"] or fields["target_url"]
            previous = self.deployment_statuses(deployment)
            environment = fields["environment"] or (previous[0].environment if previous else deployment.environment)
            now = now_iso()
            actor = principal.account
            app_id = principal.app.id if principal.kind == "installation" and principal.app else None
            status = self.store.put(StoredDeploymentStatus(
                self.store.new_id(), repo.id, deployment.id, state, actor.id if actor else repo.owner_id, now, now,
                fields["description"], environment, log_url, log_url, fields["environment_url"], app_id))
            deployment.updated_at = now
            self.store.put(deployment)
            if state == "success" and body.get("auto_inactive", True) is not False:
                self._deactivate_before(deployment, status)
            return status

    def _deactivate_before(self, deployment: StoredDeployment, status: StoredDeploymentStatus) -> None:
        """`auto_inactive`: the environment's earlier deployments that succeeded are marked `inactive`."""
        for earlier in self.deployments(self._repo_of(deployment), environment=deployment.environment):
            if earlier.id >= deployment.id or earlier.transient_environment or earlier.production_environment:
                continue
            statuses = self.deployment_statuses(earlier)
            if statuses and statuses[0].state == "success":
                self.store.put(StoredDeploymentStatus(
                    self.store.new_id(), earlier.repo_id, earlier.id, "inactive", status.creator_id,
                    status.created_at, status.created_at, "", earlier.environment, app_id=status.app_id))

    def _repo_of(self, deployment: StoredDeployment) -> StoredRepo:
        repo = self.store.get(StoredRepo, deployment.repo_id)
        assert repo is not None
        return repo

    def deployment_statuses(self, deployment: StoredDeployment) -> list[StoredDeploymentStatus]:
        """A deployment's statuses, newest first."""
        return self.store.all(StoredDeploymentStatus, lambda s: s.deployment_id == deployment.id)[::-1]
