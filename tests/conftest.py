"""Shared fixtures: the gateway built once from the sample configuration."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from gateway.composition import Gateway, build_gateway
from gateway.iso.input_source import InputSource
from gateway.iso.problems import Verdict

PROJECT = Path(__file__).resolve().parent.parent
CONFIG = PROJECT / "config" / "gateway.toml"
SAMPLES = PROJECT / "samples"
OFFICIAL_SCHEMAS = PROJECT.parent / "shared" / "iso20022-xsd"

sys.path.insert(0, str(PROJECT / "bench"))


def config_copy(base: Path, port: int) -> Path:
    """The sample configuration in ``base/config`` with its HTTPS port set to ``port`` (the
    schema, codec and sample folders still the project's); returns its gateway.toml."""
    folder = base / "config"
    shutil.copytree(PROJECT / "config", folder)
    settings = folder / "gateway.toml"
    text = settings.read_text().replace("port = 8443", f"port = {port}")
    for name in ("xsd", "codecs", "samples"):
        text = text.replace(f'"../{name}"', f'"{PROJECT / name}"')
    settings.write_text(text)
    return settings


def self_signed(
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey, common_name: str, now: datetime
) -> x509.Certificate:
    """A certificate for ``key`` issued by itself, valid from a day before ``now`` for 30
    days: a bank's certificate from no CA the gateway knows."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .sign(key, hashes.SHA256())
    )


@pytest.fixture(scope="session")
def gateway() -> Gateway:
    return build_gateway(CONFIG, check_sample_files=False)


Validate = Callable[[bytes], Verdict]


@pytest.fixture(scope="session")
def validate(gateway: Gateway) -> Validate:
    def run(data: bytes, name: str = "input.xml") -> Verdict:
        return gateway.validator.validate(InputSource.from_bytes(data, name))

    return run


def sample(relative: str) -> bytes:
    return (SAMPLES / relative).read_bytes()


def codes(verdict: Verdict) -> list[str]:
    return [problem.code for problem in verdict.problems]
