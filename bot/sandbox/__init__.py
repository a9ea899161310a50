"""A small local GitHub-compatible forge for Paved's demos and tests.

It speaks GitHub's REST API (under `/api/v3`, as GitHub Enterprise does), git's smart HTTP protocol
and GitHub-shaped webhooks, so PyGithub and GitPython work against it unchanged. Start one with
`Sandbox.start(data_dir)`; see `api.py` for the story-level Python API and `commands.py` for
`paved sandbox`.

Modules: `server.py` (HTTP, git smart HTTP, ETags and `304 Not Modified`), `routing.py` + `endpoints/`
(REST operations; the CLI's administration API in `endpoints/admin.py`, the sign-in pages in
`endpoints/oauth.py`), `github/` (use cases and GitHub's rules, one module per resource area), `auth.py`
(tokens, JWTs, permissions), `ratelimits.py` (each caller's hourly budget of requests, as GitHub counts
it), `oauth.py` (the OAuth web flow), `store.py` + `model.py` (state), `gitrepo.py` (git plumbing),
`render.py` (GitHub's JSON shapes), `webhooks.py` (delivery), `errors.py` (GitHub's error answers),
`recording.py` (observers for the conformance tests), `faults.py` (failing on purpose, as GitHub
sometimes does: `Sandbox.faults(...)`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .api import (
        AppCredentials,
        CommentRef,
        DeliveryInfo,
        ForgeHandle,
        InstallationRef,
        Org,
        PullRef,
        RepoRef,
        Sandbox,
        SandboxBusy,
        TeamRef,
        User,
    )
    from .errors import ApiError

__all__ = [
    "ApiError", "AppCredentials", "CommentRef", "DeliveryInfo", "ForgeHandle", "InstallationRef", "Org", "PullRef",
    "RepoRef", "Sandbox", "SandboxBusy", "TeamRef", "User",
]


def __getattr__(name: str) -> Any:
    """Import the forge on first use, so `paved`'s other commands do not pay for it at start-up."""
    if name == "ApiError":
        from .errors import ApiError

        return ApiError
    if name in __all__:
        from . import api

        return getattr(api, name)
    raise AttributeError(name)
