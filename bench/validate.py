"""Validator benchmark (issue 2 targets).

Generates pacs.008 packages of 10k, 100k and 1M transactions, then measures, in the same run
and each in a fresh child process (so peak RSS is per measurement):
  * baseline: raw lxml ``iterparse`` with the XSD, releasing each transaction;
  * validator: ``MessageValidator.validate`` end to end (guarded stream, XSD, codec
    extraction, business rules), in-process, no HTTP.
Prints transactions/s, the ratio validator/baseline and peak RSS. Then single one-transaction
enveloped messages (the C100 sample) in-process: messages/s against raw parse + validate.

Usage: .venv/bin/python bench/validate.py [--sizes 10000,100000,1000000] [--keep]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from package_generator import write_package  # noqa: E402

CONFIG = ROOT / "config" / "gateway.toml"
SINGLE = ROOT / "samples" / "pacs.008.001.08" / "valid-C100-realtime-credit.xml"
ITEM_TAG = "{urn:iso:std:iso:20022:tech:xsd:pacs.008.001.08}CdtTrfTxInf"


def measure_baseline(path: Path) -> dict[str, float]:
    from lxml import etree

    from gateway.iso.schema_catalogue import SchemaCatalogue

    schema = SchemaCatalogue(ROOT / "xsd").catalogue
    started = time.perf_counter()
    count = 0
    for _, element in etree.iterparse(str(path), events=("end",), tag=ITEM_TAG, schema=schema):
        count += 1
        previous = element.getprevious()
        if previous is not None and previous.tag == ITEM_TAG:
            element.getparent().remove(previous)
        element.clear()
    return {"seconds": time.perf_counter() - started, "transactions": count}


def measure_validator(path: Path) -> dict[str, float]:
    from gateway.composition import build_gateway
    from gateway.iso.input_source import InputSource

    gateway = build_gateway(CONFIG, check_sample_files=False)
    started = time.perf_counter()
    verdict = gateway.validator.validate(InputSource.from_path(path))
    seconds = time.perf_counter() - started
    if not verdict.valid:
        raise SystemExit(f"benchmark package is invalid: {verdict.problems[:3]}")
    return {"seconds": seconds, "transactions": verdict.transactions}


def measure_single(repeat: int) -> dict[str, float]:
    from lxml import etree

    from gateway.composition import build_gateway
    from gateway.iso.input_source import InputSource

    gateway = build_gateway(CONFIG, check_sample_files=False)
    data = SINGLE.read_bytes()
    schema = gateway.schemas.catalogue
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    for _ in range(200):  # warm up
        gateway.validator.validate(InputSource.from_bytes(data, "single"))
    started = time.perf_counter()
    for _ in range(repeat):
        schema.assertValid(etree.fromstring(data, parser))
    baseline = time.perf_counter() - started
    started = time.perf_counter()
    for _ in range(repeat):
        verdict = gateway.validator.validate(InputSource.from_bytes(data, "single"))
    validator = time.perf_counter() - started
    assert verdict.valid, verdict.problems
    return {"baseline": repeat / baseline, "validator": repeat / validator}


def peak_rss_megabytes() -> float:
    """This process's peak RSS (VmHWM). ru_maxrss would carry the parent's peak across exec."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(kind: str, argument: str) -> dict[str, float]:
    """Run one measurement in a fresh interpreter and read its JSON and peak RSS."""
    completed = subprocess.run(
        [sys.executable, __file__, "--child", kind, argument],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(completed.stdout)  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--single", type=int, default=5000, help="single messages to time")
    parser.add_argument("--keep", action="store_true", help="keep the generated files")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.child:
        kind, argument = arguments.child
        if kind == "single":
            result = measure_single(int(argument))
        else:
            measure = measure_baseline if kind == "baseline" else measure_validator
            result = measure(Path(argument))
        result["peak_rss_mb"] = peak_rss_megabytes()
        print(json.dumps(result))
        return

    folder = ROOT / "bench" / "output"
    folder.mkdir(exist_ok=True)
    print(
        f"{'transactions':>12} {'MB':>7} {'baseline tx/s':>14} {'validator tx/s':>15} "
        f"{'ratio':>6} {'baseline RSS':>13} {'validator RSS':>14}"
    )
    for size in (int(text) for text in arguments.sizes.split(",")):
        path = write_package(folder / f"pacs008-{size}.xml", size)
        megabytes = path.stat().st_size / 1e6
        baseline = child("baseline", str(path))
        validator = child("validator", str(path))
        base_rate = baseline["transactions"] / baseline["seconds"]
        rate = validator["transactions"] / validator["seconds"]
        print(
            f"{size:>12} {megabytes:>7.0f} {base_rate:>14,.0f} {rate:>15,.0f} "
            f"{rate / base_rate:>6.2f} {baseline['peak_rss_mb']:>10.0f} MB "
            f"{validator['peak_rss_mb']:>11.0f} MB",
            flush=True,
        )
        if not arguments.keep:
            path.unlink()
    single = child("single", str(arguments.single))
    print(
        f"single one-transaction message (envelope): validator {single['validator']:,.0f} msg/s, "
        f"raw lxml parse+validate {single['baseline']:,.0f} msg/s, "
        f"ratio {single['validator'] / single['baseline']:.2f}"
    )


if __name__ == "__main__":
    main()
