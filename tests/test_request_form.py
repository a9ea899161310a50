"""The catalogue's request form over HTTP: signed-in only, CSRF-checked, findings at their fields, the plan
shown, and the pull request opened on the sandbox forge as the person who asked, with their own token.

The platform repo is a real git repository (the project's rules, a small catalogue), the form's app is the
real router behind the real sign-in; sessions are cookies signed as `bot.web.signin` signs them.
"""

from __future__ import annotations

import dataclasses
import html
import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from bot.forge import Permission
from bot.sandbox import Sandbox
from bot.settings import Secret, Settings
from bot.web.catalogue import PlatformSource
from bot.web.request_form import PendingRequest, PendingRequests, RequestForm, open_as_person
from bot.web.signin import COOKIE, SignIn, read_session, sign_session
from bot.yamlio import load
from tests.conftest import PlatformRepo, serving

REPO = "acme/platform"
SESSION_KEY = "a-session-key-for-the-request-form-tests"
HTML = {"Accept": "text/html"}


class Permissions:
    """`Accounts` answering from a table: who may do what on the platform repo (no GitHub in these tests)."""

    def __init__(self, table: dict[str, Permission]) -> None:
        self.table = table

    def authorize_url(self, redirect_uri: str, state: str) -> str:
        return "https://forge.invalid/authorize?" + httpx.QueryParams({"redirect_uri": redirect_uri,
                                                                       "state": state}).__str__()

    def exchange(self, code: str, redirect_uri: str) -> str:
        raise AssertionError("no token is exchanged in these tests")

    def login_of(self, token: str) -> str:
        raise AssertionError("no token is read in these tests")

    def permission_of(self, login: str) -> Permission:
        return self.table.get(login, "none")


def settings_for(tmp_path: Path, **more: object) -> Settings:
    fields: dict[str, object] = {"github_client_id": "Iv1.forms", "session_secret": Secret(SESSION_KEY),
                                 "github_client_secret": Secret("a-client-secret-for-forms"), **more}
    return dataclasses.replace(Settings.from_env({"PAVED_DATA_DIR": str(tmp_path / "data")}),
                               **fields)  # type: ignore[arg-type]


def app_for(settings: Settings, source: PlatformSource, accounts: object | None) -> FastAPI:
    app = FastAPI()
    signin = SignIn(settings, REPO, accounts=accounts)  # type: ignore[arg-type]
    signin.install(app)
    app.include_router(RequestForm(settings, source, signin).router())
    return app


def signed_in(login: str) -> dict[str, str]:
    now = int(time.time())
    return {COOKIE: sign_session({"login": login, "since": now, "checked": now, "read": True}, SESSION_KEY)}


@pytest.fixture
def client(platform_repo: PlatformRepo, tmp_path: Path) -> Iterator[TestClient]:
    settings = settings_for(tmp_path)
    source = PlatformSource(REPO, platform_repo.root, tmp_path / "index.sqlite")
    app = app_for(settings, source, Permissions({"erin": "write", "rita": "read"}))
    with TestClient(app, base_url="http://127.0.0.1") as test_client:
        yield test_client


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, "the page has no CSRF field"
    return found.group(1)


def form_page(client: TestClient, login: str = "erin", kind: str = "Database") -> str:
    """Sign `login` in (a session cookie as signing in makes) and open `kind`'s form."""
    client.cookies.clear()
    client.cookies.set(COOKIE, signed_in(login)[COOKIE], domain="127.0.0.1")
    page = client.get(f"/request/{kind}", headers=HTML)
    assert page.status_code == 200, page.text
    return page.text


DATABASE_ANSWERS = {"/metadata/name": "orders-db", "/metadata/owner": "payments",
                    "/metadata/description": "Keeps orders.", "/spec/engine": "postgres", "/spec/version": "16",
                    "/spec/size": "small", "/spec/service": "checkout", "/spec/backups/enabled": "true",
                    "/spec/backups/retentionDays": "14", "/spec/deletionProtection": "true"}


def errors_at(page: str, pointer: str) -> str:
    found = re.search(rf'<ul class="field-errors" id="errors{re.escape(pointer.replace("/", "-"))}">(.*?)</ul>',
                      page, re.S)
    return html.unescape(found.group(1)) if found else ""


# -- who may use it -----------------------------------------------------------------------------------------------

def test_someone_not_signed_in_is_refused(client: TestClient) -> None:
    client.cookies.clear()
    assert client.get("/request/Database").status_code == 401
    assert client.post("/request/Database", data=DATABASE_ANSWERS).status_code == 401
    assert client.get("/request/Database", headers=HTML, follow_redirects=False).headers["location"].startswith(
        "/signin?")


def test_without_sign_in_settings_the_form_says_it_needs_them(platform_repo: PlatformRepo, tmp_path: Path) -> None:
    settings = Settings.from_env({"PAVED_DATA_DIR": str(tmp_path / "data")})
    source = PlatformSource(REPO, platform_repo.root, tmp_path / "index.sqlite")
    with TestClient(app_for(settings, source, None)) as open_client:
        page = open_client.get("/request/Database")
        assert page.status_code == 403 and "needs you to sign in" in page.text
        assert open_client.post("/request/Database", data=DATABASE_ANSWERS).status_code == 403


def test_a_post_without_the_sessions_csrf_token_is_refused(client: TestClient) -> None:
    form_page(client)
    refused = client.post("/request/Database", data=DATABASE_ANSWERS, headers=HTML)
    assert refused.status_code == 403 and "This form has expired" in refused.text
    forged = client.post("/request/Database", data={**DATABASE_ANSWERS, "csrf": "x" * 43}, headers=HTML)
    assert forged.status_code == 403


def test_a_csrf_token_from_another_session_is_refused(client: TestClient) -> None:
    page = form_page(client, "erin")
    token = csrf_of(page)
    form_page(client, "rita")
    assert client.post("/request/Database", data={**DATABASE_ANSWERS, "csrf": token}).status_code == 403


# -- the form -----------------------------------------------------------------------------------------------------

def test_the_form_is_made_from_the_kinds_schema_with_the_catalogues_teams(client: TestClient) -> None:
    page = form_page(client)
    assert '<select id="field-metadata-owner" name="/metadata/owner"' in page
    assert '<option value="payments">payments</option>' in page and '<option value="data">data</option>' in page
    assert 'name="/spec/backups/retentionDays" type="number"' in page
    assert '<legend>Backups <span class="required"' in page
    assert 'placeholder="payments-db"' in page


def test_an_unknown_kind_is_not_found(client: TestClient) -> None:
    form_page(client)
    assert client.get("/request/Nonsense", headers=HTML).status_code == 404


def test_validation_errors_are_shown_at_their_fields(client: TestClient) -> None:
    page = form_page(client)
    answers = {**DATABASE_ANSWERS, "/metadata/name": "Orders DB", "/spec/backups/retentionDays": "ninety",
               "/spec/service": "no-such-service", "csrf": csrf_of(page)}
    checked = client.post("/request/Database", data=answers, headers=HTML)
    assert checked.status_code == 422
    assert "metadata.name" in errors_at(checked.text, "/metadata/name")
    assert "retentionDays" in errors_at(checked.text, "/spec/backups/retentionDays")
    assert "no-such-service" in errors_at(checked.text, "/spec/service")
    assert not errors_at(checked.text, "/spec/size")
    # What was typed is shown again, as text.
    assert 'value="Orders DB"' in checked.text and 'id="open"' not in checked.text


def test_a_name_the_catalogue_has_already_is_an_error_at_the_name(client: TestClient) -> None:
    page = form_page(client)
    checked = client.post("/request/Database", data={**DATABASE_ANSWERS, "/metadata/name": "checkout-db",
                                                     "csrf": csrf_of(page)}, headers=HTML)
    assert checked.status_code == 422 and "checkout-db" in errors_at(checked.text, "/metadata/name")


def test_a_good_request_shows_its_file_and_plan_and_the_button_to_open_it(client: TestClient) -> None:
    page = form_page(client)
    hostile = "Keeps orders.\nkind: Team\n{{ 7 * 7 }} <script>alert(1)</script>"
    checked = client.post("/request/Database", data={**DATABASE_ANSWERS, "/metadata/description": hostile,
                                                     "csrf": csrf_of(page)}, headers=HTML)
    assert checked.status_code == 200, errors_at(checked.text, "/metadata/description")
    assert "<script>alert" not in checked.text and "{{ 7 * 7 }}" in html.unescape(checked.text)
    text = html.unescape(re.search(r'<pre class="snippet" tabindex="0" id="file"><code>(.*?)</code>',
                                   checked.text, re.S).group(1))  # type: ignore[union-attr]
    assert text.startswith("# yaml-language-server: $schema=../../schemas/kinds/database.json\n")
    loaded = load("catalog/databases/orders-db.yaml", text.encode())
    assert loaded.documents[0].data["metadata"]["description"] == hostile
    plan = html.unescape(re.search(r'id="plan"><code>(.*?)</code>', checked.text, re.S).group(1))  # type: ignore[union-attr]
    assert "Database/orders-db" in plan and "+" in plan
    assert 'id="open"' in checked.text and "Open the pull request as erin" in checked.text


def test_someone_who_may_only_read_is_told_to_use_a_fork(client: TestClient) -> None:
    page = form_page(client, "rita")
    checked = client.post("/request/Database", data={**DATABASE_ANSWERS, "csrf": csrf_of(page)}, headers=HTML)
    assert checked.status_code == 200 and 'id="no-push"' in checked.text and 'id="open"' not in checked.text


def test_confirming_sends_the_person_to_github_with_a_one_time_state(client: TestClient) -> None:
    page = form_page(client)
    checked = client.post("/request/Database", data={**DATABASE_ANSWERS, "csrf": csrf_of(page)}, headers=HTML)
    action = re.search(r'action="(/requests/[^"]+/open)"', checked.text).group(1)  # type: ignore[union-attr]
    assert client.post(action, data={}, headers=HTML).status_code == 403  # no CSRF token: refused
    sent = client.post(action, data={"csrf": csrf_of(checked.text)}, headers=HTML, follow_redirects=False)
    assert sent.status_code == 303
    location = httpx.URL(sent.headers["location"])
    assert location.params["redirect_uri"] == "http://127.0.0.1/request/callback"
    request_id = action.split("/")[2]
    assert location.params["state"].startswith(request_id + ".")
    # A made-up state for the same request is refused, and the session never holds a token.
    refused = client.get("/request/callback", params={"code": "x", "state": request_id + ".guessed"}, headers=HTML)
    assert refused.status_code == 400


def test_a_kept_request_is_only_its_persons(client: TestClient, tmp_path: Path) -> None:
    page = form_page(client)
    checked = client.post("/request/Database", data={**DATABASE_ANSWERS, "csrf": csrf_of(page)}, headers=HTML)
    shown = re.search(r'action="(/requests/[^"]+)/open"', checked.text).group(1)  # type: ignore[union-attr]
    assert client.get(shown, headers=HTML).status_code == 200
    form_page(client, "rita")
    assert client.get(shown, headers=HTML).status_code == 404


def test_answers_too_large_are_refused_before_they_are_read(client: TestClient) -> None:
    form_page(client)
    answer = client.post("/request/Database", content=b"a=" + b"x" * 70_000, headers={
        **HTML, "Content-Type": "application/x-www-form-urlencoded"})
    assert answer.status_code == 413 and "Traceback" not in answer.text


def test_answers_that_are_not_utf8_are_a_bad_request(client: TestClient) -> None:
    form_page(client)
    answer = client.post("/request/Database", content=b"csrf=\xff\xfe", headers={
        **HTML, "Content-Type": "application/x-www-form-urlencoded"})
    assert answer.status_code == 400 and "Traceback" not in answer.text


# -- opening the pull request as the person, on the sandbox forge -------------------------------------------------

@pytest.fixture
def forge(tmp_path: Path) -> Iterator[Sandbox]:
    with Sandbox.start(tmp_path / "forge") as sandbox:
        yield sandbox


def test_the_pull_request_is_opened_as_the_person_and_a_second_run_opens_nothing_more(
        forge: Sandbox, platform_repo: PlatformRepo, tmp_path: Path) -> None:
    from bot.adapters.github import person_forge

    alice = forge.create_user("alice")
    erin = forge.create_user("erin")
    forge.create_org("acme", owners=["alice"])
    forge.create_repo_from_folder("acme", "platform", platform_repo.root, owner_token=alice.token, private=True)
    forge.add_collaborator("acme", "platform", "erin", "write")
    text = "# yaml-language-server: $schema=../../schemas/kinds/database.json\napiVersion: paved/v1\n"
    pending = PendingRequest("r" * 24, "erin", "Database", "orders-db", "catalog/databases/orders-db.yaml", text,
                             "main", "0" * 40, int(time.time()))
    first = open_as_person(person_forge(forge.api_url, erin.token), REPO, pending)
    again = open_as_person(person_forge(forge.api_url, erin.token), REPO, pending)
    assert again.number == first.number and first.author == "erin"
    assert first.head_ref == pending.branch and first.base_ref == "main"
    assert forge.read_file("acme", "platform", pending.path, ref=pending.branch).decode() == text
    assert "```yaml\n" + text in first.body


def test_kept_requests_expire_and_ids_are_never_paths(tmp_path: Path) -> None:
    now = [1_000_000.0]
    kept = PendingRequests(tmp_path / "requests", clock=lambda: now[0])
    pending = PendingRequest("a" * 24, "erin", "Database", "x", "catalog/databases/x.yaml", "", "main", "0",
                             int(now[0]))
    kept.save(pending)
    assert kept.load("a" * 24) == pending
    assert kept.load("../" + "a" * 24) is None
    now[0] += 25 * 3600
    assert kept.load("a" * 24) is None


def test_the_real_sign_in_opens_the_pull_request(forge: Sandbox, platform_repo: PlatformRepo, tmp_path: Path) -> None:
    """The whole flow over HTTP: sign in, fill in, check, confirm, GitHub's OAuth page, the pull request."""
    alice = forge.create_user("alice")
    forge.create_user("erin")
    forge.create_org("acme", owners=["alice"])
    forge.create_repo_from_folder("acme", "platform", platform_repo.root, owner_token=alice.token, private=True)
    forge.add_collaborator("acme", "platform", "erin", "write")
    app = forge.create_app("acme", "paved", permissions={"metadata": "read", "contents": "write",
                                                         "pull_requests": "write"})
    forge.install_app(app.id, "acme")
    settings = settings_for(tmp_path, github_api_url=forge.api_url, github_app_id=str(app.id),
                            github_private_key=Secret(app.private_key), github_client_id=app.client_id,
                            github_client_secret=Secret(forge.create_client_secret(app.id)))
    source = PlatformSource(REPO, platform_repo.root, tmp_path / "index.sqlite")
    site = FastAPI()
    signin = SignIn(settings, REPO)
    signin.install(site)
    site.include_router(RequestForm(settings, source, signin).router())
    with serving(site) as url, httpx.Client(follow_redirects=True, timeout=20) as browser:
        forge.set_callback_urls(app.id, [url + "/oauth/callback", url + "/request/callback"])

        def through_github(page: httpx.Response) -> httpx.Response:
            assert str(page.url).startswith(forge.url + "/login/oauth/authorize"), page.url
            return browser.post(forge.url + "/login/oauth/authorize", headers=HTML,
                                data={**dict(page.url.params), "login": "erin"})

        page = through_github(browser.get(url + "/request/Database", headers=HTML))
        assert page.status_code == 200 and "Request a new Database" in page.text
        checked = browser.post(url + "/request/Database", data={**DATABASE_ANSWERS, "csrf": csrf_of(page.text)},
                               headers=HTML)
        assert checked.status_code == 200, checked.text
        action = re.search(r'action="(/requests/[^"]+/open)"', checked.text).group(1)  # type: ignore[union-attr]
        done = through_github(browser.post(url + action, data={"csrf": csrf_of(checked.text)}, headers=HTML))
        assert done.status_code == 200 and 'id="pull-request"' in done.text, done.text
        pulls = httpx.get(f"{forge.api_url}/repos/acme/platform/pulls", headers={
            "Authorization": f"Bearer {alice.token}"}).json()
        assert [(p["user"]["login"], p["title"]) for p in pulls] == [("erin", "Request Database orders-db")]
        # The session still holds no GitHub credential: who signed in, when, and the form's CSRF token.
        assert set(read_session(browser.cookies[COOKIE], SESSION_KEY)) == {"login", "since", "checked", "read", "csrf"}
