"""`Environment` on GitHub: the deployment environment `spec.name` on the service's repository.

It has its wait timer (minutes), the teams that must approve deployments, and the branches that may
deploy. `deploymentBranches` become GitHub's custom deployment branch policies, one name pattern each
(`main`, `release/*`, matched as GitHub matches them: `*` does not cross `/`); without it any branch may
deploy. Deleting the request deletes the environment with its secrets (destructive). Paved adds
environments only to repositories that carry its mark.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from github.EnvironmentDeploymentBranchPolicy import EnvironmentDeploymentBranchPolicyParams
from github.EnvironmentProtectionRuleReviewer import ReviewerParams
from github.NamedUser import NamedUser
from github.Repository import Repository
from github.Team import Team as GithubTeam

from bot.model import Resource
from bot.provider import Target
from bot.providers.github.shared import (
    Action,
    Kind,
    Outputs,
    Run,
    Unmarked,
    complete,
    if_found,
    names_or_none,
    repo_marked,
    repository_at,
    service_repo,
    unmarked_repository,
)


@dataclass(frozen=True, slots=True)
class ObservedEnvironment:
    """What Paved observes of a deployment environment on a repository carrying its mark: its wait timer
    (minutes), reviewers (teams by slug, people by @login, sorted) and deployment branch patterns (None:
    any branch may deploy)."""

    repository: str
    name: str
    url: str
    wait_timer: int
    reviewers: tuple[str, ...]
    branches: tuple[str, ...] | None


class Environments(Kind[ObservedEnvironment]):
    kind = "Environment"
    moves = True

    def address(self, resource: Resource, target: Target) -> str:
        return f"{service_repo(resource, target)}:{resource.spec.get('name', '')}"

    @staticmethod
    def wanted(resource: Resource) -> tuple[int, tuple[str, ...], tuple[str, ...] | None]:
        """(wait timer in minutes, reviewing teams, deployment branch patterns or None for any branch)."""
        spec = resource.spec
        branches = spec.get("deploymentBranches")
        return (int(spec.get("waitTimer") or 0), tuple(sorted(str(t) for t in spec.get("requiredReviewers") or [])),
                tuple(sorted(str(b) for b in branches)) if branches else None)

    def observe(self, resource: Resource, target: Target) -> ObservedEnvironment | Unmarked | None:
        full_name, name = service_repo(resource, target), str(resource.spec.get("name", ""))
        repo = repository_at(self.client, full_name)
        if repo is None:
            return None
        if not repo_marked(repo):
            return unmarked_repository(full_name)
        env = if_found(lambda: complete(repo.get_environment(name)))
        if env is None:
            return None
        wait_timer, reviewers = 0, []
        for rule in env.protection_rules or []:
            if rule.type == "wait_timer":
                wait_timer = int(rule.wait_timer or 0)
            elif rule.type == "required_reviewers":
                # Teams by slug; people (which Paved never sets) by @login, so that they show as a difference.
                reviewers += [_reviewer(r.reviewer) for r in rule.reviewers or [] if r.reviewer is not None]
        policy = env.deployment_branch_policy
        branches: tuple[str, ...] | None = None
        if policy is not None and policy.custom_branch_policies:
            branches = tuple(sorted(p["name"] if p.get("type", "branch") == "branch" else f"tag:{p['name']}"
                                    for p in self._policies(repo, env.name)))
        elif policy is not None and policy.protected_branches:
            branches = ("(protected branches)",)
        return ObservedEnvironment(full_name, env.name, env.html_url, wait_timer, tuple(sorted(reviewers)), branches)

    def believed(self, previous: Resource, target: Target) -> ObservedEnvironment:
        wait_timer, reviewers, branches = self.wanted(previous)
        return ObservedEnvironment(service_repo(previous, target), str(previous.spec.get("name", "")), "",
                                   wait_timer, reviewers, branches)

    def outputs(self, actual: ObservedEnvironment | None) -> dict[str, str]:
        return {"environment": actual.url} if actual and actual.url else {}

    def _policies(self, repo: Repository, name: str) -> list[dict[str, Any]]:
        """The environment's custom deployment branch policies (PyGithub has no call for them)."""
        url = f"{repo.url}/environments/{quote(name, safe='')}/deployment-branch-policies"
        found: list[dict[str, Any]] = []
        page = 1
        while True:
            _, data = self.client.requester.requestJsonAndCheck("GET", url, parameters={"per_page": 100,
                                                                                        "page": page})
            batch = data.get("branch_policies") or []
            found += batch
            if len(batch) < 100:
                return found
            page += 1

    def actions(self, desired: Resource | None, actual: ObservedEnvironment | None, target: Target,
                previous: Resource | None) -> list[Action]:
        if desired is None:
            if actual is None or previous is None:
                return []
            full_name, name = actual.repository, actual.name

            def delete(outputs: Outputs) -> None:
                self.repo(full_name, previous.identity).delete_environment(name)

            return [Action(self.step(previous, "delete", f"delete environment {name} of {full_name} (its secrets "
                                                          "go with it)", destructive=True), delete)]
        full_name, name = service_repo(desired, target), str(desired.spec.get("name", ""))
        wait_timer, reviewers, branches = self.wanted(desired)
        settings = (f"wait {wait_timer} min, reviewers: {names_or_none(reviewers)}, "
                    f"deployment branches: {names_or_none(branches) if branches is not None else 'any'}")
        if actual is None:
            return [Action(self.step(desired, "create", f"create environment {name} in {full_name} ({settings})"),
                            self._put(desired, target))]
        changes = []
        if actual.wait_timer != wait_timer:
            changes.append(f"wait timer {actual.wait_timer} → {wait_timer} min")
        if actual.reviewers != reviewers:
            changes.append(f"reviewers {names_or_none(actual.reviewers)} → {names_or_none(reviewers)}")
        if actual.branches != branches:
            before, after = actual.branches, branches
            changes.append(f"deployment branches {names_or_none(before) if before is not None else 'any'} → "
                           f"{names_or_none(after) if after is not None else 'any'}")
        if not changes:
            return []
        return [Action(self.step(desired, "update", f"update environment {name} in {full_name}: "
                                                     + "; ".join(changes)), self._put(desired, target))]

    def _put(self, desired: Resource, target: Target) -> Run:
        def run(outputs: Outputs) -> None:
            full_name, name = service_repo(desired, target), str(desired.spec.get("name", ""))
            wait_timer, reviewers, branches = self.wanted(desired)
            repo = self.repo(full_name, f"Service/{desired.spec.get('service', '')}")
            # GitHub names reviewing teams by id.
            ids = [ReviewerParams("Team", int(self.team(target.organization, slug).id)) for slug in reviewers]
            policy = EnvironmentDeploymentBranchPolicyParams(custom_branch_policies=True) if branches else None
            env = repo.create_environment(name, wait_timer=wait_timer, reviewers=ids, deployment_branch_policy=policy)
            if branches:
                self._sync_policies(repo, name, branches)
            outputs["environment"] = env.html_url

        return run

    def _sync_policies(self, repo: Repository, name: str, patterns: Sequence[str]) -> None:
        url = f"{repo.url}/environments/{quote(name, safe='')}/deployment-branch-policies"
        existing = self._policies(repo, name)
        have = {p["name"] for p in existing if p.get("type", "branch") == "branch"}
        for pattern in patterns:
            if pattern not in have:
                self.client.requester.requestJsonAndCheck("POST", url, input={"name": pattern, "type": "branch"})
        for policy in existing:
            if policy["name"] not in patterns or policy.get("type", "branch") != "branch":
                self.client.requester.requestJsonAndCheck("DELETE", f"{url}/{policy['id']}")


def _reviewer(reviewer: GithubTeam | NamedUser) -> str:
    return reviewer.slug if isinstance(reviewer, GithubTeam) else f"@{reviewer.login}"


