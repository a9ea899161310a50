"""Approvals gate for real: the base branch names who must approve, and nothing merges without them.

Each test is an attacker with write access to the platform repo trying to get a change past the
owners that the catalogue on `main` names, through the real service on the sandbox forge.
"""

from __future__ import annotations

from tests.security.conftest import Platform

GRANT = """\
apiVersion: paved/v1
kind: Access
metadata:
  name: growth-maintains-payments-api
  owner: growth
  description: Growth wants to ship to payments' API.
spec:
  service: payments-api
  team: growth
  permission: maintain
"""


def test_a_grant_on_another_teams_critical_service_waits_for_that_team_and_cannot_merge(platform: Platform) -> None:
    number = platform.open_pr({"catalog/access/growth-maintains-payments-api.yaml": GRANT}, by="gina",
                              branch="grab", title="Growth maintains payments-api")
    platform.approve(number, by="hugo")  # gina's own team approves

    check = platform.plan_of(number)
    assert not check.passing, check
    assert "payments" in check.title
    assert "payments" in (platform.plan_comment(number) or "")
    refused = platform.merge(number, by="gina")
    assert refused.status_code == 405, refused.text
    assert "paved/plan" in refused.json()["message"]

    platform.approve(number, by="bob")  # a payments maintainer, as the catalogue on main names them
    assert platform.plan_of(number).conclusion == "success"
    assert platform.merge(number, by="gina").status_code == 200


def payments_with(platform: Platform, *extra: str) -> str:
    text = platform.catalogue_file("catalog/teams/payments.yaml")
    return text.replace("members: [alice, bob, carol]", f"members: [alice, bob, carol, {', '.join(extra)}]")


def test_joining_a_team_needs_that_team_as_main_names_it(platform: Platform) -> None:
    number = platform.open_pr({"catalog/teams/payments.yaml": payments_with(platform, "mallory")}, by="mallory",
                              branch="join", title="Add me to payments")
    platform.approve(number, by="gina")  # someone from another team
    check = platform.plan_of(number)
    assert check.status == "in_progress" and check.title == "waiting for approval from team payments"
    assert platform.merge(number, by="mallory").status_code == 405


NEW_TEAM = """\
apiVersion: paved/v1
kind: Team
metadata:
  name: shadow
  owner: shadow
  description: A team of our own.
spec:
  members: [mallory, dana]
  maintainers: [mallory, dana]
  budget:
    monthly: 10
"""


def test_a_new_teams_own_people_cannot_approve_its_creation(platform: Platform) -> None:
    number = platform.open_pr({"catalog/teams/shadow.yaml": NEW_TEAM}, by="mallory", branch="shadow",
                              title="A team of our own")
    platform.approve(number, by="dana")  # a maintainer of the new team, in the pull request
    check = platform.plan_of(number)
    assert check.title == "waiting for approval from platform owners", check
    assert "platform owners" in (platform.plan_comment(number) or "")
    platform.approve(number, by="maya")  # the platform team administers the platform repo
    assert platform.plan_of(number).conclusion == "success"


def test_a_pull_request_that_only_edits_a_template_hook_waits_for_the_platform_owners(platform: Platform) -> None:
    hook = "templates/fastapi-service/hooks/pre_gen_project.py"
    text = platform.catalogue_file(hook) + "\nimport os\nos.system('env > /tmp/paved-environment')\n"
    number = platform.open_pr({hook: text}, by="mallory", branch="template", title="Tidy the golden path")
    platform.approve(number, by="bob")
    check = platform.plan_of(number)
    assert check.title == "waiting for approval from platform owners"
    comment = platform.plan_comment(number) or ""
    assert "template fastapi-service changed: 3 services will get an upgrade pull request" in comment
    assert platform.merge(number, by="mallory").status_code == 405


def test_a_comment_that_forges_the_plan_marker_is_never_taken_for_the_plan(platform: Platform) -> None:
    number = platform.open_pr({"catalog/access/growth-maintains-payments-api.yaml": GRANT}, by="gina",
                              branch="forged", title="Growth maintains payments-api")
    platform.comment(number, "<!-- paved:plan -->\n✅ Paved: ready to merge, nothing to approve.", by="rita")
    platform.plan_of(number)
    forged = [b for b in platform.comments(number) if "nothing to approve" in b]
    assert forged == ["<!-- paved:plan -->\n✅ Paved: ready to merge, nothing to approve."]  # left as it was
    own = platform.plan_comment(number)
    assert own is not None and "payments" in own
