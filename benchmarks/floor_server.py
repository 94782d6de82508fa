"""The floor: the least a Python chat server can do, as a peer for the busy room's figures.

Run by the benchmark (``servers.FloorServer``), never by people: one thread, ``selectors``
as labchat's selector engine uses it, and for each line a client sends, ``json.loads`` and
one ``json.dumps`` of a message event. What a round of the loop gathered is sent to every
joined client with one ``send`` each, as labchat and Redis do. It speaks just enough of
labchat's wire for the load generator (a banner, a welcome, message events).

The rule it keeps: nothing a real server must do. No room, no limits, no outbox, no
pacing, no order across threads, no transcript: a client whose kernel buffer is full is
simply hung up on. What labchat costs above this floor is the price of its promises; what
the floor costs above Redis is the price of Python.
"""

from __future__ import annotations

import json
import selectors
import signal
import socket
import sys
import time


def serve() -> None:
    listener = socket.create_server(("127.0.0.1", 0), backlog=1024)
    listener.setblocking(False)
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ)
    selector.register(sys.stdin, selectors.EVENT_READ)  # closed or readable: time to stop
    print(listener.getsockname()[1], flush=True)
    nicks: dict[socket.socket, str] = {}  # joined clients, in the order they joined
    pending: dict[socket.socket, bytes] = {}  # each client's unfinished line
    seq = 0

    def hang_up(sock: socket.socket) -> None:
        selector.unregister(sock)
        nicks.pop(sock, None)
        pending.pop(sock, None)
        sock.close()

    while True:
        out = []
        for key, _ in selector.select():
            sock = key.fileobj
            if sock is sys.stdin:
                return
            if sock is listener:
                client, _ = listener.accept()
                client.setblocking(False)
                client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                selector.register(client, selectors.EVENT_READ)
                pending[client] = b""
                client.send(b'{"type":"banner","text":"floor"}\n')
                continue
            try:
                data = sock.recv(65536)
            except OSError:
                data = b""
            if not data:
                hang_up(sock)
                continue
            *lines, pending[sock] = (pending[sock] + data).split(b"\n")
            for line in lines:
                frame = json.loads(line)
                if frame["type"] == "hello":
                    nicks[sock] = frame["nick"]
                    sock.send(b'{"type":"welcome","nick":%s}\n' % json.dumps(frame["nick"]).encode())
                elif frame["type"] == "say" and sock in nicks:
                    seq += 1
                    event = {"type": "message", "seq": seq, "sender": nicks[sock], "text": frame["text"]}
                    event["time"] = round(time.time(), 3)
                    out.append(json.dumps(event, separators=(",", ":")).encode() + b"\n")
        if out:
            blob = b"".join(out)
            for member in list(nicks):
                try:
                    taken = member.send(blob)
                except OSError:
                    taken = 0
                if taken < len(blob):
                    hang_up(member)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    serve()
