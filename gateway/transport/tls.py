"""TLS contexts: TLS 1.3 at least, client certificates required and checked against the CA;
each participant is then identified by the pin (SHA-256) of the certificate it presented."""

from __future__ import annotations

import hashlib
import ssl
from dataclasses import dataclass

from gateway.security.keys import REPLACE_HINT, KeyPair, KeyStore
from gateway.start_errors import KeyFileError


@dataclass
class GatewayContexts:
    """The gateway's TLS contexts: ``server`` for its listener, ``client`` for its pushes to
    the banks. A reload of the certificates builds new ones from the key folder and puts them
    here, and each connection made from then on takes the one here: a context can take a new
    certificate or CA, but never forget a CA, so a CA taken out of ``ca.pem`` needs new ones.
    A connection already open keeps the one it was made with."""

    server: ssl.SSLContext
    client: ssl.SSLContext

    @classmethod
    def from_keys(cls, keys: KeyStore) -> GatewayContexts:
        return cls(server_context(keys), client_context(keys, keys.gateway))

    def take(self, renewed: GatewayContexts) -> None:
        """Use ``renewed``'s contexts from now on."""
        self.server, self.client = renewed.server, renewed.client


def server_context(keys: KeyStore) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.verify_mode = ssl.CERT_REQUIRED
    _load(context, keys, keys.gateway)
    return context


def client_context(keys: KeyStore, pair: KeyPair) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    _load(context, keys, pair)
    return context


def _load(context: ssl.SSLContext, keys: KeyStore, pair: KeyPair) -> None:
    """The CA to check the other side against, and our own certificate and key."""
    try:
        context.load_verify_locations(cafile=str(keys.ca_path))
    except (ssl.SSLError, OSError) as error:
        raise KeyFileError(
            f"{keys.ca_path}: not a usable CA certificate ({error}); {REPLACE_HINT}"
        ) from error
    try:
        context.load_cert_chain(str(pair.certificate_path), str(pair.key_path))
    except (ssl.SSLError, OSError) as error:
        raise KeyFileError(
            f"{pair.certificate_path} and {pair.key_path}: not a usable certificate and key "
            f"({error}); {REPLACE_HINT}"
        ) from error


def peer_pin(ssl_object: ssl.SSLObject | ssl.SSLSocket | None) -> str | None:
    """SHA-256 of the client certificate (DER), or None without one."""
    if ssl_object is None:
        return None
    certificate = ssl_object.getpeercert(binary_form=True)
    return hashlib.sha256(certificate).hexdigest() if certificate else None
