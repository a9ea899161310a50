"""The golden-path templates under templates/ render into projects that stand on their own.

Every test renders with cookiecutter's Python API into a temporary directory, with HOME and the
cookiecutter configuration pointed at another temporary directory, so that nothing depends on the
machine's own cookiecutter setup and nothing reaches the network.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from cookiecutter.exceptions import FailedHookException
from cookiecutter.main import cookiecutter

ROOT = Path(__file__).resolve().parents[1]
TEMPLATES = ROOT / "templates"
TEMPLATE_NAMES = ("fastapi-service", "worker")

# The variables every template declares, in order, then each template's own parameters with defaults.
COMMON_VARIABLES = ("name", "owner", "description", "python_version")
PYTHON_VERSIONS = ["3.12", "3.11", "3.13"]
OWN_PARAMETERS = {
    "fastapi-service": {"port": "8000"},
    "worker": {"schedule": "*/5 * * * *"},
}
# Values other than the defaults, to show that parameters reach the rendered project.
CHOSEN_PARAMETERS = {
    "fastapi-service": {"python_version": "3.11", "port": "8080"},
    "worker": {"python_version": "3.13", "schedule": "0 2 * * 1-5"},
}
SERVICE = {
    "name": "payments-api",
    "owner": "payments",
    "description": "Takes card payments for the web shop.",
}

GITHUB_EXPRESSION = re.compile(r"\$\{\{.*?\}\}")
JINJA_SYNTAX = ("{{", "{%")


# Every rendering, the module's shared ones included, with a private HOME and cookiecutter configuration.
pytestmark = pytest.mark.usefixtures("isolated_cookiecutter")


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """The example service rendered once per template, for tests that only read the result."""
    projects: dict[str, Path] = {}

    def project(template: str) -> Path:
        if template not in projects:
            projects[template] = render(template, tmp_path_factory.mktemp(template))
        return projects[template]

    return project


def render(template: str, output_dir: Path, **context: str) -> Path:
    """Render `template` with the example service (overridden by `context`); return the project."""
    project = cookiecutter(
        str(TEMPLATES / template),
        no_input=True,
        extra_context={**SERVICE, **context},
        output_dir=str(output_dir),
    )
    return Path(project)


def template_config(template: str) -> dict[str, Any]:
    config: dict[str, Any] = json.loads((TEMPLATES / template / "cookiecutter.json").read_text())
    return config


def public_variables(template: str) -> list[str]:
    return [key for key in template_config(template) if not key.startswith("_")]


def rendered_files(project: Path) -> list[Path]:
    return sorted(path for path in project.rglob("*") if path.is_file())


def python_constant(path: Path, name: str) -> Any:
    """The literal value assigned to module-level `name` in the Python file at `path`."""
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == name for target in node.targets
        ):
            return ast.literal_eval(node.value)
    raise AssertionError(f"{path} assigns no {name}")


def package_dir(project: Path) -> Path:
    return project / "src" / SERVICE["name"].replace("-", "_")


def run_rendered_tests(project: Path) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST_")}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


# -- cookiecutter.json ---------------------------------------------------------------------------


@pytest.mark.parametrize("template", TEMPLATE_NAMES)
def test_declares_exactly_the_documented_public_variables(template: str) -> None:
    assert public_variables(template) == [*COMMON_VARIABLES, *OWN_PARAMETERS[template]]


@pytest.mark.parametrize("template", TEMPLATE_NAMES)
def test_parameters_default_to_the_documented_values(template: str) -> None:
    config = template_config(template)

    assert config["python_version"] == PYTHON_VERSIONS
    assert {key: config[key] for key in OWN_PARAMETERS[template]} == OWN_PARAMETERS[template]


@pytest.mark.parametrize("template", TEMPLATE_NAMES)
def test_every_public_variable_has_a_one_line_prompt(template: str) -> None:
    prompts = template_config(template)["__prompts__"]

    assert set(prompts) == set(public_variables(template))
    for variable, prompt in prompts.items():
        assert isinstance(prompt, str), variable
        assert prompt.strip(), variable
        assert "\n" not in prompt, variable


@pytest.mark.parametrize("template", TEMPLATE_NAMES)
def test_private_keys_holding_jinja_are_ones_cookiecutter_renders(template: str) -> None:
    # cookiecutter copies `_key` values verbatim and renders only `__key` ones.
    verbatim = {
        key: value
        for key, value in template_config(template).items()
        if key.startswith("_") and not key.startswith("__")
    }

    assert not [key for key, value in verbatim.items() if "{{" in json.dumps(value)]


@pytest.mark.parametrize("template", TEMPLATE_NAMES)
def test_template_readme_opens_with_a_one_line_summary(template: str) -> None:
    # Paved shows the first line of prose in the template's README as the golden path's description.
    lines = (TEMPLATES / template / "README.md").read_text().splitlines()
    summary = next(line for line in lines if line.strip() and not line.startswith("#"))

    assert summary.endswith(".")
    assert lines[lines.index(summary) + 1] == ""


@pytest.mark.parametrize("template", TEMPLATE_NAMES)
def test_template_readme_documents_every_parameter(template: str) -> None:
    readme = (TEMPLATES / template / "README.md").read_text()

    assert [variable for variable in public_variables(template) if f"`{variable}`" not in readme] == []


# -- the rendered project ------------------------------------------------------------------------


@pytest.mark.parametrize("template", TEMPLATE_NAMES)
def test_renders_a_project_with_readme_tests_ci_workflow_and_catalog_entry(
    template: str, rendered: Callable[[str], Path]
) -> None:
    project = rendered(template)

    assert project.name == SERVICE["name"]
    for expected in (
        "README.md",
        "pyproject.toml",
        ".gitignore",
        "CODEOWNERS",
        "catalog-entry.yaml",
        ".github/workflows/ci.yml",
    ):
        assert (project / expected).is_file(), expected
    assert list((project / "tests").glob("test_*.py"))


@pytest.mark.parametrize("template", TEMPLATE_NAMES)
def test_rendered_catalog_entry_requests_this_service_from_this_template(
    template: str, rendered: Callable[[str], Path]
) -> None:
    entry = yaml.safe_load((rendered(template) / "catalog-entry.yaml").read_text())

    assert entry["apiVersion"] == "paved/v1"
    assert entry["kind"] == "Service"
    assert entry["metadata"] == SERVICE
    assert entry["spec"]["template"]["name"] == template
    assert entry["spec"]["repository"] == {"visibility": "private"}
    assert entry["spec"]["tier"] == "experimental"
    assert entry["spec"]["lifecycle"] == "experimental"


@pytest.mark.parametrize("template", TEMPLATE_NAMES)
def test_rendered_catalog_entry_is_a_valid_service_request(template: str, rendered: Callable[[str], Path]) -> None:
    schema = json.loads((ROOT / "schemas" / "kinds" / "service.json").read_text())
    entry = yaml.safe_load((rendered(template) / "catalog-entry.yaml").read_text())

    assert [error.message for error in jsonschema.Draft202012Validator(schema).iter_errors(entry)] == []


@pytest.mark.parametrize("template", TEMPLATE_NAMES)
def test_rendered_catalog_entry_records_the_chosen_parameters(template: str, tmp_path: Path) -> None:
    chosen = CHOSEN_PARAMETERS[template]
    entry = yaml.safe_load((render(template, tmp_path, **chosen) / "catalog-entry.yaml").read_text())

    assert entry["spec"]["template"]["parameters"] == chosen


@pytest.mark.parametrize("template", TEMPLATE_NAMES)
def test_no_template_syntax_survives_rendering(template: str, rendered: Callable[[str], Path]) -> None:
    project = rendered(template)
    leftovers = []
    for path in rendered_files(project):
        relative = path.relative_to(project).as_posix()
        text = GITHUB_EXPRESSION.sub("", relative + "\n" + path.read_text())
        leftovers += [f"{relative}: {syntax}" for syntax in JINJA_SYNTAX if syntax in text]

    assert leftovers == []


@pytest.mark.parametrize("template", TEMPLATE_NAMES)
def test_rendered_workflow_keeps_its_github_expressions(template: str, rendered: Callable[[str], Path]) -> None:
    workflow = (rendered(template) / ".github/workflows/ci.yml").read_text()

    assert "${{ github.ref }}" in workflow


@pytest.mark.parametrize("template", TEMPLATE_NAMES)
def test_rendered_readme_says_what_the_service_is_and_who_owns_it(
    template: str, rendered: Callable[[str], Path]
) -> None:
    readme = (rendered(template) / "README.md").read_text()

    assert readme.startswith(f"# {SERVICE['name']}\n")
    assert SERVICE["description"] in readme
    assert f"**{SERVICE['owner']}**" in readme
    assert "pytest" in readme


@pytest.mark.parametrize("template", TEMPLATE_NAMES)
def test_codeowners_names_the_owning_team(template: str, rendered: Callable[[str], Path]) -> None:
    codeowners = (rendered(template) / "CODEOWNERS").read_text()

    assert "* @payments\n" in codeowners


@pytest.mark.parametrize("template", TEMPLATE_NAMES)
def test_codeowners_names_the_team_within_its_organisation_when_given(template: str, tmp_path: Path) -> None:
    codeowners = (render(template, tmp_path, _github_org="acme") / "CODEOWNERS").read_text()

    assert "* @acme/payments\n" in codeowners


@pytest.mark.parametrize("template", TEMPLATE_NAMES)
def test_rendered_project_targets_the_chosen_python_version(template: str, tmp_path: Path) -> None:
    project = render(template, tmp_path, python_version="3.13")
    workflow = yaml.safe_load((project / ".github/workflows/ci.yml").read_text())
    setup_python = next(step for step in workflow["jobs"]["test"]["steps"] if "setup-python" in step.get("uses", ""))
    pyproject = tomllib.loads((project / "pyproject.toml").read_text())

    assert setup_python["with"]["python-version"] == "3.13"
    assert pyproject["project"]["requires-python"] == ">=3.13"
    assert (project / ".python-version").read_text().strip() == "3.13"


@pytest.mark.parametrize("template", TEMPLATE_NAMES)
def test_description_with_quotes_backslashes_and_newlines_stays_valid_yaml_toml_and_python(
    template: str, tmp_path: Path
) -> None:
    description = 'Says "hi" to C:\\Users\\ada,\nthen: leaves.'
    one_line = 'Says "hi" to C:\\Users\\ada, then: leaves.'
    project = render(template, tmp_path, description=description)

    entry = yaml.safe_load((project / "catalog-entry.yaml").read_text())
    pyproject = tomllib.loads((project / "pyproject.toml").read_text())
    descriptions = [
        python_constant(path, "DESCRIPTION") for path in project.rglob("*.py") if "DESCRIPTION =" in path.read_text()
    ]

    assert entry["metadata"]["description"] == one_line
    assert pyproject["project"]["description"] == one_line
    assert descriptions == [one_line]


@pytest.mark.parametrize("template", TEMPLATE_NAMES)
@pytest.mark.parametrize("name", ["Payments", "payments_api", "9lives", "payments-", "a" * 64])
def test_a_name_that_is_not_a_dns_label_is_refused_before_any_file_is_written(
    template: str, name: str, tmp_path: Path
) -> None:
    with pytest.raises(FailedHookException):
        render(template, tmp_path, name=name)

    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("template", TEMPLATE_NAMES)
def test_rendered_project_passes_its_own_lint_even_with_the_longest_names(template: str, tmp_path: Path) -> None:
    longest = "x" * 63
    project = render(template, tmp_path, name=longest, owner=longest)

    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", "."],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_fastapi_service_renders_a_project_whose_own_tests_pass(tmp_path: Path) -> None:
    result = run_rendered_tests(render("fastapi-service", tmp_path))

    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_worker_renders_a_project_whose_own_tests_pass(tmp_path: Path) -> None:
    result = run_rendered_tests(render("worker", tmp_path))

    assert result.returncode == 0, result.stdout + result.stderr


# -- fastapi-service -----------------------------------------------------------------------------


def test_fastapi_service_serves_on_the_chosen_port(tmp_path: Path) -> None:
    project = render("fastapi-service", tmp_path, port="8080")

    assert python_constant(package_dir(project) / "__main__.py", "DEFAULT_PORT") == 8080
    assert "localhost:8080/healthz" in (project / "README.md").read_text()


@pytest.mark.parametrize("port", ["0", "65536", "http", "80a", "-1", ""])
def test_fastapi_service_refuses_a_port_that_is_not_a_tcp_port(port: str, tmp_path: Path) -> None:
    with pytest.raises(FailedHookException):
        render("fastapi-service", tmp_path, port=port)

    assert list(tmp_path.iterdir()) == []


# -- worker --------------------------------------------------------------------------------------


def test_worker_runs_on_the_chosen_schedule(tmp_path: Path) -> None:
    project = render("worker", tmp_path, schedule="0 2 * * 1-5")

    assert python_constant(package_dir(project) / "__init__.py", "DEFAULT_SCHEDULE") == "0 2 * * 1-5"
    assert "`0 2 * * 1-5`" in (project / "README.md").read_text()


@pytest.mark.parametrize("schedule", ["@daily", "0 0 29 2 *", "*/15 9-17 * * 1-5"])
def test_worker_accepts_macros_and_rare_but_valid_schedules(schedule: str, tmp_path: Path) -> None:
    project = render("worker", tmp_path, schedule=schedule)

    assert python_constant(package_dir(project) / "__init__.py", "DEFAULT_SCHEDULE") == schedule


@pytest.mark.parametrize("schedule", ["every five minutes", "*/5 * * *", "61 * * * *", "* * * JAN *", "0 0 31 2 *"])
def test_worker_refuses_a_schedule_it_could_never_run(schedule: str, tmp_path: Path) -> None:
    with pytest.raises(FailedHookException):
        render("worker", tmp_path, schedule=schedule)

    assert list(tmp_path.iterdir()) == []
