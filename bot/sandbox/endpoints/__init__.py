"""GitHub's REST operations, one module per area, collected into one route table.

`admin` (the sandbox's own administration API) is not part of it: the server mounts it apart, under
`/_sandbox`, behind the admin token.
"""

from __future__ import annotations

from ..routing import Routes
from . import accounts, checks, code, collaboration, properties, settings


def all_routes() -> Routes:
    routes = Routes()
    for module in (accounts, code, collaboration, checks, settings, properties):
        routes.extend(module.routes)
    return routes
