"""An organization's custom properties and each repository's values of them (GitHub's REST reference:
Organizations > Custom properties, Repositories > Custom properties)."""

from __future__ import annotations

import re
from typing import Any

from ..auth import Principal, now_iso, refused
from ..errors import ApiError, invalid, not_found
from ..model import StoredAccount, StoredCustomProperty, StoredRepo
from .state import READ_META, GitHubState

# GitHub's rule for custom property names: letters, digits and `_ - $ #`, at most 75 characters.
_PROPERTY_NAME = re.compile(r"^[A-Za-z0-9_$#-]{1,75}$")
VALUE_TYPES = ("string", "single_select", "multi_select", "true_false", "url")
EDITORS = ("org_actors", "org_and_repo_actors")


class CustomPropertiesArea(GitHubState):
    def custom_property(self, org: StoredAccount, name: str) -> StoredCustomProperty | None:
        return self.store.first(StoredCustomProperty, lambda p: p.org_id == org.id and p.name == name)

    def custom_properties(self, principal: Principal, org: StoredAccount) -> list[StoredCustomProperty]:
        """The organization's property definitions, which its members (and apps it installed that may read
        organization custom properties) can read."""
        if not principal.is_site_admin:
            if principal.kind == "installation":
                installation = principal.installation
                if installation is None or installation.account_id != org.id or \
                        self.access.permission_level(principal, "organization_custom_properties") < 1:
                    raise refused("organization_custom_properties", "read")
            elif principal.account is None or self.other_areas.membership(org, principal.account) is None:
                raise not_found()
        return self.store.all(StoredCustomProperty, lambda p: p.org_id == org.id)

    def put_custom_property(self, principal: Principal, org: StoredAccount, name: str,
                            fields: Any) -> StoredCustomProperty:
        """Define a custom property, or change its definition: organization owners only (and apps with
        `organization_custom_properties: admin`)."""
        with self.store.lock:
            if org.type != "Organization":
                raise not_found()
            if not principal.is_site_admin:
                if principal.kind == "installation":
                    installation = principal.installation
                    if installation is None or installation.account_id != org.id or \
                            self.access.permission_level(principal, "organization_custom_properties") < 3:
                        raise refused("organization_custom_properties", "admin")
                else:
                    member = self.other_areas.membership(org, self.actor_account(principal))
                    if member is None:
                        raise not_found()
                    if member.role != "admin":
                        raise ApiError(403, "You must be an organization owner to manage custom properties.")
            if not isinstance(fields, dict):
                raise ApiError(400, "Problems parsing JSON")
            if not _PROPERTY_NAME.match(name):
                raise invalid("CustomProperty", "property_name")
            value_type = fields.get("value_type")
            if value_type not in VALUE_TYPES:
                raise invalid("CustomProperty", "value_type", "missing_field" if value_type is None else "invalid")
            allowed = fields.get("allowed_values")
            if value_type in ("single_select", "multi_select"):
                if not isinstance(allowed, list) or not allowed or not all(isinstance(v, str) and v for v in allowed):
                    raise invalid("CustomProperty", "allowed_values", "missing_field" if allowed is None else "invalid")
            elif allowed is not None:
                raise invalid("CustomProperty", "allowed_values", "custom",
                              "Allowed values are only for single_select and multi_select properties")
            editors = fields.get("values_editable_by") or "org_actors"
            if editors not in EDITORS:
                raise invalid("CustomProperty", "values_editable_by")
            required, explicit = fields.get("required", False), fields.get("require_explicit_values", False)
            if not isinstance(required, bool):
                raise invalid("CustomProperty", "required")
            if not isinstance(explicit, bool):
                raise invalid("CustomProperty", "require_explicit_values")
            description = fields.get("description")
            if description is not None and not isinstance(description, str):
                raise invalid("CustomProperty", "description")
            found = self.custom_property(org, name)
            prop = StoredCustomProperty(found.id if found else self.store.new_id(), org.id, name, value_type,
                                        required=required, description=description, allowed_values=allowed,
                                        values_editable_by=editors, require_explicit_values=explicit)
            default = fields.get("default_value")
            if default is not None:
                prop.default_value = _property_value(prop, default)
            elif required:
                raise invalid("CustomProperty", "default_value", "missing_field",
                              "A required property needs a default value")
            return self.store.put(prop)

    def set_repo_properties(self, principal: Principal, repo: StoredRepo, entries: Any) -> StoredRepo:
        """Set (or, with a null value, unset) a repository's values of its organization's custom
        properties: all of them or none, each only by whoever its definition lets set it."""
        with self.store.lock:
            self.access.require(principal, repo, READ_META)
            owner = self.store.get(StoredAccount, repo.owner_id)
            if owner is None or owner.type != "Organization":
                raise not_found()
            if not isinstance(entries, list):
                raise invalid("CustomPropertyValue", "properties", "missing_field" if entries is None else "invalid")
            wanted: dict[str, Any] = {}
            for entry in entries:
                if not isinstance(entry, dict) or not isinstance(entry.get("property_name"), str) \
                        or "value" not in entry:
                    raise invalid("CustomPropertyValue", "properties")
                wanted[entry["property_name"]] = entry["value"]
            values = self.checked_property_values(principal, owner, repo, wanted)
            for name, value in values.items():
                if value is None:
                    repo.custom_properties.pop(name, None)
                else:
                    repo.custom_properties[name] = value
            repo.updated_at = now_iso()
            return self.store.put(repo)

    def checked_property_values(self, principal: Principal, org: StoredAccount, repo: StoredRepo | None,
                         wanted: dict[str, Any]) -> dict[str, Any]:
        """`wanted` checked against the organization's definitions and who may set each value (`repo` None:
        one `principal` is creating, whose admin they become)."""
        if not isinstance(wanted, dict):
            raise invalid("Repository", "custom_properties")
        checked: dict[str, Any] = {}
        for name, value in wanted.items():
            prop = self.custom_property(org, name) if org.type == "Organization" else None
            if prop is None:
                raise invalid("CustomPropertyValue", "property_name", "custom",
                              f"Property {name} is not defined for {org.login}")
            checked[name] = _property_value(prop, value)
            if not self._may_set_value(principal, org, prop, repo):
                who = "organization owners" if prop.values_editable_by == "org_actors" else \
                    "organization owners and the repository's admins"
                raise ApiError(403, f"You do not have permission to edit the value of custom property {name}: "
                                    f"only {who} may")
        return checked

    def _may_set_value(self, principal: Principal, org: StoredAccount, prop: StoredCustomProperty,
                       repo: StoredRepo | None) -> bool:
        if principal.is_site_admin:
            return True
        repo_actors = prop.values_editable_by == "org_and_repo_actors"
        if principal.kind == "installation":
            installation = principal.installation
            if installation is None or installation.account_id != org.id:
                return False
            if self.access.permission_level(principal, "organization_custom_properties") >= 2:
                return True
            return repo_actors and self.access.permission_level(principal, "repository_custom_properties") >= 2 \
                and (repo is None or self.access.installation_covers(principal, repo))
        account = principal.account
        if principal.kind != "user" or account is None:
            return False
        member = self.other_areas.membership(org, account)
        if member is not None and member.role == "admin":
            return True
        return repo_actors and (repo is None or self.access.role_of(account, repo) == "admin")


def _property_value(prop: StoredCustomProperty, value: Any) -> Any:
    """`value` if it suits the property's type (None unsets it); else GitHub's 422."""
    if value is None:
        return None
    kind = prop.value_type
    if kind == "multi_select":
        fits = isinstance(value, list) and all(v in (prop.allowed_values or []) for v in value)
    elif not isinstance(value, str):
        fits = False
    elif kind == "single_select":
        fits = value in (prop.allowed_values or [])
    elif kind == "true_false":
        fits = value in ("true", "false")
    elif kind == "url":
        fits = re.match(r"^https?://\S+$", value) is not None
    else:
        fits = len(value) <= 75
    if not fits:
        raise invalid("CustomPropertyValue", "value", "custom", f"{value!r} is not a valid value for {prop.name} "
                                                                f"({kind})")
    return value
