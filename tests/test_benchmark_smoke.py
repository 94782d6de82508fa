"""The benchmark's quick mode runs end to end against both labchat engines and Redis and loses nothing.

It starts its own servers (a process for each labchat engine and Debian's redis-server) on
loopback ports the kernel picks, so this test needs redis-server installed: without it the
benchmark fails, and so does this test.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LABCHAT = ("threading", "selector")
ENGINES = (*LABCHAT, "redis")
WITH_FLOOR = ("latency", "busy", "slow")  # the bare Python loop runs beside them there


def smoke(module: str, timeout: float) -> tuple[dict, str]:
    """Run ``python -m MODULE --smoke``; its JSON report (the last line) and all it printed."""
    done = subprocess.run(
        [sys.executable, "-m", module, "--smoke"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stdout


def test_smoke_benchmark_runs_both_engines_and_loses_nothing() -> None:
    report, printed = smoke("benchmarks.fanout", timeout=120)
    assert report["smoke"] is True
    assert report["failures"] == []
    assert report["lost"] == {engine: 0 for engine in (*ENGINES, "floor")}
    runs = report["runs"]
    assert set(runs) == {"latency", "busy", "slow", "fanout10", "unpaced10", "scale200"}
    for name, by_engine in runs.items():
        engines = (*ENGINES, "floor") if name in WITH_FLOOR else ENGINES
        assert set(by_engine) == set(engines), name
        for engine in engines:
            (run,) = by_engine[engine]
            assert run["lost"] == 0, (name, engine, run)
            assert run["sent"] > 0 and run["delivered"] > 0, (name, engine, run)
    for engine in LABCHAT:
        for name in ("fanout10", "unpaced10"):
            (run,) = runs[name][engine]
            assert run["deliveries_per_s"] > 0, (name, engine)
            assert run["cut_off"] == 0, (name, engine, run["closed"])  # everyone kept reading
        (busy,) = runs["busy"][engine]
        assert busy["p99_us"] > 0
        assert report["summary"]["busy"]["p99_us"][f"{engine}_floor_ratio"] > 0
        (scale,) = runs["scale200"][engine]
        assert scale["joined"] == 200 and scale["delivered"] == 200, scale  # one message reached all
    threaded, selector = (runs["scale200"][engine][0] for engine in LABCHAT)
    assert threaded["threads"] >= threaded["threads_idle"] + 200  # a thread per connection
    assert selector["threads"] == selector["threads_idle"]  # one thread for all of them
    for engine in (*ENGINES, "floor"):
        assert engine in printed  # the table names every engine


def test_smoke_multi_benchmark_runs_one_two_and_three_servers_and_loses_nothing() -> None:
    """benchmarks.multi: one server, 1-3 servers sharing a room through Redis, Redis alone."""
    report, _ = smoke("benchmarks.multi", timeout=180)
    columns = {"selector", "shared1", "shared2", "shared3", "redis"}
    assert report["smoke"] is True and report["failures"] == []
    assert report["lost"] == {column: 0 for column in columns}
    assert set(report["runs"]) == {"multi-latency", "multi-busy", "multi-fanout10"}
    for name, by_engine in report["runs"].items():
        assert set(by_engine) == columns, name
        for column, runs in by_engine.items():
            (run,) = runs
            assert run["lost"] == 0 and run["sent"] > 0 and run["delivered"] > 0, (name, column, run)
    fanout = report["summary"]["multi-fanout10"]["deliveries_per_s"]
    assert all(fanout[column] > 0 for column in columns)
    assert fanout["shared2_vs_one"] is not None and fanout["shared3_vs_redis"] is not None
