"""`Service` on GitHub: the repository `ORG/NAME`, made from a golden path.

The repository has the request's visibility, description and default branch
(`spec.repository.defaultBranch`, default `main`). A new repository's first commit is its golden-path
template (`templates/TEMPLATE/` of the merged platform repo, rendered with cookiecutter), pushed with git;
then the owning team gets `maintain` and the default branch needs one approving review and the code
owners' review. That commit holds `.paved/scaffold.json` (`bot.adapters.scaffold.write_record`): the
template, the platform repo's commit it was rendered from and the answers; the apply's result names the
same template and commit, and the answers' digest (`template`, `template_commit`, `template_answers`),
so the platform repo's notes say where each service came from without repeating request text.
Observing also reads what the standards (`bot.standards`) score on the default branch: whether a
CODEOWNERS file is there, and the `.paved/scaffold.json` record, read as hostile data
(`bot.golden_paths.read_record`); neither is ever a reason to change the repository.
Later, visibility, description and default branch follow the request; the template is
rendered again only to offer an upgrade pull request (`render_recorded`, `render_request`, used by
`bot.adapters.upgrade`), never over the default branch. Deleting the request archives the repository:
destructive, but reversible, since an archived repository keeps everything and asking for the service
again unarchives it.

The repository carries Paved's mark, the organization custom property `paved-managed`, from the call that
creates it; one without it is left alone.

A renamed request (the plan's `rename`: a new name, the same content) renames the repository when nothing
is at the new address and the old one is Paved's: one step `rename repository ORG/old to ORG/new`
(history, issues and pull requests go with it; GitHub redirects the old address), then the usual steps
against what was observed of it; the template's rendering of the new name comes as an upgrade pull request.
An old repository that is gone or unmarked is not renamed: the new name gets a new repository, and the
create step says why. A re-run after a crash between the rename and the rest finds the repository at its
new name and goes on. Since GitHub redirects an old name, a repository is observed only where it is now
(`repository_at`): a request for the old name later gets a repository of its own.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import git
from github import Consts, GithubException
from github.BranchProtection import BranchProtection
from github.OrganizationCustomProperty import CustomProperty

from bot.adapters import scaffold
from bot.adapters.github import ForgeError
from bot.golden_paths import RECORD_LIMIT, RECORD_PATH, RecordUnreadable, ScaffoldRecord, read_record
from bot.model import Resource, Tree
from bot.provider import Target
from bot.providers.github.shared import (
    MARK_PROPERTY,
    MARK_PURPOSE,
    MARK_VALUE,
    Action,
    Kind,
    Outputs,
    Run,
    StepFailed,
    Unmarked,
    if_found,
    one_line,
    reason_of,
    repo_marked,
    repository_at,
    scrub,
    unmarked_repository,
)

if TYPE_CHECKING:
    from github.Organization import Organization
    from github.Repository import Repository

log = logging.getLogger(__name__)

AUTHOR_NAME = "Paved"
AUTHOR_EMAIL = "paved@users.noreply.github.com"
OWNER_PERMISSION = "maintain"
REQUIRED_APPROVALS = 1
# Where GitHub looks for CODEOWNERS, in the order it looks.
CODEOWNERS_PATHS = (".github/CODEOWNERS", "CODEOWNERS", "docs/CODEOWNERS")
_TEMPLATE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_COMMIT = re.compile(r"^[0-9a-f]{40}$")


@dataclass(frozen=True, slots=True)
class StatusChecks:
    """The status checks a branch's protection requires: whether the branch must be up to date first, and
    which checks."""

    strict: bool
    contexts: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Protection:
    """What Paved reads of a protected branch's rules: the reviews it asks for, and what it keeps when
    it rewrites them (the status checks and the admin rule someone set)."""

    approvals: int
    code_owners: bool
    status_checks: StatusChecks | None
    enforce_admins: bool


@dataclass(frozen=True, slots=True)
class ObservedRepository:
    """What Paved observes of a repository carrying its mark. `empty`: it has no branch at all (not even
    the default one); `teams`: each team's permission on it, by slug; `protection`: the rules of the
    request's default branch, None when that branch is missing or unprotected.

    Read from the repository's default branch, for the standards only (`actions` never looks at them):
    `codeowners`, whether a CODEOWNERS file is at one of `CODEOWNERS_PATHS`; `scaffold`, the golden-path
    record it keeps (`.paved/scaffold.json`), None when it is missing or unreadable, `scaffold_problem`
    saying why.
    """

    full_name: str
    url: str
    visibility: str
    description: str
    archived: bool
    default_branch: str
    empty: bool
    teams: Mapping[str, str]
    protection: Protection | None
    codeowners: bool
    scaffold: ScaffoldRecord | None
    scaffold_problem: str


class Services(Kind[ObservedRepository]):
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

    @staticmethod
    def at_pin(resource: Resource) -> str:
        """How a plan names the platform commit a pinned service is scaffolded at ("" when it follows the head)."""
        pin = (resource.spec.get("template") or {}).get("pin")
        return f" at its pin {pin[:12]}" if isinstance(pin, str) and pin else ""

    def observe(self, resource: Resource, target: Target) -> ObservedRepository | Unmarked | None:
        full_name = self.address(resource, target)
        repo = repository_at(self.client, full_name)  # a renamed repository's old name is nothing there
        if repo is None:
            return None
        if not repo_marked(repo):
            return unmarked_repository(repo.full_name)
        wanted = self.branch(resource)
        rules = self._protection(repo, wanted)
        protection = None
        if rules is not None:
            reviews, checks = rules.required_pull_request_reviews, rules.required_status_checks
            protection = Protection(
                approvals=reviews.required_approving_review_count if reviews else 0,
                code_owners=bool(reviews and reviews.require_code_owner_reviews),
                status_checks=StatusChecks(checks.strict, tuple(checks.contexts)) if checks else None,
                enforce_admins=bool(rules.enforce_admins),
            )
        # A protected branch exists; only without protection does Paved ask whether the branch (or any) does.
        missing = rules is None and if_found(lambda: repo.get_branch(wanted)) is None
        empty = missing and next(iter(repo.get_branches()), None) is None
        codeowners, record, problem = (False, None, "the repository is empty") if empty else self._files(repo)
        return ObservedRepository(
            full_name=repo.full_name, url=repo.html_url, visibility=repo.visibility,
            description=repo.description or "", archived=bool(repo.archived),
            default_branch=repo.default_branch, empty=empty,
            teams={team.slug: team.permission for team in repo.get_teams()},
            protection=protection, codeowners=codeowners, scaffold=record, scaffold_problem=problem,
        )

    def _files(self, repo: Repository) -> tuple[bool, ScaffoldRecord | None, str]:
        """(a CODEOWNERS file is there, the scaffold record or None, why there is none) on the default branch.

        Read folder by folder from the root's listing, which reconcile has just read to ask whether the
        repository is a platform repo (`GitHubForge.has_path`): asked again with its ETag, it is a free 304,
        and so is every folder and file here while it is unchanged. A path GitHub answers 404 for costs a
        request each time, so none is asked for unless its folder lists it.
        """
        root = self._listing(repo, "")
        found = any(root.get(p) == "file" for p in CODEOWNERS_PATHS if "/" not in p)
        for folder in dict.fromkeys(p.rsplit("/", 1)[0] for p in CODEOWNERS_PATHS if "/" in p):
            if found:
                break
            if root.get(folder) == "dir":
                listed = self._listing(repo, folder)
                found = any(listed.get(p.rsplit("/", 1)[1]) == "file" for p in CODEOWNERS_PATHS
                            if p.startswith(f"{folder}/"))
        folder = RECORD_PATH.rsplit("/", 1)[0]
        if root.get(folder) != "dir":
            return found, None, f"the default branch has no {RECORD_PATH}"
        record, problem = self._record(repo)
        return found, record, problem

    def _listing(self, repo: Repository, folder: str) -> dict[str, str]:
        """The entries of `folder` on the default branch (name -> `file`, `dir`, `symlink` ...); {} when absent."""
        url = f"{repo.url}/contents" + (f"/{quote(folder)}" if folder else "")
        found = if_found(lambda: self.client.requester.requestJsonAndCheck("GET", url))
        entries = found[1] if found is not None else None
        if not isinstance(entries, list):
            return {}
        return {str(e.get("name")): str(e.get("type")) for e in entries if isinstance(e, dict)}

    def _record(self, repo: Repository) -> tuple[ScaffoldRecord | None, str]:
        """The repository's scaffold record, read as hostile data: its size is checked before its bytes."""
        url = f"{repo.url}/contents/{quote(RECORD_PATH)}"
        found = if_found(lambda: self.client.requester.requestJsonAndCheck("GET", url))
        data = found[1] if found is not None else None
        if data is None:
            return None, f"the default branch has no {RECORD_PATH}"
        if not isinstance(data, dict) or data.get("type") != "file":
            return None, f"{RECORD_PATH} is not a file"
        size = data.get("size")
        if not isinstance(size, int) or size > RECORD_LIMIT:
            return None, f"{RECORD_PATH} is {size} bytes, more than Paved ever writes ({RECORD_LIMIT})"
        content = data.get("content")
        if data.get("encoding") != "base64" or not isinstance(content, str):
            return None, f"{RECORD_PATH} could not be read from GitHub (no content in its answer)"
        try:
            return read_record(base64.b64decode(content)), ""
        except ValueError:
            return None, f"{RECORD_PATH} is not base64 as GitHub sends files"
        except RecordUnreadable as exc:
            return None, exc.message

    def outputs(self, actual: ObservedRepository | None) -> dict[str, str]:
        return {"repository": actual.url} if actual else {}

    def _protection(self, repo: Repository, branch: str) -> BranchProtection | None:
        """The branch's protection, asked for directly: one request for a protected branch (what Paved's
        branches are), where reading the branch first took two. None when the branch is unprotected or
        missing, which GitHub answers alike (404)."""
        url = f"{repo.url}/branches/{quote(branch)}/protection"
        found = if_found(lambda: self.client.requester.requestJsonAndCheck(
            "GET", url, headers={"Accept": Consts.mediaTypeRequireMultipleApprovingReviews}))
        if found is None:
            return None
        headers, data = found
        return BranchProtection(self.client.requester, headers, data, completed=True)

    def actions(self, desired: Resource | None, actual: ObservedRepository | None, target: Target,
                previous: Resource | None) -> list[Action]:
        if desired is None:
            if actual is None or actual.archived or previous is None:
                return []
            full_name = actual.full_name

            def archive(outputs: Outputs) -> None:
                self.repo(full_name, previous.identity).edit(archived=True)

            return [Action(self.step(previous, "delete", f"archive repository {full_name} (it stays readable and "
                                                          "is unarchived if the service is asked for again)",
                                      destructive=True), archive)]
        full_name = self.address(desired, target)
        branch, visibility = self.branch(desired), self.visibility(desired)
        template = self.template(desired) + self.at_pin(desired)
        description = str(desired.metadata.get("description", ""))
        owner = desired.owner
        found: list[Action] = []
        not_renamed = ""
        if actual is None and previous is not None and previous.name != desired.name:
            old, not_renamed = self._renamed_from(previous, target)
            if old is not None:
                found.append(Action(self.step(desired, "update", f"rename repository {old.full_name} to {full_name} "
                                                                  "(its history, issues and pull requests go with "
                                                                  "it; GitHub redirects the old address)"),
                                     self._rename(old.full_name, desired)))
                # The usual steps, against what was observed of it under its old name.
                actual = replace(old, full_name=full_name)
        protect = self.step(desired, "create" if actual is None else "update",
                            f"protect branch {branch} of {full_name}: {REQUIRED_APPROVALS} approving review, "
                            "code owners must approve")
        if actual is None:
            found.append(Action(self.step(desired, "create", f"create repository {full_name} ({visibility}) from "
                                                              f"template {template}{not_renamed}"),
                                 lambda outputs: self._create(desired, target, outputs)))
            found.append(Action(self.step(desired, "create", f"give team {owner} {OWNER_PERMISSION} on {full_name}"),
                                 self._grant(target.organization, owner, full_name, desired)))
            found.append(Action(protect, self._protect(full_name, branch, None, desired)))
            return found
        if actual.archived:
            found.append(Action(self.step(desired, "update", f"unarchive repository {full_name}"),
                                 self._edit(full_name, desired, archived=False)))
        if actual.empty:
            found.append(Action(self.step(desired, "update", f"render template {template} into the empty "
                                                              f"repository {full_name}"),
                                 lambda outputs: self._scaffold(desired, target, outputs)))
        elif actual.default_branch != branch:
            found.append(Action(self.step(desired, "update", f"make {branch} the default branch of {full_name}"),
                                 self._edit(full_name, desired, default_branch=branch)))
        if actual.visibility != visibility:
            found.append(Action(self.step(desired, "update", f"change the visibility of {full_name} from "
                                                              f"{actual.visibility} to {visibility}"),
                                 self._edit(full_name, desired, visibility=visibility)))
        if actual.description != description:
            found.append(Action(self.step(desired, "update", f"update the description of {full_name}"),
                                 self._edit(full_name, desired, description=description)))
        if actual.teams.get(owner) != OWNER_PERMISSION:
            found.append(Action(self.step(desired, "update", f"give team {owner} {OWNER_PERMISSION} on {full_name}"),
                                 self._grant(target.organization, owner, full_name, desired)))
        if previous is not None and previous.owner != owner and \
                actual.teams.get(previous.owner) == OWNER_PERMISSION:
            found.append(Action(self.step(desired, "update", f"remove team {previous.owner} from {full_name} (it no "
                                                              "longer owns it)"),
                                 self._grant(target.organization, previous.owner, full_name, desired, remove=True)))
        rules = actual.protection
        if not (rules and rules.approvals >= REQUIRED_APPROVALS and rules.code_owners):
            found.append(Action(protect, self._protect(full_name, branch, rules, desired)))
        return found

    def _renamed_from(self, previous: Resource, target: Target) -> tuple[ObservedRepository | None, str]:
        """The repository of a renamed request's old name, observed, when it is Paved's to rename (asked only
        when nothing is at the new name); else None and why it is not renamed, as the create step says it.

        After a rename, a re-run finds the repository at its new name and never asks this again, so a crash
        between renaming it and the steps that follow is finished by the next apply."""
        try:
            old = self.observe(previous, target)
        except GithubException as exc:
            raise ForgeError(f"GitHub refused to show the repository of {previous.identity}: {reason_of(exc)}",
                             status=exc.status) from None
        old_name = self.address(previous, target)
        if old is None:
            return None, f" ({old_name}, the repository of its old name, is gone: nothing to rename)"
        if isinstance(old, Unmarked):
            return None, f" ({old_name} exists without Paved's mark, so Paved does not rename it)"
        return old, ""

    # -- what the steps do --------------------------------------------------------------------------------

    def _rename(self, old_name: str, desired: Resource) -> Run:
        def run(outputs: Outputs) -> None:
            repo = self.repo(old_name, desired.identity)
            repo.edit(name=desired.name)
            outputs["repository"] = repo.html_url  # PyGithub takes the answer: the renamed repository's

        return run

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

    def _protect(self, full_name: str, branch: str, rules: Protection | None,
                 desired: Resource) -> Run:
        def run(outputs: Outputs) -> None:
            # GitHub replaces the whole protection of a branch at once: keep the status checks and the
            # admin rule someone set, so that asking for reviews does not drop them.
            kept: dict[str, Any] = {}
            if rules and rules.status_checks:
                kept.update(strict=rules.status_checks.strict, contexts=list(rules.status_checks.contexts))
            if rules and rules.enforce_admins:
                kept["enforce_admins"] = True
            self.repo(full_name, desired.identity).get_branch(branch).edit_protection(
                required_approving_review_count=max(REQUIRED_APPROVALS, rules.approvals if rules else 0),
                require_code_owner_reviews=True, **kept)

        return run

    def _create(self, desired: Resource, target: Target, outputs: Outputs) -> None:
        # Render before creating anything, so that a template's refusal leaves no empty repository behind.
        with tempfile.TemporaryDirectory(prefix="paved-scaffold-") as scratch:
            project = _render(desired, target, Path(scratch), outputs)
            org = self.client.get_organization(target.organization)
            self._define_mark(org, target.organization)
            # Marked as Paved's in the call that creates it: there is no moment it exists unmarked.
            repo = org.create_repo(
                desired.name, description=str(desired.metadata.get("description", "")),
                visibility=self.visibility(desired), auto_init=False,
                custom_properties={MARK_PROPERTY: MARK_VALUE})
            outputs["repository"] = repo.html_url
            self._push(project, desired, target, repo, outputs["template_commit"])

    @staticmethod
    def _define_mark(org: Organization, organization: str) -> None:
        """Define Paved's mark in the organization when it lacks it, or put back a definition that lets
        a repository's own admins set it."""
        try:
            found = if_found(lambda: org.get_custom_property(MARK_PROPERTY))
            if found is not None and found.value_type == "true_false" and found.values_editable_by == "org_actors":
                return
            org.create_custom_property(CustomProperty(MARK_PROPERTY, "true_false", required=False,
                                                      description=MARK_PURPOSE, values_editable_by="org_actors"))
        except GithubException as exc:
            raise StepFailed(f"GitHub refused to define the custom property {MARK_PROPERTY} of {organization}, "
                              "which marks the repositories Paved creates (Paved's App needs "
                              f"organization_custom_properties: admin): {reason_of(exc)}") from None

    def _scaffold(self, desired: Resource, target: Target, outputs: Outputs) -> None:
        with tempfile.TemporaryDirectory(prefix="paved-scaffold-") as scratch:
            project = _render(desired, target, Path(scratch), outputs)
            repo = self.repo(self.address(desired, target), desired.identity)
            outputs["repository"] = repo.html_url
            self._push(project, desired, target, repo, outputs["template_commit"])

    def _push(self, project: Path, desired: Resource, target: Target, repo: Repository, rendered_at: str) -> None:
        branch = self.branch(desired)
        message = (f"Create {desired.name} from the {self.template(desired)} golden path\n\n"
                   f"Rendered by Paved for {desired.identity} ({desired.path}) from {target.platform_repo} at "
                   f"{rendered_at}.\n")
        _commit_and_push(project, branch, message, repo.clone_url, repo.full_name, self.token)
        if repo.default_branch != branch:
            repo.edit(default_branch=branch)



# -- rendering a golden path and pushing it -----------------------------------------------------------------

def _render(desired: Resource, target: Target, scratch: Path, outputs: Outputs | None = None) -> Path:
    """The service's template, from the merged platform repo (at its pin, when it names one), rendered into
    `scratch`, with its record.

    `bot.adapters.scaffold` renders it in a child process that holds no secret, with the request's
    values as data, never as template source. `outputs` get the template, the commit and the answers'
    digest: short, and never request text, since comments and catalogue pages show outputs.
    """
    spec = desired.spec.get("template") or {}
    name = str(spec.get("name") or "")
    if not _TEMPLATE_NAME.match(name):
        raise StepFailed(f"{desired.identity} names no usable template ({name!r})")
    pin = spec.get("pin")
    if pin is not None and pin != target.revision:
        with _pinned(desired, target, pin) as at_pin:
            return _render(desired, at_pin, scratch, outputs)
    source = _copy_template(target.tree, name, scratch / "templates" / name, target)
    values = {"name": desired.name, "owner": desired.owner,
              "description": str(desired.metadata.get("description", "")), "_github_org": target.organization,
              "_tier": str(desired.spec.get("tier") or "experimental"),
              "_lifecycle": str(desired.spec.get("lifecycle") or "experimental"),
              "_visibility": Services.visibility(desired)}
    with _rendering(name, desired.identity, "check spec.template.parameters"):
        rendered = scaffold.render_project(source, scratch / "rendered", values=values,
                                           parameters=spec.get("parameters") or {})
    _ensure_codeowners(rendered.project, desired, target.organization)
    scaffold.write_record(rendered.project, name, target.revision, rendered.answers)
    if outputs is not None:
        outputs.update(template=name, template_commit=target.revision,
                       template_answers=scaffold.answers_digest(rendered.answers))
    return rendered.project


@contextmanager
def _pinned(desired: Resource, target: Target, pin: object) -> Iterator[Target]:
    """`target` at the platform commit `desired` is pinned to, which the applied head's history must hold:
    a template is only ever rendered from a commit the platform repo merged."""
    if not isinstance(pin, str) or not _COMMIT.match(pin):
        raise StepFailed(f"{desired.identity}: spec.template.pin must be a full commit id (40 hexadecimal digits)")
    tree = target.history(pin) if target.history is not None else None
    if tree is None:
        raise StepFailed(f"{desired.identity}: spec.template.pin names commit {pin[:12]}, which "
                         f"{target.platform_repo} never merged: Paved renders golden paths only from merged "
                         "commits (pin a commit of the default branch's history)")
    try:
        yield replace(target, tree=tree, revision=pin)
    finally:
        tree.close()


def render_request(desired: Resource, target: Target, scratch: Path) -> Path:
    """The project a request's first scaffold would push today: its template at `target.revision`, rendered
    with the request's values, its CODEOWNERS and its record (what an upgrade moves the project to)."""
    return _render(desired, target, scratch)


def render_recorded(record: ScaffoldRecord, recorded: bytes, target: Target, scratch: Path, *,
                    identity: str, owner: str) -> Path:
    """The project as Paved scaffolded it: `record`'s template at its commit (`target.tree`, read at
    `record.commit`), rendered again with the answers it records, into `scratch` (what an upgrade is
    measured from).

    The record is hostile data (the team may write its repository): `scaffold.recorded_inputs` takes only
    what a request could have given from it, and the template's private settings come from the template.
    Its record file is `recorded`, the bytes the project holds, so that a record edited by hand is
    replaced by the new one rather than merged with it. `owner` (the request's) names the team in
    CODEOWNERS when the template records none.
    """
    name = record.template
    source = _copy_template(target.tree, name, scratch / "templates" / name, target)
    with _rendering(name, identity, f"{RECORD_PATH} holds answers the template does not take"):
        try:
            config = json.loads((source / "cookiecutter.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise scaffold.ScaffoldError(f"its cookiecutter.json cannot be read: {exc}", template=name) from None
        if not isinstance(config, dict):
            raise scaffold.ScaffoldError("its cookiecutter.json is not a JSON object", template=name)
        values, parameters = scaffold.recorded_inputs(config, record.answers, name)
        rendered = scaffold.render_project(source, scratch / "rendered", values=values, parameters=parameters)
    _codeowners(rendered.project, str(values.get("owner") or owner), str(values.get("name") or name),
                target.organization)
    scaffold.write_record(rendered.project, name, record.commit, {}).write_bytes(recorded)
    return rendered.project


@contextmanager
def _rendering(template: str, identity: str, check: str) -> Iterator[None]:
    """A template's refusal or failure to render for `identity`, as a `StepFailed` saying what to `check`."""
    try:
        yield
    except scaffold.HookRefused as exc:
        # The hooks check the parameters; what they print goes to the log, their verdict here.
        log.warning("template %s refused %s: %s", template, identity, exc.output or "(it printed nothing)")
        raise StepFailed(f"template {template} refused {identity}: {exc.message}; {check}") from None
    except scaffold.ParameterRefused as exc:
        raise StepFailed(f"template {template} refused {identity}: {exc.message}; {check}") from None
    except scaffold.ScaffoldTimeout as exc:
        raise StepFailed(f"template {template} took longer than {exc.seconds:g} s to render {identity}") from None
    except scaffold.ScaffoldError as exc:
        raise StepFailed(f"template {template} could not be rendered for {identity}: "
                          f"{one_line(exc.message)[:300]}") from None


def _copy_template(tree: Tree, name: str, destination: Path, target: Target) -> Path:
    prefix = f"templates/{name}/"
    listing = tree.files(prefix)
    if f"{prefix}cookiecutter.json" not in listing:
        raise StepFailed(f"template {name} is not in {target.platform_repo} at {target.revision[:12]}")
    for path, data in tree.read_many(sorted(listing)).items():
        relative = PurePosixPath(path[len(prefix):])
        if relative.is_absolute() or ".." in relative.parts:
            raise StepFailed(f"template {name} holds a file outside its folder: {path}")
        file = destination.joinpath(*relative.parts)
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_bytes(data)
    return destination


def _ensure_codeowners(project: Path, desired: Resource, organization: str) -> None:
    """Make the project's CODEOWNERS (the one GitHub reads) name the owning team, adding one if need be."""
    _codeowners(project, desired.owner, desired.name, organization)


def _codeowners(project: Path, team: str, name: str, organization: str) -> None:
    owner = f"@{organization}/{team}"
    existing = next((project / p for p in CODEOWNERS_PATHS if (project / p).is_file()), None)
    if existing is None:
        (project / "CODEOWNERS").write_text(f"# {team} owns {name}: GitHub asks them to review "
                                            f"every pull request.\n* {owner}\n", encoding="utf-8")
        return
    text = existing.read_text(encoding="utf-8")
    if owner not in text.split():
        # The last matching line wins in CODEOWNERS, so a final catch-all makes the team own everything.
        existing.write_text(f"{text.rstrip()}\n\n# Paved: {team} owns {name}.\n* {owner}\n", encoding="utf-8")


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
        detail = scrub(str(exc.stderr or exc).strip(), [secret, header])
        # GitPython quotes what git said as "stderr: '...'"; keep git's own last line.
        last = detail.splitlines()[-1].strip().removeprefix("stderr:").strip().strip("'") if detail else ""
        # `from None`: the original error carries the command and its environment's effects verbatim.
        raise StepFailed(f"git could not push the first commit of {full_name}: {one_line(last)}") from None


