"""Bayesian NSUM models, each a short assembly of :mod:`.components`.

``MODELS`` maps a spec's ``[model] name`` to its class.
"""

from .base import NSUMModel
from .maltiel import BarrierModel, CombinedModel, DegreeModel, MaltielModel, TransmissionModel
from .overdispersed import OverdispersedModel
from .pooled import PooledModel

MODELS: dict[str, type[NSUMModel]] = {
    "degree": DegreeModel,
    "barrier": BarrierModel,
    "transmission": TransmissionModel,
    "combined": CombinedModel,
    "overdispersed": OverdispersedModel,
    "pooled": PooledModel,
}

__all__ = [
    "MODELS",
    "NSUMModel",
    "MaltielModel",
    "DegreeModel",
    "BarrierModel",
    "TransmissionModel",
    "CombinedModel",
    "OverdispersedModel",
]
