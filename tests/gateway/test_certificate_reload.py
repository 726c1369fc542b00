"""Certificates reloaded while the gateway runs (SIGHUP): a bank's next certificate pinned,
then made its current one, without a restart; a reload that cannot be used changes nothing and
says why; SIGHUP reaches every gateway process."""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest

from gateway.composition import reload_certificates
from gateway.configuration.settings import ConfigurationError
from gateway.security.certificate_validity import known_certificates
from gateway.security.keys import KeyPair, KeyStore, certificate_sha256, read_certificate
from gateway.security.signatures import SignatureProblemError, SignatureVerifier
from gateway.service.clock import ManualClock
from gateway.start_errors import KeyFileError
from gateway.transport.http_app import Runtime
from gateway.transport.tls import client_context
from tests.conftest import config_copy
from tests.gateway.conftest import (
    BOCOM,
    C100,
    C100_ID,
    CCB,
    START,
    ServeProcess,
    listening,
    serve_process,
    wait_until,
    wait_until_serving,
)
from tests.gateway.test_certificate_renewal import next_pin, pin_next_certificate, post, signed


def copy_pair(source: KeyPair, target: KeyPair) -> KeyPair:
    """``source``'s key and certificate copied over ``target``'s files; ``target``."""
    shutil.copy(source.key_path, target.key_path)
    shutil.copy(source.certificate_path, target.certificate_path)
    return target


def with_id(number: int) -> bytes:
    return C100.replace(C100_ID.encode(), f"B30129000000720261123{number:04d}".encode())


@dataclass
class Serving:
    runtime: Runtime
    url: str
    keys: KeyStore
    participants: Path
    """The participants file the gateway was started with (the test edits it)."""


@pytest.fixture
async def serving(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Serving]:
    """A gateway started with BOCOM's current certificate only; its next one is issued, in the
    key folder, not pinned yet."""
    from gateway.composition import open_runtime

    monkeypatch.setenv("GATEWAY_STATE_DIR", str(tmp_path / "state"))
    settings = config_copy(tmp_path, 8443)
    runtime = await open_runtime(settings, ManualClock(START), run_ticker=False)
    keys = KeyStore(tmp_path / "state")
    keys.issue(BOCOM, START - timedelta(days=1), START + timedelta(days=400), renewal=True)
    async with listening(runtime, keys) as site:
        yield Serving(
            runtime,
            f"https://127.0.0.1:{site.port}",
            keys,
            settings.parent / "participants.toml",
        )


async def test_a_bank_renews_and_switches_certificates_without_a_restart(
    serving: Serving, tmp_path: Path
) -> None:
    keys, url = serving.keys, serving.url
    current, renewal = keys.participant(BOCOM), keys.next_participant(BOCOM)
    old_pin = keys.pins([BOCOM])[BOCOM]
    # Not pinned yet: the next certificate is refused at the TLS pin.
    status, answer = await post(keys, url, renewal, signed(renewal, with_id(1)))
    assert status == 403 and answer.startswith(b"DS0E the client certificate"), answer
    pin_next_certificate(serving.participants, next_pin(keys))
    reloaded = reload_certificates(serving.runtime)
    assert (reloaded.added, reloaded.removed, reloaded.not_applied) == (
        {BOCOM: [next_pin(keys)]},
        {},
        [],
    )
    assert (await post(keys, url, renewal, signed(renewal, with_id(2))))[0] == 200
    assert (await post(keys, url, current, signed(current, with_id(3))))[0] == 200
    # The bank has switched: the next certificate becomes its current one, the old one goes.
    old = copy_pair(current, KeyPair(tmp_path / "old.key", tmp_path / "old.pem"))
    renewal.key_path.replace(current.key_path)
    renewal.certificate_path.replace(current.certificate_path)
    text = serving.participants.read_text()
    serving.participants.write_text(
        text.replace(f'next_certificate_sha256 = "{keys.pins([BOCOM])[BOCOM]}"\n', "")
    )
    reloaded = reload_certificates(serving.runtime)
    assert (reloaded.added, reloaded.removed) == ({}, {BOCOM: [old_pin]})
    status, answer = await post(keys, url, old, signed(old, with_id(4)))
    assert status == 403 and answer.startswith(b"DS0E"), answer
    assert (await post(keys, url, current, signed(current, with_id(5))))[0] == 200
    assert len(serving.runtime.clearing.core.packages) == 3
    # /metrics and the certificate watch follow the reload: one BOCOM certificate, the new.
    listed = [entry for entry in serving.runtime.certificates if entry.owner == BOCOM]
    assert [(entry.role, entry.sha256) for entry in listed] == [
        ("participant", keys.pins([BOCOM])[BOCOM])
    ]


async def test_a_reload_that_cannot_be_used_changes_nothing_and_says_why(
    serving: Serving,
) -> None:
    keys, url, runtime = serving.keys, serving.url, serving.runtime
    pins = dict(runtime.pins)
    original = serving.participants.read_text()
    pin_next_certificate(serving.participants, "ab" * 32)
    with pytest.raises(KeyFileError) as failure:
        reload_certificates(runtime)
    assert str(failure.value).startswith(
        f"{keys.next_participant(BOCOM).certificate_path} is not the certificate {BOCOM} is "
        f"pinned to in {serving.participants} (next_certificate_sha256 {'ab' * 32}, the "
        "file's is "
    )
    assert dict(runtime.pins) == pins
    current = keys.participant(BOCOM)
    assert (await post(keys, url, current, signed(current, with_id(1))))[0] == 200
    # A participant removed: that takes a restart.
    agency = '[[special]]\ncode = "990100000017"'
    assert agency in original
    serving.participants.write_text(original[: original.index(agency)])
    with pytest.raises(ConfigurationError) as refused:
        reload_certificates(runtime)
    assert str(refused.value) == (
        f"{serving.participants}: participants were added (none) or removed (990100000017); "
        "a running gateway reloads certificates only: restart it to take the participants' "
        "changes"
    )
    assert dict(runtime.pins) == pins
    # Other changes are not taken, and the reload says so (the pins are).
    serving.participants.write_text(original.replace("China Construction Bank", "CCB", 1))
    pin_next_certificate(serving.participants, next_pin(keys))
    reloaded = reload_certificates(runtime)
    assert reloaded.added == {BOCOM: [next_pin(keys)]}
    assert reloaded.not_applied == [
        f"{serving.participants}: changes other than certificate pins take effect at the next start"
    ]
    assert runtime.gateway.directory.name(CCB) == "China Construction Bank"


CENTRE = "999999999999"


def without_next_certificate(keys: KeyStore) -> None:
    """BOCOM's next certificate (which the fixture issues) taken away: a reload then changes
    the gateway's certificate alone."""
    renewal = keys.next_participant(BOCOM)
    renewal.certificate_path.unlink()
    renewal.key_path.unlink()


async def presented(keys: KeyStore, url: str) -> str:
    """The pin of the certificate the gateway presents on a new TLS connection."""
    host, port = url.removeprefix("https://").split(":")
    _, writer = await asyncio.open_connection(
        host, int(port), ssl=client_context(keys, keys.participant(BOCOM))
    )
    try:
        ssl_object = writer.get_extra_info("ssl_object")
        return hashlib.sha256(ssl_object.getpeercert(binary_form=True)).hexdigest()
    finally:
        writer.close()
        await writer.wait_closed()


def signed_by(answer: bytes, pair: KeyPair, keys: KeyStore) -> bool:
    """The gateway's answer verifies with ``pair``'s certificate (and no other)."""
    verifier = SignatureVerifier({CENTRE: pair.certificate()}, read_certificate(keys.ca_path))
    try:
        verifier.verify(answer, CENTRE, START)
    except SignatureProblemError:
        return False
    return True


async def test_the_gateway_renews_its_certificate_without_a_restart(
    serving: Serving, tmp_path: Path
) -> None:
    keys, url, runtime = serving.keys, serving.url, serving.runtime
    without_next_certificate(keys)
    old = copy_pair(keys.gateway, KeyPair(tmp_path / "old.key", tmp_path / "old.pem"))
    old_pin = certificate_sha256(old.certificate())
    assert await presented(keys, url) == old_pin
    current = keys.participant(BOCOM)
    keys.renew_gateway(CENTRE, START - timedelta(days=1), START + timedelta(days=800))
    new_pin = certificate_sha256(keys.gateway.certificate())
    # Not taken before the reload.
    status, answer = await post(keys, url, current, signed(current, with_id(1)))
    assert status == 200 and signed_by(answer, old, keys)
    reloaded = reload_certificates(runtime)
    assert (reloaded.added, reloaded.removed, reloaded.not_applied) == ({}, {}, [])
    assert reloaded.gateway_certificate == new_pin
    # The new certificate on new connections, and its key signs the answers.
    assert await presented(keys, url) == new_pin
    status, answer = await post(keys, url, current, signed(current, with_id(2)))
    assert status == 200 and signed_by(answer, keys.gateway, keys)
    assert not signed_by(answer, old, keys)
    # /metrics and the certificate watch follow it.
    [listed] = [entry for entry in runtime.certificates if entry.role == "gateway"]
    assert listed.sha256 == new_pin
    assert runtime.certificates == known_certificates(
        keys, CENTRE, runtime.gateway.directory.connecting
    )


async def test_a_renewed_gateway_certificate_the_banks_would_refuse_is_not_taken(
    serving: Serving, tmp_path: Path
) -> None:
    keys, url, runtime = serving.keys, serving.url, serving.runtime
    without_next_certificate(keys)
    pin = certificate_sha256(keys.gateway.certificate())
    gateway = keys.gateway
    saved = copy_pair(gateway, KeyPair(tmp_path / "saved.key", tmp_path / "saved.pem"))
    # Ended before now.
    keys.renew_gateway(CENTRE, START - timedelta(days=30), START - timedelta(days=1))
    with pytest.raises(KeyFileError) as failure:
        reload_certificates(runtime)
    assert str(failure.value) == (
        f"{gateway.certificate_path} is valid from 2026-10-24T00:55:00Z to "
        "2026-11-22T01:00:00Z, not now (2026-11-23T01:00:00Z): the banks would refuse it"
    )
    # A renewed certificate beside a key that is not its own.
    keys.renew_gateway(CENTRE, START - timedelta(days=1), START + timedelta(days=800))
    other = KeyStore(tmp_path / "other")
    other.initialise(CENTRE, [], START)
    shutil.copy(other.gateway.key_path, gateway.key_path)
    with pytest.raises(KeyFileError) as failure:
        reload_certificates(runtime)
    assert str(failure.value) == (
        f"{gateway.key_path} and {gateway.certificate_path}: not a usable signing key and "
        "certificate (the certificate is not the key's); `isogw keys init --force` writes new "
        "development keys"
    )
    # Issued by another CA, which the banks do not trust.
    shutil.copy(other.gateway.certificate_path, gateway.certificate_path)
    with pytest.raises(KeyFileError) as failure:
        reload_certificates(runtime)
    assert str(failure.value) == (
        f"{gateway.certificate_path} is not issued by the CA the gateway runs with "
        "(CN=isogw development CA): the banks would refuse it. A new CA takes a restart"
    )
    # Nothing changed: the TLS certificate, the signer, the list.
    copy_pair(saved, gateway)
    assert await presented(keys, url) == pin
    current = keys.participant(BOCOM)
    status, answer = await post(keys, url, current, signed(current, with_id(1)))
    assert status == 200 and signed_by(answer, gateway, keys)
    [listed] = [entry for entry in runtime.certificates if entry.role == "gateway"]
    assert listed.sha256 == pin
    # A new CA, and a gateway certificate of it: both wait for the next start.
    shutil.copy(other.ca_path, keys.ca_path)
    copy_pair(other.gateway, gateway)
    reloaded = reload_certificates(runtime)
    assert reloaded.not_applied == [
        f"the CA certificate ({keys.ca_path}) changed: TLS and signatures use the one loaded "
        "at start until the next start, and so does the gateway's certificate, which changed "
        "with it"
    ]
    assert reloaded.gateway_certificate is None
    assert [entry.sha256 for entry in runtime.certificates if entry.role == "gateway"] == [pin]


def test_sighup_reloads_certificates_in_every_gateway_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = 20000 + (os.getpid() + 11) % 10000
    settings = config_copy(tmp_path, port)  # two processes, as the sample configuration
    state = tmp_path / "state"
    monkeypatch.setenv("GATEWAY_STATE_DIR", str(state))
    with serve_process(settings, tmp_path) as server:
        statuses = asyncio.run(_hang_up(f"https://127.0.0.1:{port}", state, settings, server))
        server.process.send_signal(signal.SIGINT)
        assert server.process.wait(timeout=60) == 0
    output = server.log.read_text()
    assert "Traceback" not in output and " ERROR " not in output, output
    # Each new connection may reach either process: every one was accepted.
    assert statuses == [200] * 6


async def _hang_up(
    url: str,
    state: Path,
    settings: Path,
    server: ServeProcess,
) -> list[int]:
    keys = KeyStore(state)
    await wait_until_serving(url, keys, server.said)

    async def both_serve() -> bool:
        """The second process publishes its figures once it serves (a process still
        starting keeps a SIGHUP for when it does; this test checks the running ones)."""
        async with (
            aiohttp.ClientSession() as session,
            session.get(
                url + "/metrics", ssl=client_context(keys, keys.participant(CCB))
            ) as answer,
        ):
            return 'isogw_process_info{process="1"' in await answer.text()

    await wait_until(both_serve, "the second gateway process to serve")
    keys.issue(BOCOM, START - timedelta(days=1), START + timedelta(days=4000), renewal=True)
    pin = next_pin(keys)
    pin_next_certificate(settings.parent / "participants.toml", pin)
    # The gateway renews its own certificate at the same time.
    keys.renew_gateway(CENTRE, START - timedelta(days=1), START + timedelta(days=800))
    gateway_pin = certificate_sha256(keys.gateway.certificate())
    server.process.send_signal(signal.SIGHUP)

    async def both_reloaded() -> bool:
        text = server.log.read_text()
        return all(
            f"event=certificates-reloaded process={slot} added={BOCOM}:{pin} removed=- "
            f"gateway_certificate={gateway_pin}" in text
            for slot in (0, 1)
        )

    try:
        await wait_until(both_reloaded, "both processes to reload their certificates", 20)
    except AssertionError:
        raise AssertionError(server.log.read_text()) from None
    assert [await presented(keys, url) for _ in range(6)] == [gateway_pin] * 6
    renewal = keys.next_participant(BOCOM)
    statuses = []
    for number in range(6):
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                url + "/v1/messages",
                data=signed(renewal, with_id(number)),
                headers={"Content-Type": "application/xml"},
                ssl=client_context(keys, renewal),
            ) as answer,
        ):
            statuses.append(answer.status)
    return statuses
