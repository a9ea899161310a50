"""Check runs and check suites (GitHub's REST reference: Checks)."""

from __future__ import annotations

from typing import Any, Literal

from ..auth import Need, Principal, now_iso
from ..errors import ApiError, invalid, not_found
from ..model import StoredAccount, StoredApp, StoredCheckRun, StoredCheckSuite, StoredRepo
from .state import MAX_BODY, READ_META, GitHubState, RefUpdate

MAX_ANNOTATIONS_PER_REQUEST = 50


class ChecksArea(GitHubState):
    def _require_app(self, principal: Principal, repo: StoredRepo,
                     level: Literal["read", "write"] = "write") -> StoredApp:
        if principal.kind != "installation" or principal.app is None:
            if principal.kind == "anonymous":
                raise ApiError(401, "Requires authentication")
            self.access.require(principal, repo, READ_META)
            raise ApiError(403, "You must authenticate via a GitHub App.")
        self.access.require(principal, repo, Need("checks", level, "read"))
        return principal.app

    def create_check_run(self, principal: Principal, repo: StoredRepo, fields: dict[str, Any]) -> StoredCheckRun:
        with self.store.lock:
            app = self._require_app(principal, repo)
            name, head_sha = fields.get("name"), fields.get("head_sha")
            if not isinstance(name, str) or not name:
                raise invalid("CheckRun", "name", "missing_field")
            git = self.git(repo)
            if not isinstance(head_sha, str) or git.object_type(head_sha) != "commit":
                raise invalid("CheckRun", "head_sha", "invalid", "No commit found for SHA: " + str(head_sha))
            head_sha = git.resolve(head_sha) or head_sha
            branch = next((b for b, sha in git.branches().items() if sha == head_sha), None)
            suite = self._suite(repo, app, head_sha, branch)
            run = StoredCheckRun(self.store.new_id(), repo.id, suite.id, app.id, name, head_sha, "queued", now_iso())
            self._apply_check_fields(run, fields, creating=True)
            self.store.put(run)
            self._check_run_event("created", repo, run, principal)
            if run.status == "completed":
                self._check_run_event("completed", repo, run, principal)
                self.other_areas.merge_queue_checks_changed(repo, run.head_sha)
            return run

    def update_check_run(self, principal: Principal, repo: StoredRepo, run_id: int,
                         fields: dict[str, Any]) -> StoredCheckRun:
        with self.store.lock:
            app = self._require_app(principal, repo)
            run = self.store.get(StoredCheckRun, run_id)
            if run is None or run.repo_id != repo.id:
                raise not_found()
            if run.app_id != app.id:
                raise ApiError(403, f"Invalid app_id `{app.id}` - check run can only be modified by the GitHub App "
                                    "that created it.")
            was_completed = run.status == "completed"
            self._apply_check_fields(run, fields, creating=False)
            self.store.put(run)
            if run.status == "completed" and not was_completed:
                self._check_run_event("completed", repo, run, principal)
                self.other_areas.merge_queue_checks_changed(repo, run.head_sha)
            return run

    def _apply_check_fields(self, run: StoredCheckRun, fields: dict[str, Any], creating: bool) -> None:
        statuses = ("queued", "in_progress", "completed", "waiting", "requested", "pending")
        conclusions = ("action_required", "cancelled", "failure", "neutral", "success", "skipped", "stale", "timed_out")
        if "name" in fields and not creating:
            if not isinstance(fields["name"], str) or not fields["name"]:
                raise invalid("CheckRun", "name", "invalid")
            run.name = fields["name"]
        for key in ("details_url", "external_id"):
            if key in fields:
                setattr(run, key, fields[key])
        status = fields.get("status")
        conclusion = fields.get("conclusion")
        if status is not None and status not in statuses:
            raise invalid("CheckRun", "status", "invalid")
        if conclusion is not None and conclusion not in conclusions:
            raise invalid("CheckRun", "conclusion", "invalid")
        if status == "completed" and conclusion is None and run.conclusion is None:
            raise invalid("CheckRun", "conclusion", "missing_field", "Conclusion is required when status is completed")
        if conclusion is not None:
            run.status, run.conclusion = "completed", conclusion
            run.completed_at = fields.get("completed_at") or now_iso()
        elif status is not None:
            run.status = status
            if status == "completed":
                run.completed_at = fields.get("completed_at") or now_iso()
        if "started_at" in fields:
            run.started_at = fields["started_at"]
        output = fields.get("output")
        if output is not None:
            if not isinstance(output, dict):
                raise invalid("CheckRun", "output", "invalid")
            if "summary" not in output and not run.output.get("summary"):
                raise invalid("CheckRun", "output.summary", "missing_field")
            for key in ("title", "summary", "text"):
                if key in output:
                    if output[key] is not None and len(str(output[key])) > MAX_BODY:
                        raise invalid("CheckRun", f"output.{key}", "custom", f"{key} is too long")
                    run.output[key] = output[key]
            annotations = output.get("annotations") or []
            if len(annotations) > MAX_ANNOTATIONS_PER_REQUEST:
                raise invalid("CheckRun", "output.annotations", "too_long",
                              "Only 50 annotations are allowed per request")
            for index, annotation in enumerate(annotations):
                missing = [k for k in ("path", "start_line", "end_line", "annotation_level", "message")
                           if k not in annotation]
                if missing or annotation.get("annotation_level") not in ("notice", "warning", "failure"):
                    raise invalid("CheckRun", f"output.annotations[{index}]", "invalid")
            run.annotations.extend(dict(a) for a in annotations)
        if "actions" in fields:
            actions = fields["actions"] or []
            if len(actions) > 3:
                raise invalid("CheckRun", "actions", "too_long")
            run.actions = list(actions)

    def _check_run_event(self, action: str, repo: StoredRepo, run: StoredCheckRun, principal: Principal,
                         only_owner: bool = False) -> None:
        payload: dict[str, Any] = {"action": action, "check_run": self.render.check_run(run, for_webhook=True),
                                   "repository": self.render.repo(repo, for_webhook=True),
                                   "sender": self.render.user(principal.account)}
        self._add_org(payload, repo)
        app = self.store.get(StoredApp, run.app_id)
        self.hooks.emit("check_run", payload, repo, app_only=app if only_owner else None)

    def rerequest_check_run(self, principal: Principal, repo: StoredRepo, run_id: int) -> StoredCheckRun:
        """A person asks to re-run a check: `check_run rerequested` goes to the app that owns it."""
        with self.store.lock:
            self.access.require(principal, repo, Need("checks", "write", "write"))
            run = self.store.get(StoredCheckRun, run_id)
            if run is None or run.repo_id != repo.id:
                raise not_found()
            if principal.app is not None and principal.app.id != run.app_id:
                raise ApiError(403, "Resource not accessible by integration")
            if run.status != "completed":
                raise ApiError(422, "This check run is not rerequestable")
            self._check_run_event("rerequested", repo, run, principal, only_owner=True)
            return run

    def rerequest_check_suite(self, principal: Principal, repo: StoredRepo, suite_id: int) -> StoredCheckSuite:
        with self.store.lock:
            self.access.require(principal, repo, Need("checks", "write", "write"))
            suite = self.store.get(StoredCheckSuite, suite_id)
            if suite is None or suite.repo_id != repo.id:
                raise not_found()
            payload: dict[str, Any] = {"action": "rerequested",
                                       "check_suite": self.render.check_suite(suite, for_webhook=True),
                                       "repository": self.render.repo(repo, for_webhook=True),
                                       "sender": self.render.user(principal.account)}
            self._add_org(payload, repo)
            self.hooks.emit("check_suite", payload, repo, app_only=self.store.get(StoredApp, suite.app_id))
            return suite

    def request_check_suites(self, repo: StoredRepo, branch: str, update: RefUpdate) -> None:
        """A check suite per app with checks access, and `check_suite requested`, for each new head."""
        for installation in self.hooks.installations_of(repo):
            if installation.permissions.get("checks") not in ("read", "write"):
                continue
            app = self.store.get(StoredApp, installation.app_id)
            if app is None:
                continue
            suite = self._suite(repo, app, update.after, branch, update.before)
            payload: dict[str, Any] = {
                "action": "requested",
                "check_suite": self.render.check_suite(suite, for_webhook=True),
                "repository": self.render.repo(repo, for_webhook=True),
                "sender": self.render.user(self.store.get(StoredAccount, repo.owner_id)),
            }
            self._add_org(payload, repo)
            self.hooks.emit("check_suite", payload, repo, app_only=app)

    def _suite(self, repo: StoredRepo, app: StoredApp, sha: str, branch: str | None,
               before: str | None = None) -> StoredCheckSuite:
        found = self.store.first(StoredCheckSuite,
                                 lambda s: (s.repo_id, s.app_id, s.head_sha) == (repo.id, app.id, sha))
        if found is not None:
            return found
        now = now_iso()
        return self.store.put(StoredCheckSuite(self.store.new_id(), repo.id, app.id, sha, branch, now, now,
                                               before=before, after=sha))
