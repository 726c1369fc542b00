"""Bad input never stops the validator: every sample, mutated (values replaced, elements
dropped or repeated, bytes changed), is validated whole and streamed, as a small and as a
large file are. Each verdict is a list of problems with ISO codes, lines and paths; the
streamed verdict of a file is valid exactly when the whole one is."""

from __future__ import annotations

import random
import re
from collections import Counter

from lxml import etree

from gateway.composition import Gateway
from gateway.iso.input_source import InputSource
from tests.conftest import SAMPLES
from tests.mutations import mutate_bytes, mutate_values

MUTATIONS = 1000
SEED = 20261124


def test_mutated_files_get_a_verdict_whole_and_streamed(gateway: Gateway) -> None:
    samples = [path.read_bytes() for path in sorted(SAMPLES.rglob("*.xml"))]
    rng = random.Random(SEED)
    codes: Counter[str] = Counter()
    for number in range(MUTATIONS):
        sample = rng.choice(samples)
        try:
            body = mutate_values(rng, sample) if rng.random() < 0.5 else mutate_bytes(rng, sample)
        except etree.XMLSyntaxError:  # an invalid sample: its bytes are mutated instead
            body = mutate_bytes(rng, sample)
        name = f"mutation-{number}.xml"
        whole = InputSource.from_bytes(body, name)
        verdicts = [
            gateway.validator.validate(whole),
            gateway.validator.validate(InputSource(name, whole.open, None)),  # no size: streamed
        ]
        for verdict in verdicts:
            for problem in verdict.problems:
                assert re.fullmatch("[A-Z0-9]{4}", problem.code), problem
                assert problem.line >= 0 and problem.text, problem
                codes[problem.code] += 1
        assert verdicts[0].valid == verdicts[1].valid, body
    # The mutations reach past the parser: the schema and the business rules each find some.
    assert codes["FF01"] > 0 and len(codes) >= 6, codes
