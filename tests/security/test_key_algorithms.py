"""The key types a bank or the centre may use: ECDSA P-256 (the default), RSA-SHA256 and
Ed25519 (DESIGN §3). For each, ``isogw keys init --algorithm`` keys carry mutual TLS 1.3 and
sign messages that an independent implementation verifies; a signature must declare the
method of the sender's pinned key, and keys the scheme does not use are refused up front."""

from __future__ import annotations

import asyncio
import base64
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from lxml import etree

from gateway.security.keys import KEY_ALGORITHMS, KeyStore
from gateway.security.signatures import (
    DSIG,
    SignatureProblemError,
    SignatureVerifier,
    XmlDsigSigner,
    signature_method,
    signer_from_files,
)
from gateway.start_errors import KeyFileError
from gateway.transport.tls import client_context, peer_pin, server_context
from tests.conftest import SAMPLES, self_signed

CENTRE, SENDER = "999999999999", "301290000007"
NOW = datetime.now(UTC)
MESSAGE = (SAMPLES / "pacs.008.001.08" / "valid-C100-realtime-credit.xml").read_bytes()
METHODS = {
    "ecdsa-p256": b'Algorithm="http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"',
    "rsa-2048": b'Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"',
    "ed25519": b'Algorithm="http://www.w3.org/2021/04/xmldsig-more#eddsa-ed25519"',
}
"""The SignatureMethod each key type declares (RFC 9231 names Ed25519's)."""


@dataclass(frozen=True)
class Keys:
    algorithm: str
    store: KeyStore
    signed: bytes
    """The C100 sample signed with the participant's key."""


@pytest.fixture(scope="module", params=sorted(KEY_ALGORITHMS))
def keys(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Keys:
    store = KeyStore(tmp_path_factory.mktemp("state"))
    store.initialise(CENTRE, [SENDER], NOW, request.param)
    signed = signer_from_files(store.participant(SENDER)).sign(MESSAGE)
    return Keys(request.param, store, signed)


def _verifier(keys: KeyStore) -> SignatureVerifier:
    anchor = x509.load_pem_x509_certificate(keys.ca_path.read_bytes())
    return SignatureVerifier({SENDER: keys.participant(SENDER).certificate()}, anchor)


def test_a_message_signed_with_each_key_type_verifies(keys: Keys) -> None:
    assert METHODS[keys.algorithm] in keys.signed
    root = _verifier(keys.store).verify(keys.signed, SENDER, NOW)
    assert root.tag == "{urn:isogw:xsd:envelope.001.01}Message"
    altered = keys.signed.replace(b'Ccy="CNY">2000.00<', b'Ccy="CNY">2000.01<', 1)
    with pytest.raises(SignatureProblemError) as problem:
        _verifier(keys.store).verify(altered, SENDER, NOW)
    assert problem.value.code == "DS01"


def test_an_independent_implementation_verifies_each_key_type(keys: Keys, tmp_path: Path) -> None:
    """xmlsec1 for ECDSA and RSA (the whole signature, against the development CA); the
    Debian xmlsec1 (1.2) predates Ed25519, so there the ``openssl`` command checks the
    signature value over the canonical SignedInfo with the certificate's public key."""
    path = tmp_path / "signed.xml"
    path.write_bytes(keys.signed)
    if keys.algorithm != "ed25519":
        completed = subprocess.run(
            ["xmlsec1", "--verify", "--trusted-pem", str(keys.store.ca_path), str(path)],
            capture_output=True,
            text=True,
        )
        assert completed.returncode == 0, completed.stderr
        return
    root = etree.fromstring(keys.signed)
    info = root.find(f".//{{{DSIG}}}SignedInfo")
    assert info is not None
    (tmp_path / "info").write_bytes(etree.tostring(info, method="c14n", exclusive=True))
    value = root.findtext(f".//{{{DSIG}}}SignatureValue") or ""
    (tmp_path / "value").write_bytes(base64.b64decode(value))
    public = keys.store.participant(SENDER).certificate().public_key()
    (tmp_path / "public.pem").write_bytes(
        public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    command = ["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", str(tmp_path / "public.pem")]
    command += ["-rawin", "-in", str(tmp_path / "info"), "-sigfile", str(tmp_path / "value")]
    completed = subprocess.run(command, capture_output=True, text=True)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "Signature Verified Successfully" in completed.stdout
    (tmp_path / "info").write_bytes(etree.tostring(info, method="c14n", exclusive=True) + b" ")
    assert subprocess.run(command, capture_output=True).returncode != 0


def test_mutual_tls_works_with_each_key_type(keys: Keys) -> None:
    """The gateway's server context and a participant's client context, keys of the chosen
    type, agree on TLS 1.3 and the gateway sees the participant's pin."""
    seen: list[str | None] = []
    store = keys.store

    async def handshake() -> str:
        async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            seen.append(peer_pin(writer.get_extra_info("ssl_object")))
            writer.close()

        server = await asyncio.start_server(on_client, "127.0.0.1", 0, ssl=server_context(store))
        port = server.sockets[0].getsockname()[1]
        context = client_context(store, store.participant(SENDER))
        _, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=context, server_hostname="localhost"
        )
        version = writer.get_extra_info("ssl_object").version()
        writer.close()
        await asyncio.sleep(0)
        server.close()
        await server.wait_closed()
        return str(version)

    assert asyncio.run(handshake()) == "TLSv1.3"
    assert seen == [store.pins([SENDER])[SENDER]]


@pytest.mark.parametrize("declared", sorted(METHODS))
def test_a_signature_must_declare_the_method_of_the_pinned_key(keys: Keys, declared: str) -> None:
    """A message declaring another method than the sender's key makes is DS0B, before any
    cryptography (no algorithm confusion)."""
    if declared == keys.algorithm:
        _verifier(keys.store).verify(keys.signed, SENDER, NOW)
        return
    forged = keys.signed.replace(METHODS[keys.algorithm], METHODS[declared], 1)
    assert forged != keys.signed
    with pytest.raises(SignatureProblemError) as problem:
        _verifier(keys.store).verify(forged, SENDER, NOW)
    assert problem.value.code == "DS0B"
    assert "does not fit 301290000007's pinned key" in problem.value.text


WEAK_KEYS = {
    "RSA 1024": (
        lambda: rsa.generate_private_key(public_exponent=65537, key_size=1024),
        "an RSA key must have at least 2048 bits, not 1024",
    ),
    "ECDSA P-384": (
        lambda: ec.generate_private_key(ec.SECP384R1()),
        "an ECDSA key must be on curve P-256, not secp384r1",
    ),
}


@pytest.mark.parametrize("kind", sorted(WEAK_KEYS))
def test_keys_the_scheme_does_not_use_are_refused(kind: str) -> None:
    make, reason = WEAK_KEYS[kind]
    key = make()
    certificate = self_signed(key, SENDER, NOW)
    with pytest.raises(ValueError, match=reason):
        signature_method(certificate.public_key())
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(ValueError, match=reason):
        XmlDsigSigner(key_pem, certificate.public_bytes(serialization.Encoding.PEM))
    with pytest.raises(ValueError, match=reason):
        SignatureVerifier({SENDER: certificate})


def test_a_signer_refuses_a_certificate_of_another_key(tmp_path: Path) -> None:
    keys = KeyStore(tmp_path)
    keys.initialise(CENTRE, [SENDER], NOW)
    pair = keys.participant(SENDER)
    with pytest.raises(KeyFileError, match="not a usable signing key and certificate \\(the "):
        signer_from_files(type(pair)(pair.key_path, keys.gateway.certificate_path))
