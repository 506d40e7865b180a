"""The one way settings dataclasses are updated or rebuilt from saved fields, unknown names refused.

:func:`updated` serves every settings object (``SimulationProtocol.with_updates``, ``SynthesisConfig.with_updates``,
``RefinerSettings.replace``), :func:`from_fields` the network configs saved with their weights, so a misspelt
option is always an error that lists the valid names.
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

from contactkit.errors import ContactkitError

__all__ = ["from_fields", "updated"]

S = TypeVar("S")


def _unknown_names(settings: Any, names: Any) -> tuple[list[str], list[str]]:
    """(names that are not fields of the dataclass or instance ``settings``, its field names), both sorted."""
    valid = sorted(f.name for f in dataclasses.fields(settings))
    return sorted(set(names) - set(valid)), valid


def updated(settings: S, noun: str, **changes: Any) -> S:
    """A copy of the dataclass instance ``settings`` with ``changes`` applied.

    Raises:
        ContactkitError: ``unknown <noun>(s) [names]; valid: [...]`` for names that are not fields.
    """
    bad, valid = _unknown_names(settings, changes)
    if bad:
        raise ContactkitError(f"unknown {noun}(s) {bad}; valid: {valid}")
    return dataclasses.replace(settings, **changes)  # type: ignore[type-var]


def from_fields(cls: type[S], noun: str, data: dict[str, Any]) -> S:
    """The dataclass ``cls`` built from ``data`` (e.g. :func:`dataclasses.asdict` output read back from a file).

    Raises:
        ContactkitError: ``unknown <noun> settings [names]; known: [...]`` for keys that are not fields.
    """
    bad, valid = _unknown_names(cls, data)
    if bad:
        raise ContactkitError(f"unknown {noun} settings {bad}; known: {valid}")
    return cls(**data)
