"""Actions secrets of a repository and of its deployment environments, for other providers (the
database provider delivers `DATABASE_URL` through them)."""

from __future__ import annotations

import urllib.parse

from github import Github, GithubException
from github.Environment import Environment
from github.Repository import Repository

from bot.adapters.github import TRANSPORT_ERRORS, ForgeError, transport_failure
from bot.providers.github.shared import if_found, reason_of, scrub


class GitHubSecrets:
    """Actions secrets of a repository and of its deployment environments, for other providers.

    GitHub only accepts a secret sealed with the public key of the repository (or environment) it goes
    to; PyGithub fetches that key and seals the value with PyNaCl's sealed box, so the value leaves
    Paved encrypted and can never be read back, by Paved or anyone. Errors never carry the value.
    """

    def __init__(self, client: Github) -> None:
        self.client = client

    def names(self, repo: str, environment: str | None) -> frozenset[str]:
        """The names of the secrets the repository (or environment) holds, in one list (`GET
        /repos/{owner}/{repo}/actions/secrets`, or `.../environments/{name}/secrets`): a job asks once per
        place instead of once per secret. A missing repository or environment holds none."""
        try:
            holder = self._holder(repo, environment)
            listed = if_found(lambda: frozenset(secret.name for secret in holder.get_secrets()))
        except GithubException as exc:
            raise ForgeError(f"GitHub refused to list the secrets of {_where(repo, environment)}: "
                             f"{reason_of(exc)}", status=exc.status) from None
        except TRANSPORT_ERRORS as exc:
            raise ForgeError(f"GitHub did not answer when asked for the secrets of {_where(repo, environment)}: "
                             f"{transport_failure(exc)}") from None
        return listed or frozenset()

    def _holder(self, repo: str, environment: str | None) -> Repository | Environment:
        """The repository or environment by its address alone, fetched by none of the calls here: PyGithub's
        `get_repo` and `get_environment` would each fetch it first, a request per secret read or set. A
        missing one answers 404 to the call itself."""
        address = f"/repos/{repo}"
        if environment is None:
            return Repository(self.client.requester, url=address, completed=False)
        address += f"/environments/{urllib.parse.quote(environment, safe='')}"
        return Environment(self.client.requester, url=address, completed=False)

    def located(self, repo: str | int) -> tuple[str, int] | None:
        """Where the repository named `repo`, or with the id `repo`, is now (`GET /repos/{owner}/{repo}`,
        whose redirect for a renamed one leads to `/repositories/{id}`, or that address itself): its full
        name and id, or None when there is none."""
        shown = repo if isinstance(repo, str) else f"the repository with id {repo}"
        try:
            found = if_found(lambda: self.client.get_repo(repo))
        except GithubException as exc:
            raise ForgeError(f"GitHub refused to say where {shown} is: {reason_of(exc)}", status=exc.status) from None
        except TRANSPORT_ERRORS as exc:
            raise ForgeError(f"GitHub did not answer when asked where {shown} is: {transport_failure(exc)}") from None
        return None if found is None else (found.full_name, found.id)

    def put(self, repo: str, environment: str | None, name: str, value: str) -> None:
        try:
            holder = self._holder(repo, environment)
            # Sealed as PyGithub's `create_secret` seals it, but the answer is checked: PyGithub takes a redirect
            # (a renamed repository's old name) for success, and the secret would not be where the step says.
            key = holder.get_public_key()
            place = "/actions/secrets/" if environment is None else "/secrets/"
            status, _, _ = self.client.requester.requestJson(
                "PUT", f"{holder.url}{place}{urllib.parse.quote(name, safe='')}",
                input={"key_id": key.key_id, "encrypted_value": key.encrypt(value)})
            _written(status)
        except GithubException as exc:
            raise ForgeError(f"GitHub refused to set secret {name} on {_where(repo, environment)}: "
                             f"{scrub(reason_of(exc), [value])}", status=exc.status) from None
        except TRANSPORT_ERRORS as exc:
            raise ForgeError(f"GitHub did not answer when asked to set secret {name} on "
                             f"{_where(repo, environment)}: {scrub(transport_failure(exc), [value])}") from None

    def remove(self, repo: str, environment: str | None, name: str) -> None:
        """Delete the secret; one that is already gone (or whose repository is) is fine."""
        try:
            deleted = if_found(lambda: self._holder(repo, environment).delete_secret(name))
            if deleted is False:  # neither 204 nor 404: a renamed repository's old name redirects
                raise GithubException(307, {"message": _MOVED})
        except GithubException as exc:
            raise ForgeError(f"GitHub refused to delete secret {name} of {_where(repo, environment)}: "
                             f"{reason_of(exc)}", status=exc.status) from None
        except TRANSPORT_ERRORS as exc:
            raise ForgeError(f"GitHub did not answer when asked to delete secret {name} of "
                             f"{_where(repo, environment)}: {transport_failure(exc)}") from None


_MOVED = ("it answered with a redirect (the repository was renamed; Paved writes only to a repository's own "
          "name)")


def _written(status: int) -> None:
    """Raise unless GitHub's answer says the secret was written (201 created, 204 updated)."""
    if status not in (201, 204):
        raise GithubException(status, {"message": _MOVED if 300 <= status < 400 else f"it answered {status}"})


def _where(repo: str, environment: str | None) -> str:
    return repo if environment is None else f"environment {environment} of {repo}"
