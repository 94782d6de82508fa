"""``labchat doctor``: walk the path a join takes and say, in plain words, where it breaks.

``doctor("HOST:PORT")`` looks the name up, says whether it is this machine,
connects, speaks TLS if asked, reads the banner, says hello with a throwaway
nick and leaves at once. It returns a ``Report``: one ``Step`` per stage, each
ok, a problem or a hint, with what to try; ``labchat doctor`` prints the same
lines. The rules it keeps: it sends traffic to the given host only (this
machine's own addresses are found without sending a packet), every wait has the
timeout, a room it joins is left as it was (it says ``/quit`` and waits for the
server to hang up), and every failure becomes words, never a traceback.
"""

from __future__ import annotations

import errno
import html
import random
import socket
import ssl
import time
from dataclasses import dataclass

from . import tls
from .conversation import CLOSED, NEED_DATA, Banner, ClientConversation, Refused
from .hostaddr import hostport, ip_of, own_addresses
from .joining import TOKEN_ENV, parse_address
from .protocol import DEFAULT_PORT, Event, ProtocolError
from .text import safe

__all__ = ["Report", "Step", "doctor"]

# What a line of a report starts with, by the step's ``ok``.
MARKS = {True: "ok", False: "problem", None: "hint"}

# A request any web server answers, sent only when the service said nothing to a blank line.
HTTP_PROBE = "HEAD / HTTP/1.0\r\nHost: {host}\r\n\r\n"

# Where the path ends when a step finds a problem.
_TIMEOUT = object()


@dataclass(frozen=True)
class Step:
    """One stage of the path: ``ok`` True (fine), False (the problem) or None (a hint), in words."""

    name: str
    ok: bool | None
    text: str
    hint: str = ""

    def lines(self) -> list[str]:
        """The step as report lines: its mark, its name and its words, then what to try."""
        out = [f"{MARKS[self.ok]:<8} {self.name:<8} {self.text}"]
        if self.hint:
            out.append(f"{'hint':<8} {'':<8} {self.hint}")
        return out


@dataclass(frozen=True)
class Report:
    """What ``doctor()`` found: ``ok`` only when a join works; ``steps`` in the order they ran."""

    address: str
    ok: bool
    steps: tuple[Step, ...]
    verdict: str

    @property
    def problem(self) -> Step | None:
        """The step where the path broke, or None."""
        return next((step for step in self.steps if step.ok is False), None)

    def __str__(self) -> str:
        lines = [f"labchat doctor {self.address}"]
        for step in self.steps:
            lines += step.lines()
        lines.append(self.verdict)
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        colours = {True: "#1a7f37", False: "#cf222e", None: "#6e7781"}
        rows = []
        for step in self.steps:
            hint = f"<br><i>{html.escape(step.hint)}</i>" if step.hint else ""
            rows.append(
                f'<tr><td style="color:{colours[step.ok]}"><b>{MARKS[step.ok]}</b></td>'
                f"<td>{html.escape(step.name)}</td><td>{html.escape(step.text)}{hint}</td></tr>"
            )
        return (
            f"<div><b>labchat doctor {html.escape(self.address)}</b>"
            f"<table>{''.join(rows)}</table><p>{html.escape(self.verdict)}</p></div>"
        )


def doctor(
    address: str | tuple[str, int],
    *,
    tls: bool = False,
    cafile: str | None = None,
    token: str | None = None,
    nick: str | None = None,
    timeout: float = 5.0,
) -> Report:
    """Walk the path a join to ``address`` takes (``HOST:PORT`` or ``(host, port)``); say where it breaks.

    ``cafile`` implies ``tls``. ``nick`` defaults to a throwaway ``doctor-NNNN``;
    ``timeout`` is the seconds each step may wait. Raises ValueError only for an
    address that cannot be read or a timeout that is not positive.
    """
    host, port = parse_address(address) if isinstance(address, str) else address
    if not timeout > 0:
        raise ValueError(f"timeout must be positive, not {timeout!r}")
    checkup = _Checkup(
        host,
        int(port),
        tls=tls or cafile is not None,
        cafile=cafile,
        token=token,
        nick=nick or f"doctor-{random.randrange(1000, 10000)}",
        timeout=float(timeout),
    )
    return checkup.run()


class _Stop(Exception):
    """The path broke at a step already written down."""


class _Checkup:
    """One walk along the path, writing down a Step at each stage."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        tls: bool,
        cafile: str | None,
        token: str | None,
        nick: str,
        timeout: float,
    ) -> None:
        self.host, self.port = host, port
        self.where = hostport(host, port)
        self.tls, self.cafile, self.token, self.nick = tls, cafile, token, nick
        self.timeout = timeout
        self.steps: list[Step] = []
        self.mine = own_addresses()
        self.joined = False

    def note(self, name: str, ok: bool | None, text: str, hint: str = "") -> None:
        self.steps.append(Step(name, ok, text, hint))

    def fail(self, name: str, text: str, hint: str = "") -> _Stop:
        self.note(name, False, text, hint)
        return _Stop()

    # -- the walk -----------------------------------------------------------------------

    def run(self) -> Report:
        try:
            infos = self.resolve()
            self.place(infos)
            sock, sockaddr = self.connect(infos)
            peer = _Peer(sock)
            try:
                peer = self.secure(peer, sockaddr)
                self.greet(peer, sockaddr)
                self.join(peer)
            finally:
                peer.sock.close()
        except _Stop:
            pass
        self.here()
        shown = self.where + (" (with TLS)" if self.tls else "")
        if self.joined:
            verdict = f"result: a join works: labchat join {self.join_command()}"
        else:
            broke = next((step for step in self.steps if step.ok is False), None)
            verdict = "result: a join would not work" + (f": {broke.text}" if broke else "")
        return Report(address=shown, ok=self.joined, steps=tuple(self.steps), verdict=verdict)

    def join_command(self) -> str:
        words = [self.where, "--nick", "NAME"]
        if self.tls:
            words.append("--tls")
        if self.cafile:
            words += ["--cafile", self.cafile]
        if self.token:
            words += ["--token", "TOKEN"]
        return " ".join(words)

    def resolve(self) -> list[tuple]:
        """Does the name resolve, and to what?"""
        try:
            infos = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc)
            raise self.fail(
                "resolve",
                f"cannot resolve {safe(self.host)}: {reason}",
                "check the spelling, or use the host's IP address",
            ) from None
        addresses = ", ".join(dict.fromkeys(info[4][0] for info in infos))
        if ip_of(self.host) is not None:
            self.note("resolve", True, f"{self.host} is an IP address: nothing to look up")
        else:
            self.note("resolve", True, f"{self.host} is {addresses}")
        return infos

    def place(self, infos: list[tuple]) -> None:
        """Is it this machine (loopback), or another one?"""
        ips = [ip for ip in (ip_of(info[4][0]) for info in infos) if ip is not None]
        if ips and all(ip.is_loopback for ip in ips):
            text = "this machine (loopback): only programs running here can connect by this address"
        elif any(str(ip) in self.mine for ip in ips):
            text = "this machine, by its network address: others can use it too"
        elif ips and ips[0].is_link_local:
            text = "another machine on this network link (a link-local address)"
        elif ips and ips[0].is_private:
            text = "another machine, on a local network"
        else:
            text = "another machine, across the internet"
        self.note("where", True, text)

    def connect(self, infos: list[tuple]) -> tuple[socket.socket, tuple]:
        """TCP: does anything accept the connection?"""
        failures: list[tuple[int, str, OSError]] = []
        for family, kind, proto, _, sockaddr in infos:
            sock = socket.socket(family, kind, proto)
            sock.settimeout(self.timeout)
            try:
                sock.connect(sockaddr)
            except OSError as exc:
                sock.close()
                failures.append((_rank(exc), sockaddr[0], exc))
                continue
            self.note("connect", True, f"connected to {hostport(sockaddr[0], self.port)}")
            return sock, sockaddr
        _, ip, exc = min(failures, key=lambda failure: failure[0])
        where = hostport(ip, self.port)
        local = all(ip.is_loopback for ip in (ip_of(f[1]) for f in failures) if ip is not None)
        if isinstance(exc, ConnectionRefusedError):
            if local:
                hint = "check the port, and that the room runs here (labchat serve, or a host panel)"
            else:
                hint = (
                    "check the port, and that the room is running there; a room listening on 127.0.0.1 "
                    "is out of reach of other machines: the host starts it with --host 0.0.0.0"
                )
            raise self.fail("connect", f"{where} refused the connection: nothing is listening there", hint)
        if isinstance(exc, TimeoutError):
            raise self.fail(
                "connect",
                f"no answer from {where} within {self.timeout:g} s",
                "a firewall may drop it, the address may be wrong, or the Wi-Fi keeps clients apart "
                "(client isolation): check the address, try a cable or a hotspot",
            )
        reason = exc.strerror or str(exc)
        if exc.errno in _UNREACHABLE:
            raise self.fail(
                "connect",
                f"cannot reach {where}: {reason}",
                "the network is down, or this machine is not on the host's network: check the Wi-Fi or cable",
            )
        raise self.fail("connect", f"cannot connect to {where}: {reason}")

    def secure(self, peer: _Peer, sockaddr: tuple) -> _Peer:
        """TLS, when asked for: does the handshake work, and is the certificate trusted?"""
        if not self.tls:
            return peer
        try:
            context = tls.client_context(self.cafile)
        except (OSError, ssl.SSLError) as exc:
            reason = getattr(exc, "strerror", None) or getattr(exc, "reason", None) or str(exc)
            raise self.fail(
                "tls",
                f"cannot use {self.cafile} as a certificate: {reason}",
                "give the certificate file the host shares (labchat-cert.pem), not the key",
            ) from None
        try:
            secured = context.wrap_socket(peer.sock, server_hostname=self.host)
        except ssl.SSLCertVerificationError as exc:
            raise self.untrusted(exc) from None
        except TimeoutError:
            raise self.fail(
                "tls",
                f"no TLS handshake within {self.timeout:g} s",
                "is this a TLS room? Without --tls the doctor says whether it is",
            ) from None
        except OSError as exc:  # ssl.SSLError included: it is not TLS we can speak
            if self.speaks_plain(sockaddr):
                raise self.fail(
                    "tls",
                    "this room does not speak TLS: the server spoke plain text first",
                    "drop --tls" + (" and --cafile" if self.cafile else ""),
                ) from None
            reason = getattr(exc, "reason", None) or exc.strerror or str(exc)
            raise self.fail(
                "tls",
                f"the TLS handshake failed: {reason}",
                "check the port, and ask the host whether the room uses TLS",
            ) from None
        self.note("tls", True, f"{secured.version()} with a certificate this machine trusts")
        return _Peer(secured)

    def untrusted(self, exc: ssl.SSLCertVerificationError) -> _Stop:
        reason = exc.verify_message or exc.reason or str(exc)
        compare = "compare labchat.tls.fingerprint(FILE) with the host's"
        if exc.verify_code in (62, 64):  # X509_V_ERR_HOSTNAME_MISMATCH, X509_V_ERR_IP_ADDRESS_MISMATCH
            return self.fail(
                "tls",
                f"the server's certificate is not made for {self.host}",
                "join by a name or address the certificate covers, or the host makes one that covers it "
                f"(labchat cert --hosts {self.host})",
            )
        if exc.verify_code == 10:  # X509_V_ERR_CERT_HAS_EXPIRED
            return self.fail(
                "tls",
                "the server's certificate has expired",
                "the host makes a new one (labchat cert --force)",
            )
        if exc.verify_code == 9:  # X509_V_ERR_CERT_NOT_YET_VALID
            return self.fail(
                "tls", "the server's certificate is not valid yet", "check this machine's date and time"
            )
        if self.cafile:
            return self.fail(
                "tls",
                f"certificate verification failed: {reason}: {self.cafile} is not the room's certificate",
                f"get the current certificate from the host; {compare}",
            )
        return self.fail(
            "tls",
            f"certificate verification failed: {reason}",
            f"give the class certificate with --cafile FILE (the host shares it); {compare}",
        )

    def speaks_plain(self, sockaddr: tuple) -> bool:
        """Does a plain connection hear a labchat banner at once (so the room is not TLS)?"""
        try:
            with socket.socket(_family(sockaddr), socket.SOCK_STREAM) as sock:
                sock.settimeout(self.timeout)
                sock.connect(sockaddr)
                first = _Peer(sock).next(self.timeout)
        except (OSError, ProtocolError):
            return False
        return isinstance(first, Banner)

    def greet(self, peer: _Peer, sockaddr: tuple) -> None:
        """The banner: is it labchat, does it let us in, or is it some other service?"""
        try:
            first = peer.next(self.timeout)
            if first is _TIMEOUT:
                # Nothing yet. A TLS room answers any plain byte in words; a web server waits for
                # a request; a blank line is no nick, so even a late labchat room joins nobody.
                peer.send(b"\r\n", self.timeout)
                first = peer.next(self.timeout)
                if isinstance(first, Banner):
                    raise self.fail(
                        "server",
                        f"the labchat room took more than {self.timeout:g} s to greet",
                        "the network is very slow: try a longer --timeout",
                    )
        except ProtocolError:
            first = None  # the first line is not labchat's: look at what it said
        except OSError as exc:
            raise self.fail(
                "server", f"the connection broke before the banner: {exc.strerror or exc}"
            ) from None
        if isinstance(first, Banner):
            needs = " (it needs a token)" if "needs a token" in first.text else ""
            self.note("server", True, f"a labchat room answers{needs}")
            return
        if isinstance(first, Refused):
            text, hint = self.refusal(first)
            raise self.fail("server", text, hint)
        said = bytes(peer.raw)
        if not said and self.web_server(sockaddr, peer):
            said = b"HTTP/"
        raise self.fail("server", *self.stranger(said, hung_up=first is CLOSED))

    def web_server(self, sockaddr: tuple, peer: _Peer) -> bool:
        """Does the service answer an HTTP request (on a new connection)?"""
        sock = socket.socket(_family(sockaddr), socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            sock.connect(sockaddr)
            sock = peer.like(sock, self.host)
            probe = _Peer(sock)
            probe.send(HTTP_PROBE.format(host=self.host).encode("ascii"), self.timeout)
            probe.next(self.timeout)
        except ProtocolError:
            pass  # not labchat's: just what we hoped for
        except OSError:
            return False
        finally:
            sock.close()
        return bytes(probe.raw).startswith(b"HTTP/")

    def stranger(self, said: bytes, *, hung_up: bool) -> tuple[str, str]:
        """Words for a service that is not labchat, from what it said (maybe nothing)."""
        check = f"check the port: a labchat room listens on {DEFAULT_PORT} unless told otherwise"
        if said.startswith(b"HTTP/"):
            return "this is a web server, not labchat", f"{check} (Jupyter itself is a web server)"
        if said[:1] in (b"\x15", b"\x16"):
            return "this service speaks TLS but is not a labchat room (a TLS room answers in words)", check
        if not said and hung_up:
            return (
                "this service hung up without a word: it is not labchat (a labchat room greets at once)",
                check,
            )
        if not said:
            return f"this service said nothing within {self.timeout:g} s: it is not labchat", check
        shown = safe(said.split(b"\n")[0][:60].decode("utf-8", "replace").rstrip("\r"))
        return f"this is not labchat: it said {shown!r}", check

    def join(self, peer: _Peer) -> None:
        """A real hello: is the token right, the nick free, the room open? Then leave at once."""
        try:
            peer.send(peer.conversation.hello(self.nick, self.token), self.timeout)
            while True:
                answer = peer.next(self.timeout)
                if isinstance(answer, Event) and answer.kind == "welcome":
                    break
                if isinstance(answer, Refused):
                    raise self.fail("join", *self.refusal(answer))
                if answer is CLOSED:
                    raise self.fail("join", "the server hung up without answering the hello")
                if answer is _TIMEOUT:
                    raise self.fail("join", f"no answer to the hello within {self.timeout:g} s")
        except ProtocolError as exc:
            raise self.fail("join", f"the server broke the protocol: {safe(str(exc))}") from None
        except OSError as exc:
            raise self.fail("join", f"the connection broke during the hello: {exc.strerror or exc}") from None
        self.joined = True
        self.note("join", True, f"the room welcomed {self.nick}, and the doctor left again")
        try:  # leave, and wait for the server to hang up, so the room sees a clean goodbye
            peer.send(peer.conversation.say("/quit"), self.timeout)
            while peer.next(self.timeout) not in (CLOSED, _TIMEOUT):
                pass
        except (OSError, ProtocolError):
            pass  # the join worked; how the goodbye went is the server's business

    def refusal(self, refused: Refused) -> tuple[str, str]:
        """A refusal's code in plain words, with what to try."""
        code, said = refused.code, safe(refused.text)
        if code == "tls-required":
            return (
                "this room needs TLS",
                "add --tls (and --cafile FILE, the class certificate the host shares)",
            )
        if code == "server-full":
            return "the room is full", "try again later, or the host allows more (--max-clients N)"
        if code == "busy":
            return "too many connections are waiting to join", "try again in a moment"
        if code == "bad-token" and not self.token:
            return (
                "this room needs a token, and none was given",
                f"give it with --token T (or set {TOKEN_ENV}); the host knows it",
            )
        if code == "bad-token":
            return "the room refused the token", "check the token with the host: every letter counts"
        if code == "nick-taken":
            return f"the room refused the nick: {said}", "pick another with --nick"
        if code == "nick-invalid":
            return (
                f"the room refused the nick: {said}",
                "a nick starts with a letter, then letters, digits, _ - . (up to 20)",
            )
        if code == "bad-version":
            return f"the room speaks another version: {said}", "use the same labchat version as the host"
        return f"the room refused the join ({code}): {said}", ""

    def here(self) -> None:
        """This machine's own addresses: what a host gives the class."""
        if self.mine:
            shown = ", ".join(self.mine)
            text = f"this machine is {shown}: others reach a room here by one of these (--host 0.0.0.0)"
        else:
            text = "this machine has no network address but loopback: no other machine can reach a room here"
        self.note("here", None, text)


# Errors that mean the network, not the host, is in the way.
_UNREACHABLE = frozenset({errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ENETDOWN, errno.EHOSTDOWN})


def _rank(exc: OSError) -> int:
    """Which of several addresses' failures tells the most: refused, then silence, then no route."""
    if isinstance(exc, ConnectionRefusedError):
        return 0
    if isinstance(exc, TimeoutError):
        return 1
    return 2 if exc.errno in _UNREACHABLE else 3


def _family(sockaddr: tuple) -> socket.AddressFamily:
    return socket.AF_INET6 if len(sockaddr) == 4 else socket.AF_INET


class _Peer:
    """One connection (plain or TLS), read through a client conversation against deadlines."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.conversation = ClientConversation()
        self.raw = bytearray()  # the first bytes the service said, to recognise what it is

    def like(self, sock: socket.socket, host: str) -> socket.socket:
        """Another connection to the same service, with TLS if this one has it."""
        if isinstance(self.sock, ssl.SSLSocket):
            return self.sock.context.wrap_socket(sock, server_hostname=host)
        return sock

    def send(self, data: bytes, timeout: float) -> None:
        self.sock.settimeout(timeout)
        self.sock.sendall(data)

    def next(self, timeout: float) -> object:
        """Banner, Refused, an Event or CLOSED; _TIMEOUT if nothing whole comes in time.

        Raises ProtocolError when what came is not labchat (``raw`` holds it).
        """
        deadline = time.monotonic() + timeout
        while True:
            item = self.conversation.next_event()
            if item is not NEED_DATA:
                return item
            left = deadline - time.monotonic()
            if left <= 0:
                return _TIMEOUT
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                return _TIMEOUT
            except ConnectionResetError:
                data = b""
            if len(self.raw) < 256:
                self.raw += data[: 256 - len(self.raw)]
            self.conversation.receive_data(data)
