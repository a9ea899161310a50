"""Refuse to render with parameters the service could not run with."""

import re
import sys

NAME = {{ cookiecutter.name | tojson }}
PORT = {{ cookiecutter.port | tojson }}

DNS_LABEL = re.compile(r"[a-z]([a-z0-9-]{0,61}[a-z0-9])?")

errors = []
if not DNS_LABEL.fullmatch(NAME):
    errors.append(
        f"name {NAME!r} is not a DNS label: use 1-63 lowercase letters, digits and '-', "
        "starting with a letter and not ending with '-'"
    )
if not (PORT.isascii() and PORT.isdigit() and 1 <= int(PORT) <= 65535):
    errors.append(f"port {PORT!r} is not a TCP port number between 1 and 65535")

for error in errors:
    print(f"fastapi-service: {error}", file=sys.stderr)
sys.exit(1 if errors else 0)
