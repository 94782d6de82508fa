"""The backplane's benchmark: one room across two labchat servers through Redis, beside one server.

Run from the repository root:

    python -m benchmarks.multi            # the full run, about a minute
    python -m benchmarks.multi --smoke    # a quick check that everything runs and nothing is lost

Three scenarios, each on ``threading`` (one server, as people run it) and on ``shared`` (two
threaded servers in one room through a ``redis-server``, see ``docs/backplane.md``), with the
clients split between the servers so that every delivery crosses from one to the other:

- ``multi-latency``: a sender on one server, a reader timing each delivery on the other;
- ``multi-busy``: a room whose members, half on each server, all send and time everyone;
- ``multi-fanoutN``: one sender as fast as it may go on one server, N readers on the other.

The rule it keeps, as ``fanout.py``'s: medians over runs that take turns to go first, never
one absolute time, and a non-zero exit status if anything was lost or a reader cut off.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from . import scenarios
from .fanout import failures, machine, median_of, summarise
from .loadgen import Spec
from .scenarios import SMOKE, Run, Shape, _split
from .servers import ENGINES, Engine, raise_nofile

PAIR = ("threading", "shared")
RECEIVERS = 50


def _where(engine: Engine, count: int, across: bool) -> list[tuple[str, int]] | None:
    """The address of each of ``count`` groups: alternately on the two servers, or on the second."""
    addresses = getattr(engine, "addresses", None)
    if not addresses:
        return None
    if across:
        return [addresses[n % 2] for n in range(count)]
    return [addresses[1]] * count


def multi_latency(engine: Engine, shape: Shape) -> Run:
    groups = [[Spec(0, rate=shape.latency_rate)], [Spec(1, measure=True)]]
    return scenarios.drive(engine, groups, shape.latency_seconds, where=_where(engine, 2, across=True))


def multi_busy(engine: Engine, shape: Shape) -> Run:
    specs = [Spec(i, rate=shape.room_rate, measure=True) for i in range(shape.room_clients)]
    groups = _split(specs, max(2, shape.workers))
    return scenarios.drive(engine, groups, shape.room_seconds, where=_where(engine, len(groups), across=True))


def multi_fanout(engine: Engine, shape: Shape, receivers: int) -> Run:
    groups = _split([Spec(i) for i in range(receivers)], shape.workers)
    flood = (receivers, shape.fanout_window)
    where = _where(engine, len(groups), across=False)  # the sender is on the first server
    return scenarios.drive(engine, groups, shape.fanout_seconds, flood=flood, where=where)


def run_one(name: str, engine_name: str, shape: Shape) -> Run:
    with ENGINES[engine_name]() as engine:
        if name == "multi-latency":
            return multi_latency(engine, shape)
        if name == "multi-busy":
            return multi_busy(engine, shape)
        if name.startswith("multi-fanout"):
            return multi_fanout(engine, shape, int(name[len("multi-fanout") :]))
    raise ValueError(f"unknown scenario {name!r}")


ROWS = {
    "multi-latency": [("p50", "p50_us"), ("p99", "p99_us"), ("server CPU s", "server_cpu_s")],
    "multi-busy": [("p50", "p50_us"), ("p99", "p99_us"), ("server CPU s", "server_cpu_s")],
    "fanout": [
        ("deliveries/s", "deliveries_per_s"),
        ("cut off", "cut_off"),
        ("server CPU s", "server_cpu_s"),
    ],
}


def _show(key: str, value: float | None) -> str:
    if value is None:
        return "-"
    if key.endswith("_us"):
        return f"{value / 1000:,.2f} ms"
    if key.endswith("_s") and not key.endswith("per_s"):
        return f"{value:.2f}"
    return f"{value:,.0f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="one room across two servers, beside one server")
    parser.add_argument("--smoke", action="store_true", help="a quick run that checks nothing is lost")
    parser.add_argument("--rounds", type=int, default=None, help="runs per scenario and engine (default 2)")
    args = parser.parse_args(argv)
    shape = SMOKE if args.smoke else Shape()
    rounds = args.rounds or (1 if args.smoke else 2)
    raise_nofile()
    names = ["multi-latency", "multi-busy", f"multi-fanout{RECEIVERS if not args.smoke else 10}"]
    started = time.monotonic()
    results: dict[str, dict[str, list[dict]]] = {n: {e: [] for e in PAIR} for n in names}
    for r in range(rounds):
        for i, name in enumerate(names):
            order = PAIR if (r + i) % 2 == 0 else PAIR[::-1]
            for engine in order:
                took = time.monotonic()
                results[name][engine].append(
                    summarise(name.removeprefix("multi-"), run_one(name, engine, shape))
                )
                took = time.monotonic() - took
                print(
                    f"  round {r + 1}/{rounds} {name:17} {engine:9} {took:5.1f} s",
                    file=sys.stderr,
                    flush=True,
                )
    lines = [f"{'scenario':17} {'figure':14} {'one server':>12} {'two, shared':>12} {'ratio':>7}  lost"]
    for name, by_engine in results.items():
        rows = ROWS.get(name, ROWS["fanout"])
        lost = "/".join(str(sum(r["lost"] for r in by_engine[e])) for e in PAIR)
        for n, (label, key) in enumerate(rows):
            one, two = (median_of(by_engine[e], key) for e in PAIR)
            ratio = f"{two / one:.2f}x" if one and two is not None else "-"
            head, tail = (name, lost) if n == 0 else ("", "")
            lines.append(
                f"{head:17} {label:14} {_show(key, one):>12} {_show(key, two):>12} {ratio:>7}  {tail}"
            )
    failed = failures(results, PAIR)
    print("\n".join(lines))
    report = {
        "machine": machine(),
        "command": " ".join(["python -m benchmarks.multi", *(argv if argv is not None else sys.argv[1:])]),
        "smoke": args.smoke,
        "rounds": rounds,
        "seconds": round(time.monotonic() - started, 1),
        "failures": failed,
        "runs": results,
    }
    print(json.dumps(report, separators=(",", ":")))
    if failed:
        print("FAILED: " + "; ".join(failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
