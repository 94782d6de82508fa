"""TLS for labchat with the standard ``ssl`` module, and a class certificate maker.

``server_context(cert, key)`` and ``client_context(cafile)`` build the contexts
that ``ChatServer(ssl_context=...)`` and ``ChatClient(ssl_context=...)`` take.
``make_certificate()`` writes a self-signed certificate and key, so an
instructor can run a TLS room without knowing openssl; it needs the
``cryptography`` package (``pip install labchat[tls]``). Clients then verify
the server against that same certificate file (``--cafile``).

The rule this module keeps: clients always verify. There is no switch here that
turns certificate or host name checking off; a self-signed class certificate is
trusted by handing it to the client as its ``cafile``, and ``fingerprint()``
lets people compare it, out loud or on a slide, with the one the instructor made.
The one connection that cannot verify a name is a host's own chat with the server
it has just started in the same process: ``own_server_context()`` is for that
loopback connection only, and says so.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import os
import re
import socket
import ssl
from pathlib import Path

from .hostaddr import ip_of, own_addresses

# One label of a DNS name: letters, digits and inner hyphens (an underscore allowed, as some
# machines' names have one), at most 63 characters.
_LABEL = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?")


def server_context(cert: str | Path, key: str | Path) -> ssl.SSLContext:
    """A server-side context for the given certificate chain and private key."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(str(cert), str(key))
    return context


def client_context(cafile: str | Path | None = None) -> ssl.SSLContext:
    """A client-side context that verifies the server (against ``cafile`` if given)."""
    context = ssl.create_default_context(cafile=str(cafile) if cafile else None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def own_server_context(cert: str | Path | None = None) -> ssl.SSLContext:
    """TLS for a host's own loopback connection to the server it just started in this process.

    With the server's ``cert`` the chain is checked against it; the host name is not,
    since the address is loopback and the server is ours by construction. Without one
    (only a server context was given, so there is no certificate to check against),
    nothing is checked: the connection goes from this process to its own listening socket.
    """
    if cert is not None:
        context = client_context(cert)
        context.check_hostname = False
        return context
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def make_certificate(
    cert: str | Path,
    key: str | Path,
    hosts: list[str] | tuple[str, ...] = ("localhost", "127.0.0.1"),
    days: int = 365,
) -> None:
    """Write a self-signed certificate for ``hosts`` (names or IP addresses) and its key."""
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID
    except ImportError:
        raise RuntimeError(
            "making a certificate needs the 'cryptography' package: pip install 'labchat[tls]'"
        ) from None
    if not hosts:
        raise ValueError("name at least one host the certificate is for")
    for host in hosts:
        if not is_host_name(host):
            raise ValueError(f"{host!r} is neither an IP address nor a host name")
    if Path(cert).resolve() == Path(key).resolve():
        raise ValueError(f"the certificate and the key must be two files, not both {cert}")
    private_key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"labchat {hosts[0]}")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(private_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(private_key, hashes.SHA256())
    )
    key_bytes = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    # Both are written beside their places first, then moved in: a failure leaves neither
    # half of a pair, and a key that replaces an old one is readable by its owner only,
    # whatever the old file's mode was.
    written = [_written(key, key_bytes, 0o600)]
    try:
        written.append(_written(cert, certificate.public_bytes(serialization.Encoding.PEM), 0o644))
        for temporary, path in written:
            os.replace(temporary, path)
    finally:
        for temporary, _ in written:
            temporary.unlink(missing_ok=True)


def _written(path: str | Path, data: bytes, mode: int) -> tuple[Path, Path]:
    """``data`` in a new file beside ``path`` with ``mode``: (that file, ``path``).

    An OSError names ``path``, not the temporary file.
    """
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.new")
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
        except OSError:
            temporary.unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, str(path)) from None
    return temporary, path


def is_host_name(text: str) -> bool:
    """Whether ``text`` can go in a certificate: an IP address, or a DNS name (``*.`` allowed first)."""
    if ip_of(text) is not None:
        return True
    name = text[2:] if text.startswith("*.") else text
    labels = name.rstrip(".").split(".")
    return 0 < len(name) <= 253 and all(_LABEL.fullmatch(label) for label in labels)


def class_hosts() -> list[str]:
    """Names and addresses this machine is known by: what a class certificate should cover.

    ``localhost`` and ``127.0.0.1``, the machine's host name, then its own network
    addresses (``hostaddr.own_addresses``: every address ``labchat serve`` may print in
    its join line). Nothing is sent on the network to find them.
    """
    names = [socket.gethostname(), socket.getfqdn(), *own_addresses()]
    return list(dict.fromkeys(["localhost", "127.0.0.1", *filter(is_host_name, names)]))


def fingerprint(cert: str | Path) -> str:
    """The SHA-256 fingerprint of a PEM certificate, as colon-separated hex pairs."""
    der = ssl.PEM_cert_to_DER_cert(Path(cert).read_text(encoding="ascii"))
    digest = hashlib.sha256(der).hexdigest().upper()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))
