"""W3C XML-DSig over the whole message (DESIGN §3), built from maintained parts: lxml's
exclusive C14N, hashlib, and cryptography's ECDSA / RSA / Ed25519.

One enveloped signature in ``AppHdr/Sgntr``: one reference with ``URI=""``, the
enveloped-signature transform, exclusive C14N, SHA-256, ECDSA P-256 by default; RSA-SHA256
(keys of 2,048 bits or more) and Ed25519 (RFC 9231) as options. The key decides the method:
a signature must declare the method of the sender's pinned key. Only this one fixed shape is
produced and accepted, which keeps the code short enough to read in full; it is checked
against two independent implementations in the tests: ``xmlsec1`` (both directions) and
signxml (the same verdict on every valid and tampered message); the Debian xmlsec1 predates
Ed25519, so Ed25519 signature values are checked with the ``openssl`` command instead.
Verification trusts only what the signature covers and only the sender's pinned certificate.
Before any cryptography the structure is checked, so that every known trick fails with a
precise reason code:

| problem | code |
|---|---|
| no signature (stripped) | DS0A |
| two signatures, one elsewhere, another reference, transform or algorithm (SHA-1) | DS0B |
| a signature method other than the one of the sender's pinned key | DS0B |
| a comment in the message (canonicalization would drop it, so it is never signed) | DS01 |
| the certificate in the signature is not the sender's pinned one; no pin for the sender | DS0E |
| the pinned certificate is expired or not yet valid | DS0D |
| the pinned certificate is not issued by the trusted CA | DS0F |
| the signature does not verify (altered content, wrapping, wrong key) | DS01 |

The signer sits behind ``MessageSigner`` so that a national algorithm (SM2 with SM3) can be
added as another implementation.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from cryptography import x509
from cryptography.exceptions import InvalidSignature as CryptographyInvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes as PublicKey
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from lxml import etree

from gateway.iso.namespaces import HEADER_NAMESPACE as HEADER
from gateway.iso.namespaces import MESSAGE_TAG
from gateway.iso.safe_parsing import SAFE_PARSE_OPTIONS
from gateway.security.keys import REPLACE_HINT, KeyPair, read_key_file
from gateway.start_errors import KeyFileError

DSIG = "http://www.w3.org/2000/09/xmldsig#"
EXCLUSIVE_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"

ECDSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
EDDSA_ED25519 = "http://www.w3.org/2021/04/xmldsig-more#eddsa-ed25519"
MINIMUM_RSA_BITS = 2048
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
SHA512 = "http://www.w3.org/2001/04/xmlenc#sha512"
_ACCEPTED_SIGNATURE_URIS = frozenset({ECDSA_SHA256, RSA_SHA256, EDDSA_ED25519})
_DIGESTS = {SHA256: hashlib.sha256, SHA512: hashlib.sha512}


def signature_method(key: PublicKey) -> str:
    """The XML-DSig signature method of a public key; ``ValueError`` for a key the scheme does
    not sign with (another curve, RSA under 2,048 bits, DSA, ...)."""
    if isinstance(key, ec.EllipticCurvePublicKey):
        if not isinstance(key.curve, ec.SECP256R1):
            raise ValueError(f"an ECDSA key must be on curve P-256, not {key.curve.name}")
        return ECDSA_SHA256
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MINIMUM_RSA_BITS:
            raise ValueError(
                f"an RSA key must have at least {MINIMUM_RSA_BITS} bits, not {key.key_size}"
            )
        return RSA_SHA256
    if isinstance(key, ed25519.Ed25519PublicKey):
        return EDDSA_ED25519
    raise ValueError("signing keys are ECDSA P-256, RSA (2,048 bits or more) or Ed25519")


_METHOD_NAMES = {ECDSA_SHA256: "ECDSA P-256", RSA_SHA256: "RSA-SHA256", EDDSA_ED25519: "Ed25519"}


class SignatureProblemError(Exception):
    def __init__(self, code: str, text: str) -> None:
        super().__init__(f"{code} {text}")
        self.code = code
        self.text = text


class MessageSigner(Protocol):
    def sign(self, message: bytes) -> bytes: ...

    def sign_element(self, root: etree._Element) -> bytes:
        """Signs a tree the gateway built (no serialising and parsing it again)."""
        ...


_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'


def _ds(name: str) -> str:
    return f"{{{DSIG}}}{name}"


def _parse(message: bytes) -> etree._Element:
    return etree.fromstring(message, etree.XMLParser(**SAFE_PARSE_OPTIONS))


def _signature_templates(
    method: str, certificate: bytes
) -> tuple[tuple[bytes, bytes], tuple[bytes, bytes, bytes]]:
    """The canonical SignedInfo around its DigestValue, and the Signature element as text
    around its DigestValue and SignatureValue, both made once by lxml."""
    digest_mark, value_mark = "@DIGEST@", "@VALUE@"
    signature = etree.Element(_ds("Signature"), nsmap={"ds": DSIG})
    info = etree.SubElement(signature, _ds("SignedInfo"))
    etree.SubElement(info, _ds("CanonicalizationMethod"), Algorithm=EXCLUSIVE_C14N)
    etree.SubElement(info, _ds("SignatureMethod"), Algorithm=method)
    reference = etree.SubElement(info, _ds("Reference"), URI="")
    transforms = etree.SubElement(reference, _ds("Transforms"))
    etree.SubElement(transforms, _ds("Transform"), Algorithm=ENVELOPED)
    etree.SubElement(transforms, _ds("Transform"), Algorithm=EXCLUSIVE_C14N)
    etree.SubElement(reference, _ds("DigestMethod"), Algorithm=SHA256)
    etree.SubElement(reference, _ds("DigestValue")).text = digest_mark
    etree.SubElement(signature, _ds("SignatureValue")).text = value_mark
    key_info = etree.SubElement(signature, _ds("KeyInfo"))
    data = etree.SubElement(key_info, _ds("X509Data"))
    etree.SubElement(data, _ds("X509Certificate")).text = certificate
    canonical_info = etree.tostring(info, method="c14n", exclusive=True, with_comments=False)
    info_before, info_after = canonical_info.split(digest_mark.encode())
    whole = etree.tostring(signature, method="c14n", exclusive=True, with_comments=False)
    first, rest = whole.split(digest_mark.encode())
    second, third = rest.split(value_mark.encode())
    return (info_before, info_after), (first, second, third)


class XmlDsigSigner:
    """Signs an envelope (``Message``) in ``AppHdr/Sgntr``; the gateway signs every answer,
    forward and receipt.

    The message is canonicalized once (lxml's exclusive C14N) and sent in that canonical form:
    the digest is taken over those very bytes, and the Signature is written into the empty
    ``Sgntr`` as text from a template. The template's SignedInfo is lxml's own canonical form,
    made once, so the bytes signed are exactly those a verifier canonicalizes (checked against
    xmlsec1 and signxml in the tests). No Signature tree is built and nothing is serialized
    twice (about 60 µs a signature on top of the ECDSA operation)."""

    def __init__(self, key_pem: bytes, certificate_pem: bytes) -> None:
        key = serialization.load_pem_private_key(key_pem, password=None)
        if not isinstance(
            key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
        ):
            raise ValueError("signing keys are ECDSA P-256, RSA or Ed25519")
        self._key = key
        certificate = x509.load_pem_x509_certificate(certificate_pem)
        if certificate.public_key() != key.public_key():
            raise ValueError("the certificate is not the key's")
        encoded = base64.b64encode(certificate.public_bytes(serialization.Encoding.DER))
        self._method = signature_method(key.public_key())
        self._placeholder = f"signature-goes-here-{secrets.token_hex(16)}"
        """Marks the empty Sgntr in the canonical bytes (unguessable, so no content has it)."""
        self._signed_info, self._signature = _signature_templates(self._method, encoded)

    def sign(self, message: bytes) -> bytes:
        return self.sign_element(_parse(message))

    def sign_element(self, root: etree._Element) -> bytes:
        header = root.find(f"{{{HEADER}}}AppHdr")
        if root.tag != MESSAGE_TAG or header is None:
            raise ValueError("only an envelope with a business header is signed")
        for old in header.findall(f"{{{HEADER}}}Sgntr"):
            header.remove(old)
        holder = etree.Element(f"{{{HEADER}}}Sgntr")
        related = header.find(f"{{{HEADER}}}Rltd")
        if related is not None:
            related.addprevious(holder)
        else:
            header.append(holder)
        # The enveloped-signature transform removes the Signature: the digest covers the
        # message with an empty Sgntr, canonicalized (exclusive, no comments).
        holder.text = self._placeholder
        canonical = etree.tostring(root, method="c14n", exclusive=True, with_comments=False)
        holder.text = None
        before, _, after = canonical.partition(self._placeholder.encode())
        digest = base64.b64encode(hashlib.sha256(before + after).digest())
        signed_info = self._signed_info[0] + digest + self._signed_info[1]
        value = base64.b64encode(self._signature_value(signed_info))
        first, second, third = self._signature
        return b"".join((_DECLARATION, before, first, digest, second, value, third, after))

    def _signature_value(self, signed_info: bytes) -> bytes:
        key = self._key
        if isinstance(key, ec.EllipticCurvePrivateKey):
            # XML-DSig carries ECDSA as r || s, each as long as the curve's order.
            r, s = decode_dss_signature(key.sign(signed_info, ec.ECDSA(hashes.SHA256())))
            size = (key.curve.key_size + 7) // 8
            return r.to_bytes(size, "big") + s.to_bytes(size, "big")
        if isinstance(key, rsa.RSAPrivateKey):
            return key.sign(signed_info, padding.PKCS1v15(), hashes.SHA256())
        # RFC 9231: pure Ed25519 over the canonical SignedInfo, the 64 bytes as they come.
        return key.sign(signed_info)


def signer_from_files(pair: KeyPair) -> XmlDsigSigner:
    """The signer for a key pair on disk; a file that is not a usable key or certificate is a
    ``KeyFileError`` naming both files."""
    key, certificate = read_key_file(pair.key_path), read_key_file(pair.certificate_path)
    try:
        return XmlDsigSigner(key, certificate)
    except ValueError as error:
        raise KeyFileError(
            f"{pair.key_path} and {pair.certificate_path}: not a usable signing key and "
            f"certificate ({error}); {REPLACE_HINT}"
        ) from error


@dataclass(frozen=True)
class VerifiedMessage:
    root: etree._Element
    content_sha256: str
    """Hex SHA-256 of the exclusive canonical message without its signature: the same
    content signed again has the same value."""
    signature_method: str
    """The XML-DSig signature method it was verified with (its URI)."""


@dataclass(frozen=True)
class _Pinned:
    """One pinned certificate of a sender, with what checking a signature needs of it."""

    certificate: x509.Certificate
    der: bytes
    key: PublicKey
    method: str
    """The one signature method its key makes (``ValueError`` for a key the scheme does not
    use: the composition root names the certificate file first)."""
    from_anchor: bool
    """Whether a trusted CA issued it, checked once."""


def _pinned(certificate: x509.Certificate, anchors: Sequence[x509.Certificate]) -> _Pinned:
    key = certificate.public_key()
    return _Pinned(
        certificate,
        certificate.public_bytes(serialization.Encoding.DER),
        key,
        signature_method(key),
        not anchors or any(issued_by(certificate, anchor) for anchor in anchors),
    )


Anchors = x509.Certificate | Sequence[x509.Certificate] | None
"""The CA certificates the senders' certificates must come from: one, or several while the
centre rolls its CA over (None: any issuer, for tools that check a signature alone)."""


class SignatureVerifier:
    def __init__(
        self,
        pins: Mapping[str, x509.Certificate | Sequence[x509.Certificate]],
        trust_anchors: Anchors = None,
    ) -> None:
        """``pins``: each sender's certificate, or its certificates while it renews one (the
        current first, then the next: a signature from either is accepted)."""
        self._anchors: tuple[x509.Certificate, ...] = (
            ()
            if trust_anchors is None
            else (trust_anchors,)
            if isinstance(trust_anchors, x509.Certificate)
            else tuple(trust_anchors)
        )
        self._pins = {
            code: [
                _pinned(certificate, self._anchors)
                for certificate in (listed if isinstance(listed, Sequence) else [listed])
            ]
            for code, listed in pins.items()
        }

    def with_pins(
        self,
        pins: Mapping[str, x509.Certificate | Sequence[x509.Certificate]],
        trust_anchors: Anchors = None,
    ) -> SignatureVerifier:
        """A verifier of other pins (certificates reloaded), under ``trust_anchors`` if given,
        else under the same CAs."""
        return SignatureVerifier(pins, self._anchors if trust_anchors is None else trust_anchors)

    def verify(
        self,
        message: bytes,
        sender: str,
        now: datetime,
        parsed: etree._Element | None = None,
    ) -> etree._Element:
        """Check the message's signature; return the verified message root (only what the
        signature covers). Raise ``SignatureProblemError`` with a DS reason code.

        ``parsed`` is the same bytes already parsed (safely), to save a parse; it is only read.
        """
        return self.check(message, sender, now, parsed).root

    def check(
        self,
        message: bytes,
        sender: str,
        now: datetime,
        parsed: etree._Element | None = None,
    ) -> VerifiedMessage:
        """``verify``, also giving the SHA-256 of the signed content (the message without its
        signature, exclusive canonical form), which the verification computes anyway."""
        root = parsed if parsed is not None else _parse(message)
        signatures = root.findall(f".//{_ds('Signature')}")
        if not signatures:
            raise SignatureProblemError("DS0A", "the message carries no signature (AppHdr/Sgntr)")
        if len(signatures) > 1:
            raise SignatureProblemError(
                "DS0B", f"{len(signatures)} signatures; exactly one is allowed"
            )
        signature = signatures[0]
        holder = signature.getparent()
        header = holder.getparent() if holder is not None else None
        if (
            holder is None
            or holder.tag != f"{{{HEADER}}}Sgntr"
            or header is None
            or header.tag != f"{{{HEADER}}}AppHdr"
            or header.getparent() is not root
            or root.tag != MESSAGE_TAG
        ):
            raise SignatureProblemError("DS0B", "the signature must sit in /Message/AppHdr/Sgntr")
        if next(root.iter(etree.Comment), None) is not None:
            raise SignatureProblemError(
                "DS01", "comments are not covered by the signature; a signed message has none"
            )
        method = self._check_structure(signature)
        pinned = self._signer(sender, signature, method, now)
        if method != pinned.method:
            raise SignatureProblemError(
                "DS0B",
                f"signature method {method!r} does not fit {sender}'s pinned key "
                f"({_METHOD_NAMES[pinned.method]})",
            )
        content_sha256 = _check_digest(root, signature)
        _check_signature_value(signature, pinned.key)
        return VerifiedMessage(root, content_sha256, method)

    def _check_structure(self, signature: etree._Element) -> str:
        """Exactly the shape this scheme signs: exc-C14N, an accepted method, one reference
        to the whole message with the enveloped-signature (+ exc-C14N) transforms. Returns
        the signature method."""
        info = signature.find(_ds("SignedInfo"))
        if info is None:
            raise SignatureProblemError("DS0B", "no SignedInfo")
        c14n = info.find(_ds("CanonicalizationMethod"))
        if c14n is None or c14n.get("Algorithm") != EXCLUSIVE_C14N:
            raise SignatureProblemError("DS0B", "canonicalization must be exclusive C14N")
        method = info.find(_ds("SignatureMethod"))
        algorithm = method.get("Algorithm", "") if method is not None else ""
        if algorithm not in _ACCEPTED_SIGNATURE_URIS:
            named = " (SHA-1 is not accepted)" if "sha1" in algorithm.lower() else ""
            raise SignatureProblemError(
                "DS0B", f"signature method {algorithm!r} not accepted{named}"
            )
        references = info.findall(_ds("Reference"))
        if len(references) != 1 or references[0].get("URI") != "":
            raise SignatureProblemError("DS0B", 'exactly one reference, URI="", is required')
        transforms = [
            transform.get("Algorithm")
            for transform in references[0].findall(f"{_ds('Transforms')}/{_ds('Transform')}")
        ]
        if transforms not in ([ENVELOPED, EXCLUSIVE_C14N], [ENVELOPED]):
            raise SignatureProblemError("DS0B", "transforms must be enveloped-signature, exc-c14n")
        digest = references[0].find(_ds("DigestMethod"))
        digest_uri = digest.get("Algorithm", "") if digest is not None else ""
        if digest_uri not in _DIGESTS:
            named = " (SHA-1 is not accepted)" if "sha1" in digest_uri.lower() else ""
            raise SignatureProblemError("DS0B", f"digest {digest_uri!r} not accepted{named}")
        return algorithm

    def _signer(
        self, sender: str, signature: etree._Element, method: str, now: datetime
    ) -> _Pinned:
        """The pinned certificate the signature is made with: the one it embeds, else the
        sender's only one, else (while the sender renews) the one whose key verifies it."""
        candidates = self._pins.get(sender)
        if not candidates:
            raise SignatureProblemError("DS0E", f"no pinned certificate for sender {sender}")
        embedded = signature.findtext(f".//{_ds('X509Certificate')}")
        if embedded is not None:
            presented = _base64(embedded, "X509Certificate")
            matching = [pinned for pinned in candidates if pinned.der == presented]
            if not matching:
                raise SignatureProblemError(
                    "DS0E", f"signed with a certificate that is not {sender}'s pinned certificate"
                )
            chosen = matching[0]
        elif len(candidates) == 1:
            chosen = candidates[0]
        else:
            chosen = next(
                (
                    pinned
                    for pinned in candidates
                    if pinned.method == method and _verifies(signature, pinned.key)
                ),
                candidates[0],
            )
        certificate = chosen.certificate
        if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
            raise SignatureProblemError(
                "DS0D",
                f"{sender}'s certificate is valid {certificate.not_valid_before_utc:%Y-%m-%d} to "
                f"{certificate.not_valid_after_utc:%Y-%m-%d}",
            )
        if not chosen.from_anchor:
            raise SignatureProblemError(
                "DS0F", f"{sender}'s certificate is not issued by a CA the gateway trusts"
            )
        return chosen


def _verifies(signature: etree._Element, key: PublicKey) -> bool:
    try:
        _check_signature_value(signature, key)
    except SignatureProblemError:
        return False
    return True


def _check_digest(root: etree._Element, signature: etree._Element) -> str:
    """The reference's digest over the whole message as the enveloped-signature transform
    defines it: the message without this Signature element (the text around it stays),
    exclusive C14N, no comments. Returns the hex SHA-256 of that canonical content (the
    reference's own digest when it is SHA-256)."""
    reference = signature.find(f"{_ds('SignedInfo')}/{_ds('Reference')}")
    assert reference is not None  # checked by _check_structure
    method = reference.find(_ds("DigestMethod"))
    digest = _DIGESTS[method.get("Algorithm", "") if method is not None else ""]
    declared = _base64(reference.findtext(_ds("DigestValue")), "DigestValue")
    parent = signature.getparent()
    assert parent is not None
    position = parent.index(signature)
    previous = signature.getprevious()
    tail, previous_tail, parent_text = signature.tail, None, parent.text
    if tail:
        if previous is not None:
            previous_tail = previous.tail
            previous.tail = (previous.tail or "") + tail
        else:
            parent.text = (parent.text or "") + tail
    parent.remove(signature)
    try:
        content: bytes = etree.tostring(root, method="c14n", exclusive=True, with_comments=False)
    finally:
        signature.tail = tail
        parent.insert(position, signature)
        if tail:
            if previous is not None:
                previous.tail = previous_tail
            else:
                parent.text = parent_text
    computed = digest(content)
    if not hmac.compare_digest(computed.digest(), declared):
        raise SignatureProblemError(
            "DS01", "the signature does not verify: the signed content was altered"
        )
    return (
        computed.hexdigest() if computed.name == "sha256" else hashlib.sha256(content).hexdigest()
    )


def _check_signature_value(signature: etree._Element, key: PublicKey) -> None:
    """SignatureValue over the exclusive canonical SignedInfo, with the pinned key."""
    info = signature.find(_ds("SignedInfo"))
    assert info is not None
    signed_info = etree.tostring(info, method="c14n", exclusive=True, with_comments=False)
    value = _base64(signature.findtext(_ds("SignatureValue")), "SignatureValue")
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            size = (key.curve.key_size + 7) // 8
            if len(value) != 2 * size:
                raise SignatureProblemError("DS01", "the ECDSA signature value has the wrong size")
            r = int.from_bytes(value[:size], "big")
            s = int.from_bytes(value[size:], "big")
            key.verify(encode_dss_signature(r, s), signed_info, ec.ECDSA(hashes.SHA256()))
        elif isinstance(key, rsa.RSAPublicKey):
            key.verify(value, signed_info, padding.PKCS1v15(), hashes.SHA256())
        else:
            # The verifier pins no other key: ``signature_method`` refused it up front.
            assert isinstance(key, ed25519.Ed25519PublicKey)
            key.verify(value, signed_info)
    except CryptographyInvalidSignature as error:
        raise SignatureProblemError(
            "DS01", "the signature does not verify with the sender's pinned key"
        ) from error


def _base64(text: str | None, what: str) -> bytes:
    try:
        return base64.b64decode("".join((text or "").split()), validate=True)
    except (ValueError, binascii.Error) as error:
        raise SignatureProblemError("DS0B", f"{what} is not base64") from error


def issued_by(certificate: x509.Certificate, issuer: x509.Certificate) -> bool:
    """Whether ``issuer`` signed ``certificate`` (name and signature, whatever the CA's key)."""
    try:
        certificate.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, CryptographyInvalidSignature):
        return False
    return True
