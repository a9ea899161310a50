"""Custom properties: an organization's property definitions, and each repository's values of them.

Who may do what follows GitHub (see `put_custom_property` and `set_repo_properties` in
`github/custom_properties.py`): organization owners define properties; a property's `values_editable_by`
says whether only they (and apps with `organization_custom_properties: write`) set its values, or a
repository's admins too. New repositories may carry values from their creation (`custom_properties` of
`POST /orgs/{org}/repos`), and every full repository answer shows them under `custom_properties`.
"""

from __future__ import annotations

from ..errors import not_found
from ..model import StoredAccount, StoredRepo
from ..routing import Depends, Request, Response, Routes, no_content
from .common import forge_of, organization, repository

routes = Routes()


@routes.get("/orgs/{org}/properties/schema")
def list_definitions(request: Request, org: StoredAccount = Depends(organization)) -> Response:
    forge = forge_of(request)
    found = forge.custom_properties(request.principal, org)
    return Response(200, [forge.render.custom_property(p) for p in found])


@routes.get("/orgs/{org}/properties/schema/{custom_property_name}")
def get_definition(request: Request, org: StoredAccount = Depends(organization)) -> Response:
    forge = forge_of(request)
    name = request.params["custom_property_name"]
    found = next((p for p in forge.custom_properties(request.principal, org) if p.name == name), None)
    if found is None:
        raise not_found()
    return Response(200, forge.render.custom_property(found))


@routes.put("/orgs/{org}/properties/schema/{custom_property_name}")
def put_definition(request: Request, org: StoredAccount = Depends(organization)) -> Response:
    forge = forge_of(request)
    prop = forge.put_custom_property(request.principal, org, request.params["custom_property_name"],
                                     request.body())
    return Response(200, forge.render.custom_property(prop))


@routes.get("/repos/{owner}/{repo}/properties/values")
def get_values(request: Request, repo: StoredRepo = Depends(repository())) -> Response:
    forge = forge_of(request)
    values = forge.render.custom_property_values(repo)
    return Response(200, [{"property_name": name, "value": value} for name, value in values.items()])


@routes.patch("/repos/{owner}/{repo}/properties/values")
def set_values(request: Request, repo: StoredRepo = Depends(repository())) -> Response:
    forge = forge_of(request)
    forge.set_repo_properties(request.principal, repo, request.body().get("properties"))
    return no_content()
