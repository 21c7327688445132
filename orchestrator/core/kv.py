"""JetStream key-value access: the one module that knows nats-py's JetStream errors."""

from __future__ import annotations

import math

import nats.errors
import nats.js.api
import nats.js.errors
import structlog
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from nats.js.kv import KeyValue

from .errors import ConfigurationError, RequestError, RequestTimeoutError

__all__ = ["KVBucket", "Revision"]

log = structlog.get_logger("switchboard.kv")

Revision = int


class KVBucket:
    """A JetStream KV bucket with compare-and-set, errors translated."""

    def __init__(
        self,
        nc: NATS,
        name: str,
        *,
        ttl: float | None = None,
        max_value_size: int = 1024 * 1024,
        replicas: int = 1,
        description: str = "Switchboard conversation history",
    ) -> None:
        self._nc = nc
        self.description = description
        self.name = name
        self.ttl = ttl
        self.replicas = replicas
        self.max_value_size = max_value_size
        self._kv: KeyValue | None = None

    async def open(self) -> None:
        """Bind to the bucket, creating it if it does not exist yet."""
        js = self._nc.jetstream()
        try:
            self._kv = await js.key_value(self.name)
        except nats.js.errors.BucketNotFoundError:
            await self._create(js)
        except (nats.errors.Error, nats.js.errors.Error) as exc:
            raise RequestError(
                f"The JetStream KV bucket {self.name} is not available: {_reason(exc)}."
            ) from exc

    async def _create(self, js: JetStreamContext) -> None:
        try:
            self._kv = await js.create_key_value(
                bucket=self.name,
                history=1,
                ttl=self.ttl,
                max_value_size=self.max_value_size,
                replicas=self.replicas,
                description=self.description,
            )
        except nats.js.errors.APIError as exc:  # the server refused this bucket
            raise ConfigurationError(
                f"Cannot create the JetStream KV bucket {self.name} with {self.replicas} "
                f"replica(s): {_reason(exc)} (SWITCHBOARD_HISTORY_REPLICAS: at most the "
                "number of JetStream servers)."
            ) from exc
        except (nats.errors.Error, nats.js.errors.Error) as exc:
            raise RequestError(
                f"The JetStream KV bucket {self.name} is not available: {_reason(exc)}."
            ) from exc

    @property
    def _bucket(self) -> KeyValue:
        if self._kv is None:
            raise RequestError(f"The KV bucket {self.name} is not open.")
        return self._kv

    async def get(self, key: str) -> tuple[bytes, Revision] | None:
        """The value and its revision, or None when the key does not exist."""
        try:
            entry = await self._bucket.get(key)
        except (nats.js.errors.KeyNotFoundError, nats.js.errors.KeyDeletedError):
            return None
        except nats.errors.TimeoutError as exc:
            raise RequestTimeoutError(f"Reading {key} from {self.name} timed out.") from exc
        except (nats.errors.Error, nats.js.errors.Error) as exc:
            raise RequestError(f"Reading {key} from {self.name} failed: {exc}.") from exc
        return entry.value or b"", entry.revision or 0

    async def put_if(self, key: str, value: bytes, revision: Revision | None) -> bool:
        """Write ``value`` if the key is still at ``revision`` (None: does not exist yet).

        Returns False when someone else wrote first (read again and retry), and
        when the bucket was gone: deleted, or lost with the server's store. It is
        then created again, empty, so the retry's read finds nothing and its
        write lands (the bucket does not stay lost until a restart).
        """
        try:
            if revision is None:
                await self._bucket.create(key, value)
            else:
                await self._bucket.update(key, value, last=revision)
        except nats.js.errors.KeyWrongLastSequenceError:
            return False
        except nats.js.errors.NoStreamResponseError:  # no stream took the write
            log.warning("KV bucket was gone: creating it again", bucket=self.name)
            await self._create(self._nc.jetstream())
            return False
        except nats.js.errors.APIError as exc:
            if "wrong last sequence" in str(exc).lower() or "key exists" in str(exc).lower():
                return False
            raise RequestError(f"Writing {key} to {self.name} failed: {exc}.") from exc
        except (nats.errors.Error, nats.js.errors.Error) as exc:
            raise RequestError(f"Writing {key} to {self.name} failed: {exc}.") from exc
        return True

    async def create(
        self, key: str, value: bytes, *, ttl: float | None = None, again: bool = True
    ) -> Revision | None:
        """Write ``value`` if ``key`` does not exist (a claim); its revision, or None if taken.

        ``ttl``: the entry's own lifetime in seconds (whole seconds, at least 1; JetStream's
        per-message TTL), shorter than the bucket's. A bucket that is gone is created again,
        and the write tried once more.

        Raises:
            RequestError: the bucket refused the write.
        """
        try:
            msg_ttl = None if ttl is None else max(1, math.ceil(ttl))
            return int(await self._bucket.create(key, value, msg_ttl=msg_ttl))
        except nats.js.errors.KeyWrongLastSequenceError:
            return None
        except nats.js.errors.NoStreamResponseError as exc:
            if not again:
                raise RequestError(f"Writing {key} to {self.name} failed: no stream.") from exc
            log.warning("KV bucket was gone: creating it again", bucket=self.name)
            await self._create(self._nc.jetstream())
            return await self.create(key, value, ttl=ttl, again=False)
        except nats.js.errors.APIError as exc:
            if "wrong last sequence" in str(exc).lower() or "key exists" in str(exc).lower():
                return None
            raise RequestError(f"Writing {key} to {self.name} failed: {exc}.") from exc
        except (nats.errors.Error, nats.js.errors.Error) as exc:
            raise RequestError(f"Writing {key} to {self.name} failed: {exc}.") from exc

    async def swap(
        self, key: str, value: bytes, revision: Revision, *, ttl: float | None = None
    ) -> Revision | None:
        """Write ``value`` if ``key`` is still at ``revision`` (compare-and-set), with an
        optional TTL of its own (see :meth:`create`); the new revision, or None when someone
        else wrote (or deleted) it first.

        Raises:
            RequestError: the bucket refused the write.
        """
        headers = {nats.js.api.Header.EXPECTED_LAST_SUBJECT_SEQUENCE.value: str(revision)}
        msg_ttl = None if ttl is None else max(1, math.ceil(ttl))
        try:
            ack = await self._nc.jetstream().publish(
                f"$KV.{self.name}.{key}", value, headers=headers, msg_ttl=msg_ttl
            )
        except nats.js.errors.APIError as exc:
            if exc.err_code in _WRONG_LAST_SEQUENCE:
                return None
            raise RequestError(f"Writing {key} to {self.name} failed: {exc}.") from exc
        except (nats.errors.Error, nats.js.errors.Error) as exc:
            raise RequestError(f"Writing {key} to {self.name} failed: {exc}.") from exc
        return int(ack.seq)

    async def delete(self, key: str, revision: Revision | None = None) -> bool:
        """Delete ``key`` (a missing key is no error); with ``revision``, only if it is still
        at that revision. Returns False when it was not (someone else wrote it since).

        Raises:
            RequestError: the bucket refused the delete.
        """
        try:
            await self._bucket.delete(key, last=revision)
        except nats.js.errors.APIError as exc:
            if exc.err_code in _WRONG_LAST_SEQUENCE:
                return False
            raise RequestError(f"Deleting {key} from {self.name} failed: {exc}.") from exc
        except (nats.errors.Error, nats.js.errors.Error) as exc:
            raise RequestError(f"Deleting {key} from {self.name} failed: {exc}.") from exc
        return True


#: JetStream's error codes for "the subject's last sequence is not the one expected".
_WRONG_LAST_SEQUENCE = frozenset({10071, 10164})


def _reason(exc: Exception) -> str:
    """The server's own words when it gave some (a JetStream API error), else the type."""
    description = getattr(exc, "description", None)
    return f"{type(exc).__name__} ({description})" if description else type(exc).__name__
