"""A renewed gateway certificate, checked before a running gateway takes it (SIGHUP): the
gateway presents it on every TLS connection and signs everything it sends with its key, so one
that the banks would refuse must not replace the one that works."""

from __future__ import annotations

import ssl
from datetime import UTC, datetime

from gateway.security.keys import KeyPair
from gateway.security.signatures import XmlDsigSigner, signer_from_files
from gateway.start_errors import KeyFileError


def renewed_gateway_signer(pair: KeyPair, now: datetime) -> XmlDsigSigner:
    """The signer of the gateway's renewed key pair, once the pair is checked as the banks
    will check it: the key and the certificate belong together and load as a TLS server
    certificate, and the certificate is valid ``now`` (that a CA of ``ca.pem`` issued it is
    checked for every gateway certificate: ``check_gateway_issued``). Otherwise
    ``KeyFileError`` says why."""
    signer = signer_from_files(pair)
    certificate = pair.certificate()
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(
            str(pair.certificate_path), str(pair.key_path)
        )
    except (ssl.SSLError, OSError) as error:
        raise KeyFileError(
            f"{pair.certificate_path} and {pair.key_path}: not a usable TLS certificate and key "
            f"({error})"
        ) from error
    begins, ends = certificate.not_valid_before_utc, certificate.not_valid_after_utc
    if not begins <= now <= ends:
        raise KeyFileError(
            f"{pair.certificate_path} is valid from {begins:%Y-%m-%dT%H:%M:%SZ} to "
            f"{ends:%Y-%m-%dT%H:%M:%SZ}, not now ({now.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}): the "
            "banks would refuse it"
        )
    return signer
