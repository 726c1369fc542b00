"""Gateway settings: every bound the gateway enforces, loaded from ``config/gateway.toml``."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from gateway.configuration.toml_files import TomlFileError, load_model


class ConfigurationError(Exception):
    """A configuration file is missing or wrong; the message says which file and field."""


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PathSettings(StrictModel):
    """Folders and files, relative to the folder that holds ``gateway.toml``."""

    schemas: Path = Path("../xsd")
    codecs: Path = Path("../codecs")
    participants: Path = Path("participants.toml")
    clearing: Path = Path("clearing.toml")
    samples: Path = Path("../samples")


class ParserSettings(StrictModel):
    """Bounds of the safe XML parser (DESIGN §7)."""

    max_message_bytes: int = Field(default=2 * 1024**3, gt=0)
    """Largest input accepted, in bytes (a 1,000,000-transaction package is about 1 GB)."""

    max_elements_in_memory: int = Field(default=20_000, gt=0)
    """Elements the parser may hold before the next transaction boundary releases them."""

    tree_max_bytes: int = Field(default=1024 * 1024, ge=0)
    """Inputs up to this size are parsed whole (faster for single messages); larger ones
    are streamed in bounded memory."""

    read_chunk_bytes: int = Field(default=64 * 1024, ge=4096)
    """Size of each read from the input stream."""

    max_prolog_bytes: int = Field(default=4096, ge=256)
    """Bytes allowed before the root element (XML declaration and comments)."""


class ValidationSettings(StrictModel):
    """Business-rule bounds (DESIGN §2); money as decimal strings, converted to minor units."""

    max_transactions_per_package: int = Field(default=1_000_000, gt=0)
    max_reported_problems: int = Field(default=100, gt=0)
    """Problems listed per input; the verdict says when more were found."""

    allowed_currencies: tuple[str, ...] = ("CNY",)
    per_transaction_caps: dict[str, Decimal] = Field(
        default_factory=lambda: {"A100": Decimal("50000.00")}
    )
    """Per-transaction cap by business type (ordinary credit: 50,000.00 CNY)."""

    @field_validator("per_transaction_caps")
    @classmethod
    def caps_have_cents(cls, caps: dict[str, Decimal]) -> dict[str, Decimal]:
        for business_type, cap in caps.items():
            if cap <= 0 or cap.as_tuple().exponent < -2:  # type: ignore[operator]
                raise ValueError(f"cap for {business_type} must be positive with 2 decimals")
        return caps

    def cap_minor_units(self, business_type: str) -> int | None:
        cap = self.per_transaction_caps.get(business_type)
        return None if cap is None else int(cap * 100)


class HttpSettings(StrictModel):
    """The HTTPS listener (loopback by default; mutual TLS 1.3)."""

    host: str = "127.0.0.1"
    port: int = Field(default=8443, ge=1, le=65535)
    max_body_bytes: int = Field(default=16 * 1024 * 1024, gt=0)
    """Largest request body; larger packages go through the file drop."""

    max_concurrent_validations: int = Field(default=4, gt=0)
    """Validations running at once; further requests wait their turn."""

    requests_per_second: float = Field(default=200.0, gt=0)
    """Per-participant rate limit (token bucket refill); above it, 429."""

    burst: int = Field(default=400, gt=0)
    """Per-participant token bucket size."""

    outbox_batch: int = Field(default=100, gt=0, le=10_000)
    """Messages returned by one outbox poll."""

    outbox_max_wait_seconds: float = Field(default=30.0, ge=0, le=300)
    """Longest long-poll wait of GET /v1/outbox."""

    outbox_requests_per_participant: int = Field(default=8, gt=0, le=1_000)
    """GET /v1/outbox requests one participant may have open at once (long polls hold one
    each and look at the database every ``outbox_poll_seconds``); beyond it, 429."""

    authentication_alarm_after: int = Field(default=3, gt=0)
    """Consecutive authentication failures from one source that raise an alarm."""

    authentication_sources: int = Field(default=10_000, gt=0, le=1_000_000)
    """Sources whose consecutive failures are counted at once (the one that failed least
    recently makes room)."""

    authentication_records_pending: int = Field(default=1_000, gt=0, le=100_000)
    """Authentication failures (and successes that end a run of them) waiting in one process
    to be counted in the shared ledger; beyond it a failure is logged but not counted there."""

    tls_handshake_seconds: float = Field(default=10.0, gt=0, le=300)
    """Longest TLS handshake; a client that has not finished it by then is disconnected."""

    max_tls_handshakes: int = Field(default=1_000, gt=0, le=100_000)
    """TLS handshakes in progress at once in one process; a connection beyond it is closed
    at once (and logged)."""

    tick_max_seconds: float = Field(default=1.0, gt=0, le=60)
    """Longest sleep of the clearing clock between deadline checks."""

    workers: int = Field(default=1, ge=1, le=64)
    """Gateway processes sharing the port (SO_REUSEPORT) and the database."""

    worker_restarts: int = Field(default=5, ge=0, le=1_000)
    """Restarts of one gateway process within ``worker_restart_window_seconds`` after which,
    if it stops again, the first process does not start it again (and logs it at ERROR)."""

    worker_restart_window_seconds: float = Field(default=60.0, gt=0, le=86_400)
    """The window in which a process's restarts are counted."""

    worker_restart_delay_seconds: float = Field(default=1.0, ge=0, le=300)
    """How long the first process waits before starting a stopped process again."""

    outbox_poll_seconds: float = Field(default=0.5, gt=0, le=30)
    """How often a waiting outbox poll looks again (messages another process delivered)."""

    metrics_catch_up_seconds: float = Field(default=1.0, gt=0, le=60)
    """How long /metrics waits to bring the positions up to date with the other processes'
    commands (it waits for the clearing writer); past it, the figures are as of this
    process's last write and ``isogw_clearing_caught_up`` is 0."""

    metrics_publish_seconds: float = Field(default=1.0, gt=0, le=300)
    """How often each gateway process publishes what it counts for /metrics (whichever process
    a scrape reaches reports every process; the others' figures are at most this old)."""

    certificate_warning_days: int = Field(default=30, ge=1, le=3_650)
    """A certificate (the CA's, the gateway's, a participant's) that ends within this many days
    is logged at WARNING (``event=certificate-expiring``), and listed so by ``isogw keys
    status``."""

    certificate_check_seconds: float = Field(default=3_600.0, gt=0, le=86_400)
    """How often the first gateway process looks at the certificates' validity again (and logs
    those that need attention)."""

    shutdown_seconds: float = Field(default=30.0, gt=0, le=600)
    """How long a stopping process lets requests in flight finish (each is then committed
    and answered); open outbox long polls are answered at once when it starts stopping."""


class PushSettings(StrictModel):
    """Pushing outbox messages to participants that configured a ``push_url``."""

    max_attempts: int = Field(default=5, gt=0, le=100)
    """Tries per message before the push pauses (the message stays in the outbox)."""
    first_backoff_seconds: float = Field(default=1.0, gt=0)
    max_backoff_seconds: float = Field(default=60.0, gt=0)
    timeout_seconds: float = Field(default=10.0, gt=0)
    idle_seconds: float = Field(default=1.0, gt=0, le=300)
    """How long a pusher waits before looking at the outbox again when nothing woke it: a
    delivery in its own process wakes it at once; one made by another gateway process (only
    the first process pushes) is found when it looks again."""
    batch: int = Field(default=100, gt=0, le=10_000)
    """Messages a pusher reads from the outbox at a time (sent one by one, in order)."""


class EncodingSettings(StrictModel):
    """Outbound documents: the text of each document shape is kept as a template."""

    template_entries: int = Field(default=1_024, ge=0, le=100_000)
    """Document shapes (which optional parts are present) kept; 0 turns templates off."""
    template_max_values: int = Field(default=64, gt=0, le=10_000)
    """Documents with more values than this (long reports) get no template of their own:
    each entry of their lists (a transaction, a statement entry) is filled into its shape's."""
    sign_after_commit_entries: int = Field(default=1_000, ge=1, le=100_000_000)
    """A message the centre sends with more list entries than this (a receipt of more
    transactions, a statement of more entries) is built and signed just after the commit that
    owes it, not inside it: the clearing writer's lock (which every gateway process waits for)
    is not held while it is written. It is kept in the outbox as a document to sign meanwhile,
    and its participant's later messages wait for it."""
    signing_sweep_seconds: float = Field(default=5.0, gt=0, le=3_600)
    """How often each gateway process looks for messages still to sign that a process which
    stopped before signing them left (any found are signed, by whichever process is first)."""
    signing_sweep_batch: int = Field(default=100, gt=0, le=10_000)
    """Messages still to sign a sweep reads at a time."""


SQLITE_URL_PREFIX = "sqlite+aiosqlite:///"


class StorageSettings(StrictModel):
    database_url: str | None = None
    """An SQLite file as an SQLAlchemy async URL (``sqlite+aiosqlite:///PATH``); empty means
    SQLite in the state folder ($GATEWAY_STATE_DIR, default ./state). SQLite is the only
    database this release supports and tests: a server database (PostgreSQL) is refused here,
    rather than failing when the gateway first connects."""
    checkpoint_every_commands: int = Field(default=100_000, gt=0, le=100_000_000)
    """A snapshot of the clearing core is stored after this many commands (and at every day
    switch), so that a start replays at most about this many commands of the log."""
    checkpoints_kept: int = Field(default=3, ge=1, le=100)
    """Snapshots kept (the newest); a start that finds the newest damaged uses the one before."""
    checkpoint_part_bytes: int = Field(default=1_000_000, ge=1_000, le=100_000_000)
    """A snapshot is stored in parts of this size, each in a transaction of its own between the
    writer's, so that storing one never holds the writer for long."""

    @field_validator("database_url")
    @classmethod
    def _sqlite_only(cls, url: str | None) -> str | None:
        if not url:
            return None
        if not url.startswith(SQLITE_URL_PREFIX) or url == SQLITE_URL_PREFIX:
            scheme = url.split("://", 1)[0] if "://" in url else url
            raise ValueError(
                f"{scheme!r} is not supported: this release stores its ledger in SQLite only "
                f"({SQLITE_URL_PREFIX} followed by the file's path); leave database_url out "
                "for the embedded default in the state folder"
            )
        return url


class Settings(StrictModel):
    paths: PathSettings = PathSettings()
    storage: StorageSettings = StorageSettings()
    push: PushSettings = PushSettings()
    http: HttpSettings = HttpSettings()
    parser: ParserSettings = ParserSettings()
    validation: ValidationSettings = ValidationSettings()
    encoding: EncodingSettings = EncodingSettings()
    config_folder: Path = Path("config")

    def resolve(self, relative: Path) -> Path:
        return (self.config_folder / relative).resolve()


def load_settings(config_file: Path) -> Settings:
    """Read and check ``gateway.toml``; raise ConfigurationError naming the bad field."""
    try:
        return load_model(config_file, Settings, {"config_folder": config_file.parent})
    except TomlFileError as error:
        raise ConfigurationError(str(error)) from error
