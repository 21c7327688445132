"""Calculator agent: safe arithmetic on expressions found in natural language.

Pipeline: ``instruction`` -> rewrite words to symbols ("17 times 23" -> "17 * 23")
-> tokenize -> split into candidate expressions -> build a Python source string
from *our own tokens* -> ``ast.parse(mode="eval")`` -> evaluate with an explicit
whitelist of node types.

Why a small AST evaluator and not ``simpleeval``: the grammar we accept is tiny
(numbers, + - * / // % **, unary minus, a dozen functions, two constants), so a
whitelist over ``ast`` nodes is ~100 lines we fully control, with no new
dependency, and it lets us put the abuse limits (exponent size, factorial size,
result magnitude, nesting depth) exactly where the arithmetic happens.
User text is never passed to ``eval``/``exec``/``compile``: the AST is only
*walked*, and anything outside the whitelist is refused.
"""

from __future__ import annotations

import ast
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, TypeAlias

from switchboard.orchestrator.core.errors import AgentError

__all__ = [
    "DESCRIPTION",
    "KEYWORDS",
    "NAME",
    "PATTERNS",
    "find_expressions",
    "format_number",
    "run",
]

NAME: Final = "calculator"
DESCRIPTION: Final = (
    "Evaluates arithmetic exactly and offline: + - * / // % ^, parentheses, percentages, "
    "sqrt, abs, round, min, max, log (base 10), ln, exp, sin, cos, tan, floor, ceil, "
    "factorial, pi and e, written as symbols or words. "
    "Example: 'what is 17 * 23 plus the square root of 81?'"
)
KEYWORDS: Final = (
    "calculate",
    "calculator",
    "compute",
    "evaluate",
    "arithmetic",
    "math",
    "sum",
    "plus",
    "minus",
    "times",
    "multiply",
    "multiplied",
    "divide",
    "divided",
    "product",
    "average",
    "sqrt",
    "squared",
    "cubed",
    "power",
    "percent",
    "factorial",
    "logarithm",
    "modulo",
)
PATTERNS: Final = (
    # Two numbers around an operator. The look-arounds keep ISO dates
    # (2026-11-24) and version strings from matching.
    # Every pattern starts at the start of a run of digits and never has two blanks
    # quantifiers side by side: matching time stays linear in the message's length.
    r"(?<![\d.\-])\d+(?:\.\d+)?\s*[-+*/x\u00d7\u00f7^%]\s*(?:\(\s*)?-?\d+(?:\.\d+)?(?![\d\-])",
    r"(?<!\d)\d+(?:\.\d+)?\s*(?:times|plus|minus|multiplied\s+by|divided\s+by|mod|modulo"
    r"|to\s+the\s+power\s+of)\s+-?\d",
    r"\d\s*(?:squared|cubed)\b",
    r"\b\d+(?:\.\d+)?\s*(?:%|percent)\s+of\s+\d",
    r"\bsquare\s+root\s+of\b",
    r"\b(?:sqrt|abs|round|min|max|log|ln|log10|exp|sin|cos|tan|floor|ceil|factorial)\s*\(",
    r"\bfactorial\s+of\s+\d",
)

# --- limits against abuse ----------------------------------------------------
MAX_INSTRUCTION_LENGTH: Final = 10_000
MAX_EXPRESSION_LENGTH: Final = 500
MAX_EXPRESSIONS: Final = 20
MAX_NESTING: Final = 20  # parentheses / function calls inside each other
MAX_AST_DEPTH: Final = 300  # a 500-char expression cannot legitimately be deeper
MAX_MAGNITUDE: Final = 1e300  # every intermediate and final result
MAX_FACTORIAL: Final = 100
MAX_ARGUMENTS: Final = 50
MAX_ROUND_DIGITS: Final = 15
# Integers up to this many digits are printed exactly; longer ones in scientific notation.
MAX_EXACT_DIGITS: Final = 50

Number: TypeAlias = int | float

# --- lexical vocabulary --------------------------------------------------------
_FUNCTIONS: Final = frozenset(
    {"sqrt", "abs", "round", "min", "max", "log", "ln", "log10", "exp", "sin", "cos", "tan"}
    | {"floor", "ceil", "factorial"}
)
_CONSTANTS: Final[Mapping[str, float]] = {"pi": math.pi, "e": math.e}
_DISPLAY_OPS: Final[Mapping[str, str]] = {
    "+": "+",
    "-": "-",
    "*": "*",
    "/": "/",
    "//": "//",
    "%": "%",
    "**": "^",
}

_NUMBER = r"(?:\d+(?:\.\d+)?|\.\d+)(?:e[-+]?\d+)?"
# An operand in the phrase rewrites below ("multiply 3 by 4", "sum of 1, 2 and 3").
_OPERAND = rf"(?:-?{_NUMBER}|pi|\(-?{_NUMBER}\))"

_TOKEN_RE: Final = re.compile(
    r"""
      (?P<ws>\s+)
    | (?P<num>(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:e[-+]?[0-9]+)?)
    | (?P<word>[a-z_][a-z0-9_]*)
    | (?P<op>\*\*|//|[-+*/%])
    | (?P<paren>[()])
    | (?P<comma>,)
    | (?P<other>.)
    """,
    re.VERBOSE | re.DOTALL,
)

# Symbol spellings people paste from documents.
_SYMBOLS: Final[Mapping[str, str]] = {
    "\u00d7": "*",  # multiplication sign
    "\u2715": "*",  # multiplication x
    "\u22c5": "*",  # dot operator
    "\u00b7": "*",  # middle dot
    "\u00f7": "/",  # division sign
    "\u2212": "-",  # minus sign
    "\u2013": "-",  # en dash
    "^": "**",
    "²": "**2",
    "³": "**3",
    "√": " sqrt ",
    "π": " pi ",
}

# Dates and clock times look like subtractions/divisions; hide them first.
_DATE_LIKE: Final = re.compile(
    r"\b\d{4}-\d{1,2}-\d{1,2}\b|\b\d{1,2}/\d{1,2}/\d{2,4}\b|\b\d{1,2}:\d{2}(?::\d{2})?\b"
)
_THOUSANDS: Final = re.compile(r"\b\d{1,3}(?:,\d{3})+(?![\d,])")


def _aggregate(match: re.Match[str]) -> str:
    """'sum of 1, 2 and 3' -> '(1 + 2 + 3)'; 'average of 2 and 4' -> '(2 + 4) / 2'."""
    operands = re.findall(_OPERAND, match["list"])
    kind = match["kind"]
    if kind == "product":
        return "(" + " * ".join(operands) + ")"
    joined = "(" + " + ".join(operands) + ")"
    return f"{joined} / {len(operands)}" if kind in ("average", "mean") else joined


# Word forms -> symbols, applied in order to the lower-cased text.
_REWRITES: Final[Sequence[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]]]] = [
    (
        re.compile(
            rf"\b(?P<kind>sum|total|product|average|mean) of "
            rf"(?P<list>{_OPERAND}(?:(?:\s*,\s*and\s+|\s*,\s*|\s+and\s+){_OPERAND})+)"
        ),
        _aggregate,
    ),
    (re.compile(rf"\bmultiply ({_OPERAND}) (?:by|and|with) ({_OPERAND})"), r"\1 * \2"),
    (re.compile(rf"\bdivide ({_OPERAND}) by ({_OPERAND})"), r"\1 / \2"),
    (re.compile(rf"\badd ({_OPERAND}) to ({_OPERAND})"), r"\2 + \1"),
    (re.compile(rf"\badd ({_OPERAND}) and ({_OPERAND})"), r"\1 + \2"),
    (re.compile(rf"\bsubtract ({_OPERAND}) from ({_OPERAND})"), r"\2 - \1"),
    (re.compile(rf"\b(?:double|twice) ({_OPERAND})"), r"\1 * 2"),
    (re.compile(rf"\btriple ({_OPERAND})"), r"\1 * 3"),
    (re.compile(rf"\b(?:half of|halve) ({_OPERAND})"), r"\1 / 2"),
    (re.compile(rf"\b(?:the )?square of ({_OPERAND})"), r"\1 ** 2"),
    (re.compile(rf"\b(?:the )?cube of ({_OPERAND})"), r"\1 ** 3"),
    (re.compile(r"\b(?:raised )?to the (\d+)(?:st|nd|rd|th) power\b"), r" ** \1 "),
    (re.compile(r"\b(?:raised )?to the power(?: of)?\b|\braised to\b"), " ** "),
    (re.compile(r"\bsquared\b"), " ** 2 "),
    (re.compile(r"\bcubed\b"), " ** 3 "),
    (re.compile(r"\bsquare root(?: of)?\b"), " sqrt "),
    (re.compile(r"\bnatural log(?:arithm)?(?: of)?\b"), " ln "),
    (re.compile(r"\blogarithm(?: of)?\b"), " log "),
    (re.compile(r"\babsolute value(?: of)?\b"), " abs "),
    (re.compile(r"\b(sqrt|abs|log10|log|ln|exp|sin|cos|tan|floor|ceil|factorial) of\b"), r" \1 "),
    (re.compile(r"\bmultiplied by\b|\btimes\b"), " * "),
    (re.compile(r"\bdivided by\b"), " / "),
    (re.compile(r"\bplus\b"), " + "),
    (re.compile(r"\bminus\b|\bnegative\b"), " - "),
    (re.compile(r"\bmod(?:ulo)?\b"), " % "),
    (re.compile(r"(?:%|\bper ?cent)\s*of\b"), " percentof "),
    (re.compile(r"\bper ?cent\b"), " % "),
    # "x" means multiply only between numbers ("3 x 4", "3x4", "2)x(3").
    (re.compile(r"(?<=[\d)])\s*x\s*(?=[-(.\d])"), " * "),
]

# Reference to an earlier step's answer ("multiply the result by 2", "that squared").
_REFERENCE: Final = re.compile(
    r"\b(?:the\s+)?(?:previous|last|above|prior)\s+(?:result|answer|value|number|output)\b"
    r"|\bthe\s+(?:result|answer|value|number|output)\b|\b(?:that|it|this)\b",
    re.IGNORECASE,
)
_NUMBER_IN_TEXT: Final = re.compile(r"-?" + _NUMBER, re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class _Token:
    """One lexical unit. ``kind`` is num, const, func, op, pct, pctof, (, ) or ,."""

    kind: str
    text: str
    spaced: bool = False  # whitespace before it (decides implicit multiplication)


_OPERAND_START: Final = frozenset({"num", "const", "func", "("})
_OPERAND_END: Final = frozenset({"num", "const", ")", "pct"})
_MUL: Final = _Token("op", "*")


@dataclass(frozen=True, slots=True)
class _Expression:
    """A candidate expression: what we show the user and the Python source we parse."""

    display: str
    source: str
    nesting: int


# --- extraction -------------------------------------------------------------


def _rewrite(text: str) -> str:
    """Lower-case the text and turn word and symbol forms into plain operators."""
    text = text.lower()
    for symbol, spelled in _SYMBOLS.items():
        text = text.replace(symbol, spelled)
    text = _DATE_LIKE.sub(" date ", text)
    text = _strip_thousands_separators(text)
    for pattern, replacement in _REWRITES:
        text = pattern.sub(replacement, text)
    return text


def _strip_thousands_separators(text: str) -> str:
    """'1,000,000' -> '1000000', except inside parentheses where ',' separates arguments."""
    parts: list[str] = []
    depth = 0
    last = 0
    for match in _THOUSANDS.finditer(text):
        between = text[last : match.start()]
        depth = max(0, depth + between.count("(") - between.count(")"))
        parts.append(between)
        parts.append(match[0] if depth else match[0].replace(",", ""))
        last = match.end()
    parts.append(text[last:])
    return "".join(parts)


def _tokenize(text: str) -> list[_Token | None]:
    """Tokens of the rewritten text; ``None`` marks anything that ends an expression."""
    tokens: list[_Token | None] = []
    spaced = False
    for match in _TOKEN_RE.finditer(text):
        kind, value = match.lastgroup, match[0]
        if kind == "ws":
            spaced = True
            continue
        token: _Token | None
        if kind == "num":
            token = _Token("num", value, spaced)
        elif kind == "word":
            if value in _FUNCTIONS:
                token = _Token("func", value, spaced)
            elif value in _CONSTANTS:
                token = _Token("const", value, spaced)
            elif value == "percentof":
                token = _Token("pctof", value, spaced)
            else:
                token = None  # any other word ends the expression
        elif kind == "op":
            token = _Token("op", value, spaced)
        elif kind == "paren":
            token = _Token(value, value, spaced)
        elif kind == "comma":
            token = _Token(",", value, spaced)
        else:
            token = None
        tokens.append(token)
        spaced = False
    return tokens


def _split_runs(tokens: list[_Token | None]) -> list[list[_Token]]:
    """Group tokens into runs that could each be one expression."""
    runs: list[list[_Token]] = []
    run: list[_Token] = []
    depth = 0
    for token in tokens:
        if token is None or (token.kind == "," and depth == 0):
            runs.append(run)
            run, depth = [], 0
            continue
        if run and run[-1].kind in _OPERAND_END and token.kind in _OPERAND_START:
            # "2pi", "2(3+4)" and "(1+2)(3+4)" multiply; "5 6" are two things.
            if not token.spaced and run[-1].kind in ("num", ")") and token.kind != "num":
                run.append(_MUL)
            else:
                runs.append(run)
                run, depth = [], 0
        if token.kind == "(":
            depth += 1
        elif token.kind == ")":
            depth = max(0, depth - 1)
        run.append(token)
    runs.append(run)
    return [r for r in runs if r]


def _classify_percent(run: list[_Token]) -> list[_Token]:
    """'%' between operands is modulo; anywhere else it is a postfix percentage."""
    out: list[_Token] = []
    for index, token in enumerate(run):
        if token.kind == "op" and token.text == "%":
            following = run[index + 1] if index + 1 < len(run) else None
            is_modulo = following is not None and (
                following.kind in _OPERAND_START
                or (following.kind == "op" and following.text in "+-")
            )
            if not is_modulo:
                token = _Token("pct", "%", token.spaced)
        out.append(token)
    return out


def _trim(run: list[_Token]) -> list[_Token]:
    """Drop dangling operators at both ends and parentheses that are never matched."""
    while True:
        before = len(run)
        while run and (
            run[0].kind in (")", ",", "pct", "pctof")
            or (run[0].kind == "op" and run[0].text not in "+-")
        ):
            run = run[1:]
        while run and run[-1].kind in ("op", "(", ",", "func", "pctof"):
            run = run[:-1]
        unmatched: set[int] = set()
        stack: list[int] = []
        for index, token in enumerate(run):
            if token.kind == "(":
                stack.append(index)
            elif token.kind == ")":
                if stack:
                    stack.pop()
                else:
                    unmatched.add(index)
        unmatched.update(stack)
        run = [token for index, token in enumerate(run) if index not in unmatched]
        if len(run) == before:
            return run


def _atom_end(run: list[_Token], start: int) -> int | None:
    """Index just past the operand starting at ``start`` (for 'sqrt 81'), or None."""
    index = start
    while index < len(run) and run[index].kind == "op" and run[index].text in "+-":
        index += 1
    if index >= len(run):
        return None
    token = run[index]
    if token.kind in ("num", "const"):
        return index + 1
    if token.kind == "func":
        if index + 1 < len(run) and run[index + 1].kind == "(":
            return _matching_paren(run, index + 1)
        return _atom_end(run, index + 1)
    if token.kind == "(":
        return _matching_paren(run, index)
    return None


def _matching_paren(run: list[_Token], open_index: int) -> int | None:
    depth = 0
    for index in range(open_index, len(run)):
        if run[index].kind == "(":
            depth += 1
        elif run[index].kind == ")":
            depth -= 1
            if depth == 0:
                return index + 1
    return None


def _wrap_bare_functions(run: list[_Token]) -> list[_Token] | None:
    """'sqrt 81' -> 'sqrt(81)'; None when a function has nothing to apply to."""
    out: list[_Token] = []
    index = 0
    while index < len(run):
        token = run[index]
        if token.kind == "func" and (index + 1 >= len(run) or run[index + 1].kind != "("):
            end = _atom_end(run, index + 1)
            if end is None:
                return None
            inner = _wrap_bare_functions(run[index + 1 : end])
            if inner is None:
                return None
            out += [token, _Token("(", "("), *inner, _Token(")", ")")]
            index = end
        else:
            out.append(token)
            index += 1
    return out


def _is_expression(run: list[_Token]) -> bool:
    """Worth answering: has an operator between operands or a function, or is just 'pi'."""
    if [t.text for t in run] == ["pi"]:
        return True
    operands = sum(t.kind in ("num", "const") for t in run)
    has_binary = any(
        t.kind == "pctof" or (t.kind == "op" and i > 0 and run[i - 1].kind in _OPERAND_END)
        for i, t in enumerate(run)
    )
    return any(t.kind == "func" for t in run) or (has_binary and operands >= 2)


def _render(run: list[_Token]) -> _Expression:
    """The display form ('2 ^ 10') and the Python source ('2**10') of a run."""
    display: list[str] = []
    source: list[str] = []
    previous: _Token | None = None
    depth = nesting = 0
    for token in run:
        if token.kind == "op":
            unary = previous is None or previous.kind not in _OPERAND_END
            if unary:
                display.append(token.text)
            else:
                display.append(f" {_DISPLAY_OPS[token.text]} ")
            source.append(token.text)
        elif token.kind == "num":
            display.append(token.text)
            digits_only = token.text.isdigit()
            # "007" is not valid Python; no int() here, so huge literals stay cheap.
            source.append(token.text.lstrip("0") or "0" if digits_only else token.text)
        elif token.kind == "pct":
            display.append("%")
            source.append("/100")
        elif token.kind == "pctof":
            display.append("% of ")
            source.append("/100*")
        elif token.kind == ",":
            display.append(", ")
            source.append(",")
        else:
            if token.kind == "(":
                depth += 1
                nesting = max(nesting, depth)
            elif token.kind == ")":
                depth -= 1
            display.append(token.text)
            source.append(token.text)
        previous = token
    return _Expression("".join(display).strip(), "".join(source), nesting)


def _expressions(text: str) -> list[_Expression]:
    expressions: list[_Expression] = []
    for raw_run in _split_runs(_tokenize(_rewrite(text))):
        run = _trim(_classify_percent(raw_run))
        wrapped = _wrap_bare_functions(run) if run else None
        if wrapped and _is_expression(wrapped):
            expressions.append(_render(wrapped))
    return expressions


def find_expressions(text: str) -> list[str]:
    """The arithmetic expressions in ``text``, normalized ('what is 17 times 23' -> ['17 * 23']).

    Power is shown as ``^``; word forms become symbols ('square root of 81' -> 'sqrt(81)',
    '15% of 80' stays '15% of 80'). Plain numbers, dates and times are not expressions.
    """
    return [expression.display for expression in _expressions(text)]


# --- evaluation ---------------------------------------------------------------


def _check(value: Number) -> Number:
    """Refuse non-finite and over-large values (every intermediate result passes here)."""
    if isinstance(value, float) and not math.isfinite(value):
        raise AgentError("The result is too large to compute (it overflows); use smaller numbers.")
    if abs(value) > MAX_MAGNITUDE:
        raise AgentError(
            "The result is too large: only results up to 1e300 in magnitude are supported."
        )
    return value


def _is_integral(value: Number) -> bool:
    return isinstance(value, int) or value.is_integer()


def _divide(left: Number, right: Number) -> Number:
    if right == 0:
        raise AgentError("Division by zero is undefined; change the divisor to a non-zero number.")
    if isinstance(left, int) and isinstance(right, int) and left % right == 0:
        return left // right  # keep exact integers exact: 10 / 2 = 5, not 5.0
    return left / right


def _power(base: Number, exponent: Number) -> Number:
    if base == 0 and exponent < 0:
        raise AgentError("Zero cannot be raised to a negative power (that divides by zero).")
    if base < 0 and not _is_integral(exponent):
        raise AgentError(
            "A negative number cannot be raised to a fractional power (the result is not real)."
        )
    # Estimate the size of the result before computing it: 9 ** 9 ** 9 would
    # otherwise take minutes and gigabytes.
    if abs(base) not in (0, 1) and exponent * math.log10(abs(base)) > math.log10(MAX_MAGNITUDE):
        raise AgentError(
            "The exponent is too large: only results up to 1e300 in magnitude are supported."
        )
    if isinstance(exponent, float) and exponent.is_integer() and isinstance(base, int):
        exponent = int(exponent)
    try:
        result: Number = base**exponent
    except OverflowError:
        raise AgentError("The result is too large to compute; use a smaller exponent.") from None
    return result


def _binary(operator: ast.operator, left: Number, right: Number) -> Number:
    match operator:
        case ast.Add():
            return left + right
        case ast.Sub():
            return left - right
        case ast.Mult():
            return left * right
        case ast.Div():
            return _divide(left, right)
        case ast.FloorDiv() | ast.Mod():
            if right == 0:
                raise AgentError(
                    "Division by zero is undefined; change the divisor to a non-zero number."
                )
            return left // right if isinstance(operator, ast.FloorDiv) else left % right
        case ast.Pow():
            return _power(left, right)
    raise AgentError("Only + - * / // % and ^ are supported as operators.")


def _positive(name: str, value: Number) -> Number:
    if value <= 0:
        raise AgentError(
            f"{name} is only defined for positive numbers, so {name}({format_number(value)}) "
            "has no value."
        )
    return value


def _sqrt(value: Number) -> Number:
    if value < 0:
        raise AgentError(
            f"The square root of a negative number ({format_number(value)}) is not a real number."
        )
    if isinstance(value, int):
        root = math.isqrt(value)
        if root * root == value:
            return root  # exact for perfect squares
    return math.sqrt(value)


def _log(value: Number, base: Number = 10) -> Number:
    _positive("log", value)
    if base <= 0 or base == 1:
        raise AgentError("The base of a logarithm must be positive and different from 1.")
    if base == 10:
        return math.log10(value)
    return math.log(value, base)


def _exp(value: Number) -> Number:
    try:
        return math.exp(value)
    except OverflowError:
        raise AgentError("exp() of that argument is too large to compute.") from None


def _trig(function: Callable[[float], float]) -> Callable[[Number], Number]:
    def apply(value: Number) -> Number:
        result = function(value)
        # sin(pi) is 1.2e-16 in floating point; the user means 0.
        return 0 if abs(result) < 1e-12 else result

    return apply


def _round(value: Number, digits: Number = 0) -> Number:
    if not _is_integral(digits) or abs(digits) > MAX_ROUND_DIGITS:
        raise AgentError(
            f"round() takes a whole number of digits between -{MAX_ROUND_DIGITS} and "
            f"{MAX_ROUND_DIGITS}, for example round(3.14159, 2)."
        )
    if digits == 0:
        return round(value)
    return round(value, int(digits))


def _factorial(value: Number) -> Number:
    if not _is_integral(value) or not 0 <= value <= MAX_FACTORIAL:
        raise AgentError(
            f"factorial() takes a whole number from 0 to {MAX_FACTORIAL}, "
            f"not {format_number(value)}."
        )
    return math.factorial(int(value))


# name -> (function, minimum arguments, maximum arguments)
_FUNCTION_TABLE: Final[Mapping[str, tuple[Callable[..., Number], int, int]]] = {
    "sqrt": (_sqrt, 1, 1),
    "abs": (abs, 1, 1),
    "round": (_round, 1, 2),
    "min": (min, 1, MAX_ARGUMENTS),
    "max": (max, 1, MAX_ARGUMENTS),
    "log": (_log, 1, 2),
    "ln": (lambda x: math.log(_positive("ln", x)), 1, 1),
    "log10": (lambda x: math.log10(_positive("log10", x)), 1, 1),
    "exp": (_exp, 1, 1),
    "sin": (_trig(math.sin), 1, 1),
    "cos": (_trig(math.cos), 1, 1),
    "tan": (_trig(math.tan), 1, 1),
    "floor": (math.floor, 1, 1),
    "ceil": (math.ceil, 1, 1),
    "factorial": (_factorial, 1, 1),
}


def _call(name: str, args: list[Number]) -> Number:
    function, least, most = _FUNCTION_TABLE[name]
    if not least <= len(args) <= most:
        expected = str(least) if least == most else f"{least} to {most}"
        raise AgentError(
            f"{name}() takes {expected} argument{'s' if most > 1 else ''}, "
            f"but {len(args)} were given."
        )
    return function(*args)


def _eval(node: ast.AST, depth: int = 0) -> Number:
    """Evaluate a whitelisted AST node; everything else is refused."""
    if depth > MAX_AST_DEPTH:
        raise AgentError("The expression is too deeply nested to evaluate.")
    match node:
        case ast.Expression(body=body):
            return _eval(body, depth + 1)
        case ast.Constant(value=int() | float() as value) if not isinstance(value, bool):
            return _check(value)
        case ast.Name(id=name) if name in _CONSTANTS:
            return _CONSTANTS[name]
        case ast.UnaryOp(op=ast.USub(), operand=operand):
            return -_eval(operand, depth + 1)
        case ast.UnaryOp(op=ast.UAdd(), operand=operand):
            return _eval(operand, depth + 1)
        case ast.BinOp(left=left, op=operator, right=right):
            return _check(_binary(operator, _eval(left, depth + 1), _eval(right, depth + 1)))
        case ast.Call(func=ast.Name(id=name), args=args, keywords=[]) if name in _FUNCTION_TABLE:
            values = [_eval(arg, depth + 1) for arg in args]
            return _check(_call(name, values))
    raise AgentError(
        "The expression uses something the calculator does not support; use numbers, "
        "+ - * / // % ^, parentheses and the functions " + ", ".join(sorted(_FUNCTIONS)) + "."
    )


def _evaluate(expression: _Expression) -> Number:
    # Measured without the spaces we add for display, so "1+1" counts 3.
    if len(expression.source) > MAX_EXPRESSION_LENGTH:
        raise AgentError(
            f"The expression is too long ({len(expression.source)} characters); "
            f"the limit is {MAX_EXPRESSION_LENGTH}."
        )
    if expression.nesting > MAX_NESTING:
        raise AgentError(
            f"The expression nests parentheses {expression.nesting} deep; "
            f"the limit is {MAX_NESTING}."
        )
    try:
        tree = ast.parse(expression.source, mode="eval")
    except (SyntaxError, ValueError, RecursionError):
        raise AgentError(
            f'The calculator could not understand "{expression.display}"; check the operators '
            "and parentheses, for example (2 + 3) * 4."
        ) from None
    try:
        return _eval(tree)
    except (ArithmeticError, ValueError, TypeError):
        # Backstop for math-domain corners not checked explicitly above.
        raise AgentError(
            f'"{expression.display}" has no real-number value (a math domain error).'
        ) from None


def format_number(value: Number) -> str:
    """Integers exactly (391), other numbers to 10 significant digits (0.1 + 0.2 -> 0.3)."""
    if isinstance(value, int):
        if len(str(abs(value))) <= MAX_EXACT_DIGITS:
            return str(value)
        return f"{float(value):.10g}"
    if value == 0:
        return "0"  # also turns -0.0 into 0
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.10g}"


# --- the agent ----------------------------------------------------------------


def _dump(value: Any) -> str:
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return str(value)


def _number_from_inputs(inputs: Mapping[str, Any]) -> str | None:
    """The number an earlier step produced: the last one after '=' ('17 * 23 = 391')."""
    for step in sorted(inputs, key=str, reverse=True):
        value = inputs[step]
        if isinstance(value, int | float) and not isinstance(value, bool):
            if isinstance(value, float) and not math.isfinite(value):
                continue
            return format_number(value)
        text = _dump(value)
        tail = text.rsplit("=", 1)[-1]
        numbers = _NUMBER_IN_TEXT.findall(tail) or _NUMBER_IN_TEXT.findall(text)
        if numbers:
            return str(numbers[-1])
    return None


def _substitute_references(instruction: str, inputs: Mapping[str, Any] | None) -> str:
    """'multiply the result by 2' -> 'multiply 391 by 2' when an earlier step gave 391."""
    if not inputs or not _REFERENCE.search(instruction):
        return instruction
    number = _number_from_inputs(inputs)
    if number is None:
        return instruction
    replacement = f"({number})" if number.startswith("-") else number
    return _REFERENCE.sub(replacement, instruction)


def run(
    instruction: str,
    inputs: Mapping[str, Any] | None = None,
    *,
    now: datetime | None = None,
) -> str:
    """Evaluate every arithmetic expression in ``instruction``.

    Returns one line such as ``"17 * 23 = 391"`` (several expressions are joined
    with ``"; "``). "the result", "that" and "it" refer to the number of an
    earlier step in ``inputs``. ``now`` is unused (same signature as the other
    built-in agents). Raises :class:`AgentError` when there is nothing to
    compute or the arithmetic is invalid or too large.
    """
    del now  # arithmetic does not depend on the time
    if len(instruction) > MAX_INSTRUCTION_LENGTH:
        raise AgentError(
            f"The instruction is too long ({len(instruction)} characters); the calculator "
            f"accepts up to {MAX_INSTRUCTION_LENGTH}."
        )
    expressions = _expressions(_substitute_references(instruction, inputs))
    if not expressions:
        preview = " ".join(instruction.split())[:80]
        hint = (
            " (it refers to an earlier result, but no earlier step gave a number)"
            if _REFERENCE.search(instruction) and not (inputs and _number_from_inputs(inputs))
            else ""
        )
        raise AgentError(
            f'The calculator found no arithmetic expression in "{preview}"{hint}; write it '
            "like '17 * 23', '(2 + 3) * 4', 'sqrt(81)', '15% of 80' or '2 to the power of 10'."
        )
    if len(expressions) > MAX_EXPRESSIONS:
        raise AgentError(
            f"The instruction has {len(expressions)} expressions; the calculator answers "
            f"at most {MAX_EXPRESSIONS} at a time."
        )
    return "; ".join(
        f"{expression.display} = {format_number(_evaluate(expression))}"
        for expression in expressions
    )
