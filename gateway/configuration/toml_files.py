"""Reading a TOML file into a pydantic model, with errors that name the file and the field."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

Model = TypeVar("Model", bound=BaseModel)


class TomlFileError(Exception):
    """The file cannot be read, is not TOML, or does not fit its model."""


def describe(error: ValidationError) -> str:
    """``field.path: message; …`` for every problem pydantic found."""
    return "; ".join(
        f"{'.'.join(str(part) for part in item['loc']) or 'file'}: "
        f"{item['msg'].removeprefix('Value error, ')}"
        for item in error.errors()
    )


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except OSError as error:
        raise TomlFileError(f"{path}: cannot read: {error.strerror}") from error
    except tomllib.TOMLDecodeError as error:
        raise TomlFileError(f"{path}: not valid TOML: {error}") from error


def load_model(path: Path, model: type[Model], extra: dict[str, Any] | None = None) -> Model:
    raw = read_toml(path)
    try:
        return model.model_validate({**raw, **(extra or {})})
    except ValidationError as error:
        raise TomlFileError(f"{path}: {describe(error)}") from error
