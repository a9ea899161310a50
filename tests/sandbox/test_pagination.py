"""Lists page as GitHub's do: `per_page` (30 by default, at most 100) and `Link` headers."""

from __future__ import annotations

import requests

from bot.sandbox import Sandbox

from .conftest import Cast, github


def make_labels(forge: Sandbox, token: str, count: int) -> None:
    repo = github(forge, token).get_repo("acme/platform")
    for i in range(count):
        repo.create_label(f"label-{i:03}", "ededed")


def test_a_list_pages_by_thirty_with_a_link_to_the_next_page(forge: Sandbox, cast: Cast) -> None:
    make_labels(forge, cast.alice.token, 35)
    answer = requests.get(f"{forge.api_url}/repos/acme/platform/labels", timeout=5,
                          headers={"Authorization": f"token {cast.alice.token}"})
    assert len(answer.json()) == 30
    assert 'rel="next"' in answer.headers["Link"] and "page=2" in answer.headers["Link"]
    assert 'rel="last"' in answer.headers["Link"]


def test_per_page_is_capped_at_one_hundred(forge: Sandbox, cast: Cast) -> None:
    make_labels(forge, cast.alice.token, 105)
    answer = requests.get(f"{forge.api_url}/repos/acme/platform/labels?per_page=500", timeout=5,
                          headers={"Authorization": f"token {cast.alice.token}"})
    assert len(answer.json()) == 100


def test_pygithub_reads_a_list_past_one_hundred_items(forge: Sandbox, cast: Cast) -> None:
    make_labels(forge, cast.alice.token, 120)
    gh = github(forge, cast.alice.token)
    gh.per_page = 100
    assert len(list(gh.get_repo("acme/platform").get_labels())) == 120


def test_the_last_page_has_no_next_link(forge: Sandbox, cast: Cast) -> None:
    make_labels(forge, cast.alice.token, 5)
    answer = requests.get(f"{forge.api_url}/repos/acme/platform/labels?per_page=2&page=3", timeout=5,
                          headers={"Authorization": f"token {cast.alice.token}"})
    assert len(answer.json()) == 1
    assert 'rel="next"' not in answer.headers["Link"] and 'rel="prev"' in answer.headers["Link"]
