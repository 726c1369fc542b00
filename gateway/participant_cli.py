"""A participant's tools: ``isogw submit FILE --as CODE`` and ``isogw outbox --as CODE``.

They use the participant's development key and certificate from the state folder (written by
``isogw keys init`` or the first ``isogw serve``), talk to the gateway over mutual TLS, and
print what a bank integration engineer needs: the answer's status and reason, and each
message waiting in the outbox.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from lxml import etree

from gateway.commands.inbound import BusinessHeader
from gateway.composition import Gateway, build_gateway, state_directory
from gateway.iso.encoder import EncodingError
from gateway.iso.input_source import InputSource
from gateway.iso.namespaces import MESSAGE_TAG
from gateway.iso.safe_input import GuardedStream, UnsafeInputError
from gateway.iso.safe_parsing import SAFE_PARSE_OPTIONS, syntax_text
from gateway.message_summary import summary

if TYPE_CHECKING:
    from gateway.security.keys import KeyStore


class ParticipantToolError(Exception):
    """Missing keys, an unreadable file, an unreachable gateway (exit 2)."""


def add_participant_commands(commands: Any) -> None:
    submit = commands.add_parser(
        "submit", help="sign and submit a message as a participant, print the answer"
    )
    submit.add_argument("file", type=Path)
    submit.add_argument("--as", dest="participant", required=True, metavar="CODE")
    submit.add_argument("--url", help="gateway URL (default: https://host:port of [http])")
    outbox = commands.add_parser("outbox", help="read (and acknowledge) a participant's outbox")
    outbox.add_argument("--as", dest="participant", required=True, metavar="CODE")
    outbox.add_argument("--after", type=int, default=0)
    outbox.add_argument("--wait", type=float, default=0.0, help="seconds to wait for messages")
    outbox.add_argument("--ack", action="store_true", help="acknowledge what was read")
    outbox.add_argument("--json", action="store_true")
    outbox.add_argument("--url")


def _url(gateway: Gateway, url: str | None) -> str:
    http = gateway.settings.http
    return (url or f"https://{http.host}:{http.port}").rstrip("/")


def _keys(gateway: Gateway, participant: str) -> KeyStore:
    # The client's parts (keys, signatures, HTTP) load only for these commands, not for
    # every ``isogw`` run.
    from gateway.security.keys import KeyStore

    if gateway.directory.kind(participant) is None:
        participants = gateway.settings.resolve(gateway.settings.paths.participants)
        raise ParticipantToolError(f"{participant} is not a participant in {participants}")
    keys = KeyStore(state_directory(create=False))
    if not keys.participant(participant).key_path.is_file():
        raise ParticipantToolError(
            f"no key for {participant} in {keys.folder}; run `isogw keys init` (or start "
            "`isogw serve` once) first"
        )
    return keys


def envelope(gateway: Gateway, participant: str, data: bytes, name: str = "message") -> bytes:
    """The message as sent: a bare Document gets a business header from ``participant``.
    ``name`` (the file) names the input in errors.

    The file's opening is checked first as the gateway checks what it receives (UTF-8 only, no
    DOCTYPE, no processing instruction before the root): the tool writes the message out again
    to wrap and sign it, which would drop a DOCTYPE or turn another encoding into UTF-8, and so
    send a file the gateway would have refused as it is (FF01)."""
    try:
        GuardedStream(io.BytesIO(data), gateway.settings.parser, count_elements=False).read_all()
    except UnsafeInputError as error:
        problem = error.problem
        raise ParticipantToolError(
            f"{name}:{problem.line}: {problem.code} {problem.text}; the gateway refuses such a "
            f"file, so it is not sent (`isogw validate {name}` tells more)"
        ) from error
    try:
        root = etree.fromstring(data, etree.XMLParser(**SAFE_PARSE_OPTIONS))
    except etree.XMLSyntaxError as error:
        raise ParticipantToolError(
            f"{name}:{error.lineno}: not well-formed XML: {syntax_text(error.msg)}; "
            f"`isogw validate {name}` tells more"
        ) from error
    if root.tag == MESSAGE_TAG:
        return data
    codec = gateway.codecs.for_namespace(etree.QName(root).namespace or "")
    if codec is None or codec.header_extractor is None:
        raise ParticipantToolError(
            f"{name}: {root.tag} is not a message this gateway decodes; `isogw validate "
            f"{name}` tells more"
        )
    if etree.QName(root).localname == "AppHdr":
        raise ParticipantToolError(
            f"{name}: a business header (AppHdr) alone is not a message; submit a Document "
            "(the tool writes its header) or an envelope (AppHdr then Document)"
        )
    document = root.find(codec.root_tag)
    if document is None:
        raise ParticipantToolError(
            f"{name}: the Document has no {etree.QName(codec.root_tag).localname}, which a "
            f"{codec.message} Document holds; `isogw validate {name}` tells more"
        )
    values, _ = codec.header_extractor.extract(document)
    message_id = str(values.get("message_id") or "").strip()
    if not message_id:
        raise ParticipantToolError(
            f"{name}: the {codec.message} Document has no message id of its own, so the tool "
            "cannot write its business header; submit an envelope (AppHdr with your BizMsgIdr, "
            "then the Document)"
        )
    header = BusinessHeader(
        sender=participant,
        receiver=gateway.directory.centre_member_id,
        business_message_id=message_id,
        message_definition=codec.message,
        created_at=datetime.now(UTC),
    )
    try:
        message = gateway.encoder.envelope_around(header, root)
    except EncodingError as error:
        # The Document's own message id cannot be the header's BizMsgIdr (a character or a
        # length the identifier types refuse): the validator says where, as for any file.
        verdict = gateway.validator.validate(InputSource.from_bytes(data, name))
        where = verdict.problems[0].located(name) if verdict.problems else f"{name}: {error}"
        raise ParticipantToolError(
            f"{where}; the tool cannot write a business header for it, so it is not sent "
            f"(`isogw validate {name}` tells more)"
        ) from error
    text: bytes = etree.tostring(message, xml_declaration=True, encoding="UTF-8")
    return text


def describe_answer(status: int, body: bytes) -> str:
    root = etree.fromstring(body, etree.XMLParser(**SAFE_PARSE_OPTIONS))
    if root.find(".//{*}RctAck") is not None:
        reference = root.findtext(".//{*}RltdRef/{*}Ref")
        return f"{status} accepted for processing (admi.007): {reference}"
    code = root.findtext(".//{*}RjctgPtyRsn")
    text = root.findtext(".//{*}RsnDesc")
    location = root.findtext(".//{*}ErrLctn")
    where = f" at {location}" if location else ""
    return f"{status} rejected (admi.002): {code} {text}{where}"


async def _submit(arguments: argparse.Namespace, gateway: Gateway, out: TextIO) -> int:
    import aiohttp

    from gateway.security.signatures import signer_from_files
    from gateway.transport.tls import client_context

    keys = _keys(gateway, arguments.participant)
    try:
        data = arguments.file.read_bytes()
    except OSError as error:
        raise ParticipantToolError(f"{arguments.file}: {error.strerror}") from error
    pair = keys.participant(arguments.participant)
    signed = signer_from_files(pair).sign(
        envelope(gateway, arguments.participant, data, str(arguments.file))
    )
    context = client_context(keys, pair)
    url = _url(gateway, arguments.url)
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                url + "/v1/messages",
                data=signed,
                headers={"Content-Type": "application/xml"},
                ssl=context,
            ) as response,
        ):
            body = await response.read()
            status = response.status
    except aiohttp.ClientError as error:
        raise _unreachable(url, error) from error
    if not body.startswith(b"<?xml"):
        return _plain_answer(out, status, body)
    out.write(describe_answer(status, body) + "\n")
    return 0 if status == 200 else 1


async def _outbox(arguments: argparse.Namespace, gateway: Gateway, out: TextIO) -> int:
    import aiohttp

    from gateway.transport.tls import client_context

    keys = _keys(gateway, arguments.participant)
    context = client_context(keys, keys.participant(arguments.participant))
    base = _url(gateway, arguments.url)
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(
                f"{base}/v1/outbox?after={arguments.after}&wait={arguments.wait}", ssl=context
            ) as response:
                if response.status != 200:
                    return _plain_answer(out, response.status, await response.read())
                payload = await response.json()
            if arguments.ack and payload["messages"]:
                async with session.post(
                    f"{base}/v1/outbox/ack", json={"through": payload["next"]}, ssl=context
                ) as response:
                    if response.status != 200:
                        return _plain_answer(out, response.status, await response.read())
    except aiohttp.ClientError as error:
        raise _unreachable(base, error) from error
    if arguments.json:
        json.dump(payload, out, ensure_ascii=False, indent=2)
        out.write("\n")
        return 0
    for message in payload["messages"]:
        out.write(
            f"#{message['sequence']} {message['message_type']} {message['message_id']}: "
            f"{summary(message['xml'])}\n"
        )
    acknowledged = " (acknowledged)" if arguments.ack and payload["messages"] else ""
    out.write(
        f"{len(payload['messages'])} message(s); next cursor {payload['next']}{acknowledged}\n"
    )
    return 0


def _plain_answer(out: TextIO, status: int, body: bytes) -> int:
    """An answer that is not a signed message (403, 429, 503...): its status and text."""
    out.write(f"{status} {body.decode(errors='replace').strip()}\n")
    return 0 if status == 200 else 1


def _unreachable(url: str, error: Exception) -> ParticipantToolError:
    """Why no answer came, in words: refused connection, TLS handshake, timeout."""
    import aiohttp

    if isinstance(error, aiohttp.ClientSSLError):
        reason = f"the TLS handshake failed ({error.os_error})"
    elif isinstance(error, aiohttp.ClientConnectorError):
        reason = error.os_error.strerror or str(error.os_error)
    else:
        reason = str(error) or type(error).__name__
    return ParticipantToolError(f"cannot reach the gateway at {url}: {reason}")


def run_participant(config: Path, arguments: argparse.Namespace, out: TextIO) -> int:
    gateway = build_gateway(config, check_sample_files=False)
    action = _submit if arguments.command == "submit" else _outbox
    return asyncio.run(action(arguments, gateway, out))
