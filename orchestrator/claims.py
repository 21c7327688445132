"""One run per conversation request across orchestrator replicas: a JetStream KV lease.

The endpoint's replay window (``core/replay.py``) stops a retry from running a
conversation twice on one replica. A retry that a queue group hands to
*another* replica is stopped here, through the one thing replicas share:
NATS. The first replica to see a request id creates its key in a KV bucket
(a create is compare-and-set on "no such key": exactly one replica wins the
claim), runs the conversation, renews the claim every :data:`CLAIM_RENEW`
seconds while it runs (a compare-and-set on the revision it holds), and
finally replaces it with the final reply (compare-and-set again). A replica
that loses the claim runs nothing: it polls the key until the reply is there
and answers with it (replayed).

A claim is a lease, as a task is in Temporal: a claimer that stops renewing
(it died, or froze -- SIGSTOP, a VM stall) loses it. A waiting replica that
sees the same revision for :data:`CLAIM_LAPSE` seconds takes the claim over
(compare-and-set on the stale revision: one replica wins) and runs the
conversation itself. The old claimer, if it wakes, finds its revision gone at
its next write: it stores nothing, so the answer its waiters get is the new
claimer's. A claimer that wakes to find it missed its renewals for as long
as the lapse lets the claim go at once: its run was cut off from its agents
meanwhile, and a waiting replica runs it afresh.

* Cost: one KV create per conversation that carries a request id, one write
  of its reply, and one renewal per :data:`CLAIM_RENEW` seconds of a longer
  conversation; requests without an id (``nats req`` by hand) cost nothing.
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
* No answer by the work deadline (every claimer died): a clear ``timeout``
  error, never a second run past the budget.
* JetStream unavailable or slow: each claim operation has
  :data:`CLAIM_BUDGET`; past it the conversation runs unclaimed (logged), as
  before claims existed, and so do the conversations of the next few seconds
  (one timeout per outage, not one per conversation) -- dedup is worth a
  little time, never the answer. A replica already waiting for another's
  claim keeps waiting through such errors.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time

import msgspec
import structlog
from nats.aio.client import Client as NATS

from .core.codec import encode
from .core.deadline import REPLY_MARGIN, Deadline, work_deadline
from .core.endpoint import ErrorBody, Handler, Request
from .core.envelopes import ErrorInfo
from .core.errors import RequestTimeoutError, SwitchboardError
from .core.kv import KVBucket, Revision
from .core.replay import replay_key
from .core.tasks import uninterrupted
from .metrics import CLAIMS

__all__ = [
    "CLAIM_BUDGET",
    "CLAIM_LAPSE",
    "CLAIM_RENEW",
    "CLAIM_TTL",
    "REPLAY_MAX_BYTES",
    "RequestClaims",
]

log = structlog.get_logger("switchboard.claims")

#: How long a claim (and the reply stored with it) lives: the longest budget a
#: conversation may ask for (``timeout_s``), plus the reply margin twice.
CLAIM_TTL = 3600.0 + 2 * REPLY_MARGIN  # 3600: the bound of envelopes.Timeout

#: Most time one claim operation (create, get, delete) may take, in seconds: a claim is worth
#: a little time, never the answer (as conversation memory is).
CLAIM_BUDGET = 0.5
#: After JetStream failed a claim, conversations run unclaimed this long (seconds).
_BACK_OFF = 5.0

#: A claimer renews its claim this often while it runs (seconds).
CLAIM_RENEW = 1.0
#: A claim not renewed for this long is taken over by a replica waiting for it (seconds).
CLAIM_LAPSE = 3 * CLAIM_RENEW

#: Replies larger than this (bytes) are not stored with their claim (see ``_store``).
REPLAY_MAX_BYTES = 64 * 1024

#: Polling of a claim held by another replica: first and longest pause (seconds).
_POLL_FIRST = 0.05
_POLL_MAX = 0.5


class _Done(msgspec.Struct, kw_only=True, omit_defaults=True):
    """The final reply of a claimed request, in place of its claim."""

    reply: msgspec.Raw
    error: str | None = None
    message: str = ""


#: A claim's value while its request runs (renewals write it again: a new revision).
_RUNNING = b"running"
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
        self._down_until = 0.0

    async def start(self) -> None:
        """Open (or create) the bucket; without it, requests run unclaimed (logged)."""
        await self._ensure_open(None)

    async def stop(self, grace: float = 0.0) -> None:
        return None

    @property
    def available(self) -> bool:
        """False for a while after JetStream failed a claim: requests then run unclaimed."""
        return time.monotonic() >= self._down_until

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
            if key is None:
                return await inner(request)
            if not (self.available and await self._ensure_open(request.deadline)):
                CLAIMS.labels("unclaimed").inc()
                return await inner(request)
            return await self.run(request, inner, self.key(*key, request.data))

        return claimed

    async def run(self, request: Request, inner: Handler, key: str) -> bytes:
        """Run ``inner`` if this replica wins the claim of ``key``; else wait for the reply.

        Raises:
            RequestTimeoutError: another replica holds the claim and gave no reply by the
                request's work deadline.
        """
        deadline = work_deadline(request.deadline)
        delay = _POLL_FIRST
        first = True
        seen: tuple[Revision, float] | None = None  # the claim's revision, and since when
        while True:
            try:
                async with asyncio.timeout(_budget(deadline)):
                    revision = await self._kv.create(key, _RUNNING, ttl=_ttl(request))
                    found = None if revision is not None else await self._kv.get(key)
            except (SwitchboardError, TimeoutError) as exc:
                if first:  # JetStream cannot claim: answer anyway, as before claims existed
                    self._failed("request claim failed; running unclaimed", exc)
                    CLAIMS.labels("unclaimed").inc()
                    return await inner(request)
                # Following another replica's claim: it may still answer; keep waiting.
                revision, found = None, None
            first = False
            if revision is not None:
                CLAIMS.labels("claimed").inc()
                return await self._run_claimed(request, inner, key, revision)
            if found is not None:
                value, revision = found
                if value != _RUNNING:
                    return self._replay(request, value)
                now = time.monotonic()
                if seen is None or seen[0] != revision:
                    seen = (revision, now)
                elif now - seen[1] >= CLAIM_LAPSE:
                    taken = await self._take_over(request, key, revision)
                    if taken is not None:
                        return await self._run_claimed(request, inner, key, taken)
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

    def _replay(self, request: Request, value: bytes) -> bytes:
        done = _decode(value)
        if done is None:
            raise RequestTimeoutError(  # cannot happen: only this module writes claims
                f"Request {request.correlation_id} has an unreadable stored reply.",
                subject=request.subject,
                correlation_id=request.correlation_id,
            )
        CLAIMS.labels("replayed").inc()
        log.info("conversation answered by another replica: replayed")
        if done.error is not None:
            request.error = ErrorInfo(done.error, done.message)
        return bytes(done.reply)

    async def _take_over(self, request: Request, key: str, stale: Revision) -> Revision | None:
        """The claimer stopped renewing: claim it from ``stale`` (one replica wins)."""
        try:
            async with asyncio.timeout(_budget(request.deadline)):
                revision = await self._kv.swap(key, _RUNNING, stale, ttl=_ttl(request))
        except (SwitchboardError, TimeoutError) as exc:
            log.debug("claim not taken over", error=str(exc) or type(exc).__name__)
            return None
        if revision is not None:
            CLAIMS.labels("taken_over").inc()
            log.warning(
                "claim taken over: its replica stopped renewing it (died or froze)",
                lapse=CLAIM_LAPSE,
            )
        return revision

    async def _run_claimed(
        self, request: Request, inner: Handler, key: str, revision: Revision
    ) -> bytes:
        lease = _Lease(revision)
        renewing = asyncio.get_running_loop().create_task(self._renew(request, key, lease))
        try:
            try:
                data = await inner(request)
            finally:
                # Never cancelled mid-write: a nats-py publish cut short can leave what this
                # connection sends next unflushed (the reply itself), and a renewal that lands
                # unseen would fence out our own answer. It ends after its current write.
                lease.done.set()
                await uninterrupted(renewing)
        except SwitchboardError as exc:  # an answer (bad_request ...): kept for the retries
            info = ErrorInfo(exc.code.value, str(exc))  # what the endpoint's error layer sends
            await self._store(request, key, lease, self._error_body(request, info), info)
            raise
        except BaseException:
            # Not completed (cancelled, crashed): a retry may run it again.
            await uninterrupted(self._release(request, key, lease))
            raise
        await self._store(request, key, lease, data, None)
        return data

    async def _renew(self, request: Request, key: str, lease: _Lease) -> None:
        """Write the claim again every CLAIM_RENEW s; stop when another replica took it."""
        while lease.revision is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(CLAIM_RENEW):
                    await lease.done.wait()
            if lease.done.is_set():
                return
            if time.monotonic() - lease.renewed_at >= CLAIM_LAPSE:
                # This replica stalled (froze, or its loop was blocked) as long as another
                # waits before taking the claim over: its run was cut off from its agents
                # meanwhile. Let the claim go, so a waiting replica runs it afresh at once.
                log.warning("claim let go: this replica stalled past the claim's lapse")
                CLAIMS.labels("let_go").inc()
                await self._release(request, key, lease)
                return
            try:
                async with asyncio.timeout(_budget(request.deadline)):
                    lease.revision = await self._kv.swap(
                        key, _RUNNING, lease.revision, ttl=_ttl(request)
                    )
                    lease.renewed_at = time.monotonic()
            except (SwitchboardError, TimeoutError) as exc:  # try again at the next beat
                log.debug("claim not renewed", error=str(exc) or type(exc).__name__)
                continue
            if lease.revision is None:
                log.warning("claim lost: another replica took it over; its answer is stored")

    async def _store(
        self,
        request: Request,
        key: str,
        lease: _Lease,
        data: bytes,
        error: ErrorInfo | None,
    ) -> None:
        if lease.revision is None:
            return  # taken over: the new claimer's answer is the one kept
        if len(data) > REPLAY_MAX_BYTES:
            # Not stored: a large answer would cross NATS twice more (into the bucket and out
            # to a retry) for a retry that rarely comes. A retry on another replica runs it.
            CLAIMS.labels("too_large_to_store").inc()
            await self._release(request, key, lease)
            return
        done = _Done(reply=msgspec.Raw(data))
        if error is not None:
            done.error, done.message = error.code, error.message
        try:
            async with asyncio.timeout(_budget(request.deadline)):
                stored = await self._kv.swap(key, encode(done), lease.revision, ttl=_ttl(request))
        except (SwitchboardError, TimeoutError) as exc:
            self._failed("reply not stored with its claim", exc)
            stored = None
            await self._release(request, key, lease)  # too large, or failed: let it go
        if stored is None:
            lease.revision = None

    async def _release(self, request: Request, key: str, lease: _Lease) -> None:
        if lease.revision is None:
            return
        try:
            async with asyncio.timeout(_budget(request.deadline)):
                await self._kv.delete(key, lease.revision)
        except (SwitchboardError, TimeoutError) as exc:
            self._failed("claim not released; its retries wait for their deadline", exc)
        lease.revision = None

    async def _ensure_open(self, deadline: Deadline | None) -> bool:
        if self._open:
            return True
        try:
            async with asyncio.timeout(None if deadline is None else _budget(deadline)):
                await self._kv.open()
        except (SwitchboardError, TimeoutError) as exc:
            self._failed("request claims unavailable; retries may run twice", exc)
            return False
        self._open = True
        return True

    def _failed(self, what: str, exc: BaseException) -> None:
        """JetStream failed a claim: log it, and run unclaimed for a while (one timeout per
        :data:`_BACK_OFF` seconds of an outage, not one per conversation)."""
        self._down_until = time.monotonic() + _BACK_OFF
        log.warning(what, error=str(exc) or type(exc).__name__, retry_in=_BACK_OFF)


class _Lease:
    """The revision of a claim this replica holds; None once it is not (any more)."""

    __slots__ = ("done", "renewed_at", "revision")

    def __init__(self, revision: Revision) -> None:
        self.revision: Revision | None = revision
        self.renewed_at = time.monotonic()
        #: Set when the run is over: the renewals stop (after a write in progress).
        self.done = asyncio.Event()


def _ttl(request: Request) -> float:
    """An entry's own lifetime: while any attempt of its request may still be waiting."""
    return request.deadline.remaining() + REPLY_MARGIN


def _budget(deadline: Deadline) -> float:
    """Time one claim operation may take: a healthy JetStream answers in a millisecond."""
    return max(0.02, min(CLAIM_BUDGET, deadline.remaining() * 0.1))


def _decode(value: bytes) -> _Done | None:
    try:
        return _decode_done(value)
    except msgspec.DecodeError:
        log.warning("unreadable request claim ignored")
        return None
