"""The backplane's benchmark: one room on 1, 2 and 3 labchat servers through one Redis, beside
one server alone and beside Redis pub/sub alone, all in the same run.

Run from the repository root:

    python -m benchmarks.multi                  # the full run, about 4 minutes
    python -m benchmarks.multi --smoke          # a quick check that everything runs and nothing is lost
    python -m benchmarks.multi --out benchmarks/multi.json

Five engines, each scenario on each, taking turns to go first:

- ``selector``: one ``SelectorChatServer``, no Redis (the single-process figure);
- ``shared1``, ``shared2``, ``shared3``: 1, 2 or 3 ``SelectorChatServer`` processes that are
  one room through a ``redis-server`` (``docs/backplane.md``), the clients spread over them;
- ``redis``: Redis pub/sub alone, the clients subscribed to one channel (the floor: what the
  backplane's own carrier does with no labchat in front of it).

Three scenarios:

- ``multi-latency``: a sender on the first server, a reader timing each delivery on the last;
- ``multi-busy``: the busy room of ``fanout.py`` (50 members, each sending 20 a second and
  timing everyone's), the members spread evenly over the servers;
- ``multi-fanoutN``: one sender as fast as it may go on the first server, N readers spread
  evenly over all the servers.

The rule it keeps, as ``fanout.py``'s: medians over runs that take turns to go first, never
one absolute time, and a non-zero exit status if a labchat engine lost anything or cut off a
reader. CPU time is the sum over every process of the room, Redis included.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from . import scenarios
from .fanout import failures, machine, median_of, summarise
from .loadgen import Spec
from .scenarios import SMOKE, Run, Shape, _split
from .servers import ENGINES, Engine, raise_nofile

ALONE = "selector"
SHARED = ("shared1", "shared2", "shared3")
COLUMNS = (ALONE, *SHARED, "redis")
LABCHAT = (ALONE, *SHARED)
RECEIVERS = (50, 200)


def _where(engine: Engine, groups: int) -> list[tuple[str, int]] | None:
    """Each group's address: the servers in turn, or None for an engine of one address."""
    addresses = getattr(engine, "addresses", None)
    if not addresses:
        return None
    return [addresses[n % len(addresses)] for n in range(groups)]


def _servers(engine: Engine) -> int:
    return len(getattr(engine, "addresses", None) or [engine.address])


def multi_latency(engine: Engine, shape: Shape) -> Run:
    groups = [[Spec(0, rate=shape.latency_rate)], [Spec(1, measure=True)]]
    addresses = getattr(engine, "addresses", None)
    where = [addresses[0], addresses[-1]] if addresses else None
    return scenarios.drive(engine, groups, shape.latency_seconds, where=where)


def multi_busy(engine: Engine, shape: Shape) -> Run:
    specs = [Spec(i, rate=shape.room_rate, measure=True) for i in range(shape.room_clients)]
    groups = _split(specs, max(_servers(engine), shape.workers))
    return scenarios.drive(engine, groups, shape.room_seconds, where=_where(engine, len(groups)))


def multi_fanout(engine: Engine, shape: Shape, receivers: int) -> Run:
    groups = _split([Spec(i) for i in range(receivers)], max(_servers(engine), shape.workers))
    flood = (receivers, shape.fanout_window)  # the sender joins the first server (engine.address)
    where = _where(engine, len(groups))
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
    "multi-latency": [("p50", "p50_us"), ("p99", "p99_us"), ("CPU s", "server_cpu_s")],
    "multi-busy": [("p50", "p50_us"), ("p99", "p99_us"), ("CPU s", "server_cpu_s")],
    "fanout": [("deliveries/s", "deliveries_per_s"), ("cut off", "cut_off"), ("CPU s", "server_cpu_s")],
}


def _show(key: str, value: float | None) -> str:
    if value is None:
        return "-"
    if key.endswith("_us"):
        return f"{value / 1000:,.2f} ms"
    if key.endswith("_s") and not key.endswith("per_s"):
        return f"{value:.2f}"
    return f"{value:,.0f}"


def table(results: dict[str, dict[str, list[dict]]]) -> tuple[str, dict]:
    """The printed table, and the medians with each column's ratio to one server and to Redis."""
    head = " ".join(f"{c:>10}" for c in COLUMNS)
    ratios = " ".join(f"{'/'.join((c[-1], 'one')):>6}" for c in SHARED)
    to_redis = " ".join(f"{'one' if c == ALONE else c[-1]}/red".rjust(7) for c in LABCHAT)
    lines = [f"{'scenario':17} {'figure':13} {head}  {ratios}  {to_redis}  lost ({'/'.join(COLUMNS)})"]
    summary: dict = {}
    for name, by_engine in results.items():
        summary[name] = {}
        lost = "/".join(str(sum(r["lost"] for r in by_engine[c])) for c in COLUMNS)
        for n, (label, key) in enumerate(ROWS.get(name, ROWS["fanout"])):
            medians = {c: median_of(by_engine[c], key) for c in COLUMNS}
            entry: dict = dict(medians)
            one, redis = medians[ALONE], medians["redis"]
            for c in LABCHAT:
                value = medians[c]
                entry[f"{c}_vs_one"] = round(value / one, 3) if value is not None and one else None
                entry[f"{c}_vs_redis"] = round(value / redis, 3) if value is not None and redis else None
            summary[name][key] = entry
            values = " ".join(f"{_show(key, medians[c]):>10}" for c in COLUMNS)
            shown_one = " ".join(_ratio(entry[f"{c}_vs_one"]) for c in SHARED)
            shown_redis = " ".join(f"{_ratio(entry[f'{c}_vs_redis'])} " for c in LABCHAT)
            head_name, tail = (name, lost) if n == 0 else ("", "")
            lines.append(f"{head_name:17} {label:13} {values}  {shown_one}  {shown_redis}  {tail}")
        summary[name]["lost"] = {c: sum(r["lost"] for r in by_engine[c]) for c in COLUMNS}
    return "\n".join(lines), summary


def _ratio(value: float | None) -> str:
    return f"{'-' if value is None else f'{value:.2f}x':>6}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="one room on 1, 2 and 3 servers through Redis")
    parser.add_argument("--smoke", action="store_true", help="a quick run that checks nothing is lost")
    parser.add_argument("--rounds", type=int, default=None, help="runs per scenario and engine (default 2)")
    parser.add_argument(
        "--only", nargs="*", help="run only these scenarios (multi-latency multi-busy multi-fanoutN)"
    )
    parser.add_argument("--out", type=Path, help="also write the JSON results to this file")
    args = parser.parse_args(argv)
    shape = SMOKE if args.smoke else Shape()
    rounds = args.rounds or (1 if args.smoke else 2)
    raise_nofile()
    receivers = (10,) if args.smoke else RECEIVERS
    names = ["multi-latency", "multi-busy", *(f"multi-fanout{n}" for n in receivers)]
    names = [n for n in names if not args.only or n in args.only]
    started = time.monotonic()
    results: dict[str, dict[str, list[dict]]] = {n: {c: [] for c in COLUMNS} for n in names}
    for r in range(rounds):
        for i, name in enumerate(names):
            turn = (r + i) % len(COLUMNS)
            for engine in COLUMNS[turn:] + COLUMNS[:turn]:
                took = time.monotonic()
                run = run_one(name, engine, shape)
                results[name][engine].append(summarise(name.removeprefix("multi-"), run))
                took = time.monotonic() - took
                note = f"  round {r + 1}/{rounds} {name:17} {engine:9} {took:5.1f} s"
                print(note, file=sys.stderr, flush=True)
    text, summary = table(results)
    failed = failures(results, LABCHAT)
    print(text)
    report = {
        "machine": machine(),
        "command": " ".join(["python -m benchmarks.multi", *(argv if argv is not None else sys.argv[1:])]),
        "smoke": args.smoke,
        "rounds": rounds,
        "seconds": round(time.monotonic() - started, 1),
        "lost": {c: sum(r["lost"] for by in results.values() for r in by[c]) for c in COLUMNS},
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
