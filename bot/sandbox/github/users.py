"""Users and their personal access tokens (GitHub's REST reference: Users)."""

from __future__ import annotations

from ..auth import new_token, now_iso
from ..errors import invalid
from ..model import StoredAccount, StoredToken
from .state import LOGIN, NOREPLY, GitHubState


class UsersArea(GitHubState):
    def create_user(self, login: str, name: str | None = None, email: str | None = None,
                    site_admin: bool = False) -> tuple[StoredAccount, StoredToken]:
        with self.store.lock:
            if not LOGIN.match(login):
                raise invalid("User", "login")
            if self.account(login) is not None:
                raise invalid("User", "login", "already_exists")
            user = self.store.put(StoredAccount(self.store.new_id(), login, "User", now_iso(), name=name or login,
                                                email=email or f"{login}@{NOREPLY}", site_admin=site_admin))
            return user, self.create_token(user)

    def create_token(self, user: StoredAccount, permissions: dict[str, str] | None = None,
                     note: str = "") -> StoredToken:
        with self.store.lock:
            return self.store.put(StoredToken(self.store.new_id(), new_token("ghp_"), now_iso(), user_id=user.id,
                                              permissions=permissions, note=note))
