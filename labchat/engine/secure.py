"""Server-side TLS as bytes in and bytes out, through the standard library's ``ssl.MemoryBIO``.

Nothing here touches a socket. The engines read and write a plain TCP socket
whether the room speaks TLS or not; a ``TLSLayer`` turns what arrives into
plaintext and what is queued into records. Its rule: one SSL object is used
by one thread at a time (the session's lock is held around every call), because
OpenSSL does not allow two threads inside one connection at once.
"""

from __future__ import annotations

import ssl

# The first byte of every TLS connection: a handshake record.
HANDSHAKE = 0x16

# Plaintext fed to one SSL write: the largest TLS record.
RECORD = 16 * 1024


class TLSLayer:
    """One connection's TLS: ``receive`` raw bytes, ``encrypt`` plaintext, send ``outgoing()``."""

    def __init__(self, context: ssl.SSLContext) -> None:
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._ssl = context.wrap_bio(self._incoming, self._outgoing, server_side=True)
        self.established = False

    def receive(self, raw: bytes) -> tuple[bytes, bool]:
        """Raw bytes from the socket (``b""`` at its end) -> (plaintext, ended).

        Raises ssl.SSLError when the peer's bytes are not TLS we accept.
        """
        if raw:
            self._incoming.write(raw)
        else:
            self._incoming.write_eof()
        if not self.established:
            try:
                self._ssl.do_handshake()
            except ssl.SSLWantReadError:
                return b"", not raw
            self.established = True
        chunks = []
        while True:
            try:
                data = self._ssl.read(65536)
            except ssl.SSLWantReadError:
                return b"".join(chunks), False
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                return b"".join(chunks), True
            if not data:
                return b"".join(chunks), True
            chunks.append(data)

    def encrypt(self, plaintext: bytes) -> None:
        """Turn plaintext into records waiting in ``outgoing()``."""
        view = memoryview(plaintext)
        for start in range(0, len(view), RECORD):
            self._ssl.write(view[start : start + RECORD])

    def outgoing(self) -> bytes:
        """Raw bytes waiting to go to the socket (handshake, records, close_notify)."""
        return self._outgoing.read()

    def close(self) -> None:
        """Queue a close_notify, so the peer sees a clean end rather than a truncation."""
        if not self.established:
            return
        try:
            self._ssl.unwrap()
        except ssl.SSLError:
            pass  # its close_notify is written before it waits for the peer's
