"""Development keys and certificates (``isogw keys init``), and certificate pins.

A development CA signs one certificate for the gateway (server and client use, subject CN =
the centre's member id, names localhost and 127.0.0.1) and one per participant (client use,
CN = its 12-digit bank code). Keys are ECDSA P-256 by default; RSA 2048 and Ed25519 on request
(``--algorithm``), for the gateway's and the participants' keys (the CA stays ECDSA P-256).
Everything is written under ``<state>/keys`` with private keys readable by the owner only; it
is never committed.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from gateway.start_errors import KeyFileError

DEVELOPMENT_VALIDITY = timedelta(days=825)
DEVELOPMENT_CA_NAME = "isogw development CA"
KEY_FOLDER = "keys"
REPLACE_HINT = "`isogw keys init --force` writes new development keys"

SigningKey = CertificateIssuerPrivateKeyTypes
KEY_ALGORITHMS: dict[str, Callable[[], SigningKey]] = {
    "ecdsa-p256": lambda: ec.generate_private_key(ec.SECP256R1()),
    "rsa-2048": lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
    "ed25519": ed25519.Ed25519PrivateKey.generate,
}
"""The key types ``isogw keys init --algorithm`` makes, named as the option takes them; each
signs messages with the XML-DSig method of its kind (ECDSA-SHA256, RSA-SHA256, Ed25519)."""
DEFAULT_KEY_ALGORITHM = "ecdsa-p256"


def read_key_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise KeyFileError(f"{path}: cannot read: {error.strerror}; {REPLACE_HINT}") from error


def read_certificate(path: Path) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(read_key_file(path))
    except ValueError as error:
        raise KeyFileError(f"{path}: not a PEM certificate ({error}); {REPLACE_HINT}") from error


def read_authorities(path: Path) -> list[x509.Certificate]:
    """The CA certificates of ``path`` (``ca.pem``), in their order: one, or while the centre
    rolls its CA over, the current and the new one (PEM blocks one after the other, as any
    trust bundle)."""
    try:
        authorities = x509.load_pem_x509_certificates(read_key_file(path))
    except ValueError as error:
        raise KeyFileError(f"{path}: not a PEM certificate ({error}); {REPLACE_HINT}") from error
    for number, authority in enumerate(authorities, 1):
        try:
            is_authority = authority.extensions.get_extension_for_class(
                x509.BasicConstraints
            ).value.ca
        except x509.ExtensionNotFound:
            is_authority = False
        if not is_authority:
            raise KeyFileError(
                f"{path}: certificate {number} ({authority.subject.rfc4514_string()}) is not a "
                "CA certificate (no basic constraint CA:TRUE); ca.pem holds only the CAs that "
                "issue the banks' and the gateway's certificates"
            )
    return authorities


def authority_names(authorities: Sequence[x509.Certificate]) -> str:
    """The CAs' subjects, for a message: ``CN=A, then CN=B``."""
    return ", then ".join(authority.subject.rfc4514_string() for authority in authorities)


@dataclass(frozen=True)
class KeyPair:
    key_path: Path
    certificate_path: Path

    def certificate(self) -> x509.Certificate:
        return read_certificate(self.certificate_path)


def certificate_sha256(certificate: x509.Certificate) -> str:
    """The pin of a certificate: SHA-256 of its DER encoding, lowercase hex."""
    return hashlib.sha256(certificate.public_bytes(serialization.Encoding.DER)).hexdigest()


class KeyStore:
    """The development key folder: ``ca.pem``, ``gateway.{key,pem}``, ``participants/<code>.*``
    (and ``participants/<code>.next.*`` for a participant renewing its certificate)."""

    def __init__(self, state_directory: Path) -> None:
        self.folder = state_directory / KEY_FOLDER

    @property
    def ca_path(self) -> Path:
        return self.folder / "ca.pem"

    @property
    def ca_key_path(self) -> Path:
        return self.folder / "ca.key"

    @property
    def gateway(self) -> KeyPair:
        return KeyPair(self.folder / "gateway.key", self.folder / "gateway.pem")

    def participant(self, code: str) -> KeyPair:
        folder = self.folder / "participants"
        return KeyPair(folder / f"{code}.key", folder / f"{code}.pem")

    def next_participant(self, code: str) -> KeyPair:
        """The certificate a participant is renewing to, accepted beside its current one."""
        folder = self.folder / "participants"
        return KeyPair(folder / f"{code}.next.key", folder / f"{code}.next.pem")

    def exists(self) -> bool:
        return self.ca_path.is_file() and self.gateway.certificate_path.is_file()

    def pins(self, codes: Sequence[str]) -> dict[str, str]:
        return {
            code: certificate_sha256(self.participant(code).certificate())
            for code in codes
            if self.participant(code).certificate_path.is_file()
        }

    def initialise(
        self,
        centre: str,
        participants: Sequence[str],
        now: datetime,
        algorithm: str = DEFAULT_KEY_ALGORITHM,
        ca_name: str = DEVELOPMENT_CA_NAME,
    ) -> None:
        """Create the CA (named ``ca_name``), the gateway's and every participant's key (of
        ``algorithm``, a key of ``KEY_ALGORITHMS``) and certificate."""
        new_key = KEY_ALGORITHMS[algorithm]
        (self.folder / "participants").mkdir(parents=True, exist_ok=True)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ca_name)])
        ca = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + DEVELOPMENT_VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
            )
            .sign(ca_key, hashes.SHA256())
        )
        self.ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
        _write_key(self.ca_key_path, ca_key)
        self._issue(self.gateway, centre, ca, ca_key, now, new_key(), server=True)
        for code in participants:
            self._issue(self.participant(code), code, ca, ca_key, now, new_key(), server=False)

    def issue(
        self, code: str, not_before: datetime, not_after: datetime, renewal: bool = False
    ) -> KeyPair:
        """A further participant certificate from the development CA (a new bank, a renewal);
        with ``renewal``, as the next certificate beside the current one."""
        ca, ca_key = self._authority()
        pair = self.next_participant(code) if renewal else self.participant(code)
        key = KEY_ALGORITHMS[DEFAULT_KEY_ALGORITHM]()
        self._issue(pair, code, ca, ca_key, not_before, key, server=False, not_after=not_after)
        return pair

    def renew_gateway(self, centre: str, not_before: datetime, not_after: datetime) -> KeyPair:
        """A new key and certificate for the gateway from the development CA, in place of the
        current ones (a running gateway takes them at its next SIGHUP)."""
        ca, ca_key = self._authority()
        key = KEY_ALGORITHMS[DEFAULT_KEY_ALGORITHM]()
        self._issue(
            self.gateway, centre, ca, ca_key, not_before, key, server=True, not_after=not_after
        )
        return self.gateway

    def _authority(self) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        """The development CA's key, and its certificate among those of ``ca.pem``."""
        ca_key = serialization.load_pem_private_key(self.ca_key_path.read_bytes(), password=None)
        assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
        [ca] = [
            authority
            for authority in read_authorities(self.ca_path)
            if authority.public_key() == ca_key.public_key()
        ]
        return ca, ca_key

    def _issue(
        self,
        pair: KeyPair,
        common_name: str,
        ca: x509.Certificate,
        ca_key: ec.EllipticCurvePrivateKey,
        now: datetime,
        key: SigningKey,
        server: bool,
        not_after: datetime | None = None,
    ) -> None:
        usages = [ExtendedKeyUsageOID.CLIENT_AUTH] + (
            [ExtendedKeyUsageOID.SERVER_AUTH] if server else []
        )
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(ca.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(not_after or now + DEVELOPMENT_VALIDITY)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
            # Which CA key signed it: TLS finds the issuer by name, then by this identifier,
            # so two CAs of one name (a CA renewed with a new key) are told apart.
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                critical=False,
            )
        )
        if server:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                ),
                critical=False,
            )
        certificate = builder.sign(ca_key, hashes.SHA256())
        _write_key(pair.key_path, key)
        pair.certificate_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))


def _write_key(path: Path, key: SigningKey) -> None:
    """A private key, readable by its owner only (created so, never world-readable)."""
    data = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
    os.chmod(path, 0o600)
