"""Deployment environments and their branch and tag policies (GitHub's REST reference: Deployments >
Environments, Deployments > Deployment branch policies)."""

from __future__ import annotations

import base64
from typing import Any

from nacl.public import PrivateKey

from ..auth import Principal, now_iso
from ..errors import invalid, not_found, unprocessable
from ..model import StoredDeploymentBranchPolicy, StoredEnvironment, StoredRepo, StoredSecret
from .state import ADMIN, GitHubState


class EnvironmentsArea(GitHubState):
    def put_environment(self, principal: Principal, repo: StoredRepo, name: str,
                        settings: dict[str, Any]) -> StoredEnvironment:
        with self.store.lock:
            self.access.require(principal, repo, ADMIN)
            wait_timer = settings.get("wait_timer")
            if wait_timer is not None and (not isinstance(wait_timer, int) or not 0 <= wait_timer <= 43200):
                raise invalid("Environment", "wait_timer", "invalid")
            reviewers = settings.get("reviewers")
            if reviewers is not None and (not isinstance(reviewers, list) or len(reviewers) > 6 or any(
                    not isinstance(r, dict) or r.get("type") not in ("User", "Team") for r in reviewers)):
                raise invalid("Environment", "reviewers", "invalid")
            policy = settings.get("deployment_branch_policy")
            if policy is not None and (not isinstance(policy, dict) or policy.get("protected_branches") == policy.get(
                    "custom_branch_policies") is True):
                raise unprocessable("Both `protected_branches` and `custom_branch_policies` cannot be set to the "
                                    "same value.")
            found = self.store.first(StoredEnvironment,
                                     lambda e: e.repo_id == repo.id and e.name.lower() == name.lower())
            now = now_iso()
            if found is None:
                key = PrivateKey.generate()
                found = StoredEnvironment(self.store.new_id(), repo.id, name, now, now,
                                          secrets_public_key=base64.b64encode(bytes(key.public_key)).decode(),
                                          secrets_private_key=base64.b64encode(bytes(key)).decode())
            if wait_timer is not None:
                found.wait_timer = wait_timer
            if reviewers is not None:
                found.reviewers = [{"type": r["type"], "id": r.get("id")} for r in reviewers]
            if "prevent_self_review" in settings:
                found.prevent_self_review = bool(settings["prevent_self_review"])
            if "deployment_branch_policy" in settings:
                found.deployment_branch_policy = policy
                if not (policy or {}).get("custom_branch_policies"):
                    # Turning custom policies off drops the name patterns, as on GitHub.
                    for pattern in self.store.all(StoredDeploymentBranchPolicy, lambda b: b.environment_id == found.id):
                        self.store.delete(pattern)
            found.updated_at = now
            return self.store.put(found)

    def environment(self, repo: StoredRepo, name: str) -> StoredEnvironment:
        found = self.store.first(StoredEnvironment, lambda e: e.repo_id == repo.id and e.name.lower() == name.lower())
        if found is None:
            raise not_found()
        return found

    def delete_environment(self, principal: Principal, repo: StoredRepo, name: str) -> None:
        with self.store.lock:
            self.access.require(principal, repo, ADMIN)
            env = self.environment(repo, name)
            for secret in self.store.all(StoredSecret, lambda s: s.repo_id == repo.id and s.environment == env.name):
                self.store.delete(secret)
            for pattern in self.store.all(StoredDeploymentBranchPolicy, lambda b: b.environment_id == env.id):
                self.store.delete(pattern)
            self.store.delete(env)

    def branch_policies(self, repo: StoredRepo, environment: str) -> list[StoredDeploymentBranchPolicy]:
        env = self.environment(repo, environment)
        return self.store.all(StoredDeploymentBranchPolicy, lambda b: b.environment_id == env.id)

    def branch_policy(self, repo: StoredRepo, environment: str, policy_id: int) -> StoredDeploymentBranchPolicy:
        found = next((b for b in self.branch_policies(repo, environment) if b.id == policy_id), None)
        if found is None:
            raise not_found()
        return found

    def add_branch_policy(self, principal: Principal, repo: StoredRepo, environment: str, name: Any,
                          kind: Any = "branch") -> tuple[StoredDeploymentBranchPolicy, bool]:
        """A name pattern the environment accepts deployments from; (policy, False) if it already had it."""
        with self.store.lock:
            self.access.require(principal, repo, ADMIN)
            env = self.environment(repo, environment)
            if not isinstance(name, str) or not name.strip():
                raise invalid("DeploymentBranchPolicy", "name", "missing_field")
            if kind not in ("branch", "tag"):
                raise invalid("DeploymentBranchPolicy", "type")
            if not (env.deployment_branch_policy or {}).get("custom_branch_policies"):
                raise unprocessable("Custom deployment branch and tag policies are not enabled for this environment.")
            existing = self.store.first(StoredDeploymentBranchPolicy, lambda b: b.environment_id == env.id
                                        and b.name == name and b.type == kind)
            if existing is not None:
                return existing, False
            return self.store.put(StoredDeploymentBranchPolicy(self.store.new_id(), repo.id, env.id, name, kind)), True

    def delete_branch_policy(self, principal: Principal, repo: StoredRepo, environment: str, policy_id: int) -> None:
        with self.store.lock:
            self.access.require(principal, repo, ADMIN)
            self.store.delete(self.branch_policy(repo, environment, policy_id))
