"""Serve the API with uvicorn: `python -m {{ cookiecutter.__package }}`.

HOST (default 0.0.0.0) and PORT (default {{ cookiecutter.port }}) come from the environment.
"""

import os

import uvicorn

APP = "{{ cookiecutter.__package }}.main:app"
DEFAULT_HOST = "0.0.0.0"
DEFAULT_PORT = {{ cookiecutter.port }}


def main() -> None:
    host = os.environ.get("HOST", DEFAULT_HOST)
    port = int(os.environ.get("PORT", DEFAULT_PORT))
    uvicorn.run(APP, host=host, port=port)


if __name__ == "__main__":
    main()
