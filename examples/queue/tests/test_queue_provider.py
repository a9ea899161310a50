"""The queue provider against a real Redis: what it plans, what it makes, and what it leaves alone."""

from __future__ import annotations

import pytest
import redis
from conftest import PLATFORM, REDIS_URL, VARIABLE, queue, target
from paved_queue.provider import QueueProvider


@pytest.fixture
def provider() -> QueueProvider:
    return QueueProvider({VARIABLE: REDIS_URL}.get)


def descriptions(steps: list) -> list[str]:  # type: ignore[type-arg]
    return [step.description for step in steps]


# -- making a queue -----------------------------------------------------------------------------------------

def test_a_new_queue_plans_one_step_naming_the_stream_its_groups_and_the_mark(
        provider: QueueProvider, prefix: str) -> None:
    request, where = queue(consumerGroups=["fulfilment", "analytics"]), target(prefix)
    assert provider.observe(request, where) is None
    [step] = provider.plan(request, None, where)
    assert (step.resource, step.verb, step.destructive) == ("Queue/orders-placed", "create", False)
    assert step.description == (
        f"the Redis in ${VARIABLE}: create the stream {prefix}orders-placed with the consumer groups fulfilment, "
        "analytics (XGROUP CREATE … MKSTREAM), keeping at most 1000 entries for 72 hours, marked as Paved's in "
        f"{prefix}paved:queue:orders-placed")


def test_applying_a_new_queue_makes_the_stream_its_groups_and_paveds_mark(
        provider: QueueProvider, prefix: str, redis_client: redis.Redis) -> None:
    result = provider.apply(queue(consumerGroups=["fulfilment", "analytics"]), target(prefix))
    assert (result.status, result.message) == ("applied", "")
    assert result.outputs == {"stream": f"{prefix}orders-placed", "redis": f"Redis in ${VARIABLE}"}
    stream = f"{prefix}orders-placed"
    assert redis_client.type(stream) == "stream"
    assert sorted(g["name"] for g in redis_client.xinfo_groups(stream)) == ["analytics", "fulfilment"]
    assert redis_client.hgetall(f"{prefix}paved:queue:orders-placed") == {
        "platformRepo": PLATFORM, "owner": "payments", "service": "checkout",
        "consumerGroups": '["analytics", "fulfilment"]', "maxLength": "1000", "retentionHours": "72"}


def test_applying_again_takes_no_step(provider: QueueProvider, prefix: str) -> None:
    provider.apply(queue(), target(prefix))
    again = provider.apply(queue(), target(prefix))
    assert (again.status, again.steps) == ("unchanged", ())
    assert provider.plan(queue(), provider.observe(queue(), target(prefix)), target(prefix)) == []


# -- changing it --------------------------------------------------------------------------------------------

def test_a_group_added_to_the_request_is_created_on_the_stream(
        provider: QueueProvider, prefix: str, redis_client: redis.Redis) -> None:
    provider.apply(queue(), target(prefix))
    wider = queue(consumerGroups=["fulfilment", "analytics"])
    steps = provider.plan(wider, provider.observe(wider, target(prefix)), target(prefix))
    assert descriptions(steps)[0] == (f"the Redis in ${VARIABLE}: create the consumer group analytics on the stream "
                                      f"{prefix}orders-placed, reading the entries added from now on")
    assert provider.apply(wider, target(prefix)).status == "applied"
    assert sorted(g["name"] for g in redis_client.xinfo_groups(f"{prefix}orders-placed")) == [
        "analytics", "fulfilment"]


def test_a_group_paved_made_and_the_request_drops_is_deleted_but_a_readers_own_group_stays(
        provider: QueueProvider, prefix: str, redis_client: redis.Redis) -> None:
    provider.apply(queue(consumerGroups=["fulfilment", "analytics"]), target(prefix))
    redis_client.xgroup_create(f"{prefix}orders-placed", "audit-readers", id="0")  # made by a reader itself
    narrower = queue(consumerGroups=["fulfilment"])
    [drop, record] = provider.plan(narrower, provider.observe(narrower, target(prefix)), target(prefix))
    assert drop.destructive and "delete the consumer group analytics" in drop.description
    assert "record in" in record.description
    provider.apply(narrower, target(prefix))
    assert sorted(g["name"] for g in redis_client.xinfo_groups(f"{prefix}orders-placed")) == [
        "audit-readers", "fulfilment"]


def test_a_lower_max_length_trims_the_stream_and_is_marked_destructive(
        provider: QueueProvider, prefix: str, redis_client: redis.Redis) -> None:
    provider.apply(queue(), target(prefix))
    for n in range(10):
        redis_client.xadd(f"{prefix}orders-placed", {"order": str(n)})
    shorter = queue(maxLength=3)
    [trim, _] = provider.plan(shorter, provider.observe(shorter, target(prefix)), target(prefix))
    assert trim.destructive
    assert trim.description.endswith(f"trim the stream {prefix}orders-placed (10 entries now) to at most 3 entries "
                                     "no older than 72 hours (XTRIM)")
    assert provider.apply(shorter, target(prefix)).status == "applied"
    assert redis_client.xlen(f"{prefix}orders-placed") == 3
    assert redis_client.hget(f"{prefix}paved:queue:orders-placed", "maxLength") == "3"


# -- deleting it --------------------------------------------------------------------------------------------

def test_a_removed_request_deletes_the_stream_and_the_mark(
        provider: QueueProvider, prefix: str, redis_client: redis.Redis) -> None:
    provider.apply(queue(), target(prefix))
    [step] = provider.plan(None, provider.observe(queue(), target(prefix)), target(prefix), previous=queue())
    assert (step.verb, step.destructive) == ("delete", True)
    assert provider.apply(None, target(prefix), previous=queue()).status == "applied"
    assert redis_client.exists(f"{prefix}orders-placed", f"{prefix}paved:queue:orders-placed") == 0


# -- what is not Paved's ------------------------------------------------------------------------------------

def test_a_stream_without_paveds_mark_is_left_alone_and_the_plan_says_so(
        provider: QueueProvider, prefix: str, redis_client: redis.Redis) -> None:
    redis_client.xadd(f"{prefix}orders-placed", {"made": "by hand"})
    [step] = provider.plan(queue(), provider.observe(queue(), target(prefix)), target(prefix))
    assert step.description == (f"Paved will not touch queue orders-placed on the Redis in ${VARIABLE}: the stream "
                                f"{prefix}orders-placed exists and Paved did not create it (no hash "
                                f"{prefix}paved:queue:orders-placed)")
    result = provider.apply(queue(), target(prefix))
    assert (result.status, result.message) == ("failed", step.description)
    deleting = provider.apply(None, target(prefix), previous=queue())
    assert deleting.status == "failed"
    assert redis_client.xlen(f"{prefix}orders-placed") == 1
    assert redis_client.exists(f"{prefix}paved:queue:orders-placed") == 0


def test_a_queue_another_platform_repo_made_is_left_alone(
        provider: QueueProvider, prefix: str, redis_client: redis.Redis) -> None:
    provider.apply(queue(), target(prefix, platform_repo="acme/other-platform"))
    result = provider.apply(None, target(prefix), previous=queue())
    assert result.status == "failed"
    assert "its mark" in result.message and "belongs to acme/other-platform, not acme/platform" in result.message
    assert redis_client.type(f"{prefix}orders-placed") == "stream"


def test_a_key_of_another_type_is_never_taken_for_a_queue(
        provider: QueueProvider, prefix: str, redis_client: redis.Redis) -> None:
    redis_client.set(f"{prefix}orders-placed", "a counter")
    [step] = provider.plan(queue(), provider.observe(queue(), target(prefix)), target(prefix))
    assert "holds a string, not a stream Paved made" in step.description
    assert provider.apply(queue(), target(prefix)).status == "failed"
    assert redis_client.get(f"{prefix}orders-placed") == "a counter"


# -- drift --------------------------------------------------------------------------------------------------

def test_a_stream_deleted_by_hand_is_made_again_from_paveds_mark(
        provider: QueueProvider, prefix: str, redis_client: redis.Redis) -> None:
    provider.apply(queue(), target(prefix))
    redis_client.delete(f"{prefix}orders-placed")
    [step] = provider.plan(queue(), provider.observe(queue(), target(prefix)), target(prefix))
    assert step.verb == "create"
    assert provider.apply(queue(), target(prefix)).status == "applied"
    assert [g["name"] for g in redis_client.xinfo_groups(f"{prefix}orders-placed")] == ["fulfilment"]


def test_limits_changed_by_hand_on_the_mark_are_planned_back(
        provider: QueueProvider, prefix: str, redis_client: redis.Redis) -> None:
    provider.apply(queue(), target(prefix))
    redis_client.hset(f"{prefix}paved:queue:orders-placed", "retentionHours", "1")
    steps = provider.plan(queue(), provider.observe(queue(), target(prefix)), target(prefix))
    assert [s.verb for s in steps] == ["update", "update"]
    assert "no older than 72 hours" in steps[0].description and not steps[0].destructive
