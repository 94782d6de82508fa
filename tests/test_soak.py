"""Soak and churn: a full class chatting at once, and a thousand comings and goings, on loopback.

The rules checked: every message the server accepts reaches every client that
keeps reading, once, in the server's order (the sequence numbers prove it);
and however clients leave, politely or by resetting mid-frame, the server ends
up with exactly the threads and file descriptors it had before they came.
"""

from __future__ import annotations

import os
import socket
import struct
import threading
import time
from collections.abc import Callable

import pytest
from conftest import labchat_threads, wait_until

from labchat import ChatClient, Event

pytestmark = pytest.mark.slow


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def run_in_threads(work: Callable[[int], None], items: int, threads: int) -> None:
    """Call ``work(i)`` for every i below ``items``, spread over ``threads`` threads; re-raise any failure."""
    failures: list[BaseException] = []

    def worker(start: int) -> None:
        try:
            for i in range(start, items, threads):
                work(i)
        except BaseException as exc:  # handed to the main thread
            failures.append(exc)

    pool = [threading.Thread(target=worker, args=(n,), name=f"test-worker-{n}") for n in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    if failures:
        raise failures[0]


def test_200_clients_chatting_at_once_each_get_every_message_once_in_the_servers_order(engine) -> None:
    clients_count, per_client = 200, 10
    total = clients_count * per_client
    with engine(port=0, bot=False, rate=None, max_clients=clients_count + 10, history=0) as server:
        clients = [ChatClient(*server.address, nick=f"c{i:03d}") for i in range(clients_count)]
        last = clients[-1].nick
        # Everyone is in before anyone speaks (a room this big announces no joins: ask it).
        assert wait_until(lambda: len(server.users()) == clients_count, 30)

        started = time.monotonic()

        def chat(i: int) -> None:
            for client in clients[i::20]:
                for n in range(per_client):
                    client.send(f"{client.nick} says {n}")

        run_in_threads(lambda i: chat(i), 20, 20)
        heard: list[list[Event]] = []
        for client in clients:
            events: list[Event] = []
            while len(events) < total:
                event = client.receive(timeout=60)
                if event.kind == "message":
                    events.append(event)
            heard.append(events)
        elapsed = time.monotonic() - started

        reference = [(e.seq, e.sender, e.text) for e in heard[0]]
        seqs = [seq for seq, _, _ in reference]
        assert seqs == sorted(set(seqs)), "in the server's order, nothing duplicated"
        assert {text for _, _, text in reference} == {
            f"c{i:03d} says {n}" for i in range(clients_count) for n in range(per_client)
        }, "nothing lost"
        for sender in ("c000", "c123", last):  # each sender's own order is kept
            said = [t for _, s, t in reference if s == sender]
            assert said == [f"{sender} says {n}" for n in range(per_client)]
        for client, events in zip(clients, heard, strict=True):
            assert [(e.seq, e.sender, e.text) for e in events] == reference, client.nick
            assert client.connected and client.dropped == 0
            assert client.pending() == []  # and nothing more: no duplicates trailing behind

        deliveries = total * clients_count
        print(f"\n{clients_count} clients, {total} messages, {deliveries} deliveries in {elapsed:.2f} s")
        run_in_threads(lambda i: clients[i].close(), clients_count, 20)
        assert wait_until(lambda: server.users() == [], 30)


def _reset(sock: socket.socket) -> None:
    """Close with a TCP reset instead of a polite goodbye."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def _raw(address: tuple[str, int]) -> socket.socket:
    sock = socket.create_connection(address, timeout=10)
    sock.recv(4096)  # the banner
    return sock


def _await_welcome(sock: socket.socket) -> None:
    data = b""
    while b"\n" not in data:
        chunk = sock.recv(4096)
        assert chunk, "the server hung up instead of welcoming"
        data += chunk


def _cycle(address: tuple[str, int], n: int) -> None:
    """One connect, hello, disconnect; the way in and the way out vary with ``n``."""
    nick = f"u{n}"
    kind = n % 6
    if kind == 0:  # a program that joins and leaves politely
        ChatClient(*address, nick=nick).close()
        return
    sock = _raw(address)
    if kind == 1:  # joins, then resets half-way through a frame
        sock.sendall(f'{{"type":"hello","nick":"{nick}"}}\n'.encode())
        _await_welcome(sock)
        sock.sendall(b'{"type":"say","text":"half a mess')
        _reset(sock)
    elif kind == 2:  # resets half-way through its hello
        sock.sendall(b'{"type":"hello","ni')
        _reset(sock)
    elif kind == 3:  # connects and hangs up without a word
        sock.close()
    elif kind == 4:  # a person on netcat who says one thing, then leaves mid-line
        sock.sendall(f"{nick}\n".encode())
        _await_welcome(sock)
        sock.sendall(b"hello everyone\nand th")
        sock.shutdown(socket.SHUT_WR)
        while sock.recv(65536):
            pass
        sock.close()
    else:  # joins and resets at once, with nothing in flight
        sock.sendall(f'{{"type":"hello","nick":"{nick}"}}\n'.encode())
        _await_welcome(sock)
        _reset(sock)


def test_1000_connect_hello_disconnect_cycles_leave_no_thread_or_descriptor_behind(engine) -> None:
    with engine(port=0, bot=False, rate=None, max_clients=300, hello_timeout=10) as server:
        address = server.address
        with ChatClient(*address, nick="sentinel") as sentinel:
            for n in range(12):  # warm up: anything created once and kept is not a leak
                _cycle(address, n)
            assert wait_until(lambda: server.users() == ["sentinel"] and len(server.connections()) == 1, 10)
            threads, fds = labchat_threads(), open_fds()

            started = time.monotonic()
            run_in_threads(lambda n: _cycle(address, n), 1000, 8)
            elapsed = time.monotonic() - started

            settled = wait_until(lambda: labchat_threads() == threads and open_fds() == fds, 20)
            assert settled, f"threads {len(labchat_threads())} vs {len(threads)}, fds {open_fds()} vs {fds}"
            assert server.users() == ["sentinel"]
            sentinel.send("still here")
            sentinel.receive_until(lambda e: e.kind == "message" and e.text == "still here")
            print(f"\n1000 cycles in {elapsed:.2f} s; {len(threads)} labchat threads, {fds} fds, as before")
