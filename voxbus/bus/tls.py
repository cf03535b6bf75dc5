"""TLS for the bus: a fleet's own certificate authority, the NATS servers' certificates, and the
clients' trust in them.

``voxbus certs`` (or ``voxbus up`` with ``nats_tls = true``) makes, once, in a folder kept 0700:
a CA (``ca.pem``; its key ``ca-key.pem`` never leaves that folder) and a server certificate for the
given host names and addresses (``server.pem``, ``server-key.pem``), ECDSA P-256, with the
``cryptography`` package (pyca's, the one Python's TLS tooling is built on). nats-server serves
with them; every client trusts only that CA, carried in its credentials file (``ca_pem``), so a
credential issued for a machine is all it needs to reach the bus privately.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_DAYS = 3650
# a CA signs certificates and revocation lists, nothing else
CA_KEY_USAGE = x509.KeyUsage(
    digital_signature=False, content_commitment=False, key_encipherment=False, data_encipherment=False,
    key_agreement=False, key_cert_sign=True, crl_sign=True, encipher_only=False, decipher_only=False,
)  # fmt: skip
SERVER_DAYS = 825  # the longest a public CA may issue; a fleet renews with `voxbus certs --renew`


def _write(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "voxbus"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _alt_names(hosts: list[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


def make_fleet_certs(folder: Path, hosts: list[str], renew: bool = False) -> Path:
    """The CA and the server certificate in ``folder`` (made if missing, or the server's anew with
    ``renew``); returns the folder. The CA is kept across renewals: clients keep trusting it."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(folder, 0o700)
    now = datetime.datetime.now(datetime.UTC)
    if not (folder / "ca.pem").is_file():
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca = (
            x509.CertificateBuilder()
            .subject_name(_name("voxbus fleet CA"))
            .issuer_name(_name("voxbus fleet CA"))
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
            )
            .sign(ca_key, hashes.SHA256())
        )
        _write(folder / "ca-key.pem", _key_pem(ca_key))
        _write(folder / "ca.pem", ca.public_bytes(serialization.Encoding.PEM))
        renew = True
    if renew or not (folder / "server.pem").is_file():
        ca = x509.load_pem_x509_certificate((folder / "ca.pem").read_bytes())
        ca_key = serialization.load_pem_private_key((folder / "ca-key.pem").read_bytes(), None)
        key = ec.generate_private_key(ec.SECP256R1())
        server = (
            x509.CertificateBuilder()
            .subject_name(_name(hosts[0]))
            .issuer_name(ca.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=SERVER_DAYS))
            .add_extension(x509.SubjectAlternativeName(_alt_names(hosts)), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
        )
        _write(folder / "server-key.pem", _key_pem(key))
        _write(folder / "server.pem", server.public_bytes(serialization.Encoding.PEM))
    return folder


def server_tls_block(folder: Path) -> str:
    """nats-server's ``tls`` block: with it, the server speaks TLS only."""
    return (
        "tls: {\n"
        f'  cert_file: "{folder / "server.pem"}"\n'
        f'  key_file: "{folder / "server-key.pem"}"\n'
        "  timeout: 2\n"
        "}\n"
    )


def client_context(ca_pem: str) -> ssl.SSLContext:
    """A client's TLS: TLS 1.2 or later, the server's name checked, only the fleet's CA trusted."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cadata=ca_pem)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context
