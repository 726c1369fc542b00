"""A problem found in a message, and the verdict for one input."""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway.iso.reason_codes import REASON_CODES
from gateway.log_text import one_line


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a message: ISO reason code, readable text, line and XPath.

    ``line`` is the 1-based line in the input (0 when the problem concerns the whole input,
    such as an unreadable file) and ``path`` is an XPath with local names and positions,
    for example ``/Message/Document/FIToFICstmrCdtTrf/CdtTrfTxInf[3]/IntrBkSttlmAmt``.
    """

    code: str
    text: str
    line: int = 0
    path: str = "/"

    def __post_init__(self) -> None:
        if self.code not in REASON_CODES:
            raise ValueError(f"unknown reason code {self.code!r}")

    def as_dict(self) -> dict[str, object]:
        return {"line": self.line, "path": self.path, "code": self.code, "text": self.text}

    def located(self, source: str) -> str:
        """As ``isogw validate`` prints it: ``source:line: xpath: CODE text``, on one line
        (a value quoted with a line break in it is escaped)."""
        return f"{source}:{self.line}: {self.path}: {self.code} {one_line(self.text)}"


@dataclass(slots=True)
class Verdict:
    """The outcome of validating one input (a file, stdin or a request body)."""

    source: str
    message_id: str | None = None
    message_type: str | None = None
    problems: list[Problem] = field(default_factory=list)
    transactions: int = 0
    truncated: bool = False

    @property
    def valid(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, object]:
        return {
            "file": self.source,
            "valid": self.valid,
            "message_id": self.message_id,
            "message_type": self.message_type,
            "transactions": self.transactions,
            "errors": [problem.as_dict() for problem in self.problems],
            "errors_truncated": self.truncated,
        }
