"""`Team` on GitHub: the team of the organization whose slug is the request's name.

It has the request's description (ending with Paved's mark, `[paved-managed]`) and exactly its people:
`spec.maintainers` as maintainers, the rest of `spec.members` as members. Deleting the request deletes the
team (destructive: its repository roles go with it). A team that exists without the mark is left alone.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.model import Resource
from bot.provider import Target, Verb
from bot.providers.github.shared import (
    TEAM_MARK,
    Action,
    Kind,
    Outputs,
    Run,
    StepFailed,
    Unmarked,
    if_found,
    marked_description,
    unmarked_description,
)


@dataclass(frozen=True, slots=True)
class ObservedTeam:
    """What Paved observes of a team carrying its mark: its description without the mark, and its people
    by role (logins sorted as GitHub spells them)."""

    slug: str
    name: str
    description: str
    url: str
    maintainers: tuple[str, ...]
    members: tuple[str, ...]


class Teams(Kind[ObservedTeam]):
    kind = "Team"

    def address(self, resource: Resource, target: Target) -> str:
        return f"{target.organization}/{resource.name}"

    def observe(self, resource: Resource, target: Target) -> ObservedTeam | Unmarked | None:
        org = self.client.get_organization(target.organization)
        team = if_found(lambda: org.get_team_by_slug(resource.name))
        if team is None:
            return None
        description, managed = unmarked_description(team.description or "")
        if not managed:
            return Unmarked(f"team {target.organization}/{team.slug}",
                            f"no {TEAM_MARK} mark at the end of its description")
        maintainers = tuple(sorted(u.login for u in team.get_members(role="maintainer")))
        members = tuple(sorted(u.login for u in team.get_members(role="member")))
        return ObservedTeam(team.slug, team.name, description, team.html_url, maintainers, members)

    def outputs(self, actual: ObservedTeam | None) -> dict[str, str]:
        return {"team": actual.url} if actual else {}

    @staticmethod
    def people(resource: Resource) -> dict[str, tuple[str, str]]:
        """casefolded login -> (login as the request spells it, role); maintainers are members too."""
        spec = resource.spec
        people = {str(login).casefold(): (str(login), "member") for login in spec.get("members") or []}
        people.update({str(login).casefold(): (str(login), "maintainer") for login in spec.get("maintainers") or []})
        return people

    def actions(self, desired: Resource | None, actual: ObservedTeam | None, target: Target,
                previous: Resource | None) -> list[Action]:
        org_name = target.organization
        if desired is None:
            if actual is None or previous is None:
                return []
            slug = actual.slug

            def delete(outputs: Outputs) -> None:
                self.team(org_name, slug).delete()

            return [Action(self.step(previous, "delete", f"delete team {slug} from {org_name} (its repository "
                                                          "roles go with it)", destructive=True), delete)]
        slug, description = desired.name, str(desired.metadata.get("description", "")).strip()
        found: list[Action] = []
        if actual is None:
            def create(outputs: Outputs) -> None:
                # Marked as Paved's in the call that creates it.
                org = self.client.get_organization(org_name)
                team = org.create_team(slug, description=marked_description(description), privacy="closed")
                outputs["team"] = team.html_url

            found.append(Action(self.step(desired, "create", f"create team {slug} in {org_name}"), create))
            current: dict[str, str] = {}
        else:
            current = {login.casefold(): "maintainer" for login in actual.maintainers}
            current.update({login.casefold(): "member" for login in actual.members
                            if login.casefold() not in current})
            if actual.description != description:
                def describe(outputs: Outputs) -> None:
                    team = self.team(org_name, slug)
                    team.edit(team.name, description=marked_description(description))

                found.append(Action(self.step(desired, "update", f"update the description of team {slug}"),
                                     describe))
        verb: Verb = "create" if actual is None else "update"
        wanted = self.people(desired)
        for key, (login, role) in wanted.items():
            if current.get(key) == role:
                continue
            if key not in current:
                words = f"add {login} to team {slug} as {role}"
            elif role == "maintainer":
                words = f"make {login} a maintainer of team {slug}"
            else:
                words = f"make {login} a member (no longer a maintainer) of team {slug}"
            found.append(Action(self.step(desired, verb, words), self._member(org_name, slug, login, role)))
        for login in sorted(actual.maintainers + actual.members if actual else ()):
            if login.casefold() not in wanted:
                found.append(Action(self.step(desired, "update", f"remove {login} from team {slug}"),
                                     self._member(org_name, slug, login, None)))
        return found

    def _member(self, org_name: str, slug: str, login: str, role: str | None) -> Run:
        def run(outputs: Outputs) -> None:
            user = if_found(lambda: self.client.get_user(login))
            if user is None:
                raise StepFailed(f"GitHub has no user {login} (named in Team/{slug})")
            team = self.team(org_name, slug)
            if role is None:
                team.remove_membership(user)
            else:
                team.add_membership(user, role)

        return run


