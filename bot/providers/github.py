"""GitHub as a provider: teams, repositories from golden paths, access grants and deployment environments.

`GitHubProvider` makes merged `Team`, `Service`, `Access` and `Environment` requests real in one
organization, through a PyGithub client acting as Paved's GitHub App installation (which needs
`administration: write`, `members: write`, `contents: write` and `organization_custom_properties: admin`
there) and a `token()` for git pushes. It changes, archives or deletes only what it made, which carries
its mark (see `GitHubProvider`):

- `Team`: the team of `target.organization` whose slug is the request's name, with the request's
  description and exactly its people: `spec.maintainers` as maintainers, the rest of `spec.members` as
  members. Deleting the request deletes the team (destructive: its repository roles go with it).
- `Service`: the repository `ORG/NAME` with the request's visibility, description and default branch
  (`spec.repository.defaultBranch`, default `main`). A new repository's first commit is its golden-path
  template (`templates/TEMPLATE/` of the merged platform repo, rendered with cookiecutter), pushed with
  git; then the owning team gets `maintain` and the default branch needs one approving review and the
  code owners' review. Later, visibility, description and default branch follow the request; the
  template is never rendered again. Deleting the request archives the repository: destructive, but
  reversible, since an archived repository keeps everything and asking for the service again
  unarchives it.
- `Access`: the permission of team `spec.team` on the service's repository; deleting the request
  removes it (nothing is lost, so it is not a destructive step).
- `Environment`: the deployment environment `spec.name` on the service's repository, with its wait
  timer (minutes), the teams that must approve deployments, and the branches that may deploy.
  `deploymentBranches` become GitHub's custom deployment branch policies, one name pattern each
  (`main`, `release/*`, matched as GitHub matches them: `*` does not cross `/`); without it any branch
  may deploy. Deleting the request deletes the environment with its secrets (destructive).

`plan` only compares the observed state with the request; `apply` observes, plans and takes the steps,
so applying a state that already holds reads but writes nothing. A repository or team that exists
without Paved's mark is never touched: the plan says so in one step, and `apply` fails with that
message having taken no step. GitHub's refusals, template failures
and git errors end in a failed `Result` with a one-line message that never carries a credential.
"""

from __future__ import annotations

import base64
import logging
import os
import re
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar
from urllib.parse import quote

import git
from github import Github, GithubException
from github.EnvironmentDeploymentBranchPolicy import EnvironmentDeploymentBranchPolicyParams
from github.EnvironmentProtectionRuleReviewer import ReviewerParams
from github.NamedUser import NamedUser
from github.OrganizationCustomProperty import CustomProperty
from github.Team import Team as GithubTeam

from bot.adapters import scaffold
from bot.adapters.github import TRANSPORT_ERRORS, ForgeError, transport_failure
from bot.errors import PavedError
from bot.model import Resource, Tree
from bot.provider import Result, Step, Target, Verb

log = logging.getLogger(__name__)
T = TypeVar("T")

AUTHOR_NAME = "Paved"
AUTHOR_EMAIL = "paved@users.noreply.github.com"
OWNER_PERMISSION = "maintain"
REQUIRED_APPROVALS = 1
# Where GitHub looks for CODEOWNERS, in the order it looks.
CODEOWNERS_PATHS = (".github/CODEOWNERS", "CODEOWNERS", "docs/CODEOWNERS")
_TOKEN_SHAPES = re.compile(r"\b(gh[opsur]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})")
_TEMPLATE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class _StepFailed(PavedError):
    """Raised inside `apply` when a step cannot be taken; the message becomes the failed Result's."""


# What ends an apply in a failed Result: GitHub's refusals, no answer from GitHub, and Paved's own errors.
_FAILURES: tuple[type[Exception], ...] = (GithubException, PavedError, *TRANSPORT_ERRORS)


# -- small helpers ----------------------------------------------------------------------------------------

def _one_line(text: str) -> str:
    return " ".join(text.split())


def _reason(exc: GithubException) -> str:
    """GitHub's own words for a refusal: its message, the first validation error, and the status."""
    data = exc.data if isinstance(exc.data, dict) else {}
    raw = exc.data if isinstance(exc.data, str) else ""  # a proxy's or load balancer's page, not GitHub's JSON
    message = str(data.get("message") or raw[:200] or "no message")
    errors = data.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        first = errors[0]
        detail = first.get("message") or " ".join(str(first[k]) for k in ("field", "code") if first.get(k))
        if detail:
            message = f"{message}: {detail}"
    return _one_line(f"{message} ({exc.status})")


def _found(read: Callable[[], T]) -> T | None:
    """What `read` returns, or None when GitHub answers 404."""
    try:
        return read()
    except GithubException as exc:
        if exc.status == 404:
            return None
        raise


def _scrub(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    text = re.sub(r"(Authorization: (?:Basic|Bearer|token) )\S+", r"\1***", text, flags=re.IGNORECASE)
    return _TOKEN_SHAPES.sub("***", text)


def _names(values: Iterable[str]) -> str:
    return ", ".join(values) or "none"


Outputs = dict[str, str]
Run = Callable[[Outputs], None]


@dataclass(frozen=True)
class _Action:
    """A step and what takes it; `run` adds what to show (links) to the outputs as soon as it exists."""

    step: Step
    run: Run


# -- Paved's mark on what it made ----------------------------------------------------------------------------

# A repository Paved creates carries the organization custom property `paved-managed` = "true", given in
# the very request that creates it, so it never exists unmarked. The property's values are editable by
# organization actors only (`values_editable_by: org_actors`): a repository's own admins and maintainers
# can neither take the mark off a repository of Paved's nor put it on one of theirs. Teams have no
# custom properties, so a team Paved creates ends its description with TEAM_MARK; whoever may edit a
# team's description (its maintainers) may also delete the team, so that mark gives no one more power.
MARK_PROPERTY = "paved-managed"
MARK_VALUE = "true"
MARK_PURPOSE = ("Set to true on the repositories Paved creates: Paved changes and archives only those. "
                "Only organization owners may set or remove it.")
TEAM_MARK = "[paved-managed]"


def _marked(description: str) -> str:
    """A team's description as Paved writes it: the request's, then the mark."""
    return f"{description.strip()} {TEAM_MARK}".lstrip()


def _unmarked(description: str) -> tuple[str, bool]:
    """A team's description without Paved's mark, and whether it carried it."""
    text = description.strip()
    if text.endswith(TEAM_MARK):
        return text[:-len(TEAM_MARK)].rstrip(), True
    return text, False


def _repo_marked(repo: Any) -> bool:
    """Whether a repository carries Paved's mark (read from the repository itself; from its property
    values when GitHub leaves them out of it)."""
    values = repo.raw_data.get("custom_properties")
    if not isinstance(values, dict):
        values = repo.get_custom_properties()
    return values.get(MARK_PROPERTY) == MARK_VALUE


def _not_paveds(what: str, mark: str) -> str:
    return f"Paved will not touch {what}: it exists and Paved did not create it ({mark})"


# -- the kinds --------------------------------------------------------------------------------------------

class _Kind(ABC):
    """One kind: where its object lives on GitHub, how to read it, and the actions to match a request."""

    kind = ""
    # Whether an update may point the request at another object (another repository or team), which
    # then loses what the request gave it.
    moves = False

    def __init__(self, client: Github, token: Callable[[], str]) -> None:
        self.client = client
        self.token = token

    @abstractmethod
    def address(self, resource: Resource, target: Target) -> str:
        """Where the resource lives on GitHub (`org/repo`, `org/team`, ...)."""

    @abstractmethod
    def observe(self, resource: Resource, target: Target) -> dict[str, Any] | None:
        """The object as GitHub has it, or None."""

    @abstractmethod
    def actions(self, desired: Resource | None, actual: dict[str, Any] | None, target: Target,
                previous: Resource | None) -> list[_Action]:
        """What to do to make `actual` what `desired` asks (None: remove `previous`)."""

    def outputs(self, actual: dict[str, Any] | None) -> dict[str, str]:
        return {}

    def believed(self, previous: Resource, target: Target) -> dict[str, Any]:
        """What the catalogue says `previous` made, for a plan that cannot look; kinds that `move` say more."""
        return {}

    def refusal(self, actual: dict[str, Any] | None) -> str | None:
        """Why Paved will not touch what `actual` shows (it exists without Paved's mark), or None.

        Repository kinds observe `managed` from the repository they act on: `Access` and `Environment`
        too, since granting a team or adding an environment changes that repository.
        """
        if actual is None or actual.get("managed", True):
            return None
        return _not_paveds(f"repository {actual['repository']}", f"no {MARK_PROPERTY} mark")

    # -- shared reads ---------------------------------------------------------------------------------

    def step(self, resource: Resource, verb: Verb, description: str, destructive: bool = False) -> Step:
        return Step(resource.identity, verb, description, destructive)

    def repo(self, full_name: str, needed_by: str) -> Any:
        found = _found(lambda: self.client.get_repo(full_name))
        if found is None:
            raise _StepFailed(f"GitHub has no repository {full_name} (apply {needed_by} first)")
        return found

    def team(self, organization: str, slug: str) -> Any:
        found = _found(lambda: self.client.get_organization(organization).get_team_by_slug(slug))
        if found is None:
            raise _StepFailed(f"GitHub has no team {slug} in {organization} (apply Team/{slug} first)")
        return found


def _service_repo(resource: Resource, target: Target) -> str:
    return f"{target.organization}/{resource.spec.get('service', '')}"


class _Teams(_Kind):
    kind = "Team"

    def address(self, resource: Resource, target: Target) -> str:
        return f"{target.organization}/{resource.name}"

    def observe(self, resource: Resource, target: Target) -> dict[str, Any] | None:
        org = self.client.get_organization(target.organization)
        team = _found(lambda: org.get_team_by_slug(resource.name))
        if team is None:
            return None
        description, managed = _unmarked(team.description or "")
        if not managed:
            return {"slug": team.slug, "address": f"{target.organization}/{team.slug}", "url": team.html_url,
                    "managed": False}
        maintainers = sorted(u.login for u in team.get_members(role="maintainer"))
        members = sorted(u.login for u in team.get_members(role="member"))
        return {"slug": team.slug, "name": team.name, "description": description,
                "url": team.html_url, "maintainers": maintainers, "members": members, "managed": True}

    def refusal(self, actual: dict[str, Any] | None) -> str | None:
        if actual is None or actual["managed"]:
            return None
        return _not_paveds(f"team {actual['address']}", f"no {TEAM_MARK} mark at the end of its description")

    def outputs(self, actual: dict[str, Any] | None) -> dict[str, str]:
        return {"team": actual["url"]} if actual else {}

    @staticmethod
    def people(resource: Resource) -> dict[str, tuple[str, str]]:
        """casefolded login -> (login as the request spells it, role); maintainers are members too."""
        spec = resource.spec
        people = {str(login).casefold(): (str(login), "member") for login in spec.get("members") or []}
        people.update({str(login).casefold(): (str(login), "maintainer") for login in spec.get("maintainers") or []})
        return people

    def actions(self, desired: Resource | None, actual: dict[str, Any] | None, target: Target,
                previous: Resource | None) -> list[_Action]:
        org_name = target.organization
        if desired is None:
            if actual is None or previous is None:
                return []
            slug = actual["slug"]

            def delete(outputs: Outputs) -> None:
                self.team(org_name, slug).delete()

            return [_Action(self.step(previous, "delete", f"delete team {slug} from {org_name} (its repository "
                                                          "roles go with it)", destructive=True), delete)]
        slug, description = desired.name, str(desired.metadata.get("description", "")).strip()
        found: list[_Action] = []
        if actual is None:
            def create(outputs: Outputs) -> None:
                # Marked as Paved's in the call that creates it.
                team = self.client.get_organization(org_name).create_team(slug, description=_marked(description),
                                                                          privacy="closed")
                outputs["team"] = team.html_url

            found.append(_Action(self.step(desired, "create", f"create team {slug} in {org_name}"), create))
            current: dict[str, str] = {}
        else:
            current = {login.casefold(): "maintainer" for login in actual["maintainers"]}
            current.update({login.casefold(): "member" for login in actual["members"]
                            if login.casefold() not in current})
            if actual["description"] != description:
                def describe(outputs: Outputs) -> None:
                    team = self.team(org_name, slug)
                    team.edit(team.name, description=_marked(description))

                found.append(_Action(self.step(desired, "update", f"update the description of team {slug}"),
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
            found.append(_Action(self.step(desired, verb, words), self._member(org_name, slug, login, role)))
        for login in sorted((actual or {}).get("maintainers", []) + (actual or {}).get("members", [])):
            if login.casefold() not in wanted:
                found.append(_Action(self.step(desired, "update", f"remove {login} from team {slug}"),
                                     self._member(org_name, slug, login, None)))
        return found

    def _member(self, org_name: str, slug: str, login: str, role: str | None) -> Run:
        def run(outputs: Outputs) -> None:
            user = _found(lambda: self.client.get_user(login))
            if user is None:
                raise _StepFailed(f"GitHub has no user {login} (named in Team/{slug})")
            team = self.team(org_name, slug)
            if role is None:
                team.remove_membership(user)
            else:
                team.add_membership(user, role)

        return run


class _Services(_Kind):
    kind = "Service"

    def address(self, resource: Resource, target: Target) -> str:
        return f"{target.organization}/{resource.name}"

    @staticmethod
    def branch(resource: Resource) -> str:
        repository = resource.spec.get("repository") or {}
        return str(repository.get("defaultBranch") or "main")

    @staticmethod
    def visibility(resource: Resource) -> str:
        return str((resource.spec.get("repository") or {}).get("visibility") or "private")

    @staticmethod
    def template(resource: Resource) -> str:
        return str((resource.spec.get("template") or {}).get("name") or "")

    def observe(self, resource: Resource, target: Target) -> dict[str, Any] | None:
        full_name = self.address(resource, target)
        repo = _found(lambda: self.client.get_repo(full_name))
        if repo is None:
            return None
        if not _repo_marked(repo):
            return {"repository": repo.full_name, "url": repo.html_url, "managed": False}
        wanted = self.branch(resource)
        branch = _found(lambda: repo.get_branch(wanted))
        protection = None
        if branch is not None and branch.protected:
            rules = branch.get_protection()
            reviews, checks = rules.required_pull_request_reviews, rules.required_status_checks
            protection = {
                "approvals": reviews.required_approving_review_count if reviews else 0,
                "code_owners": bool(reviews and reviews.require_code_owner_reviews),
                "status_checks": {"strict": checks.strict, "contexts": list(checks.contexts)} if checks else None,
                "enforce_admins": bool(rules.enforce_admins),
            }
        return {
            "full_name": repo.full_name, "url": repo.html_url, "visibility": repo.visibility,
            "description": repo.description or "", "archived": bool(repo.archived),
            "default_branch": repo.default_branch,
            "branch_exists": branch is not None,
            "empty": branch is None and next(iter(repo.get_branches()), None) is None,
            "teams": {team.slug: team.permission for team in repo.get_teams()},
            "protection": protection, "managed": True,
        }

    def outputs(self, actual: dict[str, Any] | None) -> dict[str, str]:
        return {"repository": actual["url"]} if actual else {}

    def actions(self, desired: Resource | None, actual: dict[str, Any] | None, target: Target,
                previous: Resource | None) -> list[_Action]:
        if desired is None:
            if actual is None or actual["archived"] or previous is None:
                return []
            full_name = actual["full_name"]

            def archive(outputs: Outputs) -> None:
                self.repo(full_name, previous.identity).edit(archived=True)

            return [_Action(self.step(previous, "delete", f"archive repository {full_name} (it stays readable and "
                                                          "is unarchived if the service is asked for again)",
                                      destructive=True), archive)]
        full_name = self.address(desired, target)
        branch, visibility, template = self.branch(desired), self.visibility(desired), self.template(desired)
        description = str(desired.metadata.get("description", ""))
        owner = desired.owner
        found: list[_Action] = []
        protect = self.step(desired, "create" if actual is None else "update",
                            f"protect branch {branch} of {full_name}: {REQUIRED_APPROVALS} approving review, "
                            "code owners must approve")
        if actual is None:
            found.append(_Action(self.step(desired, "create", f"create repository {full_name} ({visibility}) from "
                                                              f"template {template}"),
                                 lambda outputs: self._create(desired, target, outputs)))
            found.append(_Action(self.step(desired, "create", f"give team {owner} {OWNER_PERMISSION} on {full_name}"),
                                 self._grant(target.organization, owner, full_name, desired)))
            found.append(_Action(protect, self._protect(full_name, branch, None, desired)))
            return found
        if actual["archived"]:
            found.append(_Action(self.step(desired, "update", f"unarchive repository {full_name}"),
                                 self._edit(full_name, desired, archived=False)))
        if actual["empty"]:
            found.append(_Action(self.step(desired, "update", f"render template {template} into the empty "
                                                              f"repository {full_name}"),
                                 lambda outputs: self._scaffold(desired, target, outputs)))
        elif actual["default_branch"] != branch:
            found.append(_Action(self.step(desired, "update", f"make {branch} the default branch of {full_name}"),
                                 self._edit(full_name, desired, default_branch=branch)))
        if actual["visibility"] != visibility:
            found.append(_Action(self.step(desired, "update", f"change the visibility of {full_name} from "
                                                              f"{actual['visibility']} to {visibility}"),
                                 self._edit(full_name, desired, visibility=visibility)))
        if actual["description"] != description:
            found.append(_Action(self.step(desired, "update", f"update the description of {full_name}"),
                                 self._edit(full_name, desired, description=description)))
        if actual["teams"].get(owner) != OWNER_PERMISSION:
            found.append(_Action(self.step(desired, "update", f"give team {owner} {OWNER_PERMISSION} on {full_name}"),
                                 self._grant(target.organization, owner, full_name, desired)))
        if previous is not None and previous.owner != owner and \
                actual["teams"].get(previous.owner) == OWNER_PERMISSION:
            found.append(_Action(self.step(desired, "update", f"remove team {previous.owner} from {full_name} (it no "
                                                              "longer owns it)"),
                                 self._grant(target.organization, previous.owner, full_name, desired, remove=True)))
        rules = actual["protection"]
        if not (rules and rules["approvals"] >= REQUIRED_APPROVALS and rules["code_owners"]):
            found.append(_Action(protect, self._protect(full_name, branch, rules, desired)))
        return found

    # -- what the steps do --------------------------------------------------------------------------------

    def _edit(self, full_name: str, desired: Resource, **fields: Any) -> Run:
        def run(outputs: Outputs) -> None:
            self.repo(full_name, desired.identity).edit(**fields)

        return run

    def _grant(self, organization: str, slug: str, full_name: str, desired: Resource,
               remove: bool = False) -> Run:
        def run(outputs: Outputs) -> None:
            team, repo = self.team(organization, slug), self.repo(full_name, desired.identity)
            if remove:
                team.remove_from_repos(repo)
            else:
                team.update_team_repository(repo, OWNER_PERMISSION)

        return run

    def _protect(self, full_name: str, branch: str, rules: dict[str, Any] | None,
                 desired: Resource) -> Run:
        def run(outputs: Outputs) -> None:
            # GitHub replaces the whole protection of a branch at once: keep the status checks and the
            # admin rule someone set, so that asking for reviews does not drop them.
            kept: dict[str, Any] = {}
            if rules and rules["status_checks"]:
                kept.update(strict=rules["status_checks"]["strict"], contexts=rules["status_checks"]["contexts"])
            if rules and rules["enforce_admins"]:
                kept["enforce_admins"] = True
            self.repo(full_name, desired.identity).get_branch(branch).edit_protection(
                required_approving_review_count=max(REQUIRED_APPROVALS, rules["approvals"] if rules else 0),
                require_code_owner_reviews=True, **kept)

        return run

    def _create(self, desired: Resource, target: Target, outputs: Outputs) -> None:
        # Render before creating anything, so that a template's refusal leaves no empty repository behind.
        with tempfile.TemporaryDirectory(prefix="paved-scaffold-") as scratch:
            project = _render(desired, target, Path(scratch))
            org = self.client.get_organization(target.organization)
            self._define_mark(org, target.organization)
            # Marked as Paved's in the call that creates it: there is no moment it exists unmarked.
            repo = org.create_repo(
                desired.name, description=str(desired.metadata.get("description", "")),
                visibility=self.visibility(desired), auto_init=False,
                custom_properties={MARK_PROPERTY: MARK_VALUE})
            outputs["repository"] = repo.html_url
            self._push(project, desired, target, repo)

    @staticmethod
    def _define_mark(org: Any, organization: str) -> None:
        """Define Paved's mark in the organization when it lacks it, or put back a definition that lets
        a repository's own admins set it."""
        try:
            found = _found(lambda: org.get_custom_property(MARK_PROPERTY))
            if found is not None and found.value_type == "true_false" and found.values_editable_by == "org_actors":
                return
            org.create_custom_property(CustomProperty(MARK_PROPERTY, "true_false", required=False,
                                                      description=MARK_PURPOSE, values_editable_by="org_actors"))
        except GithubException as exc:
            raise _StepFailed(f"GitHub refused to define the custom property {MARK_PROPERTY} of {organization}, "
                              "which marks the repositories Paved creates (Paved's App needs "
                              f"organization_custom_properties: admin): {_reason(exc)}") from None

    def _scaffold(self, desired: Resource, target: Target, outputs: Outputs) -> None:
        with tempfile.TemporaryDirectory(prefix="paved-scaffold-") as scratch:
            project = _render(desired, target, Path(scratch))
            repo = self.repo(self.address(desired, target), desired.identity)
            outputs["repository"] = repo.html_url
            self._push(project, desired, target, repo)

    def _push(self, project: Path, desired: Resource, target: Target, repo: Any) -> None:
        branch = self.branch(desired)
        message = (f"Create {desired.name} from the {self.template(desired)} golden path\n\n"
                   f"Rendered by Paved for {desired.identity} ({desired.path}) from {target.platform_repo} at "
                   f"{target.revision}.\n")
        _commit_and_push(project, branch, message, repo.clone_url, repo.full_name, self.token)
        if repo.default_branch != branch:
            repo.edit(default_branch=branch)


class _Access(_Kind):
    kind = "Access"
    moves = True

    def address(self, resource: Resource, target: Target) -> str:
        return f"{_service_repo(resource, target)}:{resource.spec.get('team', '')}"

    def observe(self, resource: Resource, target: Target) -> dict[str, Any] | None:
        full_name, slug = _service_repo(resource, target), str(resource.spec.get("team", ""))
        repo = _found(lambda: self.client.get_repo(full_name))
        if repo is None:
            return None
        if not _repo_marked(repo):
            return {"repository": full_name, "url": repo.html_url, "managed": False}
        permission = next((t.permission for t in repo.get_teams() if t.slug == slug), None)
        if permission is None:
            return None
        return {"repository": full_name, "url": repo.html_url, "team": slug, "permission": permission,
                "managed": True}

    def believed(self, previous: Resource, target: Target) -> dict[str, Any]:
        return {"repository": _service_repo(previous, target), "team": str(previous.spec.get("team", "")),
                "permission": str(previous.spec.get("permission", "")), "url": ""}

    def outputs(self, actual: dict[str, Any] | None) -> dict[str, str]:
        return {"repository": actual["url"]} if actual and actual["url"] else {}

    def actions(self, desired: Resource | None, actual: dict[str, Any] | None, target: Target,
                previous: Resource | None) -> list[_Action]:
        org_name = target.organization
        if desired is None:
            if actual is None or previous is None:
                return []
            full_name, slug, permission = actual["repository"], actual["team"], actual["permission"]

            def revoke(outputs: Outputs) -> None:
                self.team(org_name, slug).remove_from_repos(self.repo(full_name, previous.identity))

            return [_Action(self.step(previous, "delete", f"remove team {slug}'s {permission} access to {full_name}"),
                            revoke)]
        full_name, slug = _service_repo(desired, target), str(desired.spec.get("team", ""))
        permission = str(desired.spec.get("permission", ""))
        if actual is not None and actual["permission"] == permission:
            return []

        def grant(outputs: Outputs) -> None:
            repo = self.repo(full_name, f"Service/{desired.spec.get('service', '')}")
            self.team(org_name, slug).update_team_repository(repo, permission)
            outputs["repository"] = repo.html_url

        if actual is None:
            return [_Action(self.step(desired, "create", f"grant team {slug} {permission} on {full_name}"), grant)]
        return [_Action(self.step(desired, "update", f"change team {slug}'s permission on {full_name} from "
                                                     f"{actual['permission']} to {permission}"), grant)]


class _Environments(_Kind):
    kind = "Environment"
    moves = True

    def address(self, resource: Resource, target: Target) -> str:
        return f"{_service_repo(resource, target)}:{resource.spec.get('name', '')}"

    @staticmethod
    def wanted(resource: Resource) -> tuple[int, list[str], list[str] | None]:
        """(wait timer in minutes, reviewing teams, deployment branch patterns or None for any branch)."""
        spec = resource.spec
        branches = spec.get("deploymentBranches")
        return (int(spec.get("waitTimer") or 0), sorted(str(t) for t in spec.get("requiredReviewers") or []),
                sorted(str(b) for b in branches) if branches else None)

    def observe(self, resource: Resource, target: Target) -> dict[str, Any] | None:
        full_name, name = _service_repo(resource, target), str(resource.spec.get("name", ""))
        repo = _found(lambda: self.client.get_repo(full_name))
        if repo is None:
            return None
        if not _repo_marked(repo):
            return {"repository": full_name, "url": repo.html_url, "managed": False}
        env = _found(lambda: _complete(repo.get_environment(name)))
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
        branches: list[str] | None = None
        if policy is not None and policy.custom_branch_policies:
            branches = sorted(p["name"] if p.get("type", "branch") == "branch" else f"tag:{p['name']}"
                              for p in self._policies(repo, env.name))
        elif policy is not None and policy.protected_branches:
            branches = ["(protected branches)"]
        return {"repository": full_name, "name": env.name, "url": env.html_url, "wait_timer": wait_timer,
                "reviewers": sorted(reviewers), "branches": branches, "managed": True}

    def believed(self, previous: Resource, target: Target) -> dict[str, Any]:
        wait_timer, reviewers, branches = self.wanted(previous)
        return {"repository": _service_repo(previous, target), "name": str(previous.spec.get("name", "")),
                "url": "", "wait_timer": wait_timer, "reviewers": reviewers, "branches": branches}

    def outputs(self, actual: dict[str, Any] | None) -> dict[str, str]:
        return {"environment": actual["url"]} if actual and actual["url"] else {}

    def _policies(self, repo: Any, name: str) -> list[dict[str, Any]]:
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

    def actions(self, desired: Resource | None, actual: dict[str, Any] | None, target: Target,
                previous: Resource | None) -> list[_Action]:
        if desired is None:
            if actual is None or previous is None:
                return []
            full_name, name = actual["repository"], actual["name"]

            def delete(outputs: Outputs) -> None:
                self.repo(full_name, previous.identity).delete_environment(name)

            return [_Action(self.step(previous, "delete", f"delete environment {name} of {full_name} (its secrets "
                                                          "go with it)", destructive=True), delete)]
        full_name, name = _service_repo(desired, target), str(desired.spec.get("name", ""))
        wait_timer, reviewers, branches = self.wanted(desired)
        settings = (f"wait {wait_timer} min, reviewers: {_names(reviewers)}, "
                    f"deployment branches: {_names(branches) if branches is not None else 'any'}")
        if actual is None:
            return [_Action(self.step(desired, "create", f"create environment {name} in {full_name} ({settings})"),
                            self._put(desired, target))]
        changes = []
        if actual["wait_timer"] != wait_timer:
            changes.append(f"wait timer {actual['wait_timer']} → {wait_timer} min")
        if actual["reviewers"] != reviewers:
            changes.append(f"reviewers {_names(actual['reviewers'])} → {_names(reviewers)}")
        if actual["branches"] != branches:
            before, after = actual["branches"], branches
            changes.append(f"deployment branches {_names(before) if before is not None else 'any'} → "
                           f"{_names(after) if after is not None else 'any'}")
        if not changes:
            return []
        return [_Action(self.step(desired, "update", f"update environment {name} in {full_name}: "
                                                     + "; ".join(changes)), self._put(desired, target))]

    def _put(self, desired: Resource, target: Target) -> Run:
        def run(outputs: Outputs) -> None:
            full_name, name = _service_repo(desired, target), str(desired.spec.get("name", ""))
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

    def _sync_policies(self, repo: Any, name: str, patterns: list[str]) -> None:
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


def _complete(obj: T) -> T:
    """A lazily built PyGithub object, made to fetch itself now so that a 404 surfaces here."""
    obj.complete()  # type: ignore[attr-defined]
    return obj


# -- rendering a golden path and pushing it -----------------------------------------------------------------

def _render(desired: Resource, target: Target, scratch: Path) -> Path:
    """The service's template, from the merged platform repo, rendered into `scratch`.

    `bot.adapters.scaffold` renders it in a child process that holds no secret, with the request's
    values as data, never as template source.
    """
    spec = desired.spec.get("template") or {}
    name = str(spec.get("name") or "")
    if not _TEMPLATE_NAME.match(name):
        raise _StepFailed(f"{desired.identity} names no usable template ({name!r})")
    source = _copy_template(target.tree, name, scratch / "templates" / name, target)
    values = {"name": desired.name, "owner": desired.owner,
              "description": str(desired.metadata.get("description", "")), "_github_org": target.organization}
    try:
        rendered = scaffold.render(source, scratch / "rendered", values=values,
                                   parameters=spec.get("parameters") or {})
    except scaffold.HookRefused as exc:
        # The hooks check the parameters; what they print goes to the log, their verdict here.
        log.warning("template %s refused %s: %s", name, desired.identity, exc.output or "(it printed nothing)")
        raise _StepFailed(f"template {name} refused {desired.identity}: {exc.message}; "
                          "check spec.template.parameters") from None
    except scaffold.ParameterRefused as exc:
        raise _StepFailed(f"template {name} refused {desired.identity}: {exc.message}; "
                          "check spec.template.parameters") from None
    except scaffold.ScaffoldTimeout as exc:
        raise _StepFailed(f"template {name} took longer than {exc.seconds:g} s to render "
                          f"{desired.identity}") from None
    except scaffold.ScaffoldError as exc:
        raise _StepFailed(f"template {name} could not be rendered for {desired.identity}: "
                          f"{_one_line(exc.message)[:300]}") from None
    _ensure_codeowners(rendered, desired, target.organization)
    return rendered


def _copy_template(tree: Tree, name: str, destination: Path, target: Target) -> Path:
    prefix = f"templates/{name}/"
    listing = tree.files(prefix)
    if f"{prefix}cookiecutter.json" not in listing:
        raise _StepFailed(f"template {name} is not in {target.platform_repo} at {target.revision[:12]}")
    for path, data in tree.read_many(sorted(listing)).items():
        relative = PurePosixPath(path[len(prefix):])
        if relative.is_absolute() or ".." in relative.parts:
            raise _StepFailed(f"template {name} holds a file outside its folder: {path}")
        file = destination.joinpath(*relative.parts)
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_bytes(data)
    return destination


def _ensure_codeowners(project: Path, desired: Resource, organization: str) -> None:
    """Make the project's CODEOWNERS (the one GitHub reads) name the owning team, adding one if need be."""
    owner = f"@{organization}/{desired.owner}"
    existing = next((project / p for p in CODEOWNERS_PATHS if (project / p).is_file()), None)
    if existing is None:
        (project / "CODEOWNERS").write_text(f"# {desired.owner} owns {desired.name}: GitHub asks them to review "
                                            f"every pull request.\n* {owner}\n", encoding="utf-8")
        return
    text = existing.read_text(encoding="utf-8")
    if owner not in text.split():
        # The last matching line wins in CODEOWNERS, so a final catch-all makes the team own everything.
        existing.write_text(f"{text.rstrip()}\n\n# Paved: {desired.owner} owns {desired.name}.\n* {owner}\n",
                            encoding="utf-8")


def _commit_and_push(project: Path, branch: str, message: str, url: str, full_name: str,
                     token: Callable[[], str]) -> None:
    """The rendered project as the first commit of `branch`, pushed to `url` over HTTPS.

    The machine's git configuration is not read (no signing, hooks or credential helpers of its own),
    and the credential travels as an HTTP header given through the environment (`GIT_CONFIG_COUNT`,
    git 2.31 or newer): it is never in the remote URL, in a configuration file, or on a command line
    that others on the machine may list.
    """
    secret = token()
    header = base64.b64encode(f"x-access-token:{secret}".encode()).decode()
    quiet = {"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull, "GIT_TERMINAL_PROMPT": "0",
             "GIT_AUTHOR_NAME": AUTHOR_NAME, "GIT_AUTHOR_EMAIL": AUTHOR_EMAIL,
             "GIT_COMMITTER_NAME": AUTHOR_NAME, "GIT_COMMITTER_EMAIL": AUTHOR_EMAIL}
    pushing = {**quiet, "GIT_CONFIG_COUNT": "2",
               "GIT_CONFIG_KEY_0": "http.extraHeader", "GIT_CONFIG_VALUE_0": f"Authorization: Basic {header}",
               "GIT_CONFIG_KEY_1": "credential.helper", "GIT_CONFIG_VALUE_1": ""}
    try:
        git.Git(str(project)).execute(["git", "init", "--quiet", f"--initial-branch={branch}"], env=quiet)
        repo = git.Repo(project)
        repo.git.execute(["git", "add", "--all"], env=quiet)
        repo.git.execute(["git", "commit", "--quiet", "--no-verify", "-m", message], env=quiet)
        repo.git.execute(["git", "push", "--quiet", url, f"HEAD:refs/heads/{branch}"], env=pushing)
    except git.GitCommandError as exc:
        detail = _scrub(str(exc.stderr or exc).strip(), [secret, header])
        # GitPython quotes what git said as "stderr: '...'"; keep git's own last line.
        last = detail.splitlines()[-1].strip().removeprefix("stderr:").strip().strip("'") if detail else ""
        # `from None`: the original error carries the command and its environment's effects verbatim.
        raise _StepFailed(f"git could not push the first commit of {full_name}: {_one_line(last)}") from None


# -- the provider ------------------------------------------------------------------------------------------

class GitHubProvider:
    """`Provider` for `Team`, `Service`, `Access` and `Environment` on GitHub.

    `client` acts as Paved's App installation in the organization; `token()` gives the credential git
    pushes a new repository's first commit with (an installation token, renewed by the caller).

    Paved touches only what it made. A repository it creates carries the organization custom property
    `paved-managed` set to `true` from the moment it exists (given in the call that creates it); a team
    it creates ends its description with `[paved-managed]`, which Paved keeps on every description
    change and leaves out when comparing descriptions. Before any change or deletion Paved reads the
    mark; a repository (for `Service`, and for the `Access` and `Environment` requests acting on it) or
    team that exists without it is left alone, and the plan says why. The first repository Paved
    creates in an organization defines the property there (`true_false`, `values_editable_by:
    org_actors`: only organization owners, and apps allowed to, may set or remove a value; a
    repository's maintainers and admins may not), and Paved puts that definition back if someone loosens
    it. So the App needs `organization_custom_properties: admin` (to define the property; `write`
    would do once it exists) besides `administration: write`, `members: write` and `contents: write`.

    Adoption: an organization owner hands an existing repository to Paved by setting its `paved-managed`
    property to `true` (the repository's settings, or `PATCH /repos/{owner}/{repo}/properties/values`),
    and an existing team by ending its description with `[paved-managed]`; Paved then makes them what
    the catalogue asks. Removing the mark takes them back.
    """

    kinds: tuple[str, ...] = ("Team", "Service", "Access", "Environment")

    def __init__(self, client: Github, token: Callable[[], str]) -> None:
        self.client = client
        self.token = token
        self._kinds: dict[str, _Kind] = {kind.kind: kind(client, token)
                                         for kind in (_Teams, _Services, _Access, _Environments)}

    def _kind(self, kind: str) -> _Kind:
        if kind not in self._kinds:
            raise ValueError(f"the GitHub provider does not make {kind} resources")
        return self._kinds[kind]

    def observe(self, resource: Resource, target: Target) -> dict[str, Any] | None:
        """The resource as it exists on GitHub, or None; raises `ForgeError` when GitHub will not tell."""
        kind = self._kind(resource.kind)
        try:
            return kind.observe(resource, target)
        except GithubException as exc:
            raise ForgeError(f"GitHub refused to show {resource.identity}: {_reason(exc)}", status=exc.status) from exc
        except TRANSPORT_ERRORS as exc:
            raise ForgeError(f"GitHub did not answer when asked for {resource.identity}: {transport_failure(exc)}") \
                from exc

    def plan(self, desired: Resource | None, actual: dict[str, Any] | None, target: Target,
             previous: Resource | None = None) -> list[Step]:
        subject = desired or previous
        if subject is None:
            return []
        kind = self._kind(subject.kind)
        refused = kind.refusal(actual)
        if refused is not None:
            return [kind.step(subject, "delete" if desired is None else "update", refused)]
        steps = []
        if self._moved(kind, desired, previous, target):
            assert previous is not None
            steps += [a.step for a in kind.actions(None, kind.believed(previous, target), target, previous)]
        return steps + [a.step for a in kind.actions(desired, actual, target, previous)]

    @staticmethod
    def _moved(kind: _Kind, desired: Resource | None, previous: Resource | None, target: Target) -> bool:
        return kind.moves and desired is not None and previous is not None and \
            kind.address(desired, target) != kind.address(previous, target)

    def apply(self, desired: Resource | None, target: Target, previous: Resource | None = None) -> Result:
        subject = desired or previous
        if subject is None:
            raise ValueError("apply needs the request, or the previous one to delete")
        if subject.kind not in self._kinds:
            return Result(subject.identity, "skipped", f"the GitHub provider does not make {subject.kind} resources")
        kind = self._kind(subject.kind)
        taken: list[Step] = []
        outputs: dict[str, str] = {}
        current: Step | None = None
        try:
            planned: list[_Action] = []
            before: dict[str, Any] | None = None
            if self._moved(kind, desired, previous, target):
                assert previous is not None
                before = kind.observe(previous, target)
            actual = kind.observe(subject, target)
            refused = kind.refusal(before) or kind.refusal(actual)
            if refused is not None:
                log.warning("%s: %s", subject.identity, refused)
                return Result(subject.identity, "failed", refused)
            if before is not None:
                planned += kind.actions(None, before, target, previous)
            outputs.update(kind.outputs(actual))
            planned += kind.actions(desired, actual, target, previous)
            for action in planned:
                current = action.step
                log.info("%s: %s", subject.identity, action.step.description)
                action.run(outputs)
                taken.append(action.step)
        except _FAILURES as exc:
            message = self._failure(exc, current)
            log.warning("%s: %s", subject.identity, message)
            return Result(subject.identity, "failed", message, tuple(taken), outputs)
        return Result(subject.identity, "applied" if taken else "unchanged", "", tuple(taken), outputs)

    def _failure(self, exc: Exception, step: Step | None) -> str:
        doing = f" to {step.description}" if step else " to show what exists"
        if isinstance(exc, GithubException):
            message = f"GitHub refused{doing}: {_reason(exc)}"
        elif isinstance(exc, PavedError):
            message = exc.message
        else:  # no answer (a timeout, a dropped connection), or a local file's or git's error
            message = f"GitHub could not be reached{doing}: {transport_failure(exc)}"
        return _scrub(_one_line(message), [])


class GitHubSecrets:
    """Actions secrets of a repository and of its deployment environments, for other providers.

    GitHub only accepts a secret sealed with the public key of the repository (or environment) it goes
    to; PyGithub fetches that key and seals the value with PyNaCl's sealed box, so the value leaves
    Paved encrypted and can never be read back, by Paved or anyone. Errors never carry the value.
    """

    def __init__(self, client: Github) -> None:
        self.client = client

    def _holder(self, repo: str, environment: str | None) -> Any:
        holder = self.client.get_repo(repo)
        return holder if environment is None else holder.get_environment(environment)

    def present(self, repo: str, environment: str | None, name: str) -> bool:
        """Whether the secret exists (a missing repository or environment has none)."""
        try:
            return _found(lambda: _complete(self._holder(repo, environment).get_secret(name))) is not None
        except GithubException as exc:
            raise ForgeError(f"GitHub refused to show secret {name} of {_where(repo, environment)}: "
                             f"{_reason(exc)}", status=exc.status) from None
        except TRANSPORT_ERRORS as exc:
            raise ForgeError(f"GitHub did not answer when asked for secret {name} of {_where(repo, environment)}: "
                             f"{transport_failure(exc)}") from None

    def put(self, repo: str, environment: str | None, name: str, value: str) -> None:
        try:
            self._holder(repo, environment).create_secret(name, value)
        except GithubException as exc:
            raise ForgeError(f"GitHub refused to set secret {name} on {_where(repo, environment)}: "
                             f"{_scrub(_reason(exc), [value])}", status=exc.status) from None
        except TRANSPORT_ERRORS as exc:
            raise ForgeError(f"GitHub did not answer when asked to set secret {name} on "
                             f"{_where(repo, environment)}: {_scrub(transport_failure(exc), [value])}") from None

    def remove(self, repo: str, environment: str | None, name: str) -> None:
        """Delete the secret; one that is already gone (or whose repository is) is fine."""
        try:
            _found(lambda: self._holder(repo, environment).delete_secret(name))
        except GithubException as exc:
            raise ForgeError(f"GitHub refused to delete secret {name} of {_where(repo, environment)}: "
                             f"{_reason(exc)}", status=exc.status) from None
        except TRANSPORT_ERRORS as exc:
            raise ForgeError(f"GitHub did not answer when asked to delete secret {name} of "
                             f"{_where(repo, environment)}: {transport_failure(exc)}") from None


def _where(repo: str, environment: str | None) -> str:
    return repo if environment is None else f"environment {environment} of {repo}"
