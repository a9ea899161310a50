"""`paved ci` as a GitHub Actions runner runs it: a real process, real HTTP, real events.

The sandbox forge plays GitHub. The job's token is an installation token of an app named like GitHub
Actions' own (installed on acme, so its comments come from `github-actions[bot]`), the event payload is
the one the forge delivered for what just happened, and the environment is the one a runner sets.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.errors import ConfigurationError
from bot.settings import ActionsSettings
from tests.conftest import AB_TESTING, PROJECT, REPO, World, experimental_change

# `paved ci` as the `paved` command runs it: the command on its own parser.
PAVED = [sys.executable, "-c",
         "import argparse, sys; from bot.ci import add_commands; "
         "parser = argparse.ArgumentParser(prog='paved'); "
         "add_commands(parser.add_subparsers(dest='command', required=True)); "
         "args = parser.parse_args(sys.argv[1:]); sys.exit(args.func(args))"]
GROWTH = "catalog/teams/growth.yaml"


@dataclass
class Runner:
    """One GitHub Actions runner for acme/platform: the job's environment, and `paved ci` run in it."""

    world: World
    folder: Path
    token: str

    @property
    def summary(self) -> Path:
        return self.folder / "step-summary.md"

    def environment(self, event: str) -> dict[str, str]:
        # Nothing of the machine's own GitHub variables (the suite may itself run in Actions) leaks in.
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "RUNNER_"))}
        return {**env, "GITHUB_EVENT_NAME": event, "GITHUB_EVENT_PATH": str(self.folder / "event.json"),
                "GITHUB_TOKEN": self.token, "GITHUB_API_URL": self.world.forge.api_url,
                "GITHUB_SERVER_URL": self.world.forge.url, "GITHUB_REPOSITORY": REPO,
                "GITHUB_STEP_SUMMARY": str(self.summary), "GITHUB_RUN_ID": "4242", "GITHUB_RUN_ATTEMPT": "1",
                "RUNNER_TEMP": str(self.folder / "temp")}

    def run(self, event: str, action: str | None = None, *, env: dict[str, str] | None = None,
            ) -> subprocess.CompletedProcess[str]:
        """Run `paved ci` for the latest delivery of `event` (and `action`) from the forge's log."""
        (self.folder / "event.json").write_text(json.dumps(self.world.delivered(event, action)), encoding="utf-8")
        return paved_ci(env or self.environment(event))


def paved_ci(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*PAVED, "ci"], env=env, cwd=PROJECT, capture_output=True, text=True, timeout=60)


@pytest.fixture
def runner(world: World, tmp_path: Path) -> Runner:
    """A runner whose job has its own token, with what paved.yml grants a plan job."""
    folder = tmp_path / "runner"
    (folder / "temp").mkdir(parents=True)
    return Runner(world, folder, world.forge.job_token("acme", "platform", JOB_PERMISSIONS))


# What the platform's own GitHub App needs to apply (README: "Paved with nothing to host").
APP_PERMISSIONS = {"checks": "write", "contents": "write", "issues": "write", "pull_requests": "write",
                   "metadata": "read", "members": "write", "administration": "write", "secrets": "write",
                   "organization_custom_properties": "admin"}
JOB_PERMISSIONS = {"checks": "write", "contents": "write", "issues": "write", "pull_requests": "write"}


@pytest.fixture
def app_runner(world: World, tmp_path: Path) -> Runner:
    """A runner whose job minted an installation token of the platform's App (create-github-app-token)."""
    app = world.forge.create_app("acme", "acme-paved", permissions=APP_PERMISSIONS)
    installation = world.forge.install_app(app.id, "acme")
    folder = tmp_path / "app-runner"
    (folder / "temp").mkdir(parents=True)
    return AppRunner(world, folder, world.forge.installation_token(installation.id))


@dataclass
class AppRunner(Runner):
    def environment(self, event: str) -> dict[str, str]:
        return {**super().environment(event), "PAVED_APP_SLUG": "acme-paved"}


def open_pr(world: World, old: str, new: str, *, draft: bool = False) -> int:
    text = world.forge.read_file("acme", "platform", GROWTH).decode().replace(old, new)
    world.forge.push_files("acme", "platform", "change", {GROWTH: text}, by="carol")
    return world.forge.open_pull_request("acme", "platform", head="change", title="Change growth", by="carol",
                                         draft=draft).number


def test_a_pull_request_gets_its_plan_comment_and_check_run(runner: Runner) -> None:
    number = experimental_change(runner.world.forge, "change", by="carol")

    done = runner.run("pull_request", "opened")

    assert done.returncode == 0, done.stderr
    [comment] = runner.world.plan_comments(number)
    assert "1 to update" in comment
    assert runner.world.check(number)[0] == "success"


def test_the_plan_is_published_as_github_actions(runner: Runner) -> None:
    number = open_pr(runner.world, "monthly: 80", "monthly: 90")

    runner.run("pull_request", "opened")

    issue = runner.world.ctx.forge._repo(REPO).get_issue(number)  # type: ignore[attr-defined]
    assert [c.user.login for c in issue.get_comments()] == ["github-actions[bot]"]


def test_a_typo_is_printed_as_an_error_annotation_and_fails_the_step(runner: Runner) -> None:
    open_pr(runner.world, "monthly: 80", "montly: 80")

    done = runner.run("pull_request", "opened")

    assert done.returncode == 1, done.stderr
    errors = [line for line in done.stdout.splitlines() if line.startswith("::error ")]
    assert errors and all(line.startswith(f"::error file={GROWTH},line=") for line in errors)


def test_a_typo_is_annotated_on_the_check_run(runner: Runner) -> None:
    number = open_pr(runner.world, "monthly: 80", "montly: 80")

    runner.run("pull_request", "opened")

    conclusion, _title, annotations = runner.world.check(number)
    assert (conclusion, annotations > 0) == ("failure", True)


def test_the_step_summary_receives_the_plan(runner: Runner) -> None:
    open_pr(runner.world, "monthly: 80", "monthly: 90")

    runner.run("pull_request", "opened")

    summary = runner.summary.read_text(encoding="utf-8")
    assert "\n<!-- paved:plan -->\n" in summary and "1 to update" in summary


def test_the_outcome_is_one_line_naming_the_event_and_what_paved_did(runner: Runner) -> None:
    open_pr(runner.world, "monthly: 80", "monthly: 90")  # a team's budget: the team must approve

    done = runner.run("pull_request", "opened")

    assert done.stdout.splitlines()[-1] == "paved ci: pull_request.opened: plan: published waiting"


def test_a_plan_command_from_a_reader_is_politely_refused(runner: Runner) -> None:
    number = open_pr(runner.world, "monthly: 80", "monthly: 90")
    runner.world.forge.comment("acme", "platform", number, "/paved plan", by="erin")

    done = runner.run("issue_comment", "created")

    assert done.returncode == 0, done.stderr
    [answer] = [body for body in runner.world.comments(number) if body.startswith("Sorry @&#8203;erin")]
    assert "needs **write** permission" in answer and "you have **read**" in answer
    assert runner.world.plan_comments(number) == []


def test_a_plan_command_on_a_pull_request_with_errors_fails_the_step(runner: Runner) -> None:
    number = open_pr(runner.world, "monthly: 80", "montly: 80")
    runner.world.forge.comment("acme", "platform", number, "/paved plan", by="bob")

    done = runner.run("issue_comment", "created")

    assert done.returncode == 1, done.stderr
    assert any(line.startswith(f"::error file={GROWTH},line=") for line in done.stdout.splitlines())


def test_a_comment_writes_what_paved_did_to_the_step_summary(runner: Runner) -> None:
    number = open_pr(runner.world, "monthly: 80", "monthly: 90")
    runner.world.forge.comment("acme", "platform", number, "/paved help", by="bob")

    done = runner.run("issue_comment", "created")

    assert done.returncode == 0, done.stderr
    summary = runner.summary.read_text(encoding="utf-8")
    assert summary.startswith("**paved ci: issue\\_comment.created: comment: replied")


def test_an_apply_that_applies_nothing_fails_the_step_and_says_why_in_the_summary(app_runner: Runner) -> None:
    runner = app_runner
    text = runner.world.forge.read_file("acme", "platform", GROWTH).decode().replace("monthly: 80", "montly: 80")
    runner.world.forge.push_files("acme", "platform", "main", {GROWTH: text}, by="alice")

    done = runner.run("push")

    assert done.returncode == 1, done.stdout + done.stderr
    assert "nothing was applied" in runner.summary.read_text(encoding="utf-8")


def test_a_database_with_no_server_in_paved_yaml_fails_the_plan_at_its_engine_line(runner: Runner) -> None:
    text = runner.world.forge.read_file("acme", "platform", AB_TESTING).decode().replace(
        "retentionDays: 3", "retentionDays: 5")
    runner.world.forge.push_files("acme", "platform", "change", {AB_TESTING: text}, by="carol")
    number = runner.world.forge.open_pull_request("acme", "platform", head="change", title="Keep more",
                                                  by="carol").number

    done = runner.run("pull_request", "opened")

    engine = text.splitlines().index("  engine: postgres") + 1
    assert done.returncode == 1, done.stderr
    assert any(line.startswith(f"::error file={AB_TESTING},line={engine},") and "needs a database server" in line
               for line in done.stdout.splitlines())
    assert runner.world.check(number)[0] == "failure"


def test_an_apply_of_a_database_with_no_server_makes_no_file_on_the_runner(app_runner: Runner) -> None:
    runner = app_runner
    text = runner.world.forge.read_file("acme", "platform", AB_TESTING).decode().replace(
        "retentionDays: 3", "retentionDays: 5")
    runner.world.forge.push_files("acme", "platform", "main", {AB_TESTING: text}, by="alice")

    done = runner.run("push")

    assert done.returncode == 1, done.stdout + done.stderr
    assert "needs a database server" in runner.summary.read_text(encoding="utf-8")
    assert list((runner.folder / "temp").rglob("*.sqlite3")) == []


def test_an_apply_with_the_jobs_own_token_exits_2_naming_every_permission_it_lacks(runner: Runner) -> None:
    runner.world.forge.push_files("acme", "platform", "main", {"README.md": "acme's platform\n"}, by="alice")

    done = runner.run("push")

    assert done.returncode == 2, done.stdout + done.stderr
    for needed in ("members: write", "administration: write", "secrets: write",
                   "organization_custom_properties: admin"):
        assert needed in done.stderr
    assert "GitHub accepts members=write" in done.stderr and "create-github-app-token" in done.stderr
    assert "cannot apply with this token" in runner.summary.read_text(encoding="utf-8")
    assert "Traceback" not in done.stderr


def test_a_retry_with_the_jobs_own_token_exits_2_before_applying_anything(runner: Runner) -> None:
    number = experimental_change(runner.world.forge, "change", by="carol")
    runner.world.forge.comment("acme", "platform", number, "/paved retry", by="bob")

    done = runner.run("issue_comment", "created")

    assert done.returncode == 2, done.stdout + done.stderr
    assert "cannot apply again (/paved retry) with this token" in done.stderr
    assert runner.world.comments(number)[-1] == "/paved retry"


def test_an_apply_with_the_platform_apps_token_gets_past_the_token_check(app_runner: Runner) -> None:
    app_runner.world.forge.push_files("acme", "platform", "main", {"README.md": "acme's platform\n"}, by="alice")

    done = app_runner.run("push")

    assert "paved ci: push: apply:" in done.stdout, done.stderr
    assert "cannot apply" not in done.stderr


def test_a_draft_pull_request_is_left_alone_and_the_step_passes(runner: Runner) -> None:
    number = open_pr(runner.world, "monthly: 80", "monthly: 90", draft=True)

    done = runner.run("pull_request", "opened")

    assert (done.returncode, runner.world.comments(number)) == (0, [])
    assert "draft pull requests are planned when they are ready for review" in runner.summary.read_text()


def test_missing_variables_exit_2_with_a_message_naming_them_and_no_traceback(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "RUNNER_"))}
    env |= {"GITHUB_EVENT_NAME": "pull_request", "GITHUB_REPOSITORY": REPO}

    done = paved_ci(env)

    assert done.returncode == 2
    assert "GITHUB_EVENT_PATH, GITHUB_TOKEN are not set" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout


def test_an_unreadable_event_file_exits_2_naming_it(runner: Runner) -> None:
    env = runner.environment("pull_request")

    done = paved_ci(env)  # the runner wrote no event file

    assert done.returncode == 2
    assert f"GITHUB_EVENT_PATH={runner.folder / 'event.json'} cannot be read" in done.stderr
    assert "Traceback" not in done.stderr


# -- the settings, on their own ------------------------------------------------------------------------


RUNNER_ENV = {"GITHUB_EVENT_NAME": "push", "GITHUB_EVENT_PATH": "/home/runner/_temp/event.json",
              "GITHUB_TOKEN": "ghs_" + "x" * 36, "GITHUB_REPOSITORY": REPO, "RUNNER_TEMP": "/home/runner/_temp",
              "HOME": "/home/runner"}


def test_the_api_and_web_addresses_default_to_github_com() -> None:
    settings = ActionsSettings.from_env(RUNNER_ENV)

    assert (settings.api_url, settings.repo_url) == ("https://api.github.com", "https://github.com/acme/platform")


def test_the_data_folder_defaults_to_the_runner_temp_folder() -> None:
    assert ActionsSettings.from_env(RUNNER_ENV).data_dir == Path("/home/runner/_temp/paved")


def test_paved_data_dir_wins_over_the_runner_temp_folder() -> None:
    settings = ActionsSettings.from_env({**RUNNER_ENV, "PAVED_DATA_DIR": "/cache/paved"})

    assert settings.data_dir == Path("/cache/paved")


def test_the_token_never_shows_in_the_settings_or_the_service_settings() -> None:
    settings = ActionsSettings.from_env(RUNNER_ENV)

    assert RUNNER_ENV["GITHUB_TOKEN"] not in repr(settings) + repr(settings.service_settings())


def test_the_service_settings_authenticate_with_the_token() -> None:
    service = ActionsSettings.from_env({**RUNNER_ENV, "GITHUB_API_URL": "https://ghe.example.com/api/v3/"})

    assert service.service_settings().github_token == service.token
    assert (service.service_settings().github_api_url, service.service_settings().github_app_id) == (
        "https://ghe.example.com/api/v3", None)


def test_the_token_acts_as_github_actions_unless_an_app_is_named() -> None:
    assert ActionsSettings.from_env(RUNNER_ENV).login == "github-actions[bot]"
    assert ActionsSettings.from_env({**RUNNER_ENV, "PAVED_APP_SLUG": "acme-paved"}).login == "acme-paved[bot]"


def test_a_plan_for_a_later_job_is_left_in_the_runner_temp_folder() -> None:
    assert ActionsSettings.from_env(RUNNER_ENV).plan_dir == Path("/home/runner/_temp/paved-plan")


def test_every_missing_variable_is_named_at_once() -> None:
    with pytest.raises(ConfigurationError) as raised:
        ActionsSettings.from_env({"RUNNER_TEMP": "/tmp"})

    assert "GITHUB_EVENT_NAME, GITHUB_EVENT_PATH, GITHUB_TOKEN, GITHUB_REPOSITORY are not set" in str(raised.value)
