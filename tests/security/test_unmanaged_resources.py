"""Paved touches only what it made: requests that name a repository or team Paved did not create change
nothing there, however they got into the catalogue and whoever approved them.

An organization owner made `acme/billing-legacy` and the `finance` team by hand. Requests naming them
reach `main` (an administrator pushes them, as an attacker with such help would); then mallory, who may
write to the platform repo, merges a change to them with the approval the rules ask for. Paved refuses
in the plan and in the apply, and says why; the repository and the team stay as their owners left them.
(The service belongs to growth, a team Paved made, so that its refusal is not hidden behind the team's.)
"""

from __future__ import annotations

from tests.security.conftest import ORG, Platform

TEAM = "catalog/teams/finance.yaml"
SERVICE = "catalog/services/billing-legacy.yaml"

FINANCE = """\
apiVersion: paved/v1
kind: Team
metadata:
  name: finance
  owner: finance
  description: Closes the books every month.
spec:
  members: [{members}]
  maintainers: [farah]
  budget:
    monthly: 100
"""

BILLING = """\
apiVersion: paved/v1
kind: Service
metadata:
  name: billing-legacy
  owner: growth
  description: {description}
spec:
  template:
    name: fastapi-service
  repository:
    visibility: {visibility}
  tier: experimental
  lifecycle: experimental
"""

REFUSED_REPO = (f"Paved will not touch repository {ORG}/billing-legacy: it exists and Paved did not create it "
                "(no paved-managed mark)")
REFUSED_TEAM = (f"Paved will not touch team {ORG}/finance: it exists and Paved did not create it "
                "(no [paved-managed] mark at the end of its description)")


def made_by_hand(platform: Platform, *, marked: bool = False) -> None:
    """The repository and the team, as alice (an owner) makes them without Paved; `marked`: handed to Paved."""
    mark = {"paved-managed": "true"} if marked else None
    platform.forge.create_repo(ORG, "billing-legacy", private=True, description="Invoices from the old system.",
                               by="alice", auto_init=True, custom_properties=mark)
    platform.forge.create_team(ORG, "finance", members=["erik"], maintainers=["farah"],
                               description="Closes the books." + (" [paved-managed]" if marked else ""))


def in_the_catalogue(platform: Platform) -> str:
    """Requests matching them, pushed to main by alice, an administrator; the pushed commit."""
    return platform.push("main", {TEAM: FINANCE.format(members="erik, farah"),
                                  SERVICE: BILLING.format(description="Invoices from the old system.",
                                                          visibility="private")}, by="alice")


def left_alone(platform: Platform) -> None:
    repo = platform.api("GET", f"/repos/{ORG}/billing-legacy").json()
    assert (repo["archived"], repo["visibility"], repo["description"]) == (
        False, "private", "Invoices from the old system.")
    assert platform.api("GET", f"/repos/{ORG}/billing-legacy/teams").json() == []
    team = platform.api("GET", f"/orgs/{ORG}/teams/finance")
    assert team.status_code == 200, team.text
    maintainers = [u["login"] for u in platform.api("GET", f"/orgs/{ORG}/teams/finance/members?role=maintainer").json()]
    members = [u["login"] for u in platform.api("GET", f"/orgs/{ORG}/teams/finance/members?role=member").json()]
    assert (maintainers, members) == (["farah"], ["erik"])


def applied_comment(platform: Platform, number: int) -> str:
    return next(b for b in platform.comments(number) if b.startswith("<!-- paved:applied "))


def test_a_merged_change_to_a_repository_and_team_paved_did_not_create_changes_nothing(platform: Platform) -> None:
    made_by_hand(platform)
    pushed = in_the_catalogue(platform)
    first = platform.applied(pushed)
    assert first.conclusion == "failure"
    assert REFUSED_REPO in first.summary and REFUSED_TEAM in first.summary

    number = platform.open_pr({TEAM: FINANCE.format(members="farah, mallory"),
                               SERVICE: BILLING.format(description="Open to everyone now.", visibility="public")},
                              by="mallory", branch="takeover", title="finance: mallory joins; billing goes public")
    platform.approve(number, by="farah")  # the finance team, as main names it
    assert platform.plan_of(number).conclusion == "success"
    plan = platform.plan_comment(number) or ""
    assert REFUSED_REPO in plan and REFUSED_TEAM in plan
    assert platform.merge(number, by="mallory").status_code == 200

    merged = platform.forge.pull_request(ORG, "platform", number).merge_commit_sha
    assert merged is not None
    apply = platform.applied(merged)
    assert apply.conclusion == "failure"
    assert REFUSED_REPO in apply.summary and REFUSED_TEAM in apply.summary
    comment = applied_comment(platform, number)
    assert f"`Service/billing-legacy` | failed: {REFUSED_REPO}" in comment
    assert f"`Team/finance` | failed: {REFUSED_TEAM}" in comment
    left_alone(platform)


def test_a_merged_deletion_does_not_archive_or_delete_what_its_owner_took_back_from_paved(
        platform: Platform) -> None:
    # alice hands the repository and the team to Paved, which applies their requests...
    made_by_hand(platform, marked=True)
    assert platform.applied(in_the_catalogue(platform)).conclusion == "success"
    # ...then takes them back: she removes the marks, as only an owner may.
    taken = platform.api("PATCH", f"/repos/{ORG}/billing-legacy/properties/values",
                         json={"properties": [{"property_name": "paved-managed", "value": None}]})
    assert taken.status_code == 204, taken.text
    edited = platform.api("PATCH", f"/orgs/{ORG}/teams/finance", json={"description": "Closes the books."})
    assert edited.status_code == 200, edited.text

    number = platform.open_pr({TEAM: None, SERVICE: None}, by="mallory", branch="removal",
                              title="Retire finance and billing-legacy")
    platform.approve(number, by="farah")  # the finance team, as main names it
    assert platform.plan_of(number).conclusion == "success"
    assert platform.merge(number, by="mallory").status_code == 200

    merged = platform.forge.pull_request(ORG, "platform", number).merge_commit_sha
    assert merged is not None
    apply = platform.applied(merged)
    assert apply.conclusion == "failure"
    assert REFUSED_REPO in apply.summary and REFUSED_TEAM in apply.summary
    comment = applied_comment(platform, number)
    assert f"`Service/billing-legacy` | failed: {REFUSED_REPO}" in comment
    assert f"`Team/finance` | failed: {REFUSED_TEAM}" in comment
    repo = platform.api("GET", f"/repos/{ORG}/billing-legacy").json()
    assert not repo["archived"]
    members = {u["login"] for u in platform.api("GET", f"/orgs/{ORG}/teams/finance/members").json()}
    assert members == {"erik", "farah"}
