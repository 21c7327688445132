"""``switchboard bench MODE`` through the real CLI, at tiny sizes: correctness, not speed.

Each mode runs as a subprocess exactly as a user runs it (its parts are real
processes against an embedded nats-server); the JSON must have the one
result shape, no errors and sane values. The only timing check is
llm-latency's wall time, because that bound is the behaviour being measured.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from switchboard.orchestrator.bench.core import alternate, drive
from switchboard.orchestrator.bench.httpload import quantiles
from switchboard.orchestrator.bench.load import _lua_string
from switchboard.orchestrator.bench.stats import BenchResult, Run

ROOT = Path(__file__).resolve().parents[2]

#: The keys every bench result has (extras are merged in flat next to them).
SHAPE = {
    "mode",
    "concurrency",
    "rps",
    "baseline_rps",
    "ratio",
    "p50_ms",
    "p99_ms",
    "baseline_p50_ms",
    "baseline_p99_ms",
    "errors",
}


def _env() -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("OPENAI_API_KEY", None)
    return env


def bench(*args: str, timeout: float = 90.0) -> list[dict[str, Any]]:
    """Run ``switchboard bench ARGS --json``; the parsed JSON list."""
    proc = subprocess.run(
        [sys.executable, "-m", "switchboard", "bench", *args, "--json"],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    results = json.loads(proc.stdout)
    assert isinstance(results, list)
    assert results
    return results


def check_shape(result: dict[str, Any], mode: str) -> None:
    assert set(result) >= SHAPE, f"missing {SHAPE - set(result)}"
    assert result["mode"] == mode
    assert result["errors"] == 0, result
    assert result["baseline_errors"] == 0, result
    assert result["rps"] > 0
    assert result["baseline_rps"] > 0
    assert result["ratio"] > 0
    assert result["ratio"] == pytest.approx(result["rps"] / result["baseline_rps"], rel=0.01)
    for key in ("p50_ms", "p99_ms", "baseline_p50_ms", "baseline_p99_ms"):
        assert result[key] > 0, key
    assert result["p50_ms"] <= result["p99_ms"]
    assert result["baseline_p50_ms"] <= result["baseline_p99_ms"]


def check_second_side(result: dict[str, Any], side: str, name: str) -> None:
    """The row's second comparison (a peer, a second baseline) ran, same run, sane numbers."""
    assert result[side] == name
    assert result[f"{side}_errors"] == 0, result
    assert result[f"{side}_rps"] > 0
    assert 0 < result[f"{side}_p50_ms"] <= result[f"{side}_p90_ms"] <= result[f"{side}_p99_ms"]
    assert result[f"{side}_ratio"] == pytest.approx(
        result[f"{side}_rps"] / result["baseline_rps"], rel=0.01
    )
    assert result[f"ratio_to_{side}"] == pytest.approx(
        result["rps"] / result[f"{side}_rps"], rel=0.01
    )


def test_core() -> None:
    results = bench("core", "--requests", "200", "--concurrency", "1,10", "--rounds", "1")
    assert [r["concurrency"] for r in results] == [1, 10]
    for result in results:
        check_shape(result, "core")


def test_engine() -> None:
    everything = bench("engine", "--requests", "150", "--concurrency", "1,8", "--rounds", "1")
    assert [r["mode"] for r in everything] == ["engine", "engine-2rounds"] * 2
    two_rounds = [r for r in everything if r["mode"] == "engine-2rounds"]
    results = [r for r in everything if r["mode"] == "engine"]
    for two, one in zip(two_rounds, results, strict=True):
        # Measured against the one-round runs of its level: those are its baseline.
        check_shape(two, "engine-2rounds")
        assert (two["concurrency"], two["requests"]) == (one["concurrency"], 150)
        assert two["baseline_rps"] == one["rps"]
        assert two["compared_to"] == "engine (one round)"
        assert two["cpu_us_orchestrator"] > 0
    assert [r["concurrency"] for r in results] == [1, 8]
    for result in results:
        check_shape(result, "engine")
        assert result["requests"] == 150
        for part in ("orchestrator", "agent", "nats", "bench", "total"):
            assert result[f"cpu_us_{part}"] >= 0
        for part in ("relay", "echo", "nats", "bench", "total"):
            assert result[f"baseline_cpu_us_{part}"] >= 0
        assert result["cpu_us_total"] > 0
        check_second_side(result, "peer", "faststream")
        for part in ("relay", "echo", "nats", "bench"):
            assert result[f"peer_cpu_us_{part}"] >= 0
        assert result["peer_cpu_us_total"] > 0


def test_e2e_with_the_python_load_generator() -> None:
    results = bench(
        "e2e",
        "--requests",
        "120",
        "--concurrency",
        "1,6",
        "--rounds",
        "1",
        "--users",
        "3",
        "--load-generator",
        "python",
    )
    assert [r["concurrency"] for r in results] == [1, 6]
    for result in results:
        check_shape(result, "e2e")
        assert result["load_generator"] == "python"
        assert result["users"] == 3
        assert result["requests"] == 120
        for part in ("bff", "orchestrator", "agent", "nats", "bench", "total"):
            assert result[f"cpu_us_{part}"] >= 0
        assert result["baseline_cpu_us_total"] >= 0
        check_second_side(result, "front", "asgi-front")
        for part in ("front", "relay", "echo", "nats", "bench"):
            assert result[f"front_cpu_us_{part}"] >= 0
        assert result["front_cpu_us_total"] >= 0  # 10 ms ticks: a short run may read 0


def test_soak_through_the_bff_with_wrk() -> None:
    assert shutil.which("wrk"), "wrk is not installed: apt-get install wrk (scripts/test does)"
    (result,) = bench(
        "soak",
        "--requests",
        "300",
        "--concurrency",
        "6",
        "--through-bff",
        "--load-generator",
        "wrk",
    )
    check_shape(result, "soak")
    assert result["through"] == "bff"
    assert result["load_generator"] == "wrk"
    assert result["requests"] >= 300  # wrk also counts answers already in flight at the end
    for part in ("bff", "orchestrator", "agent"):
        assert result[f"rss_start_mb_{part}"] > 0
        assert result[f"rss_end_mb_{part}"] > 0
        assert result[f"pending_after_{part}"] == 0
    assert result["pending_after"] == 0


def test_soak_over_nats() -> None:
    (result,) = bench("soak", "--requests", "600", "--concurrency", "10")
    check_shape(result, "soak")
    assert result["concurrency"] == 10
    assert result["through"] == "nats"
    assert result["requests"] == 600
    for part in ("orchestrator", "agent"):
        assert result[f"rss_start_mb_{part}"] > 10
        assert result[f"rss_growth_mb_{part}"] == pytest.approx(
            result[f"rss_end_mb_{part}"] - result[f"rss_start_mb_{part}"], abs=0.11
        )
        assert result[f"pending_after_{part}"] == 0
    assert result["pending_after"] == 0
    assert result["rss_growth_mb"] < 20


def test_llm_latency_runs_slow_conversations_side_by_side() -> None:
    (result,) = bench("llm-latency", "--requests", "100")
    check_shape(result, "llm-latency")
    assert result["concurrency"] == 100
    assert result["delay_s"] == 1.0
    # 100 conversations whose agent waits 1 s each, all at once: about 1 s, never 100 s.
    assert 1.0 <= result["wall_s"] < 5.0
    assert result["overhead_s"] == pytest.approx(result["wall_s"] - 1.0, abs=0.002)
    assert 1.0 <= result["baseline_wall_s"] < 5.0
    assert result["through"] == "nats"
    check_watched(result, ("orchestrator", "agent"), ("relay", "echo"))


def check_watched(result: dict[str, Any], parts: tuple[str, ...], base: tuple[str, ...]) -> None:
    """Memory per conversation in flight and event-loop lag, read while they were held."""
    for part in parts:
        assert result[f"rss_peak_mb_{part}"] > 10, part
        assert 0 <= result[f"rss_per_conversation_kb_{part}"] < 1024, part
        assert 0 <= result[f"lag_p50_ms_{part}"] <= result[f"lag_p99_ms_{part}"], part
        assert result[f"lag_p99_ms_{part}"] <= result[f"lag_max_ms_{part}"] < 1000, part
        assert result[f"cpu_us_{part}"] >= 0, part
    for part in base:
        assert result[f"baseline_rss_peak_mb_{part}"] > 10, part
        assert result[f"baseline_rss_per_conversation_kb_{part}"] >= 0, part
        assert result[f"baseline_cpu_us_{part}"] >= 0, part
    # CPU is read in 10 ms ticks: a tiny raw run may take less than one in every process
    assert result["cpu_us_total"] >= 0
    assert result["baseline_cpu_us_total"] >= 0


def test_llm_latency_through_the_bff_against_the_hand_written_front() -> None:
    (result,) = bench(
        "llm-latency", "--requests", "60", "--through-bff", "--load-generator", "python"
    )
    check_shape(result, "llm-latency")
    assert result["through"] == "bff"
    assert result["baseline_name"] == "asgi-front"
    assert result["load_generator"] == "python"
    assert 1.0 <= result["wall_s"] < 5.0
    assert 1.0 <= result["baseline_wall_s"] < 5.0
    check_watched(result, ("bff", "orchestrator", "agent"), ("front", "relay", "echo"))


# -- cleanup -------------------------------------------------------------------------------------


def _children(pid: int) -> set[int]:
    """Every descendant of ``pid`` (from /proc)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize(
    ("sig", "mode", "extra"),
    [
        (signal.SIGINT, "engine", "switchboard.orchestrator.bench.peer"),
        (signal.SIGTERM, "engine", "switchboard.orchestrator.bench.peer"),
        (signal.SIGTERM, "e2e", "switchboard.orchestrator.bench.front"),
    ],
)
def test_a_stopped_bench_leaves_no_process_behind(
    sig: signal.Signals, mode: str, extra: str
) -> None:
    assert Path("/proc").is_dir(), "this test reads /proc (Linux)"
    proc = subprocess.Popen(
        [sys.executable, "-m", "switchboard", "bench", mode, "--requests", "1000000"],
        cwd=ROOT,
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        # Ctrl-C as at a terminal: a suite started in the background (CI) inherits SIGINT
        # ignored, and so would the bench, which then never sees the Ctrl-C this test sends.
        preexec_fn=_default_sigint,
    )
    try:
        assert proc.stderr is not None
        for line in proc.stderr:  # the parts are up and the measurement is under way
            if line.startswith(f"{mode}: up"):
                break
        time.sleep(1.0)
        # nats-server, the system's parts, echo, relay, and the peer's (engine: FastStream's
        # echo and relay) or the second baseline's (e2e: the hand-written front) processes
        children = _children(proc.pid)
        assert len(children) >= 6, children
        assert [pid for pid in children if extra in _cmdline(pid)], [
            _cmdline(pid) for pid in children
        ]
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()  # a pipe left open fails a later test as an unraisable warning
    assert proc.returncode in (130, 143, -sig), err
    give_up = time.monotonic() + 10
    while any(_alive(pid) for pid in children) and time.monotonic() < give_up:
        time.sleep(0.1)
    assert not [pid for pid in children if _alive(pid)], err


# -- units ---------------------------------------------------------------------------------------


async def test_a_cancelled_drive_stops_even_when_a_send_swallows_the_cancellation() -> None:
    # Python 3.11's asyncio.wait_for (inside nats-py's nc.request) returns a reply that arrived
    # as its task was cancelled and drops the cancellation; the raw baselines go through it.
    sent = 0
    swallow = True

    async def send(i: int) -> None:
        nonlocal sent
        sent += 1
        try:
            await asyncio.sleep(0.001)
        except asyncio.CancelledError:
            if swallow:
                return  # the reply was already there: wait_for returns it
            raise

    run = asyncio.create_task(drive(send, requests=10**6, concurrency=4))
    await asyncio.sleep(0.05)
    run.cancel()
    await asyncio.wait({run}, timeout=5)
    stopped = run.done()
    swallow = False  # let a drive that kept going end, so a failure does not hang the suite
    while not run.done():
        run.cancel()
        await asyncio.sleep(0.01)
    assert stopped, "drive went on sending after it was cancelled"
    assert run.cancelled()
    assert 0 < sent < 10**5


def test_quantiles_are_nearest_rank_percentiles() -> None:
    values = [float(i) for i in range(1, 101)]
    q = quantiles(values)
    assert len(q) == 1001
    assert q[0] == 1.0
    assert q[500] == 50.0
    assert q[990] == 99.0
    assert q[1000] == 100.0
    assert quantiles([]) == [0.0] * 1001


def test_extras_are_merged_flat_into_the_json_object() -> None:
    run = Run(requests=2, wall_s=1.0, latencies=[0.001, 0.002])
    result = BenchResult.compare("soak", 4, [run], [run], rss_growth_mb_bff=1.5, pending_after=0)
    data = result.as_json_object()
    assert set(data) >= SHAPE
    assert data["rss_growth_mb_bff"] == 1.5
    assert data["pending_after"] == 0
    assert "extras" not in data


def test_lua_strings_escape_everything_but_plain_ascii() -> None:
    assert _lua_string('a"b\\c\né') == '"a\\034b\\092c\\010\\195\\169"'


async def test_rounds_alternate_which_side_goes_first() -> None:
    calls: list[str] = []

    def side(name: str) -> Any:
        async def run() -> Run:
            calls.append(name)
            return Run(requests=len(calls), wall_s=1.0, latencies=[0.001], errors=0)

        return run

    a, b, c = await alternate(3, side("a"), side("b"), side("c"))
    assert calls == ["a", "b", "c", "c", "b", "a", "a", "b", "c"]
    assert [r.requests for r in a] == [1, 6, 7]  # each side's runs, in round order
    assert [r.requests for r in b] == [2, 5, 8]
    assert [r.requests for r in c] == [3, 4, 9]


def test_a_second_side_gets_its_own_table_row() -> None:
    import io

    from switchboard.orchestrator.bench.report import print_table
    from switchboard.orchestrator.bench.stats import second_side

    ours = [Run(requests=4, wall_s=1.0, latencies=[0.001] * 4)]
    base = [Run(requests=8, wall_s=1.0, latencies=[0.0005] * 8)]
    peer = [Run(requests=2, wall_s=1.0, latencies=[0.002] * 2)]
    result = BenchResult.compare(
        "engine", 10, ours, base, **second_side("peer", "faststream", ours, peer, base)
    )
    assert result.extras["ratio_to_peer"] == 2.0
    assert result.extras["peer_ratio"] == 0.25
    out = io.StringIO()
    print_table([result], baseline_name="raw chain", file=out)
    rows = [line.split() for line in out.getvalue().splitlines()]
    assert ["faststream", "10", "2", "8", "0.25"] in [row[:5] for row in rows]
    assert "(engine/peer: 2.00x)" in out.getvalue()


def test_watched_samples_are_cut_to_the_measured_runs() -> None:
    from switchboard.orchestrator.bench.watch import Samples

    samples = Samples(
        {
            "orchestrator": [
                (1.0, 50.0, 1.0),  # idle, before the first run
                (2.0, 60.0, 1.2),
                (3.0, 90.0, 41.0),  # in the first run
                (4.0, 95.0, None),  # between the runs: neither idle nor measured
                (5.0, 80.0, 11.0),  # in the second run
            ]
        }
    )
    watched = samples.windows([(2.5, 3.5), (4.5, 5.5)])["orchestrator"]
    assert watched.rss_mb == [90.0, 80.0]
    assert watched.idle_probe_ms == [1.0, 1.2]
    assert watched.lag() == {"lag_p50_ms": 10.0, "lag_p99_ms": 40.0, "lag_max_ms": 40.0}
