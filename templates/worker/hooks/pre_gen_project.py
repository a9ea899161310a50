"""Refuse to render with a name the service could not be created with."""

import re
import sys

NAME = {{ cookiecutter.name | tojson }}

DNS_LABEL = re.compile(r"[a-z]([a-z0-9-]{0,61}[a-z0-9])?")

if not DNS_LABEL.fullmatch(NAME):
    print(
        f"worker: name {NAME!r} is not a DNS label: use 1-63 lowercase letters, digits and '-', "
        "starting with a letter and not ending with '-'",
        file=sys.stderr,
    )
    sys.exit(1)
