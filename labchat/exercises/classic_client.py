"""chat_client.py, labchat's own answer: connect to a chat server, then chat: you type, they type.

Run it as ``python -m labchat.exercises.classic_client HOST PORT``. One thread
receives and prints each whole line while the main thread reads what you type;
``bye`` from either side, or the server vanishing, ends the chat.
"""

import os
import signal
import socket
import sys
import threading

leaving = threading.Event()  # set once this side has decided to end the chat


def receive(sock):
    """The receiver thread: print every line the server sends, until bye or hang-up."""
    for line in sock.makefile("r", encoding="utf-8", errors="replace"):  # whole lines, however chopped
        text = line.rstrip("\r\n")
        if text == "bye":
            print("the server said bye", flush=True)
            break
        print(text, flush=True)
    else:  # the lines ran out: recv returned b'', the server has closed (or died)
        print("the server has gone", flush=True)
    if not leaving.is_set():
        os.kill(os.getpid(), signal.SIGINT)  # wake the main thread from input(), as Ctrl-C would


def main():
    host = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1"
    port = int(sys.argv[2]) if len(sys.argv) > 2 else 5000
    with socket.create_connection((host, port)) as sock:
        try:  # the thread starts inside: its wake-up (a client gone at once) may come at any moment
            threading.Thread(target=receive, args=(sock,), daemon=True).start()
            while (text := input()) != "bye":
                sock.sendall((text + "\n").encode())
            leaving.set()
            sock.sendall(b"bye\n")
        except (KeyboardInterrupt, EOFError, OSError):
            leaving.set()  # the server ended the chat, or we did (Ctrl-C, Ctrl-D)
    print("chat over", flush=True)


if __name__ == "__main__":
    main()
