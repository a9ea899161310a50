"""A test run that leaves a `git cat-file` process running fails, naming it.

Each `GitTree` reads blobs through one `git cat-file --batch` process that lives until the tree is
closed; a tree never closed keeps it for as long as something holds the tree. The suite's conftest
looks for such processes when the run ends (through /proc). Each scenario is a small pytest run of its
own (pytest's `pytester`, in a subprocess, so that its processes are not this run's).
"""

from __future__ import annotations

import pytest

from tests.conftest import PROJECT

pytest_plugins = ["pytester"]

READS_A_FILE = '''
import subprocess

from bot.adapters.repo import GitTree

KEPT = []


def test_reads_a_file(tmp_path):
    subprocess.run(["git", "init", "--quiet", str(tmp_path)], check=True)
    (tmp_path / "README.md").write_text("hello\\n")
    subprocess.run(["git", "-C", str(tmp_path), "add", "README.md"], check=True)
    subprocess.run(["git", "-C", str(tmp_path), "-c", "user.name=A", "-c", "user.email=a@example.com",
                    "commit", "--quiet", "-m", "first"], check=True)
    {how}
'''


@pytest.fixture
def run(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    monkeypatch.setenv("PYTHONPATH", str(PROJECT))
    pytester.makeconftest('pytest_plugins = ["tests.conftest"]')
    return pytester


def test_a_tree_kept_open_fails_the_run_naming_its_git_process(run: pytest.Pytester) -> None:
    run.makepyfile(READS_A_FILE.format(how='''tree = GitTree(tmp_path, "HEAD")
    assert tree.read("README.md") == b"hello\\n"
    KEPT.append(tree)'''))
    result = run.runpytest_subprocess()
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["1 git cat-file processes were left running*",
                                 f"*: git -C {run.path}/*/test_reads_a_file0 cat-file --batch",
                                 "*1 passed*"])


def test_a_tree_closed_with_with_leaves_nothing_behind(run: pytest.Pytester) -> None:
    run.makepyfile(READS_A_FILE.format(how='''with GitTree(tmp_path, "HEAD") as tree:
        assert tree.read("README.md") == b"hello\\n"
        KEPT.append(tree)'''))
    result = run.runpytest_subprocess()
    assert result.ret == pytest.ExitCode.OK
    assert "cat-file" not in result.stdout.str()


def test_on_every_core_a_tree_kept_open_by_a_worker_fails_the_whole_run(run: pytest.Pytester) -> None:
    run.makepyfile(READS_A_FILE.format(how='''tree = GitTree(tmp_path, "HEAD")
    assert tree.read("README.md") == b"hello\\n"
    KEPT.append(tree)'''))
    result = run.runpytest_subprocess("-n", "2", "-p", "xdist")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["1 git cat-file processes were left running*", "*1 passed*"])
