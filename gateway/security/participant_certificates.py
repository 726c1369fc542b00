"""The participants' certificates in the key folder, checked against the pins of the
participants file, and every certificate in use (theirs, the gateway's) against the CAs of
``ca.pem``: the start refuses a mismatch, and so does a reload (the gateway keeps what it runs
with)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from cryptography import x509

from gateway.configuration.participants import ParticipantDirectory
from gateway.security.keys import KeyPair, KeyStore, authority_names, certificate_sha256
from gateway.security.signatures import issued_by, signature_method
from gateway.start_errors import KeyFileError


def participant_certificates(
    directory: ParticipantDirectory,
    listed: Path,
    keys: KeyStore,
    authorities: Sequence[x509.Certificate],
) -> tuple[dict[str, list[x509.Certificate]], dict[str, str]]:
    """Each participant's certificates (``<keys>/participants/<code>.pem``, and while it renews
    ``<code>.next.pem``: they check the participant's XML signatures) and the pins (SHA-256)
    that identify its TLS connections.

    A ``certificate_sha256`` (``next_certificate_sha256``) in the participants file must be
    the pin of that file: the one certificate serves both, so a pin without its certificate,
    or a certificate that is not the pinned one, stops the start (rather than refusing every
    message the bank signs). So does a certificate that none of ``authorities`` (the CAs of
    ``ca.pem``) issued: TLS would refuse the bank's connections."""
    participants = directory.participants
    certificates: dict[str, list[x509.Certificate]] = {}
    pins: dict[str, str] = {}
    for entry in (*participants.direct, *participants.special):
        for pair, pinned, setting in (
            (keys.participant(entry.code), entry.certificate_sha256, "certificate_sha256"),
            (
                keys.next_participant(entry.code),
                entry.next_certificate_sha256,
                "next_certificate_sha256",
            ),
        ):
            found = pinned_certificate(listed, entry.code, pair, pinned, setting)
            if found is not None:
                pin, certificate = found
                check_issued(
                    certificate,
                    authorities,
                    keys.ca_path,
                    f"{pair.certificate_path}, {entry.code}'s certificate,",
                    "TLS would refuse the bank's connections, and its signatures would be "
                    "refused (DS0F): put there the bank's certificate from a CA of ca.pem",
                )
                certificates.setdefault(entry.code, []).append(certificate)
                pins[pin] = entry.code
    return certificates, pins


def pinned_certificate(
    listed: Path, code: str, pair: KeyPair, pinned: str | None, setting: str
) -> tuple[str, x509.Certificate] | None:
    """The pin and certificate in ``pair``'s file, checked against the ``setting`` pin; None
    when there is no file and no pin."""
    if not pair.certificate_path.is_file():
        if pinned:
            raise KeyFileError(
                f"{listed}: {code} is pinned ({setting}) but {pair.certificate_path} is "
                "missing: put the bank's certificate there, it checks the bank's XML signatures"
            )
        return None
    certificate = pair.certificate()
    pin = certificate_sha256(certificate)
    if pinned and pinned != pin:
        raise KeyFileError(
            f"{pair.certificate_path} is not the certificate {code} is pinned to in "
            f"{listed} ({setting} {pinned}, the file's is {pin}): put the bank's certificate "
            "there, or correct the pin"
        )
    try:
        signature_method(certificate.public_key())
    except ValueError as error:
        raise KeyFileError(
            f"{pair.certificate_path}: {code}'s certificate cannot check its "
            f"signatures ({error}); it needs a certificate with an accepted key"
        ) from error
    return pin, certificate


def check_issued(
    certificate: x509.Certificate,
    authorities: Sequence[x509.Certificate],
    ca_path: Path,
    named: str,
    consequence: str,
) -> None:
    """``KeyFileError`` unless one of ``authorities`` (the CAs of ``ca_path``) issued
    ``certificate``: every certificate the gateway or a bank presents must chain to them."""
    if not any(issued_by(certificate, authority) for authority in authorities):
        raise KeyFileError(
            f"{named} is not issued by a CA of {ca_path} ({authority_names(authorities)}): "
            f"{consequence}"
        )


def check_gateway_issued(keys: KeyStore, authorities: Sequence[x509.Certificate]) -> None:
    """``KeyFileError`` unless one of ``authorities`` issued the gateway's certificate."""
    check_issued(
        keys.gateway.certificate(),
        authorities,
        keys.ca_path,
        f"{keys.gateway.certificate_path}, the gateway's certificate,",
        "the banks would refuse its connections and its signatures: put there the gateway's "
        "certificate from a CA of ca.pem",
    )
