"""The web catalogue: pages read from a real platform repo's git history and Paved's notes, over HTTP."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from bot.apply import APPLIED_REF, NOTES_REF
from bot.cli import main as paved
from bot.settings import Settings
from bot.web.catalogue import PlatformSource, catalogue_router
from tests.conftest import DATABASE, SERVICE, TEAM, PlatformRepo, git_readers_left
from tests.test_architecture import OUTSIDE_WORLD, imported

REPO = "acme/platform"


def record(revision: str, previous: str | None, applied_at: str, results: list[dict[str, object]],
           **fields: object) -> str:
    """One apply record as Paved writes it in `refs/notes/paved`."""
    return json.dumps({"paved": 1, "revision": revision, "previous": previous, "applied_at": applied_at,
                       "plan_digest": "0" * 16, "results": results, **fields}, sort_keys=True)


def result(resource: str, status: str, message: str = "", **outputs: str) -> dict[str, object]:
    return {"resource": resource, "status": status, "message": message, "steps": [], "outputs": outputs}


def note(repo: PlatformRepo, sha: str, text: str) -> None:
    repo.git("notes", f"--ref={NOTES_REF}", "append", "-m", text, sha)


def merge(repo: PlatformRepo, branch: str, number: int, author: str) -> str:
    """Merge `branch` into main as GitHub's merge button does."""
    repo.git("checkout", "--quiet", "main")
    repo.git("merge", "--quiet", "--no-ff", branch, "-m", f"Merge pull request #{number} from {author}/{branch}")
    return repo.git("rev-parse", "HEAD")


def change(repo: PlatformRepo, branch: str, path: str, text: str) -> None:
    repo.git("checkout", "--quiet", "-b", branch, "main")
    repo.write(path, text)
    repo.commit(f"{branch}: change {path}")


@dataclass
class Site:
    repo: PlatformRepo
    client: TestClient
    initial: str
    bigger_db: str
    search: str

    def get(self, path: str) -> str:
        answer = self.client.get(path)
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"].startswith("text/html")
        return answer.text


def client_for(repo: PlatformRepo, tmp_path: Path) -> TestClient:
    app = FastAPI()
    source = PlatformSource(REPO, repo.root, tmp_path / "index.sqlite", web_url="https://github.com")
    app.include_router(catalogue_router(source))
    return TestClient(app)


@pytest.fixture
def site(platform_repo: PlatformRepo, tmp_path: Path) -> Iterator[Site]:
    """acme's platform repo with a history: applied, a merged change, a failed apply, a pending change and
    a drift check, each recorded the way Paved records them."""
    repo = platform_repo
    initial = repo.git("rev-parse", "HEAD")
    note(repo, initial, record(initial, None, "2026-11-02T09:00:00+00:00", [
        result("Team/payments", "applied"), result("Team/data", "applied"),
        result("Service/checkout", "applied", repository="https://github.com/acme/checkout",
               database_password="hunter2-never-shown"),
        result("Database/checkout-db", "applied", database="checkout-db")]))
    repo.git("update-ref", APPLIED_REF, initial)

    change(repo, "bigger-db", "catalog/services/checkout.yaml",
           SERVICE.format(name="checkout", owner="payments", tier="production")
           + "---" + DATABASE.format(name="checkout-db", owner="payments", service="checkout", size="medium"))
    bigger_db = merge(repo, "bigger-db", 7, "gina")
    note(repo, bigger_db, record(bigger_db, initial, "2026-11-03T10:30:00+00:00",
                                 [result("Database/checkout-db", "applied", "resized to medium")],
                                 pull_request=7, requested_by="gina", approved_by=["hugo"], merged_by="alice",
                                 actions={"Database/checkout-db": "update"}, trigger="merge"))
    repo.git("update-ref", APPLIED_REF, bigger_db)

    change(repo, "search", "catalog/services/search.yaml",
           SERVICE.format(name="search", owner="data", tier="experimental"))
    search = merge(repo, "search", 8, "ivan")
    note(repo, search, record(search, bigger_db, "2026-11-04T11:00:00+00:00",
                              [result("Service/search", "failed", "GithubException: 502 Bad Gateway")],
                              pull_request=8, requested_by="ivan", approved_by=["dana"], merged_by="alice",
                              actions={"Service/search": "create"}))
    # A drift check found checkout changed by hand (a trigger and a status this Paved may not know).
    note(repo, search, record(search, search, "2026-11-04T12:00:00+00:00",
                              [result("Service/checkout", "drifted", "visibility is public, the request says private")],
                              trigger="drift"))

    change(repo, "data-budget", "catalog/teams/data.yaml", TEAM.format(name="data", budget=900))
    merge(repo, "data-budget", 9, "dana")
    with client_for(repo, tmp_path) as client:
        yield Site(repo, client, initial, bigger_db, search)


class Page(HTMLParser):
    """What the accessibility and asset checks look at in a page."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.title = ""
        self._in_title = False
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))
        self._in_title = tag == "title"

    def handle_endtag(self, tag: str) -> None:
        self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data

    def all(self, tag: str) -> list[dict[str, str]]:
        return [attrs for name, attrs in self.tags if name == tag]


def rows(page: str) -> list[str]:
    """The resource names of the home page's table, in order."""
    body = page.split("<tbody>", 1)[1].split("</tbody>", 1)[0] if "<tbody>" in page else ""
    return re.findall(r'<th scope="row"><a href="[^"]+">([^<]+)</a></th>', body)


def row_of(page: str, name: str) -> str:
    match = re.search(rf'<tr>\s*<th scope="row"><a href="[^"]+">{re.escape(name)}</a></th>(.*?)</tr>', page, re.S)
    assert match, f"{name} is not listed"
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", match.group(1))).strip()


# -- the home page -----------------------------------------------------------------------------------

def test_home_lists_every_resource_with_kind_owner_tier_status_and_last_pull_request(site: Site) -> None:
    page = site.get("/")
    assert sorted(rows(page)) == ["checkout", "checkout-db", "data", "payments", "search"]
    day = site.repo.git("log", "-1", "--format=%aI", site.bigger_db)[:10]
    assert row_of(page, "checkout-db") == f"Database payments production applied {day} #7"
    assert row_of(page, "search") == f"Service data experimental failed {day} #8"
    assert row_of(page, "checkout").startswith("Service payments production drifted")
    assert row_of(page, "data").startswith("Team data pending")
    assert row_of(page, "payments").startswith("Team payments applied")
    assert 'href="https://github.com/acme/platform/pull/7"' in page


@pytest.mark.parametrize(("query", "expected"), [
    ("kind=Service", ["checkout", "search"]),
    ("owner=data", ["data", "search"]),
    ("status=pending", ["data"]),
    ("status=failed", ["search"]),
    ("status=drifted", ["checkout"]),
    ("status=applied", ["checkout-db", "payments"]),
    ("q=checkout", ["checkout", "checkout-db"]),
    ("kind=Service&owner=payments&q=check", ["checkout"]),
    ("q=nothing-like-this", []),
])
def test_filters_and_search_narrow_the_list(site: Site, query: str, expected: list[str]) -> None:
    page = site.get(f"/?{query}")
    assert sorted(rows(page)) == expected
    assert f"{len(expected)} of 5 resources match" in page


def test_the_list_is_paginated_fifty_at_a_time(platform_repo: PlatformRepo, tmp_path: Path) -> None:
    for n in range(60):
        platform_repo.write(f"catalog/teams/team-{n:02d}.yaml", TEAM.format(name=f"team-{n:02d}", budget=10))
    platform_repo.commit("sixty teams")
    with client_for(platform_repo, tmp_path) as client:
        first, second = client.get("/").text, client.get("/?page=2").text
        beyond = client.get("/?page=9").text
    assert len(rows(first)) == 50 and "Page 1 of 2" in first and 'rel="next"' in first
    assert len(rows(second)) == 14 and "Page 2 of 2" in second and 'rel="prev"' in second
    assert not set(rows(first)) & set(rows(second))
    assert rows(beyond) == []


def test_the_pages_end_their_git_readers_when_the_app_shuts_down(platform_repo: PlatformRepo,
                                                                 tmp_path: Path) -> None:
    def readers() -> list[str]:
        found = git_readers_left()
        if found is None:
            pytest.skip("no /proc here to find git processes in")
        return [line for line in found if str(platform_repo.root) in line]

    with client_for(platform_repo, tmp_path) as client:
        assert client.get("/").status_code == 200
        assert readers(), "a page read the catalogue through a git reader that stays open between requests"
    assert readers() == []


@pytest.mark.parametrize("query", ["page=abc", "page=0", "status=gone", "kind=Spaceship", "page=-1"])
def test_a_bad_query_is_a_clear_400_page(site: Site, query: str) -> None:
    answer = site.client.get(f"/?{query}")
    assert answer.status_code == 400
    assert answer.headers["content-type"].startswith("text/html")
    assert "Bad request" in answer.text and "Traceback" not in answer.text


# -- a resource --------------------------------------------------------------------------------------

def test_a_resource_shows_its_request_with_the_schemas_field_descriptions(site: Site) -> None:
    page = site.get("/resources/Database/checkout-db")
    assert "<h1>checkout-db</h1>" in page
    size = re.search(r"<code>spec\.size</code>.*?</tr>", page, re.S)
    assert size is not None
    assert "<code>medium</code>" in size.group(0)
    assert "small | medium | large" in html.unescape(size.group(0)) or "size" in size.group(0).lower()
    retention = re.search(r"<code>spec\.backups\.retentionDays</code>.*?</tr>", page, re.S)
    assert retention is not None and "<code>14</code>" in retention.group(0)
    assert re.search(r"<td>[A-Z][^<]{20,}</td>", retention.group(0)), "the field's schema description is shown"


def test_a_resource_shows_its_outputs_as_links_and_never_a_credential(site: Site) -> None:
    page = site.get("/resources/Service/checkout")
    outputs = page.split('id="outputs-heading"', 1)[1].split("</section>", 1)[0]
    assert '<a href="https://github.com/acme/checkout">https://github.com/acme/checkout</a>' in outputs
    assert "hunter2" not in page and "database_password" not in page


def test_a_resource_draws_its_dependencies_and_dependents_as_svg(site: Site) -> None:
    page = site.get("/resources/Service/checkout")
    svg = re.search(r"<svg class=\"graph\".*?</svg>", page, re.S)
    assert svg is not None
    drawing = svg.group(0)
    assert "Database/checkout-db" in drawing and "Team/payments" in drawing and "Service/checkout" in drawing
    assert 'href="/resources/Database/checkout-db"' in drawing and 'href="/resources/Team/payments"' in drawing
    needed_by = page.split("<h3>Needed by (1)</h3>", 1)[1].split("</div>", 1)[0]
    needs = page.split("<h3>Needs (1)</h3>", 1)[1].split("</div>", 1)[0]
    assert "Database/checkout-db" in needed_by and "(service)" in needed_by
    assert "Team/payments" in needs and "(owner)" in needs


def test_a_resource_history_joins_commits_with_the_apply_records(site: Site) -> None:
    page = site.get("/resources/Database/checkout-db")
    history = page.split('id="history-heading"', 1)[1].split("</table>", 1)[0]
    lines = [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", r)).strip()
             for r in re.findall(r"<tr>(.*?)</tr>", history.split("<tbody>", 1)[1], re.S)]
    assert len(lines) == 2
    merged, initial = lines
    assert merged.startswith(site.bigger_db[:10]) and "Merge pull request #7" in merged
    assert "#7 gina hugo 2026-11-03 10:30 applied resized to medium" in merged
    assert initial.startswith(site.initial[:10]) and "Alice" in initial
    assert "2026-11-02 09:00 applied" in initial


def test_a_failed_apply_and_a_drift_check_show_in_the_history(site: Site) -> None:
    search = site.get("/resources/Service/search")
    assert "GithubException: 502 Bad Gateway" in search and "ivan" in search and "dana" in search
    checkout = site.get("/resources/Service/checkout")
    history = checkout.split('id="history-heading"', 1)[1]
    assert "drift at" in history and "visibility is public" in history


def test_an_unknown_resource_is_a_404_page_without_a_traceback(site: Site) -> None:
    for path in ("/resources/Service/nope", "/resources/Nothing/at-all", "/teams/nobody"):
        answer = site.client.get(path)
        assert answer.status_code == 404, path
        assert answer.headers["content-type"].startswith("text/html")
        assert "Not found" in answer.text and "Traceback" not in answer.text


# -- teams, golden paths, adoption --------------------------------------------------------------------

def test_a_team_page_shows_members_resources_and_cost_against_budget(site: Site) -> None:
    page = site.get("/teams/payments")
    people = page.split('id="people-heading"', 1)[1].split("</section>", 1)[0]
    assert "<li>alice</li>" in people and "<li>bob</li>" in people
    owned = page.split('id="owned-heading"', 1)[1].split("</section>", 1)[0]
    assert sorted(rows(owned)) == ["checkout", "checkout-db"]
    cost = page.split('id="cost-heading"', 1)[1].split("</section>", 1)[0]
    assert re.search(r"USD [\d,.]+ of a USD 500\.00 budget \(\d+%\)", cost)
    assert "<meter" in cost


def test_the_golden_paths_page_gives_parameters_and_a_request_that_validates(site: Site) -> None:
    page = site.get("/golden-paths")
    for template, parameter in (("fastapi-service", "port"), ("worker", "schedule")):
        section = page.split(f'id="t-{template}"', 1)[1].split("</section>", 1)[0]
        assert f"<code>{parameter}</code>" in section
        snippet = html.unescape(re.search(r"<pre[^>]*><code>(.*?)</code></pre>", section, re.S).group(1))  # type: ignore[union-attr]
        assert f"name: {template}" in snippet
        site.repo.write(f"catalog/services/{template}-try.yaml",
                        snippet.replace("my-service", f"{template}-try").replace("my-team", "payments"))
    assert paved(["validate", "--repo", str(site.repo.root)]) == 0


def test_the_adoption_page_plots_the_figures_from_the_notes(site: Site) -> None:
    page = site.get("/adoption")
    weeks = page.split('id="weeks-heading"', 1)[1].split("</section>", 1)[0]
    assert '<svg class="plot"' in weeks
    assert "2026-W45" in weeks and "Database 1, Service 1" in weeks  # pull requests #7 and #8
    rates = page.split('id="rates-heading"', 1)[1].split("</section>", 1)[0]
    assert '<svg class="plot"' in rates and "Applies failed: 1 of" in rates


def test_the_adoption_page_says_so_when_nothing_is_recorded(platform_repo: PlatformRepo, tmp_path: Path) -> None:
    with client_for(platform_repo, tmp_path) as client:
        page = client.get("/adoption")
    assert page.status_code == 200 and "No figures yet" in page.text


# -- every page ----------------------------------------------------------------------------------------

PAGES = ["/", "/?kind=Team", "/resources/Service/checkout", "/teams", "/teams/payments", "/golden-paths",
         "/adoption", "/resources/Service/nope"]


def test_no_page_or_stylesheet_loads_anything_from_the_internet(site: Site) -> None:
    for path in PAGES:
        parsed = Page(site.client.get(path).text)
        assets = [a.get("src", "") for name, a in parsed.tags if name in ("script", "img", "iframe", "source")]
        assets += [a.get("href", "") for a in parsed.all("link")]
        assert not parsed.all("script"), path
        assert all(not a.startswith(("http://", "https://", "//")) for a in assets), (path, assets)
        links = [a["href"] for a in parsed.all("a") if a.get("href", "").startswith(("http://", "https://"))]
        assert all(link.startswith("https://github.com/") for link in links), (path, links)
    css = site.client.get("/static/paved.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert not re.search(r"url\(|@import|https?://", css.text)


def test_pages_have_a_language_a_title_landmarks_and_labelled_controls(site: Site) -> None:
    for path in PAGES:
        text = site.client.get(path).text
        parsed = Page(text)
        assert text.startswith("<!doctype html>"), path
        assert parsed.all("html")[0].get("lang") == "en", path
        assert parsed.title.strip(), path
        assert len(parsed.all("main")) == 1 and parsed.all("nav") and parsed.all("h1"), path
        labelled = {a["for"] for a in parsed.all("label")}
        for name, attrs in parsed.tags:
            if name in ("input", "select", "textarea") and attrs.get("type") != "hidden":
                assert attrs.get("id") in labelled or attrs.get("aria-label"), (path, attrs)


def test_the_catalogue_shows_what_a_push_to_its_mirror_brings(site: Site) -> None:
    assert "search" in rows(site.get("/"))
    change(site.repo, "ledger", "catalog/services/ledger.yaml", SERVICE.format(name="ledger", owner="data",
                                                                                 tier="production"))
    merge(site.repo, "ledger", 10, "gina")
    page = site.get("/?owner=data")
    assert sorted(rows(page)) == ["data", "ledger", "search"]
    assert row_of(page, "ledger").startswith("Service data production pending")


def test_without_a_platform_repo_every_page_says_what_to_set(tmp_path: Path) -> None:
    app = FastAPI()
    app.include_router(catalogue_router(PlatformSource.from_settings(Settings(data_dir=tmp_path))))
    with TestClient(app) as client:
        answer = client.get("/")
    assert answer.status_code == 503 and "PAVED_CATALOGUE_REPO" in answer.text


def test_the_setting_defaults_to_the_only_platform_repository(tmp_path: Path) -> None:
    assert Settings.from_env({"PAVED_DATA_DIR": str(tmp_path), "PAVED_REPOSITORIES": "acme/platform"}
                             ).catalogue_repository == "acme/platform"
    assert Settings.from_env({"PAVED_DATA_DIR": str(tmp_path), "PAVED_REPOSITORIES": "acme/a,acme/b",
                              "PAVED_CATALOGUE_REPO": "acme/b"}).catalogue_repository == "acme/b"
    assert Settings.from_env({"PAVED_DATA_DIR": str(tmp_path), "PAVED_REPOSITORIES": "acme/a,acme/b"}
                             ).catalogue_repository is None


def test_the_read_model_stays_in_the_pure_core() -> None:
    names = imported(Path(__file__).resolve().parent.parent / "bot" / "catalogue_view.py")
    assert not {n for n in names if n.split(".")[0] in OUTSIDE_WORLD}
    assert not {n for n in names if n.startswith(("bot.web", "bot.adapters", "bot.handlers", "bot.settings"))}
