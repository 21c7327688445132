"""The core's Prometheus metrics: correlation, endpoints, the NATS connection, the part.

Names follow Prometheus conventions: prefix ``switchboard_``, base units
(seconds, bytes), ``_total`` for counters. Labels are bounded: subjects of
targets, agent names and outcomes -- never user or correlation ids.

Gauges that can be derived from live objects (pending correlations, in-flight
handlers) are computed at scrape time by :class:`LiveGauge` from the objects
themselves, so the hot path pays nothing for them and they can never drift.
The service's metrics (engine, LLM, HTTP) and the whole catalog are in
``orchestrator.metrics``.
"""

from __future__ import annotations

import bisect
import math
import time
import weakref
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Protocol

from prometheus_client import REGISTRY, Counter, Gauge
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.samples import Exemplar

__all__ = [
    "AGENT_CALLS",
    "CANCEL_NOTICES",
    "CONSUMER_RESUBSCRIBES",
    "CORRELATION_CANCELLED",
    "CORRELATION_DURATION",
    "CORRELATION_NO_RESPONDERS",
    "CORRELATION_PENDING",
    "CORRELATION_REJECTED",
    "CORRELATION_STRAY",
    "CORRELATION_TIMEOUTS",
    "ENDPOINT_CANCELLED",
    "ENDPOINT_DEDUPLICATED",
    "ENDPOINT_DURATION",
    "ENDPOINT_EXPIRED",
    "ENDPOINT_IN_FLIGHT",
    "ENDPOINT_REJECTED",
    "ENDPOINT_REQUESTS",
    "LATENCY_BUCKETS",
    "NATS_CONNECTED",
    "NATS_DISCONNECTS",
    "NATS_ERRORS",
    "NATS_RECONNECTS",
    "PART_INFO",
    "LiveGauge",
    "LiveSource",
    "LoopHistogram",
]

#: Latency buckets from 0.5 ms (a local round trip) to 2 min (a long LLM chain).
LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    120.0,
)


class LiveSource(Protocol):
    """An object that reports gauge values for a :class:`LiveGauge` at scrape time."""

    def gauge_values(self, gauge: str) -> Iterable[tuple[tuple[str, ...], float]]: ...


class LiveGauge(Collector):
    """A gauge summed at scrape time over the live objects that registered with it."""

    def __init__(self, name: str, documentation: str, labelnames: tuple[str, ...] = ()) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = labelnames
        self._sources: weakref.WeakSet[LiveSource] = weakref.WeakSet()
        self._seen: set[tuple[str, ...]] = set()  # bounded: labels are bounded by design
        REGISTRY.register(self)

    def track(self, source: LiveSource) -> None:
        self._sources.add(source)

    def value(self, *labels: str) -> float:
        """The current value for ``labels`` (for tests and debug views)."""
        total = 0.0
        for source in list(self._sources):
            for key, value in source.gauge_values(self.name):
                if key == labels:
                    total += value
        return total

    def describe(self) -> Iterable[Metric]:
        return [GaugeMetricFamily(self.name, self.documentation, labels=self.labelnames)]

    def collect(self) -> Iterator[Metric]:
        # Label sets seen before stay, at 0: "nothing pending" is a sample, not a gap.
        totals: dict[tuple[str, ...], float] = dict.fromkeys(self._seen, 0.0)
        for source in list(self._sources):
            for key, value in source.gauge_values(self.name):
                totals[key] = totals.get(key, 0.0) + value
        self._seen.update(totals)
        family = GaugeMetricFamily(self.name, self.documentation, labels=self.labelnames)
        if not self.labelnames:
            family.add_metric([], totals.get((), 0.0))
        else:
            for key, value in sorted(totals.items()):
                family.add_metric(list(key), value)
        yield family


class _HistogramChild:
    """One label set of a :class:`LoopHistogram`: bucket counts, a sum, and (once one was
    given) each bucket's latest exemplar."""

    __slots__ = ("_bounds", "counts", "exemplars", "sum")

    def __init__(self, bounds: Sequence[float]) -> None:
        self._bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one is +Inf
        self.sum = 0.0
        self.exemplars: list[Exemplar | None] | None = None

    def observe(self, value: float, exemplar: Mapping[str, str] | None = None) -> None:
        """Count ``value``; ``exemplar`` (labels such as ``trace_id``) links its bucket to it
        in the OpenMetrics exposition (the bucket keeps the latest)."""
        index = bisect.bisect_left(self._bounds, value)
        self.counts[index] += 1
        self.sum += value
        if exemplar is not None:
            if self.exemplars is None:
                self.exemplars = [None] * len(self.counts)
            # OpenMetrics gives an exemplar a Unix timestamp, for Grafana to place it; it
            # decides nothing.
            self.exemplars[index] = Exemplar(dict(exemplar), value, time.time())


class LoopHistogram(Collector):
    """A Prometheus histogram for the hot path of one event loop.

    prometheus-client's Histogram takes a lock per bucket and per sum on
    every observation (about 3 us); on the request path of the correlation
    tracker that is a tenth of a round trip. This one observes with a
    ``bisect`` and two additions, and renders the standard histogram
    exposition (``_bucket``, ``_sum``, ``_count``) at scrape time. It is not
    thread-safe: observe it from one event loop (scrapes of our own
    ``/metrics`` run on that loop too).
    """

    def __init__(
        self, name: str, documentation: str, labelnames: Sequence[str], buckets: Sequence[float]
    ) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        self._bounds = tuple(sorted(buckets))
        self._children: dict[tuple[str, ...], _HistogramChild] = {}
        REGISTRY.register(self)

    def labels(self, *values: str) -> _HistogramChild:
        child = self._children.get(values)
        if child is None:
            if len(values) != len(self.labelnames):
                raise ValueError(f"{self.name} takes labels {self.labelnames}, got {values}")
            child = self._children[values] = _HistogramChild(self._bounds)
        return child

    def describe(self) -> Iterable[Metric]:
        return [HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)]

    def collect(self) -> Iterator[Metric]:
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for values, child in sorted(self._children.items()):
            cumulative = 0
            buckets: list[Any] = []
            for bound, count in zip((*self._bounds, math.inf), child.counts, strict=True):
                cumulative += count
                buckets.append((_bound(bound), cumulative))
            if child.exemplars is not None:
                buckets = [
                    (*bucket, exemplar) if exemplar is not None else bucket
                    for bucket, exemplar in zip(buckets, child.exemplars, strict=True)
                ]
            family.add_metric(list(values), buckets, child.sum)
        yield family


def _bound(value: float) -> str:
    return "+Inf" if value == math.inf else repr(float(value))


# -- part identity ---------------------------------------------------------------------------

PART_INFO = Gauge(
    "switchboard_part_info",
    "Always 1; labels say which part (orchestrator, agent, bff) and version this process runs.",
    ["part", "name", "version"],
)

# -- correlation (requester side) -------------------------------------------------------------

CORRELATION_PENDING = LiveGauge(
    "switchboard_correlation_pending",
    "Requests registered with the correlation tracker and still waiting for their final reply.",
    ("target",),
)
CORRELATION_DURATION = LoopHistogram(
    "switchboard_correlation_request_duration_seconds",
    "Round-trip time of tracked requests, from registration to outcome.",
    ["target", "outcome"],
    buckets=LATENCY_BUCKETS,
)
CORRELATION_TIMEOUTS = Counter(
    "switchboard_correlation_timeouts_total",
    "Tracked requests that timed out, by phase (not_accepted, silent, deadline).",
    ["target", "phase"],
)
CORRELATION_NO_RESPONDERS = Counter(
    "switchboard_correlation_no_responders_total",
    "Tracked requests failed at once because nobody subscribes to the subject.",
    ["target"],
)
CORRELATION_STRAY = Counter(
    "switchboard_correlation_stray_replies_total",
    "Replies whose token matched no waiter: late (after timeout/cancel) or unknown (forged).",
    ["reason"],
)
CORRELATION_CANCELLED = Counter(
    "switchboard_correlation_cancelled_total",
    "Tracked requests whose waiter was cancelled before the reply came.",
    ["target"],
)
CORRELATION_REJECTED = Counter(
    "switchboard_correlation_rejected_total",
    "Requests refused at registration (overloaded: pending limit; shutting_down).",
    ["reason"],
)
CONSUMER_RESUBSCRIBES = Counter(
    "switchboard_consumer_resubscribes_total",
    "Times the global inbox subscription was found dead and re-created.",
)
CANCEL_NOTICES = Counter(
    "switchboard_cancel_notices_total",
    "Remote cancellation notices: sent by requesters, received by workers, dropped (queue full).",
    ["direction"],
)

# -- endpoints (served side: agents and the orchestrator) -------------------------------------

ENDPOINT_REQUESTS = Counter(
    "switchboard_endpoint_requests_total",
    "Requests handled by an endpoint (an agent name, or 'orchestrator'), by outcome "
    "(ok or an error code).",
    ["endpoint", "outcome"],
)
ENDPOINT_DURATION = LoopHistogram(
    "switchboard_endpoint_duration_seconds",
    "Time an endpoint's handler spent on a request.",
    ["endpoint"],
    buckets=LATENCY_BUCKETS,
)
ENDPOINT_IN_FLIGHT = LiveGauge(
    "switchboard_endpoint_in_flight",
    "Requests an endpoint is working on right now.",
    ("endpoint",),
)
ENDPOINT_EXPIRED = Counter(
    "switchboard_endpoint_expired_total",
    "Requests dropped unhandled because their Switchboard-Timeout was spent when they arrived.",
    ["endpoint"],
)
ENDPOINT_REJECTED = Counter(
    "switchboard_endpoint_rejected_total",
    "Requests refused with an error reply before the handler ran (overloaded, shutting_down, "
    "bad_request, too_large, cancelled while queued).",
    ["endpoint", "reason"],
)
ENDPOINT_CANCELLED = Counter(
    "switchboard_endpoint_cancelled_total",
    "Requests cancelled (their requester gave up, or the whole conversation was cancelled): "
    "running handlers and requests still queued.",
    ["endpoint"],
)
ENDPOINT_DEDUPLICATED = Counter(
    "switchboard_endpoint_deduplicated_total",
    "Retries of a request (same Switchboard-Request-Id) that ran nothing: attached to the "
    "attempt in flight, or answered from the replay window (replayed).",
    ["endpoint", "how"],
)


# -- NATS connection -------------------------------------------------------------------------

NATS_CONNECTED = Gauge(
    "switchboard_nats_connected",
    "1 while this process is connected to NATS, else 0.",
)
NATS_RECONNECTS = Counter(
    "switchboard_nats_reconnects_total",
    "Successful reconnections to NATS.",
)
NATS_DISCONNECTS = Counter(
    "switchboard_nats_disconnects_total",
    "Losses of the NATS connection.",
)
NATS_ERRORS = Counter(
    "switchboard_nats_errors_total",
    "Asynchronous errors reported by the NATS client, by kind.",
    ["kind"],
)

# -- agent-to-agent calls (ctx.call) ------------------------------------------------------------

AGENT_CALLS = Counter(
    "switchboard_agent_calls_total",
    "Calls an agent made to another agent (ctx.call), by outcome: ok, or the error code "
    "(call_cycle, call_depth, call_budget, call_forbidden when refused before sending).",
    ["caller", "callee", "outcome"],
)
