"""A scheduled worker.

Service: {{ cookiecutter.name }}
Owner: {{ cookiecutter.owner }}
"""

__version__ = "0.1.0"

SERVICE_NAME = "{{ cookiecutter.name }}"
OWNER = "{{ cookiecutter.owner }}"
DESCRIPTION = "{{ cookiecutter.__description_escaped }}"  # noqa: E501

#: When the job runs, in UTC, unless the SCHEDULE environment variable says otherwise.
DEFAULT_SCHEDULE = "{{ cookiecutter.schedule }}"
