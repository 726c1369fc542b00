"""Participants of the clearing system and how a bank code resolves to its clearing bank."""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    model_validator,
)

from gateway.configuration.settings import ConfigurationError
from gateway.configuration.toml_files import TomlFileError, load_model

BANK_CODE_PATTERN = r"^[0-9]{12}$"


class ParticipantKind(StrEnum):
    DIRECT = "direct"
    INDIRECT = "indirect"
    SPECIAL = "special"


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    code: str = Field(pattern=BANK_CODE_PATTERN)
    name: str = Field(min_length=1)
    certificate_sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    """Pin of the participant's client and signing certificate; without one, the development
    certificate from ``isogw keys init`` is pinned."""
    next_certificate_sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    """Pin of the certificate the participant is renewing to (``participants/<code>.next.pem``):
    while both are configured, either is accepted, so the bank switches when it is ready."""
    push_url: str | None = Field(default=None, pattern=r"^https?://")
    """Where the gateway pushes this participant's outbox (optional; pulling always works)."""


def _minor_units(value: Decimal) -> Decimal:
    if value < 0 or value.as_tuple().exponent < -2:  # type: ignore[operator]
        raise ValueError("must be a non-negative amount with at most 2 decimals")
    return value


Money = Annotated[Decimal, AfterValidator(_minor_units)]


def to_minor_units(value: Decimal) -> int:
    return int(value * 100)


class DirectEntry(_Entry):
    """A clearing bank: settlement account and the parts of its net debit cap (CNY)."""

    settlement_balance: Money = Decimal(0)
    collateral: Money = Decimal(0)
    credit_line: Money = Decimal(0)
    ring_fenced: Money = Decimal(0)
    warning_percent: int | None = Field(default=None, ge=0, le=100)
    """Warning below this share of the cap available (default: clearing.toml)."""
    critical_percent: int | None = Field(default=None, ge=0, le=100)

    @model_validator(mode="after")
    def ring_fenced_is_held(self) -> DirectEntry:
        if (
            self.warning_percent is not None
            and self.critical_percent is not None
            and self.critical_percent > self.warning_percent
        ):
            raise ValueError(f"{self.code}: critical_percent above warning_percent")
        if self.ring_fenced > self.settlement_balance:
            raise ValueError(
                f"{self.code}: ring-fenced funds {self.ring_fenced} exceed the settlement "
                f"balance {self.settlement_balance} they are frozen in"
            )
        return self


class IndirectEntry(_Entry):
    clears_through: str = Field(pattern=BANK_CODE_PATTERN)


class SpecialEntry(_Entry):
    kind: str = Field(pattern="^(agency|card-scheme)$")
    settles_through: str = Field(pattern=BANK_CODE_PATTERN)


class CentreEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    member_id: str = Field(pattern=BANK_CODE_PATTERN)
    name: str


class ParticipantsFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    centre: CentreEntry
    direct: tuple[DirectEntry, ...] = Field(min_length=1)
    indirect: tuple[IndirectEntry, ...] = ()
    special: tuple[SpecialEntry, ...] = ()

    @model_validator(mode="after")
    def references_resolve(self) -> ParticipantsFile:
        codes = [entry.code for entry in (*self.direct, *self.indirect, *self.special)]
        duplicates = sorted({code for code in codes if codes.count(code) > 1})
        if duplicates:
            raise ValueError(f"bank codes listed more than once: {', '.join(duplicates)}")
        if self.centre.member_id in codes:
            raise ValueError("the centre member id is also a participant code")
        direct = {entry.code for entry in self.direct}
        for indirect in self.indirect:
            if indirect.clears_through not in direct:
                raise ValueError(
                    f"indirect participant {indirect.code} clears through "
                    f"{indirect.clears_through}, which is not a direct participant"
                )
        for special in self.special:
            if special.settles_through not in direct:
                raise ValueError(
                    f"special participant {special.code} settles through "
                    f"{special.settles_through}, which is not a direct participant"
                )
        return self


class ParticipantDirectory:
    """Looks up participants by 12-digit CNAPS code.

    ``clearing_party`` answers who sends or receives a package on behalf of a bank code:
    a direct participant stands for itself, an indirect participant for the direct participant
    it clears through, and a special participant (agency) for itself.
    """

    def __init__(self, participants: ParticipantsFile) -> None:
        self.participants = participants
        self.centre_member_id = participants.centre.member_id
        self._kinds: dict[str, ParticipantKind] = {}
        self._names: dict[str, str] = {}
        self._clearing_party: dict[str, str] = {}
        self._settles_through = {
            special.code: special.settles_through for special in participants.special
        }
        self.connecting = tuple(
            entry.code for entry in (*participants.direct, *participants.special)
        )
        """The participants that connect with a certificate of their own and have an outbox:
        the clearing banks, then the agencies (indirect participants go through their bank)."""
        for direct in participants.direct:
            self._add(direct, ParticipantKind.DIRECT, direct.code)
        for indirect in participants.indirect:
            self._add(indirect, ParticipantKind.INDIRECT, indirect.clears_through)
        for special in participants.special:
            self._add(special, ParticipantKind.SPECIAL, special.code)

    def _add(self, entry: _Entry, kind: ParticipantKind, clearing_party: str) -> None:
        self._kinds[entry.code] = kind
        self._names[entry.code] = entry.name
        self._clearing_party[entry.code] = clearing_party

    def kind(self, code: str) -> ParticipantKind | None:
        return self._kinds.get(code)

    def name(self, code: str) -> str | None:
        return self._names.get(code)

    def clearing_party(self, code: str) -> str | None:
        return self._clearing_party.get(code)

    def settling_bank(self, code: str) -> str | None:
        """The direct participant whose settlement account a bank code's payments move:
        itself, the bank an indirect participant clears through, or an agency's bank."""
        party = self._clearing_party.get(code)
        if party is None:
            return None
        return self._settles_through.get(party, party)

    def is_clearing_bank(self, code: str) -> bool:
        return self._kinds.get(code) is ParticipantKind.DIRECT

    def may_send_packages(self, code: str) -> bool:
        return self._kinds.get(code) in (ParticipantKind.DIRECT, ParticipantKind.SPECIAL)


def load_participants(path: Path) -> ParticipantDirectory:
    try:
        return ParticipantDirectory(load_model(path, ParticipantsFile))
    except TomlFileError as error:
        raise ConfigurationError(str(error)) from error
