"""The {{ cookiecutter.name }} HTTP API."""

from typing import Annotated

from fastapi import FastAPI, Path
from pydantic import BaseModel

from {{ cookiecutter.__package }} import __version__

SERVICE_NAME = "{{ cookiecutter.name }}"
OWNER = "{{ cookiecutter.owner }}"
DESCRIPTION = "{{ cookiecutter.__description_escaped }}"  # noqa: E501


class Health(BaseModel):
    status: str


class Greeting(BaseModel):
    message: str
    service: str


def create_app() -> FastAPI:
    """Build the application; tests and the server both start from here."""
    app = FastAPI(title=SERVICE_NAME, description=DESCRIPTION, version=__version__)

    @app.get("/healthz", response_model=Health, tags=["operations"])
    def healthz() -> Health:
        """Liveness and readiness probe: answers 200 while the process can serve requests."""
        return Health(status="ok")

    @app.get("/v1/greetings/{name}", response_model=Greeting, tags=["greetings"])
    def greet(name: Annotated[str, Path(min_length=1, max_length=64)]) -> Greeting:
        """An example endpoint: greets `name`. Replace it with the service's real API."""
        return Greeting(message=f"Hello, {name}!", service=SERVICE_NAME)

    return app


app = create_app()
