"""The composition root: the one place that builds the gateway's parts from ``config/``.

The server's parts (storage, keys, signatures, HTTP) are imported where they are built, so
``isogw validate`` loads only the validator (SQLAlchemy, aiohttp and cryptography add about
40 MB and their import time to every run)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gateway.commands.inbound import INBOUND_MODELS
from gateway.commands.outbound import OUTBOUND_MODELS
from gateway.configuration.clearing_settings import ClearingSettings, load_clearing_settings
from gateway.configuration.participants import ParticipantDirectory, load_participants
from gateway.configuration.settings import (
    SQLITE_URL_PREFIX,
    ConfigurationError,
    Settings,
    load_settings,
)
from gateway.iso.codec_catalogue import CodecCatalogue, load_codecs
from gateway.iso.encoder import DocumentEncoder
from gateway.iso.pipeline import MessageValidator
from gateway.iso.rules.registry import RULES, rule_requirements
from gateway.iso.sample_check import check_samples
from gateway.iso.schema_catalogue import SchemaCatalogue
from gateway.start_errors import KeyFileError, NoLedgerError, StorageError

if TYPE_CHECKING:
    from cryptography import x509

    from gateway.security.keys import KeyStore
    from gateway.service.clearing_service import ClearingService
    from gateway.service.clock import Clock
    from gateway.service.message_gateway import MessageGateway
    from gateway.transport.http_app import Runtime
    from gateway.transport.process_figures import FiguresBoard
    from gateway.transport.shared_rate_limit import SharedRateLimit

RATE_LIMIT_FILE = "rate-limits"
"""In the state folder: the participants' token buckets, shared by the gateway processes."""
METRICS_FOLDER = "metrics"
"""In the state folder: each gateway process's figures for /metrics."""
CONFIG_ENVIRONMENT_VARIABLE = "GATEWAY_CONFIG"
DEFAULT_CONFIG = Path("config/gateway.toml")


def default_config_file() -> Path:
    """$GATEWAY_CONFIG; else config/gateway.toml in the current folder; else the one beside
    the gateway's code (the checkout ``make`` installed it from), so that ``isogw validate``
    checks a file from any folder."""
    named = os.environ.get(CONFIG_ENVIRONMENT_VARIABLE)
    if named:
        return Path(named)
    if DEFAULT_CONFIG.is_file():
        return DEFAULT_CONFIG
    beside_the_code = Path(__file__).resolve().parent.parent / DEFAULT_CONFIG
    return beside_the_code if beside_the_code.is_file() else DEFAULT_CONFIG


@dataclass(frozen=True)
class Gateway:
    settings: Settings
    directory: ParticipantDirectory
    schemas: SchemaCatalogue
    codecs: CodecCatalogue
    validator: MessageValidator
    encoder: DocumentEncoder


def build_gateway(config_file: Path, check_sample_files: bool = True) -> Gateway:
    """Load and check everything; raise a clear error naming the file at fault.

    With ``check_sample_files`` every ``samples/<message>/valid-*.xml`` must validate and
    decode, so a codec that cannot read its own samples stops the start-up.
    """
    settings = load_settings(config_file)
    directory = load_participants(settings.resolve(settings.paths.participants))
    schemas = SchemaCatalogue(settings.resolve(settings.paths.schemas))
    models = {**INBOUND_MODELS, **OUTBOUND_MODELS}
    codecs = load_codecs(
        settings.resolve(settings.paths.codecs), schemas, models, rule_requirements()
    )
    validator = MessageValidator(schemas, codecs, directory, settings, RULES)
    encoder = DocumentEncoder(codecs, schemas, settings.encoding)
    if check_sample_files:
        check_samples(settings.resolve(settings.paths.samples), validator, codecs, settings.parser)
    return Gateway(settings, directory, schemas, codecs, validator, encoder)


def state_directory(create: bool = True) -> Path:
    """Everything the gateway keeps on disk lives here: $GATEWAY_STATE_DIR or ./state
    (created unless ``create`` is False: a command that only reads the state leaves no empty
    folder behind where it was run by mistake)."""
    from gateway.store.database import DEFAULT_STATE_DIRECTORY, STATE_DIRECTORY_VARIABLE

    folder = Path(os.environ.get(STATE_DIRECTORY_VARIABLE, DEFAULT_STATE_DIRECTORY))
    if create:
        folder.mkdir(parents=True, exist_ok=True)
    return folder


def _database_name(url: str) -> str:
    """The SQLite file, or the database's URL without its password (for messages)."""
    from sqlalchemy import make_url

    if url.startswith(SQLITE_URL_PREFIX):
        return url.removeprefix(SQLITE_URL_PREFIX)
    return make_url(url).render_as_string(hide_password=True)


def no_ledger(where: str) -> NoLedgerError:
    """An operator's command run where no gateway has kept a ledger: it must not start one."""
    return NoLedgerError(
        f"there is no ledger at {where}: `isogw core` works on the ledger of a gateway that "
        "has started (`isogw serve`); run it in the folder the gateway runs in, or point "
        "GATEWAY_STATE_DIR (or storage.database_url) at that gateway's state (`isogw core "
        "init` starts a new ledger)"
    )


@dataclass(frozen=True)
class Clearing:
    settings: ClearingSettings
    service: ClearingService
    clock: Clock
    database: str
    """Where the ledger is: the SQLite file, or the database's URL without its password."""


async def open_clearing(
    config_file: Path, clock: Clock, replay: bool = True, create: bool = True
) -> Clearing:
    """Build the clearing service on the configured database and replay its log (without
    ``replay``: only make the ledger ready, its tables and genesis, for processes to open;
    without ``create``: refuse, naming the place, where there is no ledger yet)."""
    from sqlalchemy.exc import SQLAlchemyError

    from gateway.service.clearing_service import ClearingService
    from gateway.store.database import create_engine, sqlite_url

    settings = load_settings(config_file)
    directory = load_participants(settings.resolve(settings.paths.participants))
    clearing_settings = load_clearing_settings(settings.resolve(settings.paths.clearing))
    url = settings.storage.database_url or sqlite_url(state_directory(create))
    database = _database_name(url)
    if not create and url.startswith(SQLITE_URL_PREFIX) and not Path(database).is_file():
        raise no_ledger(database)  # before SQLite creates an empty file there
    service = ClearingService(
        create_engine(url),
        directory,
        clearing_settings,
        clock.now,
        checkpoint_every_commands=settings.storage.checkpoint_every_commands,
        checkpoints_kept=settings.storage.checkpoints_kept,
        checkpoint_part_bytes=settings.storage.checkpoint_part_bytes,
    )
    try:
        if not await service.open(replay, create):
            raise no_ledger(database)  # closed below
    except StorageError:
        await service.close()
        raise
    except SQLAlchemyError as error:
        await service.close()
        reason = getattr(error, "orig", None) or error
        raise StorageError(
            f"the database {database} cannot be used: {reason} "
            "(setting storage.database_url; restore a damaged file from its backup rather than "
            "start an empty ledger)"
        ) from error
    return Clearing(clearing_settings, service, clock, database)


def operator_messages(config_file: Path, clearing: Clearing) -> MessageGateway:
    """What an operator's command (``isogw core …``) needs to deliver the receipts its effects
    cause, as the gateway's own commands do: the message gateway over the same ledger, signing
    with the gateway's key. It verifies no bank's message, so it reads no participant
    certificate: a damaged one does not keep the operator from closing a session."""
    from gateway.security.signatures import SignatureVerifier, signer_from_files
    from gateway.service.message_gateway import MessageGateway

    gateway = build_gateway(config_file, check_sample_files=False)
    keys = existing_keys()
    signer = signer_from_files(keys.gateway)
    return MessageGateway(
        gateway, clearing.service, signer, SignatureVerifier({}), clearing.clock, os.getpid()
    )


def ensure_keys(directory: ParticipantDirectory, clock: Clock) -> KeyStore:
    """The key folder in the state folder; development keys are created on first use."""
    from gateway.security.keys import KeyStore

    keys = KeyStore(state_directory())
    if not keys.exists():
        keys.initialise(directory.centre_member_id, directory.connecting, clock.now())
    return keys


def existing_keys() -> KeyStore:
    """The key folder of a gateway that has started: an operator's command signs with the
    gateway's key and must not make new ones (the banks trust the ones they have)."""
    from gateway.security.keys import KeyStore

    keys = KeyStore(state_directory(create=False))
    if not keys.exists():
        raise KeyFileError(
            f"{keys.folder} holds no gateway key: the receipts this command causes are signed "
            "with the key `isogw serve` (or `isogw keys init`) made; run it in the folder the "
            "gateway runs in, or point GATEWAY_STATE_DIR at that gateway's state"
        )
    return keys


def _open_rate_limit(gateway: Gateway, participants: Iterable[str]) -> SharedRateLimit:
    """The participants' token buckets, in a file of the state folder every gateway process
    maps (``gateway.transport.shared_rate_limit``)."""
    from gateway.transport.shared_rate_limit import SharedRateLimit

    path = state_directory() / RATE_LIMIT_FILE
    http = gateway.settings.http
    try:
        return SharedRateLimit(path, participants, http.requests_per_second, http.burst)
    except (OSError, ValueError) as error:
        raise StorageError(
            f"the rate-limit file {path} cannot be used: {error} (the gateway processes share "
            "it; it holds nothing that must be kept, so a damaged one may be deleted)"
        ) from error


def figures_board(slot: int) -> FiguresBoard:
    """Where the gateway processes publish their figures for /metrics."""
    from gateway.transport.process_figures import FiguresBoard

    return FiguresBoard(state_directory() / METRICS_FOLDER, slot)


async def open_runtime(
    config_file: Path,
    clock: Clock,
    run_ticker: bool = True,
    gateway: Gateway | None = None,
    push: bool = True,
    slot: int = 0,
) -> Runtime:
    """Everything ``isogw serve`` runs: validator, clearing service, keys, pins, signer and
    verifier, the message gateway; with ``push``, a pusher for each participant with a
    ``push_url`` (one gateway process pushes, so each bank gets its messages once, in
    order). ``slot`` is the process's number among the gateway processes (0 for the first)."""
    from gateway.security.certificate_validity import known_certificates
    from gateway.security.keys import read_authorities
    from gateway.security.participant_certificates import (
        check_gateway_issued,
        participant_certificates,
    )
    from gateway.security.signatures import SignatureVerifier, signer_from_files
    from gateway.service.message_gateway import MessageGateway
    from gateway.transport.http_app import Runtime
    from gateway.transport.push import Pusher
    from gateway.transport.tls import GatewayContexts

    gateway = gateway or build_gateway(config_file)
    # Keys first: a damaged key file stops the start before the ledger is opened.
    keys = ensure_keys(gateway.directory, clock)
    listed = gateway.settings.resolve(gateway.settings.paths.participants)
    authorities = tuple(read_authorities(keys.ca_path))
    certificates, pins = participant_certificates(gateway.directory, listed, keys, authorities)
    check_gateway_issued(keys, authorities)
    participants = gateway.directory.participants
    signer = signer_from_files(keys.gateway)
    verifier = SignatureVerifier(certificates, authorities)
    tls = GatewayContexts.from_keys(keys)
    rate_limit = _open_rate_limit(gateway, pins.values())
    try:
        clearing = await open_clearing(config_file, clock)
    except BaseException:
        rate_limit.close()
        raise
    clearing.service.store_owed_checkpoint()
    messages = MessageGateway(gateway, clearing.service, signer, verifier, clock, os.getpid())
    runtime = Runtime(
        gateway,
        clearing.service,
        messages,
        pins,
        rate_limit,
        run_ticker=run_ticker,
        slot=slot,
        figures_board=figures_board(slot),
        certificate_authorities=authorities,
        tls=tls,
    )
    for entry in (*participants.direct, *participants.special):
        if push and entry.push_url:
            runtime.pushers[entry.code] = Pusher(
                entry.code,
                entry.push_url,
                clearing.service,
                gateway.settings.push,
                clock.now,
                lambda: tls.client,
            )
    runtime.certificates = known_certificates(
        keys, gateway.directory.centre_member_id, gateway.directory.connecting
    )
    messages.set_notify(runtime.notify)
    return runtime


@dataclass(frozen=True)
class CertificateReload:
    """What a reload changed: the certificate pins (SHA-256) each participant gained and lost,
    and what it found changed but cannot apply while the gateway runs."""

    added: dict[str, list[str]] = field(default_factory=dict)
    removed: dict[str, list[str]] = field(default_factory=dict)
    not_applied: list[str] = field(default_factory=list)
    gateway_certificate: str | None = None
    """The pin (SHA-256) of the gateway's renewed certificate, when it was taken."""
    added_authorities: list[str] = field(default_factory=list)
    """The SHA-256 of each CA added to ``ca.pem`` (trusted from now on)."""
    removed_authorities: list[str] = field(default_factory=list)
    """The SHA-256 of each CA taken out of ``ca.pem``."""


PIN_FIELDS = frozenset({"certificate_sha256", "next_certificate_sha256"})


def reload_certificates(runtime: Runtime) -> CertificateReload:
    """Read the participants file and the key folder again, and from now on accept the
    participants' certificates they pin, on new requests (TLS pin) and signatures alike: a bank
    renews its certificate, or one is withdrawn, without a restart. A renewed gateway
    certificate is presented on the TLS connections made from then on (the listener's, the
    pushes'), and signs everything the gateway sends. A CA added to ``ca.pem`` (the centre
    rolls its CA over) is trusted from then on, and one taken out no longer is, for TLS
    connections made from then on and for signatures alike.

    Raises ``ConfigurationError`` or ``KeyFileError`` and changes nothing when the files
    cannot be used as they are (the checks of the start: a pin without its certificate, a
    certificate that is not the pinned one, a key that cannot check signatures; a gateway
    certificate that is not its key's, not issued by a CA of ``ca.pem``, or not valid now; a
    participant's certificate that no CA of ``ca.pem`` issued, as when a CA is taken out while
    certificates it issued are still in use), or when
    participants were added or removed (that takes a restart: the ledger and the rate limits
    know the participants of the start). Changes of the participants file other than pins are
    reported in ``not_applied``: they take effect at the next start."""
    from gateway.security.certificate_validity import known_certificates
    from gateway.security.gateway_certificate import renewed_gateway_signer
    from gateway.security.keys import (
        KeyStore,
        certificate_sha256,
        read_authorities,
    )
    from gateway.security.participant_certificates import (
        check_gateway_issued,
        participant_certificates,
    )
    from gateway.transport.tls import GatewayContexts

    gateway = runtime.gateway
    listed = gateway.settings.resolve(gateway.settings.paths.participants)
    directory = load_participants(listed)
    running, found = gateway.directory.connecting, directory.connecting
    if sorted(running) != sorted(found):
        added = ", ".join(sorted(set(found) - set(running))) or "none"
        removed = ", ".join(sorted(set(running) - set(found))) or "none"
        raise ConfigurationError(
            f"{listed}: participants were added ({added}) or removed ({removed}); a running "
            "gateway reloads certificates only: restart it to take the participants' changes"
        )
    keys = KeyStore(state_directory())
    authorities = read_authorities(keys.ca_path)
    # Every certificate in use must come from a CA of ca.pem: a CA leaves it only once the
    # gateway's and every bank's certificate it issued have been replaced.
    certificates, pins = participant_certificates(directory, listed, keys, authorities)
    known = known_certificates(keys, directory.centre_member_id, found)
    trusted = runtime.certificate_authorities
    added_authorities = _absent_from(authorities, trusted)
    removed_authorities = _absent_from(trusted, authorities)
    not_applied = []
    [gateway_certificate] = [entry for entry in runtime.certificates if entry.role == "gateway"]
    [on_disk] = [entry for entry in known if entry.role == "gateway"]
    check_gateway_issued(keys, authorities)
    renewed_signer = None
    if on_disk.sha256 != gateway_certificate.sha256:
        renewed_signer = renewed_gateway_signer(keys.gateway, runtime.messages.now())
        gateway_certificate = on_disk
    contexts = None
    if renewed_signer is not None or added_authorities or removed_authorities:
        # New TLS contexts from the files just checked, for the listener and the pushes (a
        # context could take a certificate or a CA, but never forget a CA taken out).
        contexts = GatewayContexts.from_keys(keys)
    if _without_pins(gateway.directory) != _without_pins(directory):
        not_applied.append(
            f"{listed}: changes other than certificate pins take effect at the next start"
        )
    before = _pins_by_participant(runtime.pins)
    after = _pins_by_participant(pins)
    if renewed_signer is not None:
        runtime.messages.use_signer(renewed_signer)
    if contexts is not None and runtime.tls is not None:
        runtime.tls.take(contexts)
    runtime.certificate_authorities = tuple(authorities)
    runtime.pins = pins
    runtime.messages.use_certificates(certificates, authorities)
    runtime.certificates = [
        *(entry for entry in known if entry.role == "ca"),
        gateway_certificate,
        *(
            entry
            for entry in known
            if entry.owner in found and entry.role.startswith("participant")
        ),
    ]
    return CertificateReload(
        _gained(before, after),
        _gained(after, before),
        not_applied,
        gateway_certificate.sha256 if renewed_signer is not None else None,
        [certificate_sha256(authority) for authority in added_authorities],
        [certificate_sha256(authority) for authority in removed_authorities],
    )


def _absent_from(
    authorities: Sequence[x509.Certificate], others: Sequence[x509.Certificate]
) -> list[x509.Certificate]:
    """The CAs of ``authorities`` that ``others`` does not hold."""
    return [authority for authority in authorities if authority not in others]


def _without_pins(directory: ParticipantDirectory) -> dict[str, Any]:
    dumped = directory.participants.model_dump()
    for group in ("direct", "special"):
        for entry in dumped[group]:
            for name in PIN_FIELDS:
                entry.pop(name, None)
    return dumped


def _pins_by_participant(pins: Mapping[str, str]) -> dict[str, set[str]]:
    grouped: dict[str, set[str]] = {}
    for pin, code in pins.items():
        grouped.setdefault(code, set()).add(pin)
    return grouped


def _gained(before: dict[str, set[str]], after: dict[str, set[str]]) -> dict[str, list[str]]:
    """The pins each participant has in ``after`` and did not have in ``before``."""
    return {
        code: sorted(pins - before.get(code, set()))
        for code, pins in sorted(after.items())
        if pins - before.get(code, set())
    }
