"""GitHub as a provider: teams, repositories from golden paths, access grants and deployment environments.

`GitHubProvider` (`provider.py`) makes merged `Team`, `Service`, `Access` and `Environment` requests real in
one organization, through a PyGithub client acting as Paved's GitHub App installation (which needs
`administration: write`, `members: write`, `contents: write` and `organization_custom_properties: admin`
there) and a `token()` for git pushes. It changes, archives or deletes only what it made, which carries
its mark. One module per kind, each the place to read what Paved makes of it:

- `teams.py`: `Team`, a team of the organization and exactly its people;
- `repositories.py`: `Service`, a repository rendered from a golden path, owned and protected;
- `access.py`: `Access`, a team's permission on a service's repository;
- `environments.py`: `Environment`, a deployment environment with its reviewers and branches;
- `secrets.py`: Actions secrets, which other providers deliver credentials through;
- `shared.py`: what the kinds share (GitHub's refusals in words, Paved's mark, the `Kind` base class).

Importing this package imports none of them (nor PyGithub): they load when `plugin` builds a provider.
`plugin` is what the entry point `github` of `paved.providers` names; the provider takes no settings
under `providers:` (the organization is `github.organization` in `paved.yaml`).
"""

from __future__ import annotations

from bot.provider import Provider, ProviderEnv, ProviderPlugin

KINDS: tuple[str, ...] = ("Team", "Service", "Access", "Environment")


def _build(env: ProviderEnv) -> Provider:
    from bot.providers.github.provider import GitHubProvider

    return GitHubProvider(env.github, env.token)


plugin = ProviderPlugin(name="github", kinds=KINDS, build=_build)
