"""Protected branches: their settings, what they forbid a push, and what keeps a pull request from
merging (GitHub's REST reference: Branches > Protected branches)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from ..auth import Principal
from ..errors import ApiError, invalid
from ..model import (
    StoredAccount,
    StoredCheckRun,
    StoredProtection,
    StoredPullRequest,
    StoredRepo,
    StoredReview,
    StoredStatus,
    role_rank,
)
from .state import ADMIN, GitHubState


@dataclass
class PushRules:
    """Refs a pusher may not move at all, may not rewind, and may not delete (from branch protection)."""

    locked: list[str] = field(default_factory=list)
    no_force: list[str] = field(default_factory=list)
    no_delete: list[str] = field(default_factory=list)

    def environment(self) -> dict[str, str]:
        """For the repositories' pre-receive hook (see `gitrepo.PRE_RECEIVE`)."""
        return {"SANDBOX_LOCKED_REFS": " ".join(self.locked), "SANDBOX_NO_FORCE_REFS": " ".join(self.no_force),
                "SANDBOX_NO_DELETE_REFS": " ".join(self.no_delete)}


class BranchesArea(GitHubState):
    def put_protection(self, principal: Principal, repo: StoredRepo, branch: str, settings: Any) -> StoredProtection:
        with self.store.lock:
            self.access.require(principal, repo, ADMIN)
            if self.git(repo).resolve(f"refs/heads/{branch}") is None:
                raise ApiError(404, "Branch not found")
            if not isinstance(settings, dict):
                raise invalid("ProtectedBranch", "", "invalid")
            for key in ("required_status_checks", "enforce_admins", "required_pull_request_reviews", "restrictions"):
                if key not in settings:
                    raise ApiError(422, f"Invalid request.\n\n\"{key}\" wasn't supplied.")
            checks = settings.get("required_status_checks")
            if checks is not None and (not isinstance(checks, dict) or "strict" not in checks or (
                    "contexts" not in checks and "checks" not in checks)):
                raise ApiError(422, "Invalid request.\n\nNo subschema in \"anyOf\" matched.")
            found = self.store.first(StoredProtection, lambda p: p.repo_id == repo.id and p.branch == branch)
            found = found or StoredProtection(self.store.new_id(), repo.id, branch)
            found.settings = dict(settings)
            return self.store.put(found)

    def protection(self, repo: StoredRepo, branch: str) -> StoredProtection:
        found = self.store.first(StoredProtection, lambda p: p.repo_id == repo.id and p.branch == branch)
        if found is None:
            raise ApiError(404, "Branch not protected")
        return found

    def delete_protection(self, principal: Principal, repo: StoredRepo, branch: str) -> None:
        with self.store.lock:
            self.access.require(principal, repo, ADMIN)
            self.store.delete(self.protection(repo, branch))

    def update_status_checks(self, principal: Principal, repo: StoredRepo, branch: str,
                             fields: dict[str, Any]) -> StoredProtection:
        with self.store.lock:
            self.access.require(principal, repo, ADMIN)
            protection = self.protection(repo, branch)
            checks = protection.settings.get("required_status_checks")
            if checks is None:
                raise ApiError(404, "Required status checks not enabled")
            checks = dict(checks)
            for key in ("strict", "contexts", "checks"):
                if key in fields:
                    checks[key] = fields[key]
            protection.settings["required_status_checks"] = checks
            return self.store.put(protection)

    def push_rules(self, principal: Principal, repo: StoredRepo) -> PushRules:
        """What branch protection forbids `principal` to do to each protected branch outside a pull request."""
        rules = PushRules()
        is_admin = principal.kind == "user" and principal.account is not None and \
            self.access.role_of(principal.account, repo) == "admin"
        for protection in self.store.all(StoredProtection, lambda p: p.repo_id == repo.id):
            settings = protection.settings
            if is_admin and not settings.get("enforce_admins"):
                continue
            ref = f"refs/heads/{protection.branch}"
            if not settings.get("allow_deletions"):
                rules.no_delete.append(ref)
            if not settings.get("allow_force_pushes"):
                rules.no_force.append(ref)
            if settings.get("required_pull_request_reviews") or settings.get("required_status_checks") or \
                    settings.get("lock_branch"):
                rules.locked.append(ref)
        return rules

    def protection_refusal(self, principal: Principal, repo: StoredRepo, ref: str, old: str | None,
                           new: str | None) -> str | None:
        """Why branch protection refuses moving `ref` from `old` to `new` (None: delete) outside a pull request."""
        if old is None:
            return None
        rules = self.push_rules(principal, repo)
        if new is None and ref in rules.no_delete:
            return "Cannot delete this protected branch"
        if new is not None and ref in rules.no_force and not self.git(repo).is_ancestor(old, new):
            return "Cannot force-push to this branch"
        if ref in rules.locked:
            return "Changes must be made through a pull request."
        return None

    def merge_blockers(self, repo: StoredRepo, pull: StoredPullRequest) -> list[str]:
        """Why branch protection would refuse to merge `pull` now (empty when it may merge)."""
        protection = self.store.first(StoredProtection, lambda p: p.repo_id == repo.id and p.branch == pull.base_ref)
        if protection is None:
            return []
        reasons = []
        reviews_rule = protection.settings.get("required_pull_request_reviews") or None
        if reviews_rule:
            needed = int(reviews_rule.get("required_approving_review_count", 1))
            latest: dict[int, StoredReview] = {}
            for review in self.store.all(StoredReview, lambda r: r.repo_id == repo.id and r.pull_number == pull.number):
                if review.state != "COMMENTED":
                    latest[review.user_id] = review
            if any(r.state == "CHANGES_REQUESTED" for r in latest.values()):
                reasons.append("Changes must be made through a pull request.")
            approvals = sum(1 for r in latest.values() if r.state == "APPROVED" and self._may_write(r.user_id, repo))
            if approvals < needed:
                reasons.append(f"At least {needed} approving review{'s are' if needed > 1 else ' is'} required "
                               "by reviewers with write access.")
        for context, verdict in self._required_results(repo, pull.base_ref, pull.head_sha).items():
            if verdict is not True:
                reasons.append(f"Required status check \"{context}\" is expected.")
        return reasons

    def _may_write(self, account_id: int, repo: StoredRepo) -> bool:
        account = self.store.get(StoredAccount, account_id)
        return account is not None and role_rank(self.access.role_of(account, repo)) >= role_rank("write")

    def checks_verdict(self, repo: StoredRepo, branch: str, sha: str) -> Literal["passed", "failed", "pending"]:
        """How `branch`'s required status checks stand on commit `sha` (a merge group's head): `passed` when
        every one passed (or none is required), `failed` as soon as one failed, else `pending`."""
        results = self._required_results(repo, branch, sha).values()
        if False in results:
            return "failed"
        return "passed" if all(results) else "pending"

    def _required_results(self, repo: StoredRepo, branch: str, sha: str) -> dict[str, bool | None]:
        """Each status check `branch` requires, and whether it passed on `sha` (None: not finished, or not
        there yet).

        A check required from one app (`checks: [{context, app_id}]`, the "expected source" GitHub shows) is
        passed only by that app's check runs; one required by its name alone, by any check run or status.
        """
        protection = self.store.first(StoredProtection, lambda p: p.repo_id == repo.id and p.branch == branch)
        checks_rule = (protection.settings.get("required_status_checks") if protection else None) or {}
        required: dict[str, int | None] = {c: None for c in checks_rule.get("contexts") or []}
        for check in checks_rule.get("checks") or []:
            app_id = check.get("app_id")
            required[check["context"]] = app_id if isinstance(app_id, int) and app_id > 0 else None
        anyone = self._results(repo, sha, None) if None in required.values() else {}
        return {context: (anyone if app_id is None else self._results(repo, sha, app_id)).get(context)
                for context, app_id in required.items()}

    def _results(self, repo: StoredRepo, sha: str, app_id: int | None) -> dict[str, bool | None]:
        """The latest outcome on `sha` of each check run (only `app_id`'s, when given) and, without `app_id`,
        of each commit status, by name: True passed, False failed, None not finished. A name that passed
        as a status or as a check run passed."""
        results: dict[str, bool | None] = {}
        if app_id is None:
            latest: dict[str, StoredStatus] = {}
            for status in self.store.all(StoredStatus, lambda s: s.repo_id == repo.id and s.sha == sha):
                latest[status.context] = status
            results.update({context: {"success": True, "pending": None}.get(s.state, False)
                            for context, s in latest.items()})
        runs: dict[str, StoredCheckRun] = {}
        for run in self.store.all(StoredCheckRun, lambda r: r.repo_id == repo.id and r.head_sha == sha and (
                app_id is None or r.app_id == app_id)):
            runs[run.name] = run
        for name, r in runs.items():
            outcome = None if r.status != "completed" else r.conclusion in ("success", "neutral", "skipped")
            if results.get(name) is not True:
                results[name] = outcome
        return results
