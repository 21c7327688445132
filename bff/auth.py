"""API keys: bearer tokens mapped to user ids, stored hashed, never logged.

Keys come from ``SWITCHBOARD_API_KEYS`` (``user:key,user2:key2``) and/or a
file (``SWITCHBOARD_API_KEYS_FILE``, one ``user:key`` or
``user:sha256:<hex digest of the key>`` per line, ``#`` comments). Only the
SHA-256 digest of each key is kept in memory; a presented key is hashed and
looked up, so nothing about a stored key leaks through timing. User ids must
be subject-safe tokens (they end up in correlation ids and subjects): an
unsafe one is a configuration error, never silently rewritten (two users
could otherwise collapse into one).

With no keys at all the BFF runs in *local mode*: every caller is the user
``local``, and it refuses to listen anywhere but loopback.
"""

from __future__ import annotations

import collections
import hashlib
import time
from pathlib import Path

from orchestrator import ConfigurationError, Settings, is_safe_token

__all__ = ["LOCAL_USER", "ApiKeys", "AuthRateLimiter", "Unauthorized"]

LOCAL_USER = "local"


class Unauthorized(Exception):
    """No valid credential was presented (the BFF answers 401)."""


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
            ConfigurationError: a malformed entry or an unsafe user id (names the line,
                never the key).
        """
        digests: dict[bytes, str] = {}
        entries: list[tuple[str, str]] = []
        if settings.api_keys:
            entries += [
                (f"SWITCHBOARD_API_KEYS entry {i + 1}", e.strip())
                for i, e in enumerate(settings.api_keys.split(","))
                if e.strip()
            ]
        if settings.api_keys_file:
            path = Path(settings.api_keys_file)
            try:
                lines = path.read_text().splitlines()
            except OSError as exc:
                raise ConfigurationError(f"Cannot read the API keys file {path}: {exc}.") from exc
            entries += [
                (f"{path} line {n}", line.strip())
                for n, line in enumerate(lines, 1)
                if line.strip() and not line.strip().startswith("#")
            ]
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
            digests[digest] = user
        return cls(digests)

    def authenticate(self, authorization: str | None) -> str:
        """The user id for an ``Authorization: Bearer <key>`` header.

        Raises:
            Unauthorized: missing, malformed or unknown key.
        """
        if not self.enabled:
            return LOCAL_USER
        if not authorization:
            raise Unauthorized("An API key is required: send 'Authorization: Bearer <key>'.")
        scheme, _, key = authorization.partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise Unauthorized("Use 'Authorization: Bearer <key>'.")
        user = self._digests.get(_digest(key.strip()))
        if user is None:
            raise Unauthorized("The API key is not valid.")
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

    def failed(self, client: str) -> None:
        times = self._recent(client)
        times.append(time.monotonic())
        self._failures[client] = times[-self.max_failures :]
        self._failures.move_to_end(client)
        while len(self._failures) > self.max_clients:
            self._failures.popitem(last=False)

    def _recent(self, client: str) -> list[float]:
        cutoff = time.monotonic() - self.window
        return [t for t in self._failures.get(client, []) if t > cutoff]
