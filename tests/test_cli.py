"""``isogw validate``: output format, JSON, exit codes 0 / 1 / 2, files, folders and stdin."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from gateway.cli import main
from tests.conftest import PROJECT, SAMPLES

VALID = SAMPLES / "pacs.008.001.08" / "valid-C100-realtime-credit.xml"
INVALID = SAMPLES / "pacs.008.001.08" / "invalid-AM02-credit-over-cap.xml"


def run(*arguments: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", *arguments],
        input=stdin.decode() if stdin is not None else None,
        capture_output=True,
        text=True,
        cwd=PROJECT,
    )


def test_valid_file_exits_zero_with_a_verdict(capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["validate", str(VALID)]) == 0
    assert capsys.readouterr().out == f"{VALID}: valid pacs.008.001.08 (1 transaction)\n"


def test_invalid_file_prints_file_line_xpath_code_text(capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["validate", str(INVALID)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(
        f"{INVALID}:132: /Message/Document/FIToFICstmrCdtTrf/CdtTrfTxInf[2]/IntrBkSttlmAmt: AM02 "
    )
    assert lines[1] == f"{INVALID}: INVALID pacs.008.001.08: 1 problem"


def test_a_problem_is_one_line_even_when_it_quotes_a_line_break(capsys) -> None:  # type: ignore[no-untyped-def]
    """The identifier with a line break (restricted FIN-X characters) is quoted escaped, so
    each problem stays one line for people and scripts."""
    path = SAMPLES / "pacs.008.001.08" / "invalid-FF01-identifier-characters.xml"
    assert main(["validate", str(path)]) == 1
    assert capsys.readouterr().out.splitlines() == [
        f"{path}:131: /Message/Document/FIToFICstmrCdtTrf/CdtTrfTxInf[2]/PmtId/EndToEndId: "
        "FF01 Element 'EndToEndId': [facet 'pattern'] The value 'HL-2026-1187\\n' is not "
        "accepted by the pattern '[0-9a-zA-Z/\\-\\?:\\(\\)\\.,'\\+ ]{1,35}'.",
        f"{path}: INVALID pacs.008.001.08: 1 problem",
    ]


def test_json_output_lists_every_file(capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["validate", "--json", str(VALID), str(INVALID)]) == 1
    verdicts = json.loads(capsys.readouterr().out)
    assert [verdict["valid"] for verdict in verdicts] == [True, False]
    assert set(verdicts[1]) >= {"file", "valid", "message_id", "message_type", "errors"}
    assert verdicts[1]["message_id"] == "B102100099996202611230001"
    error = verdicts[1]["errors"][0]
    assert set(error) == {"line", "path", "code", "text"} and error["code"] == "AM02"


def test_folder_validates_every_xml_below(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    nested = tmp_path / "a" / "b"
    nested.mkdir(parents=True)
    (nested / "one.xml").write_bytes(VALID.read_bytes())
    (tmp_path / "two.xml").write_bytes(VALID.read_bytes())
    (tmp_path / "notes.txt").write_text("ignored")
    assert main(["validate", "--json", str(tmp_path)]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 2


def test_standard_input() -> None:
    completed = run("validate", "--json", "-", stdin=INVALID.read_bytes())
    assert completed.returncode == 1
    assert json.loads(completed.stdout)[0]["file"] == "-"


def test_missing_file_is_a_usage_error() -> None:
    completed = run("validate", "no/such/file.xml")
    assert completed.returncode == 2 and "no such file" in completed.stderr


def test_no_arguments_is_a_usage_error() -> None:
    assert run("validate").returncode == 2


def test_broken_configuration_is_reported(tmp_path: Path) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text("[parser]\nmax_message_bytes = -1\n")
    completed = run("--config", str(config), "validate", str(VALID))
    assert completed.returncode == 2
    assert "parser.max_message_bytes" in completed.stderr


def test_console_script_is_the_same_command() -> None:
    script = Path(sys.executable).parent / "isogw"
    completed = subprocess.run(
        [str(script), "validate", str(VALID)], capture_output=True, text=True, cwd=PROJECT
    )
    assert completed.returncode == 0 and "valid pacs.008.001.08" in completed.stdout


def test_the_validator_checks_a_file_from_any_folder(tmp_path: Path) -> None:
    """Someone checking files in their own folder has no config/ there: the settings beside
    the installed gateway are used (the command used to stop on a missing config/gateway.toml)."""
    (tmp_path / "outgoing").mkdir()
    (tmp_path / "outgoing" / "credit.xml").write_bytes(VALID.read_bytes())
    environment = {name: value for name, value in os.environ.items() if name != "GATEWAY_CONFIG"}

    def validate_outgoing() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(Path(sys.executable).parent / "isogw"), "validate", "outgoing"],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env=environment,
        )

    completed = validate_outgoing()
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout == "outgoing/credit.xml: valid pacs.008.001.08 (1 transaction)\n"
    # A configuration of one's own still wins: config/ in the current folder...
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "gateway.toml").write_text("[parser]\nmax_message_bytes = -1\n")
    here = validate_outgoing()
    assert here.returncode == 2 and "config/gateway.toml" in here.stderr
    assert "parser.max_message_bytes" in here.stderr
    # ...and the variable, before it.
    environment["GATEWAY_CONFIG"] = str(tmp_path / "mine.toml")
    (tmp_path / "mine.toml").write_text("[parser]\nmax_elements_in_memory = -1\n")
    mine = validate_outgoing()
    assert mine.returncode == 2 and "parser.max_elements_in_memory" in mine.stderr


def test_validating_loads_no_server_parts() -> None:
    """Someone checking a file gets the validator only: storage, HTTP and crypto libraries
    (about 40 MB and their import time) load only for the commands that use them."""
    program = (
        "import sys\n"
        "from gateway.cli import main\n"
        f"code = main(['validate', {str(VALID)!r}])\n"
        "loaded = sorted({name.split('.')[0] for name in sys.modules}"
        " & {'sqlalchemy', 'aiohttp', 'cryptography', 'aiosqlite'})\n"
        "print(code, loaded)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, cwd=PROJECT
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "0 []"


def test_serve_refuses_an_unsupported_database_before_starting(tmp_path: Path) -> None:
    """A PostgreSQL URL (not supported in this release) stops ``serve`` with exit code 2 and
    the field named, instead of a traceback when the first connection is made."""
    config = tmp_path / "gateway.toml"
    config.write_text('[storage]\ndatabase_url = "postgresql+asyncpg://gateway@db/gateway"\n')
    completed = run("--config", str(config), "serve")
    assert completed.returncode == 2
    assert "storage.database_url" in completed.stderr
    assert "'postgresql+asyncpg' is not supported" in completed.stderr
    assert "Traceback" not in completed.stderr


def test_serve_says_when_its_port_is_taken(tmp_path: Path) -> None:
    """Another program on the configured port: one line naming the address and the settings,
    exit code 2, no traceback, and no process left behind."""
    import os
    import socket

    from tests.conftest import config_copy

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        settings = config_copy(tmp_path, port)
        completed = subprocess.run(
            [sys.executable, "-m", "gateway", "--config", str(settings), "serve"],
            capture_output=True,
            text=True,
            cwd=PROJECT,
            env={**os.environ, "GATEWAY_STATE_DIR": str(tmp_path / "state")},
            timeout=60,
        )
    assert completed.returncode == 2
    assert completed.stderr.startswith(f"isogw: cannot listen on 127.0.0.1:{port}: ")
    assert "address already in use" in completed.stderr and str(settings) in completed.stderr
    assert "Traceback" not in completed.stderr and "serving" not in completed.stdout


def test_submit_names_the_file_that_is_not_a_message(gateway, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """``isogw submit`` reads the file before anything is signed or sent: a file that is not
    XML, or not a message the gateway decodes, is named with its line."""
    import pytest

    from gateway.participant_cli import ParticipantToolError, envelope

    broken = tmp_path / "broken.xml"
    with pytest.raises(ParticipantToolError) as failure:
        envelope(gateway, "102100099996", b"<a>\n<b>\n</a>", str(broken))
    assert str(failure.value).startswith(
        f"{broken}:3: not well-formed XML: Opening and ending tag mismatch: b line 2 and a"
    )
    assert str(failure.value).endswith(f"`isogw validate {broken}` tells more")
    with pytest.raises(ParticipantToolError) as failure:
        envelope(gateway, "102100099996", b'<x xmlns="urn:example"/>', str(broken))
    assert str(failure.value).startswith(
        f"{broken}: {{urn:example}}x is not a message this gateway decodes"
    )


def test_submit_sends_no_file_whose_opening_the_gateway_refuses(gateway) -> None:  # type: ignore[no-untyped-def]
    """Wrapping and signing write the message out again, which dropped a DOCTYPE (and turned
    another encoding into UTF-8): the gateway then accepted what it refuses as a file. The tool
    now checks the file's opening as the gateway does, and says what the gateway would."""
    import pytest

    from gateway.participant_cli import ParticipantToolError, envelope

    folder = SAMPLES / "pacs.008.001.08"
    cases = [
        (
            folder / "invalid-FF01-doctype.xml",
            ":2: FF01 DOCTYPE declarations are not allowed (DTDs and entities)",
        ),
        (
            folder / "invalid-FF01-encoding-utf-7.xml",
            ":1: FF01 encoding 'UTF-7' is not allowed; only UTF-8 is accepted",
        ),
        (
            folder / "valid-C100-realtime-credit.xml",
            None,
        ),
    ]
    for path, said in cases:
        data = path.read_bytes()
        if said is None:
            assert b"<AppHdr" in envelope(gateway, "301290000007", data, str(path))
            continue
        with pytest.raises(ParticipantToolError) as failure:
            envelope(gateway, "102100099996", data, str(path))
        assert str(failure.value) == (
            f"{path}{said}; the gateway refuses such a file, so it is not sent "
            f"(`isogw validate {path}` tells more)"
        )
    latin = (
        (folder / "valid-C100-realtime-credit.xml")
        .read_text()
        .replace('encoding="UTF-8"', 'encoding="ISO-8859-1"', 1)
    )
    assert 'encoding="ISO-8859-1"' in latin
    with pytest.raises(ParticipantToolError) as failure:
        envelope(gateway, "301290000007", latin.encode(), "latin.xml")
    assert "latin.xml:1: FF01 encoding 'ISO-8859-1' is not allowed" in str(failure.value)


def test_submit_says_why_it_cannot_write_a_business_header(gateway) -> None:  # type: ignore[no-untyped-def]
    """A header alone, a Document without its message element, and a Document that has no
    message id of its own are each told (they used to end in a traceback)."""
    import pytest

    from gateway.participant_cli import ParticipantToolError, envelope

    cases = [
        (
            SAMPLES / "head.001.001.02" / "valid-apphdr-receipt-with-rltd.xml",
            "a business header (AppHdr) alone is not a message; submit a Document",
        ),
        (
            SAMPLES / "admi.002.001.01" / "valid-bare-document-reject.xml",
            "the admi.002.001.01 Document has no message id of its own, so the tool cannot "
            "write its business header; submit an envelope",
        ),
    ]
    for path, said in cases:
        with pytest.raises(ParticipantToolError) as failure:
            envelope(gateway, "102100099996", path.read_bytes(), str(path))
        assert str(failure.value).startswith(f"{path}: {said}")
    # A message id the business header cannot carry (the Document's own is refused too).
    credit = SAMPLES / "pacs.008.001.08" / "valid-bare-document-A100.xml"
    text = credit.read_text(encoding="utf-8")
    message_id = text.split("<MsgId>", 1)[1].split("</MsgId>", 1)[0]
    odd = text.replace(f"<MsgId>{message_id}</MsgId>", "<MsgId>中文名称</MsgId>", 1)
    line = odd[: odd.index("中文名称")].count("\n") + 1
    with pytest.raises(ParticipantToolError) as failure:
        envelope(gateway, "103100000026", odd.encode(), "odd.xml")
    said = str(failure.value)
    assert said.startswith(f"odd.xml:{line}: /Document/FIToFICstmrCdtTrf/GrpHdr/MsgId: FF01 ")
    assert said.endswith(
        "; the tool cannot write a business header for it, so it is not sent "
        "(`isogw validate odd.xml` tells more)"
    )
    empty = b'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pacs.008.001.08"><Other/></Document>'
    with pytest.raises(ParticipantToolError) as failure:
        envelope(gateway, "102100099996", empty, "empty.xml")
    assert str(failure.value) == (
        "empty.xml: the Document has no FIToFICstmrCdtTrf, which a pacs.008.001.08 Document "
        "holds; `isogw validate empty.xml` tells more"
    )


def test_keys_init_writes_keys_of_the_chosen_type_and_keeps_existing_ones(
    tmp_path: Path,
    monkeypatch,
    capsys,  # type: ignore[no-untyped-def]
) -> None:
    from cryptography.hazmat.primitives.asymmetric import ed25519

    from gateway.security.keys import KeyStore

    monkeypatch.setenv("GATEWAY_STATE_DIR", str(tmp_path))
    assert main(["keys", "init", "--algorithm", "ed25519"]) == 0
    lines = capsys.readouterr().out.splitlines()
    keys = KeyStore(tmp_path)
    assert lines[0] == f"development keys written to {keys.folder} (CA, gateway, " + (
        f"{len(lines) - 1} participants; ed25519 keys)"
    )
    assert len(lines) > 3 and all(" sha256:" in line for line in lines[1:])
    gateway = keys.gateway.certificate().public_key()
    assert isinstance(gateway, ed25519.Ed25519PublicKey)
    before = keys.gateway.key_path.read_bytes()
    assert main(["keys", "init"]) == 2
    assert "already holds keys; --force replaces them" in capsys.readouterr().err
    assert keys.gateway.key_path.read_bytes() == before


def test_a_reader_that_stops_reading_ends_the_command_quietly() -> None:
    """``isogw validate … | head``: once the reader has gone, the command stops with the
    shell's 141 (128 + SIGPIPE) and no traceback."""
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway", "validate", "--json", str(VALID), str(INVALID)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=PROJECT,
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # the reader is gone before anything was written
    errors = process.stderr.read().decode()
    assert (process.wait(timeout=60), errors) == (141, "")
