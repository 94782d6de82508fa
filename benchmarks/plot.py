"""Draw the benchmark's figures from its JSON results: latency, fan-out against N, idle clients.

    python -m benchmarks.plot benchmarks/results.json   # writes docs/latency.png, fanout.png, scale.png

The rule it keeps: plot only what the JSON holds (each run's percentiles and the medians of
the runs), so the figures can always be redrawn from the recorded numbers.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

DOCS = Path(__file__).resolve().parent.parent / "docs"
ENGINES = ("threading", "selector", "redis")
COLOURS = {"threading": "tab:blue", "selector": "tab:green", "redis": "tab:red", "floor": "tab:gray"}
LATENCY_ENGINES = (*ENGINES, "floor")  # the bare Python loop runs in the latency scenarios only
PANELS = [
    ("latency", "2 clients, 1,000 msg/s"),
    ("busy", "busy room: 50 clients x 20 msg/s"),
    ("slow", "busy room + 1 slow reader"),
]


def _nines(q: float) -> float:
    """Where percentile q sits on an axis that spreads out the tail: 90 -> 1, 99 -> 2, 99.9 -> 3."""
    return -math.log10(max(1e-4, 1 - q / 100))


def latency_figure(report: dict, path: Path) -> None:
    """Latency by percentile, one thin line per run and a thick one for the median of the runs."""
    fig, axes = plt.subplots(1, len(PANELS), figsize=(13, 4.2), sharey=True)
    ticks = [50, 90, 99, 99.9, 100]
    for ax, (name, title) in zip(axes, PANELS, strict=True):
        for engine in LATENCY_ENGINES:
            by_engine = report["runs"].get(name, {}).get(engine, [])
            runs = [r["spectrum_us"] for r in by_engine if "spectrum_us" in r]
            if not runs:
                continue
            qs = [float(q) for q in runs[0]]
            xs = [_nines(q) for q in qs]
            for spectrum in runs:
                ax.plot(xs, [v / 1000 for v in spectrum.values()], color=COLOURS[engine], alpha=0.3, lw=1)
            medians = [statistics.median(s[str(k)] for s in runs) / 1000 for k in runs[0]]
            label = f"{engine} (median of {len(runs)} runs)"
            ax.plot(xs, medians, color=COLOURS[engine], lw=2.2, label=label)
        ax.set_xticks([_nines(q) for q in ticks], ["p50", "p90", "p99", "p99.9", "max"])
        ax.set_yscale("log")
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    axes[0].set_ylabel("one-way delivery latency (ms, log scale)")
    when = report["machine"]["date"]
    title = (
        f"Latency distribution, labchat's engines, Redis pub/sub and a bare Python loop in one run ({when})"
    )
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def fanout_figure(report: dict, path: Path) -> None:
    """Deliveries per second summed over receivers against N, paced and unpaced sender side by side."""
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2), sharey=True)
    titles = {
        "fanout": "sender paced by the load generator",
        "unpaced": "sender not paced (as fast as it is let)",
    }
    for ax, (prefix, title) in zip(axes, titles.items(), strict=True):
        names = [name for name in report["runs"] if name.startswith(prefix)]
        points = sorted((int(name[len(prefix) :]), name) for name in names)
        for engine in ENGINES:
            xs, medians = [], []
            for n, name in points:
                values = [r["deliveries_per_s"] / 1e6 for r in report["runs"][name].get(engine, [])]
                if not values:
                    continue
                ax.plot([n] * len(values), values, ".", color=COLOURS[engine], alpha=0.5)
                xs.append(n)
                medians.append(statistics.median(values))
            if xs:
                ax.plot(xs, medians, "-o", color=COLOURS[engine], label=f"{engine} (median; dots: each run)")
        ax.set_xscale("log")
        ax.set_xticks([n for n, _ in points], [str(n) for n, _ in points])
        ax.minorticks_off()
        ax.set_xlabel("receivers N (one sender, 100-byte messages)")
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
    # Both panels share one axis: set its range once both are drawn, so neither is cut off.
    top = max(value for ax in axes for line in ax.get_lines() for value in line.get_ydata())
    axes[0].set_ylim(0, top * 1.08)
    axes[0].set_ylabel("deliveries per second (millions)")
    axes[0].legend(fontsize=8)
    fig.suptitle(f"Fan-out in one run ({report['machine']['date']})", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def scale_figure(report: dict, path: Path) -> None:
    """Idle clients: join time, the server's peak memory, and one message to all, against clients joined."""
    panels = [
        ("join_s", "time for all to join (s)", 1.0, True),
        ("peak_rss_kib", "server's peak RSS (MiB)", 1 / 1024, False),
        ("reach_all_ms", "one message reaching all (ms)", 1.0, False),
    ]
    fig, axes = plt.subplots(1, len(panels), figsize=(13, 4.2))
    names = [name for name in report["runs"] if name.startswith("scale")]
    for ax, (key, label, scale, log) in zip(axes, panels, strict=True):
        for engine in ENGINES:
            points = sorted(
                (r["joined"], r[key] * scale)
                for name in names
                for r in report["runs"][name].get(engine, [])
                if r.get(key) is not None
            )
            if points:
                xs, ys = zip(*points, strict=True)
                ax.plot(xs, ys, "o", color=COLOURS[engine], alpha=0.7, label=engine)
        ax.set_xscale("log")
        if log:
            ax.set_yscale("log")
        ax.set_xlabel("idle clients in the room")
        ax.set_title(label, fontsize=10)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    budget = "each run's join phase is cut off after its time budget; x is how many got in"
    fig.suptitle(f"Idle clients, one run ({report['machine']['date']}): {budget}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Draw the benchmark's figures from its JSON results")
    parser.add_argument("results", type=Path, help="the JSON line that python -m benchmarks.fanout printed")
    parser.add_argument("--docs", type=Path, default=DOCS, help="where to write the PNG files")
    args = parser.parse_args(argv)
    report = json.loads(args.results.read_text().strip().splitlines()[-1])
    args.docs.mkdir(parents=True, exist_ok=True)
    written = []
    for name, draw in (("latency", latency_figure), ("fanout", fanout_figure), ("scale", scale_figure)):
        draw(report, args.docs / f"{name}.png")
        written.append(str(args.docs / f"{name}.png"))
    print("wrote " + ", ".join(written))


if __name__ == "__main__":
    main()
