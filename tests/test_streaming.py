"""Large packages stream in bounded memory, and schema errors are located exactly."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from package_generator import transaction_line, write_package

from gateway.composition import Gateway
from gateway.iso.input_source import InputSource
from tests.conftest import PROJECT

ITEM = "/Message/Document/FIToFICstmrCdtTrf/CdtTrfTxInf"


def test_large_valid_package_streams(gateway: Gateway, tmp_path: Path) -> None:
    path = write_package(tmp_path / "package.xml", 5_000)
    verdict = gateway.validator.validate(InputSource.from_path(path))
    assert verdict.valid, verdict.problems[:3]
    assert verdict.transactions == 5_000
    assert verdict.message_id == "B102100099996202611000000005000"


def test_schema_error_in_the_last_transaction_is_found_with_line_and_path(
    gateway: Gateway, tmp_path: Path
) -> None:
    path = write_package(tmp_path / "package.xml", 5_000, defect_at=5_000)
    verdict = gateway.validator.validate(InputSource.from_path(path))
    assert [(p.code, p.line, p.path) for p in verdict.problems] == [
        ("FF01", transaction_line(5_000) + 2, f"{ITEM}[5000]/IntrBkSttlmAmt")
    ]
    assert "'12,50'" in verdict.problems[0].text


def test_schema_error_in_the_first_transaction_of_a_streamed_package(
    gateway: Gateway, tmp_path: Path
) -> None:
    path = write_package(tmp_path / "package.xml", 3_000, defect_at=1)
    verdict = gateway.validator.validate(InputSource.from_path(path))
    assert [(p.line, p.path) for p in verdict.problems] == [
        (transaction_line(1) + 2, f"{ITEM}[1]/IntrBkSttlmAmt")
    ]


def test_rule_problem_deep_in_a_package_names_its_transaction(
    gateway: Gateway, tmp_path: Path
) -> None:
    path = write_package(tmp_path / "package.xml", 3_000)
    text = path.read_text(encoding="utf-8").replace(
        "<TxId>TX0000000000002999</TxId>", "<TxId>TX0000000000000007</TxId>"
    )
    path.write_text(text, encoding="utf-8")
    verdict = gateway.validator.validate(InputSource.from_path(path))
    assert [(p.code, p.path) for p in verdict.problems] == [("AM05", f"{ITEM}[2999]/PmtId/TxId")]
    assert verdict.problems[0].line == transaction_line(2999)


def test_reported_problems_are_capped(gateway: Gateway, tmp_path: Path) -> None:
    path = write_package(tmp_path / "package.xml", 2_000)
    text = path.read_text(encoding="utf-8").replace('Ccy="CNY"', 'Ccy="USD"')
    path.write_text(text, encoding="utf-8")
    verdict = gateway.validator.validate(InputSource.from_path(path))
    limit = gateway.settings.validation.max_reported_problems
    assert len(verdict.problems) == limit and verdict.truncated


def test_memory_stays_flat_for_a_large_package(tmp_path: Path) -> None:
    """Peak RSS of a fresh process validating 60,000 transactions (about 52 MB of XML).

    VmHWM, not ru_maxrss: Linux keeps ru_maxrss across exec, so a child would inherit the
    test runner's own peak."""
    path = write_package(tmp_path / "package.xml", 60_000)
    config = PROJECT / "config" / "gateway.toml"
    script = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "from gateway.composition import build_gateway\n"
        "from gateway.iso.input_source import InputSource\n"
        f"g = build_gateway(Path({str(config)!r}), check_sample_files=False)\n"
        "v = g.validator.validate(InputSource.from_path(Path(sys.argv[1])))\n"
        "status = open('/proc/self/status').read().split('VmHWM:')[1].split()[0]\n"
        "rss = int(status) // 1024\n"
        "print(json.dumps({'valid': v.valid, 'rss': rss}))\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", script, str(path)],
        check=True,
        capture_output=True,
        text=True,
        cwd=PROJECT,
    )
    result = json.loads(completed.stdout)
    assert result["valid"]
    assert result["rss"] < 150, f"peak RSS {result['rss']} MB"


def test_concurrent_validations_keep_their_own_errors(gateway: Gateway) -> None:
    """Validators run in threads (HTTP); each must report its own input's problems."""
    from concurrent.futures import ThreadPoolExecutor

    from tests.conftest import SAMPLES

    inputs = {
        "FF01": (
            SAMPLES / "pacs.008.001.08" / "invalid-FF01-schema-missing-transaction-id.xml"
        ).read_bytes(),
        "RC01": (SAMPLES / "pacs.008.001.08" / "invalid-RC01-bank-code-format.xml").read_bytes(),
    }

    def check(code: str) -> set[str]:
        verdict = gateway.validator.validate(InputSource.from_bytes(inputs[code], code))
        return {problem.code for problem in verdict.problems}

    codes = ["FF01", "RC01"] * 100
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(check, codes))
    assert all(result == {code} for code, result in zip(codes, results, strict=True))


def streamed(data: bytes, name: str) -> InputSource:
    """``data`` as a large file is read: streamed (no size known), its rules checked as its
    items arrive, before the schema's verdict on the whole."""
    whole = InputSource.from_bytes(data, name)
    return InputSource(name, whole.open, None)


def test_a_streamed_business_header_missing_a_field_is_reported_not_crashed(
    gateway: Gateway, tmp_path: Path
) -> None:
    """The business header is read before the Document; a field missing from it used to stop
    the validator (an assertion) instead of reaching the schema's verdict."""
    path = write_package(tmp_path / "package.xml", 10)
    text = path.read_text(encoding="utf-8").replace("<MmbId>999999999999</MmbId>", "", 1)
    verdict = gateway.validator.validate(streamed(text.encode(), "package.xml"))
    assert [(problem.code, problem.line, problem.path) for problem in verdict.problems] == [
        ("FF01", 5, "/Message/AppHdr/To/FIId/FinInstnId/ClrSysMmbId")
    ]
    assert "Missing child element(s). Expected is ( " in verdict.problems[0].text


def test_a_streamed_cheque_without_an_image_is_reported_not_crashed(gateway: Gateway) -> None:
    """A cheque's rule sees the items of a streamed file before the schema's verdict: one
    without its front image used to stop the validator (a digest of nothing)."""
    sample = PROJECT / "samples/pacs.003.001.08/valid-B308-cheque-truncation.xml"
    text = sample.read_text(encoding="utf-8")
    start, end = text.index("<FrntImg>"), text.index("</FrntImg>") + len("</FrntImg>")
    verdict = gateway.validator.validate(streamed((text[:start] + text[end:]).encode(), "b308"))
    assert [(problem.code, problem.path) for problem in verdict.problems] == [
        (
            "FF01",
            "/Message/Document/FIToFICstmrDrctDbt/DrctDbtTxInf[1]/SplmtryData/Envlp/Chq/BckImg",
        )
    ]


def test_a_large_package_cut_short_is_not_well_formed(gateway: Gateway, tmp_path: Path) -> None:
    """lxml's schema-validating stream parser raises nothing at a syntax error (it stops giving
    events): a truncated package used to pass as valid, with 0 transactions."""
    path = write_package(tmp_path / "package.xml", 3_000)
    data = path.read_bytes()
    cut = data.index(b"<TxId>TX0000000000002000</TxId>") + len(b"<TxId>TX0000")
    path.write_bytes(data[:cut])
    verdict = gateway.validator.validate(InputSource.from_path(path))
    assert [(problem.code, problem.line) for problem in verdict.problems] == [
        ("FF01", transaction_line(2_000) + 1)
    ]
    assert verdict.problems[0].text.startswith("not well-formed XML: ")


def test_a_syntax_error_deep_in_a_large_package_is_named_not_a_bound(
    gateway: Gateway, tmp_path: Path
) -> None:
    """After a bare & the schema-validating parser frees no element any more: the bound on
    elements held is met further on, but the error is the &, at its line."""
    path = write_package(tmp_path / "package.xml", 30_000)
    text = path.read_text(encoding="utf-8").replace("<Ustrd>货款 7<", "<Ustrd>货款 & 7<", 1)
    path.write_text(text, encoding="utf-8")
    verdict = gateway.validator.validate(InputSource.from_path(path))
    assert [(problem.code, problem.line, problem.text) for problem in verdict.problems] == [
        ("FF01", transaction_line(7) + 10, "not well-formed XML: xmlParseEntityRef: no name")
    ]
