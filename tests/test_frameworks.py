"""Framework selection: by name, by environment, by default, and ``auto``
from the files a branch changed in a real git repository."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = [pytest.mark.pre_merge, pytest.mark.gpu_0, pytest.mark.integration]

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="the git binary is not installed")

SUITE = """
import pytest

pytestmark = [pytest.mark.pre_merge, pytest.mark.gpu_1, pytest.mark.e2e]

@pytest.mark.vllm
def test_vllm(): pass

@pytest.mark.sglang
def test_sglang(): pass

@pytest.mark.trtllm
def test_trtllm(): pass

@pytest.mark.vllm
@pytest.mark.sglang
def test_vllm_and_sglang(): pass

def test_agnostic(): pass
"""

ALL = {"vllm", "sglang", "trtllm", "vllm_and_sglang", "agnostic"}


@pytest.fixture(autouse=True)
def _full_machine(full_machine: None) -> None:
    """Selection only: no hardware or framework skips on this machine."""


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(test_backends=SUITE)
    return pytester


def selected(result: pytest.RunResult) -> set[str]:
    """Test names a ``--collect-only`` run lists (not quiet: the header shows)."""
    prefix = "<Function test_"
    return {line.strip()[len(prefix) : -1] for line in result.outlines if line.strip().startswith(prefix)}


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest("--co", *args)


def test_a_named_framework_keeps_its_tests_and_the_agnostic_ones(suite: pytest.Pytester) -> None:
    assert selected(run(suite, "--dynamo-framework=vllm")) == {"vllm", "vllm_and_sglang", "agnostic"}
    assert selected(run(suite, "--dynamo-framework=all")) == ALL
    assert selected(run(suite)) == ALL


def test_agnostic_tests_can_be_dropped_as_the_spec_literally_writes(suite: pytest.Pytester) -> None:
    suite.makepyprojecttoml('[tool.pytest-dynamo.frameworks]\nagnostic = "drop"\n')
    assert selected(run(suite, "--dynamo-framework=sglang")) == {"sglang", "vllm_and_sglang"}


def test_the_precedence_is_flag_env_ini_default_env_then_configured(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    suite.makepyprojecttoml(
        '[tool.pytest.ini_options]\ndynamo_framework = "trtllm"\n'
        '[tool.pytest-dynamo.frameworks]\ndefault = "sglang"\n'
    )
    assert selected(run(suite)) == {"trtllm", "agnostic"}
    monkeypatch.setenv("DYNAMO_TEST_FRAMEWORK", "vllm")
    assert selected(run(suite)) == {"vllm", "vllm_and_sglang", "agnostic"}
    result = run(suite, "--dynamo-framework=sglang")
    assert selected(result) == {"sglang", "vllm_and_sglang", "agnostic"}
    result.stdout.fnmatch_lines(["dynamo selection: framework sglang (--dynamo-framework)"])
    monkeypatch.delenv("DYNAMO_TEST_FRAMEWORK")
    suite.makepyprojecttoml('[tool.pytest-dynamo.frameworks]\ndefault = "sglang"\n')
    result = run(suite)
    assert "sglang" in selected(result)
    result.stdout.fnmatch_lines(
        ["dynamo selection: framework sglang (default from [[]tool.pytest-dynamo.frameworks[]] default)"]
    )
    monkeypatch.setenv("DYNAMO_DEFAULT_FRAMEWORK", "trtllm")
    result = run(suite)
    assert selected(result) == {"trtllm", "agnostic"}
    result.stdout.fnmatch_lines(["*framework trtllm (default from DYNAMO_DEFAULT_FRAMEWORK)"])
    monkeypatch.setenv("DYNAMO_DEFAULT_FRAMEWORK", "all")
    assert selected(run(suite)) == ALL


def test_the_summary_counts_other_frameworks(suite: pytest.Pytester) -> None:
    result = suite.runpytest("--dynamo-framework=trtllm", "--dynamo-pipeline=pr")
    result.assert_outcomes(passed=2, deselected=3)
    result.stdout.fnmatch_lines(
        [
            "pipeline pre_merge (all stages), framework trtllm: 2 selected, 3 deselected",
            "       3 other framework than trtllm",
        ]
    )


def test_an_unknown_framework_is_a_usage_error(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = run(suite, "--dynamo-framework=sglan")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: pytest-dynamo: --dynamo-framework: 'sglan' is not a framework marker "
            "(did you mean 'sglang'?)",
            "  fix: use one of: vllm, trtllm, sglang, custom_backend, "
            "or auto (from the changed files), or all",
        ]
    )
    monkeypatch.setenv("DYNAMO_DEFAULT_FRAMEWORK", "vlm")
    result = run(suite)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: pytest-dynamo: DYNAMO_DEFAULT_FRAMEWORK=vlm: 'vlm' is not a framework*"
            "frameworks] env lists it)"
        ]
    )
    monkeypatch.delenv("DYNAMO_DEFAULT_FRAMEWORK")
    suite.makepyprojecttoml('[tool.pytest-dynamo.frameworks]\ndefault = "vlm"\nagnostic = "maybe"\n')
    result = run(suite)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unknown variant `maybe`, expected `keep` or `drop`*"])


# --- auto: a real repository, made with the git binary ---------------------------------------


def git(repo: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
        "GIT_CONFIG_NOSYSTEM": "1",
    }
    done = subprocess.run(
        ["git", "-c", "init.defaultBranch=main", "-c", "protocol.file.allow=always", *args],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def commit_files(repo: Path, message: str, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = repo / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)


@pytest.fixture
def repo(suite: pytest.Pytester) -> Path:
    """The suite in a repository on ``main``, with a branch ``change`` checked out."""
    path = suite.path
    git(path, "init", "-q")
    commit_files(path, "base", {"README.md": "x\n"})
    git(path, "checkout", "-q", "-b", "change")
    return path


@needs_git
def test_auto_chooses_the_one_framework_the_branch_touched(suite: pytest.Pytester, repo: Path) -> None:
    commit_files(repo, "vllm fix", {"components/backends/vllm/engine.py": "x = 1\n", "docs/x.md": "x\n"})
    result = run(suite, "--dynamo-framework=auto", "--dynamo-base=main")
    assert selected(result) == {"vllm", "vllm_and_sglang", "agnostic"}
    result.stdout.fnmatch_lines(
        [
            "dynamo selection: framework vllm (auto: the changes touch only vllm "
            "(1 of 2 changed files); base main)"
        ]
    )


@needs_git
def test_auto_falls_back_to_the_default(
    suite: pytest.Pytester, repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    commit_files(repo, "two", {"container/Dockerfile.vllm": "x\n", "container/Dockerfile.sglang": "x\n"})
    monkeypatch.setenv("DYNAMO_DEFAULT_FRAMEWORK", "trtllm")
    monkeypatch.setenv("DYNAMO_BASE", "main")
    monkeypatch.setenv("DYNAMO_TEST_FRAMEWORK", "auto")
    result = run(suite)
    assert selected(result) == {"trtllm", "agnostic"}
    result.stdout.fnmatch_lines(
        [
            "*framework trtllm (auto: the changes touch sglang, vllm (2 changed files); "
            "default trtllm from DYNAMO_DEFAULT_FRAMEWORK; base main)"
        ]
    )
    monkeypatch.delenv("DYNAMO_DEFAULT_FRAMEWORK")
    result = run(suite)
    assert selected(result) == ALL
    result.stdout.fnmatch_lines(
        ["*every framework (auto: *; no default framework, so all of them; base main)"]
    )


@needs_git
def test_auto_uses_the_configured_path_rules(suite: pytest.Pytester, repo: Path) -> None:
    suite.makepyprojecttoml(
        "[tool.pytest-dynamo.frameworks.paths]\n"
        "sglang = ['^engines/sg/']\n"
        "vllm = ['^engines/v/', '^requirements-vllm\\.txt$']\n"
    )
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "config")
    commit_files(repo, "sg", {"engines/sg/a.py": "x\n", "tests/test_vllm_helpers.py": "x = 1\n"})
    result = run(suite, "--dynamo-framework=auto", "--dynamo-base=main")
    assert selected(result) == {"sglang", "vllm_and_sglang", "agnostic"}


@needs_git
def test_auto_explains_a_bad_base_a_missing_base_and_no_repository(
    suite: pytest.Pytester, repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = run(suite, "--dynamo-framework=auto", "--dynamo-base=origin/mian")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: pytest-dynamo: --dynamo-framework=auto: the base 'origin/mian' is not a commit, "
            "branch or tag of this repository",
            "  fix: fetch it (`git fetch origin mian`), or fix --dynamo-base / dynamo_base / DYNAMO_BASE",
        ]
    )
    result = run(suite, "--dynamo-framework=auto")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*auto compares the branch with a base, and none is set*"])
    shutil.rmtree(repo / ".git")
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(repo.parent))
    result = run(suite, "--dynamo-framework=auto", "--dynamo-base=main")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--dynamo-framework=auto: * is not inside a git repository*"])


@needs_git
def test_auto_in_a_shallow_clone_says_how_to_fetch_history(
    pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    origin = tmp_path / "origin"
    origin.mkdir()
    git(origin, "init", "-q")
    commit_files(origin, "one", {"a.txt": "1\n"})
    git(origin, "checkout", "-q", "-b", "feature")
    commit_files(origin, "two", {"components/vllm/b.py": "x\n", "test_a.py": "def test_a(): pass\n"})
    git(origin, "checkout", "-q", "main")
    commit_files(origin, "three", {"c.txt": "3\n"})
    clone = pytester.path / "clone"
    git(pytester.path, "clone", "-q", "--depth", "1", "--branch", "feature", f"file://{origin}", str(clone))
    git(clone, "fetch", "-q", "--depth", "1", "origin", "main:refs/remotes/origin/main")
    monkeypatch.chdir(clone)
    result = pytester.runpytest(
        "--co", "-q", "--dynamo-framework=auto", "--dynamo-base=origin/main", str(clone)
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: pytest-dynamo: --dynamo-framework=auto: `git diff --name-only origin/main...HEAD` "
            "failed because the clone is shallow: *",
            "  fix: fetch the history the diff needs: `git fetch --unshallow`*",
        ]
    )


@needs_git
def test_auto_without_git_on_path_says_so(
    suite: pytest.Pytester, repo: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    result = run(suite, "--dynamo-framework=auto", "--dynamo-base=main")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: pytest-dynamo: --dynamo-framework=auto: git was not found on PATH*",
            "  fix: install git in the CI image, or name the framework: --dynamo-framework=NAME",
        ]
    )


@needs_git
def test_auto_is_decided_once_and_every_xdist_worker_uses_it(suite: pytest.Pytester, repo: Path) -> None:
    commit_files(repo, "sglang", {"components/backends/sglang/x.py": "x\n"})
    # Workers cannot read the repository: only the controller's answer works.
    suite.makeconftest(
        """
        import os
        if os.environ.get("PYTEST_XDIST_WORKER"):
            os.environ["GIT_DIR"] = os.path.join(os.getcwd(), "no-such-git-dir")
        """
    )
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "conftest")
    result = suite.runpytest_subprocess(
        "-n", "2", "--dynamo-framework=auto", "--dynamo-base=main", "-p", "no:cacheprovider"
    )
    assert result.ret == pytest.ExitCode.OK, result.stdout.str() + result.stderr.str()
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["*framework sglang (auto: the changes touch only sglang*"])


def test_the_environment_variables_that_choose_the_framework_are_configurable(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The project's CI exports DYNAMO_TEST_FRAMEWORK=dynamo for its own labels.
    monkeypatch.setenv("DYNAMO_TEST_FRAMEWORK", "dynamo")
    result = run(suite)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: pytest-dynamo: DYNAMO_TEST_FRAMEWORK=dynamo: 'dynamo' is not a framework marker "
            "(pytest-dynamo reads DYNAMO_TEST_FRAMEWORK because "
            "[[]tool.pytest-dynamo.frameworks[]] env lists it)",
            "  fix: set DYNAMO_TEST_FRAMEWORK to a framework marker (vllm, trtllm, sglang, custom_backend), "
            "auto or all; or, if DYNAMO_TEST_FRAMEWORK means something else in your CI, leave it out of "
            "[[]tool.pytest-dynamo.frameworks[]] env (env = [[][]] ignores the environment)",
        ]
    )
    # `env = []`: the environment chooses nothing.
    monkeypatch.setenv("DYNAMO_DEFAULT_FRAMEWORK", "vllm")
    suite.makepyprojecttoml("[tool.pytest-dynamo.frameworks]\nenv = []\n")
    assert selected(run(suite)) == ALL
    # Variables of the project's own choosing, the spec's left alone.
    suite.makepyprojecttoml('[tool.pytest-dynamo.frameworks]\nenv = ["CI_BACKEND", "CI_DEFAULT_BACKEND"]\n')
    monkeypatch.setenv("CI_DEFAULT_BACKEND", "trtllm")
    result = run(suite)
    assert selected(result) == {"trtllm", "agnostic"}
    result.stdout.fnmatch_lines(["*framework trtllm (default from CI_DEFAULT_BACKEND)"])
    monkeypatch.setenv("CI_BACKEND", "sglang")
    result = run(suite)
    assert selected(result) == {"sglang", "vllm_and_sglang", "agnostic"}
    result.stdout.fnmatch_lines(["dynamo selection: framework sglang (CI_BACKEND)"])
    suite.makepyprojecttoml('[tool.pytest-dynamo.frameworks]\nenv = ["A", "B", "C"]\n')
    result = run(suite)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*[[]tool.pytest-dynamo.frameworks[]] env: 3 variables given; it takes at most two"]
    )
