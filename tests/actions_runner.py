"""A GitHub Actions runner for tests: Paved's workflow files run against the sandbox forge as a runner runs them.

`ActionsRunner.run_jobs(workflow, event, payload)` picks the jobs whose `if:` holds for the event and runs
each job's `run:` steps with bash, in the environment a runner gives (GITHUB_EVENT_NAME, GITHUB_EVENT_PATH,
GITHUB_REF, GITHUB_REPOSITORY, GITHUB_API_URL at the sandbox, GITHUB_STEP_SUMMARY, RUNNER_TEMP), with
`${{ }}` expressions filled in. `github.token` is a job token the sandbox makes for the job's declared
`permissions:` (read-only for a fork's pull request, as GitHub makes it). The workflow file is read as
GitHub reads it: from the default branch for `workflow_run`, `issue_comment` and a push to it, from the
pull request's head for `pull_request` and `pull_request_review` (so a pull request may change it).

Secrets are given as GitHub gives them: a fork's pull request gets none; an environment's secrets go only
to a job that declares the environment, and a job whose run's ref (`refs/pull/N/merge` for a pull
request, the default branch for `workflow_run` and `issue_comment`, the pushed branch for `push`) the
environment's deployment branch policy does not allow fails before its first step. Jobs of one
`concurrency:` group run one at a time. Every job leaves a check run named after it on the commit it ran
for, published by GitHub Actions' own app, as GitHub does.

`uses:` steps are stood in for by what they do: checkout clones the sandbox repository at the event's
commit; setup-python does nothing; create-github-app-token exchanges the `app-id` and `private-key` it is
given for an installation token of that App (and fails the step when they are not an App's);
upload-artifact and download-artifact copy to and from a folder per artifact name. The step that installs
Paved from its release is stood in for by the Paved under test, on the PATH as `paved`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
import yaml
from github import Auth, GithubException, GithubIntegration

from bot.sandbox import Sandbox
from tests.conftest import PROJECT

EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}", re.S)
TOKEN = re.compile(r"\s*(?:(?P<string>'(?:[^']|'')*')|(?P<op>==|!=|&&|\|\||!|\(|\)|,)|(?P<word>[A-Za-z_][\w.\-]*))")


def evaluate(expression: str, contexts: dict[str, Any]) -> Any:
    """A GitHub Actions expression: context paths, strings, ==, !=, &&, ||, !, always() and contains()."""
    tokens: list[tuple[str, str]] = []
    position = 0
    while position < len(expression.rstrip()):
        match = TOKEN.match(expression, position)
        if match is None:
            raise ValueError(f"cannot read the expression {expression!r} at {position}")
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        position = match.end()
    index = 0

    def peek() -> str:
        return tokens[index][1] if index < len(tokens) else ""

    def take() -> tuple[str, str]:
        nonlocal index
        index += 1
        return tokens[index - 1]

    def primary() -> Any:
        kind, text = take()
        if text == "!":
            return not primary()
        if text == "(":
            value = either()
            take()
            return value
        if kind == "string":
            return text[1:-1].replace("''", "'")
        if peek() == "(":
            take()
            args = []
            while peek() != ")":
                args.append(either())
                if peek() == ",":
                    take()
            take()
            if text == "always":
                return True
            if text == "contains":
                return str(args[1]).lower() in str(args[0]).lower()
            raise ValueError(f"no function {text} in this runner")
        value: Any = contexts
        for part in text.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        return value

    def comparison() -> Any:
        left = primary()
        while peek() in ("==", "!="):
            op = take()[1]
            right = primary()
            left = (left == right) if op == "==" else (left != right)
        return left

    def both() -> Any:
        left = comparison()
        while peek() == "&&":
            take()
            right = comparison()
            left = left and right
        return left

    def either() -> Any:
        left = both()
        while peek() == "||":
            take()
            right = both()
            left = left or right
        return left

    return either()


def substitute(text: str, contexts: dict[str, Any]) -> str:
    return EXPRESSION.sub(lambda m: "" if (v := evaluate(m.group(1), contexts)) is None else str(v), text)


@dataclass
class JobRun:
    """What one job did: each step's exit code in order, what the job printed, and its summary."""

    name: str
    codes: list[int] = field(default_factory=list)
    output: str = ""
    summary: str = ""

    @property
    def returncode(self) -> int:
        return next((code for code in self.codes if code), 0)


class StepFailed(Exception):
    """Raised by a stand-in for an action when the action would fail its step; the message is its log."""


@dataclass(frozen=True)
class Environment:
    """A deployment environment of acme/platform: the branches its policy lets deploy, and its secrets."""

    branches: tuple[str, ...]
    secrets: dict[str, str]


@dataclass
class ActionsRunner:
    """Runs acme/platform's workflows for events, each job in its own folder under `root`.

    `secrets` are the repository's own; `environments` its deployment environments by name.
    """

    forge: Sandbox
    root: Path
    secrets: dict[str, str] = field(default_factory=dict)
    environments: dict[str, Environment] = field(default_factory=dict)
    artifacts: Path = field(init=False)
    _groups: dict[str, threading.Lock] = field(init=False, default_factory=dict)
    _groups_lock: threading.Lock = field(init=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.artifacts = self.root / "artifacts"
        self.artifacts.mkdir(parents=True, exist_ok=True)
        bin_dir = self.root / "bin"
        bin_dir.mkdir(exist_ok=True)
        shim = bin_dir / "paved"
        shim.write_text(f"#!/bin/sh\nexec {sys.executable} -c "
                        "'import sys; from bot.cli import main; sys.exit(main())' \"$@\"\n")
        shim.chmod(0o755)
        self.bin_dir = bin_dir

    def workflow(self, file: str, event: str, payload: dict[str, Any]) -> dict[str, Any]:
        """The workflow file as GitHub would read it for this event."""
        if event in ("pull_request", "pull_request_review"):
            ref = f"refs/pull/{payload['pull_request']['number']}/head"
        elif event == "push":
            ref = payload["after"]
        else:  # workflow_run, issue_comment: the default branch's copy, whatever the event is about
            ref = payload["repository"]["default_branch"]
        try:
            text = self.forge.read_file("acme", "platform", f".github/workflows/{file}", ref=ref).decode()
        except Exception:  # the repository has not adopted the workflow: the project's own copy
            text = (PROJECT / ".github" / "workflows" / file).read_text()
        document = yaml.safe_load(text)
        assert isinstance(document, dict)
        return document

    def jobs_for(self, document: dict[str, Any], contexts: dict[str, Any]) -> list[str]:
        return [name for name, job in document["jobs"].items()
                if "if" not in job or evaluate(str(job["if"]), contexts)]

    def run_jobs(self, file: str, event: str, payload: dict[str, Any], *, only: str | None = None) -> list[JobRun]:
        """Run every job of `file` whose `if:` holds for `event` (or only the job named `only`)."""
        document = self.workflow(file, event, payload)
        contexts = {"github": {"event_name": event, "event": payload, "repository": "acme/platform",
                               "ref": self.ref(event, payload)}}
        return [self.run_job(document, name, event, payload, contexts)
                for name in self.jobs_for(document, contexts) if only in (None, name)]

    @staticmethod
    def ref(event: str, payload: dict[str, Any]) -> str:
        """GITHUB_REF of a run for `event`, as GitHub sets it."""
        if event in ("pull_request", "pull_request_review"):
            return f"refs/pull/{payload['pull_request']['number']}/merge"
        if event == "push":
            return str(payload["ref"])
        return f"refs/heads/{payload['repository']['default_branch']}"

    def secrets_for(self, job: dict[str, Any], event: str, payload: dict[str, Any], ref: str) -> dict[str, str]:
        """The secrets GitHub gives `job`; `StepFailed` when its environment may not be deployed from `ref`."""
        if self._fork(event, payload):
            return {}
        environment = job.get("environment")
        name = environment.get("name") if isinstance(environment, dict) else environment
        if name is None:
            return dict(self.secrets)
        found = self.environments.get(str(name), Environment((), {}))
        if not (ref.startswith("refs/heads/") and ref.removeprefix("refs/heads/") in found.branches):
            raise StepFailed(f"Branch \"{ref}\" is not allowed to deploy to {name} due to environment "
                             "protection rules.")
        return {**self.secrets, **found.secrets}

    def commit_of(self, event: str, payload: dict[str, Any]) -> str:
        """The commit a run for `event` is shown on (its jobs' check runs)."""
        if event in ("pull_request", "pull_request_review"):
            return str(payload["pull_request"]["head"]["sha"])
        if event == "push":
            return str(payload["after"])
        return self.forge.branch_sha("acme", "platform", payload["repository"]["default_branch"]) or ""

    def report_job(self, job: dict[str, Any], name: str, sha: str, done: JobRun) -> None:
        """The check run GitHub Actions makes for a job: named after it, by GitHub Actions' own app."""
        token = self.forge.job_token("acme", "platform", {"checks": "write"})
        answer = requests.post(f"{self.forge.api_url}/repos/acme/platform/check-runs", timeout=30, json={
            "name": str(job.get("name") or name), "head_sha": sha, "status": "completed",
            "conclusion": "failure" if done.returncode else "success"},
            headers={"Authorization": f"token {token}", "Accept": "application/vnd.github+json"})
        answer.raise_for_status()

    def _fork(self, event: str, payload: dict[str, Any]) -> bool:
        pr = payload.get("pull_request") or {}
        return event in ("pull_request", "pull_request_review") and (
            ((pr.get("head") or {}).get("repo") or {}).get("full_name") != "acme/platform")

    def run_job(self, document: dict[str, Any], name: str, event: str, payload: dict[str, Any],
                contexts: dict[str, Any]) -> JobRun:
        job = document["jobs"][name]
        done = JobRun(name)
        # GitHub runs the jobs of one concurrency group one at a time (`cancel-in-progress: false` queues).
        group = substitute(str((job.get("concurrency") or {}).get("group") or uuid.uuid4()), contexts)
        with self._groups_lock:
            lock = self._groups.setdefault(group, threading.Lock())
        with lock:
            try:
                self._run_steps(job, done, event, payload, contexts)
            except StepFailed as failed:
                done.codes.append(1)
                done.output += f"{failed}\n"
        self.report_job(job, name, self.commit_of(event, payload), done)
        return done

    def _run_steps(self, job: dict[str, Any], done: JobRun, event: str, payload: dict[str, Any],
                   contexts: dict[str, Any]) -> None:
        secrets = self.secrets_for(job, event, payload, contexts["github"]["ref"])
        name = done.name
        folder = self.root / f"{name}-{uuid.uuid4().hex[:8]}"  # jobs may run at once
        temp, workspace = folder / "temp", folder / "workspace"
        temp.mkdir(parents=True)
        workspace.mkdir()
        (folder / "event.json").write_text(json.dumps(payload), encoding="utf-8")
        permissions = {k.replace("-", "_"): v for k, v in (job.get("permissions") or {}).items()
                       if k in ("checks", "contents", "issues", "pull-requests", "actions", "statuses")}
        token = self.forge.job_token("acme", "platform", permissions, fork=self._fork(event, payload))
        contexts = {**contexts, "runner": {"temp": str(temp)}, "steps": {}, "secrets": secrets,
                    "github": {**contexts["github"], "token": token}}
        base = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "RUNNER_", "PAVED_"))}
        env = {**base, "GITHUB_EVENT_NAME": event, "GITHUB_EVENT_PATH": str(folder / "event.json"),
               "GITHUB_REPOSITORY": "acme/platform", "GITHUB_API_URL": self.forge.api_url,
               "GITHUB_SERVER_URL": self.forge.url, "GITHUB_STEP_SUMMARY": str(folder / "summary.md"),
               "GITHUB_REF": contexts["github"]["ref"],
               "GITHUB_RUN_ID": str(uuid.uuid4().int % 10**9), "GITHUB_RUN_ATTEMPT": "1",
               "GITHUB_WORKSPACE": str(workspace), "RUNNER_TEMP": str(temp), "CI": "true",
               "PYTHONPATH": str(PROJECT), "PATH": f"{self.bin_dir}:{base.get('PATH', '')}"}
        for step in job["steps"]:
            if "if" in step and not evaluate(str(step["if"]), contexts):
                continue
            if "uses" in step:
                outputs = self._stand_in(step, contexts, workspace, payload)
                if "id" in step:
                    contexts["steps"][step["id"]] = {"outputs": outputs}
                continue
            script = str(step["run"])
            if "pip install" in script and "paved" in script:
                continue  # the Paved under test is on the PATH already
            step_env = {k: substitute(str(v), contexts) for k, v in (step.get("env") or {}).items()}
            ran = subprocess.run(["bash", "-e", "-c", substitute(script, contexts)], env={**env, **step_env},
                                 cwd=workspace, capture_output=True, text=True, timeout=120)
            done.codes.append(ran.returncode)
            done.output += ran.stdout + ran.stderr
            if ran.returncode:
                contexts["failed"] = True
                break
        summary = folder / "summary.md"
        done.summary = summary.read_text(encoding="utf-8") if summary.exists() else ""

    def _stand_in(self, step: dict[str, Any], contexts: dict[str, Any], workspace: Path,
                  payload: dict[str, Any]) -> dict[str, str]:
        action = str(step["uses"]).split("@", 1)[0]
        given = {k: substitute(str(v), contexts) for k, v in (step.get("with") or {}).items()}
        if action == "actions/checkout":
            sha = (payload.get("pull_request") or {}).get("head", {}).get("sha") or payload.get("after")
            subprocess.run(["git", "clone", "--quiet", self.forge.clone_url("acme", "platform"), str(workspace)],
                           check=True, capture_output=True)
            if sha:
                subprocess.run(["git", "-C", str(workspace), "checkout", "--quiet", sha], check=True,
                               capture_output=True)
        elif action == "actions/create-github-app-token":
            return self._app_token(given.get("app-id", ""), given.get("private-key", ""))
        elif action == "actions/upload-artifact":
            source = Path(given["path"])
            if source.exists():
                shutil.copytree(source, self.artifacts / given["name"], dirs_exist_ok=True)
        elif action == "actions/download-artifact":
            stored = self.artifacts / given["name"]
            if stored.exists():
                shutil.copytree(stored, Path(given["path"]), dirs_exist_ok=True)
        elif action != "actions/setup-python":
            raise AssertionError(f"this runner has no stand-in for {action}")
        return {}

    def _app_token(self, app_id: str, private_key: str) -> dict[str, str]:
        """What create-github-app-token does: the App's key for an installation token on acme."""
        if not app_id.isdigit() or not private_key:
            raise StepFailed("create-github-app-token: [@octokit/auth-app] appId and privateKey are required")
        try:
            integration = GithubIntegration(base_url=self.forge.api_url, auth=Auth.AppAuth(int(app_id), private_key))
            installation = integration.get_repo_installation("acme", "platform")
            token = integration.get_access_token(installation.id).token
            slug = integration.get_app().slug
        except (GithubException, ValueError) as exc:
            raise StepFailed(f"create-github-app-token: {type(exc).__name__}: {exc}") from None
        return {"token": token, "app-slug": slug or ""}

