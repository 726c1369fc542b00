"""The closed list of converters a codec may name, from XML text to typed values and back.

Inbound converters take the element text (``None`` when the element is absent) and return
the typed value; they raise ``ConversionError`` for text they cannot read. Money crosses the
edge as ``Decimal`` text and becomes integer minor units (``amount``) at once.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from types import MappingProxyType

MINOR_UNITS_PER_MAJOR = 100
"""Every currency the scheme allows has two decimals (the XSDs allow at most two)."""


class ConversionError(ValueError):
    """The text of an element cannot be converted to the type the codec names."""


def to_text(text: str) -> str:
    return text


def to_int(text: str) -> int:
    try:
        return int(text)
    except ValueError as error:
        raise ConversionError(f"{text!r} is not an integer") from error


def to_decimal(text: str) -> Decimal:
    try:
        return Decimal(text)
    except InvalidOperation as error:
        raise ConversionError(f"{text!r} is not a decimal number") from error


def to_amount(text: str) -> int:
    """Decimal text with at most two decimals, as integer minor units (``"12.30"`` → 1230)."""
    value = to_decimal(text) * MINOR_UNITS_PER_MAJOR
    if value != value.to_integral_value():
        raise ConversionError(f"{text!r} has more than two decimals")
    return int(value)


def to_currency(text: str) -> str:
    if not (len(text) == 3 and text.isascii() and text.isalpha() and text.isupper()):
        raise ConversionError(f"{text!r} is not an ISO 4217 currency code")
    return text


def to_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as error:
        raise ConversionError(f"{text!r} is not an ISO date") from error


def to_datetime(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError as error:
        raise ConversionError(f"{text!r} is not an ISO date-time") from error


def to_bank_code(text: str) -> str:
    if not (len(text) == 12 and text.isascii() and text.isdigit()):
        raise ConversionError(f"{text!r} is not a 12-digit CNAPS bank code")
    return text


def to_uuid(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError as error:
        raise ConversionError(f"{text!r} is not a UUID") from error


def to_boolean(text: str) -> bool:
    if text in ("true", "1"):
        return True
    if text in ("false", "0"):
        return False
    raise ConversionError(f"{text!r} is not a boolean")


def to_bytes(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=False)
    except (binascii.Error, ValueError) as error:
        raise ConversionError("content is not valid base64") from error


DECODERS: MappingProxyType[str, Callable[[str], object]] = MappingProxyType(
    {
        "text": to_text,
        "int": to_int,
        "decimal": to_decimal,
        "amount": to_amount,
        "currency": to_currency,
        "date": to_date,
        "datetime": to_datetime,
        "bank_code": to_bank_code,
        "uuid": to_uuid,
        "boolean": to_boolean,
        "base64": to_bytes,
    }
)


def from_amount(value: object) -> str:
    if not isinstance(value, int):
        raise ConversionError(f"amount {value!r} is not integer minor units")
    sign = "-" if value < 0 else ""
    whole, cents = divmod(abs(value), MINOR_UNITS_PER_MAJOR)
    return f"{sign}{whole}.{cents:02d}"


def from_datetime(value: object) -> str:
    if not isinstance(value, datetime):
        raise ConversionError(f"{value!r} is not a date-time")
    return value.isoformat(timespec="seconds")


def from_date(value: object) -> str:
    if not isinstance(value, date):
        raise ConversionError(f"{value!r} is not a date")
    return value.isoformat()


def from_boolean(value: object) -> str:
    return "true" if value else "false"


def from_bytes(value: object) -> str:
    if not isinstance(value, bytes):
        raise ConversionError("value is not bytes")
    return base64.b64encode(value).decode("ascii")


ENCODERS: MappingProxyType[str, Callable[[object], str]] = MappingProxyType(
    {
        "text": str,
        "int": str,
        "decimal": str,
        "amount": from_amount,
        "currency": str,
        "date": from_date,
        "datetime": from_datetime,
        "bank_code": str,
        "uuid": str,
        "boolean": from_boolean,
        "base64": from_bytes,
    }
)
