"""One run per conversation request across orchestrator replicas: a JetStream KV claim.

The endpoint's replay window (``core/replay.py``) stops a retry from running a
conversation twice on one replica. A retry that a queue group hands to
*another* replica is stopped here, through the one thing replicas share:
NATS. The first replica to see a request id creates its key in a KV bucket
(a create is compare-and-set on "no such key": exactly one replica wins the
claim), runs the conversation, and creates ``<key>.done`` with the final
reply. A replica that loses the claim runs nothing: it polls until the reply
is there and answers with it (replayed), or, if the claimer stops without
one (it died, or was stopped: its claim is never answered), answers a clear
``timeout`` error at the request's work deadline.

* Cost: one KV create per conversation that carries a request id, and one
  write of its reply; requests without an id (``nats req`` by hand) cost
  nothing.
* Lifetime: each entry lives the request's time left plus the reply margin
  (a per-message TTL), so every retry of a request, which is sent within its
  budget, finds its claim and its reply, and nothing is kept longer; the
  bucket's TTL (:data:`CLAIM_TTL`, the longest budget a conversation may have)
  is only a backstop. JetStream's 2-minute duplicate window plays no part: a
  create checks the key's last revision, not message ids.
* A claimer whose conversation was cancelled, or that failed with an
  unexpected error, deletes its claim: the work did not complete, and a retry
  may run it again. Errors from the vocabulary (bad_request ...) are answers,
  stored and replayed like any reply.
* JetStream unavailable: the claim is skipped (logged) and the conversation
  runs, as before this existed -- memory and dedup are worth a little, never
  the answer.
"""

from __future__ import annotations

import asyncio
import hashlib

import msgspec
import structlog
from nats.aio.client import Client as NATS

from .core.codec import encode
from .core.deadline import REPLY_MARGIN, work_deadline
from .core.endpoint import ErrorBody, Handler, Request
from .core.envelopes import ErrorInfo
from .core.errors import RequestError, RequestTimeoutError, SwitchboardError
from .core.kv import KVBucket
from .core.replay import replay_key
from .core.tasks import uninterrupted
from .metrics import CLAIMS

__all__ = ["CLAIM_TTL", "RequestClaims"]

log = structlog.get_logger("switchboard.claims")

#: How long a claim (and the reply stored with it) lives: the longest budget a
#: conversation may ask for (``timeout_s``), plus the reply margin twice.
CLAIM_TTL = 3600.0 + 2 * REPLY_MARGIN  # 3600: the bound of envelopes.Timeout

#: Polling of a claim held by another replica: first and longest pause (seconds).
_POLL_FIRST = 0.05
_POLL_MAX = 1.0


class _Done(msgspec.Struct, kw_only=True, omit_defaults=True):
    """The final reply of a claimed request, under ``<key>.done``."""

    reply: msgspec.Raw
    error: str | None = None
    message: str = ""


#: The claim's own value: who holds it is all the key says.
_RUNNING = b"running"
_DONE = ".done"
_decode_done = msgspec.json.Decoder(_Done).decode


class RequestClaims:
    """Claims request ids in a JetStream KV bucket so one replica runs each request.

    Use :meth:`middleware` as the innermost layer of the converse endpoint;
    ``error_body`` is that endpoint's, so an error answer replayed elsewhere has the
    same body as the one its first attempt got.
    """

    def __init__(
        self,
        nc: NATS,
        *,
        bucket: str,
        error_body: ErrorBody,
        replicas: int = 1,
        max_value_size: int = 1024 * 1024 + 4096,
        ttl: float = CLAIM_TTL,
    ) -> None:
        self._kv = KVBucket(
            nc,
            bucket,
            ttl=ttl,
            max_value_size=max_value_size,
            replicas=replicas,
            description="Switchboard request claims: one run per request id",
        )
        self._open = False
        self._error_body = error_body

    async def start(self) -> None:
        """Open (or create) the bucket; without it, requests run unclaimed (logged)."""
        await self._ensure_open()

    async def stop(self, grace: float = 0.0) -> None:
        return None

    async def _ensure_open(self) -> bool:
        if not self._open:
            try:
                await self._kv.open()
            except SwitchboardError as exc:
                log.warning("request claims unavailable; retries may run twice", error=str(exc))
                return False
            self._open = True
        return True

    @staticmethod
    def key(correlation_id: str, request_id: str, payload: bytes) -> str:
        """The KV key of one request: a digest of its ids and its payload.

        Ids may hold characters KV keys may not; and an id reused for another request
        (another payload) names another key, so it never gets that other one's answer.
        """
        digest = hashlib.sha256(f"{correlation_id}\0{request_id}\0".encode())
        digest.update(payload)
        return digest.hexdigest()

    def middleware(self, inner: Handler) -> Handler:
        """A layer that runs ``inner`` only on the replica that claims the request's id."""

        async def claimed(request: Request) -> bytes:
            key = replay_key(request.headers)
            if key is None or not await self._ensure_open():
                return await inner(request)
            return await self.run(request, inner, self.key(*key, request.data))

        return claimed

    async def run(self, request: Request, inner: Handler, key: str) -> bytes:
        """Run ``inner`` if this replica wins the claim of ``key``; else wait for the reply.

        Raises:
            RequestTimeoutError: another replica holds the claim and gave no reply by the
                request's work deadline.
        """
        # Kept while any attempt of the request may still be waiting for it.
        ttl = request.deadline.remaining() + REPLY_MARGIN
        deadline = work_deadline(request.deadline)
        delay = _POLL_FIRST
        while True:
            try:
                claimed = await self._kv.create(key, _RUNNING, ttl=ttl) is not None
                found = None if claimed else await self._kv.get(key + _DONE)
            except SwitchboardError as exc:
                log.warning("request claim failed; running unclaimed", error=str(exc))
                return await inner(request)
            if claimed:
                CLAIMS.labels("claimed").inc()
                return await self._run_claimed(request, inner, key, ttl)
            done = None if found is None else _decode(found[0])
            if done is not None:
                CLAIMS.labels("replayed").inc()
                log.info("conversation answered by another replica: replayed")
                if done.error is not None:
                    request.error = ErrorInfo(done.error, done.message)
                return bytes(done.reply)
            # Running elsewhere (if its claimer lets it go, the next create claims it).
            if deadline.remaining() <= delay:
                CLAIMS.labels("orphaned").inc()
                raise RequestTimeoutError(
                    f"Request {request.correlation_id} is being answered by another "
                    "orchestrator replica, which gave no answer before the deadline (it may "
                    "have stopped); it was not run twice.",
                    subject=request.subject,
                    correlation_id=request.correlation_id,
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, _POLL_MAX)

    async def _run_claimed(self, request: Request, inner: Handler, key: str, ttl: float) -> bytes:
        try:
            data = await inner(request)
        except SwitchboardError as exc:  # an answer (bad_request ...): kept for the retries
            info = ErrorInfo(exc.code.value, str(exc))  # what the endpoint's error layer sends
            await self._store(key, ttl, self._error_body(request, info), info)
            raise
        except BaseException:
            # Not completed (cancelled, crashed): a retry may run it again.
            await uninterrupted(self._release(key))
            raise
        await self._store(key, ttl, data, None)
        return data

    async def _store(self, key: str, ttl: float, data: bytes, error: ErrorInfo | None) -> None:
        done = _Done(reply=msgspec.Raw(data))
        if error is not None:
            done.error, done.message = error.code, error.message
        try:
            stored = await self._kv.create(key + _DONE, encode(done), ttl=ttl) is not None
        except RequestError as exc:
            stored = False
            log.warning("reply not stored with its claim", error=str(exc))
        if not stored:  # too large, or the bucket failed: free the claim rather than hold it
            await self._release(key)

    async def _release(self, key: str) -> None:
        try:
            await self._kv.delete(key)
        except RequestError as exc:
            log.warning("claim not released; retries wait for the deadline", error=str(exc))


def _decode(value: bytes) -> _Done | None:
    try:
        return _decode_done(value)
    except msgspec.DecodeError:
        log.warning("unreadable request claim ignored")
        return None
