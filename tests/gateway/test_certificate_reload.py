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
from gateway.security.keys import KeyPair, KeyStore, certificate_sha256, read_authorities
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
    ICBC,
    START,
    ServeProcess,
    copy_pair,
    listening,
    serve_process,
    wait_until,
    wait_until_serving,
)
from tests.gateway.test_certificate_renewal import next_pin, pin_next_certificate, post, signed


def reload_refused(runtime: Runtime, kind: type[Exception] = KeyFileError) -> str:
    """Why ``reload_certificates`` refused the files as they are (``kind`` raised)."""
    with pytest.raises(kind) as refusal:
        reload_certificates(runtime)
    return str(refusal.value)


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
    async with listening(runtime) as site:
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
    assert reload_refused(runtime).startswith(
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
    assert reload_refused(runtime, ConfigurationError) == (
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
    verifier = SignatureVerifier({CENTRE: pair.certificate()}, read_authorities(keys.ca_path))
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
    assert reload_refused(runtime) == (
        f"{gateway.certificate_path} is valid from 2026-10-24T00:55:00Z to "
        "2026-11-22T01:00:00Z, not now (2026-11-23T01:00:00Z): the banks would refuse it"
    )
    # A renewed certificate beside a key that is not its own.
    keys.renew_gateway(CENTRE, START - timedelta(days=1), START + timedelta(days=800))
    other = KeyStore(tmp_path / "other")
    other.initialise(CENTRE, [], START)
    shutil.copy(other.gateway.key_path, gateway.key_path)
    assert reload_refused(runtime) == (
        f"{gateway.key_path} and {gateway.certificate_path}: not a usable signing key and "
        "certificate (the certificate is not the key's); `isogw keys init --force` writes new "
        "development keys"
    )
    # Issued by another CA, which the banks do not trust.
    shutil.copy(other.gateway.certificate_path, gateway.certificate_path)
    assert reload_refused(runtime) == (
        f"{gateway.certificate_path}, the gateway's certificate, is not issued by a CA of "
        f"{keys.ca_path} (CN=isogw development CA): the banks would refuse its connections and "
        "its signatures: put there the gateway's certificate from a CA of ca.pem"
    )
    # Nothing changed: the TLS certificate, the signer, the list.
    copy_pair(saved, gateway)
    assert await presented(keys, url) == pin
    current = keys.participant(BOCOM)
    status, answer = await post(keys, url, current, signed(current, with_id(1)))
    assert status == 200 and signed_by(answer, gateway, keys)
    [listed] = [entry for entry in runtime.certificates if entry.role == "gateway"]
    assert listed.sha256 == pin
    # The CA replaced outright, with a gateway certificate of the new one: the banks'
    # certificates still come from the old CA, so it cannot go yet.
    shutil.copy(other.ca_path, keys.ca_path)
    copy_pair(other.gateway, gateway)
    assert reload_refused(runtime) == (
        f"{keys.participant(ICBC).certificate_path}, {ICBC}'s certificate, is not issued by a CA "
        f"of {keys.ca_path} (CN=isogw development CA): TLS would refuse the bank's connections, "
        "and its signatures would be refused (DS0F): put there the bank's certificate from a CA "
        "of ca.pem"
    )
    assert [entry.sha256 for entry in runtime.certificates if entry.role == "gateway"] == [pin]
    assert len(runtime.certificate_authorities) == 1


async def refused_at_handshake(keys: KeyStore, url: str, pair: KeyPair) -> bool:
    """Whether the gateway ends the TLS handshake of a client presenting ``pair``."""
    try:
        await post(keys, url, pair, b"")
    except aiohttp.ClientError:
        return True
    return False


async def test_the_centre_rolls_its_ca_over_without_a_restart(
    serving: Serving, tmp_path: Path
) -> None:
    """A new CA goes into ca.pem beside the old one; the gateway's certificate and the banks'
    move to it, each step taken with a SIGHUP; the old CA leaves ca.pem last. Every bank keeps
    sending throughout."""
    keys, url, runtime = serving.keys, serving.url, serving.runtime
    without_next_certificate(keys)
    connecting = runtime.gateway.directory.connecting
    new = KeyStore(tmp_path / "new")
    new.initialise(CENTRE, connecting, START, ca_name="isogw development CA G2")
    old_authority, new_authority = read_authorities(keys.ca_path) + read_authorities(new.ca_path)
    old_bocom = copy_pair(
        keys.participant(BOCOM), KeyPair(tmp_path / "old.key", tmp_path / "old.pem")
    )
    # The new CA is added (the banks get the same file, so they trust both from now on).
    keys.ca_path.write_bytes(keys.ca_path.read_bytes() + new.ca_path.read_bytes())
    renewal = copy_pair(new.participant(BOCOM), keys.next_participant(BOCOM))
    assert await refused_at_handshake(keys, url, renewal)  # the running gateway knows one CA
    renewal_pin = next_pin(keys)
    pin_next_certificate(serving.participants, renewal_pin)
    reloaded = reload_certificates(runtime)
    assert reloaded.added_authorities == [certificate_sha256(new_authority)]
    assert (reloaded.added, reloaded.removed_authorities, reloaded.not_applied) == (
        {BOCOM: [renewal_pin]},
        [],
        [],
    )
    # BOCOM's certificate of the new CA: the handshake, the pin and the signature all pass.
    assert (await post(keys, url, renewal, signed(renewal, with_id(1))))[0] == 200
    assert (await post(keys, url, old_bocom, signed(old_bocom, with_id(2))))[0] == 200
    assert [entry.sha256 for entry in runtime.certificates if entry.role == "ca"] == [
        certificate_sha256(old_authority),
        certificate_sha256(new_authority),
    ]
    # The gateway's certificate from the new CA.
    copy_pair(new.gateway, keys.gateway)
    reloaded = reload_certificates(runtime)
    assert reloaded.gateway_certificate == certificate_sha256(keys.gateway.certificate())
    assert await presented(keys, url) == reloaded.gateway_certificate
    status, answer = await post(keys, url, renewal, signed(renewal, with_id(3)))
    assert status == 200 and signed_by(answer, new.gateway, keys)
    # The old CA cannot go while banks' certificates come from it; nothing changes.
    keys.ca_path.write_bytes(new.ca_path.read_bytes())
    assert reload_refused(runtime).startswith(
        f"{keys.participant(ICBC).certificate_path}, {ICBC}'s certificate, is not issued by a CA "
        f"of {keys.ca_path} (CN=isogw development CA G2): "
    )
    assert len(runtime.certificate_authorities) == 2
    assert (await post(keys, url, old_bocom, signed(old_bocom, with_id(4))))[0] == 200
    # Every bank has moved (BOCOM's next certificate is its current one): the old CA goes.
    for code in connecting:
        copy_pair(new.participant(code), keys.participant(code))
    without_next_certificate(keys)
    text = serving.participants.read_text()
    serving.participants.write_text(
        text.replace(f'next_certificate_sha256 = "{renewal_pin}"\n', "")
    )
    reloaded = reload_certificates(runtime)
    assert reloaded.removed_authorities == [certificate_sha256(old_authority)]
    assert reloaded.not_applied == []
    current = keys.participant(BOCOM)
    assert (await post(keys, url, current, signed(current, with_id(5))))[0] == 200
    # A certificate of the old CA no longer completes a handshake (new TLS contexts).
    assert await refused_at_handshake(keys, url, old_bocom)
    assert runtime.certificate_authorities == (new_authority,)
    assert [entry.sha256 for entry in runtime.certificates if entry.role == "ca"] == [
        certificate_sha256(new_authority)
    ]
    assert len(runtime.clearing.core.packages) == 5


async def test_a_ca_renewed_under_the_same_name_is_told_apart(
    serving: Serving, tmp_path: Path
) -> None:
    """The new CA may keep the old one's name (a new key): each certificate names its CA's key
    (authority key identifier), so TLS checks it against the right one of the two."""
    keys, url, runtime = serving.keys, serving.url, serving.runtime
    without_next_certificate(keys)
    new = KeyStore(tmp_path / "new")
    new.initialise(CENTRE, [BOCOM], START)
    [old_authority], [new_authority] = read_authorities(keys.ca_path), read_authorities(new.ca_path)
    assert old_authority.subject == new_authority.subject
    keys.ca_path.write_bytes(keys.ca_path.read_bytes() + new.ca_path.read_bytes())
    renewal = copy_pair(new.participant(BOCOM), keys.next_participant(BOCOM))
    pin_next_certificate(serving.participants, next_pin(keys))
    assert reload_certificates(runtime).added_authorities == [certificate_sha256(new_authority)]
    assert (await post(keys, url, renewal, signed(renewal, with_id(1))))[0] == 200
    current = keys.participant(BOCOM)
    assert (await post(keys, url, current, signed(current, with_id(2))))[0] == 200


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
