"""Custom properties, as GitHub has them: an organization defines a property for its repositories, a
repository carries values of it from its creation or later, and the definition says who may set them
(organization owners only, or a repository's admins too)."""

from __future__ import annotations

import pytest
from github import Auth, Github, GithubException, GithubIntegration
from github.OrganizationCustomProperty import CustomProperty

from bot.sandbox import Sandbox

from .conftest import Cast, Receiver, github

MANAGED = CustomProperty("managed-by", "single_select", allowed_values=["platform", "nobody"],
                         description="Who looks after the repository", values_editable_by="org_actors")


def app_client(forge: Sandbox, name: str, permissions: dict[str, str]) -> Github:
    """PyGithub as an app installed on acme with `permissions`."""
    app = forge.create_app("acme", name, permissions={"metadata": "read", **permissions})
    installation = forge.install_app(app.id, "acme")
    return github(forge, forge.installation_token(installation.id))


def refused(call: object) -> int:
    assert callable(call)
    with pytest.raises(GithubException) as caught:
        call()
    return int(caught.value.status)


def test_an_owner_defines_a_property_and_members_read_it(forge: Sandbox, cast: Cast) -> None:
    org = github(forge, cast.alice.token).get_organization("acme")
    defined = org.create_custom_property(MANAGED)
    assert (defined.property_name, defined.value_type, defined.values_editable_by) == (
        "managed-by", "single_select", "org_actors")
    as_bob = github(forge, cast.bob.token).get_organization("acme")
    assert [p.property_name for p in as_bob.get_custom_properties()] == ["managed-by"]
    assert as_bob.get_custom_property("managed-by").allowed_values == ["platform", "nobody"]
    assert refused(lambda: as_bob.get_custom_property("nothing-like-it")) == 404


def test_only_owners_define_properties(forge: Sandbox, cast: Cast) -> None:
    assert refused(lambda: github(forge, cast.bob.token).get_organization("acme").create_custom_property(MANAGED)) \
        == 403
    assert refused(lambda: github(forge, cast.carol.token).get_organization("acme").get_custom_properties()
                   .totalCount) == 404


def test_a_definition_is_checked(forge: Sandbox, cast: Cast) -> None:
    org = github(forge, cast.alice.token).get_organization("acme")
    assert refused(lambda: org.create_custom_property(CustomProperty("tier", "single_select"))) == 422
    assert refused(lambda: org.create_custom_property(CustomProperty("tier", "string", required=True))) == 422
    assert refused(lambda: org.create_custom_property(CustomProperty("has space", "string"))) == 422


def test_a_repository_carries_values_from_its_creation(forge: Sandbox, cast: Cast) -> None:
    org = github(forge, cast.alice.token).get_organization("acme")
    org.create_custom_property(MANAGED)
    created = org.create_repo("search", custom_properties={"managed-by": "platform"})
    assert created.custom_properties == {"managed-by": "platform"}
    again = github(forge, cast.alice.token).get_repo("acme/search")
    assert again.custom_properties == {"managed-by": "platform"}
    assert again.get_custom_properties() == {"managed-by": "platform"}
    assert forge.repo_properties("acme", "search") == {"managed-by": "platform"}


def test_a_value_must_be_defined_and_fit_its_property(forge: Sandbox, cast: Cast) -> None:
    org = github(forge, cast.alice.token).get_organization("acme")
    org.create_custom_property(MANAGED)
    assert refused(lambda: org.create_repo("search", custom_properties={"owner": "platform"})) == 422
    assert refused(lambda: org.create_repo("search", custom_properties={"managed-by": "someone"})) == 422
    assert [r.name for r in org.get_repos()] == ["platform"]
    repo = org.get_repo("platform")
    assert refused(lambda: repo.update_custom_properties({"managed-by": "anyone"})) == 422


def test_a_member_may_not_create_a_repository_with_a_value_only_owners_set(forge: Sandbox, cast: Cast) -> None:
    github(forge, cast.alice.token).get_organization("acme").create_custom_property(MANAGED)
    as_bob = github(forge, cast.bob.token).get_organization("acme")
    assert refused(lambda: as_bob.create_repo("mine", custom_properties={"managed-by": "platform"})) == 403
    assert forge.forge.find_repo("acme", "mine") is None


def test_neither_maintainers_nor_admins_change_a_value_only_owners_set(forge: Sandbox, cast: Cast) -> None:
    org = github(forge, cast.alice.token).get_organization("acme")
    org.create_custom_property(MANAGED)
    org.create_repo("search", custom_properties={"managed-by": "platform"})
    forge.create_user("dave")
    forge.add_member("acme", "dave")
    forge.add_collaborator("acme", "search", "bob", "maintain")
    forge.add_collaborator("acme", "search", "dave", "admin")
    for login in ("bob", "dave"):
        repo = github(forge, forge.create_token(login)).get_repo("acme/search")
        assert refused(lambda: repo.update_custom_properties({"managed-by": None})) == 403  # noqa: B023
        assert refused(lambda: repo.update_custom_properties({"managed-by": "nobody"})) == 403  # noqa: B023
    assert forge.repo_properties("acme", "search") == {"managed-by": "platform"}
    org.get_repo("search").update_custom_properties({"managed-by": None})
    assert github(forge, cast.alice.token).get_repo("acme/search").custom_properties == {}


def test_a_repository_admin_sets_a_value_its_definition_lets_them(forge: Sandbox, cast: Cast) -> None:
    github(forge, cast.alice.token).get_organization("acme").create_custom_property(
        CustomProperty("language", "string", values_editable_by="org_and_repo_actors"))
    forge.add_collaborator("acme", "platform", "bob", "admin")
    github(forge, cast.bob.token).get_repo("acme/platform").update_custom_properties({"language": "python"})
    assert forge.repo_properties("acme", "platform") == {"language": "python"}
    forge.add_collaborator("acme", "platform", "bob", "maintain")
    repo = github(forge, cast.bob.token).get_repo("acme/platform")
    assert refused(lambda: repo.update_custom_properties({"language": "go"})) == 403


def test_a_required_property_s_default_shows_on_every_repository_without_a_value(forge: Sandbox,
                                                                                   cast: Cast) -> None:
    org = github(forge, cast.alice.token).get_organization("acme")
    org.create_custom_property(CustomProperty("tier", "single_select", required=True, default_value="bronze",
                                              allowed_values=["bronze", "gold"]))
    assert github(forge, cast.alice.token).get_repo("acme/platform").custom_properties == {"tier": "bronze"}
    assert org.create_repo("search", custom_properties={"tier": "gold"}).custom_properties == {"tier": "gold"}


def test_an_app_needs_organization_custom_properties_admin_to_define_and_write_to_set(forge: Sandbox,
                                                                                      cast: Cast) -> None:
    plain = app_client(forge, "plain", {"administration": "write"}).get_organization("acme")
    assert refused(lambda: plain.create_custom_property(MANAGED)) == 403
    writer = app_client(forge, "writer", {"administration": "write", "organization_custom_properties": "write"})
    assert refused(lambda: writer.get_organization("acme").create_custom_property(MANAGED)) == 403
    admin = app_client(forge, "admin", {"administration": "write", "organization_custom_properties": "admin"})
    admin.get_organization("acme").create_custom_property(MANAGED)
    assert refused(lambda: plain.create_repo("one", custom_properties={"managed-by": "platform"})) == 403
    made = writer.get_organization("acme").create_repo("two", custom_properties={"managed-by": "platform"})
    assert made.custom_properties == {"managed-by": "platform"}
    assert refused(lambda: plain.get_repo("two").update_custom_properties({"managed-by": None})) == 403
    assert github(forge, cast.alice.token).get_repo("acme/two").custom_properties == {"managed-by": "platform"}


def test_the_permission_shows_over_rest_and_is_left_out_of_webhooks_whose_schemas_predate_it(
        forge: Sandbox, cast: Cast, receiver: Receiver) -> None:
    granted = {"metadata": "read", "organization_custom_properties": "admin"}
    credentials = forge.create_app("acme", "Marker", permissions=granted, webhook_url=receiver.url)
    installation = forge.install_app(credentials.slug, "acme")
    forge.wait_for_deliveries()
    [created] = receiver.events("installation", "created")
    assert created.payload["installation"]["permissions"] == {"metadata": "read"}
    integration = GithubIntegration(auth=Auth.AppAuth(credentials.id, credentials.private_key), base_url=forge.api_url)
    assert integration.get_app_installation(installation.id).permissions == granted
