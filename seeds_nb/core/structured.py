"""Structured answers as table columns: which fields a ``response_format`` gives, and a parsed value as
plain data for a cell (models as dicts, enums as their values), for ``map`` and the exports alike."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

__all__ = ["field_value", "parsed_fields", "plain"]


def parsed_fields(response_format: Any) -> list[str]:
    """The fields a ``response_format`` gives an answer: a pydantic model's fields, or a JSON schema's
    top-level properties; none for other formats."""
    if isinstance(response_format, type) and issubclass(response_format, BaseModel):
        return list(response_format.model_fields)
    if isinstance(response_format, Mapping):
        spec = response_format.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, Mapping) else None
        properties = schema.get("properties") if isinstance(schema, Mapping) else None
        if isinstance(properties, Mapping):
            return [str(name) for name in properties]
    return []


def plain(value: Any) -> Any:
    """A parsed value as plain data for a table cell: models as dicts (a struct in Arrow/polars), enums as
    their values, lists and dicts element-wise; everything else as it is."""
    if isinstance(value, BaseModel):
        return {name: plain(getattr(value, name)) for name in type(value).model_fields}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


def field_value(parsed: Any, field: str) -> Any:
    """One field of a parsed answer (a pydantic model or a dict) as plain data; None when absent."""
    if isinstance(parsed, BaseModel):
        return plain(getattr(parsed, field, None))
    if isinstance(parsed, Mapping):
        return plain(parsed.get(field))
    return None
