"""A labchat server in its own process, for the benchmark: prints its port, serves until stdin closes.

The rule it keeps: every protection stays on except the ones the command line switches off,
so the benchmark measures the server people run, not a stripped-down copy.
"""

from __future__ import annotations

import argparse
import sys

from labchat import ChatServer


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--no-rate-limit", action="store_true", help="switch the per-client rate limit off")
    parser.add_argument("--max-clients", type=int, default=100)
    parser.add_argument("--outbox-limit", type=int, default=256 * 1024)
    args = parser.parse_args(argv)
    server = ChatServer(
        port=0,
        bot=False,
        rate=None if args.no_rate_limit else 5.0,
        max_clients=args.max_clients,
        outbox_limit=args.outbox_limit,
    )
    with server:
        print(server.address[1], flush=True)
        sys.stdin.read()  # the benchmark closes our stdin to stop us


if __name__ == "__main__":
    main()
