"""The benchmark: labchat's two engines against Redis pub/sub, side by side, interleaved, on this machine.

Run from the repository root:

    python -m benchmarks.fanout                 # the full run, about 10 minutes
    python -m benchmarks.fanout --smoke         # a quick check that everything runs and nothing is lost

It starts every server itself on 127.0.0.1 (a fresh one for each run of each scenario),
drives it with the load generator in ``loadgen.py``, stops everything it started, and prints
a table of medians with each labchat engine's ratio to Redis (and, in the latency scenarios,
to a bare Python loop, ``floor_server.py``), then one line of JSON with every figure. The
rule it keeps: never report a single absolute time; every scenario runs at least twice per
engine in the full run, the engines taking turns to go first, and the exit status is non-zero
if a labchat engine lost any message or cut off a receiver that kept reading (what Redis loses
is reported, not judged: dropping subscribers that fall behind is its policy).
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
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path

from . import scenarios
from .scenarios import SMOKE, Run, Shape
from .servers import LABCHAT, raise_nofile

ENGINES = (*LABCHAT, "redis")
# A bare Python loop (``floor_server.py``) runs beside them where the figure is a latency:
# what the busy room costs a Python server that keeps none of labchat's promises, so the
# ratios show how much of the distance to Redis is labchat's and how much is Python's.
FLOOR = "floor"
WITH_FLOOR = ("latency", "busy", "slow")
COLUMNS = (*ENGINES, FLOOR)
# A p99 over a few seconds moves a lot between runs on a shared machine: the busy room and
# the slow reader, the two figures judged by their p99, get twice the runs of the others.
DOUBLED = ("busy", "slow")
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
    if name.startswith(("fanout", "unpaced")):
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
    for key, value in run.extra.items():
        out[key] = value
    if "closed" in out:
        out["cut_off"] = len(out["closed"])
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
        "commit": _commit(),
    }


def _commit() -> str:
    """The commit of the code measured, from LABCHAT_COMMIT or git (a tree with edits says so)."""
    if os.environ.get("LABCHAT_COMMIT"):
        return os.environ["LABCHAT_COMMIT"]
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
        edits = subprocess.run(["git", "status", "--porcelain", "labchat"], capture_output=True, text=True)
    except OSError:
        return "unknown"
    if head.returncode:
        return "unknown"
    return head.stdout.strip() + (" with uncommitted edits to labchat/" if edits.stdout.strip() else "")


def scenario_names(shape: Shape) -> list[str]:
    return [
        "latency",
        "busy",
        "slow",
        *(f"fanout{n}" for n in shape.fanout_receivers),
        *(f"unpaced{n}" for n in shape.fanout_receivers),
        *(f"scale{n}" for n in shape.idle_clients),
    ]


def engines_for(name: str) -> tuple[str, ...]:
    """The servers a scenario runs on: the floor only where the figure is a latency."""
    return COLUMNS if name in WITH_FLOOR else ENGINES


def run_all(
    shape: Shape, rounds: int, only: list[str] | None, doubled: Iterable[str] = DOUBLED
) -> dict[str, dict[str, list[dict]]]:
    """Every scenario ``rounds`` times per engine (``doubled`` ones twice that), alternating
    which engine goes first."""
    names = [n for n in scenario_names(shape) if not only or n in only]
    results: dict[str, dict[str, list[dict]]] = {n: {e: [] for e in engines_for(n)} for n in names}
    for r in range(2 * rounds):
        for name in names:
            total = 2 * rounds if name in doubled else rounds
            if r >= total:
                continue
            engines = engines_for(name)
            turn = (r + names.index(name)) % len(engines)
            for engine in engines[turn:] + engines[:turn]:
                started = time.monotonic()
                run = scenarios.run_one(name, engine, shape)
                results[name][engine].append(summarise(name, run))
                took = time.monotonic() - started
                print(
                    f"  round {r + 1}/{total} {name:10} {engine:8} {took:5.1f} s",
                    file=sys.stderr,
                    flush=True,
                )
    return results


def median_of(runs: list[dict], key: str) -> float | None:
    values = [r[key] for r in runs if isinstance(r.get(key), (int, float))]
    return round(statistics.median(values), 3) if values else None


# What the table shows for each scenario: (label, key); lower is better except for
# deliveries per second and clients joined.
CPU_ROWS = [("server CPU s", "server_cpu_s"), ("loadgen CPU s", "loadgen_cpu_s")]
# The server's CPU split in two where the figure is a latency: the interpreter's part (user)
# is where labchat and the floor differ; the kernel's (system) is their sends and wake-ups.
SPLIT_ROWS = [("  in user s", "server_user_s"), ("  in kernel s", "server_system_s")]
LATENCY_ROWS = [
    ("p50", "p50_us"),
    ("p99", "p99_us"),
    ("max", "max_us"),
    ("server CPU s", "server_cpu_s"),
    *SPLIT_ROWS,
    ("loadgen CPU s", "loadgen_cpu_s"),
]
FANOUT_ROWS = [("deliveries/s", "deliveries_per_s"), ("cut off", "cut_off"), *CPU_ROWS]
SCALE_ROWS = [
    ("joined", "joined"),
    ("join s", "join_s"),
    ("threads", "threads"),
    ("peak RSS MiB", "peak_rss_kib"),
    ("KiB a client", "kib_per_client"),
    ("reach all", "reach_all_ms"),
    ("server CPU s", "server_cpu_s"),
]


def rows_for(name: str) -> list[tuple[str, str]]:
    if name.startswith(("fanout", "unpaced")):
        return FANOUT_ROWS
    if name.startswith("scale"):
        return SCALE_ROWS
    return LATENCY_ROWS


def _show(key: str, value: float | None) -> str:
    if value is None:
        return "-"
    if key.endswith("_us"):
        return f"{value / 1000:,.2f} ms"
    if key.endswith("_ms"):
        return f"{value:,.0f} ms"
    if key.endswith("_kib") and key != "kib_per_client":
        return f"{value / 1024:,.1f}"
    if key == "kib_per_client" or (key.endswith("_s") and not key.endswith("per_s")):
        return f"{value:.2f}"
    return f"{value:,.0f}"


def table(results: dict[str, dict[str, list[dict]]]) -> tuple[str, dict]:
    """The printed table and the medians and ratios behind it (each labchat engine / Redis, and
    / the floor where it ran)."""
    head = " ".join(f"{e:>12}" for e in COLUMNS)
    ratios = " ".join(f"{e[:3] + '/' + peer[:3]:>8}" for peer in ("redis", FLOOR) for e in LABCHAT)
    lines = [f"{'scenario':11} {'figure':14} {head} {ratios}  lost ({'/'.join(COLUMNS)})"]
    summary: dict = {}
    for name, by_engine in results.items():
        summary[name] = {}
        lost = "/".join(str(sum(r["lost"] for r in by_engine[e])) if e in by_engine else "-" for e in COLUMNS)
        for i, (label, key) in enumerate(rows_for(name)):
            medians = {e: median_of(by_engine[e], key) for e in by_engine}
            entry: dict = dict(medians)
            shown = []
            for peer, suffix in (("redis", "ratio"), (FLOOR, "floor_ratio")):
                for e in LABCHAT:
                    base = medians.get(peer)
                    ratio = medians[e] / base if medians[e] is not None and base else None
                    if peer in medians:
                        entry[f"{e}_{suffix}"] = None if ratio is None else round(ratio, 3)
                    shown.append(f"{'-' if ratio is None else f'{ratio:.2f}x':>8}")
            summary[name][key] = entry
            values = " ".join(f"{_show(key, medians.get(e)):>12}" for e in COLUMNS)
            lines.append(
                f"{name if i == 0 else '':11} {label:14} {values} {' '.join(shown)}  {lost if i == 0 else ''}"
            )
        summary[name]["lost"] = {e: sum(r["lost"] for r in by_engine[e]) for e in by_engine}
    if "slow" in results and "busy" in results:
        for e in results["slow"]:
            p99_busy = median_of(results["busy"][e], "p99_us")
            p99_slow = median_of(results["slow"][e], "p99_us")
            if p99_busy and p99_slow:
                summary["slow"].setdefault("p99_vs_busy", {})[e] = round(p99_slow / p99_busy, 3)
                ratio = p99_slow / p99_busy
                lines.append(f"slow reader on {e}: others' p99 with it / without = {ratio:.2f}x")
            fates = sorted({r.get("slow", "?") for r in results["slow"][e]})
            lines.append(f"slow reader on {e}: {'; '.join(fates)}")
    return "\n".join(lines), summary


def failures(results: dict[str, dict[str, list[dict]]], engines: Iterable[str] = LABCHAT) -> list[str]:
    """What makes the run fail: a labchat engine that lost a message or cut off a reader that read."""
    out = []
    for name, by_engine in results.items():
        for e in engines:
            for r in by_engine.get(e, []):
                if r["lost"]:
                    out.append(f"{name} on {e}: {r['lost']} messages lost")
                if r.get("cut_off"):
                    out.append(f"{name} on {e}: {r['cut_off']} receivers that kept reading were cut off")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="labchat against Redis pub/sub, side by side")
    parser.add_argument("--smoke", action="store_true", help="a quick run that checks nothing is lost")
    parser.add_argument(
        "--rounds",
        type=int,
        default=None,
        help="runs per scenario and engine (default 2; busy and slow twice that)",
    )
    parser.add_argument(
        "--only", nargs="*", help="run only these scenarios (latency busy slow fanoutN unpacedN scaleN)"
    )
    parser.add_argument("--out", type=Path, help="also write the JSON results to this file")
    args = parser.parse_args(argv)
    shape = SMOKE if args.smoke else Shape()
    rounds = args.rounds or (1 if args.smoke else 2)
    raise_nofile()  # the load workers inherit it: thousands of idle clients need descriptors
    started = time.monotonic()
    results = run_all(shape, rounds, args.only, () if args.smoke else DOUBLED)
    text, summary = table(results)
    print(text)
    lost = {
        e: sum(r["lost"] for by_engine in results.values() for r in by_engine.get(e, [])) for e in COLUMNS
    }
    failed = failures(results)
    report = {
        "machine": machine(),
        "command": " ".join(["python -m benchmarks.fanout", *(argv if argv is not None else sys.argv[1:])]),
        "smoke": args.smoke,
        "rounds": rounds,
        "seconds": round(time.monotonic() - started, 1),
        "lost": lost,
        "failures": failed,
        "summary": summary,
        "runs": results,
    }
    line = json.dumps(report, separators=(",", ":"))
    print(line)
    if args.out:
        args.out.write_text(line + "\n")
    if failed:
        print("FAILED: " + "; ".join(failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
