"""The conformance check runs for every test that talks to the sandbox, and blames the test that caused it.

Each scenario is a small pytest run of its own (pytest's `pytester`, in a subprocess so that its sandbox
is not watched by this run's check too), with the suite's `tests/conftest.py` as its only plugin; one of
its tests makes the sandbox forget the `login` of the signed-in user, which GitHub's description requires.
"""

from __future__ import annotations

import pytest

from tests.conftest import PROJECT

pytest_plugins = ["pytester"]

CALLS_GET_USER = '''
import httpx

from bot.sandbox import Sandbox
from bot.sandbox.render import Renderer


def test_{name}(tmp_path, monkeypatch):
    {break_it}
    with Sandbox.start(tmp_path / "forge") as forge:
        alice = forge.create_user("alice")
        answer = httpx.get(forge.api_url + "/user", headers={{"Authorization": f"token {{alice.token}}"}})
    assert answer.status_code == 200
'''

FORGET_LOGINS = '''shown = Renderer.user_full

    def without_login(self, *args, **kwargs):
        body = shown(self, *args, **kwargs)
        del body["login"]
        return body

    monkeypatch.setattr(Renderer, "user_full", without_login)'''


@pytest.fixture
def suite(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A folder of tests run with the suite's conftest, and three of them: the middle one breaks the sandbox."""
    monkeypatch.setenv("PYTHONPATH", str(PROJECT))
    pytester.makeconftest('pytest_plugins = ["tests.conftest"]')
    pytester.makepyfile(
        test_first=CALLS_GET_USER.format(name="alice_reads_her_profile", break_it="pass"),
        test_second=CALLS_GET_USER.format(name="a_sandbox_that_forgets_logins", break_it=FORGET_LOGINS),
        test_third=CALLS_GET_USER.format(name="alice_reads_her_profile_again", break_it="pass"))
    return pytester


def test_an_answer_unlike_githubs_is_an_error_in_the_teardown_of_the_test_that_caused_it(
        suite: pytest.Pytester) -> None:
    result = suite.runpytest_subprocess("test_second.py")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines([
        "*ERROR at teardown of test_a_sandbox_that_forgets_logins*",
        "the sandbox answered unlike GitHub's descriptions (tests/conformance.py):",
        "test_second.py::test_a_sandbox_that_forgets_logins: GET /user -> 200: users/get-authenticated: (body): *",
    ])


def test_in_a_subset_only_the_test_that_caused_it_is_blamed(suite: pytest.Pytester) -> None:
    result = suite.runpytest_subprocess("test_first.py", "test_second.py", "test_third.py")
    result.assert_outcomes(passed=3, errors=1)
    errors = [line.split(" - ")[0] for line in result.outlines if line.startswith("ERROR ")]
    assert errors == ["ERROR test_second.py::test_a_sandbox_that_forgets_logins"]


def test_a_run_that_conforms_says_what_it_checked(suite: pytest.Pytester) -> None:
    result = suite.runpytest_subprocess("test_first.py")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["sandbox conformance: 1 REST answers over 1 operations and 0 webhook payloads*"])


def test_on_every_core_the_run_says_what_all_its_workers_checked(suite: pytest.Pytester) -> None:
    result = suite.runpytest_subprocess("-n", "2", "-p", "xdist", "test_first.py", "test_third.py")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["sandbox conformance: 2 REST answers over 1 operations and 0 webhook payloads*"])
