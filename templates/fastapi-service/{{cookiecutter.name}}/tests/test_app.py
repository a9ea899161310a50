import importlib

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from {{ cookiecutter.__package }} import __main__ as server
from {{ cookiecutter.__package }}.main import SERVICE_NAME, create_app


@pytest.fixture
def client() -> TestClient:
    return TestClient(create_app())


def test_healthz_reports_ok(client: TestClient) -> None:
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_greeting_names_the_caller_and_the_service(client: TestClient) -> None:
    response = client.get("/v1/greetings/ada")

    assert response.status_code == 200
    assert response.json() == {"message": "Hello, ada!", "service": SERVICE_NAME}


def test_greeting_rejects_a_name_longer_than_64_characters(client: TestClient) -> None:
    response = client.get("/v1/greetings/" + "a" * 65)

    assert response.status_code == 422


def test_openapi_document_is_titled_with_the_service_name(client: TestClient) -> None:
    response = client.get("/openapi.json")

    assert response.status_code == 200
    assert response.json()["info"]["title"] == SERVICE_NAME


def test_server_listens_on_the_default_port(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    monkeypatch.delenv("PORT", raising=False)
    monkeypatch.setattr(server.uvicorn, "run", lambda app, **kwargs: calls.append((app, kwargs)))

    server.main()

    assert calls == [(server.APP, {"host": "0.0.0.0", "port": {{ cookiecutter.port }}})]


def test_server_serves_the_application_defined_in_main() -> None:
    module, _, attribute = server.APP.partition(":")

    assert isinstance(getattr(importlib.import_module(module), attribute), FastAPI)


def test_port_environment_variable_overrides_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    monkeypatch.setenv("PORT", "9123")
    monkeypatch.setattr(server.uvicorn, "run", lambda app, **kwargs: calls.append(kwargs["port"]))

    server.main()

    assert calls == [9123]
