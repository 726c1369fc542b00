"""Start-up check: every valid sample of every codec validates and decodes."""

from __future__ import annotations

from pathlib import Path

from gateway.configuration.settings import ParserSettings
from gateway.iso.codec_catalogue import CodecCatalogue, CodecError
from gateway.iso.decoder import DecodingError, decode
from gateway.iso.input_source import InputSource
from gateway.iso.pipeline import MessageValidator


def check_samples(
    folder: Path, validator: MessageValidator, codecs: CodecCatalogue, limits: ParserSettings
) -> int:
    """Validate ``<folder>/<message>/valid-*.xml`` for every decoding codec; return the count.

    Raises CodecError naming the first sample that does not validate, with its problems.
    """
    checked = 0
    for codec in codecs:
        if codec.definition.decode is None:
            continue
        samples = sorted((folder / codec.message).glob("valid-*.xml"))
        if not samples:
            raise CodecError(f"{codec.source}: no valid sample in {folder / codec.message}")
        for sample in samples:
            verdict = validator.validate(InputSource.from_path(sample))
            if not verdict.valid:
                problems = "; ".join(
                    f"line {problem.line} {problem.path}: {problem.code} {problem.text}"
                    for problem in verdict.problems[:5]
                )
                raise CodecError(f"{codec.source}: sample {sample} does not validate: {problems}")
            if verdict.message_type != codec.message:
                raise CodecError(
                    f"{codec.source}: sample {sample} is a {verdict.message_type}, "
                    f"not a {codec.message}"
                )
            try:
                commands = list(decode(InputSource.from_path(sample), codec, limits))
            except DecodingError as error:
                raise CodecError(
                    f"{codec.source}: sample {sample} does not decode: {error}"
                ) from error
            if len(commands) != verdict.transactions + 1:
                raise CodecError(
                    f"{codec.source}: sample {sample} decoded {len(commands) - 1} items, "
                    f"validated {verdict.transactions}"
                )
            checked += 1
    return checked
