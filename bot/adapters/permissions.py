"""What a token may do on GitHub, asked of GitHub before a job acts on it (`paved ci`).

GitHub checks what a token may do before it reads a request's body, and when it refuses an app's token
it names the permission the endpoint accepts (403 with `X-Accepted-GitHub-Permissions: members=write`).
So a write with an empty body, which GitHub can only refuse (403: the token may not; 422: it may, but the
body is not valid), tells what the token may do and changes nothing. What only needs reading is asked
with a read. A runner's token cannot be asked for its permissions directly: a job's `GITHUB_TOKEN` and
an App's installation token are both `ghs_` tokens.
"""

from __future__ import annotations

from dataclasses import dataclass

import requests

from bot.errors import ConfigurationError


@dataclass(frozen=True, slots=True)
class Probe:
    """One thing a job needs to do, the permission it takes, and the harmless request that tells."""

    permission: str  # as a workflow or an App's settings spell it: "members: write"
    purpose: str  # what Paved needs it for, in words
    method: str
    path: str  # with {repo} and {org} to fill in
    write: bool = False  # a write, sent with an empty body


PUBLISH_CHECK = Probe("checks: write", "publish the paved/plan check", "POST", "/repos/{repo}/check-runs", True)
WRITE_NOTES = Probe("contents: write", "record what it did as git notes", "POST", "/repos/{repo}/git/refs", True)
CREATE_TEAMS = Probe("members: write", "create teams", "POST", "/orgs/{org}/teams", True)
CREATE_REPOS = Probe("administration: write", "create repositories", "POST", "/orgs/{org}/repos", True)
SEAL_SECRETS = Probe("secrets: write", "give services their DATABASE_URL secret", "GET",
                     "/repos/{repo}/actions/secrets/public-key")
MARK_REPOS = Probe("organization_custom_properties: admin", "mark the repositories it creates", "GET",
                   "/orgs/{org}/properties/schema")

APPLY = (PUBLISH_CHECK, WRITE_NOTES, CREATE_TEAMS, CREATE_REPOS, SEAL_SECRETS, MARK_REPOS)


@dataclass(frozen=True, slots=True)
class Missing:
    """A permission the token lacks, what for, and what GitHub said the endpoint accepts."""

    probe: Probe
    accepted: str

    def __str__(self) -> str:
        said = f", GitHub accepts {self.accepted}" if self.accepted else ""
        return f"{self.probe.permission} (to {self.probe.purpose}{said})"


def missing(api_url: str, token: str, repo: str, probes: tuple[Probe, ...]) -> list[Missing]:
    """The probes whose permission `token` lacks on `repo` and its organisation.

    Raises `ConfigurationError` when GitHub cannot be reached or does not take the token at all.
    """
    org = repo.split("/", 1)[0]
    found = []
    with requests.Session() as session:
        session.headers.update({"Authorization": f"token {token}", "Accept": "application/vnd.github+json",
                                "X-GitHub-Api-Version": "2022-11-28"})
        for probe in probes:
            url = api_url.rstrip("/") + probe.path.format(repo=repo, org=org)
            try:
                answer = session.request(probe.method, url, json={} if probe.write else None, timeout=15)
            except requests.RequestException as exc:
                raise ConfigurationError(f"GitHub at {api_url} cannot be reached: {type(exc).__name__}") from None
            if answer.status_code == 401:
                raise ConfigurationError("GitHub does not take the job's token (401 Bad credentials)",
                                         hint="Pass the job's token with `env: GITHUB_TOKEN: ${{ github.token }}`, "
                                              "or an App's with `${{ steps.app-token.outputs.token }}`.")
            # 404 on an organisation's endpoint: the token does not reach the organisation at all.
            if answer.status_code in (403, 404):
                found.append(Missing(probe, answer.headers.get("X-Accepted-GitHub-Permissions", "")))
    return found
