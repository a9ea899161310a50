"""The env file `paved setup` writes and every command reads: private, whole or absent, under the environment."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from bot.errors import ConfigurationError
from bot.settings import Settings, app_environment, environment, read_env_file, write_env_file

SECRET = "b4c0f7e1d2a3958677e6d5c4b3a29180"


def private_key() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                             serialization.NoEncryption()).decode()


def registered(folder: Path, **overrides: str) -> Path:
    values = app_environment(api_url="https://ghe.acme.example/api/v3", app_id=42, private_key=private_key(),
                             webhook_secret=SECRET, client_id="Iv1.0123456789abcdef", client_secret=SECRET * 2,
                             session_secret=SECRET[::-1] * 2, public_url="https://paved.acme.example",
                             catalogue_repo="acme/platform")
    path = folder / "paved.env"
    write_env_file(path, {**values, **overrides}, comments=("Paved's GitHub App",))
    return path


def test_the_settings_read_from_the_env_file_give_paved_the_app(tmp_path: Path) -> None:
    path = registered(tmp_path)
    settings = Settings.from_env(environment({"PAVED_ENV_FILE": str(path)}))
    assert (settings.github_api_url, settings.github_app_id) == ("https://ghe.acme.example/api/v3", "42")
    key = settings.private_key()
    assert key is not None and key.reveal().startswith("-----BEGIN RSA PRIVATE KEY-----\n")
    assert settings.github_web_url == "https://ghe.acme.example"
    settings.check_service("serve")


def test_the_env_file_in_the_data_folder_is_read_without_being_named(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    registered(data)
    assert Settings.from_env(environment({"PAVED_DATA_DIR": str(data)})).github_app_id == "42"


def test_the_process_environment_wins_over_the_env_file(tmp_path: Path) -> None:
    path = registered(tmp_path)
    env = environment({"PAVED_ENV_FILE": str(path), "PAVED_GITHUB_APP_ID": "7", "PAVED_PUBLIC_URL": ""})
    assert env["PAVED_GITHUB_APP_ID"] == "7"
    assert env["PAVED_PUBLIC_URL"] == "https://paved.acme.example"  # set but empty: unset, so the file's


def test_without_an_env_file_the_environment_is_taken_as_it_is(tmp_path: Path) -> None:
    env = {"PAVED_DATA_DIR": str(tmp_path), "PAVED_GITHUB_TOKEN": "x"}
    assert environment(env) == env


def test_an_env_file_named_but_missing_stops_paved(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"the env file .*missing\.env cannot be read"):
        environment({"PAVED_ENV_FILE": str(tmp_path / "missing.env")})


def test_an_env_file_others_may_read_is_refused(tmp_path: Path) -> None:
    path = registered(tmp_path)
    path.chmod(0o644)
    with pytest.raises(ConfigurationError, match=r"others than its owner may read or change it \(mode 0644\)") as err:
        environment({"PAVED_ENV_FILE": str(path)})
    assert err.value.hint == f"chmod 600 {path}"


def test_a_line_that_is_no_variable_is_named_by_file_and_line_without_its_value(tmp_path: Path) -> None:
    path = tmp_path / "paved.env"
    path.write_text("# Paved\nPAVED_GITHUB_APP_ID=42\nthe-secret-value\n")
    path.chmod(0o600)
    with pytest.raises(ConfigurationError) as err:
        read_env_file(path)
    assert err.value.message == f"{path}:3: this line is not NAME=value"


def test_a_variable_set_twice_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "paved.env"
    path.write_text("PAVED_GITHUB_APP_ID=42\nexport PAVED_GITHUB_APP_ID='43'\n")
    path.chmod(0o600)
    with pytest.raises(ConfigurationError, match="PAVED_GITHUB_APP_ID is set twice"):
        read_env_file(path)


def test_export_quotes_and_comments_are_read_as_a_shell_writes_them(tmp_path: Path) -> None:
    path = tmp_path / "paved.env"
    path.write_text("# a comment\n\nexport PAVED_GITHUB_APP_ID=\"42\"\nPAVED_QUEUE_NAME = 'acme'\n")
    path.chmod(0o600)
    assert read_env_file(path) == {"PAVED_GITHUB_APP_ID": "42", "PAVED_QUEUE_NAME": "acme"}


def test_the_env_file_is_written_for_its_owner_only_and_never_over_another(tmp_path: Path) -> None:
    path = registered(tmp_path / "new-folder")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    before = path.read_text()
    with pytest.raises(ConfigurationError, match="exists already"):
        registered(path.parent)
    assert path.read_text() == before
    assert sorted(os.listdir(path.parent)) == ["paved.env"]  # no scratch file left behind


def test_force_replaces_the_env_file_in_one_step(tmp_path: Path) -> None:
    path = registered(tmp_path)
    write_env_file(path, {"PAVED_GITHUB_APP_ID": "43"}, overwrite=True)
    assert read_env_file(path) == {"PAVED_GITHUB_APP_ID": "43"}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(os.listdir(tmp_path)) == ["paved.env"]


def test_a_value_that_would_break_its_line_is_not_written(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="PAVED_WEBHOOK_SECRET"):
        write_env_file(tmp_path / "paved.env", {"PAVED_WEBHOOK_SECRET": "abc\nPAVED_GITHUB_APP_ID=1"})
    assert not (tmp_path / "paved.env").exists()
