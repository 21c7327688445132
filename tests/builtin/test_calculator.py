"""Calculator agent: safe arithmetic from natural language, limits, and routing hints."""

from __future__ import annotations

import contextlib
import re
import time
from types import ModuleType

import pytest
from hypothesis import given
from hypothesis import strategies as st

from switchboard.agents.builtin import calculator, clock, text
from switchboard.agents.builtin.calculator import find_expressions, format_number, run
from switchboard.orchestrator.core.errors import AgentError

# --- contract ------------------------------------------------------------------


def test_module_declares_the_agent_contract() -> None:
    assert calculator.NAME == "calculator"
    assert "17 * 23" in calculator.DESCRIPTION
    assert all(keyword == keyword.lower() for keyword in calculator.KEYWORDS)
    assert {"calculate", "compute", "sum", "times", "plus", "sqrt"} <= set(calculator.KEYWORDS)
    for pattern in calculator.PATTERNS:
        re.compile(pattern, re.IGNORECASE)


# --- answers -------------------------------------------------------------------


def test_what_is_17_times_23_contains_391() -> None:
    assert "391" in run("what is 17*23")


@pytest.mark.parametrize(
    ("instruction", "answer"),
    [
        ("what is 17*23?", "17 * 23 = 391"),
        ("Calculate (2+3)*4 please", "(2 + 3) * 4 = 20"),
        ("compute 2^10", "2 ^ 10 = 1024"),
        ("2 ** 10", "2 ^ 10 = 1024"),
        ("17 times 23", "17 * 23 = 391"),
        ("5 plus 3 minus 2", "5 + 3 - 2 = 6"),
        ("10 divided by 4", "10 / 4 = 2.5"),
        ("6 multiplied by 7", "6 * 7 = 42"),
        ("what is 12 squared", "12 ^ 2 = 144"),
        ("2 to the power of 10", "2 ^ 10 = 1024"),
        ("square root of 81", "sqrt(81) = 9"),
        ("what is 15% of 80", "15% of 80 = 12"),
        ("15 percent of 80", "15% of 80 = 12"),
        ("3 x 4", "3 * 4 = 12"),
        ("3x4", "3 * 4 = 12"),
        ("3 \u00d7 4", "3 * 4 = 12"),
        ("8 \u00f7 2", "8 / 2 = 4"),
        ("7 // 2", "7 // 2 = 3"),
        ("10 % 3", "10 % 3 = 1"),
        ("10 mod 3", "10 % 3 = 1"),
        ("-5 + 3", "-5 + 3 = -2"),
        ("-(2+3)", "-(2 + 3) = -5"),
        ("2 - -3", "2 - -3 = 5"),
        ("1.5 * 4", "1.5 * 4 = 6"),
        ("1e3 + 1", "1e3 + 1 = 1001"),
        ("2.5e-3 * 1000", "2.5e-3 * 1000 = 2.5"),
        ("1,000,000 * 3", "1000000 * 3 = 3000000"),
        ("2pi", "2 * pi = 6.283185307"),
        ("what is pi", "pi = 3.141592654"),
        ("e ^ 1", "e ^ 1 = 2.718281828"),
        ("sqrt(2)", "sqrt(2) = 1.414213562"),
        ("abs(-4)", "abs(-4) = 4"),
        ("round(3.14159, 2)", "round(3.14159, 2) = 3.14"),
        ("round(2.7)", "round(2.7) = 3"),
        ("min(3, 7, 1)", "min(3, 7, 1) = 1"),
        ("max(100,200)", "max(100, 200) = 200"),
        ("log(1000)", "log(1000) = 3"),
        ("log(8, 2)", "log(8, 2) = 3"),
        ("ln(e)", "ln(e) = 1"),
        ("log10(100)", "log10(100) = 2"),
        ("exp(0)", "exp(0) = 1"),
        ("sin(pi)", "sin(pi) = 0"),
        ("cos(0)", "cos(0) = 1"),
        ("tan(0)", "tan(0) = 0"),
        ("floor(2.7) + ceil(2.1)", "floor(2.7) + ceil(2.1) = 5"),
        ("factorial(5)", "factorial(5) = 120"),
        ("factorial of 5", "factorial(5) = 120"),
        ("sum of 1, 2 and 3", "(1 + 2 + 3) = 6"),
        ("average of 2 and 4", "(2 + 4) / 2 = 3"),
        ("multiply 3 by 4", "3 * 4 = 12"),
        ("subtract 3 from 10", "10 - 3 = 7"),
        ("(what is 2+3)", "2 + 3 = 5"),
    ],
)
def test_answers_arithmetic_written_as_symbols_or_words(instruction: str, answer: str) -> None:
    assert run(instruction) == answer


def test_answers_each_of_several_expressions() -> None:
    assert run("what is 17*23 and 2^10?") == "17 * 23 = 391; 2 ^ 10 = 1024"


@pytest.mark.parametrize(
    ("instruction", "result"),
    [
        ("0.1 + 0.2", "0.3"),
        ("1 / 3", "0.3333333333"),
        ("10 / 2", "5"),
        ("sqrt(16)", "4"),
        ("2 ** 100", "1267650600228229401496703205376"),
        ("factorial(100)", "9.332621544e+157"),
        ("2 ** -1", "0.5"),
    ],
)
def test_results_are_exact_integers_or_rounded_without_float_noise(
    instruction: str, result: str
) -> None:
    assert run(instruction).endswith(f" = {result}")


@pytest.mark.parametrize(
    ("value", "shown"),
    [(391, "391"), (391.0, "391"), (-0.0, "0"), (0.30000000000000004, "0.3"), (1e20, "1e+20")],
)
def test_format_number(value: float, shown: str) -> None:
    assert format_number(value) == shown


# --- extraction for the planner ---------------------------------------------------


@pytest.mark.parametrize(
    ("sentence", "expressions"),
    [
        ("what is 17 times 23 and then 2^10?", ["17 * 23", "2 ^ 10"]),
        ("square root of 81", ["sqrt(81)"]),
        ("what is 15% of 80", ["15% of 80"]),
        ("compute 2+2, 3*3", ["2 + 2", "3 * 3"]),
        ("what time is it in Tokyo", []),
        ("what day of the week is 2026-12-25", []),
        ("meet at 14:30 on 12/25/2026", []),
        ("I have 5 apples", []),
        ("", []),
    ],
)
def test_find_expressions(sentence: str, expressions: list[str]) -> None:
    assert find_expressions(sentence) == expressions


# --- earlier results ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("instruction", "inputs", "answer"),
    [
        ("multiply the result by 2", {"s1": "17 * 23 = 391"}, "391 * 2 = 782"),
        ("what is that squared", {"s1": -5}, "(-5) ^ 2 = 25"),
        ("square root of the previous result", {"s1": {"value": 81}}, "sqrt(81) = 9"),
        ("add 5 to it", {"a": "3", "b": "The answer is 10"}, "10 + 5 = 15"),
        ("what is 2 + 2", {"s1": "99"}, "2 + 2 = 4"),
    ],
)
def test_uses_the_number_of_an_earlier_step(
    instruction: str, inputs: dict[str, object], answer: str
) -> None:
    assert run(instruction, inputs) == answer


def test_a_reference_without_an_earlier_number_says_so() -> None:
    with pytest.raises(AgentError, match="no earlier step gave a number"):
        run("multiply the result by 2", {"s1": "no digits here"})


# --- errors --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("instruction", "message"),
    [
        ("1 / 0", "Division by zero is undefined"),
        ("5 // 0", "Division by zero is undefined"),
        ("5 % 0", "Division by zero is undefined"),
        ("0 ** -1", "Zero cannot be raised to a negative power"),
        ("sqrt(-1)", "square root of a negative number (-1) is not a real number"),
        ("log(0)", "log is only defined for positive numbers"),
        ("ln(-1)", "ln is only defined for positive numbers"),
        ("log(8, 1)", "base of a logarithm must be positive and different from 1"),
        ("(-8) ** (1/3)", "negative number cannot be raised to a fractional power"),
        ("factorial(2.5)", "factorial() takes a whole number from 0 to 100, not 2.5"),
        ("factorial(-1)", "factorial() takes a whole number from 0 to 100, not -1"),
        ("sqrt(1, 2)", "sqrt() takes 1 argument, but 2 were given"),
        ("min()", "min() takes 1 to 50 arguments, but 0 were given"),
        ("round(2.5, 100)", "round() takes a whole number of digits"),
        ("2 + * 3", 'could not understand "2 + *3"'),
        ("hello there", "found no arithmetic expression"),
        ("", "found no arithmetic expression"),
        ("__import__('os').system('ls')", "found no arithmetic expression"),
    ],
)
def test_invalid_arithmetic_raises_a_clear_agent_error(instruction: str, message: str) -> None:
    with pytest.raises(AgentError, match=re.escape(message)) as caught:
        run(instruction)
    assert str(caught.value).endswith(".")  # a full sentence


def test_the_no_expression_error_shows_examples() -> None:
    with pytest.raises(AgentError, match=re.escape("'17 * 23'")):
        run("please help")


# --- abuse limits -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "instruction",
    ["9**9**9", "9^9^9", "10 ** 400", "2 ^ 1000", "0.5 ** -2000", "1.0000001 ** 1e12", "e ^ 710"],
)
def test_huge_powers_are_refused_within_milliseconds(instruction: str) -> None:
    started = time.perf_counter()
    with pytest.raises(AgentError, match="too large"):
        run(instruction)
    assert time.perf_counter() - started < 0.05


@pytest.mark.parametrize(
    ("instruction", "message"),
    [
        ("factorial(101)", "factorial() takes a whole number from 0 to 100"),
        ("factorial(factorial(5))", "factorial() takes a whole number from 0 to 100"),
        ("10 ** 300 * 10", "only results up to 1e300"),
        ("1e308 * 10", "only results up to 1e300"),
        ("exp(1000)", "too large"),
        ("1" + "+1" * 300, "too long (601 characters); the limit is 500"),
        ("(" * 21 + "1+1" + ")" * 21, "nests parentheses 21 deep; the limit is 20"),
        ("max(" + ", ".join(["1"] * 51) + ")", "max() takes 1 to 50 arguments"),
        ("1+1 " * 21, "has 21 expressions; the calculator answers at most 20"),
        ("1+1 " * 3000, "instruction is too long (12000 characters)"),
    ],
)
def test_limits_against_abuse(instruction: str, message: str) -> None:
    with pytest.raises(AgentError, match=re.escape(message)):
        run(instruction)


def test_the_largest_allowed_values_still_compute() -> None:
    assert run("10 ^ 299 * 10") == "10 ^ 299 * 10 = 1e+300"
    assert run("(" * 20 + "1+1" + ")" * 20).endswith(" = 2")


# --- properties -------------------------------------------------------------------------


@given(st.text())
def test_any_text_gives_an_answer_or_an_agent_error(instruction: str) -> None:
    with contextlib.suppress(AgentError):
        assert isinstance(run(instruction), str)


_MATHY = st.lists(
    st.sampled_from(
        [
            *"0123456789.+-*/%^()x,e ",
            *("sqrt", "pi", "factorial", "log", " of ", "**", "round", "max", "times"),
            *("squared", "1e308", "percent", "\u00f7", "\u00b2", "9", "!"),
        ]
    ),
    max_size=30,
).map("".join)


@given(_MATHY)
def test_any_formula_like_text_gives_an_answer_or_an_agent_error(instruction: str) -> None:
    assert all(isinstance(e, str) for e in find_expressions(instruction))
    with contextlib.suppress(AgentError):
        assert isinstance(run(instruction), str)


@given(
    st.integers(-(10**12), 10**12),
    st.sampled_from(["+", "-", "*"]),
    st.integers(-(10**12), 10**12),
)
def test_integer_arithmetic_is_exact(left: int, operator: str, right: int) -> None:
    expected = {"+": left + right, "-": left - right, "*": left * right}[operator]
    assert run(f"{left} {operator} {right}").endswith(f" = {expected}")


# --- routing hints: which built-in a clause is for ------------------------------------

_AGENTS: dict[str, ModuleType] = {"calculator": calculator, "clock": clock, "text": text}
_CLAUSES = [
    ("what is 17*23", "calculator"),
    ("calculate (2+3)*4", "calculator"),
    ("compute 2^10", "calculator"),
    ("what is 15% of 80", "calculator"),
    ("17 times 23", "calculator"),
    ("square root of 81", "calculator"),
    ("what is 2 to the power of 10", "calculator"),
    ("sqrt(2) + 1", "calculator"),
    ("what time is it in Tokyo", "clock"),
    ("time in New York and London", "clock"),
    ("what's the date in Sydney", "clock"),
    ("what day is it", "clock"),
    ("current UTC time", "clock"),
    ("time difference between Tokyo and London", "clock"),
    ("what day of the week is 2026-12-25", "clock"),
    ('count the words in "the quick brown fox"', "text"),
    ("how many characters are in the previous result", "text"),
    ("extract emails from the text", "text"),
    ("convert the text to uppercase", "text"),
    ("what is the reading time of the article", "text"),
    ("list the most frequent words", "text"),
    ("extract dates like 2026-11-24 from the notes", "text"),
]


def _pattern_hits(module: ModuleType, clause: str) -> int:
    return sum(re.search(p, clause, re.IGNORECASE) is not None for p in module.PATTERNS)


def _score(module: ModuleType, clause: str) -> int:
    keywords = sum(
        re.search(rf"\b{re.escape(k)}\b", clause, re.IGNORECASE) is not None
        for k in module.KEYWORDS
    )
    return 3 * _pattern_hits(module, clause) + keywords


@pytest.mark.parametrize(("clause", "agent"), _CLAUSES)
def test_only_the_right_agents_patterns_match_a_clause(clause: str, agent: str) -> None:
    matching = {name for name, module in _AGENTS.items() if _pattern_hits(module, clause)}
    assert matching == {agent}


@pytest.mark.parametrize(("clause", "agent"), _CLAUSES)
def test_patterns_and_keywords_score_the_right_agent_highest(clause: str, agent: str) -> None:
    scores = {name: _score(module, clause) for name, module in _AGENTS.items()}
    assert max(scores, key=lambda name: scores[name]) == agent
    assert sorted(scores.values())[-1] > sorted(scores.values())[-2]


def test_calculator_and_clock_patterns_keep_apart() -> None:
    assert not any(re.search(p, "what time is it in Tokyo", re.I) for p in calculator.PATTERNS)
    assert not any(re.search(p, "what is 17*23", re.I) for p in clock.PATTERNS)
