"""The command line: ``isogw`` (same as ``python -m gateway``).

``isogw validate [--json] PATH...`` checks message files before they are sent: files,
folders (every ``*.xml`` below) and ``-`` for standard input. Exit 0 when every input is
valid, 1 when any is invalid, 2 for usage errors, unreadable input or a broken configuration.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from pydantic import ValidationError

from gateway.composition import build_gateway, default_config_file
from gateway.configuration.settings import ConfigurationError
from gateway.configuration.toml_files import describe
from gateway.iso.codec_catalogue import CodecError
from gateway.iso.input_source import InputSource, spool
from gateway.iso.problems import Verdict
from gateway.iso.schema_catalogue import SchemaError
from gateway.operator_cli import OperatorError, add_core_commands, run_core
from gateway.participant_cli import (
    ParticipantToolError,
    add_participant_commands,
    run_participant,
)
from gateway.service.clock import SystemClock
from gateway.start_errors import StartError

if TYPE_CHECKING:
    from datetime import datetime

    from gateway.security.certificate_validity import KnownCertificate
    from gateway.transport.http_app import Runtime

EXIT_VALID = 0
EXIT_INVALID = 1
EXIT_USAGE = 2


class UsageError(Exception):
    """Bad arguments or unreadable input: exit 2."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="isogw", description="ISO 20022 gateway for a retail batch clearing system"
    )
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        help=(
            "gateway settings file (default: $GATEWAY_CONFIG, else config/gateway.toml in the "
            "current folder, else the one beside the installed gateway)"
        ),
    )
    commands = parser.add_subparsers(dest="command", required=True)
    validate = commands.add_parser(
        "validate",
        help="check message files: schema and business rules",
        description="Check ISO 20022 message files. Each problem is printed as "
        "'file:line: xpath: CODE text'. Exit 0 if all are valid, 1 if any is invalid, "
        "2 for usage errors or unreadable input.",
    )
    validate.add_argument("paths", nargs="+", metavar="PATH", help="file, folder or - for stdin")
    validate.add_argument("--json", action="store_true", help="print a JSON list of verdicts")
    add_core_commands(commands)
    add_participant_commands(commands)
    keys = commands.add_parser("keys", help="development keys and certificates")
    key_actions = keys.add_subparsers(dest="action", required=True)
    initialise = key_actions.add_parser(
        "init",
        help="create a development CA, the gateway's and every participant's key and certificate",
    )
    initialise.add_argument("--force", action="store_true", help="replace existing keys")
    initialise.add_argument(
        "--algorithm",
        choices=("ecdsa-p256", "rsa-2048", "ed25519"),
        default="ecdsa-p256",
        help="the gateway's and the participants' key type, hence their XML signature method "
        "(default: ecdsa-p256)",
    )
    status = key_actions.add_parser(
        "status",
        help="how long the CA's, the gateway's and each participant's certificates stay valid",
        description="List the CA's, the gateway's and each configured participant's "
        "certificate: valid until, days left, state and SHA-256 pin. Exit 0 if none needs "
        "attention, 1 if one is expired, not yet valid, or ends within "
        "http.certificate_warning_days.",
    )
    status.add_argument("--json", action="store_true", help="print JSON")
    serve = commands.add_parser(
        "serve",
        help="start the HTTPS gateway (mutual TLS) on the [http] host and port",
        description="Start the HTTPS gateway on the host and port of the [http] settings.",
    )
    serve.add_argument(
        "--workers", type=int, help="gateway processes sharing the port (default: http.workers)"
    )
    serve.add_argument("--shared-port", action="store_true", help=argparse.SUPPRESS)
    serve.add_argument("--parent-pipe", action="store_true", help=argparse.SUPPRESS)
    serve.add_argument("--process-slot", type=int, default=0, help=argparse.SUPPRESS)
    return parser


def _inputs(paths: Sequence[str]) -> Iterator[Path | str]:
    for text in paths:
        if text == "-":
            yield "-"
            continue
        path = Path(text)
        if path.is_dir():
            files = sorted(candidate for candidate in path.rglob("*.xml") if candidate.is_file())
            if not files:
                raise UsageError(f"{text}: no *.xml files in this folder")
            yield from files
        elif path.is_file():
            yield path
        else:
            raise UsageError(f"{text}: no such file or folder")


def _check_readable(paths: list[Path | str]) -> None:
    for path in paths:
        if isinstance(path, Path):
            try:
                with path.open("rb"):
                    pass
            except OSError as error:
                raise UsageError(f"{path}: cannot read: {error.strerror}") from error


def _print_human(verdict: Verdict, out: TextIO) -> None:
    for problem in verdict.problems:
        out.write(f"{problem.located(verdict.source)}\n")
    what = verdict.message_type or "unknown message"
    if verdict.valid:
        count = verdict.transactions
        noun = "transaction" if count == 1 else "transactions"
        out.write(f"{verdict.source}: valid {what} ({count} {noun})\n")
    else:
        more = " (more not shown)" if verdict.truncated else ""
        count = len(verdict.problems)
        plural = "s" if count != 1 else ""
        out.write(f"{verdict.source}: INVALID {what}: {count} problem{plural}{more}\n")


def run_validate(arguments: argparse.Namespace, out: TextIO, stdin: TextIO) -> int:
    inputs = list(_inputs(arguments.paths))
    _check_readable(inputs)
    if inputs.count("-") > 1:
        raise UsageError("'-' (standard input) may be given once")
    gateway = build_gateway(arguments.config or default_config_file(), check_sample_files=False)
    limit = gateway.settings.parser.max_message_bytes
    verdicts = []
    for item in inputs:
        if item == "-":
            source, spooled = spool(stdin.buffer, "-", limit)
            try:
                verdict = gateway.validator.validate(source)
            finally:
                spooled.close()
        else:
            assert isinstance(item, Path)
            verdict = gateway.validator.validate(InputSource.from_path(item))
        verdicts.append(verdict)
        if not arguments.json:
            _print_human(verdict, out)
    if arguments.json:
        json.dump([verdict.as_dict() for verdict in verdicts], out, ensure_ascii=False, indent=2)
        out.write("\n")
    return EXIT_VALID if all(verdict.valid for verdict in verdicts) else EXIT_INVALID


def run_serve(arguments: argparse.Namespace) -> int:
    import gc
    import logging
    import signal

    from aiohttp import web

    from gateway.composition import ensure_keys, figures_board, open_runtime
    from gateway.log_text import LINE_FORMAT, OneLineFormatter
    from gateway.transport.http_app import build_app, listen
    from gateway.transport.tls import server_context
    from gateway.transport.worker_processes import WorkerSupervisor, watch_parent

    # One record, one line: text a sender chose cannot start a forged line (gateway.log_text).
    handler = logging.StreamHandler()
    handler.setFormatter(OneLineFormatter(LINE_FORMAT))
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    # Until the event loop takes the signals over (_stop_on_first_signal), SIGTERM stops the
    # start as Ctrl-C does, through the clean-up below, rather than killing this process and
    # leaving the others it started running.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    # SIGHUP reloads certificates once the gateway serves; one that comes while it starts is
    # kept for then (its default would end the process).
    hangup = _HangupWhileStarting()
    signal.signal(signal.SIGHUP, lambda number, frame: hangup())
    config = arguments.config or default_config_file()
    gateway = build_gateway(config)
    http = gateway.settings.http
    if not arguments.shared_port:
        # Before anything starts: a port another program holds is said in one line, not as
        # a traceback from each process.
        _check_port_free(http.host, http.port, config)
    clock = SystemClock()
    keys = ensure_keys(gateway.directory, clock)
    server_context(keys)  # a damaged key or certificate stops the start here, said in one line
    workers = arguments.workers or http.workers
    if workers > 1 and not arguments.shared_port:
        # Create the tables and the ledger's genesis once, before other processes start.
        asyncio.run(_prepare_storage(config, clock))
    child_command = [sys.executable, "-m", "gateway", "--config", str(config)]
    child_command += ["serve", "--workers", "1", "--shared-port", "--parent-pipe"]

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        stopped = _stop_on_first_signal(loop)
        loop.add_signal_handler(signal.SIGHUP, hangup)
        if arguments.parent_pipe:  # started by the first process: stop when it has gone
            watch_parent(loop, stopped.set)
        supervisor = None
        if workers > 1 and not arguments.shared_port:
            supervisor = WorkerSupervisor(child_command, workers - 1, http)
        try:
            if not arguments.shared_port:
                # Figures of an earlier run (perhaps with more processes) are not reported.
                figures_board(0).clear()
            if supervisor is not None:
                # They start while this one opens the ledger.
                await supervisor.start()
            # The first process pushes outboxes for all (two pushers would send a bank the
            # same message twice, and out of order); it finds other processes' deliveries by
            # looking every push.idle_seconds.
            runtime = await open_runtime(
                config,
                clock,
                gateway=gateway,
                push=not arguments.shared_port,
                slot=arguments.process_slot,
            )
            runtime.workers = supervisor
            loop.add_signal_handler(signal.SIGHUP, _reload_certificates, runtime)
            if hangup.pending:
                _reload_certificates(runtime)
            runner = web.AppRunner(
                build_app(runtime), shutdown_timeout=http.shutdown_seconds, keepalive_timeout=75.0
            )
            await runner.setup()
            try:
                # Schemas, codecs and the replayed ledger live as long as the process: keep
                # them out of the cyclic collector's full passes (measured: half their cost).
                gc.freeze()
                await listen(runner, runtime, reuse_port=workers > 1 or arguments.shared_port)
                if not arguments.shared_port:  # the first process speaks for the others
                    print(
                        f"isogw: serving https://{http.host}:{http.port} (mutual TLS 1.3, "
                        f"{workers} process{'es' if workers > 1 else ''}, keys in "
                        f"{keys.folder})",
                        flush=True,
                    )
                await stopped.wait()
            finally:
                if supervisor is not None:
                    supervisor.begin_stopping()  # the others stop alongside this one
                # Graceful: the port closes, open outbox polls answer, requests in flight
                # finish (up to http.shutdown_seconds), then the ledger closes.
                await runner.cleanup()
        finally:
            if supervisor is not None:
                await supervisor.stop(http.shutdown_seconds + CHILD_STOP_MARGIN_SECONDS)

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        pass  # stopped while starting (the signals are the event loop's once it runs)
    except OSError as error:
        if error.errno != errno.EADDRINUSE:
            raise
        # Taken between the check and the start.
        raise UsageError(_port_problem(http.host, http.port, config, error)) from error
    return 0


CHILD_STOP_MARGIN_SECONDS = 10
"""How long the first process waits for the others to stop beyond their own shutdown time
(``http.shutdown_seconds``: requests in flight finish) before it kills them."""


class _HangupWhileStarting:
    """SIGHUP before the gateway serves: the reload waits until it does (the files it started
    from may already be older than the signal)."""

    def __init__(self) -> None:
        self.pending = False

    def __call__(self) -> None:
        import logging

        self.pending = True
        logging.getLogger("isogw.keys").info(
            "event=signal-kept signal=SIGHUP reason=starting (certificates are reloaded once "
            "the gateway serves)"
        )


def _reload_certificates(runtime: Runtime) -> None:
    """SIGHUP: the participants' certificates again from the participants file and the key
    folder, in this process and then in the others it started. A reload that cannot be used
    is refused, saying why, and the gateway goes on with what it had."""
    import logging
    import signal

    from gateway.composition import reload_certificates
    from gateway.log_text import sender_text

    log = logging.getLogger("isogw.keys")
    try:
        reloaded = reload_certificates(runtime)
    except Exception as error:  # a bad file, or anything else: the running gateway stays
        log.error(
            "event=certificates-reload-refused process=%d reason=%s",
            runtime.slot,
            sender_text(str(error) or type(error).__name__),
        )
    else:
        log.info(
            "event=certificates-reloaded process=%d added=%s removed=%s gateway_certificate=%s "
            "ca_added=%s ca_removed=%s",
            runtime.slot,
            _pins_text(reloaded.added),
            _pins_text(reloaded.removed),
            reloaded.gateway_certificate or "-",
            ",".join(reloaded.added_authorities) or "-",
            ",".join(reloaded.removed_authorities) or "-",
        )
        for note in reloaded.not_applied:
            log.warning(
                "event=certificates-reload-not-applied process=%d note=%s",
                runtime.slot,
                sender_text(note),
            )
    if runtime.workers is not None:
        runtime.workers.send_signal(signal.SIGHUP)


def _pins_text(pins: dict[str, list[str]]) -> str:
    """``code:pin,code:pin`` (``-`` for none), for a log field."""
    return ",".join(f"{code}:{pin}" for code, listed in pins.items() for pin in listed) or "-"


def _stop_on_first_signal(loop: asyncio.AbstractEventLoop) -> asyncio.Event:
    """SIGINT or SIGTERM sets the event that starts the graceful shutdown (requests in flight
    finish, then the ledger closes); later ones are ignored rather than cutting it short.
    Ctrl-C in a terminal reaches every gateway process, and the first one then tells the
    others to stop as well."""
    import logging
    import signal

    stopped = asyncio.Event()

    def already_stopping() -> None:
        logging.getLogger("isogw.serve").info("event=signal-ignored reason=already-stopping")

    def stop() -> None:
        for number in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(number, already_stopping)
        stopped.set()

    for number in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(number, stop)
    return stopped


def _check_port_free(host: str, port: int, config: Path) -> None:
    import socket

    try:
        family, kind, protocol, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        with socket.socket(family, kind, protocol) as probe:
            # As the server binds: a port in TIME_WAIT is free, one being listened on is not
            # (whether or not its owner shares it, as a running isogw does).
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
    except OSError as error:
        raise UsageError(_port_problem(host, port, config, error)) from error


def _port_problem(host: str, port: int, config: Path, error: OSError) -> str:
    import socket

    reason = error.strerror or str(error)
    if isinstance(error, socket.gaierror):
        reason = f"unknown host ({reason})"
    return (
        f"cannot listen on {host}:{port}: {reason.lower()}; another gateway or program may "
        f"be using it (settings http.host and http.port in {config})"
    )


async def _prepare_storage(config: Path, clock: Any) -> None:
    """The tables and the ledger's genesis, once, before the other processes start; the core
    is built after, by each process as it opens the ledger (the first one too: building it
    here as well took one more restore of the ledger before this process served)."""
    from gateway.composition import open_clearing

    clearing = await open_clearing(config, clock, replay=False)
    await clearing.service.close()


def _key_status(
    certificates: list[KnownCertificate],
    now: datetime,
    warning_days: int,
    as_json: bool,
    out: TextIO,
) -> int:
    from datetime import timedelta

    from gateway.security.certificate_validity import ATTENTION, validities

    warning = timedelta(days=warning_days)
    states = validities(certificates, now, warning)
    attention = sum(state in ATTENTION for state in states)
    if as_json:
        listed = [
            {
                "certificate": entry.role,
                "owner": entry.owner or None,
                "path": entry.path,
                "state": state.value,
                "not_before": entry.not_before.isoformat() if entry.not_before else None,
                "not_after": entry.not_after.isoformat() if entry.not_after else None,
                "days_left": entry.days_left(now),
                "sha256": entry.sha256,
            }
            for entry, state in zip(certificates, states, strict=True)
        ]
        json.dump(listed, out, indent=2)
        out.write("\n")
        return 1 if attention else EXIT_VALID
    out.write(f"{'certificate':<16} {'owner':<12} {'valid until':<20} {'days':>5}  state\n")
    for entry, state in zip(certificates, states, strict=True):
        until = f"{entry.not_after:%Y-%m-%dT%H:%M:%SZ}" if entry.not_after else "-"
        days = entry.days_left(now)
        detail = f"sha256:{entry.sha256}" if entry.sha256 else f"no certificate at {entry.path}"
        out.write(
            f"{entry.role:<16} {entry.owner or '-':<12} {until:<20} "
            f"{'-' if days is None else days:>5}  {state.value:<13} {detail}\n"
        )
    out.write(
        f"{len(certificates)} certificates; {attention} need attention (expired, not yet "
        f"valid, or ending within {warning_days} days: setting http.certificate_warning_days; "
        "a participant's that is renewing to a valid next one does not)\n"
    )
    return 1 if attention else EXIT_VALID


def run_keys(arguments: argparse.Namespace, out: TextIO) -> int:
    from datetime import UTC, datetime

    from gateway.composition import state_directory
    from gateway.configuration.participants import load_participants
    from gateway.configuration.settings import load_settings
    from gateway.security.certificate_validity import known_certificates
    from gateway.security.keys import KeyStore

    settings = load_settings(arguments.config or default_config_file())
    directory = load_participants(settings.resolve(settings.paths.participants))
    store = KeyStore(state_directory(create=False))
    codes = directory.connecting
    if arguments.action == "status":
        if not store.exists():
            raise UsageError(
                f"{store.folder} holds no keys; `isogw keys init` (or `make run`) creates "
                "development keys"
            )
        return _key_status(
            known_certificates(store, directory.centre_member_id, codes),
            datetime.now(UTC),
            settings.http.certificate_warning_days,
            arguments.json,
            out,
        )
    if store.exists() and not arguments.force:
        raise UsageError(f"{store.folder} already holds keys; --force replaces them")
    store.initialise(directory.centre_member_id, codes, datetime.now(UTC), arguments.algorithm)
    pins = store.pins(codes)
    out.write(
        f"development keys written to {store.folder} (CA, gateway, {len(codes)} participants; "
        f"{arguments.algorithm} keys)\n"
    )
    for code, pin in pins.items():
        out.write(f"{code}  sha256:{pin}\n")
    return EXIT_VALID


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    try:
        arguments = parser.parse_args(argv)
    except SystemExit as exit_request:
        return int(exit_request.code or 0)
    try:
        if arguments.command == "validate":
            return run_validate(arguments, sys.stdout, sys.stdin)
        if arguments.command == "serve":
            return run_serve(arguments)
        if arguments.command == "keys":
            return run_keys(arguments, sys.stdout)
        if arguments.command in ("submit", "outbox"):
            return run_participant(arguments.config or default_config_file(), arguments, sys.stdout)
        if arguments.command == "core":
            return run_core(
                arguments.config or default_config_file(), arguments, sys.stdout, SystemClock()
            )
    except (UsageError, OperatorError, ParticipantToolError, StartError) as error:
        sys.stderr.write(f"isogw: {error}\n")
        return EXIT_USAGE
    except ValidationError as error:
        sys.stderr.write(f"isogw: {describe(error)}\n")
        return EXIT_USAGE
    except (ConfigurationError, CodecError, SchemaError) as error:
        sys.stderr.write(f"isogw: configuration error: {error}\n")
        return EXIT_USAGE
    parser.error(f"unknown command {arguments.command}")
    return EXIT_USAGE  # pragma: no cover - parser.error exits
