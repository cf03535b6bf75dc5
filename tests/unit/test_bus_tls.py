"""The fleet's certificates: made once, private, the server's names in it, renewed under the same
CA; a credential carries the CA once TLS is on, with the same password."""

from __future__ import annotations

import ipaddress
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from voxbus.bus.auth import Credentials, issue
from voxbus.bus.tls import client_context, make_fleet_certs


def test_the_ca_signs_a_server_certificate_for_the_given_names(tmp_path: Path) -> None:
    folder = make_fleet_certs(tmp_path / "tls", ["nats1.example", "10.0.0.5"])
    assert folder.stat().st_mode & 0o777 == 0o700
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in folder.iterdir())
    ca = x509.load_pem_x509_certificate((folder / "ca.pem").read_bytes())
    server = x509.load_pem_x509_certificate((folder / "server.pem").read_bytes())
    assert server.issuer == ca.subject
    ca.public_key().verify(
        server.signature, server.tbs_certificate_bytes, ec.ECDSA(server.signature_hash_algorithm)
    )  # type: ignore[call-arg,arg-type]
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["nats1.example"]
    assert names.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("10.0.0.5")]
    assert isinstance(client_context((folder / "ca.pem").read_text()), ssl.SSLContext)


def test_renewal_keeps_the_ca_and_a_credential_gains_it_with_its_password(tmp_path: Path) -> None:
    folder = make_fleet_certs(tmp_path / "tls", ["127.0.0.1"])
    ca, server = (folder / "ca.pem").read_bytes(), (folder / "server.pem").read_bytes()
    make_fleet_certs(folder, ["127.0.0.1"])
    assert (folder / "server.pem").read_bytes() == server  # kept when nothing is asked
    make_fleet_certs(folder, ["127.0.0.1"], renew=True)
    assert (folder / "ca.pem").read_bytes() == ca and (folder / "server.pem").read_bytes() != server
    path = issue(tmp_path / "auth", "agent", "agent")
    before = Credentials.load(path)
    assert before.ca_pem is None
    issue(tmp_path / "auth", "agent", "agent", ca_pem=ca.decode())
    after = Credentials.load(path)
    assert after.ca_pem == ca.decode() and after.password == before.password
