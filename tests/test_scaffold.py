"""Golden paths render in a child process that holds no secret, with a request's values as data.

Every test renders with the real cookiecutter in a real child process (`bot.adapters.scaffold`), from
the bundled templates or the fixture templates under `tests/data/templates/` (see its README).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from cookiecutter.main import cookiecutter

from bot.adapters import scaffold
from bot.adapters.repo import FolderTree
from bot.model import Resource
from bot.provider import Target
from bot.providers.github import repositories
from bot.yamlio import load
from tests.conftest import PROJECT

BUNDLED = PROJECT / "templates"
FIXTURES = Path(__file__).resolve().parent / "data" / "templates"
SERVICE = {"name": "payments-api", "owner": "payments", "description": "Takes card payments for the web shop.",
           "_github_org": "acme"}
CHOSEN = {"fastapi-service": {"python_version": "3.11", "port": "8080"},
          "worker": {"python_version": "3.13", "schedule": "0 2 * * 1-5"}}
SECRET = "whsec-do-not-leak-0123456789"


def render(template: Path, into: Path, parameters: dict[str, Any] | None = None, *, timeout: float = 60,
           **values: str) -> Path:
    return scaffold.render(template, into, values={**SERVICE, **values}, parameters=parameters or {},
                           timeout=timeout)


def files_of(project: Path) -> dict[str, bytes]:
    return {p.relative_to(project).as_posix(): p.read_bytes() for p in sorted(project.rglob("*")) if p.is_file()}


def values_of(project: Path) -> dict[str, Any]:
    values: dict[str, Any] = json.loads((project / "values.json").read_text())
    return values


def alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie waiting for its parent to reap it does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


# -- the same project cookiecutter makes ------------------------------------------------------------------

@pytest.mark.parametrize("template", sorted(CHOSEN))
def test_renders_exactly_what_cookiecutter_renders_for_ordinary_values(template: str, tmp_path: Path) -> None:
    config = tmp_path / "cookiecutter.yaml"
    config.write_text(json.dumps({"cookiecutters_dir": str(tmp_path / "cache"), "replay_dir": str(tmp_path / "replay"),
                                  "default_context": {}, "abbreviations": {}}))
    theirs = cookiecutter(str(BUNDLED / template), no_input=True, extra_context={**SERVICE, **CHOSEN[template]},
                          output_dir=str(tmp_path / "cookiecutter"), config_file=str(config))

    ours = render(BUNDLED / template, tmp_path / "paved", CHOSEN[template])

    assert ours == tmp_path / "paved" / SERVICE["name"]
    assert files_of(ours) == files_of(Path(theirs))


def test_template_defaults_are_rendered_in_order_with_the_values_given(tmp_path: Path) -> None:
    project = render(FIXTURES / "plain", tmp_path)

    assert values_of(project) == {
        "name": "payments-api", "owner": "payments", "description": SERVICE["description"], "greeting": "hello",
        "flavour": "vanilla", "enabled": True, "settings": {"shout": "HELLO"}, "package": "payments_api",
        "org": "acme", "choices": ["vanilla", "chocolate"]}


def test_parameters_choose_among_the_template_choices_and_set_its_variables(tmp_path: Path) -> None:
    project = render(FIXTURES / "plain", tmp_path, {"greeting": "hi", "flavour": "chocolate", "enabled": False})

    values = values_of(project)
    assert (values["greeting"], values["flavour"], values["enabled"]) == ("hi", "chocolate", False)
    assert values["settings"] == {"shout": "HI"}
    assert values["choices"] == ["chocolate", "vanilla"]  # `_cookiecutter`, as cookiecutter orders it


def test_a_number_becomes_its_text_as_cookiecutter_would_make_it(tmp_path: Path) -> None:
    project = render(BUNDLED / "fastapi-service", tmp_path, {"port": 8081})

    assert "DEFAULT_PORT = 8081" in (project / "src" / "payments_api" / "__main__.py").read_text()


def test_copy_without_render_is_kept(tmp_path: Path) -> None:
    project = render(FIXTURES / "plain", tmp_path)

    assert (project / "raw" / "keep.txt").read_text() == "{{ copied as it is }}\n"


# -- values are data --------------------------------------------------------------------------------------

@pytest.mark.parametrize("template", sorted(CHOSEN))
def test_a_jinja_payload_in_the_description_is_written_literally_and_runs_nothing(
        template: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    marker = tmp_path / "PWNED"
    monkeypatch.setenv("PAVED_WEBHOOK_SECRET", SECRET)
    payload = (f"{{{{ cycler.__init__.__globals__.os.system('touch {marker}') }}}} "
               "{{ cycler.__init__.__globals__.os.environ['PAVED_WEBHOOK_SECRET'] }}")

    project = render(BUNDLED / template, tmp_path / "out", description=payload)

    readme = (project / "README.md").read_text()
    entry = yaml.safe_load((project / "catalog-entry.yaml").read_text())
    assert payload in readme
    assert entry["metadata"]["description"] == payload
    assert not marker.exists()
    assert not [p for p in tmp_path.rglob("*") if "PWNED" in p.name]
    assert not [p for p in project.rglob("*") if p.is_file() and SECRET in p.read_text()]


@pytest.mark.parametrize("template", sorted(CHOSEN))
def test_the_catalog_entry_records_the_tier_lifecycle_and_visibility_paved_supplies(template: str,
                                                                                  tmp_path: Path) -> None:
    project = render(BUNDLED / template, tmp_path, _tier="critical", _lifecycle="production", _visibility="internal")

    spec = yaml.safe_load((project / "catalog-entry.yaml").read_text())["spec"]
    assert (spec["tier"], spec["lifecycle"], spec["repository"]) == ("critical", "production",
                                                                     {"visibility": "internal"})


def test_a_tier_that_yaml_would_misread_stays_the_text_it_is_in_the_catalog_entry(tmp_path: Path) -> None:
    hostile = 'x"\n  tier: {{ 7*7 }} # no'

    project = render(BUNDLED / "worker", tmp_path, _tier=hostile)

    assert yaml.safe_load((project / "catalog-entry.yaml").read_text())["spec"]["tier"] == hostile


def test_a_new_service_repository_records_the_tier_lifecycle_and_visibility_of_its_request(tmp_path: Path) -> None:
    [request] = [d.data for d in load("catalog/services/payments-api.yaml",
                                      (PROJECT / "catalog/services/payments-api.yaml").read_bytes()).documents
                 if d.data["kind"] == "Service"]
    service = Resource("Service", "payments-api", "payments", "catalog/services/payments-api.yaml", 0, 1, request)
    target = Target("acme", "acme/platform", FolderTree(PROJECT), "HEAD")

    project = repositories._render(service, target, tmp_path)

    spec = yaml.safe_load((project / "catalog-entry.yaml").read_text())["spec"]
    assert (spec["tier"], spec["lifecycle"], spec["repository"]["visibility"]) == (
        request["spec"]["tier"], request["spec"]["lifecycle"], request["spec"]["repository"]["visibility"])
    assert spec["tier"] == "critical"


def test_a_parameter_holding_jinja_stays_literal_even_in_derived_values(tmp_path: Path) -> None:
    project = render(FIXTURES / "plain", tmp_path, {"greeting": "{{ 7*7 }} hi"})

    values = values_of(project)
    assert values["greeting"] == "{{ 7*7 }} hi"
    assert values["settings"] == {"shout": "{{ 7*7 }} HI"}
    assert "{{ 7*7 }} hi" in (project / "README.md").read_text()
    assert "49" not in (project / "README.md").read_text()


def test_a_hook_checks_a_parameter_holding_jinja_as_the_text_it_is(tmp_path: Path) -> None:
    with pytest.raises(scaffold.HookRefused) as refused:
        render(BUNDLED / "fastapi-service", tmp_path, {"port": "{{ 7*7 }}"})

    assert "port '{{ 7*7 }}' is not a TCP port number" in refused.value.output
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("parameter", ["__package", "_github_org", "_copy_without_render", "__prompts__"])
def test_a_parameter_naming_a_private_variable_is_refused(parameter: str, tmp_path: Path) -> None:
    with pytest.raises(scaffold.ParameterRefused) as refused:
        render(FIXTURES / "plain", tmp_path, {parameter: "x') }}{{ 7*7"})

    assert refused.value.parameter == parameter
    assert refused.value.message == (f"`{parameter}` is a private variable of template plain, which a request "
                                     "cannot set; its parameters: greeting, flavour, enabled")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("parameters", "message"), [
    ({"colour": "red"}, "template plain has no parameter `colour`; its parameters: greeting, flavour, enabled"),
    ({"settings": {"shout": "HEY"}}, "template plain has no parameter `settings`"),
    ({"name": "other"}, "`name` is filled by Paved from the request's metadata, not a parameter"),
    ({"flavour": "{{ 7*7 }}"}, "parameter `flavour` must be one of vanilla, chocolate; got '{{ 7*7 }}'"),
    ({"enabled": "yes"}, "parameter `enabled` must be true or false; got 'yes'"),
    ({"greeting": ["a", "b"]}, "parameter `greeting` must be text or a number; got ['a', 'b']"),
])
def test_a_parameter_the_template_does_not_offer_is_refused_with_a_clear_message(
        parameters: dict[str, Any], message: str, tmp_path: Path) -> None:
    with pytest.raises(scaffold.ParameterRefused) as refused:
        render(FIXTURES / "plain", tmp_path, parameters)

    assert refused.value.message.startswith(message)
    assert "\n" not in refused.value.message


# -- the child process ------------------------------------------------------------------------------------

def test_a_hook_sees_none_of_paveds_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {"PAVED_WEBHOOK_SECRET": SECRET, "PAVED_GITHUB_PRIVATE_KEY": "-----BEGIN RSA PRIVATE KEY-----",
                        "GITHUB_TOKEN": "ghs_" + "x" * 36, "AWS_SECRET_ACCESS_KEY": "aws-secret",
                        "PYTHONPATH": str(tmp_path / "elsewhere")}.items():
        monkeypatch.setenv(name, value)

    project = render(FIXTURES / "environ", tmp_path / "out")

    seen = json.loads((project / "environ.json").read_text())
    environ = seen["environ"]
    assert sorted(environ) == ["HOME", "LANG", "LC_ALL", "PATH", "TMPDIR"]
    assert (environ["LANG"], environ["LC_ALL"]) == ("C.UTF-8", "C.UTF-8")
    assert Path(environ["HOME"]).parent.name.startswith("paved-scaffold-")
    assert seen["tempdir"] == environ["TMPDIR"]
    assert Path(environ["TMPDIR"]).parent == Path(environ["HOME"]).parent
    assert not Path(environ["HOME"]).parent.exists()  # the scratch folder goes once the project is rendered
    assert seen["file_size_limit"] == 64 * 1024 * 1024


def test_what_a_hook_prints_never_passes_for_the_answer(tmp_path: Path) -> None:
    # The environ fixture's hook prints {"project": "/"} on its stdout.
    assert render(FIXTURES / "environ", tmp_path) == tmp_path / "payments-api"


def test_a_hook_that_outlives_the_time_limit_is_killed_with_its_children(tmp_path: Path) -> None:
    started = time.monotonic()
    with pytest.raises(scaffold.ScaffoldTimeout) as late:
        render(FIXTURES / "sleepy", tmp_path, timeout=2)

    assert time.monotonic() - started < 15
    assert late.value.message == "template sleepy took longer than 2 s"
    assert late.value.seconds == 2
    pids = [int(pid) for pid in (tmp_path / "payments-api" / "pids").read_text().split()]
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [pid for pid in pids if alive(pid)] == []


def test_a_failing_hook_is_reported_on_one_line(tmp_path: Path) -> None:
    with pytest.raises(scaffold.HookRefused) as refused:
        render(FIXTURES / "refusing", tmp_path)

    assert refused.value.message == "Hook script failed (exit status: 3)"
    assert refused.value.template == "refusing"
    output = refused.value.output
    assert "refusing: the answer is no, and it stays no" in output
    assert "refusing: checking the parameters" in output
    assert "\n" not in output
    assert "Traceback" not in output
    assert list(tmp_path.iterdir()) == []  # cookiecutter removes the project it started


def test_paveds_own_process_never_loads_cookiecutter() -> None:
    code = "import sys, bot.providers.github.provider; print('cookiecutter' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)

    assert done.stdout.strip() == "False"


# -- the bundled templates' hooks -------------------------------------------------------------------------

# A Python identifier cannot be a JSON literal: the worker imports its package by the name derived from the
# service's name, which its pre_gen_project hook has checked is a DNS label before this hook runs.
IDENTIFIERS = {"cookiecutter.__package"}


@pytest.mark.parametrize("hook", sorted(BUNDLED.glob("*/hooks/*.py")), ids=lambda p: p.relative_to(BUNDLED).as_posix())
def test_bundled_hooks_insert_every_value_with_tojson(hook: Path) -> None:
    text = hook.read_text()
    expressions = [e.strip() for e in re.findall(r"\{\{(.*?)\}\}", text, re.S)]

    assert "{%" not in text
    assert expressions
    assert [e for e in expressions if not re.fullmatch(r"[\w.]+ \| tojson", e) and e not in IDENTIFIERS] == []
