"""How long the CA's, the gateway's and each participant's certificates stay valid.

An expired certificate stops a bank's traffic at the TLS handshake (its own) or every bank's
(the gateway's, the CA's), so operators need to see it coming: ``isogw keys status`` lists
them, ``/metrics`` gives each one's end of validity, and the first ``isogw serve`` process
logs those that are expired, not yet valid, or within ``http.certificate_warning_days`` of
their end, at start and then once a day (it looks every ``http.certificate_check_seconds``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path

from cryptography import x509

from gateway.security.keys import KeyStore, certificate_sha256, read_authorities, read_certificate

LOG = logging.getLogger("isogw.keys")


class Validity(StrEnum):
    VALID = "valid"
    EXPIRING = "expiring"
    """Valid, but it ends within the warning period."""
    EXPIRED = "expired"
    NOT_YET_VALID = "not-yet-valid"
    NONE = "none"
    """A participant without a certificate (not connected yet): nothing to check."""
    RENEWING = "renewing"
    """A participant's certificate that ends within the warning period, or has ended, while the
    one it renews to (``participant-next``) is valid beyond it: the bank switches (or has)
    without a gap, so nothing needs attention; the next one is promoted once it has."""


ATTENTION = frozenset({Validity.EXPIRING, Validity.EXPIRED, Validity.NOT_YET_VALID})


@dataclass(frozen=True)
class KnownCertificate:
    """A certificate as the gateway loaded it (or the place where it would be)."""

    role: str
    """``ca``, ``gateway``, ``participant`` or ``participant-next`` (the one it renews to)."""
    owner: str
    """The bank code (the centre's for the gateway; "" for the CA)."""
    path: str
    not_before: datetime | None = None
    not_after: datetime | None = None
    sha256: str | None = None

    def validity(self, now: datetime, warning: timedelta) -> Validity:
        if self.not_before is None or self.not_after is None:
            return Validity.NONE
        if now < self.not_before:
            return Validity.NOT_YET_VALID
        if now > self.not_after:
            return Validity.EXPIRED
        return Validity.EXPIRING if self.not_after - now <= warning else Validity.VALID

    def days_left(self, now: datetime) -> int | None:
        """Whole days until the end of validity (negative once past it)."""
        return None if self.not_after is None else (self.not_after - now) // timedelta(days=1)


def validities(
    certificates: Sequence[KnownCertificate], now: datetime, warning: timedelta
) -> list[Validity]:
    """Each certificate's validity, in order: as ``KnownCertificate.validity`` says, except
    that a participant's ending or ended certificate is ``RENEWING`` while its next one is
    ``VALID``."""
    states = [certificate.validity(now, warning) for certificate in certificates]
    renewed = {
        certificate.owner
        for certificate, state in zip(certificates, states, strict=True)
        if certificate.role == "participant-next" and state is Validity.VALID
    }
    return [
        Validity.RENEWING
        if certificate.role == "participant"
        and certificate.owner in renewed
        and state in (Validity.EXPIRING, Validity.EXPIRED)
        else state
        for certificate, state in zip(certificates, states, strict=True)
    ]


def _known(
    role: str, owner: str, location: Path, certificate: x509.Certificate
) -> KnownCertificate:
    return KnownCertificate(
        role,
        owner,
        str(location),
        certificate.not_valid_before_utc,
        certificate.not_valid_after_utc,
        certificate_sha256(certificate),
    )


def _loaded(role: str, owner: str, location: Path) -> KnownCertificate:
    if not location.is_file():
        return KnownCertificate(role, owner, str(location))
    return _known(role, owner, location, read_certificate(location))


def known_certificates(
    keys: KeyStore, centre: str, participants: Sequence[str]
) -> list[KnownCertificate]:
    """Each CA's certificate (``ca.pem``: two while the centre rolls its CA over), the
    gateway's and each participant's, and the one a participant renews to where there is one
    (a damaged file raises ``KeyFileError``, as at start)."""
    found = [
        *(_known("ca", "", keys.ca_path, ca) for ca in read_authorities(keys.ca_path)),
        _loaded("gateway", centre, keys.gateway.certificate_path),
    ]
    for code in participants:
        found.append(_loaded("participant", code, keys.participant(code).certificate_path))
        renewal = keys.next_participant(code).certificate_path
        if renewal.is_file():
            found.append(_loaded("participant-next", code, renewal))
    return found


class CertificateWatch:
    """Logs the certificates that need attention: each one again only when its validity or
    its days left have changed since it was last logged (at most once a day each)."""

    def __init__(self, certificates: Sequence[KnownCertificate], warning: timedelta) -> None:
        self._certificates = list(certificates)
        self._warning = warning
        self._logged: dict[tuple[str, str | None], tuple[Validity, int | None]] = {}
        """What was last logged of each certificate, by file and SHA-256 (one file, ca.pem,
        may hold two)."""

    def follow(self, certificates: Sequence[KnownCertificate]) -> None:
        """Watch ``certificates`` from now on (reloaded): those still there keep what was
        logged of them."""
        self._certificates = list(certificates)
        kept = {_watched(certificate) for certificate in certificates}
        self._logged = {key: seen for key, seen in self._logged.items() if key in kept}

    def check(self, now: datetime) -> list[KnownCertificate]:
        """The certificates logged this time."""
        logged = []
        states = validities(self._certificates, now, self._warning)
        for certificate, validity in zip(self._certificates, states, strict=True):
            key = _watched(certificate)
            if validity not in ATTENTION:
                self._logged.pop(key, None)
                continue
            seen = (validity, certificate.days_left(now))
            if self._logged.get(key) == seen:
                continue
            self._logged[key] = seen
            logged.append(certificate)
            LOG.log(
                logging.WARNING if validity is Validity.EXPIRING else logging.ERROR,
                "event=certificate-%s certificate=%s owner=%s not_after=%s days_left=%d path=%s "
                "sha256=%s",
                validity.value,
                certificate.role,
                certificate.owner or "-",
                f"{certificate.not_after:%Y-%m-%dT%H:%M:%SZ}",
                seen[1],
                certificate.path,
                certificate.sha256 or "-",
            )
        return logged


def _watched(certificate: KnownCertificate) -> tuple[str, str | None]:
    return certificate.path, certificate.sha256
