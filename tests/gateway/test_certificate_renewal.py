"""A bank renewing its certificate: while the next one is configured beside the current one
(``participants/<code>.next.pem``, ``next_certificate_sha256``), the gateway accepts either,
for TLS and for XML signatures, so the bank switches when it is ready."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest
from lxml import etree

from gateway.composition import open_runtime
from gateway.security.certificate_validity import known_certificates
from gateway.security.keys import KeyPair, KeyStore
from gateway.security.signatures import (
    SignatureProblemError,
    SignatureVerifier,
    signer_from_files,
)
from gateway.service.clock import ManualClock
from gateway.start_errors import KeyFileError
from gateway.transport.http_app import Runtime
from gateway.transport.tls import client_context
from tests.conftest import CONFIG, config_copy
from tests.gateway.conftest import BOCOM, C100, C100_ID, CCB, START, listening

DS = "{http://www.w3.org/2000/09/xmldsig#}"
OTHER_ID = "B301290000007202611239998"


def signed(pair: KeyPair, message: bytes) -> bytes:
    return signer_from_files(pair).sign(message)


def without_key_info(message: bytes) -> bytes:
    """The same signature without the certificate it embeds (KeyInfo is outside what the
    signature covers): the verifier must find the key itself."""
    root = etree.fromstring(message)
    [key_info] = root.iter(f"{DS}KeyInfo")
    key_info.getparent().remove(key_info)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def pin_next_certificate(participants: Path, pin: str) -> None:
    """BOCOM's entry in the participants file ``participants`` also pins its next
    certificate."""
    entry = f'code = "{BOCOM}"\n'
    text = participants.read_text()
    assert entry in text
    participants.write_text(text.replace(entry, f'{entry}next_certificate_sha256 = "{pin}"\n', 1))


def next_pin(keys: KeyStore) -> str:
    """The pin of BOCOM's next certificate in the key folder."""
    pin = known_certificates(keys, "999999999999", [BOCOM])[-1].sha256
    assert pin is not None
    return pin


def renewing(tmp_path: Path, pin: str) -> Path:
    """A configuration copy where BOCOM's entry also pins its next certificate."""
    settings = config_copy(tmp_path, 8443)
    pin_next_certificate(settings.parent / "participants.toml", pin)
    return settings


@pytest.fixture
async def keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> KeyStore:
    """Development keys, and BOCOM's next certificate beside its current one."""
    state = tmp_path / "state"
    monkeypatch.setenv("GATEWAY_STATE_DIR", str(state))
    runtime = await open_runtime(CONFIG, ManualClock(START), run_ticker=False)
    await runtime.clearing.close()
    store = KeyStore(state)
    store.issue(BOCOM, START - timedelta(days=1), START + timedelta(days=400), renewal=True)
    return store


@pytest.fixture
async def serving(keys: KeyStore, tmp_path: Path) -> AsyncIterator[tuple[Runtime, str]]:
    pin = keys.pins([BOCOM])[BOCOM]
    assert pin  # the current one; the next one's pin:
    assert next_pin(keys) != pin
    runtime = await open_runtime(
        renewing(tmp_path, next_pin(keys)), ManualClock(START), run_ticker=False
    )
    async with listening(runtime) as site:
        yield runtime, f"https://127.0.0.1:{site.port}"


async def post(keys: KeyStore, url: str, pair: KeyPair, body: bytes) -> tuple[int, bytes]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            url + "/v1/messages",
            data=body,
            headers={"Content-Type": "application/xml"},
            ssl=client_context(keys, pair),
        ) as response,
    ):
        return response.status, await response.read()


async def test_either_certificate_is_accepted_for_tls_and_signatures_while_renewing(
    keys: KeyStore, serving: tuple[Runtime, str]
) -> None:
    runtime, url = serving
    current, renewal = keys.participant(BOCOM), keys.next_participant(BOCOM)
    assert sorted(code for code in runtime.pins.values() if code == BOCOM) == [BOCOM, BOCOM]
    # The next certificate on the connection and on the signature.
    assert (await post(keys, url, renewal, signed(renewal, C100)))[0] == 200
    # The current one still works for another message.
    other = C100.replace(C100_ID.encode(), OTHER_ID.encode())
    assert (await post(keys, url, current, signed(current, other)))[0] == 200
    assert len(runtime.clearing.core.packages) == 2
    # Another bank's certificate is still not BOCOM's: DS0E.
    status, answer = await post(keys, url, current, signed(keys.participant(CCB), C100))
    assert status == 400 and b"<RjctgPtyRsn>DS0E</RjctgPtyRsn>" in answer


async def test_a_signature_without_its_certificate_is_checked_with_each_pinned_key(
    keys: KeyStore,
) -> None:
    certificates = [
        keys.participant(BOCOM).certificate(),
        keys.next_participant(BOCOM).certificate(),
    ]
    verifier = SignatureVerifier({BOCOM: certificates})
    for pair in (keys.participant(BOCOM), keys.next_participant(BOCOM)):
        verifier.verify(without_key_info(signed(pair, C100)), BOCOM, START)
    with pytest.raises(SignatureProblemError) as problem:
        verifier.verify(without_key_info(signed(keys.participant(CCB), C100)), BOCOM, START)
    assert problem.value.code == "DS01"
    # Only the current one pinned: the next one's signature is refused, as before renewal.
    with pytest.raises(SignatureProblemError) as problem:
        SignatureVerifier({BOCOM: certificates[0]}).verify(
            signed(keys.next_participant(BOCOM), C100), BOCOM, START
        )
    assert problem.value.code == "DS0E"


async def test_the_next_certificate_is_checked_like_the_current_one(
    keys: KeyStore, tmp_path: Path
) -> None:
    renewal = keys.next_participant(BOCOM).certificate_path
    settings = renewing(tmp_path / "wrong", "ab" * 32)
    with pytest.raises(KeyFileError) as failure:
        await open_runtime(settings, ManualClock(START), run_ticker=False)
    assert str(failure.value).startswith(
        f"{renewal} is not the certificate {BOCOM} is pinned to in "
        f"{settings.parent / 'participants.toml'} (next_certificate_sha256 {'ab' * 32}, the "
        "file's is "
    )
    pin = next_pin(keys)
    renewal.unlink()
    settings = renewing(tmp_path / "missing", pin)
    with pytest.raises(KeyFileError) as failure:
        await open_runtime(settings, ManualClock(START), run_ticker=False)
    assert str(failure.value) == (
        f"{settings.parent / 'participants.toml'}: {BOCOM} is pinned (next_certificate_sha256) "
        f"but {renewal} is missing: put the bank's certificate there, it checks the bank's XML "
        "signatures"
    )


def test_keys_status_lists_the_next_certificate(keys: KeyStore) -> None:
    found = known_certificates(keys, "999999999999", [BOCOM, CCB])
    assert [(entry.role, entry.owner) for entry in found[2:]] == [
        ("participant", BOCOM),
        ("participant-next", BOCOM),
        ("participant", CCB),
    ]
    assert found[3].not_after == START + timedelta(days=400)
