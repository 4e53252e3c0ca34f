"""Publications as bytes on the wire between nodes: every field of :class:`Publication`.

The codec reads the fields from the dataclass, so a field added to ``Publication`` travels
without a change here; a field of a shape it cannot check fails at import, not on the wire.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any

from shared.payloads import JSONDecodeError, dumpb, loads

from ..protocol.publication import KINDS, Publication

_FIELDS = dataclasses.fields(Publication)
_TYPES = typing.get_type_hints(Publication)


def _is_sequence(hint: Any) -> bool:
    """Whether ``hint`` is ``tuple[X, ...]`` (a JSON array on the wire)."""
    return typing.get_origin(hint) is tuple and typing.get_args(hint)[1:] == (Ellipsis,)


def _check_codec() -> None:
    """Fail at import when a Publication field has a shape the codec cannot check."""
    for name, hint in _TYPES.items():
        if not (_is_sequence(hint) or isinstance(hint, type | types.UnionType)):
            raise TypeError(f"Publication.{name}: {hint} has no Redis codec; "
                            "teach redis_bus._field_value to check it")


_check_codec()


def encode_publication(publication: Publication) -> bytes:
    """Every field of ``publication`` as a JSON object (tuples become arrays)."""
    return dumpb({field.name: getattr(publication, field.name) for field in _FIELDS})


def _field_value(name: str, value: Any) -> Any:
    """``value`` as Publication's field ``name`` holds it; ValueError when of the wrong type."""
    hint = _TYPES[name]
    if _is_sequence(hint):
        item = typing.get_args(hint)[0]
        if isinstance(value, list) and all(isinstance(element, item) for element in value):
            return tuple(value)
    elif isinstance(value, hint):
        return value
    raise ValueError(f"field {name!r} is not a {hint}")


def decode_publication(payload: bytes) -> Publication:
    """The publication in ``payload``; ValueError when it is not one (e.g. a foreign writer).

    A field left out takes its default (a sender that predates it); unknown keys are ignored.
    """
    try:
        fields = loads(payload)
    except JSONDecodeError:
        raise ValueError("not JSON") from None
    if not isinstance(fields, dict):
        raise ValueError("not a JSON object")
    values = {}
    for field in _FIELDS:
        if field.name in fields:
            values[field.name] = _field_value(field.name, fields[field.name])
        elif field.default is dataclasses.MISSING:
            raise ValueError(f"field {field.name!r} missing")
    publication = Publication(**values)
    if publication.kind not in KINDS:
        raise ValueError(f"unknown kind {publication.kind!r}")
    return publication
