"""A project's own taxonomy: extensions, aliases, counts, and bad configuration."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.pre_merge, pytest.mark.gpu_0, pytest.mark.integration]


def test_an_extended_taxonomy_is_registered_and_enforced(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml(
        """
        [tool.pytest-dynamo.taxonomy.lifecycle]
        add = [{ name = "canary", description = "runs in canary", after = "nightly" }]
        [tool.pytest-dynamo.taxonomy.hardware]
        add = ["xpu_1", "xpu_2"]
        [tool.pytest-dynamo.taxonomy.framework]
        add = ["lmcache"]
        required = true
        """
    )
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.canary
        @pytest.mark.xpu_2
        @pytest.mark.e2e
        @pytest.mark.lmcache
        def test_extended(): pass

        @pytest.mark.canary
        @pytest.mark.xpu_1
        @pytest.mark.e2e
        def test_no_framework(): pass
        """
    )
    result = pytester.runpytest("--strict-markers")
    result.stdout.fnmatch_lines(
        [
            "test_no_framework",
            "    DYN006 no framework marker",
            "*fix: add one of *@pytest.mark.lmcache",
        ]
    )
    assert "test_extended\n" not in result.stdout.str()
    markers = pytester.runpytest("--markers").stdout
    markers.fnmatch_lines(["@pytest.mark.canary: [[]lifecycle[]] runs in canary"])


def test_an_alias_warns_and_counts(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml('[tool.pytest-dynamo.aliases]\npremerge = "pre_merge"\n')
    pytester.makepyfile(
        "import pytest\n@pytest.mark.premerge\n@pytest.mark.gpu_0\n@pytest.mark.unit\ndef test_a(): pass\n"
    )
    result = pytester.runpytest("--strict-markers")
    result.assert_outcomes(passed=1, warnings=1)
    result.stdout.fnmatch_lines(
        ["*MarkerAliasWarning: marker 'premerge' is a deprecated alias of 'pre_merge' (1 test)*"]
    )


def test_counts_are_configurable(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml(
        "[tool.pytest-dynamo.taxonomy.type]\nrequired = false\n"
        "[tool.pytest-dynamo.taxonomy.lifecycle]\nmax = 1\n"
    )
    pytester.makepyfile(
        "import pytest\n@pytest.mark.nightly\n@pytest.mark.weekly\n@pytest.mark.gpu_0\ndef test_a(): pass\n"
    )
    result = pytester.runpytest()
    result.stdout.fnmatch_lines(
        ["    DYN001 marked nightly and weekly: at most 1 lifecycle marker(s) allowed"]
    )
    assert "DYN003" not in result.stdout.str()


def test_a_dedicated_config_file_is_used(pytester: pytest.Pytester) -> None:
    pytester.makefile(".toml", dynamo='[taxonomy.framework]\nadd = ["lmcache"]\n')
    pytester.makepyfile(
        "import pytest\n@pytest.mark.nightly\n@pytest.mark.gpu_0\n@pytest.mark.unit\n"
        "@pytest.mark.lmcache\ndef test_a(): pass\n"
    )
    pytester.runpytest("--strict-markers", "--dynamo-config=dynamo.toml").assert_outcomes(passed=1)
    pytester.makeini("[pytest]\ndynamo_config = dynamo.toml\n")
    pytester.runpytest("--strict-markers").assert_outcomes(passed=1)


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        (
            "[tool.pytest-dynamo.taxonomy.lifecycle]\nrequird = true\n",
            [
                "*pyproject.toml: invalid [[]tool.pytest-dynamo[]] configuration*",
                "*unknown field `requird`*",
            ],
        ),
        (
            "[tool.pytest-dynamo.taxonomy.type]\nmin = 'one'\n",
            ["*pyproject.toml: invalid [[]tool.pytest-dynamo[]] configuration*", "*min = 'one'*"],
        ),
        (
            "[tool.pytest-dynamo.aliases]\nold = 'pre_merj'\n",
            [
                "*aliases.old: the alias points at 'pre_merj', which is not a marker"
                " (did you mean 'pre_merge'?)"
            ],
        ),
    ],
)
def test_bad_configuration_is_a_usage_error(
    pytester: pytest.Pytester, toml: str, expected: list[str]
) -> None:
    pytester.makepyprojecttoml(toml)
    pytester.makepyfile("def test_a(): pass\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([*expected, "*fix: *"])
    assert "Traceback" not in result.stderr.str() + result.stdout.str()


def test_a_missing_config_file_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_a(): pass\n")
    result = pytester.runpytest("--dynamo-config=nope.toml")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*configuration file *nope.toml does not exist*", "*fix: *"])


def test_a_broken_config_file_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makefile(".toml", dynamo="[taxonomy.type\nadd = [\n")
    pytester.makepyfile("def test_a(): pass\n")
    result = pytester.runpytest("--dynamo-config=dynamo.toml")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*dynamo.toml: invalid [[]tool.pytest-dynamo[]] configuration*", "*line 1*"])
