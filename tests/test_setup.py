"""`paved setup` registers Paved's GitHub App through GitHub's manifest flow, against the sandbox forge.

The sandbox serves GitHub Enterprise's layout (web at `http://HOST`, API at `http://HOST/api/v3`), so every
flow here runs with GHES-style URLs. The browser is httpx, doing what a browser does with the pages: open the
local page, submit its form to the forge, press the confirming button there, follow the redirect back.
"""

from __future__ import annotations

import html
import os
import re
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urljoin

import httpx
import pytest
from github import Auth, Github, GithubIntegration

from bot.adapters.metrics import KNOWN_EVENTS
from bot.app_manifest import EVENTS, PERMISSIONS, GitHubHost, default_permissions, manifest
from bot.cli import main
from bot.errors import UsageError
from bot.sandbox import Sandbox
from bot.settings import Settings, environment, read_env_file
from bot.web.setup import Registration, SetupServer
from bot.webhook import signature
from tests.conftest import PROJECT
from tests.sandbox.conftest import Receiver
from tests.test_service_settings import loaded_by_adding_commands

SECRET_VARIABLES = ("PAVED_GITHUB_PRIVATE_KEY", "PAVED_WEBHOOK_SECRET", "PAVED_GITHUB_CLIENT_SECRET",
                    "PAVED_SESSION_SECRET")


@pytest.fixture
def forge(tmp_path: Path) -> Iterator[Sandbox]:
    with Sandbox.start(tmp_path / "forge") as sandbox:
        sandbox.create_user("alice")
        sandbox.create_user("bob")
        sandbox.create_org("acme", owners=["alice"], members=["bob"])
        yield sandbox


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    hooks = Receiver()
    yield hooks
    hooks.close()


def hidden_fields(page: str) -> dict[str, str]:
    return {name: html.unescape(value)
            for name, value in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page)}


def form_action(page: str) -> str:
    found = re.search(r'<form method="post" action="([^"]+)"', page)
    assert found, page
    return html.unescape(found[1])


def register_as(browser: httpx.Client, page_url: str, login: str) -> str:
    """Open paved setup's page, submit its form to GitHub, confirm there as `login`; where GitHub sends back to."""
    page = browser.get(page_url + "/")
    assert page.status_code == 200, page.text
    action = form_action(page.text)
    confirm = browser.post(action, data=hidden_fields(page.text))
    assert confirm.status_code == 200, confirm.text
    back = browser.post(urljoin(action, form_action(confirm.text)), data={**hidden_fields(confirm.text),
                                                                          "login": login})
    assert back.status_code == 302, back.text
    location: str = back.headers["location"]
    assert location.startswith(page_url + "/callback?")
    return location


def test_paved_setup_registers_the_app_and_paved_signs_in_with_what_it_wrote(
        tmp_path: Path, forge: Sandbox, receiver: Receiver) -> None:
    output = tmp_path / "secrets" / "paved.env"
    webhook_url = receiver.url.replace("/hooks", "/webhooks/github")
    command = [sys.executable, "-m", "bot.cli", "setup", "--github-url", forge.url, "--org", "acme",
               "--webhook-url", webhook_url, "--output", str(output), "--catalogue-repo", "acme/platform"]
    process = subprocess.Popen(command, cwd=PROJECT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "PAVED_DATA_DIR": str(tmp_path / "data")})
    try:
        assert process.stdout is not None
        opened = re.search(r"Open (http://127\.0\.0\.1:\d+)/ in a browser", process.stdout.readline())
        assert opened, process.stderr.read() if process.stderr else ""
        with httpx.Client(timeout=10, follow_redirects=False) as browser:
            done = browser.get(register_as(browser, opened[1], "alice"))
        printed, logged = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
    assert done.status_code == 200, done.text
    assert "paved-acme" in done.text
    assert process.returncode == 0, logged
    assert stat.S_IMODE(output.stat().st_mode) == 0o600
    written = read_env_file(output)
    for name in SECRET_VARIABLES:  # never printed, logged nor shown
        assert written[name] and written[name] not in printed + logged + done.text
    assert f"Its credentials are in {output}" in printed
    assert "/apps/paved-acme" in printed
    settings = Settings.from_env(environment({"PAVED_ENV_FILE": str(output), "HOME": str(tmp_path)}))
    assert (settings.github_api_url, settings.catalogue_repo) == (forge.api_url, "acme/platform")
    assert settings.public_url == webhook_url.removesuffix("/webhooks/github")
    settings.check_service("serve")  # nothing missing: the App, the webhook's secret, sign-in
    key = settings.private_key()
    assert key is not None and settings.github_app_id is not None
    # The credentials work: the App's JWT gets an installation token once it is installed.
    forge.install_app(int(settings.github_app_id), "acme")
    integration = GithubIntegration(auth=Auth.AppAuth(int(settings.github_app_id), key.reveal()),
                                    base_url=settings.github_api_url)
    installation = next(iter(integration.get_installations()))
    assert installation.raw_data["account"]["login"] == "acme"
    token = integration.get_access_token(installation.id).token
    client = Github(base_url=forge.api_url, auth=Auth.Token(token), retry=None)
    assert client.get_organization("acme").login == "acme"
    # The webhook's secret is the one GitHub signs deliveries with.
    forge.wait_for_deliveries()
    ping = receiver.events("ping")[0]
    assert settings.webhook_secret is not None
    assert ping.headers["X-Hub-Signature-256"] == signature(settings.webhook_secret.reveal(), ping.body)


@pytest.fixture
def setup_page(tmp_path: Path, forge: Sandbox) -> Iterator[SetupServer]:
    server = SetupServer(Registration(host=GitHubHost.parse(forge.url), output=tmp_path / "paved.env"))
    yield server
    server.stop()


@pytest.mark.parametrize("state", ["", "forged-state"], ids=["missing", "another"])
def test_an_answer_without_the_state_the_page_sent_is_refused_and_its_code_left_unspent(
        forge: Sandbox, setup_page: SetupServer, state: str) -> None:
    with httpx.Client(timeout=10, follow_redirects=False) as browser:
        back = httpx.URL(register_as(browser, setup_page.url, "bob"))
        refused = browser.get(back.copy_set_param("state", state) if state else back.copy_remove_param("state"))
    assert refused.status_code == 400
    assert "did not come from its form" in refused.text
    assert not setup_page.flow.registration.output.exists()
    assert not setup_page.flow.done.is_set()
    code = back.params["code"]
    assert httpx.post(f"{forge.api_url}/app-manifests/{code}/conversions", timeout=10).status_code == 201


def test_the_callback_writes_the_credentials_once(forge: Sandbox, setup_page: SetupServer) -> None:
    with httpx.Client(timeout=10, follow_redirects=False) as browser:
        back = register_as(browser, setup_page.url, "bob")
        assert browser.get(back).status_code == 200
        assert browser.get(back).status_code == 409
    registered = setup_page.wait(timeout=0)
    assert (registered.slug, registered.output) == ("paved", setup_page.flow.registration.output)
    assert read_env_file(registered.output)["PAVED_GITHUB_APP_ID"] == str(registered.app_id)


def test_the_page_answers_only_requests_addressed_to_this_machine(setup_page: SetupServer) -> None:
    answer = httpx.get(setup_page.url + "/", headers={"Host": "attacker.example"}, timeout=10)
    assert answer.status_code == 400
    assert setup_page.flow.state not in answer.text


def test_the_page_posts_the_manifest_to_the_organizations_new_app_form(tmp_path: Path) -> None:
    registration = Registration(host=GitHubHost.parse("https://ghe.acme.example"), output=tmp_path / "paved.env",
                                org="acme", webhook_url="https://paved.acme.example/webhooks/github")
    server = SetupServer(registration)
    try:
        page = httpx.get(server.url + "/", timeout=10)
    finally:
        server.stop()
    assert form_action(page.text) == f"https://ghe.acme.example/organizations/acme/settings/apps/new?state=" \
                                     f"{server.flow.state}"
    assert "form-action https://ghe.acme.example" in page.headers["content-security-policy"]
    assert page.headers["referrer-policy"] == "no-referrer"
    sent = hidden_fields(page.text)["manifest"]
    assert '"redirect_url": "' + server.url + '/callback"' in sent
    assert ('"callback_urls": ["https://paved.acme.example/oauth/callback", '
            '"https://paved.acme.example/request/callback"]') in sent


@pytest.mark.parametrize(("given", "web", "api"), [
    ("https://github.com", "https://github.com", "https://api.github.com"),
    ("https://api.github.com/", "https://github.com", "https://api.github.com"),
    ("https://ghe.acme.example", "https://ghe.acme.example", "https://ghe.acme.example/api/v3"),
    ("https://ghe.acme.example:8443/api/v3/", "https://ghe.acme.example:8443", "https://ghe.acme.example:8443/api/v3"),
    ("https://acme.ghe.com", "https://acme.ghe.com", "https://api.acme.ghe.com"),
    ("http://127.0.0.1:9000", "http://127.0.0.1:9000", "http://127.0.0.1:9000/api/v3"),
])
def test_github_is_found_on_github_com_enterprise_server_and_ghe_com(given: str, web: str, api: str) -> None:
    assert GitHubHost.parse(given) == GitHubHost(web, api)


@pytest.mark.parametrize("given", ["http://ghe.acme.example", "ftp://ghe.acme.example", "https://ghe.acme.example/x",
                                   "https://user:pw@ghe.acme.example"])
def test_a_github_url_that_cannot_be_githubs_is_refused(given: str) -> None:
    with pytest.raises(UsageError, match="--github-url"):
        GitHubHost.parse(given)


def test_the_manifest_asks_for_exactly_the_permissions_and_events_paved_uses() -> None:
    found = manifest(name="Paved", redirect_url="http://127.0.0.1:1/callback", homepage="https://paved.example",
                     webhook_url="https://paved.example/webhooks/github", public_url="https://paved.example")
    assert found["default_permissions"] == {p.name: p.level for p in PERMISSIONS}
    assert found["default_events"] == [name for name, _ in EVENTS]
    assert found["hook_attributes"] == {"url": "https://paved.example/webhooks/github", "active": True}
    assert found["public"] is False


def test_every_event_the_app_subscribes_to_is_one_paved_counts_by_name() -> None:
    assert {name for name, _ in EVENTS} <= KNOWN_EVENTS


def test_without_a_webhook_the_app_has_no_webhook_nor_events() -> None:
    found = manifest(name="Paved", redirect_url="http://127.0.0.1:1/callback", homepage="https://github.com/acme")
    assert "hook_attributes" not in found and "default_events" not in found and "callback_urls" not in found


def test_the_readme_lists_exactly_the_permissions_the_app_asks_for() -> None:
    readme = (PROJECT / "README.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| `([a-z_]+)` \| (read|write|admin) \| (repository|organization) \|", readme, re.M)
    assert {name: level for name, level, _ in rows} == default_permissions()
    assert {name: scope for name, _, scope in rows} == {p.name: p.scope for p in PERMISSIONS}


def test_setup_refuses_an_existing_env_file_before_serving_anything(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    existing = tmp_path / "paved.env"
    existing.write_text("PAVED_GITHUB_APP_ID=1\n")
    assert main(["setup", "--output", str(existing)]) == 2
    said = capsys.readouterr()
    assert f"{existing} exists already" in said.err and "--force" in said.err
    assert "Open http" not in said.out
    assert existing.read_text() == "PAVED_GITHUB_APP_ID=1\n"


@pytest.mark.parametrize(("option", "value", "refusal"), [
    ("--org", "-acme", "is not a GitHub organization's name"),
    ("--webhook-url", "http://paved.example/webhooks/github", "must be https"),
    ("--name", "x" * 35, "1 to 34 characters"),
    ("--catalogue-repo", "platform", "is not OWNER/NAME"),
])
def test_setup_refuses_options_that_cannot_work(tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str,
                                                value: str, refusal: str) -> None:
    assert main(["setup", "--output", str(tmp_path / "paved.env"), f"{option}={value}"]) == 2
    assert refusal in capsys.readouterr().err


def test_the_setup_command_loads_fastapi_and_uvicorn_only_when_it_runs() -> None:
    assert loaded_by_adding_commands("bot.web.setup", ("fastapi", "uvicorn", "starlette", "requests")) == []
