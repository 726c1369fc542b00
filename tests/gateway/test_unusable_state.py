"""A key, certificate or database the gateway cannot use stops it at start with one message
naming the file and what to do, and changes nothing on disk."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.composition import open_clearing, open_runtime
from gateway.security.keys import KeyStore
from gateway.service.clock import ManualClock
from gateway.start_errors import KeyFileError, StorageError
from tests.conftest import CONFIG, PROJECT, config_copy, self_signed
from tests.gateway.conftest import CCB, START, copy_pair

NOT_A_DATABASE = b"not a database at all " * 10


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GATEWAY_STATE_DIR", str(tmp_path))
    return tmp_path


async def test_a_damaged_database_is_named_and_left_as_it_is(state: Path) -> None:
    database = state / "gateway.sqlite3"
    database.write_bytes(NOT_A_DATABASE)
    with pytest.raises(StorageError) as failure:
        await open_clearing(CONFIG, ManualClock(START))
    assert str(failure.value).startswith(
        f"the database {database.resolve()} cannot be used: file is not a database "
    )
    assert "storage.database_url" in str(failure.value)
    assert database.read_bytes() == NOT_A_DATABASE  # not replaced by an empty ledger


async def test_an_unusable_rate_limit_file_is_named_before_the_ledger_opens(state: Path) -> None:
    (state / "rate-limits").mkdir()
    with pytest.raises(StorageError) as failure:
        await open_runtime(CONFIG, ManualClock(START), run_ticker=False)
    assert str(failure.value).startswith(
        f"the rate-limit file {state / 'rate-limits'} cannot be used: [Errno 21] Is a directory"
    )
    assert not (state / "gateway.sqlite3").exists()


@pytest.mark.parametrize(
    ("damaged", "named", "problem"),
    [
        ("participants/105100000017.pem", "", "not a PEM certificate"),
        ("gateway.key", " and {keys}/gateway.pem", "not a usable signing key and certificate"),
        ("ca.pem", "", "not a PEM certificate"),
    ],
)
async def test_a_damaged_key_or_certificate_is_named(
    state: Path, damaged: str, named: str, problem: str
) -> None:
    clock = ManualClock(START)
    runtime = await open_runtime(CONFIG, clock, run_ticker=False)  # writes the keys
    await runtime.clearing.close()
    keys = state / "keys"
    (keys / damaged).write_text("garbage\n")
    with pytest.raises(KeyFileError) as failure:
        await open_runtime(CONFIG, clock, run_ticker=False)  # fails before opening the ledger
    message = str(failure.value)
    assert message.startswith(f"{keys / damaged}{named.format(keys=keys)}: {problem} (")
    assert message.endswith("; `isogw keys init --force` writes new development keys")


async def test_a_participant_certificate_with_a_key_the_scheme_does_not_use_is_named(
    state: Path,
) -> None:
    """A bank's certificate with an RSA key under 2,048 bits stops the start: its signatures
    could not be checked with the strength the scheme requires."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    clock = ManualClock(START)
    runtime = await open_runtime(CONFIG, clock, run_ticker=False)  # writes the keys
    await runtime.clearing.close()
    weak = self_signed(rsa.generate_private_key(public_exponent=65537, key_size=1024), CCB, START)
    path = state / "keys" / "participants" / f"{CCB}.pem"
    path.write_bytes(weak.public_bytes(serialization.Encoding.PEM))
    with pytest.raises(KeyFileError) as failure:
        await open_runtime(CONFIG, clock, run_ticker=False)
    assert str(failure.value) == (
        f"{path}: {CCB}'s certificate cannot check its signatures (an RSA key must have at "
        "least 2048 bits, not 1024); it needs a certificate with an accepted key"
    )


async def test_a_certificate_from_no_ca_of_ca_pem_stops_the_start(
    state: Path, tmp_path: Path
) -> None:
    """A bank's certificate, or the gateway's, that no CA of ca.pem issued: TLS would refuse
    that bank (or the banks would refuse the gateway), so the start stops, naming the file."""
    clock = ManualClock(START)
    runtime = await open_runtime(CONFIG, clock, run_ticker=False)  # writes the keys
    await runtime.clearing.close()
    keys = KeyStore(state)
    other = KeyStore(tmp_path / "other")
    other.initialise("999999999999", [CCB], START, ca_name="another CA")

    async def start_refused() -> str:
        with pytest.raises(KeyFileError) as refusal:
            await open_runtime(CONFIG, clock, run_ticker=False)
        return str(refusal.value)

    saved = keys.participant(CCB).certificate_path.read_bytes()
    copy_pair(other.participant(CCB), keys.participant(CCB))
    assert await start_refused() == (
        f"{keys.participant(CCB).certificate_path}, {CCB}'s certificate, is not issued by a CA of "
        f"{keys.ca_path} (CN=isogw development CA): TLS would refuse the bank's connections, and "
        "its signatures would be refused (DS0F): put there the bank's certificate from a CA of "
        "ca.pem"
    )
    keys.participant(CCB).certificate_path.write_bytes(saved)
    copy_pair(other.gateway, keys.gateway)
    assert await start_refused() == (
        f"{keys.gateway.certificate_path}, the gateway's certificate, is not issued by a CA of "
        f"{keys.ca_path} (CN=isogw development CA): the banks would refuse its connections and "
        "its signatures: put there the gateway's certificate from a CA of ca.pem"
    )


def _pinned(tmp_path: Path, pin: str) -> tuple[Path, Path]:
    """A configuration copy where CCB's entry pins ``pin``; its gateway.toml and
    participants.toml."""
    settings = config_copy(tmp_path, 8443)
    listed = settings.parent / "participants.toml"
    text = listed.read_text()
    entry = f'code = "{CCB}"\n'
    assert entry in text
    listed.write_text(text.replace(entry, f'{entry}certificate_sha256 = "{pin}"\n', 1))
    return settings, listed


async def test_a_pinned_certificate_must_be_the_one_in_the_key_folder(
    state: Path, tmp_path: Path
) -> None:
    """One certificate identifies a bank's TLS connections and checks its XML signatures:
    a pin in participants.toml that is not the certificate in the key folder stops the start
    (it would let the bank connect and then refuse every message it signs)."""
    from gateway.security.keys import KeyStore

    runtime = await open_runtime(CONFIG, ManualClock(START), run_ticker=False)
    await runtime.clearing.close()
    path = KeyStore(state).participant(CCB).certificate_path
    actual = KeyStore(state).pins([CCB])[CCB]
    settings, listed = _pinned(tmp_path, "ab" * 32)
    with pytest.raises(KeyFileError) as failure:
        await open_runtime(settings, ManualClock(START), run_ticker=False)
    assert str(failure.value) == (
        f"{path} is not the certificate {CCB} is pinned to in {listed} (certificate_sha256 "
        f"{'ab' * 32}, the file's is {actual}): put the bank's certificate there, or correct "
        "the pin"
    )
    settings, _ = _pinned(tmp_path / "right", actual)
    runtime = await open_runtime(settings, ManualClock(START), run_ticker=False)
    await runtime.clearing.close()
    assert runtime.pins[actual] == CCB
    path.unlink()
    with pytest.raises(KeyFileError) as failure:
        await open_runtime(settings, ManualClock(START), run_ticker=False)
    assert str(failure.value) == (
        f"{settings.parent / 'participants.toml'}: {CCB} is pinned (certificate_sha256) but "
        f"{path} is missing: put the bank's certificate there, it checks the bank's XML "
        "signatures"
    )


def test_tls_contexts_name_a_damaged_key(state: Path) -> None:
    from gateway.security.keys import KeyStore
    from gateway.transport.tls import client_context, server_context

    keys = KeyStore(state)
    keys.initialise("999999999999", [CCB], START)
    keys.gateway.key_path.write_text("garbage\n")
    with pytest.raises(KeyFileError, match=r"gateway\.pem and .*gateway\.key: not a usable"):
        server_context(keys)
    keys.ca_path.write_text("garbage\n")
    with pytest.raises(KeyFileError, match=r"ca\.pem: not a usable CA certificate"):
        client_context(keys, keys.participant(CCB))


def test_serve_stops_with_one_line_on_a_damaged_database(tmp_path: Path) -> None:
    """What an operator sees: exit code 2, the database named, no traceback, no banner, and
    the file untouched."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = config_copy(tmp_path, port)
    state = tmp_path / "state"
    state.mkdir()
    (state / "gateway.sqlite3").write_bytes(NOT_A_DATABASE)
    completed = subprocess.run(
        [sys.executable, "-m", "gateway", "--config", str(settings), "serve"],
        capture_output=True,
        text=True,
        cwd=PROJECT,
        env={**os.environ, "GATEWAY_STATE_DIR": str(state)},
        timeout=120,
    )
    assert completed.returncode == 2
    assert completed.stderr.startswith("isogw: the database ")
    assert "file is not a database" in completed.stderr
    assert "Traceback" not in completed.stderr and "serving" not in completed.stdout
    assert (state / "gateway.sqlite3").read_bytes() == NOT_A_DATABASE
