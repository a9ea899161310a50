"""An HTTP service.

Service: {{ cookiecutter.name }}
Owner: {{ cookiecutter.owner }}
"""

__version__ = "0.1.0"
