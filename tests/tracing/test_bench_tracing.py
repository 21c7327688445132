"""``switchboard bench engine --tracing``: tracing on and off, same run, both answered."""

from __future__ import annotations

from tests.bench.test_bench import bench, check_second_side, check_shape


def test_the_engine_bench_measures_tracing_on_beside_off() -> None:
    results = bench(
        "engine", "--requests", "100", "--concurrency", "4", "--rounds", "1", "--tracing"
    )
    [result] = [r for r in results if r["mode"] == "engine"]  # beside engine-2rounds
    check_shape(result, "engine")
    check_second_side(result, "traced", "tracing on")
    for part in ("orchestrator", "agent", "nats", "bench"):
        assert result[f"traced_cpu_us_{part}"] >= 0
    assert result["traced_cpu_us_total"] > 0
