"""A labchat server in its own process, for the benchmark: prints its port, serves until told to stop.

It stops on SIGTERM (or when its standard input closes): either way it leaves its ``with``
block, so the server closes as it ships, telling every client.

The rule it keeps: every protection stays on at the server's own default except the ones the
command line names, so the benchmark measures the server people run, not a stripped-down copy.
"""

from __future__ import annotations

import argparse
import signal
import sys

from labchat.server import SelectorChatServer, ThreadingChatServer

from .servers import raise_nofile

SERVERS = {"threading": ThreadingChatServer, "selector": SelectorChatServer}


def _terminated(signum: int, frame: object) -> None:
    raise SystemExit(0)


def main(argv: list[str] | None = None) -> None:
    signal.signal(signal.SIGTERM, _terminated)
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--engine", choices=sorted(SERVERS), default="threading")
    parser.add_argument("--no-rate-limit", action="store_true", help="switch the per-client rate limit off")
    parser.add_argument("--max-clients", type=int, default=100)
    parser.add_argument("--outbox-limit", type=int, help="bytes queued for one client (server default)")
    parser.add_argument("--stall-timeout", type=float, help="seconds unread before a cut (server default)")
    parser.add_argument("--max-pending", type=int, help="connections not yet joined (server default)")
    parser.add_argument(
        "--backplane", metavar="URL", help="share the room through this Redis (docs/backplane.md)"
    )
    parser.add_argument("--room", default="bench", help="the shared room's name")
    args = parser.parse_args(argv)
    raise_nofile(args.max_clients + 256)
    optional = {
        "outbox_limit": args.outbox_limit,
        "stall_timeout": args.stall_timeout,
        "max_pending": args.max_pending,
        "backplane": args.backplane,
    }
    server = SERVERS[args.engine](
        port=0,
        bot=False,
        rate=None if args.no_rate_limit else 5.0,
        max_clients=args.max_clients,
        room=args.room,
        **{key: value for key, value in optional.items() if value is not None},
    )
    with server:
        print(server.address[1], flush=True)
        sys.stdin.read()  # until the benchmark stops us


if __name__ == "__main__":
    main()
