"""Refused TLS handshakes are seen: each is logged with its source and OpenSSL's reason, one
about the client certificate is an authentication failure, and three in a row raise the alarm
(asyncio's own TLS server would drop them without a word)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest

from gateway.security.keys import KeyStore
from gateway.store.authentication_failures import failing
from gateway.transport.tls import client_context
from tests.gateway.conftest import BOCOM, CENTRE, START, Harness, wait_until

UNLISTED = "308584000013"
"""A bank code the configuration does not list (its certificate is not pinned)."""


async def shared_count(harness: Harness, source: str) -> int:
    """The source's consecutive failures in the ledger the gateway processes share."""
    async with harness.runtime.clearing.engine.connect() as connection:
        return await failing(connection, source)


def _port(harness: Harness) -> int:
    return int(harness.url.rsplit(":", 1)[1])


async def _connect_once(harness: Harness, context: ssl.SSLContext) -> None:
    """One TCP connection, one handshake, one request if the handshake lets it through."""
    with contextlib.suppress(OSError, ssl.SSLError, ConnectionError):
        reader, writer = await asyncio.open_connection("127.0.0.1", _port(harness), ssl=context)
        try:
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: gateway\r\n\r\n")
            await writer.drain()
            await reader.read()
        finally:
            writer.close()


def _no_certificate(harness: Harness, tmp_path: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(harness.keys.ca_path))


def _expired(harness: Harness, tmp_path: Path) -> ssl.SSLContext:
    pair = harness.keys.issue(UNLISTED, START - timedelta(days=400), START - timedelta(days=1))
    return client_context(harness.keys, pair)


def _unknown_ca(harness: Harness, tmp_path: Path) -> ssl.SSLContext:
    stranger = KeyStore(tmp_path / "elsewhere")
    stranger.initialise(CENTRE, [BOCOM], START)
    return client_context(harness.keys, stranger.participant(BOCOM))


@pytest.mark.parametrize(
    ("client", "reason"),
    [
        (_no_certificate, "PEER_DID_NOT_RETURN_A_CERTIFICATE"),
        (_expired, "CERTIFICATE_VERIFY_FAILED (certificate has expired)"),
        (_unknown_ca, "CERTIFICATE_VERIFY_FAILED"),
    ],
    ids=["no-certificate", "expired", "unknown-ca"],
)
async def test_a_refused_client_certificate_is_an_authentication_failure(
    harness: Harness,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    client: object,
    reason: str,
) -> None:
    context = client(harness, tmp_path)  # type: ignore[operator]
    metrics = harness.runtime.metrics
    counts = harness.runtime.authentication.counts
    caplog.set_level(logging.WARNING, logger="isogw.http")
    for attempt in (1, 2, 3):
        await _connect_once(harness, context)

        async def counted(attempt: int = attempt) -> bool:
            return metrics.tls_refused["certificate"] == attempt

        await wait_until(counted, f"handshake {attempt} to be refused", seconds=10)
        await harness.runtime.authentication.settled()
        assert counts.failures == attempt
        assert await shared_count(harness, "127.0.0.1") == attempt
        assert counts.alarms == (1 if attempt == 3 else 0)
    failures = [
        record.getMessage()
        for record in caplog.records
        if "event=authentication-failure" in record.getMessage()
    ]
    assert len(failures) == 3
    assert all("source=127.0.0.1" in line and reason in line for line in failures), failures
    alarms = [record for record in caplog.records if "event=authentication-alarm" in record.msg]
    assert [record.levelname for record in alarms] == ["ERROR"]
    assert metrics.tls_refused["protocol"] == 0
    # The same counts on /metrics.
    async with (
        aiohttp.ClientSession() as session,
        session.get(harness.url + "/metrics", ssl=harness.context(BOCOM)) as response,
    ):
        text = await response.text()
    assert 'isogw_tls_refused_total{process="' in text
    assert any(line.endswith('kind="certificate"} 3') for line in text.splitlines()), text
    assert any(
        line.startswith("isogw_authentication_alarms_total") and line.endswith(" 1")
        for line in text.splitlines()
    ), text
    # A pinned bank's request from the same source ends the run of failures.
    await harness.outbox(BOCOM)
    await harness.runtime.authentication.settled()
    assert await shared_count(harness, "127.0.0.1") == 0


async def test_a_tls_1_2_client_is_refused_and_logged_but_is_not_an_authentication_failure(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="isogw.http")
    context = harness.context(BOCOM)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    await _connect_once(harness, context)
    metrics = harness.runtime.metrics

    async def refused() -> bool:
        return metrics.tls_refused["protocol"] == 1

    await wait_until(refused, "the TLS 1.2 handshake to be refused", seconds=10)
    await harness.runtime.authentication.settled()
    assert harness.runtime.authentication.counts.failures == 0
    assert await shared_count(harness, "127.0.0.1") == 0
    assert metrics.tls_refused["certificate"] == 0
    lines = [record.getMessage() for record in caplog.records]
    assert any(
        "event=tls-refused source=127.0.0.1" in line and "UNSUPPORTED_PROTOCOL" in line
        for line in lines
    ), lines


async def test_a_connection_closed_before_its_handshake_is_not_counted(harness: Harness) -> None:
    """A port check (connect, then close) offers no identity: neither refused nor a failure."""
    _, writer = await asyncio.open_connection("127.0.0.1", _port(harness))
    writer.close()
    await writer.wait_closed()
    # A real handshake afterwards shows the listener has dealt with the first connection.
    async with (
        aiohttp.ClientSession() as session,
        session.get(harness.url + "/healthz", ssl=harness.context(BOCOM)) as response,
    ):
        assert response.status == 200
    site = harness.site
    await wait_until(
        lambda: _true(site.handshakes_in_progress == 0), "the handshakes to end", seconds=10
    )
    metrics = harness.runtime.metrics
    assert (metrics.tls_refused["certificate"], metrics.tls_refused["protocol"]) == (0, 0)
    assert harness.runtime.authentication.counts.failures == 0


async def test_handshakes_in_progress_are_bounded(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    """Beyond ``http.max_tls_handshakes`` a new connection is closed at once and logged."""
    site = harness.site
    site._max_handshakes = 1
    caplog.set_level(logging.WARNING, logger="isogw.tls")
    # A client that connects and says nothing holds a handshake open.
    _, silent = await asyncio.open_connection("127.0.0.1", _port(harness))
    await wait_until(
        lambda: _true(site.handshakes_in_progress == 1), "the silent handshake", seconds=10
    )
    reader, writer = await asyncio.open_connection("127.0.0.1", _port(harness))
    assert await asyncio.wait_for(reader.read(), 10) == b""  # closed without a word
    writer.close()
    assert any("reason=too-many-handshakes" in record.getMessage() for record in caplog.records)
    silent.close()
    await wait_until(
        lambda: _true(site.handshakes_in_progress == 0), "the silent handshake to end", seconds=10
    )


async def _true(value: bool) -> bool:
    return value


async def test_a_client_refusing_the_gateways_certificate_is_not_its_authentication_failure(
    harness: Harness, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A bank that does not trust the gateway's CA ends the handshake itself (it resets the
    connection): logged with why, but the bank's own identity was never in question."""
    caplog.set_level(logging.INFO, logger="isogw.tls")
    stranger = KeyStore(tmp_path / "elsewhere")
    stranger.initialise(CENTRE, [BOCOM], START)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(cafile=str(stranger.ca_path))  # not the gateway's CA
    pair = harness.keys.participant(BOCOM)
    context.load_cert_chain(str(pair.certificate_path), str(pair.key_path))
    await _connect_once(harness, context)

    async def logged() -> bool:
        return any("event=tls-incomplete" in record.getMessage() for record in caplog.records)

    await wait_until(logged, "the handshake the client ended to be logged", seconds=10)
    line = next(r.getMessage() for r in caplog.records if "tls-incomplete" in r.getMessage())
    prefix = "event=tls-incomplete source=127.0.0.1 reason="
    assert line.startswith(prefix) and line.removeprefix(prefix), line  # the reason is named
    await harness.runtime.authentication.settled()
    assert harness.runtime.authentication.counts.failures == 0
    metrics = harness.runtime.metrics
    assert (metrics.tls_refused["certificate"], metrics.tls_refused["protocol"]) == (0, 0)
