"""A forge that fails a fifth of Paved's API calls (500, 502, secondary rate limits), as GitHub does on a
bad day: a pull request opened and merged still gets one plan and one apply, and its resources once."""

from __future__ import annotations

from collections.abc import Callable

from tests.chaos.conftest import Chaos


def test_a_request_merged_while_github_fails_a_fifth_of_the_calls_is_planned_and_applied_exactly_once(
        chaos: Chaos, record_property: Callable[[str, object], None]) -> None:
    chaos.serve()
    chaos.wait_until_applied(chaos.seed_head)
    faults = chaos.forge.faults(rate=0.2, kinds=("500", "502", "secondary"), seed=6)

    watch = chaos.converging("plan and apply through an unreliable GitHub")
    number = chaos.open_request()
    chaos.wait_for_plan(number, seconds=90)
    head = chaos.merge(number)
    chaos.wait_until_reported(number, head, seconds=90)
    watch.stop(record_property)
    print(f"faults served: {faults.served}")

    assert sum(faults.served.values()) > 0
    chaos.assert_applied_once(number, head)
