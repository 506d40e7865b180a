"""The one way settings dataclasses are updated: a copy with some fields changed, unknown names refused.

Used by every settings object (``SimulationProtocol.with_updates``, ``SynthesisConfig.with_updates``,
``RefinerSettings.replace``), so a misspelt option is always an error that lists the valid names.
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

from contactkit.errors import ContactkitError

__all__ = ["updated"]

S = TypeVar("S")


def updated(settings: S, noun: str, **changes: Any) -> S:
    """A copy of the dataclass instance ``settings`` with ``changes`` applied.

    Raises:
        ContactkitError: ``unknown <noun>(s) [names]; valid: [...]`` for names that are not fields.
    """
    valid = sorted(f.name for f in dataclasses.fields(settings))  # type: ignore[arg-type]
    bad = sorted(set(changes) - set(valid))
    if bad:
        raise ContactkitError(f"unknown {noun}(s) {bad}; valid: {valid}")
    return dataclasses.replace(settings, **changes)  # type: ignore[type-var]
