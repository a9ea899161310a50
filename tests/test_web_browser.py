"""The catalogue in a real browser: headless Chromium, driven through Selenium, on loopback.

The sandbox forge holds acme's private platform repo (Paved's bundled catalogue); Paved's service runs in
this process with its queue consumers and sign-in settings, applies the catalogue after a push, and
serves the pages. Chromium signs in through the forge's OAuth page as someone who may read the repo and
as someone who may not, then navigates, filters by kind, searches, opens a resource and its history, and
signs out. Screenshots of the home and a resource page are decoded here (zlib and struct, no imaging
library) and must not be blank.

These tests need Debian's `chromium` and `chromium-driver` (`apt-get install -y chromium chromium-driver`;
`.ci/run` installs them). Without them the tests are skipped with that advice, except in CI (`CI=true`),
where they fail.
"""

from __future__ import annotations

import dataclasses
import shutil
import struct
import time
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from bot.adapters.deliveries import open_delivery_log
from bot.adapters.queue import make_queue
from bot.sandbox import Sandbox
from bot.settings import Secret, Settings
from bot.web.app import create_app
from bot.web.jobs import handle_delivery, reconcile
from bot.web.signin import COOKIE, sign_session
from tests.conftest import PROJECT, missing, serving

INSTALL = "apt-get install -y chromium chromium-driver"
WEBHOOK_SECRET = "a-webhook-secret-for-the-browser-tests"
SESSION_SECRET = "a-session-secret-for-the-browser-tests"
READER, OUTSIDER = "rita", "mallory"
WAIT = 30  # seconds a page may take to show what is expected


def _browser() -> tuple[str, str]:
    """Chromium and its driver, or the test is skipped (failed in CI) with how to install them."""
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if chromium and driver:
        try:
            import selenium  # noqa: F401 - only asking whether it is there
        except ImportError:
            problem = "the selenium package is missing (`.venv/bin/pip install -e '.[dev]'`)"
        else:
            return chromium, driver
    else:
        problem = f"Debian's chromium and chromium-driver are not installed; install them with `{INSTALL}`"
    missing(f"the browser tests cannot run: {problem}", "They run in CI, which installs the browser.")


# -- the platform: forge, Paved's service and an applied catalogue ------------------------------------------

@dataclass
class Platform:
    forge: Sandbox
    url: str
    settings: Settings


def _people(seed: Path) -> list[str]:
    from bot.yamlio import load

    logins: set[str] = set()
    for path in sorted((seed / "catalog" / "teams").glob("*.yaml")):
        for doc in load(path.name, path.read_bytes()).documents:
            spec = (doc.data or {}).get("spec") or {} if isinstance(doc.data, dict) else {}
            logins.update(p for key in ("members", "maintainers") for p in spec.get(key) or [])
    return sorted(logins - {"alice"})


def _paved(settings: Settings) -> FastAPI:
    """Paved's app (the real `create_app`: webhooks, catalogue, sign-in; two consumer threads)."""
    deliveries = open_delivery_log(settings)
    queue = make_queue(settings, deliveries, handle_delivery, reconcile)
    return create_app(settings, queue, deliveries, consumers=2)


def _wait_until_applied(forge: Sandbox, token: str, platform_url: str) -> None:
    """The push's `paved/apply` check has succeeded and the catalogue shows applied resources."""
    head = forge.branch_sha("acme", "platform", "main")
    deadline = time.monotonic() + 180
    api = httpx.Client(base_url=forge.api_url, headers={"Authorization": f"Bearer {token}"}, timeout=10)
    # A session as the reader's own sign-in would make, to read the page while waiting.
    site = httpx.Client(base_url=platform_url, timeout=10, cookies={COOKIE: sign_session(
        {"login": READER, "since": int(time.time()), "checked": int(time.time()), "read": True}, SESSION_SECRET)})
    with api, site:
        while True:
            runs = api.get(f"/repos/acme/platform/commits/{head}/check-runs",
                           params={"check_name": "paved/apply"}).json()["check_runs"]
            if runs and runs[0]["status"] == "completed":
                assert runs[0]["conclusion"] == "success", runs[0]["output"]
                if "status-applied" in site.get("/").text:
                    return
            assert time.monotonic() < deadline, "the catalogue was not applied within 180 s"
            time.sleep(0.25)


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    _browser()
    folder = tmp_path_factory.mktemp("browser")
    seed = folder / "seed"
    for name in ("catalog", "schemas", "templates"):
        shutil.copytree(PROJECT / name, seed / name)
    with pytest.MonkeyPatch.context() as env:
        # What the suite's autouse fixture does per test, for this module's shared platform.
        env.setenv("HOME", str(folder / "home"))
        env.setenv("GIT_CONFIG_NOSYSTEM", "1")
        for name in ("GIT_DIR", "GIT_WORK_TREE", "XDG_DATA_HOME"):
            env.delenv(name, raising=False)
        with Sandbox.start(folder / "forge") as forge:
            people = _people(seed)
            for login in ("alice", *people, READER, OUTSIDER):
                forge.create_user(login)
            forge.create_org("acme", owners=["alice"], members=people)
            alice = forge.create_token("alice")
            forge.create_repo_from_folder("acme", "platform", seed, owner_token=alice, private=True)
            for login in people:
                forge.add_collaborator("acme", "platform", login, "write")
            forge.add_collaborator("acme", "platform", READER, "read")
            app = forge.create_app("acme", "paved", permissions={
                "checks": "write", "contents": "write", "issues": "write", "pull_requests": "write",
                "metadata": "read", "administration": "write", "members": "write", "secrets": "write",
                "organization_custom_properties": "admin"})
            forge.install_app(app.id, "acme")
            settings = dataclasses.replace(
                Settings.from_env({"PAVED_DATA_DIR": str(folder / "paved"), "PAVED_RECONCILE_MINUTES": "0",
                                   "PAVED_CATALOGUE_REPO": "acme/platform"}),
                github_api_url=forge.api_url, github_app_id=str(app.id), github_private_key=Secret(app.private_key),
                webhook_secret=Secret(WEBHOOK_SECRET), github_client_id=app.client_id,
                github_client_secret=Secret(forge.create_client_secret(app.id)),
                session_secret=Secret(SESSION_SECRET))
            with serving(_paved(settings), start_seconds=30) as url:
                forge.set_app_webhook(app.id, url + "/webhooks/github", WEBHOOK_SECRET)
                forge.set_callback_urls(app.id, [url + "/oauth/callback", url + "/request/callback"])
                forge.push_files("acme", "platform", "main", {"catalog/README.md": "Requests live here.\n"},
                                 by="alice", message="Say where requests live")
                _wait_until_applied(forge, alice, url)
                yield Platform(forge, url, settings)


# -- the browser ------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def chromium(platform: Platform) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary, driver_path = _browser()
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    # --no-sandbox: CI runs as root, where Chromium's sandbox cannot start.
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--window-size=1280,1000", "--lang=en-GB", "--no-first-run"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.set_page_load_timeout(WAIT)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def browser(chromium: Any) -> Any:
    """The module's Chromium with no cookies left from the test before."""
    chromium.execute_cdp_cmd("Network.clearBrowserCookies", {})
    return chromium


def wait_for(browser: Any, css: str) -> Any:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, WAIT).until(expected_conditions.presence_of_element_located((By.CSS_SELECTOR, css)))


def follow(browser: Any, element: Any, css: str, *, submit: bool = False) -> Any:
    """Click `element` (or submit its form) and wait for the next page's `css`: the old page may hold
    `css` too, so first wait until the element is gone with its page."""
    from selenium.webdriver.support.ui import WebDriverWait

    if submit:
        element.submit()
    else:
        element.click()
    WebDriverWait(browser, WAIT).until(lambda _: gone(element))
    return wait_for(browser, css)


def gone(element: Any) -> bool:
    """Whether `element`'s page has been replaced. Selenium's `staleness_of` knows only the stale-element
    error; Chromium may instead answer that the node no longer belongs to the document, which is the
    same news, when asked in the moment the next page replaces it."""
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException

    try:
        element.is_enabled()
    except StaleElementReferenceException:
        return True
    except WebDriverException as exc:
        if "does not belong to the document" in (exc.msg or ""):
            return True
        raise
    return False


def find(browser: Any, css: str) -> Any:
    from selenium.webdriver.common.by import By

    return browser.find_element(By.CSS_SELECTOR, css)


def find_all(browser: Any, css: str) -> list[Any]:
    from selenium.webdriver.common.by import By

    return list(browser.find_elements(By.CSS_SELECTOR, css))


def sign_in(browser: Any, platform: Platform, login: str, path: str = "/") -> None:
    """Open a page, get sent to the forge's sign-in page, and sign in there as `login`."""
    browser.get(platform.url + path)
    button = wait_for(browser, f"#login-{login}")
    assert browser.current_url.startswith(platform.forge.url + "/login/oauth/authorize?")
    follow(browser, button, "main h1")


def rows(browser: Any) -> list[dict[str, str]]:
    """The resources table as the visitor reads it (read in one script: a WebDriver call per cell is slow)."""
    cells = browser.execute_script(
        "return Array.from(document.querySelectorAll('table.resources tbody tr'))"
        ".map(row => Array.from(row.querySelectorAll('th, td')).map(cell => cell.innerText.trim()));")
    return [dict(zip(("name", "kind", "owner", "tier", "status"), row, strict=False)) for row in cells]


# -- screenshots --------------------------------------------------------------------------------------------------

def png_pixels(png: bytes) -> list[bytes]:
    """The pixels of an 8-bit RGB or RGBA PNG (what Chromium writes), as one `bytes` per pixel."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    position, chunks, header = 8, [], b""
    while position < len(png):
        length, kind = struct.unpack(">I4s", png[position:position + 8])
        data = png[position + 8:position + 8 + length]
        position += 12 + length
        if kind == b"IHDR":
            header = data
        elif kind == b"IDAT":
            chunks.append(data)
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert depth == 8 and colour in (2, 6) and interlace == 0, (depth, colour, interlace)
    size = 3 if colour == 2 else 4
    stride = width * size
    raw = zlib.decompress(b"".join(chunks))
    previous = bytes(stride)
    pixels: list[bytes] = []
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        if kind == 1:  # Sub
            for i in range(size, stride):
                line[i] = (line[i] + line[i - size]) & 0xFF
        elif kind == 2:  # Up
            line = bytearray((a + b) & 0xFF for a, b in zip(line, previous, strict=True))
        elif kind == 3:  # Average
            for i in range(stride):
                left = line[i - size] if i >= size else 0
                line[i] = (line[i] + ((left + previous[i]) >> 1)) & 0xFF
        elif kind == 4:  # Paeth
            for i in range(stride):
                a = line[i - size] if i >= size else 0
                b, c = previous[i], previous[i - size] if i >= size else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        previous = bytes(line)
        pixels += [previous[i:i + size] for i in range(0, stride, size)]
    return pixels


def assert_not_blank(path: Path) -> None:
    """A screenshot shows a page: many colours, and no one colour covering nearly all of it."""
    pixels = png_pixels(path.read_bytes())
    colours = Counter(pixels)
    assert len(colours) >= 16, f"{path.name} has only {len(colours)} colours"
    assert colours.most_common(1)[0][1] < 0.97 * len(pixels), f"{path.name} is nearly one colour"


# -- the tests ----------------------------------------------------------------------------------------------------

def test_a_reader_signs_in_with_github_and_sees_the_catalogue(browser: Any, platform: Platform,
                                                              tmp_path: Path) -> None:
    sign_in(browser, platform, READER)
    assert browser.current_url == platform.url + "/"
    assert find(browser, "main h1").text == "Resources"
    shown = rows(browser)
    assert len(shown) > 5 and {"Team", "Service"} <= {r["kind"] for r in shown}
    assert "applied" in {r["status"] for r in shown}
    home = tmp_path / "home.png"
    assert browser.save_screenshot(str(home))
    assert_not_blank(home)


def test_someone_without_read_access_sees_a_page_saying_so(browser: Any, platform: Platform) -> None:
    sign_in(browser, platform, OUTSIDER, "/resources/Team/payments")
    assert find(browser, "main h1").text == "No access to the catalogue"
    text = find(browser, "main").text
    assert OUTSIDER in text and "acme/platform" in text
    assert not find_all(browser, "table.resources")
    assert follow(browser, find(browser, "#signout"), "main h1").text == "Signed out"


def test_filtering_by_kind_and_searching(browser: Any, platform: Platform) -> None:
    from selenium.webdriver.support.ui import Select

    sign_in(browser, platform, READER)
    everything = rows(browser)
    Select(find(browser, "select#kind")).select_by_value("Service")
    follow(browser, find(browser, "form.filters button[type=submit]"), "p.count")
    assert "kind=Service" in browser.current_url
    services = rows(browser)
    assert services and {r["kind"] for r in services} == {"Service"}
    assert len(services) == sum(r["kind"] == "Service" for r in everything)

    browser.get(platform.url + "/")
    search = wait_for(browser, "input#q")
    search.send_keys("payments")
    follow(browser, search, "p.count", submit=True)
    assert "q=payments" in browser.current_url
    found = rows(browser)
    assert found and len(found) < len(everything)
    assert all("payments" in (r["name"] + r["owner"]) for r in found)


def test_opening_a_resource_and_its_history(browser: Any, platform: Platform, tmp_path: Path) -> None:
    sign_in(browser, platform, READER, "/?kind=Service")
    link = find(browser, "table.resources tbody tr th a")
    name = link.text
    link.click()
    wait_for(browser, "#history-heading")
    assert browser.current_url == f"{platform.url}/resources/Service/{name}"
    assert name in find(browser, "main h1").text
    history = find_all(browser, "table.history tbody tr")
    assert history, "the history lists no change"
    # The request came with the repository's first commit, by alice, and Paved's first apply applied it.
    first = history[-1].text
    assert "Initial commit" in first and "alice" in first and first.endswith("applied")
    page = tmp_path / "resource.png"
    assert browser.save_screenshot(str(page))
    assert_not_blank(page)


def test_the_header_says_who_is_signed_in_and_signs_out(browser: Any, platform: Platform) -> None:
    sign_in(browser, platform, READER)
    assert f"Signed in as {READER}" in find(browser, "header form.who").text
    assert follow(browser, find(browser, "header form.who button"), "main h1").text == "Signed out"


def test_signing_out_asks_for_sign_in_again(browser: Any, platform: Platform) -> None:
    sign_in(browser, platform, READER)
    browser.get(platform.url + "/signout")
    assert follow(browser, wait_for(browser, "#signout"), "main h1").text == "Signed out"
    browser.get(platform.url + "/")
    wait_for(browser, f"#login-{READER}")
    assert browser.current_url.startswith(platform.forge.url + "/login/oauth/authorize?")


def test_requesting_a_database_with_the_form_opens_a_pull_request_that_paved_plans(browser: Any,
                                                                                 platform: Platform) -> None:
    from selenium.webdriver.support.ui import Select

    requester = "gina"  # in growth, with write access to the platform repo
    sign_in(browser, platform, requester, "/request/Database")
    assert find(browser, "main h1").text == "Request a new Database"
    find(browser, "#field-metadata-name").send_keys("experiments-db")
    Select(find(browser, "#field-metadata-owner")).select_by_value("growth")
    find(browser, "#field-metadata-description").send_keys("Keeps the variants of growth's experiments.")
    for pointer, value in (("engine", "postgres"), ("version", "16"), ("size", "small")):
        Select(find(browser, f"#field-spec-{pointer}")).select_by_value(value)
    find(browser, "#field-spec-service").send_keys("ab-testing")
    find(browser, "#field-spec-backups-enabled").click()
    find(browser, "#field-spec-backups-retentionDays").send_keys("99")
    find(browser, "#field-spec-deletionProtection").click()
    # Too long a retention: the error is shown at its field, and nothing can be opened yet.
    error = follow(browser, find(browser, "#check"), "#errors-spec-backups-retentionDays")
    assert "99" in error.text and not find_all(browser, "#open")
    retention = find(browser, "#field-spec-backups-retentionDays")
    retention.clear()
    retention.send_keys("14")
    follow(browser, find(browser, "#check"), "#open")
    assert "Database/experiments-db" in find(browser, "#plan").text
    assert find(browser, "#file").text.startswith("# yaml-language-server: $schema=../../schemas/kinds/database.json")
    # Confirming goes through GitHub's sign-in once more, and comes back to the opened pull request.
    follow(browser, find(browser, "#open"), f"#login-{requester}")
    assert browser.current_url.startswith(platform.forge.url + "/login/oauth/authorize?")
    link = follow(browser, find(browser, f"#login-{requester}"), "#pull-request")
    number = int(link.text.rsplit("#", 1)[1])
    token = platform.forge.create_token("alice")
    api = httpx.Client(base_url=platform.forge.api_url, headers={"Authorization": f"Bearer {token}"}, timeout=10)
    with api:
        pull = api.get(f"/repos/acme/platform/pulls/{number}").json()
        assert pull["user"]["login"] == requester and pull["title"] == "Request Database experiments-db"
        files = api.get(f"/repos/acme/platform/pulls/{number}/files").json()
        assert [f["filename"] for f in files] == ["catalog/databases/experiments-db.yaml"]
        deadline = time.monotonic() + 120
        while True:  # Paved plans it as any other pull request
            comments = api.get(f"/repos/acme/platform/issues/{number}/comments").json()
            plans = [c for c in comments if c["user"]["login"].endswith("[bot]") and "experiments-db" in c["body"]]
            if plans:
                break
            assert time.monotonic() < deadline, "Paved posted no plan on the pull request within 120 s"
            time.sleep(0.25)
