"""chat_server.py, labchat's own answer: wait for one client, then chat: you type, they type.

Run it as ``python -m labchat.exercises.classic_server PORT`` (0 picks a free port).
One thread receives and prints while the main thread reads what you type; ``bye``
from either side, or the other side vanishing, ends the chat on both.
"""

import os
import signal
import socket
import sys
import threading

GREETING = "Welcome to the chat! Type a line and press Enter; bye ends the chat."
leaving = threading.Event()  # set once this side has decided to end the chat


def receive(conn):
    """The receiver thread: print every line the client sends, until bye or hang-up."""
    for line in conn.makefile("r", encoding="utf-8", errors="replace"):
        text = line.rstrip("\r\n")
        if text == "bye":
            print("the client said bye", flush=True)
            break
        print(f"client: {text}", flush=True)
    else:  # the lines ran out: recv returned b'', the client has closed (or died)
        print("the client has gone", flush=True)
    if not leaving.is_set():
        os.kill(os.getpid(), signal.SIGINT)  # wake the main thread from input(), as Ctrl-C would


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    with socket.create_server(("127.0.0.1", port)) as listener:
        print(f"listening on port {listener.getsockname()[1]}", flush=True)
        conn, _ = listener.accept()
    with conn:
        conn.sendall((GREETING + "\n").encode())
        try:  # the thread starts inside: its wake-up (a client gone at once) may come at any moment
            threading.Thread(target=receive, args=(conn,), daemon=True).start()
            while (text := input()) != "bye":
                conn.sendall((text + "\n").encode())
            leaving.set()
            conn.sendall(b"bye\n")
        except (KeyboardInterrupt, EOFError, OSError):
            leaving.set()  # the client ended the chat, or we did (Ctrl-C, Ctrl-D)
    print("chat over", flush=True)


if __name__ == "__main__":
    main()
