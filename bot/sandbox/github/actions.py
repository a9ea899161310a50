"""GitHub Actions: repository and environment secrets, and workflow runs (GitHub's REST reference: Actions >
Secrets, Actions > Workflow runs; the `workflow_run` webhook).

The sandbox runs no workflow. A run that happened elsewhere (a test's runner, the demo's story) is recorded
with `record_workflow_run` or, for a pull request's head with its `workflow_run completed` delivery,
`complete_workflow_run`; both are then listed by `GET /repos/{owner}/{repo}/actions/runs` as GitHub lists them.
"""

from __future__ import annotations

import base64
import re
from typing import Any

from nacl.public import PrivateKey, SealedBox

from ..auth import Need, Principal, now_iso
from ..errors import invalid, not_found, unprocessable
from ..model import StoredAccount, StoredPullRequest, StoredRepo, StoredSecret, StoredWorkflowRun
from ..render import node_id
from .state import GitHubState


class ActionsArea(GitHubState):
    def secret_keys(self, repo: StoredRepo, environment: str | None) -> tuple[str, str]:
        """(public key, private key), base64, for the repository or one of its environments."""
        if environment is None:
            return repo.secrets_public_key, repo.secrets_private_key
        env = self.other_areas.environment(repo, environment)
        return env.secrets_public_key, env.secrets_private_key

    def public_key_id(self, public_key: str) -> str:
        return _key_id(public_key)

    def put_secret(self, principal: Principal, repo: StoredRepo, name: str, encrypted_value: Any, key_id: Any,
                   environment: str | None = None) -> bool:
        """Store a sealed secret; True if it is new. The value must open with the current key."""
        with self.store.lock:
            self.access.require(principal, repo, Need("secrets", "write", "admin"))
            public, private = self.secret_keys(repo, environment)
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) or name.upper().startswith("GITHUB_"):
                raise invalid("Secret", "name", "invalid")
            if not isinstance(encrypted_value, str) or not isinstance(key_id, str):
                raise invalid("Secret", "encrypted_value", "missing_field")
            if key_id != _key_id(public):
                raise invalid("Secret", "key_id", "invalid")
            try:
                SealedBox(PrivateKey(base64.b64decode(private))).decrypt(base64.b64decode(encrypted_value))
            except Exception as exc:  # any failure to open means the client sealed it wrongly
                raise invalid("Secret", "encrypted_value", "invalid") from exc
            name = name.upper()
            env_name = self.other_areas.environment(repo, environment).name if environment else None
            found = self.store.first(StoredSecret, lambda s: s.repo_id == repo.id and s.name == name
                                     and s.environment == env_name)
            now = now_iso()
            if found is None:
                self.store.put(StoredSecret(self.store.new_id(), repo.id, name, encrypted_value, key_id, now, now,
                                            env_name))
                return True
            found.encrypted_value, found.key_id, found.updated_at = encrypted_value, key_id, now
            self.store.put(found)
            return False

    def find_secret(self, repo: StoredRepo, name: str, environment: str | None = None) -> StoredSecret:
        env_name = self.other_areas.environment(repo, environment).name if environment else None
        found = self.store.first(StoredSecret, lambda s: s.repo_id == repo.id and s.name == name.upper()
                                 and s.environment == env_name)
        if found is None:
            raise not_found()
        return found

    def reveal_secret(self, repo: StoredRepo, name: str, environment: str | None = None) -> str:
        """The plain value of a stored secret. For tests: GitHub never reveals secrets."""
        with self.store.lock:
            secret = self.find_secret(repo, name, environment)
            _, private = self.secret_keys(repo, environment)
            box = SealedBox(PrivateKey(base64.b64decode(private)))
            return box.decrypt(base64.b64decode(secret.encrypted_value)).decode()

    def complete_workflow_run(self, repo: StoredRepo, pull: StoredPullRequest, workflow: str, path: str,
                              conclusion: str, actor: StoredAccount) -> dict[str, Any]:
        """A GitHub Actions run of `workflow` (its file `path`) for `pull`'s head has completed: the
        `workflow_run completed` payload, sent to the hooks that want it and returned.

        As on GitHub, a run for a fork's pull request lists no pull request (`pull_requests` is empty) and
        names the fork as its head repository: whoever acts on it must find the pull request itself.
        """
        with self.store.lock:
            head_repo = self.store.get(StoredRepo, pull.head_repo_id) if pull.head_repo_id is not None else repo
            assert head_repo is not None
            run = self._store_run(repo, workflow, path, pull.head_ref, pull.head_sha, "pull_request", "completed",
                                  conclusion, actor, self.render.pull(pull)["title"],
                                  head_repo_id=pull.head_repo_id,
                                  pull_request_numbers=[] if pull.head_repo_id is not None else [pull.number])
            run_id, workflow_id = run.id, run.workflow_id
            now = run.created_at
            api = f"{self.render.urls.api}/repos/{self.render.repo_path(repo)}"
            web = f"{self.render.urls.web}/{self.render.repo_path(repo)}"
            run_url = f"{api}/actions/runs/{run_id}"
            commit = self.git(repo).commit(pull.head_sha)
            who = {"name": commit.author.name, "email": commit.author.email}
            simple_repo = self.render.repo(repo, full=False)
            pull_requests = [] if pull.head_repo_id is not None else [{
                "url": f"{api}/pulls/{pull.number}", "id": pull.id, "number": pull.number,
                "head": {"ref": pull.head_ref, "sha": pull.head_sha,
                         "repo": {"id": repo.id, "url": api, "name": repo.name}},
                "base": {"ref": pull.base_ref, "sha": pull.base_sha,
                         "repo": {"id": repo.id, "url": api, "name": repo.name}},
            }]
            actor_json = self.render.user(actor)
            payload: dict[str, Any] = {
                "action": "completed",
                "workflow": {
                    "badge_url": f"{web}/workflows/{path.rsplit('/', 1)[-1]}/badge.svg", "created_at": now,
                    "html_url": f"{web}/blob/{repo.default_branch}/{path}", "id": workflow_id, "name": workflow,
                    "node_id": node_id("W", workflow_id), "path": path, "state": "active", "updated_at": now,
                    "url": f"{api}/actions/workflows/{workflow_id}",
                },
                "workflow_run": {
                    "actor": actor_json, "triggering_actor": actor_json,
                    "artifacts_url": f"{run_url}/artifacts", "cancel_url": f"{run_url}/cancel",
                    "check_suite_id": run_id, "check_suite_node_id": node_id("CS", run_id),
                    "check_suite_url": f"{api}/check-suites/{run_id}", "conclusion": conclusion,
                    "created_at": now, "updated_at": now, "run_started_at": now, "event": "pull_request",
                    "head_branch": pull.head_ref, "head_sha": pull.head_sha,
                    "head_commit": {"id": pull.head_sha, "tree_id": commit.tree, "message": commit.message,
                                    "timestamp": commit.committer.date, "author": who,
                                    "committer": {"name": commit.committer.name, "email": commit.committer.email}},
                    "head_repository": self.render.repo(head_repo, full=False), "repository": simple_repo,
                    "html_url": f"{web}/actions/runs/{run_id}", "id": run_id, "jobs_url": f"{run_url}/jobs",
                    "logs_url": f"{run_url}/logs", "name": workflow, "node_id": node_id("WFR", run_id),
                    "path": path, "previous_attempt_url": None, "pull_requests": pull_requests,
                    "rerun_url": f"{run_url}/rerun", "run_attempt": 1, "run_number": run.run_number,
                    "status": "completed",
                    "url": run_url, "workflow_id": workflow_id,
                    "workflow_url": f"{api}/actions/workflows/{workflow_id}",
                    "display_title": self.render.pull(pull)["title"], "referenced_workflows": [],
                },
                "repository": self.render.repo(repo, for_webhook=True),
                "sender": actor_json,
            }
            self._add_org(payload, repo)
            self.hooks.emit("workflow_run", payload, repo)
            return payload

    def record_workflow_run(self, repo: StoredRepo, *, workflow: str, path: str, branch: str, sha: str | None,
                            event: str, status: str, conclusion: str | None, actor: StoredAccount,
                            title: str | None = None) -> StoredWorkflowRun:
        """A run of `workflow` (its file `path`) for commit `sha` of `branch` (its head when None), started by
        `event`: as GitHub lists it once it has run this far (`status`, and `conclusion` when completed)."""
        with self.store.lock:
            git = self.git(repo)
            head = git.resolve(sha) if sha else git.resolve(f"refs/heads/{branch}")
            if head is None:
                raise unprocessable(f"No commit found for {sha or branch}")
            if status not in RUN_STATUSES or (status == "completed") != (conclusion is not None):
                raise unprocessable(f"a {status} run has {'a' if status == 'completed' else 'no'} conclusion")
            if conclusion is not None and conclusion not in RUN_CONCLUSIONS:
                raise unprocessable(f"no conclusion {conclusion}")
            return self._store_run(repo, workflow, path, branch, head, event, status, conclusion, actor,
                                   title if title is not None else git.commit(head).message.split("\n", 1)[0])

    def _store_run(self, repo: StoredRepo, workflow: str, path: str, branch: str | None, sha: str, event: str,
                   status: str, conclusion: str | None, actor: StoredAccount, title: str, *,
                   head_repo_id: int | None = None, pull_request_numbers: list[int] | None = None) -> StoredWorkflowRun:
        runs = self.store.all(StoredWorkflowRun, lambda r: r.repo_id == repo.id)
        # One workflow per file, as on GitHub: its runs share its id and count up its run numbers.
        same = [r for r in runs if r.path == path]
        workflow_id = same[0].workflow_id if same else self.store.new_id()
        now = now_iso()
        return self.store.put(StoredWorkflowRun(
            self.store.new_id(), repo.id, workflow_id, workflow, path, branch, sha, event, status, conclusion,
            actor.id, now, now, len(same) + 1, title, 1, head_repo_id, list(pull_request_numbers or [])))

    def workflow_runs(self, repo: StoredRepo) -> list[StoredWorkflowRun]:
        """The repository's runs, newest first."""
        return self.store.all(StoredWorkflowRun, lambda r: r.repo_id == repo.id)[::-1]

    def workflow_run(self, repo: StoredRepo, run_id: int) -> StoredWorkflowRun:
        found = self.store.get(StoredWorkflowRun, run_id)
        if found is None or found.repo_id != repo.id:
            raise not_found()
        return found


RUN_STATUSES = ("requested", "queued", "pending", "waiting", "in_progress", "completed")
RUN_CONCLUSIONS = ("success", "failure", "neutral", "cancelled", "skipped", "timed_out", "action_required",
                   "stale", "startup_failure")


def _key_id(public_key: str) -> str:
    return str(int.from_bytes(base64.b64decode(public_key)[:8], "big") % 10**19)
