"""GitHub's REST operations, one module per area, collected into one route table.

`admin` (the sandbox's own administration API) is not part of it: the server mounts it apart, under
`/_sandbox`, behind the admin token. Nor are github.com's web pages (`all_web_routes`: signing in, and
registering an App from a manifest), which the server serves beside the API.
"""

from __future__ import annotations

from ..routing import Routes
from . import accounts, checks, code, collaboration, deployments, manifests, oauth, properties, settings


def all_routes() -> Routes:
    routes = Routes()
    for module in (accounts, code, collaboration, checks, deployments, settings, properties, manifests):
        routes.extend(module.routes)
    return routes


def all_web_routes() -> Routes:
    routes = Routes()
    for module in (oauth, manifests):
        routes.extend(module.web_routes)
    return routes
