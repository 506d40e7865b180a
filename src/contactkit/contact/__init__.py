"""contactkit.contact: differentiable hand-object contact models as pure functions and energy terms.

Modules: :mod:`~contactkit.contact.terms` (``HandObjectState``, ``EnergyTerm``, ``Objective``),
:mod:`~contactkit.contact.diffcontact` (ContactOpt), :mod:`~contactkit.contact.obman` (ObMan),
:mod:`~contactkit.contact.cpf` (CPF springs), :mod:`~contactkit.contact.choir` (CHOIR field),
:mod:`~contactkit.contact.affinity` (physical affinity). See ``docs/contact_models.md``.
"""

from contactkit.contact.terms import EnergyTerm, FunctionTerm, HandObjectState, NeighbourCache, Objective

__all__ = ["EnergyTerm", "FunctionTerm", "HandObjectState", "NeighbourCache", "Objective"]
