"""Offline follow-ups: "and in London?" after "what time is it in Tokyo?" means the same again.

A follow-up is elliptical: it starts like one ("and", "what about", "how
about", "same for") and is short. It is resolved against the last turn: in
each step instruction of that turn (or its message, for turns stored without
steps) the last phrase introduced by a preposition -- "in Tokyo" -- is
replaced with the follow-up's -- "in London" (a bare "London" keeps the
preposition). What the rewrite touched is the new question; a follow-up
that matches nothing is planned as it stands. The LLM planner needs none of
this: it reads the history itself.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ..core.conversation import ConversationTurn

__all__ = ["resolve_followup"]

_ELLIPTIC = re.compile(
    r"^\s*(?:and\s+(?:what|how)\s+about|what\s+about|how\s+about|same\s+for|and|but)\b"
    r"[\s,]*(?P<rest>[^?!.;]{1,80}?)[\s?!.]*$",
    re.IGNORECASE,
)
_PREPOSITIONS = r"in|at|for|of|from|to|on|about|with|by|into"
_LEADING_PREP = re.compile(rf"^(?:{_PREPOSITIONS})\s", re.IGNORECASE)
# The last prepositional phrase of a text: the preposition, then words up to the end of
# the clause (no punctuation; bounded, so matching stays linear).
_LAST_PHRASE = re.compile(
    rf"\b(?P<prep>{_PREPOSITIONS})\s+(?P<object>[^\s,;?!.][^,;?!.]{{0,80}}?)\s*(?=[,;?!.]|$)",
    re.IGNORECASE,
)
#: Most words a follow-up may have to count as elliptical.
MAX_FOLLOWUP_WORDS = 6


def resolve_followup(message: str, history: Sequence[ConversationTurn]) -> str | None:
    """The question an elliptical ``message`` asks, given the last turn; None if it is not
    one (or nothing in the last turn fits)."""
    if not history:
        return None
    match = _ELLIPTIC.match(message)
    if match is None:
        return None
    rest = match["rest"].strip()
    if not rest or len(rest.split()) > MAX_FOLLOWUP_WORDS:
        return None
    last = history[-1]
    texts = [s.instruction for s in last.steps if s.instruction] or [last.message]
    rewritten = [new for text in texts if (new := _substitute(text, rest)) is not None]
    return "; ".join(dict.fromkeys(rewritten)) if rewritten else None


def _substitute(text: str, rest: str) -> str | None:
    phrases = list(_LAST_PHRASE.finditer(text))
    if not phrases:
        return None
    last = phrases[-1]
    if _LEADING_PREP.match(rest):
        same = [p for p in phrases if p["prep"].lower() == rest.split()[0].lower()]
        last = same[-1] if same else last
        replacement = rest
    else:
        replacement = f"{last['prep']} {rest}"
    return text[: last.start()] + replacement + text[last.end() :]
