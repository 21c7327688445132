"""Clock agent: the current time and date in places, time differences, weekdays.

Places resolve to IANA zones with :mod:`zoneinfo` (the ``tzdata`` package makes
that work on every OS). The index is built from the zone names themselves
("new york" -> America/New_York), plus a curated table for cities, countries
and abbreviations that are not zone names (Beijing, India, PST, ...).
Everything is computed from ``now``, so tests can fix the clock.
"""

from __future__ import annotations

import functools
import re
import unicodedata
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final

from switchboard.orchestrator.core.errors import AgentError

__all__ = ["DESCRIPTION", "KEYWORDS", "NAME", "PATTERNS", "find_places", "run"]

NAME: Final = "clock"
DESCRIPTION: Final = (
    "Tells the current time and date in any city, country or time zone (UTC when no place "
    "is given), the time difference between two places, and the weekday of a date. "
    "Example: 'what time is it in Tokyo and New York?'"
)
KEYWORDS: Final = (
    "time",
    "date",
    "day",
    "today",
    "tomorrow",
    "yesterday",
    "weekday",
    "timezone",
    "clock",
    "o'clock",
    "utc",
    "gmt",
    "hour",
)
PATTERNS: Final = (
    r"\bwhat\s+time\b",
    r"\bwhat(?:'s|\s+is)\s+the\s+(?:current\s+|local\s+)?(?:time|date)\b",
    r"\b(?:current|local)\s+(?:[a-z]+\s+)?(?:time|date)\b",
    r"(?<!reading )\btime\s+(?:right\s+)?(?:now\s+)?in\s+(?!minutes\b|seconds\b|hours\b)[a-z]",
    r"\bwhat\s+day\s+(?:of\s+the\s+week\s+)?(?:is|was|will)\b",
    r"\bday\s+of\s+the\s+week\b",
    r"\btime\s*(?:difference|zone)\b|\btimezone\b",
    r"\b(?:today|tomorrow|yesterday)'?s\s+date\b",
    r"\b\d{1,2}\s*o'?clock\b",
    r"\bhours?\s+(?:ahead|behind)\b",
    r"\b(?:utc|gmt)\s+(?:time|now|offset)\b",
)

# Zone areas whose last path component is a place people name (Antarctic stations
# and legacy aliases such as US/Pacific or Etc/GMT+5 are only matched by full name).
_AREAS: Final = frozenset(
    {"Africa", "America", "Arctic", "Asia", "Atlantic", "Australia", "Europe", "Indian", "Pacific"}
)
# Last components that are also ordinary English words or first names: a sentence
# containing "wake", "north" or "christmas" is not asking about a Pacific atoll.
_NOT_PLACES: Final = frozenset(
    {
        "act",
        "canary",
        "center",
        "christmas",
        "currie",
        "dawson",
        "easter",
        "johnston",
        "knox",
        "knox in",
        "lhi",
        "lindeman",
        "midway",
        "north",
        "oral",
        "resolute",
        "reunion",
        "south",
        "stanley",
        "victoria",
        "virgin",
        "wake",
        "west",
        "yap",
    }
)

# Cities, countries, regions and abbreviations that are not IANA zone names (or
# are ambiguous among them). Keys are normalized: lower case, no accents.
_ALIASES: Final[Mapping[str, str]] = {
    # abbreviations (a region's zone, so daylight saving time follows the place)
    "utc": "UTC",
    "gmt": "UTC",
    "zulu": "UTC",
    "pst": "America/Los_Angeles",
    "pdt": "America/Los_Angeles",
    "mst": "America/Denver",
    "mdt": "America/Denver",
    "cst": "America/Chicago",
    "cdt": "America/Chicago",
    "est": "America/New_York",
    "edt": "America/New_York",
    "akst": "America/Anchorage",
    "hst": "Pacific/Honolulu",
    "bst": "Europe/London",
    "cet": "Europe/Berlin",
    "cest": "Europe/Berlin",
    "eet": "Europe/Athens",
    "eest": "Europe/Athens",
    "msk": "Europe/Moscow",
    "ist": "Asia/Kolkata",
    "pkt": "Asia/Karachi",
    "sgt": "Asia/Singapore",
    "hkt": "Asia/Hong_Kong",
    "jst": "Asia/Tokyo",
    "kst": "Asia/Seoul",
    "aest": "Australia/Sydney",
    "aedt": "Australia/Sydney",
    "acst": "Australia/Adelaide",
    "awst": "Australia/Perth",
    "nzst": "Pacific/Auckland",
    "nzdt": "Pacific/Auckland",
    "pacific time": "America/Los_Angeles",
    "mountain time": "America/Denver",
    "central time": "America/Chicago",
    "eastern time": "America/New_York",
    # cities
    "san francisco": "America/Los_Angeles",
    "sf": "America/Los_Angeles",
    "silicon valley": "America/Los_Angeles",
    "seattle": "America/Los_Angeles",
    "portland": "America/Los_Angeles",
    "san diego": "America/Los_Angeles",
    "las vegas": "America/Los_Angeles",
    "san jose": "America/Los_Angeles",
    "nyc": "America/New_York",
    "ny": "America/New_York",
    "boston": "America/New_York",
    "washington": "America/New_York",
    "washington dc": "America/New_York",
    "dc": "America/New_York",
    "miami": "America/New_York",
    "atlanta": "America/New_York",
    "philadelphia": "America/New_York",
    "houston": "America/Chicago",
    "dallas": "America/Chicago",
    "austin": "America/Chicago",
    "new orleans": "America/Chicago",
    "salt lake city": "America/Denver",
    "ottawa": "America/Toronto",
    "montreal": "America/Toronto",
    "quebec": "America/Toronto",
    "calgary": "America/Edmonton",
    "rio": "America/Sao_Paulo",
    "rio de janeiro": "America/Sao_Paulo",
    "brasilia": "America/Sao_Paulo",
    "beijing": "Asia/Shanghai",
    "peking": "Asia/Shanghai",
    "shenzhen": "Asia/Shanghai",
    "guangzhou": "Asia/Shanghai",
    "delhi": "Asia/Kolkata",
    "new delhi": "Asia/Kolkata",
    "mumbai": "Asia/Kolkata",
    "bombay": "Asia/Kolkata",
    "bangalore": "Asia/Kolkata",
    "bengaluru": "Asia/Kolkata",
    "chennai": "Asia/Kolkata",
    "hyderabad": "Asia/Kolkata",
    "osaka": "Asia/Tokyo",
    "kyoto": "Asia/Tokyo",
    "busan": "Asia/Seoul",
    "hanoi": "Asia/Bangkok",
    "ho chi minh city": "Asia/Ho_Chi_Minh",
    "abu dhabi": "Asia/Dubai",
    "mecca": "Asia/Riyadh",
    "st petersburg": "Europe/Moscow",
    "saint petersburg": "Europe/Moscow",
    "munich": "Europe/Berlin",
    "frankfurt": "Europe/Berlin",
    "hamburg": "Europe/Berlin",
    "cologne": "Europe/Berlin",
    "milan": "Europe/Rome",
    "naples": "Europe/Rome",
    "venice": "Europe/Rome",
    "florence": "Europe/Rome",
    "barcelona": "Europe/Madrid",
    "geneva": "Europe/Zurich",
    "bern": "Europe/Zurich",
    "the hague": "Europe/Amsterdam",
    "rotterdam": "Europe/Amsterdam",
    "manchester": "Europe/London",
    "edinburgh": "Europe/London",
    "glasgow": "Europe/London",
    "cardiff": "Europe/London",
    "cape town": "Africa/Johannesburg",
    "pretoria": "Africa/Johannesburg",
    "wellington": "Pacific/Auckland",
    "istanbul": "Europe/Istanbul",
    "ankara": "Europe/Istanbul",
    "nicosia": "Asia/Nicosia",
    "easter island": "Pacific/Easter",
    "christmas island": "Indian/Christmas",
    "wake island": "Pacific/Wake",
    "midway islands": "Pacific/Midway",
    "canary islands": "Atlantic/Canary",
    # countries and regions
    "uk": "Europe/London",
    "united kingdom": "Europe/London",
    "britain": "Europe/London",
    "great britain": "Europe/London",
    "england": "Europe/London",
    "scotland": "Europe/London",
    "wales": "Europe/London",
    "ireland": "Europe/Dublin",
    "france": "Europe/Paris",
    "germany": "Europe/Berlin",
    "spain": "Europe/Madrid",
    "italy": "Europe/Rome",
    "netherlands": "Europe/Amsterdam",
    "holland": "Europe/Amsterdam",
    "belgium": "Europe/Brussels",
    "switzerland": "Europe/Zurich",
    "austria": "Europe/Vienna",
    "sweden": "Europe/Stockholm",
    "norway": "Europe/Oslo",
    "denmark": "Europe/Copenhagen",
    "finland": "Europe/Helsinki",
    "iceland": "Atlantic/Reykjavik",
    "poland": "Europe/Warsaw",
    "czechia": "Europe/Prague",
    "czech republic": "Europe/Prague",
    "hungary": "Europe/Budapest",
    "romania": "Europe/Bucharest",
    "greece": "Europe/Athens",
    "portugal": "Europe/Lisbon",
    "ukraine": "Europe/Kyiv",
    "russia": "Europe/Moscow",
    "turkey": "Europe/Istanbul",
    "turkiye": "Europe/Istanbul",
    "israel": "Asia/Jerusalem",
    "egypt": "Africa/Cairo",
    "nigeria": "Africa/Lagos",
    "kenya": "Africa/Nairobi",
    "ethiopia": "Africa/Addis_Ababa",
    "morocco": "Africa/Casablanca",
    "south africa": "Africa/Johannesburg",
    "uae": "Asia/Dubai",
    "united arab emirates": "Asia/Dubai",
    "saudi arabia": "Asia/Riyadh",
    "iran": "Asia/Tehran",
    "iraq": "Asia/Baghdad",
    "pakistan": "Asia/Karachi",
    "india": "Asia/Kolkata",
    "bangladesh": "Asia/Dhaka",
    "nepal": "Asia/Kathmandu",
    "sri lanka": "Asia/Colombo",
    "china": "Asia/Shanghai",
    "taiwan": "Asia/Taipei",
    "japan": "Asia/Tokyo",
    "korea": "Asia/Seoul",
    "south korea": "Asia/Seoul",
    "north korea": "Asia/Pyongyang",
    "thailand": "Asia/Bangkok",
    "vietnam": "Asia/Ho_Chi_Minh",
    "malaysia": "Asia/Kuala_Lumpur",
    "indonesia": "Asia/Jakarta",
    "philippines": "Asia/Manila",
    "australia": "Australia/Sydney",
    "new zealand": "Pacific/Auckland",
    "usa": "America/New_York",
    "united states": "America/New_York",
    "canada": "America/Toronto",
    "mexico": "America/Mexico_City",
    "brazil": "America/Sao_Paulo",
    "argentina": "America/Argentina/Buenos_Aires",
    "chile": "America/Santiago",
    "colombia": "America/Bogota",
    "peru": "America/Lima",
    "venezuela": "America/Caracas",
    "cuba": "America/Havana",
    "dominican republic": "America/Santo_Domingo",
    "california": "America/Los_Angeles",
    "texas": "America/Chicago",
    "florida": "America/New_York",
    "new jersey": "America/New_York",
    "arizona": "America/Phoenix",
    "colorado": "America/Denver",
    "hawaii": "Pacific/Honolulu",
    "washington state": "America/Los_Angeles",
    "oregon": "America/Los_Angeles",
    "nevada": "America/Los_Angeles",
    "utah": "America/Denver",
    "illinois": "America/Chicago",
    "minnesota": "America/Chicago",
    "indiana": "America/Indiana/Indianapolis",
    "michigan": "America/Detroit",
    "ohio": "America/New_York",
    "pennsylvania": "America/New_York",
    "massachusetts": "America/New_York",
    "virginia": "America/New_York",
    "alaska": "America/Anchorage",
}
# Short aliases that are also ordinary words ("LA" vs "la la land") match only in
# capitals, as written.
_CAPITALS_ONLY: Final[Mapping[str, str]] = {"LA": "America/Los_Angeles", "US": "America/New_York"}
# Aliases we print in capitals rather than title case.
_UPPER_LABELS: Final = frozenset(
    {"utc", "gmt", "pst", "pdt", "mst", "mdt", "cst", "cdt", "est", "edt", "akst", "hst"}
    | {"bst", "cet", "cest", "eet", "eest", "msk", "ist", "pkt", "sgt", "hkt", "jst", "kst"}
    | {"aest", "aedt", "acst", "awst", "nzst", "nzdt"}
    | {"sf", "nyc", "ny", "dc", "uk", "uae", "usa", "la", "us"}
)

_MONTHS: Final = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
# Our own names, not strftime's %A/%B, which follow the process locale.
_WEEKDAYS: Final = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTH_NUMBERS: Final[Mapping[str, int]] = {
    **{name.lower(): number for number, name in enumerate(_MONTHS, 1)},
    **{name[:3].lower(): number for number, name in enumerate(_MONTHS, 1)},
    "sept": 9,
}
_MONTH_RE: Final = "|".join(sorted(_MONTH_NUMBERS, key=len, reverse=True))
_ISO_DATE: Final = re.compile(r"\b(\d{4})-(\d{1,2})-(\d{1,2})\b")
_DAY_MONTH_YEAR: Final = re.compile(
    rf"\b(\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?({_MONTH_RE})\.?,?\s+(\d{{4}})\b", re.IGNORECASE
)
_MONTH_DAY_YEAR: Final = re.compile(
    rf"\b({_MONTH_RE})\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?,?\s+(\d{{4}})\b", re.IGNORECASE
)
_FULL_ZONE: Final = re.compile(r"\b[A-Za-z]+(?:/[A-Za-z0-9_+\-]+)+")
_WORD: Final = re.compile(r"[^\W_][\w'\u2019]*")  # \u2019: typographic apostrophe
_MAX_PHRASE_WORDS: Final = 4
_MAX_INSTRUCTION_LENGTH: Final = 10_000

# "in Tokyo and London": the places a question names, checked for unknown ones.
_PLACE_PHRASE: Final = re.compile(
    # "." may be part of a name ("St. Petersburg"), so it does not end the phrase.
    r"\b(?:in|at|for|between)\s+([^?!;]+)",
    re.IGNORECASE,
)
# A separator's leading blanks are taken from the start of their run only ((?<!\s)), so a
# long run of blanks is scanned once, not once per blank (quadratic).
_PHRASE_SEPARATORS: Final = re.compile(
    r"(?:(?<!\s)\s+)?(?:,|&|\band\b|\bor\b|\bvs\.?|\bversus\b)\s*", re.I
)
_FILLER: Final = frozenset(
    {"the", "right", "now", "today", "currently", "please", "at", "moment", "city", "of", "local"}
)
# Words that show a phrase is part of the question, not a place ("... in the time of ...").
_QUESTION_WORDS: Final = frozenset(
    {"time", "date", "day", "what", "is", "it", "hours", "hour", "minutes", "week", "zone"}
    | {"difference", "offset", "timezone", "morning", "evening", "utc", "summer", "winter"}
)
_TIME_WORDS: Final = frozenset(
    {"time", "date", "day", "today", "now", "clock", "o'clock", "hour", "hours", "weekday"}
    | {"tomorrow", "yesterday", "week", "month", "year", "current", "timezone", "zone", "utc"}
)
_EXAMPLES: Final = "'Tokyo', 'New York', 'India', 'PST' or 'Europe/London'"


@dataclass(frozen=True, slots=True)
class _Place:
    """A place found in the text: how we name it and its IANA zone."""

    label: str
    zone: str


def _normalize(text: str) -> str:
    """Lower case without accents ('São Paulo' -> 'sao paulo'), one space between words."""
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(
        stripped.replace("\u2019", "'").lower().replace("_", " ").replace("-", " ").split()
    )


@functools.cache
def _zone_names() -> Mapping[str, str]:
    """Lower-case full zone name -> zone ('europe/london' -> 'Europe/London')."""
    return {zone.lower(): zone for zone in zoneinfo.available_timezones()}


@functools.cache
def _place_index() -> Mapping[str, str]:
    """Normalized place name -> IANA zone, from zone names and the alias table."""
    index: dict[str, str] = {}
    for zone in sorted(zoneinfo.available_timezones()):
        parts = zone.split("/")
        if len(parts) < 2 or parts[0] not in _AREAS:
            continue
        key = _normalize(parts[-1])
        # Sorted order keeps America/Argentina/Cordoba over the legacy America/Cordoba.
        if key not in _NOT_PLACES:
            index.setdefault(key, zone)
    index.update(_ALIASES)
    return index


def _label(key: str, zone: str) -> str:
    """How we name a matched place: 'PST', 'UK', 'San Francisco', 'Port-au-Prince'."""
    if key in _UPPER_LABELS:
        return key.upper()
    if key in _ALIASES:
        return key.title()
    return zone.rsplit("/", 1)[-1].replace("_", " ")  # the zone's own spelling


def _find(text: str) -> list[_Place]:
    """Places in ``text`` in order of appearance (longest name wins: 'new york' not 'york')."""
    found: list[tuple[int, _Place]] = []
    zones = _zone_names()
    # Full IANA names first ("Europe/London"); blank them out for the word scan.
    for match in _FULL_ZONE.finditer(text):
        zone = zones.get(match[0].lower())
        if zone is not None:
            found.append((match.start(), _Place(zone, zone)))
            text = text[: match.start()] + " " * len(match[0]) + text[match.end() :]
    index = _place_index()
    words = [(m.start(), m[0]) for m in _WORD.finditer(text)]
    normalized = [_normalize(word).removesuffix("'s").strip("'") for _, word in words]
    position = 0
    while position < len(words):
        for size in range(min(_MAX_PHRASE_WORDS, len(words) - position), 0, -1):
            key = " ".join(normalized[position : position + size])
            zone = index.get(key)
            if zone is None and size == 1:
                zone = _CAPITALS_ONLY.get(words[position][1])
            if zone is not None:
                found.append((words[position][0], _Place(_label(key, zone), zone)))
                position += size
                break
        else:
            position += 1
    found.sort(key=lambda item: item[0])
    # One answer per zone: "New York and NYC" is one place.
    places: list[_Place] = []
    for _, place in found:
        if all(place.zone != seen.zone for seen in places):
            places.append(place)
    return places


def find_places(text: str) -> list[str]:
    """The IANA zones of the places named in ``text``, in order of appearance, no repeats."""
    zones: list[str] = []
    for place in _find(text):
        if place.zone not in zones:
            zones.append(place.zone)
    return zones


def _check_unknown_places(text: str) -> None:
    """Raise for a place-like phrase we cannot resolve ('what time is it in Atlantis')."""
    match = _PLACE_PHRASE.search(text)
    if match is None:
        return
    for part in _PHRASE_SEPARATORS.split(match[1]):
        words = [w for w in _normalize(part).split() if w not in _FILLER]
        if not words or len(words) > 3 or _find(part):
            continue
        if any(w in _QUESTION_WORDS or not w.isalpha() for w in words):
            continue
        unknown = " ".join(part.split())
        raise AgentError(
            f'The clock does not know the place "{unknown}"; name a city, country or time '
            f"zone such as {_EXAMPLES}."
        )


def _offset(moment: datetime) -> str:
    """'UTC+09:00', 'UTC-05:00', 'UTC+05:30'."""
    offset = moment.utcoffset() or timedelta(0)
    minutes = int(offset.total_seconds()) // 60
    sign = "+" if minutes >= 0 else "-"
    hours, minutes = divmod(abs(minutes), 60)
    return f"UTC{sign}{hours:02d}:{minutes:02d}"


def _long_date(day: date) -> str:
    return f"{_WEEKDAYS[day.weekday()]}, {day.day} {_MONTHS[day.month - 1]} {day.year}"


def _where(place: _Place) -> str:
    return place.zone if place.label == place.zone else f"{place.label} ({place.zone})"


def _time_sentence(place: _Place, now: datetime, day_shift: int) -> str:
    local = now.astimezone(zoneinfo.ZoneInfo(place.zone))
    if day_shift:
        which = "tomorrow" if day_shift > 0 else "yesterday"
        verb = "will be" if day_shift > 0 else "was"
        shifted = local.date() + timedelta(days=day_shift)
        return f"In {_where(place)} {which} {verb} {_long_date(shifted)}."
    return (
        f"In {_where(place)} it is {local:%H:%M} on {_long_date(local.date())} ({_offset(local)})."
    )


def _duration(delta: timedelta) -> str:
    minutes = abs(int(delta.total_seconds())) // 60
    hours, minutes = divmod(minutes, 60)
    parts = []
    if hours:
        parts.append(f"{hours} hour{'s' if hours != 1 else ''}")
    if minutes:
        parts.append(f"{minutes} minute{'s' if minutes != 1 else ''}")
    return " ".join(parts)


def _described(place: _Place, local: datetime) -> str:
    """'Tokyo (Asia/Tokyo, UTC+09:00)'; 'UTC (UTC+00:00)' when the label is the zone."""
    if place.label == place.zone:
        return f"{place.zone} ({_offset(local)})"
    return f"{place.label} ({place.zone}, {_offset(local)})"


def _difference(places: list[_Place], now: datetime) -> str:
    if not places:
        raise AgentError(
            "To give a time difference the clock needs two places, for example "
            "'time difference between Tokyo and London'."
        )
    if len(places) == 1:
        places = [*places, _Place("UTC", "UTC")]
    first, sentences = places[0], []
    first_local = now.astimezone(zoneinfo.ZoneInfo(first.zone))
    for other in places[1:]:
        other_local = now.astimezone(zoneinfo.ZoneInfo(other.zone))
        delta = (first_local.utcoffset() or timedelta(0)) - (
            other_local.utcoffset() or timedelta(0)
        )
        a, b = _described(first, first_local), _described(other, other_local)
        if not delta:
            sentences.append(f"{a} and {b} have the same time right now.")
        else:
            direction = "ahead of" if delta > timedelta(0) else "behind"
            sentences.append(f"{a} is {_duration(delta)} {direction} {b} right now.")
    return " ".join(sentences)


def _find_date(text: str) -> date | None:
    """An explicit calendar date: 2026-12-25, 25 December 2026 or December 25, 2026."""
    found: tuple[str, int, int, int] | None = None
    if match := _ISO_DATE.search(text):
        found = (match[0], int(match[1]), int(match[2]), int(match[3]))
    elif match := _DAY_MONTH_YEAR.search(text):
        found = (match[0], int(match[3]), _MONTH_NUMBERS[match[2].lower()], int(match[1]))
    elif match := _MONTH_DAY_YEAR.search(text):
        found = (match[0], int(match[3]), _MONTH_NUMBERS[match[1].lower()], int(match[2]))
    if found is None:
        return None
    written, year, month, day = found
    try:
        return date(year, month, day)
    except ValueError:
        raise AgentError(
            f'"{written}" is not a valid calendar date; write dates like 2026-12-25.'
        ) from None


def _weekday_sentence(day: date, today: date) -> str:
    verb = "was" if day < today else "is"
    return f"{day.day} {_MONTHS[day.month - 1]} {day.year} {verb} a {_WEEKDAYS[day.weekday()]}."


def run(
    instruction: str,
    inputs: Mapping[str, Any] | None = None,
    *,
    now: datetime | None = None,
) -> str:
    """Answer a question about the current time or date, time differences or weekdays.

    ``now`` fixes the clock (timezone-aware; a naive value is read as UTC).
    ``inputs`` is accepted for a uniform signature but not used: the question
    names its places. Raises :class:`AgentError` for unknown places, invalid
    dates or an instruction with nothing about time in it.
    """
    del inputs  # places come from the instruction itself
    if len(instruction) > _MAX_INSTRUCTION_LENGTH:
        raise AgentError(
            f"The instruction is too long ({len(instruction)} characters); the clock accepts "
            f"up to {_MAX_INSTRUCTION_LENGTH}."
        )
    now = datetime.now(UTC) if now is None else now
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    places = _find(instruction)
    words = set(_normalize(instruction).split())
    day = _find_date(instruction)
    if day is not None and (not places or words & {"day", "weekday", "week"}):
        return _weekday_sentence(day, now.astimezone(UTC).date())
    _check_unknown_places(instruction)
    if words & {"difference", "ahead", "behind", "offset", "differ"}:
        return _difference(places, now)
    shift = 1 if "tomorrow" in words else -1 if "yesterday" in words else 0
    if places:
        return " ".join(_time_sentence(place, now, shift) for place in places)
    if instruction.strip() and not words & _TIME_WORDS:
        raise AgentError(
            "The clock tells the time and date in a place, the time difference between two "
            "places, or the weekday of a date; ask for example 'what time is it in Tokyo?'."
        )
    utc = _Place("UTC", "UTC")
    if shift:
        return _time_sentence(utc, now, shift)
    local = now.astimezone(UTC)
    return (
        f"In UTC it is {local:%H:%M} on {_long_date(local.date())} "
        "(no place was given, so this is UTC)."
    )
