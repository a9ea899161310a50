"""`Access` on GitHub: the permission of team `spec.team` on the service's repository.

Deleting the request removes it (nothing is lost, so it is not a destructive step). Paved grants only on
repositories that carry its mark.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.model import Resource
from bot.provider import Target
from bot.providers.github.shared import (
    Action,
    Kind,
    Outputs,
    Unmarked,
    repo_marked,
    repository_at,
    service_repo,
    unmarked_repository,
)


@dataclass(frozen=True, slots=True)
class ObservedAccess:
    """What Paved observes of a team's grant on a repository carrying its mark: the permission."""

    repository: str
    url: str
    team: str
    permission: str


class Access(Kind[ObservedAccess]):
    kind = "Access"
    moves = True

    def address(self, resource: Resource, target: Target) -> str:
        return f"{service_repo(resource, target)}:{resource.spec.get('team', '')}"

    def observe(self, resource: Resource, target: Target) -> ObservedAccess | Unmarked | None:
        full_name, slug = service_repo(resource, target), str(resource.spec.get("team", ""))
        repo = repository_at(self.client, full_name)
        if repo is None:
            return None
        if not repo_marked(repo):
            return unmarked_repository(full_name)
        permission = next((t.permission for t in repo.get_teams() if t.slug == slug), None)
        if permission is None:
            return None
        return ObservedAccess(full_name, repo.html_url, slug, permission)

    def believed(self, previous: Resource, target: Target) -> ObservedAccess:
        return ObservedAccess(service_repo(previous, target), "", str(previous.spec.get("team", "")),
                              str(previous.spec.get("permission", "")))

    def outputs(self, actual: ObservedAccess | None) -> dict[str, str]:
        return {"repository": actual.url} if actual and actual.url else {}

    def actions(self, desired: Resource | None, actual: ObservedAccess | None, target: Target,
                previous: Resource | None) -> list[Action]:
        org_name = target.organization
        if desired is None:
            if actual is None or previous is None:
                return []
            full_name, slug, permission = actual.repository, actual.team, actual.permission

            def revoke(outputs: Outputs) -> None:
                self.team(org_name, slug).remove_from_repos(self.repo(full_name, previous.identity))

            return [Action(self.step(previous, "delete", f"remove team {slug}'s {permission} access to {full_name}"),
                            revoke)]
        full_name, slug = service_repo(desired, target), str(desired.spec.get("team", ""))
        permission = str(desired.spec.get("permission", ""))
        if actual is not None and actual.permission == permission:
            return []

        def grant(outputs: Outputs) -> None:
            repo = self.repo(full_name, f"Service/{desired.spec.get('service', '')}")
            self.team(org_name, slug).update_team_repository(repo, permission)
            outputs["repository"] = repo.html_url

        if actual is None:
            return [Action(self.step(desired, "create", f"grant team {slug} {permission} on {full_name}"), grant)]
        return [Action(self.step(desired, "update", f"change team {slug}'s permission on {full_name} from "
                                                     f"{actual.permission} to {permission}"), grant)]


