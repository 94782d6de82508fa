"""The benchmark's quick mode runs end to end against labchat and Redis and loses nothing.

It starts its own servers (a labchat server process and Debian's redis-server) on loopback
ports the kernel picks, so this test needs redis-server installed: without it the benchmark
fails, and so does this test.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_smoke_benchmark_runs_and_loses_nothing() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.fanout", "--smoke"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["smoke"] is True
    assert report["lost"] == 0
    runs = report["runs"]
    assert set(runs) == {"latency", "busy", "slow", "fanout10", "scale"}
    for name, by_engine in runs.items():
        for engine in ("labchat", "redis"):
            (run,) = by_engine[engine]
            assert run["lost"] == 0, (name, engine, run)
            if name != "scale":
                assert run["sent"] > 0 and run["delivered"] > 0, (name, engine, run)
    assert runs["busy"]["labchat"][0]["p99_us"] > 0
    assert runs["fanout10"]["labchat"][0]["deliveries_per_s"] > 0
    assert runs["scale"]["labchat"][0]["threads"] > runs["scale"]["labchat"][0]["threads_idle"]
    assert "labchat" in done.stdout and "redis" in done.stdout  # the table names both engines
