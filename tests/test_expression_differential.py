"""pytest-dynamo reimplements pytest's ``-m`` grammar (it is many times faster);
this differential test holds the two together. Thousands of seeded random
expressions, well-formed and mutated, are judged by pytest's own
``_pytest.mark.expression.Expression`` (of whichever pytest is installed: the
nox sessions run pytest 9 and 8) and by the core, on random marker sets: the
same verdicts, and the same syntax errors at the same column."""

from __future__ import annotations

import importlib
import random
from typing import Any

import pytest
from _pytest.mark import expression as pytest_expression
from pytest_dynamo import _core

pytestmark = [pytest.mark.pre_merge, pytest.mark.gpu_0, pytest.mark.unit]

MarkMatcher: Any = getattr(importlib.import_module("_pytest.mark"), "MarkMatcher", None)
# pytest 8 raised its own ParseError; pytest 9 raises SyntaxError.
ParseError: type[Exception] = getattr(pytest_expression, "ParseError", SyntaxError)
# pytest 8 refuses a whole expression at its first backslash as soon as it
# lexes any string literal (it searched the input, not the literal: fixed in
# pytest 9, whose grammar the core follows), so on pytest 8 such inputs are
# left out of the comparison.
BACKSLASH_BUG = int(pytest.__version__.split(".")[0]) < 9

NAMES = [
    "a", "b", "c", "gpu", "x.y", "k:v", "p-q", "z[1]", "s/t", "n+1", "a\\b", "é", "x²",
    "not_", "orx", "and1", "True", "None", "1", "_",
]  # fmt: skip
KEYS = ["k", "n", "flag"]
LITERALS = [
    "1", "-2", "0", "-0", "007", "True", "False", "None", "'s'", '"t"', "'1'", "''",
    "99999999999999999999", "1.5", "x", "'a\\b'",
]  # fmt: skip
VALUES: list[Any] = [1, -2, 0, 7, True, False, None, "s", "t", "1", "", 1.0, 2.5]
NOISE = [
    *"()=,'\" \tabn!@#\\\n\u00a0é+-:.[]/$\u0301\u093e\u24b6\u2167\u00b7²",
    "and", "or", "not", "(", ")", "=", "True", " and ", " or ", "not ",
]  # fmt: skip


def atom(rng: random.Random) -> str:
    name = rng.choice(NAMES)
    if rng.random() < 0.25:
        pairs = [f"{rng.choice(KEYS)}={rng.choice(LITERALS)}" for _ in range(rng.randint(1, 2))]
        sep = rng.choice([", ", ","])
        return f"{name}({sep.join(pairs)})"
    return name


def expression(rng: random.Random, depth: int = 0) -> str:
    r = rng.random()
    if depth > 4 or r < 0.35:
        return atom(rng)
    if r < 0.5:
        return rng.choice(["not ", "not(", "not  "]).replace("(", "") + expression(rng, depth + 1)
    if r < 0.62:
        return "(" + expression(rng, depth + 1) + ")"
    op = rng.choice([" and ", " or ", "  and\t", " or  "])
    return expression(rng, depth + 1) + op + expression(rng, depth + 1)


def mutate(rng: random.Random, text: str) -> str:
    for _ in range(rng.randint(1, 3)):
        at = rng.randint(0, len(text))
        kind = rng.random()
        if kind < 0.4:
            text = text[:at] + rng.choice(NOISE) + text[at:]
        elif kind < 0.8:
            text = text[:at] + text[at + 1 :]
        else:
            text = text[:at] + rng.choice(NOISE) + text[at + 1 :]
    return text


def marker_set(rng: random.Random) -> list[tuple[str, tuple[()], dict[str, Any]]]:
    marks = []
    for _ in range(rng.randint(0, 3)):
        kwargs = {k: rng.choice(VALUES) for k in rng.sample(KEYS, rng.randint(0, 2))}
        marks.append((rng.choice(NAMES), (), kwargs))
    return marks


def pytest_verdicts(text: str, tests: list[list[tuple[str, tuple[()], dict[str, Any]]]]) -> Any:
    """pytest's answer: ('error', column) or ('ok', [verdict per test])."""
    try:
        compiled = pytest_expression.Expression.compile(text)
    except ValueError:
        # pytest's own bug: `k=²2` passes str.isdigit, then int() raises.
        return ("crash", None)
    except (ParseError, SyntaxError) as e:
        if str(getattr(e, "msg", e)).startswith("keyword argument repeated"):
            # Found by Python's compile() after the parse, at column 1; we
            # point at the repeated key, also after the whole parse.
            return ("error", "repeated keyword")
        column = getattr(e, "column", None) or getattr(e, "offset", None)
        return ("error", column)
    verdicts = []
    for marks in tests:
        matcher = MarkMatcher.from_markers(pytest.Mark(n, a, k, _ispytest=True) for n, a, k in marks)
        verdicts.append(compiled.evaluate(matcher))
    return ("ok", verdicts)


def ours(text: str, tests: list[list[tuple[str, tuple[()], dict[str, Any]]]]) -> Any:
    judged = _core.judge_marker_expression(text, tests)
    if judged.error_column is not None:
        if (judged.error_message or "").startswith("keyword argument repeated"):
            return ("error", "repeated keyword")
        return ("error", judged.error_column)
    return ("ok", judged.verdicts)


@pytest.mark.skipif(
    not hasattr(MarkMatcher, "from_markers"),
    reason="this pytest has no MarkMatcher.from_markers (before 8.3)",
)
@pytest.mark.parametrize("seed", range(4))
def test_random_expressions_are_judged_as_pytest_judges_them(seed: int) -> None:
    rng = random.Random(1400 + seed)
    diverged = []
    cases = 1500
    for _ in range(cases):
        text = expression(rng)
        if rng.random() < 0.45:
            text = mutate(rng, text)
        tests = [marker_set(rng) for _ in range(8)]
        if BACKSLASH_BUG and "\\" in text:
            continue
        theirs, mine = pytest_verdicts(text, tests), ours(text, tests)
        if theirs[0] == "crash" and mine[0] == "error":
            continue  # we refuse what pytest crashes on
        if theirs != mine:
            diverged.append(f"{text!r}: pytest {theirs}, pytest-dynamo {mine}")
    assert not diverged, f"{len(diverged)} of {cases} diverge, e.g.\n" + "\n".join(diverged[:15])


def test_the_generator_reaches_both_errors_and_matches() -> None:
    """The differential test is only worth something if both sides of each
    answer occur often."""
    rng = random.Random(1400)
    errors = matched = unmatched = 0
    for _ in range(1500):
        text = expression(rng)
        if rng.random() < 0.45:
            text = mutate(rng, text)
        tests = [marker_set(rng) for _ in range(8)]
        kind, value = ours(text, tests)
        if kind == "error":
            errors += 1
        else:
            matched += sum(value)
            unmatched += len(value) - sum(value)
    assert errors > 200
    assert matched > 1000
    assert unmatched > 1000
