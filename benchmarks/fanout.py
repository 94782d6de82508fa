"""The benchmark: labchat against Redis pub/sub, side by side, interleaved, on this machine.

Run from the repository root:

    python -m benchmarks.fanout                 # the full run, a few minutes
    python -m benchmarks.fanout --smoke         # a quick check that everything runs and nothing is lost

It starts every server itself on 127.0.0.1 (a fresh one for each run of each scenario),
drives it with the load generator in ``loadgen.py``, stops everything it started, and prints
a table of medians with labchat/Redis ratios, then one line of JSON with every figure. The
rule it keeps: never report a single absolute time; every scenario runs at least twice per
engine, the engines alternating, and the exit status is non-zero if any message was lost.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from . import scenarios
from .scenarios import SMOKE, Run, Shape

ENGINES = ("labchat", "redis")
SPECTRUM = (1, 10, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 100)  # percentiles kept for the latency plot


def percentile(values: list[float], q: float) -> float | None:
    """The q-th percentile (0-100) by the nearest-rank method; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))
    return ordered[int(rank) - 1]


def summarise(name: str, run: Run) -> dict:
    """The figures of one run that the table and the JSON report."""
    out = {"sent": run.sent, "delivered": run.delivered, "lost": run.lost}
    if name.startswith("fanout"):
        out["deliveries_per_s"] = round(run.per_second)
    if run.latencies_us:
        lat = sorted(run.latencies_us)
        out.update(
            p50_us=round(percentile(lat, 50), 1),
            p99_us=round(percentile(lat, 99), 1),
            max_us=round(lat[-1], 1),
            samples=len(lat),
            spectrum_us={str(q): round(percentile(lat, q), 1) for q in SPECTRUM},
        )
    if run.seconds:
        out["server_cpu_s"] = round(run.server_cpu, 2)
        out["loadgen_cpu_s"] = round(run.loadgen_cpu, 2)
    for key in ("rss_kib", "rss_idle_kib", "threads", "threads_idle", "slow", "closed"):
        if key in run.extra:
            out[key] = run.extra[key]
    return out


def machine() -> dict:
    model = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    redis = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout.split()
    return {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "kernel": platform.release(),
        "redis": next((w[2:] for w in redis if w.startswith("v=")), "unknown"),
    }


def scenario_names(shape: Shape) -> list[str]:
    return ["latency", "busy", "slow", *(f"fanout{n}" for n in shape.fanout_receivers), "scale"]


def run_all(shape: Shape, rounds: int, only: list[str] | None) -> dict[str, dict[str, list[dict]]]:
    """Every scenario ``rounds`` times per engine, alternating which engine goes first."""
    names = [n for n in scenario_names(shape) if not only or n in only]
    results: dict[str, dict[str, list[dict]]] = {n: {e: [] for e in ENGINES} for n in names}
    for r in range(rounds):
        for name in names:
            order = ENGINES if (r + names.index(name)) % 2 == 0 else ENGINES[::-1]
            for engine in order:
                started = time.monotonic()
                run = scenarios.run_one(name, engine, shape)
                results[name][engine].append(summarise(name, run))
                took = time.monotonic() - started
                print(
                    f"  round {r + 1}/{rounds} {name:10} {engine:8} {took:5.1f} s",
                    file=sys.stderr,
                    flush=True,
                )
    return results


def median_of(runs: list[dict], key: str) -> float | None:
    values = [r[key] for r in runs if isinstance(r.get(key), (int, float))]
    return round(statistics.median(values), 3) if values else None


# What the table shows for each scenario: (label, key, unit divisor, unit); lower is better
# except for deliveries per second.
CPU_ROWS = [("server CPU s", "server_cpu_s"), ("loadgen CPU s", "loadgen_cpu_s")]
LATENCY_ROWS = [("p50", "p50_us"), ("p99", "p99_us"), ("max", "max_us"), *CPU_ROWS]
ROWS = {
    "latency": LATENCY_ROWS,
    "busy": LATENCY_ROWS,
    "slow": LATENCY_ROWS,
    "scale": [("RSS KiB", "rss_kib"), ("threads", "threads")],
}
FANOUT_ROWS = [("deliveries/s", "deliveries_per_s"), *CPU_ROWS]


def _show(key: str, value: float | None) -> str:
    if value is None:
        return "-"
    if key.endswith("_us"):
        return f"{value / 1000:,.2f} ms"
    if key.endswith("_s") and not key.endswith("per_s"):
        return f"{value:.2f}"
    return f"{value:,.0f}"


def table(results: dict[str, dict[str, list[dict]]]) -> tuple[str, dict]:
    """The printed table and the medians and ratios behind it."""
    lines = [
        f"{'scenario':10} {'figure':14} {'labchat':>12} {'redis':>12} {'ratio':>7}  lost (labchat/redis)"
    ]
    summary: dict = {}
    for name, by_engine in results.items():
        rows = FANOUT_ROWS if name.startswith("fanout") else ROWS[name]
        summary[name] = {}
        lost = "/".join(str(sum(r["lost"] for r in by_engine[e])) for e in ENGINES)
        for i, (label, key) in enumerate(rows):
            lab, red = (median_of(by_engine[e], key) for e in ENGINES)
            ratio = lab / red if lab is not None and red else None
            summary[name][key] = {
                "labchat": lab,
                "redis": red,
                "ratio": None if ratio is None else round(ratio, 3),
            }
            lines.append(
                f"{name if i == 0 else '':10} {label:14} {_show(key, lab):>12} {_show(key, red):>12} "
                f"{'-' if ratio is None else f'{ratio:.2f}x':>7}  {lost if i == 0 else ''}"
            )
        summary[name]["lost"] = {e: sum(r["lost"] for r in by_engine[e]) for e in ENGINES}
    if "slow" in results and "busy" in results:
        p99_busy = median_of(results["busy"]["labchat"], "p99_us")
        p99_slow = median_of(results["slow"]["labchat"], "p99_us")
        if p99_busy and p99_slow:
            summary["slow"]["p99_vs_busy"] = round(p99_slow / p99_busy, 3)
            lines.append(
                f"slow reader: labchat p99 with a slow reader / without = {p99_slow / p99_busy:.2f}x"
            )
        for e in ENGINES:
            fates = sorted({r.get("slow", "?") for r in results["slow"][e]})
            lines.append(f"slow reader on {e}: {'; '.join(fates)}")
    return "\n".join(lines), summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="labchat against Redis pub/sub, side by side")
    parser.add_argument("--smoke", action="store_true", help="a quick run that checks nothing is lost")
    parser.add_argument("--rounds", type=int, default=None, help="runs per scenario and engine (default 2)")
    parser.add_argument(
        "--only", nargs="*", help="run only these scenarios (latency busy slow fanoutN scale)"
    )
    parser.add_argument("--out", type=Path, help="also write the JSON results to this file")
    args = parser.parse_args(argv)
    shape = SMOKE if args.smoke else Shape()
    rounds = args.rounds or (1 if args.smoke else 2)
    started = time.monotonic()
    results = run_all(shape, rounds, args.only)
    text, summary = table(results)
    print(text)
    lost = sum(r["lost"] for by_engine in results.values() for runs in by_engine.values() for r in runs)
    report = {
        "machine": machine(),
        "command": " ".join(["python -m benchmarks.fanout", *(argv if argv is not None else sys.argv[1:])]),
        "smoke": args.smoke,
        "rounds": rounds,
        "seconds": round(time.monotonic() - started, 1),
        "lost": lost,
        "summary": summary,
        "runs": results,
    }
    line = json.dumps(report, separators=(",", ":"))
    print(line)
    if args.out:
        args.out.write_text(line + "\n")
    if lost:
        print(f"FAILED: {lost} messages lost", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
