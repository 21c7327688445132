"""API keys: bearer tokens mapped to user ids, stored hashed, never logged.

Keys come from ``SWITCHBOARD_API_KEYS`` (``user:key,user2:key2``) and/or a
file (``SWITCHBOARD_API_KEYS_FILE``, one ``user:key`` or
``user:sha256:<hex digest of the key>`` per line, ``#`` comments). Only the
SHA-256 digest of each key is kept in memory; a presented key is hashed and
looked up, so nothing about a stored key leaks through timing. User ids must
be subject-safe tokens (they end up in correlation ids and subjects): an
unsafe one is a configuration error, never silently rewritten (two users
could otherwise collapse into one), and so is one key given to two users. A
user may have several keys (rotation).

With neither setting the BFF runs in *local mode*: every caller is the user
``local``, and it refuses to listen anywhere but loopback. A setting that is
given but holds no key (an empty keys file, one of comments only) is a
configuration error, never a silent fall back to no authentication.
"""

from __future__ import annotations

import collections
import hashlib
import time
from pathlib import Path

from switchboard.orchestrator import (
    ConfigurationError,
    OverloadedError,
    OverloadScope,
    Settings,
    UnauthorizedError,
    is_safe_token,
)

__all__ = ["LOCAL_USER", "ApiKeys", "AuthRateLimiter"]

LOCAL_USER = "local"


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


class ApiKeys:
    """Maps the SHA-256 of each API key to its user id."""

    def __init__(self, digests: dict[bytes, str]) -> None:
        self._digests = digests

    @property
    def enabled(self) -> bool:
        return bool(self._digests)

    @property
    def users(self) -> set[str]:
        return set(self._digests.values())

    @classmethod
    def from_settings(cls, settings: Settings) -> ApiKeys:
        """Read the keys the settings name.

        Raises:
            ConfigurationError: a malformed entry, an unsafe user id, one key given to
                two users (names the lines, never the key), a keys file that cannot be
                read or is not UTF-8 text, or keys asked for (``SWITCHBOARD_API_KEYS`` or
                ``SWITCHBOARD_API_KEYS_FILE`` set) but none given: that would silently
                mean no authentication at all.
        """
        digests: dict[bytes, str] = {}
        origins: dict[bytes, str] = {}
        entries: list[tuple[str, str]] = []
        if settings.api_keys:
            given = [
                (f"SWITCHBOARD_API_KEYS entry {i + 1}", e.strip())
                for i, e in enumerate(settings.api_keys.split(","))
                if e.strip()
            ]
            if not given:
                raise ConfigurationError(
                    "SWITCHBOARD_API_KEYS holds no API key: give 'user:key' pairs, "
                    "comma-separated, or leave it empty for local mode."
                )
            entries += given
        if settings.api_keys_file:
            path = Path(settings.api_keys_file)
            try:
                # utf-8-sig: a byte-order mark some editors write is not part of a user id
                lines = path.read_text(encoding="utf-8-sig").splitlines()
            except UnicodeDecodeError:
                raise ConfigurationError(
                    f"The API keys file {path} is not UTF-8 text: write one 'user:key' or "
                    "'user:sha256:<hex>' a line."
                ) from None  # the error quotes bytes of the file: keep them out of logs
            except OSError as exc:
                raise ConfigurationError(f"Cannot read the API keys file {path}: {exc}.") from exc
            given = [
                (f"{path} line {n}", line.strip())
                for n, line in enumerate(lines, 1)
                if line.strip() and not line.strip().startswith("#")
            ]
            if not given:
                raise ConfigurationError(
                    f"The API keys file {path} holds no API key (only blank lines or "
                    "comments): add one 'user:key' or 'user:sha256:<hex>' a line, or unset "
                    "SWITCHBOARD_API_KEYS_FILE for local mode (no authentication)."
                )
            entries += given
        for where, entry in entries:
            user, sep, key = entry.partition(":")
            if not sep or not user or not key:
                raise ConfigurationError(f"{where} is not 'user:key'.")
            if not is_safe_token(user) or len(user) > 64:
                raise ConfigurationError(
                    f"{where}: user id {user[:64]!r} is not valid: use 1-64 letters, digits, "
                    "'_' or '-' (no '.', '*', '>' or spaces)."
                )
            if key.startswith("sha256:"):
                try:
                    digest = bytes.fromhex(key[7:])
                except ValueError:
                    digest = b""
                if len(digest) != 32:
                    raise ConfigurationError(f"{where}: the sha256 digest is not 64 hex digits.")
            else:
                if len(key) < 16:
                    raise ConfigurationError(f"{where}: the key is shorter than 16 characters.")
                digest = _digest(key)
            if digest in digests and digests[digest] != user:
                raise ConfigurationError(
                    f"{origins[digest]} and {where} give the same key to two users "
                    f"({digests[digest]!r} and {user!r}): a key must name one user."
                )
            digests[digest] = user
            origins.setdefault(digest, where)
        return cls(digests)

    def authenticate(self, authorization: str | None) -> str:
        """The user id for an ``Authorization: Bearer <key>`` header.

        Raises:
            UnauthorizedError: missing, malformed or unknown key.
        """
        if not self.enabled:
            return LOCAL_USER
        if not authorization:
            raise UnauthorizedError("An API key is required: send 'Authorization: Bearer <key>'.")
        scheme, _, key = authorization.partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise UnauthorizedError("Use 'Authorization: Bearer <key>'.")
        user = self._digests.get(_digest(key.strip()))
        if user is None:
            raise UnauthorizedError("The API key is not valid.")
        return user

    def __repr__(self) -> str:  # never the keys
        return f"<ApiKeys users={len(self.users)}>"


class AuthRateLimiter:
    """Limits failed authentications per client address (brute force of keys).

    At most ``max_failures`` failures per ``window`` seconds per address;
    remembers at most ``max_clients`` addresses (oldest forgotten first).
    """

    def __init__(
        self, *, max_failures: int = 20, window: float = 60.0, max_clients: int = 10_000
    ) -> None:
        self.max_failures = max_failures
        self.window = window
        self.max_clients = max_clients
        self._failures: collections.OrderedDict[str, list[float]] = collections.OrderedDict()

    def blocked(self, client: str) -> float:
        """Seconds until ``client`` may try again (0: not blocked)."""
        times = self._recent(client)
        if len(times) < self.max_failures:
            return 0.0
        return max(0.0, times[0] + self.window - time.monotonic())

    def check(self, client: str) -> None:
        """Refuse ``client`` while it is blocked.

        Raises:
            OverloadedError: too many failures from ``client`` (scope ``CLIENT``,
                ``retry_after`` the seconds until it may try again).
        """
        wait = self.blocked(client)
        if wait > 0:
            raise OverloadedError(
                "Too many failed authentications from this address; wait and retry.",
                scope=OverloadScope.CLIENT,
                retry_after=wait,
            )

    def failed(self, client: str) -> None:
        """Count one failed authentication from ``client``."""
        times = self._recent(client)
        times.append(time.monotonic())
        self._failures[client] = times[-self.max_failures :]
        self._failures.move_to_end(client)
        while len(self._failures) > self.max_clients:
            self._failures.popitem(last=False)

    def _recent(self, client: str) -> list[float]:
        cutoff = time.monotonic() - self.window
        return [t for t in self._failures.get(client, []) if t > cutoff]
