"""The pure side of drift: the retry backoff counted from apply records, what a request asks to be
done about drift, and how a drift issue is found again and reads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.apply import ApplyRecord, Trigger
from bot.drift import MAX_ATTEMPTS, Drift, marked, marker, mode_of, retry_state, title
from bot.model import Resource
from bot.provider import Result, Step
from bot.render.markdown import drift_issue, drift_resolved

T0 = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)


def attempt(at: datetime, trigger: Trigger = "reconcile") -> ApplyRecord:
    return ApplyRecord("abc", None, at.isoformat(timespec="seconds"), "d1",
                       (Result("Team/growth", "failed", "GitHub has no user zoe"),), trigger=trigger)


def failed_at(*minutes: int) -> list[ApplyRecord]:
    return [attempt(T0 + timedelta(minutes=m), "merge" if i == 0 else "reconcile") for i, m in enumerate(minutes)]


def test_a_commit_nobody_tried_to_apply_is_due_at_once() -> None:
    assert (retry_state([], T0).status, retry_state([], T0).attempts) == ("due", 0)


@pytest.mark.parametrize(("tried", "wait"), [
    ((0,), 1), ((0, 1), 5), ((0, 1, 6), 30), ((0, 1, 6, 36), 120)])
def test_each_failed_attempt_waits_longer_before_the_next(tried: tuple[int, ...], wait: int) -> None:
    records = failed_at(*tried)
    due_at = T0 + timedelta(minutes=tried[-1] + wait)
    assert retry_state(records, due_at - timedelta(seconds=1)).status == "waiting"
    assert retry_state(records, due_at - timedelta(seconds=1)).next_at == due_at
    assert retry_state(records, due_at).status == "due"


def test_after_the_fifth_failed_attempt_no_retry_is_ever_due() -> None:
    state = retry_state(failed_at(0, 1, 6, 36, 156), T0 + timedelta(days=30))
    assert (state.status, state.attempts, MAX_ATTEMPTS) == ("exhausted", 5, 5)


def test_a_heal_recorded_on_the_commit_is_not_an_attempt_to_apply_it() -> None:
    records = [*failed_at(0), attempt(T0 + timedelta(minutes=2), "heal")]
    state = retry_state(records, T0 + timedelta(minutes=1))
    assert (state.status, state.attempts) == ("due", 1)


def test_an_attempt_whose_time_cannot_be_read_does_not_stop_retries() -> None:
    broken = ApplyRecord("abc", None, "yesterday", "d1", (), trigger="merge")
    assert retry_state([broken], T0).status == "due"


def request(spec: dict[str, object]) -> Resource:
    return Resource("Service", "checkout", "payments", "catalog/services/checkout.yaml", 0, 1,
                    {"kind": "Service", "metadata": {"name": "checkout"}, "spec": spec})


def test_drift_is_only_reported_unless_the_request_asks_to_heal() -> None:
    assert [mode_of(request({})), mode_of(request({"drift": "warn"})), mode_of(request({"drift": "heal"}))] == [
        "warn", "warn", "heal"]


DRIFT = Drift("Environment/checkout-production", "Environment", "payments", "warn",
              steps=(Step("Environment/checkout-production", "update",
                          "update environment production in acme/checkout: deployment branches any → release/*"),),
              path="catalog/services/checkout.yaml")


def test_a_drift_issue_is_found_again_by_its_marker() -> None:
    body = drift_issue(DRIFT, organization="acme", revision="0123456789abcdef")
    assert body.startswith(marker(DRIFT.identity) + "\n")
    assert marked(body) == "Environment/checkout-production"
    assert marked("A person wrote this <!-- paved:drift Service/x -->") is None


def test_a_drift_issue_names_the_owning_team_and_what_differs_escaped() -> None:
    body = drift_issue(DRIFT, organization="acme", revision="0123456789abcdef")
    assert "owned by @acme/payments" in body
    assert "- update: update environment production in acme/checkout: deployment branches any → release/\\*" in body
    assert "`0123456789ab`" in body and "0123456789abcdef" not in body


def test_a_drift_issue_for_a_failed_apply_quotes_the_error_and_the_pull_request() -> None:
    failed = Drift("Team/growth", "Team", "growth", "warn", error="GitHub has no user @zoe", pull_request=7,
                   attempts=5, gave_up=True)
    body = drift_issue(failed, organization="acme", revision="0123456789abcdef")
    assert title(failed) == "Paved could not apply Team/growth"
    assert "**The last apply of pull request #7 failed:** `GitHub has no user @zoe`" in body
    assert "stopped retrying" in body and "(such as #7)" in body


def test_an_owner_that_is_no_team_slug_is_not_mentioned() -> None:
    odd = Drift("Team/x", "Team", "pay ments <b>", "warn", steps=DRIFT.steps)
    body = drift_issue(odd, organization="acme", revision="0123456789abcdef")
    assert "@acme/" not in body and "<b>" not in body.replace("`pay ments <b>`", "")


def test_the_closing_comment_lists_the_steps_a_heal_took() -> None:
    text = drift_resolved("Service/checkout", revision="0123456789abcdef",
                          healed=["change the visibility of acme/checkout from public to private"])
    assert text.startswith("Paved put `Service/checkout` back as the catalogue asks at `0123456789ab`")
    assert "- change the visibility of acme/checkout from public to private" in text
