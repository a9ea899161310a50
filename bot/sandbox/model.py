"""The sandbox forge's records: accounts, tokens, apps, repositories and everything hung on them.

Each record is a flat dataclass of plain JSON values with a forge-wide unique `id`, so the store can
keep and persist any of them the same way (`store.py`). What git knows (branches, commits, files) is
never copied here: it is read from the bare repository each time (`gitrepo.py`).

Every record's name starts with `Stored` (`StoredPullRequest`, `StoredCheckRun`, ...): Paved's own code
has its pull requests, check runs and deliveries too, and the prefix keeps a sandbox record from being
taken for one of them, in a traceback or an import.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Role = Literal["read", "triage", "write", "maintain", "admin"]
ROLES: tuple[Role, ...] = ("read", "triage", "write", "maintain", "admin")
AccountType = Literal["User", "Organization", "Bot"]


def role_rank(role: str | None) -> int:
    """0 for no access, then 1 (read) to 5 (admin)."""
    return ROLES.index(role) + 1 if role in ROLES else 0


def best_role(*roles: str | None) -> Role | None:
    ranked = [role for role in roles if role in ROLES]
    return max(ranked, key=role_rank) if ranked else None


@dataclass
class StoredAccount:
    """A user, an organization or an app's bot user (`login[bot]`)."""

    id: int
    login: str
    type: AccountType
    created_at: str
    name: str | None = None
    email: str | None = None
    site_admin: bool = False


@dataclass
class StoredMembership:
    """A user's place in an organization: `admin` (owner) or `member`."""

    id: int
    org_id: int
    user_id: int
    role: Literal["admin", "member"] = "member"


@dataclass
class StoredToken:
    """A personal access token (user_id set) or an installation access token (installation_id set).

    `permissions` narrows what the token may do (`{"issues": "read"}`), as fine-grained personal
    tokens and installation tokens do; None means the user's own access, as with a classic token.
    """

    id: int
    token: str
    created_at: str
    user_id: int | None = None
    installation_id: int | None = None
    expires_at: str | None = None
    permissions: dict[str, str] | None = None
    repository_ids: list[int] | None = None
    note: str = ""
    app_id: int | None = None  # a user access token issued through this GitHub App's web flow


@dataclass
class StoredApp:
    id: int
    slug: str
    name: str
    owner_id: int
    bot_id: int
    client_id: str
    public_key_pem: str
    created_at: str
    permissions: dict[str, str] = field(default_factory=dict)
    events: list[str] = field(default_factory=list)
    description: str = ""
    # For signing users in (the OAuth web flow): where GitHub may send them back, and the client secrets'
    # SHA-256 digests (GitHub shows a secret once, when it is made, and keeps no copy it could show again).
    callback_urls: list[str] = field(default_factory=list)
    client_secret_digests: list[str] = field(default_factory=list)


@dataclass
class StoredOAuthCode:
    """A code the web flow's authorize step hands back, to be exchanged once for a user access token."""

    id: int
    code: str
    app_id: int
    user_id: int
    redirect_uri: str
    created_at: str
    expires_at: str
    scope: str = ""
    used: bool = False


@dataclass
class StoredManifestCode:
    """The one-time code an App registered from a manifest comes back with, holding what GitHub hands over
    once when the code is converted (`POST /app-manifests/{code}/conversions`): the private key and the
    webhook's secret. Converted or expired, it is deleted."""

    id: int
    code: str
    app_id: int
    private_key: str
    created_at: str
    expires: float  # epoch seconds, on the forge's clock
    webhook_secret: str | None = None


@dataclass
class StoredInstallation:
    id: int
    app_id: int
    account_id: int
    created_at: str
    repository_selection: Literal["all", "selected"] = "all"
    repository_ids: list[int] = field(default_factory=list)
    permissions: dict[str, str] = field(default_factory=dict)
    events: list[str] = field(default_factory=list)


@dataclass
class StoredRepo:
    """A repository; its git data lives in `repos/OWNER/NAME.git` under the data folder."""

    id: int
    owner_id: int
    name: str
    created_at: str
    updated_at: str
    pushed_at: str | None
    private: bool = False
    description: str | None = None
    default_branch: str = "main"
    secrets_public_key: str = ""
    secrets_private_key: str = ""
    internal: bool = False  # visible to the organization's members; private to everyone else
    archived: bool = False  # read-only: pushes and ref changes are refused until unarchived
    # Values of the organization's custom properties set on this repository (name -> value); see
    # `StoredCustomProperty` for the definitions and who may set them.
    custom_properties: dict[str, Any] = field(default_factory=dict)
    fork_of: int | None = None  # the repository this one is a fork of; a fork shares its git objects


@dataclass
class StoredRepoRedirect:
    """A name a repository had before it was renamed: GitHub sends what asks for `OWNER/NAME` on to the
    repository `repo_id`, until a new repository takes the name (or the repository is deleted)."""

    id: int
    owner_id: int
    name: str
    repo_id: int


@dataclass
class StoredCustomProperty:
    """An organization's custom property for its repositories (the definition; values live on `StoredRepo`).

    `values_editable_by` says who may set a repository's value: `org_actors` (organization owners, and
    apps with `organization_custom_properties: write`) or `org_and_repo_actors` (repository admins, and
    apps with `repository_custom_properties: write`, too). A required property has a default value,
    which every repository without a value of its own reports.
    """

    id: int
    org_id: int
    name: str
    value_type: str  # string | single_select | multi_select | true_false | url
    required: bool = False
    default_value: str | list[str] | None = None
    description: str | None = None
    allowed_values: list[str] | None = None
    values_editable_by: str = "org_actors"
    require_explicit_values: bool = False


@dataclass
class StoredCollaborator:
    id: int
    repo_id: int
    user_id: int
    role: Role


@dataclass
class StoredTeam:
    id: int
    org_id: int
    name: str
    slug: str
    created_at: str
    description: str | None = None
    privacy: str = "closed"
    parent_id: int | None = None
    permission: str = "pull"


@dataclass
class StoredTeamMember:
    id: int
    team_id: int
    user_id: int
    role: Literal["member", "maintainer"] = "member"


@dataclass
class StoredTeamRepo:
    id: int
    team_id: int
    repo_id: int
    role: Role


@dataclass
class StoredIssue:
    """An issue or the issue half of a pull request (same number space, as on GitHub)."""

    id: int
    repo_id: int
    number: int
    title: str
    user_id: int
    created_at: str
    updated_at: str
    body: str | None = None
    state: Literal["open", "closed"] = "open"
    state_reason: str | None = None
    closed_at: str | None = None
    closed_by_id: int | None = None
    label_ids: list[int] = field(default_factory=list)
    assignee_ids: list[int] = field(default_factory=list)
    is_pull: bool = False
    locked: bool = False
    app_id: int | None = None


@dataclass
class StoredPullRequest:
    """The pull-request half: branches and merge state. Commits and files are read from git."""

    id: int
    repo_id: int
    number: int
    issue_id: int
    head_ref: str
    head_sha: str
    base_ref: str
    base_sha: str
    draft: bool = False
    maintainer_can_modify: bool = False
    head_repo_id: int | None = None  # a fork's pull request: the fork holding its head branch
    merged: bool = False
    merged_at: str | None = None
    merged_by_id: int | None = None
    merge_commit_sha: str | None = None


@dataclass
class StoredComment:
    id: int
    repo_id: int
    issue_number: int
    user_id: int
    body: str
    created_at: str
    updated_at: str
    app_id: int | None = None


@dataclass
class StoredReaction:
    id: int
    comment_id: int
    user_id: int
    content: str
    created_at: str


@dataclass
class StoredLabel:
    id: int
    repo_id: int
    name: str
    color: str
    description: str | None = None
    default: bool = False


@dataclass
class StoredReview:
    id: int
    repo_id: int
    pull_number: int
    user_id: int
    state: str
    commit_id: str
    submitted_at: str
    body: str = ""


@dataclass
class StoredCheckSuite:
    id: int
    repo_id: int
    app_id: int
    head_sha: str
    head_branch: str | None
    created_at: str
    updated_at: str
    before: str | None = None
    after: str | None = None
    rerequestable: bool = True


@dataclass
class StoredCheckRun:
    id: int
    repo_id: int
    suite_id: int
    app_id: int
    name: str
    head_sha: str
    status: str
    started_at: str | None
    completed_at: str | None = None
    conclusion: str | None = None
    external_id: str | None = None
    details_url: str | None = None
    output: dict[str, Any] = field(default_factory=dict)
    annotations: list[dict[str, Any]] = field(default_factory=list)
    actions: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class StoredStatus:
    id: int
    repo_id: int
    sha: str
    state: str
    context: str
    creator_id: int
    created_at: str
    updated_at: str
    description: str | None = None
    target_url: str | None = None


@dataclass
class StoredEnvironment:
    id: int
    repo_id: int
    name: str
    created_at: str
    updated_at: str
    wait_timer: int = 0
    reviewers: list[dict[str, Any]] = field(default_factory=list)
    deployment_branch_policy: dict[str, Any] | None = None
    prevent_self_review: bool = False
    secrets_public_key: str = ""
    secrets_private_key: str = ""


@dataclass
class StoredDeploymentBranchPolicy:
    """A branch or tag name pattern an environment accepts deployments from (custom branch policies)."""

    id: int
    repo_id: int
    environment_id: int
    name: str
    type: Literal["branch", "tag"] = "branch"


@dataclass
class StoredDeployment:
    """A deployment: a request to deploy a commit (`sha`, resolved from `ref`) to an environment, which
    whatever deploys reports on with `StoredDeploymentStatus`es."""

    id: int
    repo_id: int
    sha: str
    ref: str
    task: str
    environment: str
    creator_id: int
    created_at: str
    updated_at: str
    payload: Any = field(default_factory=dict)  # a JSON object, or a string, as it was given
    description: str | None = ""
    original_environment: str = ""
    transient_environment: bool = False
    production_environment: bool = False
    app_id: int | None = None  # the App whose installation created it (`performed_via_github_app`)


@dataclass
class StoredDeploymentStatus:
    id: int
    repo_id: int
    deployment_id: int
    state: str
    creator_id: int
    created_at: str
    updated_at: str
    description: str = ""
    environment: str = ""
    target_url: str = ""
    log_url: str = ""
    environment_url: str = ""
    app_id: int | None = None


@dataclass
class StoredWorkflowRun:
    """A GitHub Actions workflow run. The sandbox runs no workflow: a test or the demo records one that ran
    (`Sandbox.record_workflow_run`), as GitHub would list it."""

    id: int
    repo_id: int
    workflow_id: int
    name: str
    path: str
    head_branch: str | None
    head_sha: str
    event: str
    status: str  # queued | in_progress | completed ...
    conclusion: str | None
    actor_id: int
    created_at: str
    updated_at: str
    run_number: int
    display_title: str = ""
    run_attempt: int = 1
    head_repo_id: int | None = None  # a fork's run: the fork holding its head branch
    pull_request_numbers: list[int] = field(default_factory=list)


@dataclass
class StoredSecret:
    """An Actions secret as stored: the client's sealed box, openable with the repo's private key."""

    id: int
    repo_id: int
    name: str
    encrypted_value: str
    key_id: str
    created_at: str
    updated_at: str
    environment: str | None = None


@dataclass
class StoredProtection:
    """Branch protection as last PUT (normalized request body)."""

    id: int
    repo_id: int
    branch: str
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass
class StoredMergeQueue:
    """A branch that takes pull requests only through a merge queue (a ruleset's `merge_queue` rule), and
    its queue: `entries` in merge order, each a pull request and the merge group built for it, as plain
    JSON (see `github/merge_queue.py`)."""

    id: int
    repo_id: int
    branch: str
    merge_method: str = "merge"
    entries: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class StoredHook:
    """A webhook: on a repository (repo_id) or an app's single hook (app_id)."""

    id: int
    url: str
    secret: str
    created_at: str
    updated_at: str
    repo_id: int | None = None
    app_id: int | None = None
    events: list[str] = field(default_factory=lambda: ["*"])
    active: bool = True
    content_type: str = "json"


@dataclass
class StoredDelivery:
    """One attempt to deliver a webhook, kept as GitHub keeps it (request, response, timing)."""

    id: int
    guid: str
    hook_id: int
    event: str
    action: str | None
    delivered_at: str
    request_headers: dict[str, str]
    request_body: str
    redelivery: bool = False
    installation_id: int | None = None
    repository_id: int | None = None
    status_code: int = 0
    status: str = "pending"
    duration: float = 0.0
    response_headers: dict[str, str] = field(default_factory=dict)
    response_body: str = ""


RECORD_TYPES: tuple[type, ...] = (
    StoredAccount, StoredMembership, StoredToken, StoredApp, StoredOAuthCode, StoredManifestCode, StoredInstallation,
    StoredRepo, StoredRepoRedirect,
    StoredCustomProperty, StoredCollaborator, StoredTeam, StoredTeamMember, StoredTeamRepo, StoredIssue,
    StoredPullRequest, StoredComment, StoredReaction, StoredLabel, StoredReview, StoredCheckSuite, StoredCheckRun,
    StoredStatus, StoredEnvironment, StoredDeploymentBranchPolicy, StoredSecret, StoredProtection, StoredHook,
    StoredDelivery, StoredMergeQueue, StoredDeployment, StoredDeploymentStatus, StoredWorkflowRun,
)
