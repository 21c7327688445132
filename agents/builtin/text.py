"""Text agent: counts, word frequencies, extraction and simple transforms, offline.

The text to work on comes from, in order: a quoted part of the instruction
('count the words in "the quick brown fox"'), the part after a colon
("count words: the quick brown fox"), the outputs of earlier steps (``inputs``),
and finally the instruction itself minus its command words.
Every regex here is linear-time on its input (bounded repetitions, anchored
starts), so the 1,000,000-character limit also bounds the work.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from switchboard.orchestrator.core.errors import AgentError

__all__ = ["DESCRIPTION", "KEYWORDS", "NAME", "PATTERNS", "run"]

NAME: Final = "text"
DESCRIPTION: Final = (
    "Analyses and transforms text without an LLM: counts words, characters, sentences, "
    "lines and paragraphs, lists the most frequent words, extracts emails, URLs, numbers, "
    "hashtags, @mentions and dates, changes case, reverses, and estimates reading time. "
    "Example: 'count the words in \"the quick brown fox\"'"
)
KEYWORDS: Final = (
    "count",
    "words",
    "word",
    "characters",
    "letters",
    "sentences",
    "lines",
    "paragraphs",
    "uppercase",
    "lowercase",
    "capitalize",
    "reverse",
    "extract",
    "emails",
    "urls",
    "links",
    "hashtags",
    "mentions",
    "frequent",
    "frequency",
    "reading",
    "text",
)
PATTERNS: Final = (
    r"\bhow\s+many\s+(?:words|characters|chars|letters|sentences|lines|paragraphs)\b",
    r"\bcount\s+(?:the\s+|all\s+)?(?:words|characters|chars|letters|sentences|lines|paragraphs)\b",
    r"\b(?:word|character|char|letter|sentence|line|paragraph)\s+count\b",
    r"\bextract\s+(?:all\s+|the\s+)?(?:e-?mails?|email\s+addresses|urls|links|numbers|hashtags"
    r"|mentions|dates)\b",
    r"\b(?:upper|lower|title)[- ]?case\b",
    r"\breverse\s+(?:the\s+)?(?:words|characters|letters|text|string)\b",
    r"\breading\s+time\b",
    r"\bmost\s+(?:frequent|common)\s+words?\b",
    r"\bword\s+frequenc(?:y|ies)\b",
)

MAX_TEXT_LENGTH: Final = 1_000_000
MAX_LISTED: Final = 100  # extraction answers list at most this many items
MAX_TOP_WORDS: Final = 50
DEFAULT_TOP_WORDS: Final = 5
WORDS_PER_MINUTE: Final = 200
PREVIEW_LENGTH: Final = 40

_STOP_WORDS: Final = frozenset(
    """a an and are as at be but by for from had has have he her his i if in into is it its
    me my no not of on or our she so that the their them then there these they this to
    was we were what when which who will with you your""".split()  # noqa: SIM905
)

# --- where the text comes from ----------------------------------------------------

# "“" may not appear inside “...”: a text of many unclosed “ must stay linear.
_DOUBLE_QUOTED: Final = re.compile(r'"([^"]*)"|“([^“”]*)”')
# A single quote opens only after a space/start and closes before a space or
# punctuation, so apostrophes ("what's", "John's") do not count as quotes.
_SINGLE_QUOTED: Final = re.compile(r"(?:^|(?<=[\s:]))'([^']+)'(?=[\s.,;:!?)]|$)")
_AFTER_COLON: Final = re.compile(r"^([^:\n]{1,120}?):\s+(.+)$", re.DOTALL)
# Leading command phrase ("count the words in", "extract emails from") for the
# fallback where the instruction itself is the text.
_COMMAND_PREFIX: Final = re.compile(
    r"^\s*(?:please\s+)?(?:(?:count|how\s+many|extract|find|list|get|show|give|make|convert"
    r"|turn|change|reverse|uppercase|lowercase|capitali[sz]e|what\s+(?:is|are)|tell\s+me)\b"
    r"[^\"'\n]{0,80}?\b(?:in|of|from|for|on|to)\s+)(?:the\s+(?:text|string|sentence)\s+)?",
    re.IGNORECASE,
)
_COMMAND_WORDS: Final = frozenset(
    """count how many number of words word characters character chars letters sentences
    lines paragraphs extract find list get show all the emails email urls links numbers
    hashtags mentions dates uppercase lowercase title case reverse reading time most
    frequent common please text in from of""".split()  # noqa: SIM905
)


@dataclass(frozen=True, slots=True)
class _Source:
    """The text to work on and a note saying where it came from (empty when obvious)."""

    text: str
    note: str


def _dump(value: Any) -> str:
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):  # non-string keys, circular references
        return str(value)


def _preview(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= PREVIEW_LENGTH else flat[: PREVIEW_LENGTH - 1] + "…"


def _source(instruction: str, inputs: Mapping[str, Any] | None) -> tuple[_Source, str]:
    """The text to work on, and the command part of the instruction (without that text)."""
    for pattern in (_DOUBLE_QUOTED, _SINGLE_QUOTED):
        if match := pattern.search(instruction):
            quoted = next(group for group in match.groups() if group is not None)
            command = instruction[: match.start()] + " " + instruction[match.end() :]
            return _Source(quoted, ""), command
    if match := _AFTER_COLON.match(instruction):
        return _Source(match[2], ""), match[1]
    if inputs:
        steps = sorted(inputs, key=str)
        text = "\n\n".join(_dump(inputs[step]) for step in steps)
        if len(steps) == 1:
            note = f"the output of step {steps[0]}"
        else:
            note = "the outputs of steps " + ", ".join(str(step) for step in steps)
        return _Source(text, note), instruction
    if match := _COMMAND_PREFIX.match(instruction):
        text = instruction[match.end() :]
    else:
        text = " ".join(w for w in instruction.split() if w.lower() not in _COMMAND_WORDS)
    text = text.strip()
    if not text:
        raise AgentError(
            "There is no text to work on: put it in quotes, after a colon "
            "('count words: the quick brown fox'), or run this step after one that produces it."
        )
    return _Source(text, f'the instruction\'s own text ("{_preview(text)}")'), instruction


# --- analysis --------------------------------------------------------------------

# Letters with inner apostrophes (' or the typographic \u2019): "don't" is one word.
_FREQUENCY_WORD: Final = re.compile(r"[^\W\d_]+(?:['\u2019][^\W\d_]+)*")
# (?<![.!?…]): only the start of a run of stops is tried (linear, not quadratic, in it).
_SENTENCE_END: Final = re.compile(r"(?<![.!?…])[.!?…]+(?=[\s\"')\]]|$)|\n\s*\n")
_PARAGRAPH_BREAK: Final = re.compile(r"\n\s*\n")
_ALNUM: Final = re.compile(r"[^\W_]")


def _words(text: str) -> list[str]:
    """Whitespace-separated tokens with at least one letter or digit ('—' is not a word)."""
    return [token for token in text.split() if _ALNUM.search(token)]


def _sentences(text: str) -> int:
    return sum(1 for part in _SENTENCE_END.split(text) if _ALNUM.search(part))


def _paragraphs(text: str) -> int:
    return sum(1 for part in _PARAGRAPH_BREAK.split(text) if part.strip())


def _plural(count: int, noun: str) -> str:
    if count == 1:
        return f"{count} {noun}"
    return f"{count} {noun}es" if noun.endswith("ss") else f"{count} {noun}s"


def _join(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _characters(text: str, command: str) -> str:
    with_spaces = len(text)
    without = sum(1 for c in text if not c.isspace())
    if re.search(r"\b(?:without|excluding|no|non)[- ]?(?:spaces?|whitespace)", command, re.I):
        return _plural(without, "character") + " (not counting spaces)"
    if re.search(r"\b(?:with|including)\s+(?:spaces?|whitespace)", command, re.I):
        return _plural(with_spaces, "character") + " (counting spaces)"
    return _plural(with_spaces, "character") + f" ({without} without spaces)"


# count word -> how to count it
_COUNTS: Final[Mapping[str, Callable[[str, str], str]]] = {
    r"words?": lambda text, _: _plural(len(_words(text)), "word"),
    r"char(?:acter)?s?": _characters,
    r"letters?": lambda text, _: _plural(sum(c.isalpha() for c in text), "letter"),
    r"sentences?": lambda text, _: _plural(_sentences(text), "sentence"),
    r"lines?": lambda text, _: _plural(len(text.splitlines()), "line"),
    r"paragraphs?": lambda text, _: _plural(_paragraphs(text), "paragraph"),
}


def _stats(text: str) -> str:
    return _join(
        [
            _plural(len(_words(text)), "word"),
            _plural(len(text), "character"),
            _plural(_sentences(text), "sentence"),
        ]
    )


def _top_words(text: str, command: str) -> str:
    """'fox (3), dog (2)': the most frequent words, stop words left out."""
    match = re.search(r"\b(?:top|most\s+(?:frequent|common))\s+(\d{1,6})\b", command, re.I)
    match = match or re.search(r"\b(\d{1,6})\s+most\s+(?:frequent|common)\b", command, re.I)
    limit = min(int(match[1]), MAX_TOP_WORDS) if match else DEFAULT_TOP_WORDS
    counts = Counter(
        word
        for word in (w.lower() for w in _FREQUENCY_WORD.findall(text))
        if word not in _STOP_WORDS
    )
    if not counts:
        return ""
    return ", ".join(f"{word} ({count})" for word, count in counts.most_common(limit))


def _reading_time(text: str) -> str:
    """'about 3 minutes to read (450 words at 200 words per minute)'."""
    words = len(_words(text))
    seconds = math.ceil(words * 60 / WORDS_PER_MINUTE)
    if seconds < 60:
        estimate = f"about {_plural(seconds, 'second')}"
    else:
        estimate = f"about {_plural(math.ceil(seconds / 60), 'minute')}"
    detail = f"{_plural(words, 'word')} at {WORDS_PER_MINUTE} words per minute"
    return f"{estimate} to read ({detail})"


# --- extraction ------------------------------------------------------------------

# Bounded repetitions and "must not follow a word character" starts keep these
# linear on a 1,000,000-character input.
_MONTHS = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
)
_DATE: Final = re.compile(
    r"\b\d{4}-\d{2}-\d{2}\b|\b\d{1,2}/\d{1,2}/\d{2,4}\b"
    rf"|\b\d{{1,2}}\s+{_MONTHS}\.?\s+\d{{4}}\b|\b{_MONTHS}\.?\s+\d{{1,2}},?\s+\d{{4}}\b",
    re.IGNORECASE,
)
_EXTRACTORS: Final[Mapping[str, tuple[str, re.Pattern[str]]]] = {
    "email": (
        "email address",
        re.compile(
            r"(?<![\w.%+-])[\w.%+-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}\.){1,8}[A-Za-z]{2,24}\b"
        ),
    ),
    "url": (
        "URL",
        re.compile(r"\b(?:https?://|www\.)[^\s<>\"'`]{1,2000}", re.IGNORECASE),
    ),
    "number": (
        "number",
        re.compile(r"(?<![\w.,-])-?\d{1,3}(?:,\d{3})+(?:\.\d+)?(?!\d)|(?<![\w.,-])-?\d+(?:\.\d+)?"),
    ),
    "hashtag": ("hashtag", re.compile(r"(?<![\w#&])#(?=\w*?[^\W\d_])\w+")),
    "mention": ("mention", re.compile(r"(?<![\w@.])@\w{1,64}")),
    "date": ("date", _DATE),
}
_EXTRACT_TARGETS: Final[Mapping[str, str]] = {
    r"e-?mails?|e-?mail\s+addresses": "email",
    r"urls?|links?|web\s*sites?|web\s+addresses": "url",
    r"numbers?(?!\s+of\b)|figures|digits": "number",
    r"hashtags?|tags": "hashtag",
    r"mentions?|handles?|usernames?": "mention",
    r"dates?": "date",
}


def _extract(kind: str, text: str) -> list[str]:
    _, pattern = _EXTRACTORS[kind]
    if kind == "number":
        text = _DATE.sub(" ", text)  # 2026-11-24 is a date, not three numbers
    found: list[str] = []
    for match in pattern.finditer(text):
        item = match[0].rstrip(".,;:!?)]}") if kind == "url" else match[0]
        if item not in found:
            found.append(item)
    return found


def _extraction(kind: str, text: str, count_only: bool) -> str:
    noun, _ = _EXTRACTORS[kind]
    items = _extract(kind, text)
    if count_only:
        return _plural(len(items), noun)
    if not items:
        return f"no {noun}es" if noun.endswith("ss") else f"no {noun}s"
    shown = ", ".join(items[:MAX_LISTED])
    more = f" (and {len(items) - MAX_LISTED} more)" if len(items) > MAX_LISTED else ""
    return f"{_plural(len(items), noun)}: {shown}{more}"


# --- transforms ----------------------------------------------------------------


def _title_case(text: str) -> str:
    # str.title() turns "don't" into "Don'T".
    return _FREQUENCY_WORD.sub(lambda m: m[0][:1].upper() + m[0][1:].lower(), text)


def _reverse_words(text: str) -> str:
    return " ".join(reversed(text.split()))


_TRANSFORMS: Final[Mapping[str, Callable[[str], str]]] = {
    r"\bupper[- ]?case\b|\ball\s+caps\b|\bcapitals\b": str.upper,
    r"\blower[- ]?case\b": str.lower,
    r"\btitle[- ]?case\b|\bcapitali[sz]e\b": _title_case,
    r"\breverse\s+(?:the\s+)?(?:order\s+of\s+)?(?:the\s+)?words\b": _reverse_words,
    r"\breverse\b|\bbackwards\b": lambda text: text[::-1],
}


# --- the agent -------------------------------------------------------------------


def _has(command: str, pattern: str) -> bool:
    return re.search(pattern, command, re.IGNORECASE) is not None


def _answer(text: str, command: str, where: str, plural: bool) -> str:
    """Run the operation the command asks for on ``text``; ``where`` names the text."""
    has, takes = ("have", "take") if plural else ("has", "takes")
    counting = _has(command, r"\b(?:count|how\s+many|number\s+of|total)\b")
    kinds = [kind for pattern, kind in _EXTRACT_TARGETS.items() if _has(command, rf"\b{pattern}\b")]
    counts = [count for pattern, count in _COUNTS.items() if _has(command, rf"\b{pattern}\b")]
    listing = _has(command, r"\b(?:extract|find|list|get|show|pull|what|which)\b")
    if (kinds and (counting or listing or not counts)) or (counting and counts):
        parts = [_extraction(kind, text, counting) for kind in kinds]
        parts += [count(text, command) for count in counts]
        return f"{where} {has} {_join(parts) if counting else '; '.join(parts)}."
    if _has(command, r"\b(?:most\s+(?:frequent|common)|top\s+\d*\s*words|word\s+frequenc)"):
        top = _top_words(text, command)
        if not top:
            return f"{where} {has} no words other than common stop words."
        return f"The most frequent words in {where[:1].lower()}{where[1:]} are {top}."
    if _has(command, r"\breading\s+time\b|\btime\s+to\s+read\b|\bhow\s+long\b[^.?!]{0,40}\bread"):
        return f"{where} {takes} {_reading_time(text)}."
    for pattern, transform in _TRANSFORMS.items():
        if _has(command, pattern):
            return transform(text)  # the transformed text itself is the answer
    return f"{where} {has} {_stats(text)}."


def run(
    instruction: str,
    inputs: Mapping[str, Any] | None = None,
    *,
    now: datetime | None = None,
) -> str:
    """Count, extract from or transform a text and return a one-line answer.

    The text is the quoted part of ``instruction``, else the part after a colon,
    else the outputs of earlier steps in ``inputs`` (step-id order), else the
    instruction minus its command words. ``now`` is unused (uniform signature).
    Raises :class:`AgentError` when there is no text or it is over
    1,000,000 characters.
    """
    del now  # text analysis does not depend on the time
    if len(instruction) > MAX_TEXT_LENGTH:
        raise AgentError(
            f"The instruction is too long ({len(instruction):,} characters); the text agent "
            f"handles up to {MAX_TEXT_LENGTH:,} characters."
        )
    source, command = _source(instruction, inputs)
    if len(source.text) > MAX_TEXT_LENGTH:
        raise AgentError(
            f"The text is too long ({len(source.text):,} characters); the text agent handles "
            f"up to {MAX_TEXT_LENGTH:,} characters."
        )
    where = source.note or "the text"
    plural = where.startswith("the outputs")
    return _answer(source.text, command, where[:1].upper() + where[1:], plural)
