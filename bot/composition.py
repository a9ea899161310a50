"""The composition root: from the settings, the collaborators Paved's use cases are handed.

`paved serve`, `paved worker`, `paved reconcile` and `paved ci` build them here alike, per job: a GitHub
client (as the App's installation for the repository, or with a token), the forge and the local mirrors
over it, the catalogue index, and every installed provider (`bot.providers`). Nothing else in Paved
builds a client from the settings; the handlers get a `Context` and never read the environment.

It stays light to import (no PyGithub, no GitPython, no FastAPI): the adapters are imported where they
are built, so the `paved` parser, which reaches this module, starts fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.errors import ConfigurationError

if TYPE_CHECKING:
    from github import Github

    from bot.adapters.github import GitHubForge, RetryPolicy
    from bot.handlers import Context
    from bot.settings import Settings


def github_client(settings: Settings, repo: str, installation_id: int | None = None, *,
                  retries: RetryPolicy | None = None, polite: bool | None = None) -> Github:
    """A GitHub client for work on `repo`: as the App's installation there, or with the token."""
    from bot.adapters.github import RETRIES, connect_with_token, installation_client, installation_of

    key = settings.private_key()
    retries = retries or RETRIES
    polite = settings.polite if polite is None else polite
    if settings.github_app_id and key is not None:
        installation = installation_id or installation_of(settings.github_api_url, settings.github_app_id,
                                                          key.reveal(), repo, retries=retries)
        return installation_client(settings.github_api_url, settings.github_app_id, key.reveal(), installation,
                                   polite=polite, retries=retries)
    if settings.github_token is not None:
        return connect_with_token(settings.github_api_url, settings.github_token.reveal(), polite=polite,
                                  retries=retries)
    raise ConfigurationError("no GitHub credentials: set PAVED_GITHUB_APP_ID and PAVED_GITHUB_PRIVATE_KEY, "
                             "or PAVED_GITHUB_TOKEN")


def context_for(settings: Settings, repo: str, installation_id: int | None = None) -> Context:
    """The handlers' collaborators for work on `repo`, built from the settings."""
    from bot.adapters.catalogue_index import SQLiteCatalogueIndex
    from bot.adapters.github import GitHubForge, token_of
    from bot.adapters.mirror import GitMirror
    from bot.handlers import Context
    from bot.provider import ProviderEnv
    from bot.providers import build, installed

    # Found before any client is made: a broken plugin stops the job before it talks to GitHub.
    plugins = installed()
    client = github_client(settings, repo, installation_id)
    forge = GitHubForge(client, login=settings.github_login)
    mirror = GitMirror(settings.mirrors, forge.clone_url, lambda _repo: token_of(client))

    def server(variable: str) -> str | None:
        found = settings.server(variable)
        return found.reveal() if found is not None else None

    # Paved's own providers and any installed package's, found and built alike (`bot.providers`).
    env = ProviderEnv(github=client, token=lambda: token_of(client), data_dir=settings.data_dir, server=server)
    # One index connection per job: SQLite connections stay in the thread that opened them.
    return Context(forge, mirror, SQLiteCatalogueIndex(settings.catalogue_index), build(plugins, env), plugins=plugins)


def status_forge(settings: Settings) -> GitHubForge:
    """Paved's forge for the web catalogue's deployment status (`bot.web.deployments`): the App's installation on
    the platform repo (or the token), as `/paved status` reads with; never a visitor's token.

    A page waits for it, so it gives up soon: two tries, 3 s for an answer, and a rate limit that asks for more
    than a second's wait fails at once (the page says so) rather than holding a thread. It only reads, and few
    at once (`bot.web.deployments.WORKERS`), each conditional, so it does not wait between requests as Paved's
    jobs do (GitHub asks that of writes, and of floods of requests, neither of which this is).
    """
    from bot.adapters.github import GitHubForge, RetryPolicy

    repo = settings.catalogue_repository
    if repo is None:
        raise ConfigurationError("no platform repo is configured: set PAVED_CATALOGUE_REPO")
    quick = RetryPolicy(attempts=2, backoff=0.25, max_wait=1.0, timeout=3)
    return GitHubForge(github_client(settings, repo, retries=quick, polite=False), login=settings.github_login)


def platform_repositories(settings: Settings) -> list[str]:
    """The repositories Paved looks after: the App's installations, or PAVED_REPOSITORIES with a token."""
    from bot.adapters.github import installed_repositories

    key = settings.private_key()
    if settings.github_app_id and key is not None:
        return installed_repositories(settings.github_api_url, settings.github_app_id, key.reveal())
    return list(settings.repositories)
