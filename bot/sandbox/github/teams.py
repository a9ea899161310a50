"""Teams: their members and maintainers, and their roles on repositories (GitHub's REST reference:
Teams, Teams > Members)."""

from __future__ import annotations

import re
from typing import Any, Literal

from ..auth import Principal, now_iso
from ..errors import invalid, not_found, unprocessable
from ..model import (
    Role,
    StoredAccount,
    StoredEnvironment,
    StoredMembership,
    StoredRepo,
    StoredTeam,
    StoredTeamMember,
    StoredTeamRepo,
)
from .state import GitHubState


class TeamsArea(GitHubState):
    def create_team(self, principal: Principal, org: StoredAccount, name: str, description: str | None = None,
                    privacy: str = "closed", members: list[StoredAccount] | None = None,
                    maintainers: list[StoredAccount] | None = None, parent_id: int | None = None) -> StoredTeam:
        with self.store.lock:
            self.other_areas.require_org_admin(principal, org)
            if not name.strip():
                raise invalid("Team", "name", "missing_field")
            slug = _team_slug(name)
            if self.store.first(StoredTeam, lambda t: t.org_id == org.id and (t.slug == slug or t.name == name)):
                raise unprocessable("Name must be unique for this org")
            team = self.store.put(StoredTeam(self.store.new_id(), org.id, name, slug, now_iso(),
                                             description=description, privacy=privacy, parent_id=parent_id))
            for user in members or []:
                self.store.put(StoredTeamMember(self.store.new_id(), team.id, user.id, "member"))
            for user in maintainers or []:
                self.store.put(StoredTeamMember(self.store.new_id(), team.id, user.id, "maintainer"))
            return team

    def add_team_member(self, team: StoredTeam, user: StoredAccount,
                        role: Literal["member", "maintainer"] = "member") -> None:
        with self.store.lock:
            found = self.store.first(StoredTeamMember, lambda m: m.team_id == team.id and m.user_id == user.id)
            self.store.put(StoredTeamMember(found.id if found else self.store.new_id(), team.id, user.id, role))

    def _require_team_admin(self, principal: Principal, team: StoredTeam) -> None:
        """Organization owners (and apps with `members: write`) manage every team; maintainers their own."""
        account = principal.account if principal.kind == "user" else None
        if account is not None:
            user_id = account.id
            if self.store.first(StoredTeamMember, lambda m: m.team_id == team.id and m.user_id == user_id
                                and m.role == "maintainer"):
                return
        org = self.store.get(StoredAccount, team.org_id)
        assert org is not None
        self.other_areas.require_org_admin(principal, org)

    def update_team(self, principal: Principal, team: StoredTeam, fields: dict[str, Any]) -> StoredTeam:
        """Rename a team (its slug follows the name) or change its description or privacy."""
        with self.store.lock:
            self._require_team_admin(principal, team)
            name = fields.get("name")
            if name is not None:
                if not isinstance(name, str) or not name.strip():
                    raise invalid("Team", "name")
                slug = _team_slug(name)
                if self.store.first(StoredTeam, lambda t: t.org_id == team.org_id and t.id != team.id and (
                        t.slug == slug or t.name == name)):
                    raise unprocessable("Name must be unique for this org")
                team.name, team.slug = name, slug
            if "description" in fields:
                description = fields["description"]
                if description is not None and not isinstance(description, str):
                    raise invalid("Team", "description")
                team.description = description
            privacy = fields.get("privacy")
            if privacy is not None:
                if privacy not in ("secret", "closed"):
                    raise invalid("Team", "privacy")
                team.privacy = privacy
            return self.store.put(team)

    def delete_team(self, principal: Principal, team: StoredTeam) -> None:
        """Delete a team with its memberships and repository roles; its child teams lose their parent."""
        with self.store.lock:
            self._require_team_admin(principal, team)
            for record in [*self.store.all(StoredTeamMember, lambda m: m.team_id == team.id),
                           *self.store.all(StoredTeamRepo, lambda r: r.team_id == team.id)]:
                self.store.delete(record)
            for child in self.store.all(StoredTeam, lambda t: t.parent_id == team.id):
                child.parent_id = None
                self.store.put(child)
            for env in self.store.all(StoredEnvironment):
                kept = [r for r in env.reviewers if not (r["type"] == "Team" and r.get("id") == team.id)]
                if kept != env.reviewers:
                    env.reviewers = kept
                    self.store.put(env)
            self.store.delete(team)

    def team_members(self, team: StoredTeam, role: str = "all") -> list[tuple[StoredAccount, str]]:
        """The team's people with their roles (`member` or `maintainer`), filtered by `role` unless "all"."""
        found: list[tuple[StoredAccount, str]] = []
        for member in self.store.all(StoredTeamMember, lambda m: m.team_id == team.id and role in ("all", m.role)):
            account = self.store.get(StoredAccount, member.user_id)
            if account is not None:
                found.append((account, member.role))
        return found

    def set_team_membership(self, principal: Principal, team: StoredTeam, user: StoredAccount,
                            role: Literal["member", "maintainer"] | None) -> None:
        """Add a user to a team or change their role; None removes them (404 if they are not in it).

        GitHub invites a user from outside the organization and adds them once they accept (the
        membership is `pending` until then); the sandbox makes them a member of the organization at
        once, as it does with outside collaborators, so the membership is always `active`.
        """
        with self.store.lock:
            self._require_team_admin(principal, team)
            if user.type != "User":
                raise not_found()
            found = self.store.first(StoredTeamMember, lambda m: m.team_id == team.id and m.user_id == user.id)
            if role is None:
                if found is None:
                    raise not_found()
                self.store.delete(found)
                return
            org = self.store.get(StoredAccount, team.org_id)
            assert org is not None
            if self.store.first(StoredMembership, lambda m: m.org_id == org.id and m.user_id == user.id) is None:
                self.other_areas.add_member(org, user, "member")
            self.add_team_member(team, user, role)

    def set_team_repo(self, principal: Principal, team: StoredTeam, repo: StoredRepo, permission: str | None) -> None:
        """Give a team a role on a repository (`pull`, `triage`, `push`, `maintain`, `admin`); None removes it."""
        with self.store.lock:
            self._require_org_admin_or_repo_admin(principal, team, repo)
            found = self.store.first(StoredTeamRepo, lambda r: r.team_id == team.id and r.repo_id == repo.id)
            if permission is None:
                if found is not None:
                    self.store.delete(found)
                return
            role = _role_from_permission(permission)
            if role is None:
                raise invalid("TeamRepository", "permission")
            if repo.owner_id != team.org_id:
                raise unprocessable("Validation Failed")
            self.store.put(StoredTeamRepo(found.id if found else self.store.new_id(), team.id, repo.id, role))

    def _require_org_admin_or_repo_admin(self, principal: Principal, team: StoredTeam, repo: StoredRepo) -> None:
        org = self.store.get(StoredAccount, team.org_id)
        assert org is not None
        user = principal.account if principal.kind == "user" else None
        if user is not None and self.access.role_of(user, repo) == "admin":
            return
        self.other_areas.require_org_admin(principal, org)


def _team_slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def _role_from_permission(permission: str) -> Role | None:
    mapping: dict[str, Role] = {"pull": "read", "read": "read", "triage": "triage", "push": "write", "write": "write",
                                "maintain": "maintain", "admin": "admin"}
    return mapping.get(permission)
