"""The settings of `paved serve` and `paved worker`: read once from the environment, checked before starting.

A service that starts without what it needs fails later and obscurely, so both commands refuse to start
with one message naming every variable that is missing or unsafe. Secrets never show.
"""

from __future__ import annotations

import argparse
import ast
import subprocess
import sys
from pathlib import Path

import pytest

from bot.errors import ConfigurationError
from bot.settings import Secret, Settings
from bot.web.commands import add_commands
from tests.conftest import PROJECT

SECRET = "webhook-secret-for-tests-5f1c9a"
TOKEN = "ghp_" + "T0kenForTests" * 2 + "0123456789"
PEM = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAtests\n-----END RSA PRIVATE KEY-----\n"
SERVICE_VARIABLES = ["PAVED_WEBHOOK_SECRET", "PAVED_GITHUB_APP_ID", "PAVED_GITHUB_PRIVATE_KEY",
                     "PAVED_GITHUB_PRIVATE_KEY_FILE", "PAVED_GITHUB_TOKEN", "PAVED_GITHUB_API_URL", "PAVED_REDIS_URL",
                     "PAVED_QUEUE_NAME", "PAVED_QUEUE_WORKERS", "PAVED_QUEUE_IMMEDIATE", "PAVED_RECONCILE_MINUTES",
                     "PAVED_HOST", "PAVED_PORT", "PAVED_LOG_FORMAT", "PAVED_LOG_LEVEL"]


@pytest.fixture(autouse=True)
def no_service_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the machine's own Paved service settings."""
    for name in SERVICE_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def run_command(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="paved")
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    code: int = args.func(args)
    return code


def refusal(settings: Settings, command: str = "serve") -> str:
    with pytest.raises(ConfigurationError) as refused:
        settings.check_service(command)  # type: ignore[arg-type]
    return refused.value.message


def test_every_service_variable_is_read_from_the_environment(tmp_path: Path) -> None:
    settings = Settings.from_env({
        "PAVED_DATA_DIR": str(tmp_path), "PAVED_WEBHOOK_SECRET": SECRET, "PAVED_GITHUB_APP_ID": "42",
        "PAVED_GITHUB_PRIVATE_KEY_FILE": str(tmp_path / "app.pem"), "PAVED_GITHUB_TOKEN": TOKEN,
        "PAVED_GITHUB_API_URL": "https://github.example.com/api/v3/", "PAVED_REDIS_URL": "redis://queue:6379/2",
        "PAVED_QUEUE_NAME": "paved-staging", "PAVED_QUEUE_WORKERS": "4", "PAVED_QUEUE_IMMEDIATE": "true",
        "PAVED_RECONCILE_MINUTES": "5", "PAVED_HOST": "0.0.0.0", "PAVED_PORT": "9000", "PAVED_LOG_FORMAT": "json",
        "PAVED_LOG_LEVEL": "debug", "PAVED_LEASE_SECONDS": "20"})
    assert settings == Settings(
        data_dir=tmp_path, color=True, github_api_url="https://github.example.com/api/v3",
        github_app_id="42", github_private_key=None, github_private_key_file=tmp_path / "app.pem",
        github_token=Secret(TOKEN), webhook_secret=Secret(SECRET), redis_url=Secret("redis://queue:6379/2"),
        queue_name="paved-staging", queue_workers=4, queue_immediate=True, reconcile_minutes=5, lease_seconds=20,
        host="0.0.0.0", port=9000, log_format="json", log_level="DEBUG")


def test_the_defaults_are_github_com_the_embedded_queue_and_localhost(tmp_path: Path) -> None:
    settings = Settings.from_env({"HOME": str(tmp_path), "NO_COLOR": "1"})
    assert settings.data_dir == tmp_path / ".local" / "share" / "paved"
    assert settings.catalogue_index == settings.data_dir / "catalogue.sqlite"
    assert settings.color is False
    assert (settings.github_api_url, settings.redis_url, settings.host, settings.port) == (
        "https://api.github.com", None, "127.0.0.1", 8000)
    assert (settings.consumer_threads("serve"), settings.consumer_threads("worker")) == (2, 2)
    assert settings.lease_seconds == 60


def test_serve_replicas_run_no_consumer_threads_when_the_queue_is_in_redis_unless_asked(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, redis_url=Secret("redis://queue:6379/0"))
    assert settings.consumer_threads("serve") == 0
    assert Settings(data_dir=tmp_path, redis_url=settings.redis_url, queue_workers=3).consumer_threads("serve") == 3


def test_paved_serve_refuses_to_start_naming_every_missing_variable() -> None:
    with pytest.raises(ConfigurationError) as refused:
        run_command("serve")
    assert refused.value.message == (
        "paved serve cannot start: PAVED_WEBHOOK_SECRET is not set; GitHub credentials are not set: "
        "PAVED_GITHUB_TOKEN, or PAVED_GITHUB_APP_ID with PAVED_GITHUB_PRIVATE_KEY or PAVED_GITHUB_PRIVATE_KEY_FILE")


def test_paved_worker_needs_github_credentials_but_not_the_webhook_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAVED_WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("PAVED_QUEUE_WORKERS", "0")
    with pytest.raises(ConfigurationError) as refused:
        run_command("worker")
    assert "PAVED_WEBHOOK_SECRET" not in refused.value.message
    assert "GitHub credentials are not set" in refused.value.message
    assert "PAVED_QUEUE_WORKERS must be at least 1 for paved worker" in refused.value.message


def test_a_serve_replica_that_only_enqueues_needs_no_github_credentials(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, webhook_secret=Secret(SECRET), redis_url=Secret("redis://queue:6379/0"))
    settings.check_service("serve")


@pytest.mark.parametrize("value", ["changeme", "CHANGEME", "secret", "password", "aaaaaaaaaaaaaaaaaaaaaaaa"])
def test_a_placeholder_webhook_secret_is_refused_without_being_echoed(tmp_path: Path, value: str) -> None:
    message = refusal(Settings(data_dir=tmp_path, webhook_secret=Secret(value), github_token=Secret(TOKEN)))
    assert "PAVED_WEBHOOK_SECRET is a placeholder value" in message
    assert value not in message


def test_a_webhook_secret_shorter_than_16_characters_is_refused_without_being_echoed(tmp_path: Path) -> None:
    message = refusal(Settings(data_dir=tmp_path, webhook_secret=Secret("k3Yb0ard-cat"), github_token=Secret(TOKEN)))
    assert message == "paved serve cannot start: PAVED_WEBHOOK_SECRET is 12 characters long; use at least 16"


def test_a_placeholder_token_is_refused(tmp_path: Path) -> None:
    message = refusal(Settings(data_dir=tmp_path, github_token=Secret("changeme")), "worker")
    assert message == ("paved worker cannot start: PAVED_GITHUB_TOKEN is a placeholder value "
                       "(set the token GitHub issued)")


def test_a_github_app_id_without_its_private_key_is_refused(tmp_path: Path) -> None:
    message = refusal(Settings(data_dir=tmp_path, github_app_id="42"), "worker")
    assert "PAVED_GITHUB_PRIVATE_KEY or PAVED_GITHUB_PRIVATE_KEY_FILE is not set" in message


def test_a_private_key_without_the_app_id_is_refused(tmp_path: Path) -> None:
    message = refusal(Settings(data_dir=tmp_path, github_private_key=Secret(PEM)), "worker")
    assert "PAVED_GITHUB_APP_ID is not set" in message


def test_a_private_key_file_that_cannot_be_read_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.pem"
    message = refusal(Settings(data_dir=tmp_path, github_app_id="42", github_private_key_file=missing), "worker")
    assert f"PAVED_GITHUB_PRIVATE_KEY_FILE={missing} cannot be read" in message


def test_a_github_app_with_its_key_in_a_file_may_start(tmp_path: Path) -> None:
    key_file = tmp_path / "app.pem"
    key_file.write_text(PEM, encoding="utf-8")
    settings = Settings.from_env({"PAVED_DATA_DIR": str(tmp_path), "PAVED_GITHUB_APP_ID": "42",
                                  "PAVED_GITHUB_PRIVATE_KEY_FILE": str(key_file)})
    settings.check_service("worker")
    key = settings.private_key()
    assert key is not None and key.reveal() == PEM


def test_a_private_key_pasted_on_one_line_keeps_its_line_breaks(tmp_path: Path) -> None:
    settings = Settings.from_env({"PAVED_GITHUB_APP_ID": "42", "PAVED_GITHUB_PRIVATE_KEY": PEM.replace("\n", "\\n")})
    key = settings.private_key()
    assert key is not None and key.reveal() == PEM


def test_secrets_never_appear_in_the_settings_repr(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, webhook_secret=Secret(SECRET), github_token=Secret(TOKEN),
                        github_private_key=Secret(PEM), redis_url=Secret("redis://:hunter2-redis-pass@queue:6379/0"))
    shown = repr(settings) + str(settings) + f"{settings.webhook_secret}"
    for value in (SECRET, TOKEN, "MIIEowIBAAKCAQEAtests", "hunter2-redis-pass"):
        assert value not in shown
    assert "Secret('********')" in shown


def test_the_redis_password_is_masked_when_the_url_is_shown(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, redis_url=Secret("redis://paved:hunter2-redis-pass@queue:6379/0"))
    assert settings.redis_display == "redis://paved:********@queue:6379/0"
    assert "hunter2-redis-pass" in settings.secret_values()


@pytest.mark.parametrize("name, value", [("PAVED_PORT", "eighty"), ("PAVED_QUEUE_WORKERS", "-1"),
                                         ("PAVED_RECONCILE_MINUTES", "often"), ("PAVED_LEASE_SECONDS", "2"),
                                         ("PAVED_LEASE_SECONDS", "1.5")])
def test_a_malformed_number_is_refused_naming_its_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigurationError) as refused:
        Settings.from_env({name: value})
    assert refused.value.message.startswith(f"{name}={value} is not")


def test_every_problem_is_named_in_one_message(tmp_path: Path) -> None:
    message = refusal(Settings(data_dir=tmp_path, webhook_secret=Secret("secret"), github_app_id="my-app",
                               github_api_url="github.example.com", redis_url=Secret("http://queue"),
                               queue_workers=1))
    assert message.count(";") == 4
    for expected in ("PAVED_WEBHOOK_SECRET is a placeholder", "PAVED_GITHUB_APP_ID must be the App's numeric id",
                     "PAVED_GITHUB_PRIVATE_KEY or PAVED_GITHUB_PRIVATE_KEY_FILE is not set",
                     "PAVED_GITHUB_API_URL must be an http(s) URL", "PAVED_REDIS_URL must start with redis://"):
        assert expected in message


# -- the shape of the service code ----------------------------------------------------------------------------


def test_nothing_reads_the_environment_when_imported() -> None:
    code = ("import bot.settings, bot.web.commands, bot.web.app, bot.web.serve, bot.adapters.queue, "
            "bot.adapters.deliveries")
    done = subprocess.run([sys.executable, "-c", code], cwd=PROJECT, capture_output=True, text=True,
                          env={"PAVED_PORT": "not-a-port", "PAVED_LOG_FORMAT": "xml", "PATH": ""})
    assert done.returncode == 0, done.stderr


def loaded_by_adding_commands(module: str, heavy: tuple[str, ...]) -> list[str]:
    """Which of the `heavy` modules a fresh Python has loaded once `module` added its commands to a parser."""
    code = (f"import sys, argparse; from {module} import add_commands; "
            "add_commands(argparse.ArgumentParser().add_subparsers()); "
            f"print(sorted(m for m in {heavy!r} if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], cwd=PROJECT, capture_output=True, text=True, check=True)
    return list(ast.literal_eval(done.stdout.strip()))


def test_the_service_commands_load_fastapi_and_huey_only_when_they_run() -> None:
    assert loaded_by_adding_commands("bot.web.commands", ("fastapi", "uvicorn", "huey", "redis")) == []


def imports_of(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


WEB_PAGES = {"bot/web/app.py", "bot/web/catalogue.py", "bot/web/signin.py", "bot/web/setup.py",
             "bot/web/request_form.py"}


@pytest.mark.parametrize("library, allowed", [("huey", {"bot/adapters/queue.py"}), ("fastapi", WEB_PAGES),
                                              ("uvicorn", {"bot/web/serve.py", "bot/web/setup.py"})])
def test_only_the_service_modules_import_the_queue_and_web_libraries(library: str, allowed: set[str]) -> None:
    importers = {path.relative_to(PROJECT).as_posix() for path in (PROJECT / "bot").rglob("*.py")
                 if not path.is_relative_to(PROJECT / "bot" / "sandbox") and library in imports_of(path)}
    assert importers <= allowed
