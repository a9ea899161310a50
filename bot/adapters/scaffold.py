"""Scaffolding: a golden-path template rendered into a new project, in a child process that holds no secret.

Its job is to turn a template folder (a copy of `templates/NAME/` of the merged platform repo) and the
values of one `Service` request into the files of the service's first commit, with cookiecutter. It is
the only module that imports cookiecutter, and it does so only in the child process.

**Request values are data, never template source.** cookiecutter's own entry point (`cookiecutter()`)
renders every context value as Jinja2, the way it renders the defaults it prompts with; a request whose
description or parameter held `{{ ... }}` would run Python inside Paved, and a parameter could override a
private variable such as `__package`. So `build_context` builds cookiecutter's context itself from the
template's `cookiecutter.json`:

- the values Paved supplies (`name`, `owner` and `description` from the request's metadata,
  `_github_org`, and `_tier`, `_lifecycle` and `_visibility` from its spec, for a template's own copy of
  the request such as `catalog-entry.yaml`) are taken verbatim, for the keys the template declares;
- a request's parameter must name a public key of `cookiecutter.json` that Paved does not fill itself
  (never one starting with `_`, never a dictionary variable), be one of its choices for a choice list and
  true/false for a yes/no variable, and is taken verbatim (a number becomes its text, as cookiecutter's
  rendering would make it); anything else is a `ParameterRefused` naming the parameter;
- every other key gets the template's own default, rendered in order with the context built so far, as
  cookiecutter renders it without prompting: `_key` verbatim, `__key` and public keys rendered, choice
  lists by their first option, dictionaries in a second pass. Those defaults are the platform's text.

Then cookiecutter's `generate_files` (the API under `cookiecutter()` that renders files from a given
context) writes the project, with `_template`, `_repo_dir`, `_output_dir`, `_checkout` and
`_cookiecutter` set as `cookiecutter()` sets them, so `_copy_without_render`, `_extensions`,
`_jinja2_env_vars` and `_new_lines` keep working. Replay files are not written.

**Rendering runs in a child process** (`python -I -m bot.adapters.scaffold`), whatever a template does:
with an environment built from scratch (a minimal PATH, HOME and TMPDIR inside a temporary folder that is
also its working directory, LANG/LC_ALL C.UTF-8, nothing else: no `PAVED_*` setting, token or key),
in its own session, under a time limit after which its whole process group is killed (hooks' own
children included), with CPU time, file size and core dumps limited. The parent sends the request as
JSON on stdin and reads a JSON answer on stdout: the rendered project's folder, or an error. What the
hooks print (stdout and stderr) is captured and kept on one line in `HookRefused.output`. TMPDIR is
there so that the hook scripts cookiecutter renders (and never deletes) are removed with the folder.
The answer also carries the context the project was rendered with (`answers`: every key of
`cookiecutter.json`, private ones included, without the paths of the scratch folders).

**Every project records where it came from**, in `.paved/scaffold.json` (`write_record`): the template's
folder name, the platform repo's commit it was read at, and the answers, written by the parent with
`json.dumps` as data, so that a later template change can be offered to the project as an upgrade (as
cruft does from `.cruft.json`). It lives in a `.paved/` folder so that the file is plainly Paved's and
anything else Paved keeps in a service repository goes beside it; it is not `.cruft.json`, whose
`template` must be a git URL that cruft would clone.

**Hooks are kept, in that child only.** The bundled templates check their parameters in `pre_gen_project`
and `post_gen_project` hooks (a port is a TCP port, a schedule one the worker's own cron parser accepts),
which is the template's knowledge and belongs with it. Running them is acceptable because:

- templates are platform rules: they come from the merged platform repo, where changing one needs the
  platform owners' approval like any rule; a request can only choose one and fill in its values;
- hooks run in the child process above, so they see no secret of Paved's (no App key, webhook secret or
  token) and cannot outlive their time limit;
- hooks are themselves Jinja2 templates rendered with the request's values, so they must insert every
  value as a Python literal with `| tojson` (`NAME = {{ cookiecutter.name | tojson }}`), never bare;
  `tests/test_scaffold.py` holds the bundled hooks to that.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.errors import PavedError
from bot.golden_paths import RECORD_PATH, ScaffoldRecord

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 60.0
# The keys Paved fills from the request itself; a request's parameters may not set them.
SUPPLIED_BY_PAVED = ("name", "owner", "description", "_github_org", "_tier", "_lifecycle", "_visibility")
# What the child may run: system tools (git, sh) only; Python is started by its full path.
_PATH = "/usr/local/bin:/usr/bin:/bin"
_MAX_FILE_BYTES = 64 * 1024 * 1024
_MAX_OUTPUT = 500
_SIGNALS = {int(s) for s in signal.Signals}
RECORD_FOLDER, RECORD_FILE = RECORD_PATH.split("/")
# Set by cookiecutter's own entry point to where this machine's scratch folders are: not answers.
_PATHS = ("_template", "_output_dir", "_repo_dir", "_checkout")


class ScaffoldError(PavedError):
    """Raised when a template cannot be rendered into a project; `template` names its folder."""

    def __init__(self, message: str, *, template: str = "") -> None:
        super().__init__(message)
        self.template = template


class ParameterRefused(ScaffoldError):
    """Raised when a request's parameter is not one the template lets a request set; `parameter` names it."""

    def __init__(self, message: str, *, template: str = "", parameter: str = "") -> None:
        super().__init__(message, template=template)
        self.parameter = parameter


class HookRefused(ScaffoldError):
    """Raised when a template's hook exits with an error; `output` is what the hooks printed, on one line."""

    def __init__(self, message: str, *, template: str = "", output: str = "") -> None:
        super().__init__(message, template=template)
        self.output = output


class ScaffoldTimeout(ScaffoldError):
    """Raised when rendering takes longer than `seconds`; the child and every process it started are killed."""

    def __init__(self, message: str, *, template: str = "", seconds: float = 0.0) -> None:
        super().__init__(message, template=template)
        self.seconds = seconds


def one_line(text: str, limit: int = _MAX_OUTPUT) -> str:
    """`text` on one line, keeping its end (where a hook's verdict or an exception's message is)."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else "…" + flat[-(limit - 1):]


@dataclass(frozen=True, slots=True)
class Rendered:
    """A rendered project: its folder, and the cookiecutter context it was rendered with (`answers`)."""

    project: Path
    answers: Mapping[str, Any]


# -- the parent side --------------------------------------------------------------------------------------

def render(template: Path, output: Path, *, values: Mapping[str, Any], parameters: Mapping[str, Any],
           timeout: float = DEFAULT_TIMEOUT) -> Path:
    """Render the template folder `template` into a new project under `output`; return the project's folder.

    `values` are what Paved supplies (see `SUPPLIED_BY_PAVED`), `parameters` the request's
    `spec.template.parameters`. Raises `ParameterRefused`, `HookRefused`, `ScaffoldTimeout` or
    `ScaffoldError`, each with a one-line message.
    """
    return render_project(template, output, values=values, parameters=parameters, timeout=timeout).project


def render_project(template: Path, output: Path, *, values: Mapping[str, Any], parameters: Mapping[str, Any],
                   timeout: float = DEFAULT_TIMEOUT) -> Rendered:
    """As `render`, with the answers the project was rendered with."""
    name = template.name
    output = output.resolve()
    output.mkdir(parents=True, exist_ok=True)
    if not isinstance(parameters, Mapping):
        raise ParameterRefused("spec.template.parameters must be a mapping of names to values", template=name)
    request = json.dumps({"template": str(template.resolve()), "output": str(output),
                          "values": {str(k): v for k, v in values.items()},
                          "parameters": {str(k): v for k, v in parameters.items()},
                          "cpu_seconds": max(1, math.ceil(timeout))}, default=str)
    with tempfile.TemporaryDirectory(prefix="paved-scaffold-", ignore_cleanup_errors=True) as scratch:
        work = Path(scratch)
        (work / "home").mkdir()
        (work / "tmp").mkdir()
        env = {"PATH": _PATH, "HOME": str(work / "home"), "TMPDIR": str(work / "tmp"),
               "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
        answer, stderr, status = _run_child(request, work, env, timeout, name)
    printed = one_line(stderr.decode("utf-8", "replace"))
    if answer is None:
        stopped = (f"stopped by {signal.Signals(-status).name}" if status < 0 and -status in _SIGNALS
                   else f"exit status {status}")
        raise ScaffoldError(f"the renderer ended without an answer ({stopped}){': ' + printed if printed else ''}",
                            template=name)
    if "error" in answer:
        kind, message = answer["error"], one_line(str(answer.get("message", "")))
        if kind == "hook":
            raise HookRefused(message, template=name, output=printed)
        if kind == "parameter":
            raise ParameterRefused(message, template=name, parameter=str(answer.get("parameter", "")))
        raise ScaffoldError(message, template=name)
    project = Path(str(answer.get("project", ""))).resolve()
    if project.parent != output or not project.is_dir():
        raise ScaffoldError(f"the template rendered its project outside {output}", template=name)
    answers = answer.get("answers")
    if not isinstance(answers, dict):
        raise ScaffoldError("the renderer did not say what the project was rendered with", template=name)
    if printed:
        log.info("template %s printed: %s", name, printed)
    return Rendered(project, answers)


def write_record(project: Path, template: str, commit: str, answers: Mapping[str, Any]) -> Path:
    """Write `.paved/scaffold.json` into `project`, replacing whatever the template put there; its path.

    The template rendered the folder, so a `.paved` or record of its own (a link to elsewhere included)
    is removed first rather than written through.
    """
    folder = project / RECORD_FOLDER
    for path in (folder, folder / RECORD_FILE):
        if path.is_symlink() or (path.exists() and not path.is_dir()):
            path.unlink()
        elif path.is_dir() and path.name == RECORD_FILE:
            shutil.rmtree(path)
    folder.mkdir(exist_ok=True)
    file = folder / RECORD_FILE
    file.write_text(ScaffoldRecord(template, commit, answers).text(), encoding="utf-8")
    return file


# What a recorded answer Paved supplies may be: a name like those Paved takes (name, owner, organization),
# or a line of text of reasonable length (the rest).
_NAMED = ("name", "owner", "_github_org")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_TEXT_LIMIT = 4096


def recorded_inputs(config: Mapping[str, Any], answers: Mapping[str, Any],
                    template: str = "") -> tuple[dict[str, Any], dict[str, Any]]:
    """The `values` and `parameters` that render a template again as a project's record says it was
    rendered: the record's answers split by the template's own `cookiecutter.json` (`config`).

    The record lives in the project's repository, which its team may write, so its answers are hostile
    data. Only what a request could have given is taken: Paved's own values (`SUPPLIED_BY_PAVED`) as text
    of the shape Paved gives, and the template's public questions as parameters, which `build_context`
    checks as it checks a request's (a choice among the options, true or false). Private keys
    (`_extensions`, `_copy_without_render`, `_jinja2_env_vars`, `__package` ...) and dictionary variables
    always come from `config`, whatever the record says; keys the template does not ask are ignored.
    """
    values: dict[str, Any] = {}
    for key in SUPPLIED_BY_PAVED:
        if key not in answers or key not in config:
            continue
        value = answers[key]
        if not isinstance(value, str) or len(value) > _TEXT_LIMIT or (key in _NAMED and not _NAME.match(value)):
            raise ParameterRefused(f"the recorded answer `{key}` is not one Paved gives ({_short(value)})",
                                   template=template, parameter=key)
        values[key] = value
    parameters = {key: answers[key] for key, default in config.items()
                  if key in answers and not key.startswith("_") and key not in SUPPLIED_BY_PAVED
                  and not isinstance(default, dict)}
    return values, parameters


def _short(value: Any) -> str:
    shown = json.dumps(value, ensure_ascii=True, default=str)
    return shown if len(shown) <= 60 else shown[:59] + "…"


def answers_digest(answers: Mapping[str, Any]) -> str:
    """A digest of the answers that does not depend on how they are laid out: `sha256:HEX`."""
    canonical = json.dumps(dict(answers), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _run_child(request: str, work: Path, env: dict[str, str], timeout: float,
               name: str) -> tuple[dict[str, Any] | None, bytes, int]:
    """Run the child with `request` on stdin; its JSON answer (None if it gave none), stderr and exit status."""
    child = subprocess.Popen([sys.executable, "-I", "-m", "bot.adapters.scaffold"], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=work, env=env,
                             start_new_session=True, close_fds=True)
    try:
        stdout, stderr = child.communicate(request.encode("utf-8"), timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(child.pid)
        try:
            child.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            # Something left the process group and still holds the pipes: stop reading them.
            for pipe in (child.stdout, child.stderr):
                if pipe is not None:
                    pipe.close()
            child.wait()
        raise ScaffoldTimeout(f"template {name} took longer than {timeout:g} s", template=name,
                              seconds=timeout) from None
    finally:
        # Hooks' children that closed their pipes may still run after the child ended: end them too.
        _kill_group(child.pid)
    try:
        answer = json.loads(stdout.decode("utf-8"))
    except ValueError:
        return None, stderr, child.returncode
    return (answer if isinstance(answer, dict) else None), stderr, child.returncode


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):  # the group is gone already
        os.killpg(pgid, signal.SIGKILL)


# -- the child side ---------------------------------------------------------------------------------------

def build_context(config: Mapping[str, Any], values: Mapping[str, Any], parameters: Mapping[str, Any],
                  template: str = "") -> dict[str, Any]:
    """cookiecutter's context (`cookiecutter` and `_cookiecutter`) for `config`, with values as data.

    `config` is the template's `cookiecutter.json`; see the module's docstring for the rules.
    """
    from cookiecutter.exceptions import UndefinedVariableInTemplate
    from cookiecutter.prompt import render_variable
    from cookiecutter.utils import create_env_with_context
    from jinja2.exceptions import UndefinedError

    raw = {key: value for key, value in config.items() if key != "__prompts__"}
    if {"template", "templates"} & raw.keys():
        raise ScaffoldError("templates that nest other templates (`template`, `templates`) are not supported",
                            template=template)
    given = {key: value for key, value in values.items() if key in raw}
    for key, value in parameters.items():
        given[key] = _parameter(raw, key, value, template)
    env = create_env_with_context({"cookiecutter": raw})

    built: dict[str, Any] = {}
    original: dict[str, Any] = {}  # cookiecutter.json as overridden, before rendering: `_cookiecutter`
    # As cookiecutter's `prompt_for_config` without input: public dictionaries after everything else.
    later = [key for key, default in raw.items()
             if isinstance(default, dict) and not key.startswith("_") and key not in given]
    for key in [*(key for key in raw if key not in later), *later]:
        default = raw[key]
        try:
            if key in given and isinstance(default, list) and given[key] in default:
                # One of the template's own options: rendered as cookiecutter renders the chosen one.
                built[key] = render_variable(env, default[default.index(given[key])], built)
                original[key] = [given[key], *(o for o in default if o != given[key])]
                continue
            if key in given:
                built[key] = given[key]
            elif key.startswith("_") and not key.startswith("__"):
                built[key] = default
            elif isinstance(default, list) and not key.startswith("__"):
                if not default:
                    raise ScaffoldError(f"the choice list `{key}` is empty", template=template)
                built[key] = render_variable(env, default[0], built)
            else:
                built[key] = render_variable(env, default, built)
        except UndefinedError as exc:
            raise UndefinedVariableInTemplate(f"Unable to render variable '{key}'", exc,
                                              {"cookiecutter": raw}) from exc
        original[key] = given.get(key, default)
    ordered = {key: built[key] for key in raw if key in built}
    return {"cookiecutter": ordered, "_cookiecutter": {k: v for k, v in original.items() if not k.startswith("_")}}


def _parameter(raw: Mapping[str, Any], key: str, value: Any, template: str) -> Any:
    """A request's parameter, checked against cookiecutter.json: the value to use, verbatim."""
    public = [k for k, v in raw.items() if not k.startswith("_") and k not in SUPPLIED_BY_PAVED
              and not isinstance(v, dict)]
    known = f"its parameters: {', '.join(public)}" if public else "it has no parameters"
    if key.startswith("_"):
        raise ParameterRefused(f"`{key}` is a private variable of template {template}, which a request cannot "
                               f"set; {known}", template=template, parameter=key)
    if key in SUPPLIED_BY_PAVED:
        raise ParameterRefused(f"`{key}` is filled by Paved from the request's metadata, not a parameter; "
                               f"{known}", template=template, parameter=key)
    if key not in raw or isinstance(raw[key], dict):
        raise ParameterRefused(f"template {template} has no parameter `{key}`; {known}", template=template,
                               parameter=key)
    default = raw[key]
    if isinstance(default, list):
        if value not in default or isinstance(value, bool) != any(isinstance(o, bool) for o in default):
            raise ParameterRefused(f"parameter `{key}` must be one of {', '.join(map(str, default))}; got {value!r}",
                                   template=template, parameter=key)
        return value
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ParameterRefused(f"parameter `{key}` must be true or false; got {value!r}", template=template,
                                   parameter=key)
        return value
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ParameterRefused(f"parameter `{key}` must be text or a number; got {value!r}", template=template,
                               parameter=key)
    return value if isinstance(value, str) else str(value)


def _generate(request: Mapping[str, Any]) -> dict[str, Any]:
    """Render the project the parent asked for; the answer: the project's folder and its answers."""
    from cookiecutter.generate import generate_files
    from cookiecutter.hooks import run_pre_prompt_hook

    template = Path(request["template"])
    output = Path(request["output"])
    repo_dir = Path(run_pre_prompt_hook(str(template)))
    # cookiecutter lets a template import its own modules (local Jinja2 extensions) from its folder.
    sys.path.append(str(repo_dir))
    config_file = repo_dir / "cookiecutter.json"
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ScaffoldError(f"cookiecutter.json cannot be read: {exc}", template=template.name) from None
    if not isinstance(config, dict):
        raise ScaffoldError("cookiecutter.json must be a JSON object", template=template.name)
    context = build_context(config, request["values"], request["parameters"], template.name)
    answers = {k: v for k, v in context["cookiecutter"].items() if k not in _PATHS}
    context["cookiecutter"].update({"_template": str(template), "_output_dir": str(output.resolve()),
                                    "_repo_dir": str(repo_dir), "_checkout": None})
    project = generate_files(repo_dir=str(repo_dir), context=context, output_dir=str(output),
                             overwrite_if_exists=False, skip_if_file_exists=False, accept_hooks=True,
                             keep_project_on_failure=False)
    return {"project": str(project), "answers": answers}


def _limit(cpu_seconds: int) -> None:
    """Resource limits for this process and everything it starts (set here, not in a `preexec_fn`,
    which is unsafe in a parent with threads, as Paved's service is)."""
    import resource

    for limit, value in ((resource.RLIMIT_CPU, cpu_seconds), (resource.RLIMIT_FSIZE, _MAX_FILE_BYTES),
                         (resource.RLIMIT_CORE, 0)):
        _, hard = resource.getrlimit(limit)
        capped = value if hard == resource.RLIM_INFINITY else min(value, hard)
        resource.setrlimit(limit, (capped, capped))


def main() -> int:
    """The child's entry point: a JSON request on stdin, a JSON answer on stdout, hooks' output on stderr."""
    import warnings

    answer_to = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # hooks inherit fd 1: what they print goes with their errors, never into the answer
    logging.disable(logging.CRITICAL)  # cookiecutter logs failures with tracebacks; the answer says it all
    warnings.simplefilter("ignore")
    answer: dict[str, Any]
    try:
        request = json.load(sys.stdin)
        _limit(int(request.get("cpu_seconds", DEFAULT_TIMEOUT)))
        answer = _generate(request)
    except ParameterRefused as exc:
        answer = {"error": "parameter", "message": exc.message, "parameter": exc.parameter}
    except ScaffoldError as exc:
        answer = {"error": "render", "message": exc.message}
    except Exception as exc:  # the boundary of the child: every failure becomes an answer, never a traceback
        from cookiecutter.exceptions import FailedHookException

        kind = "hook" if isinstance(exc, FailedHookException) else "render"
        message = str(exc) if kind == "hook" else f"{type(exc).__name__}: {exc}"
        answer = {"error": kind, "message": one_line(message)}
    answer_to.write(json.dumps(answer, default=str))
    answer_to.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
