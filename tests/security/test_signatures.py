"""XML-DSig: our signatures verify with xmlsec1, xmlsec1's verify with us, and every known
trick is refused with a DS reason code."""

from __future__ import annotations

import hashlib
import re
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from lxml import etree

from gateway.commands.inbound import BusinessHeader
from gateway.composition import Gateway
from gateway.security.keys import KeyStore, read_authorities
from gateway.security.signatures import (
    SignatureProblemError,
    SignatureVerifier,
    XmlDsigSigner,
    signer_from_files,
)
from gateway.start_errors import KeyFileError
from tests.conftest import SAMPLES, self_signed

ICBC, BOC = "102100099996", "104100000004"
NOW = datetime.now(UTC)
MESSAGE = (SAMPLES / "pacs.008.001.08" / "valid-C100-realtime-credit.xml").read_bytes()
SENDER = "301290000007"  # the C100 sample is sent by Bank of Communications


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> KeyStore:
    store = KeyStore(tmp_path_factory.mktemp("state"))
    store.initialise("999999999999", [SENDER, ICBC, BOC], NOW)
    return store


def signer(keys: KeyStore, code: str = SENDER) -> XmlDsigSigner:
    pair = keys.participant(code)
    return XmlDsigSigner(pair.key_path.read_bytes(), pair.certificate_path.read_bytes())


def verifier(keys: KeyStore) -> SignatureVerifier:
    pins = {code: keys.participant(code).certificate() for code in (SENDER, ICBC, BOC)}
    anchor = x509.load_pem_x509_certificate(keys.ca_path.read_bytes())
    return SignatureVerifier(pins, anchor)


def refused(keys: KeyStore, message: bytes, sender: str = SENDER) -> str:
    with pytest.raises(SignatureProblemError) as problem:
        verifier(keys).verify(message, sender, NOW)
    return problem.value.code


def test_signed_message_verifies_and_returns_what_was_signed(keys: KeyStore) -> None:
    signed = signer(keys).sign(MESSAGE)
    assert b"<ds:Signature" in signed and b"ecdsa-sha256" in signed
    root = verifier(keys).verify(signed, SENDER, NOW)
    assert root.tag == "{urn:isogw:xsd:envelope.001.01}Message"


def test_our_signature_verifies_with_xmlsec1(keys: KeyStore, tmp_path: Path) -> None:
    path = tmp_path / "signed.xml"
    path.write_bytes(signer(keys).sign(MESSAGE))
    for options in (
        ["--pubkey-cert-pem", str(keys.participant(SENDER).certificate_path)],
        ["--trusted-pem", str(keys.ca_path)],
    ):
        completed = subprocess.run(
            ["xmlsec1", "--verify", *options, str(path)], capture_output=True, text=True
        )
        assert completed.returncode == 0, completed.stderr
        assert "OK" in completed.stdout + completed.stderr


TEMPLATE = """<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo>
<ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>
<ds:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"/>
<ds:Reference URI=""><ds:Transforms>
<ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/>
<ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/></ds:Transforms>
<ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/><ds:DigestValue/></ds:Reference>
</ds:SignedInfo><ds:SignatureValue/><ds:KeyInfo><ds:X509Data/></ds:KeyInfo></ds:Signature>"""


def test_a_message_signed_by_xmlsec1_verifies_in_the_gateway(
    keys: KeyStore, tmp_path: Path
) -> None:
    verifier(keys).verify(_xmlsec1_signed(keys, tmp_path, ""), SENDER, NOW)


def test_a_tree_the_gateway_built_signs_as_its_serialised_form_does(
    keys: KeyStore, gateway: Gateway, tmp_path: Path
) -> None:
    """The gateway signs the trees its encoder builds without parsing them again: the
    signature must be the one the same message gets from its bytes, and xmlsec1 agrees."""
    document = etree.fromstring(MESSAGE)[-1]
    header = BusinessHeader(
        sender=SENDER,
        receiver="999999999999",
        business_message_id="B301290000007202611230001",
        message_definition="pacs.008.001.08",
        created_at=NOW,
    )
    built = gateway.encoder.envelope_around(header, document)
    from_bytes = signer(keys).sign(etree.tostring(built))
    from_tree = signer(keys).sign_element(built)
    without_values = re.compile(rb"<ds:SignatureValue>[^<]*</ds:SignatureValue>")
    assert without_values.sub(b"", from_tree) == without_values.sub(b"", from_bytes)
    verifier(keys).verify(from_tree, SENDER, NOW)
    path = tmp_path / "built.xml"
    path.write_bytes(from_tree)
    completed = subprocess.run(
        ["xmlsec1", "--verify", "--trusted-pem", str(keys.ca_path), str(path)],
        capture_output=True,
        text=True,
    )
    assert completed.returncode == 0, completed.stderr


def test_stripped_signature_is_ds0a(keys: KeyStore) -> None:
    assert refused(keys, MESSAGE) == "DS0A"


def test_duplicated_signature_is_ds0b(keys: KeyStore) -> None:
    signed = signer(keys).sign(MESSAGE).decode()
    signature = re.search(r"<ds:Signature.*?</ds:Signature>", signed, re.DOTALL).group(0)  # type: ignore[union-attr]
    doubled = signed.replace("</Sgntr>", signature + "</Sgntr>", 1)
    assert refused(keys, doubled.encode()) == "DS0B"


def test_signature_outside_the_header_is_ds0b(keys: KeyStore) -> None:
    signed = signer(keys).sign(MESSAGE).decode()
    signature = re.search(r"<Sgntr>(.*?)</Sgntr>", signed, re.DOTALL).group(1)  # type: ignore[union-attr]
    moved = signed.replace(f"<Sgntr>{signature}</Sgntr>", "").replace(
        "</Message>", signature + "</Message>"
    )
    assert refused(keys, moved.encode()) == "DS0B"


def test_altered_amount_is_ds01(keys: KeyStore) -> None:
    signed = signer(keys).sign(MESSAGE)
    altered = signed.replace(b'Ccy="CNY">2000.00<', b'Ccy="CNY">9000.00<', 1)
    assert altered != signed
    assert refused(keys, altered) == "DS01"


def test_wrapping_a_forged_document_around_the_signed_one_is_refused(keys: KeyStore) -> None:
    signed = signer(keys).sign(MESSAGE).decode()
    forged = signed.replace("<MsgId>", "<MsgId>FORGED", 1)
    assert refused(keys, forged.encode()) == "DS01"


def test_comment_injection_is_ds01(keys: KeyStore) -> None:
    signed = signer(keys).sign(MESSAGE)
    injected = signed.replace(
        b"<MmbId>301290000007</MmbId>", b"<MmbId>3012<!---->90000007</MmbId>", 1
    )
    assert refused(keys, injected) == "DS01"


def test_wrong_key_is_refused(keys: KeyStore) -> None:
    # Signed by ICBC's key but sent as Bank of Communications.
    assert refused(keys, signer(keys, ICBC).sign(MESSAGE)) == "DS0E"


def test_unpinned_sender_is_ds0e(keys: KeyStore) -> None:
    assert refused(keys, signer(keys).sign(MESSAGE), sender="105100000017") == "DS0E"


def test_sha1_is_ds0b(keys: KeyStore) -> None:
    signed = (
        signer(keys)
        .sign(MESSAGE)
        .replace(
            b"http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256",
            b"http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha1",
        )
    )
    with pytest.raises(SignatureProblemError) as problem:
        verifier(keys).verify(signed, SENDER, NOW)
    assert problem.value.code == "DS0B" and "SHA-1" in problem.value.text


def test_expired_certificate_is_ds0d(keys: KeyStore) -> None:
    signed = signer(keys).sign(MESSAGE)
    with pytest.raises(SignatureProblemError) as problem:
        verifier(keys).verify(signed, SENDER, NOW + timedelta(days=900))
    assert problem.value.code == "DS0D"


def test_certificate_from_another_ca_is_ds0f(keys: KeyStore, tmp_path: Path) -> None:
    other = KeyStore(tmp_path)
    other.initialise("999999999999", [SENDER], NOW)
    pair = other.participant(SENDER)
    signed = XmlDsigSigner(pair.key_path.read_bytes(), pair.certificate_path.read_bytes()).sign(
        MESSAGE
    )
    anchor = x509.load_pem_x509_certificate(keys.ca_path.read_bytes())
    with pytest.raises(SignatureProblemError) as problem:
        SignatureVerifier({SENDER: pair.certificate()}, anchor).verify(signed, SENDER, NOW)
    assert problem.value.code == "DS0F"
    assert problem.value.text == f"{SENDER}'s certificate is not issued by a CA the gateway trusts"


def test_a_certificate_from_either_ca_of_a_rollover_verifies(
    keys: KeyStore, tmp_path: Path
) -> None:
    """While the centre rolls its CA over, ca.pem holds both: a certificate from either is
    trusted, and one from neither is DS0F."""
    new = KeyStore(tmp_path / "new")
    new.initialise("999999999999", [SENDER], NOW, ca_name="isogw development CA G2")
    stranger = KeyStore(tmp_path / "stranger")
    stranger.initialise("999999999999", [SENDER], NOW, ca_name="another CA")
    keys.ca_path.write_bytes(keys.ca_path.read_bytes() + new.ca_path.read_bytes())
    authorities = read_authorities(keys.ca_path)
    assert [authority.subject.rfc4514_string() for authority in authorities] == [
        "CN=isogw development CA",
        "CN=isogw development CA G2",
    ]
    for store in (keys, new):
        pair = store.participant(SENDER)
        signed = signer_from_files(pair).sign(MESSAGE)
        verified = SignatureVerifier({SENDER: pair.certificate()}, authorities)
        verified.verify(signed, SENDER, NOW)
    pair = stranger.participant(SENDER)
    with pytest.raises(SignatureProblemError) as problem:
        SignatureVerifier({SENDER: pair.certificate()}, authorities).verify(
            signer_from_files(pair).sign(MESSAGE), SENDER, NOW
        )
    assert problem.value.code == "DS0F"
    # A certificate that is not a CA's has no place in ca.pem (its key would vouch for banks).
    bundle = keys.ca_path.read_bytes()
    keys.ca_path.write_bytes(bundle + keys.gateway.certificate_path.read_bytes())
    with pytest.raises(KeyFileError) as failure:
        read_authorities(keys.ca_path)
    assert str(failure.value) == (
        f"{keys.ca_path}: certificate 3 (CN=999999999999) is not a CA certificate (no basic "
        "constraint CA:TRUE); ca.pem holds only the CAs that issue the banks' and the gateway's "
        "certificates"
    )
    # The development CA issues as the CA its key belongs to, wherever that is in ca.pem.
    new.ca_path.write_bytes(bundle)  # the old CA first, then the new
    issued = new.issue(ICBC, NOW, NOW + timedelta(days=30)).certificate()
    assert issued.issuer.rfc4514_string() == "CN=isogw development CA G2"
    issued.verify_directly_issued_by(authorities[1])


def test_keys_init_writes_a_ca_the_gateway_and_every_participant(keys: KeyStore) -> None:
    ca = x509.load_pem_x509_certificate(keys.ca_path.read_bytes())
    gateway = keys.gateway.certificate()
    assert gateway.issuer == ca.subject
    assert keys.gateway.key_path.stat().st_mode & 0o777 == 0o600
    pins = keys.pins([SENDER, ICBC])
    assert set(pins) == {SENDER, ICBC} and all(len(pin) == 64 for pin in pins.values())
    names = gateway.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in names.get_values_for_type(x509.DNSName)


def test_rsa_sha256_signature_verifies_with_xmlsec1_and_the_gateway(
    keys: KeyStore, tmp_path: Path
) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    certificate = self_signed(key, SENDER, NOW)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    certificate_pem = certificate.public_bytes(serialization.Encoding.PEM)
    signed = XmlDsigSigner(key_pem, certificate_pem).sign(MESSAGE)
    assert b"xmldsig-more#rsa-sha256" in signed
    SignatureVerifier({SENDER: certificate}).verify(signed, SENDER, NOW)
    (tmp_path / "cert.pem").write_bytes(certificate_pem)
    (tmp_path / "signed.xml").write_bytes(signed)
    completed = subprocess.run(
        [
            "xmlsec1",
            "--verify",
            "--pubkey-cert-pem",
            str(tmp_path / "cert.pem"),
            str(tmp_path / "signed.xml"),
        ],
        capture_output=True,
        text=True,
    )
    assert completed.returncode == 0, completed.stderr


def _xmlsec1_signed(
    keys: KeyStore, tmp_path: Path, around: str, signature_template: str = TEMPLATE
) -> bytes:
    text = re.sub(
        r"(\s*</AppHdr>)",
        f"<Sgntr>{around}{signature_template}{around}</Sgntr>\\1",
        MESSAGE.decode(),
        count=1,
    )
    template = tmp_path / f"template{len(around)}.xml"
    template.write_text(text, encoding="utf-8")
    pair = keys.participant(SENDER)
    output = tmp_path / f"out{len(around)}.xml"
    completed = subprocess.run(
        [
            "xmlsec1",
            "--sign",
            "--privkey-pem",
            f"{pair.key_path},{pair.certificate_path}",
            "--output",
            str(output),
            str(template),
        ],
        capture_output=True,
        text=True,
    )
    assert completed.returncode == 0, completed.stderr
    return output.read_bytes()


def test_the_content_hash_is_the_same_whichever_digest_the_reference_uses(
    keys: KeyStore, tmp_path: Path
) -> None:
    """Idempotency compares this hash: the SHA-256 of the canonical message without its
    signature (with the empty Sgntr that held it), whether the reference's digest was
    SHA-256 or SHA-512."""
    with_sha256 = verifier(keys).check(_xmlsec1_signed(keys, tmp_path, ""), SENDER, NOW)
    sha512 = TEMPLATE.replace("xmlenc#sha256", "xmlenc#sha512")
    signed_sha512 = _xmlsec1_signed(keys, tmp_path, "", sha512)
    assert b"xmlenc#sha512" in signed_sha512
    with_sha512 = verifier(keys).check(signed_sha512, SENDER, NOW)
    assert with_sha512.content_sha256 == with_sha256.content_sha256
    ours = verifier(keys).check(signer(keys).sign(MESSAGE), SENDER, NOW)
    unsigned = etree.fromstring(MESSAGE)
    header = unsigned.find("{*}AppHdr")
    assert header is not None
    etree.SubElement(header, "{urn:iso:std:iso:20022:tech:xsd:head.001.001.02}Sgntr")
    canonical = etree.tostring(unsigned, method="c14n", exclusive=True)
    assert ours.content_sha256 == hashlib.sha256(canonical).hexdigest()


def test_same_verdict_as_signxml_on_valid_and_tampered_messages(
    keys: KeyStore, tmp_path: Path
) -> None:
    """Differential check against an independent implementation (signxml)."""
    from signxml.exceptions import InvalidInput, InvalidSignature
    from signxml.verifier import SignatureConfiguration, XMLVerifier

    ours = signer(keys).sign(MESSAGE)
    pretty = _xmlsec1_signed(keys, tmp_path, "\n        ")
    tight = _xmlsec1_signed(keys, tmp_path, "")
    cases = {
        "ours": ours,
        "xmlsec1 with whitespace around the signature": pretty,
        "xmlsec1 tight": tight,
        "amount altered": ours.replace(b'Ccy="CNY">2000.00<', b'Ccy="CNY">2000.01<', 1),
        "whitespace added": ours.replace(b"<MsgId>", b"<MsgId> ", 1),
        "whitespace around the signature changed": pretty.replace(
            b"\n        <ds:Signature", b"\n  <ds:Signature", 1
        ),
        "signature value altered": re.sub(
            rb"<SignatureValue>(.)",
            lambda match: b"<SignatureValue>" + (b"A" if match.group(1) != b"A" else b"B"),
            ours,
            count=1,
        )
        if b"<SignatureValue>" in ours
        else re.sub(
            rb"<ds:SignatureValue>(.)",
            lambda match: b"<ds:SignatureValue>" + (b"A" if match.group(1) != b"A" else b"B"),
            ours,
            count=1,
        ),
        "digest altered": re.sub(
            rb"<ds:DigestValue>(.)",
            lambda match: b"<ds:DigestValue>" + (b"A" if match.group(1) != b"A" else b"B"),
            ours,
            count=1,
        ),
        "signed by another key": signer(keys, ICBC).sign(MESSAGE),
    }
    certificate = keys.participant(SENDER).certificate()
    config = SignatureConfiguration(expect_references=1)
    for name, message in cases.items():
        try:
            XMLVerifier().verify(message, x509_cert=certificate, expect_config=config)
            reference_ok = True
        except (InvalidSignature, InvalidInput):
            reference_ok = False
        try:
            SignatureVerifier({SENDER: certificate}).verify(message, SENDER, NOW)
            ours_ok = True
        except SignatureProblemError:
            ours_ok = False
        assert ours_ok == reference_ok, name
        assert ours_ok == (
            name in {"ours", "xmlsec1 with whitespace around the signature", "xmlsec1 tight"}
        ), name
