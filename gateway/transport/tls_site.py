"""The HTTPS listener: it runs each TLS handshake itself, so that a refused one is seen.

asyncio's own TLS server drops a failed handshake without a word (an ``ssl.SSLError`` is an
``OSError``, which it reports only in debug mode): a bank whose certificate has expired, a
client without a certificate or with one from another CA would leave no trace, and would
never count towards the authentication alarm. This site accepts the TCP connection, runs the
handshake with ``loop.start_tls`` (the same context, the same TLS machinery), then hands the
TLS connection to aiohttp. A refused handshake is reported with the peer's address and
OpenSSL's reason; one about the client certificate is an authentication failure.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

LOG = logging.getLogger("isogw.tls")

CERTIFICATE_REASONS = frozenset(
    {"PEER_DID_NOT_RETURN_A_CERTIFICATE", "CERTIFICATE_VERIFY_FAILED", "BAD_SIGNATURE"}
)
"""OpenSSL reasons that say the client did not prove who it is (no certificate, one that does
not check out, a proof of its key that does not verify): authentication failures. Others (a
TLS 1.2 client, plain HTTP on the TLS port) are refused and logged, but are not about
identity; nor is an alert the client sends because it does not trust the gateway."""


@dataclass(frozen=True)
class RefusedHandshake:
    source: str
    """The peer's address."""
    reason: str
    """OpenSSL's reason, with the certificate check's own words when it has them."""
    authentication: bool
    """True when the reason is the client certificate (missing, unknown CA, expired...)."""


OnRefused = Callable[[RefusedHandshake], None]


def refused_handshake(source: str, error: ssl.SSLError) -> RefusedHandshake:
    reason = error.reason or type(error).__name__
    detail = getattr(error, "verify_message", None)
    described = f"{reason} ({detail})" if detail else reason
    authentication = reason in CERTIFICATE_REASONS or isinstance(
        error, ssl.SSLCertVerificationError
    )
    return RefusedHandshake(source, described, authentication)


class _Acceptor(asyncio.Protocol):
    """A freshly accepted TCP connection: reading waits until the handshake takes over."""

    def __init__(self, site: TlsSite) -> None:
        self._site = site

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        # Nothing is read before the TLS layer is in place: the ClientHello waits in the
        # socket (start_tls resumes reading once it has taken the connection over).
        transport.pause_reading()
        self._site.handshake(transport)

    def data_received(self, data: bytes) -> None:  # pragma: no cover - reading is paused
        raise AssertionError("data before the TLS handshake")


class TlsSite(web.TCPSite):
    """aiohttp's TCP site, with the TLS handshake run here (see the module's text).

    ``handshake_seconds`` bounds one handshake; ``max_handshakes`` bounds those in progress at
    once (a connection beyond it is closed at once and logged)."""

    def __init__(
        self,
        runner: web.BaseRunner,
        host: str,
        port: int,
        *,
        ssl_context: Callable[[], ssl.SSLContext],
        on_refused: OnRefused,
        handshake_seconds: float,
        max_handshakes: int,
        reuse_port: bool = False,
    ) -> None:
        """``ssl_context`` gives the context for each new connection (a reload of the
        certificates replaces it)."""
        super().__init__(runner, host, port, ssl_context=ssl_context(), reuse_port=reuse_port)
        self._context = ssl_context
        self._on_refused = on_refused
        self._handshake_seconds = handshake_seconds
        self._max_handshakes = max_handshakes
        self._handshakes: set[asyncio.Task[None]] = set()

    @property
    def handshakes_in_progress(self) -> int:
        return len(self._handshakes)

    async def start(self) -> None:
        await web.BaseSite.start(self)  # registers the site with its runner
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _Acceptor(self),
            self._host,
            self._port,
            backlog=self._backlog,
            reuse_address=self._reuse_address,
            reuse_port=self._reuse_port,
        )
        sockets = self._server.sockets
        self._bound_port = sockets[0].getsockname()[1] if sockets else self._port

    async def stop(self) -> None:
        for task in list(self._handshakes):
            task.cancel()
        await super().stop()

    def handshake(self, transport: asyncio.Transport) -> None:
        if len(self._handshakes) >= self._max_handshakes:
            LOG.warning(
                "event=tls-refused source=%s reason=too-many-handshakes in_progress=%d "
                "(setting http.max_tls_handshakes)",
                _source(transport),
                len(self._handshakes),
            )
            transport.abort()
            return
        task = asyncio.get_running_loop().create_task(self._handshake(transport))
        self._handshakes.add(task)
        task.add_done_callback(self._handshakes.discard)

    async def _handshake(self, transport: asyncio.Transport) -> None:
        source = _source(transport)
        server = self._runner.server
        assert server is not None
        protocol = server()
        try:
            secured = await asyncio.get_running_loop().start_tls(
                transport,
                protocol,
                self._context(),
                server_side=True,
                ssl_handshake_timeout=self._handshake_seconds,
            )
        except ssl.SSLError as error:
            transport.abort()
            self._on_refused(refused_handshake(source, error))
            return
        except (OSError, TimeoutError) as error:
            # Gone before the handshake ended (a port check, a dropped link) or too slow: no
            # identity was offered, so this is not an authentication failure.
            transport.abort()
            LOG.info(
                "event=tls-incomplete source=%s reason=%s",
                source,
                str(error) or type(error).__name__,
            )
            return
        except asyncio.CancelledError:
            transport.abort()
            raise
        if secured is None:  # pragma: no cover - start_tls returns a transport or raises
            transport.abort()
            return
        protocol.connection_made(secured)


def _source(transport: asyncio.BaseTransport) -> str:
    peer = transport.get_extra_info("peername")
    return str(peer[0]) if peer else "unknown"
