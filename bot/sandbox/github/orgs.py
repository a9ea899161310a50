"""Organizations and their members (GitHub's REST reference: Organizations > Members)."""

from __future__ import annotations

from typing import Literal

from ..auth import Principal, now_iso, refused
from ..errors import ApiError, invalid, not_found
from ..model import StoredAccount, StoredMembership
from .state import LOGIN, GitHubState


class OrgsArea(GitHubState):
    def create_org(self, login: str, owners: list[StoredAccount] | None = None,
                   name: str | None = None) -> StoredAccount:
        with self.store.lock:
            if not LOGIN.match(login):
                raise invalid("Organization", "login")
            if self.account(login) is not None:
                raise invalid("Organization", "login", "already_exists")
            org = self.store.put(StoredAccount(self.store.new_id(), login, "Organization", now_iso(),
                                               name=name or login))
            for owner in owners or []:
                self.add_member(org, owner, "admin")
            return org

    def add_member(self, org: StoredAccount, user: StoredAccount, role: Literal["admin", "member"] = "member") -> None:
        with self.store.lock:
            found = self.membership(org, user)
            self.store.put(StoredMembership(found.id if found else self.store.new_id(), org.id, user.id, role))

    def membership(self, org: StoredAccount, user: StoredAccount) -> StoredMembership | None:
        return self.store.first(StoredMembership, lambda m: m.org_id == org.id and m.user_id == user.id)

    def require_org_admin(self, principal: Principal, org: StoredAccount) -> None:
        """Refuse unless `principal` may administer `org`'s teams (an owner, or an app with members: write)."""
        if principal.is_site_admin:
            return
        if principal.kind == "installation" and principal.installation is not None:
            if principal.installation.account_id == org.id and self.access.permission_level(principal, "members") >= 2:
                return
            raise refused("members", "write")
        account = self.actor_account(principal)
        member = self.store.first(StoredMembership, lambda m: m.org_id == org.id and m.user_id == account.id)
        if member is None:
            raise not_found()
        if member.role != "admin":
            raise ApiError(403, "You must be an organization owner or team maintainer to do that.")
